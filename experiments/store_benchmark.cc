// experiments/store_benchmark.cc — the CPU cost of each item layout, on the
// store alone (no network): set, get, incr, and the base-250 key codec.
//
// Run: build/experiments/store_benchmark --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
// Results: results/store-benchmark.md (experiments/README.md says how).
//
// Every store benchmark works on integer keys 1..kKeys with 1-byte values,
// the fill experiment's items, in a store big enough never to evict.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "compact/key_codec.h"
#include "core/clock.h"
#include "core/engine.h"

namespace tinycached {
namespace {

constexpr int kKeys = 1 << 20;

// As the server runs (server/main.cc): absl's lock-order graph is for tests;
// it would dominate the cost of every nested lock here.
const bool kNoDeadlockGraph = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

enum LayoutArg : int64_t { kStock = 0, kCompact = 1, kTiny = 2 };

core::StoreOptions OptionsFor(int64_t layout) {
  core::StoreOptions o;
  o.memory_limit = size_t{512} << 20;
  o.hashpower_init = 21;  // no growth during the run
  if (layout == kCompact ||
      layout == kTiny) {  // server/presets.cc "compact" ("tiny": and its engine)
    o.slabs.min_space = 5;
    o.slabs.factor = 1.05;
    o.slabs.align = 1;
    o.slabs.max_classes = 255;
    o.cas_enabled = false;
    o.layout.refs = core::RefMode::kPage;
    o.layout.pack_keys = true;
    o.layout.header = compact::HeaderStyle::kLean;
  }
  o.engine = layout == kTiny ? core::EngineKind::kTiny : core::EngineKind::kSlabs;
  return o;
}

const char* NameOf(int64_t layout) {
  return layout == kTiny ? "tiny" : layout == kCompact ? "compact" : "stock";
}

struct Fixture {
  explicit Fixture(int64_t layout) {
    store = *core::CreateEngine(OptionsFor(layout), &clock);
    keys.reserve(kKeys);
    for (int i = 1; i <= kKeys; ++i) keys.push_back(std::to_string(i));
    // A fixed random order, so lookups do not walk memory sequentially.
    order.resize(kKeys);
    for (int i = 0; i < kKeys; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
  }
  void Fill() {
    for (const std::string& k : keys) {
      store->Store(core::StoreMode::kSet, k, 0, 0, "1", 0, stats);
    }
  }
  core::Clock clock;
  core::ThreadStats stats;
  std::unique_ptr<core::Engine> store;
  std::vector<std::string> keys;
  std::vector<int> order;
};

void BM_Set(benchmark::State& state) {
  Fixture f(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = f.keys[f.order[i++ & (kKeys - 1)]];
    benchmark::DoNotOptimize(f.store->Store(core::StoreMode::kSet, k, 0, 0, "x", 0, f.stats));
  }
  state.SetLabel(NameOf(state.range(0)));
}

void BM_GetHit(benchmark::State& state) {
  Fixture f(state.range(0));
  f.Fill();
  size_t i = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string& k = f.keys[f.order[i++ & (kKeys - 1)]];
    f.store->Get(k, std::nullopt, f.stats,
                 [&](const core::ItemView& v) { bytes += v.value.size(); });
  }
  benchmark::DoNotOptimize(bytes);
  state.SetLabel(NameOf(state.range(0)));
}

void BM_GetMiss(benchmark::State& state) {
  Fixture f(state.range(0));
  f.Fill();
  std::vector<std::string> missing;
  for (int i = 0; i < 4096; ++i) missing.push_back(std::to_string(kKeys + 1 + i * 7919));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        f.store->Get(missing[i++ & 4095], std::nullopt, f.stats, [](const core::ItemView&) {}));
  }
  state.SetLabel(NameOf(state.range(0)));
}

void BM_Incr(benchmark::State& state) {
  Fixture f(state.range(0));
  f.Fill();
  size_t i = 0;
  char out[core::Engine::kDeltaMaxLength];
  size_t n = 0;
  for (auto _ : state) {
    const std::string& k = f.keys[f.order[i++ & (kKeys - 1)]];
    // Counters stay one digit most of the time (decr after incr keeps them small).
    benchmark::DoNotOptimize(f.store->Delta(k, (i & 1) != 0, 1, f.stats, out, &n));
  }
  state.SetLabel(NameOf(state.range(0)));
}

