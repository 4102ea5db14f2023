// tests/core/engine_test_util.h — the fixture of the Engine conformance suite
// (engine_test.cc: keyed commands; engine_upkeep_test.cc: page moves,
// reporting, memory and threads): the engine configurations under test and
// helpers that go through the Engine interface alone.
#ifndef TINYCACHED_TESTS_CORE_ENGINE_TEST_UTIL_H_
#define TINYCACHED_TESTS_CORE_ENGINE_TEST_UTIL_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "compact/item_layout.h"
#include "core/engine.h"
#include "gtest/gtest.h"

namespace tinycached::core::engine_test {

// One engine configuration under test.
struct EngineCase {
  const char* name;
  EngineKind kind;
  bool compact;  // server/presets.cc's `compact` layout (else memcached's stock one)
  bool cas;      // StoreOptions::cas_enabled
};

inline void PrintTo(const EngineCase& c, std::ostream* os) { *os << c.name; }

inline const EngineCase kCases[] = {
    {"slabs_stock", EngineKind::kSlabs, false, true},
    {"slabs_compact", EngineKind::kSlabs, true, true},
    // The `compact` preset as shipped: CAS off.
    {"slabs_compact_nocas", EngineKind::kSlabs, true, false},
    // The `tiny` preset as shipped: CAS off, so numeric keys with small
    // values live inline in index slots.
    {"tiny", EngineKind::kTiny, true, false},
    // With CAS on no item can go inline (a slot keeps no CAS): everything
    // takes the overflow store's path through TinyStore.
    {"tiny_cas", EngineKind::kTiny, true, true},
};

inline std::string CaseName(const ::testing::TestParamInfo<EngineCase>& i) { return i.param.name; }

// The keys the per-key contracts run on: a text key (a slab item in every
// engine), a decimal key (inline in the tiny engine with CAS off) and a
// prefixed number (inline there once the prefix is learned).
inline const char* const kKeys[] = {"text:key", "4242", "user:17"};

// A value that names its key and version, so a reader can tell a wrong or
// torn value from a right one.
inline std::string ValueFor(const std::string& key, uint64_t version, size_t pad) {
  std::string v = key + "/" + std::to_string(version) + "/";
  v.append(pad, static_cast<char>('a' + version % 26));
  v += "/" + key;
  return v;
}

class EngineTest : public ::testing::TestWithParam<EngineCase> {
 protected:
  static constexpr RelTime kStart = 1000;

  // The options of this case, as server/presets.cc builds them.
  StoreOptions Options(size_t memory_mb = 64) const {
    StoreOptions o;
    o.memory_limit = memory_mb << 20;
    o.engine = GetParam().kind;
    o.cas_enabled = GetParam().cas;
    if (GetParam().compact) {
      o.layout.refs = RefMode::kPage;
      o.layout.pack_keys = true;
      o.layout.header = compact::HeaderStyle::kLean;
      o.slabs.align = 1;
      o.slabs.min_space = 5;
      o.slabs.factor = 1.05;
      o.slabs.max_classes = 255;
    }
    return o;
  }

  void Make(const StoreOptions& o) {
    clock_.SetForTest(kStart);
    auto made = CreateEngine(o, &clock_);
    ASSERT_TRUE(made.ok()) << made.status();
    engine_ = *std::move(made);
  }
  void Make() { Make(Options()); }

  Engine& e() { return *engine_; }
  bool cas_on() const { return GetParam().cas; }
  bool tiny() const { return engine_->kind() == EngineKind::kTiny; }

  StoreResult Set(const std::string& k, const std::string& v, int64_t exptime = 0,
                  uint32_t flags = 0, StoreMode mode = StoreMode::kSet, uint64_t cas = 0) {
    return engine_->Store(mode, k, flags, exptime, v, cas, stats_);
  }

  // A get that also checks the visitor ran exactly once on a hit, never on a miss.
  std::optional<std::string> Get(const std::string& k, uint32_t* flags = nullptr,
                                 uint64_t* cas = nullptr,
                                 std::optional<int64_t> new_exptime = std::nullopt) {
    std::optional<std::string> out;
    int calls = 0;
    const bool hit = engine_->Get(k, new_exptime, stats_, [&](const ItemView& v) {
      ++calls;
      out = std::string(v.value);
      if (flags != nullptr) *flags = v.flags;
      if (cas != nullptr) *cas = v.cas;
    });
    EXPECT_EQ(calls, hit ? 1 : 0) << k;
    return out;
  }

  uint64_t CasOf(const std::string& k) {
    uint64_t cas = ~uint64_t{0};
    EXPECT_TRUE(Get(k, nullptr, &cas).has_value()) << k;
    return cas;
  }

  // incr/decr; on kOk checks that `out` holds exactly `out_len` digits.
  std::string Delta(const std::string& k, bool incr, uint64_t d,
                    DeltaResult want = DeltaResult::kOk) {
    char buf[Engine::kDeltaMaxLength];
    std::fill(std::begin(buf), std::end(buf), 'X');
    size_t n = 999;
    EXPECT_EQ(engine_->Delta(k, incr, d, stats_, buf, &n), want) << k;
    if (want != DeltaResult::kOk) return "";
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, Engine::kDeltaMaxLength);
    n = std::min(n, Engine::kDeltaMaxLength);
    const std::string digits(buf, n);
    EXPECT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << digits;
    return digits;
  }

  uint64_t StoredNumber(const std::string& k) {
    const std::optional<std::string> v = Get(k);
    uint64_t n = ~uint64_t{0};
    EXPECT_TRUE(v.has_value()) << k;
    if (v) {
      EXPECT_TRUE(ParseStoredNumber(*v, &n)) << '"' << *v << '"';
    }
    return n;
  }

  // The MetaItem a no-bump, no-count look (`me`) shows; nullopt on a miss.
  std::optional<MetaItem> Peek(const std::string& k, std::string* value = nullptr) {
    MetaGetOptions o;
    o.debug = true;
    o.bump = false;
    std::optional<MetaItem> seen;
    const MetaGetResult r = engine_->MetaGet(k, o, stats_, [&](const MetaItem& m) {
      seen = m;
      if (value != nullptr) *value = std::string(m.value);
      seen->value = {};  // not valid after the visitor
      return MetaChange{};
    });
    EXPECT_EQ(r == MetaGetResult::kHit, seen.has_value()) << k;
    return seen;
  }

  // The class holding most pages (the one a uniform fill went to).
  int FullestClass() const {
    int best = 0;
    size_t pages = 0;
    for (const ClassSnapshot& c : engine_->SnapshotClasses()) {
      if (c.pages > pages) best = c.id, pages = c.pages;
    }
    return best;
  }

  Clock clock_;
  ThreadStats stats_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace tinycached::core::engine_test

#endif  // TINYCACHED_TESTS_CORE_ENGINE_TEST_UTIL_H_
