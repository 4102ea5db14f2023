// server/presets.h — named item layouts: the ladder from memcached's own
// layout to the most compact one, one change per step.
//
// Room: server/. A preset is only a set of start-up values; core/ never sees
// its name. `-o preset=<name>` (or `layout=<name>`) picks one, then any of
// -n, -f, -C and -o ref=/align=/cas=/keys=/header=/slab_classes= override
// single knobs, whatever their order on the command line.
#ifndef TINYCACHED_SERVER_PRESETS_H_
#define TINYCACHED_SERVER_PRESETS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.h"

namespace tinycached::server {

// Every knob a preset sets.
struct LayoutSettings {
  core::RefMode refs = core::RefMode::kPointer;
  size_t align = 8;
  bool cas = true;
  bool pack_keys = false;
  compact::HeaderStyle header = compact::HeaderStyle::kStock;
  size_t min_space = 48;  // -n
  double factor = 1.25;   // -f
  int max_classes = 63;   // memcached 1.6's limit; up to 255 (one-byte class ids)
  core::EngineKind engine = core::EngineKind::kSlabs;  // kTiny: tiny items in index slots

  bool operator==(const LayoutSettings&) const = default;
};

struct Preset {
  std::string_view name;
  std::string_view change;  // what this step changes from the one before
  LayoutSettings layout;
};

// The ladder, in order; the first is "stock" (the default).
const std::vector<Preset>& Presets();
const Preset* FindPreset(std::string_view name);

// Knob spellings, as -o takes them and `stats settings` reports them.
std::string_view RefModeName(core::RefMode m);
std::string_view HeaderName(compact::HeaderStyle h);
// "ref=pointer align=8 cas=on keys=text header=stock n=48 f=1.25 slab_classes=63"
std::string Describe(const LayoutSettings& l);

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_PRESETS_H_