BENCHMARK(BM_Set)->Arg(kStock)->Arg(kCompact)->Arg(kTiny);
BENCHMARK(BM_GetHit)->Arg(kStock)->Arg(kCompact)->Arg(kTiny);
BENCHMARK(BM_GetMiss)->Arg(kStock)->Arg(kCompact)->Arg(kTiny);
BENCHMARK(BM_Incr)->Arg(kStock)->Arg(kCompact)->Arg(kTiny);

// Many threads on one store, as the server's worker threads share it: each
// thread reads (or counts) its own share of the keys, in the fixed random
// order, so threads meet only where the store makes them meet — a lock
// word, a counter or a version every request writes. Google Benchmark's
// CPU time is the threads' total over all their operations: CPU per
// operation stays flat as threads are added when nothing shared is
// written, and climbs when a cache line moves between cores on each
// request. One fixture per layout, built by thread 0 before the timed loop
// (the loop starts and ends with a barrier across the threads).
std::unique_ptr<Fixture> g_shared[3];

template <typename Op>
void RunShared(benchmark::State& state, Op op) {
  const int64_t layout = state.range(0);
  if (state.thread_index() == 0) {
    g_shared[layout] = std::make_unique<Fixture>(layout);
    g_shared[layout]->Fill();
  }
  core::ThreadStats stats;  // each worker thread has its own
  const size_t share = kKeys / static_cast<size_t>(state.threads());
  const size_t first = share * static_cast<size_t>(state.thread_index());
  size_t i = 0;
  for (auto _ : state) {
    Fixture& f = *g_shared[layout];
    op(f, f.keys[f.order[first + i % share]], stats, i);
    ++i;
  }
  if (state.thread_index() == 0) state.SetLabel(NameOf(layout));
}

void BM_GetHitShared(benchmark::State& state) {
  size_t bytes = 0;
  RunShared(state, [&](Fixture& f, const std::string& k, core::ThreadStats& stats, size_t) {
    f.store->Get(k, std::nullopt, stats, [&](const core::ItemView& v) { bytes += v.value.size(); });
  });
  benchmark::DoNotOptimize(bytes);
}

void BM_IncrShared(benchmark::State& state) {
  char out[core::Engine::kDeltaMaxLength];
  size_t n = 0;
  RunShared(state, [&](Fixture& f, const std::string& k, core::ThreadStats& stats, size_t i) {
    benchmark::DoNotOptimize(f.store->Delta(k, (i & 1) == 0, 1, stats, out, &n));
  });
}

BENCHMARK(BM_GetHitShared)->Arg(kStock)->Arg(kCompact)->Arg(kTiny)->ThreadRange(1, 8);
BENCHMARK(BM_IncrShared)->Arg(kStock)->Arg(kCompact)->Arg(kTiny)->ThreadRange(1, 8);

// The key codec alone: pack (every request of a base-250 layout) and unpack.
void BM_PackKey(benchmark::State& state) {
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) keys.push_back(std::to_string(uint64_t{1} << (i % 60)));
  size_t i = 0;
  uint8_t out[compact::kMaxPackedKey];
  for (auto _ : state) {
    benchmark::DoNotOptimize(compact::PackDecimalKey(keys[i++ & 4095], out));
  }
}
BENCHMARK(BM_PackKey);

void BM_PackKeyRejectsText(benchmark::State& state) {
  const std::string key = "user:1234567";
  uint8_t out[compact::kMaxPackedKey];
  for (auto _ : state) benchmark::DoNotOptimize(compact::PackDecimalKey(key, out));
}
BENCHMARK(BM_PackKeyRejectsText);

void BM_UnpackKey(benchmark::State& state) {
  std::vector<std::vector<uint8_t>> packed;
  for (int i = 0; i < 4096; ++i) {
    uint8_t out[compact::kMaxPackedKey];
    const size_t n = compact::PackDecimalKey(std::to_string(uint64_t{1} << (i % 60)), out);
    packed.emplace_back(out, out + n);
  }
  size_t i = 0;
  char text[compact::kMaxDecimalKey];
  for (auto _ : state) {
    const std::vector<uint8_t>& p = packed[i++ & 4095];
    benchmark::DoNotOptimize(compact::UnpackDecimalKey(p.data(), p.size(), text));
  }
}
BENCHMARK(BM_UnpackKey);

}  // namespace
}  // namespace tinycached

BENCHMARK_MAIN();
