#include "server/presets.h"

#include "absl/strings/str_format.h"

namespace tinycached::server {

const std::vector<Preset>& Presets() {
  static const std::vector<Preset>* const kPresets = [] {
    auto* v = new std::vector<Preset>;
    LayoutSettings l;  // memcached 1.6
    v->push_back({"stock", "memcached 1.6's item layout and slab table", l});
    l.min_space = 5;
    l.factor = 1.05;
    l.max_classes = 255;
    v->push_back({"factor", "slab table -n 5 -f 1.05, up to 255 classes", l});
    l.refs = core::RefMode::kRef32;
    v->push_back({"ref32", "4-byte references instead of 8-byte pointers", l});
    l.align = 2;
    v->push_back({"align2", "chunk sizes aligned to 2 bytes instead of 8", l});
    l.cas = false;
    v->push_back({"nocas", "no CAS field (-C)", l});
    l.pack_keys = true;
    v->push_back({"base250", "decimal integer keys packed base 250", l});
    l.refs = core::RefMode::kPage;
    v->push_back({"page16", "page references sized to -m (3 bytes up to -m 84)", l});
    l.align = 1;
    v->push_back({"align1", "chunk sizes aligned to 1 byte", l});
    l.header = compact::HeaderStyle::kLean;
    v->push_back({"compact", "lean header: only the fields an item uses", l});
    l.engine = core::EngineKind::kTiny;
    v->push_back(
        {"tiny", "tiny items in 8-byte index slots, the rest as compact; -m holds both", l});
    return v;
  }();
  return *kPresets;
}

const Preset* FindPreset(std::string_view name) {
  for (const Preset& p : Presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string_view RefModeName(core::RefMode m) {
  switch (m) {
    case core::RefMode::kPointer:
      return "pointer";
    case core::RefMode::kRef32:
      return "ref32";
    case core::RefMode::kPage:
      return "page16";
  }
  return "?";
}

std::string_view HeaderName(compact::HeaderStyle h) {
  return h == compact::HeaderStyle::kLean ? "lean" : "stock";
}

std::string Describe(const LayoutSettings& l) {
  return absl::StrFormat(
      "ref=%s align=%d cas=%s keys=%s header=%s n=%d f=%.2f slab_classes=%d store=%s",
      std::string(RefModeName(l.refs)), l.align, l.cas ? "on" : "off",
      l.pack_keys ? "base250" : "text", std::string(HeaderName(l.header)), l.min_space, l.factor,
      l.max_classes, core::EngineKindName(l.engine));
}

}  // namespace tinycached::server
