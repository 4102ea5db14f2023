// libFuzzer target: arbitrary bytes through a protocol session (NewSession) and a small
// store, fed in fuzzer-chosen pieces. Build with clang:
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DTINYCACHED_FUZZ=ON -DTINYCACHED_SANITIZE=ON
//   cmake --build build-fuzz --target session_fuzz
//   build-fuzz/tests/session_fuzz -max_total_time=300 tests/fuzz/corpus
//   TINYCACHED_FUZZ_PRESET=stock build-fuzz/tests/session_fuzz ...   (default: compact)
// or with CMakePresets.json: cmake --preset fuzz && cmake --build --preset fuzz
// (the target is then build/presets/fuzz/tests/session_fuzz).
// Besides crashes and sanitizer reports it checks one invariant after every
// input: the index and the LRU lists hold the same number of items.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/item_store.h"
#include "core/tiny_store.h"
#include "server/context.h"
#include "server/presets.h"
#include "server/protocol/session.h"

namespace {

using namespace tinycached;

server::ServerContext* Context() {
  static core::Clock clock;
  static server::ServerContext* ctx = [] {
    server::Settings s;
    const char* name = std::getenv("TINYCACHED_FUZZ_PRESET");
    s.preset = name != nullptr ? name : "compact";
    const server::Preset* preset = server::FindPreset(s.preset);
    if (preset == nullptr) std::abort();
    s.layout = preset->layout;
    s.memory_mb = 2;  // small, so evictions and out-of-memory paths run too
    s.item_size_max = 64 << 10;
    s.slab_chunk_max = 16 << 10;
    auto store = core::CreateEngine(s.StoreOptions(), &clock);
    auto* c = new server::ServerContext(s, *std::move(store), &clock);
    c->thread_stats.push_back(std::make_unique<core::ThreadStats>());
    return c;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  server::ServerContext* ctx = Context();
  // First byte: how many bytes arrive per read (1..256), so every split point
  // of commands and data blocks gets exercised.
  const size_t step = static_cast<size_t>(data[0]) + 1;
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::unique_ptr<server::ProtocolSession> session =
      server::NewSession(ctx, ctx->thread_stats[0].get());
  std::string buffered, out;
  bool close = false;
  for (size_t pos = 0; pos < input.size() && !close; pos += step) {
    buffered.append(input, pos, step);
    buffered.erase(0, session->Consume(buffered, &out, &close, 1 << 16));
    if (out.size() > (1 << 16)) out.clear();  // the connection would have sent it
  }
  // The slab store's own counts (the tiny engine's overflow store, under tiny).
  const core::ItemStore& slabs = ctx->store->kind() == core::EngineKind::kTiny
                                     ? static_cast<const core::TinyStore&>(*ctx->store).overflow()
                                     : static_cast<const core::ItemStore&>(*ctx->store);
  if (slabs.Totals().curr_items != slabs.index().items()) std::abort();
  return 0;
}
