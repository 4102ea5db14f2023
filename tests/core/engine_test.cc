// tests/core/engine_test.cc — the conformance suite of core/engine.h: every
// contract stated on Engine, run through the Engine interface alone (no cast
// to a concrete store) on each engine kind and on the slab layouts at both
// ends of the preset ladder.
//
// Where engines may legitimately differ the test branches on what the
// interface reports (kind(), options()) and says why.
#include "core/engine.h"

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
#include "gtest/gtest.h"

namespace tinycached::core {
namespace {

// One engine configuration under test.
struct EngineCase {
  const char* name;
  EngineKind kind;
  bool compact;  // server/presets.cc's `compact` layout (else memcached's stock one)
  bool cas;      // StoreOptions::cas_enabled
};

void PrintTo(const EngineCase& c, std::ostream* os) { *os << c.name; }

const EngineCase kCases[] = {
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

std::string CaseName(const ::testing::TestParamInfo<EngineCase>& i) { return i.param.name; }

// The keys the per-key contracts run on: a text key (a slab item in every
// engine), a decimal key (inline in the tiny engine with CAS off) and a
// prefixed number (inline there once the prefix is learned).
const char* const kKeys[] = {"text:key", "4242", "user:17"};

// A value that names its key and version, so a reader can tell a wrong or
// torn value from a right one.
std::string ValueFor(const std::string& key, uint64_t version, size_t pad) {
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

// ---- creation, identity, options ------------------------------------------

TEST_P(EngineTest, IsTheKindAskedForWithTheOptionsGiven) {
  const StoreOptions want = Options(32);
  Make(want);
  EXPECT_EQ(e().kind(), GetParam().kind);
  EXPECT_EQ(e().engine_stats().kind, e().kind());
  EXPECT_EQ(EngineKindName(e().kind()), tiny() ? "tiny" : "slabs");
  const StoreOptions& got = e().options();
  EXPECT_EQ(got.memory_limit, want.memory_limit);
  EXPECT_EQ(got.cas_enabled, want.cas_enabled);
  EXPECT_EQ(got.evict, want.evict);
  EXPECT_EQ(got.layout.refs, want.layout.refs);
  EXPECT_EQ(got.layout.pack_keys, want.layout.pack_keys);
  EXPECT_EQ(got.layout.header, want.layout.header);
  EXPECT_EQ(got.slabs.align, want.slabs.align);
  EXPECT_EQ(got.slabs.min_space, want.slabs.min_space);
  EXPECT_EQ(got.slabs.factor, want.slabs.factor);
  EXPECT_EQ(got.slabs.max_classes, want.slabs.max_classes);
  EXPECT_EQ(got.slabs.item_size_max, want.slabs.item_size_max);
  // options() are "the options the slab items are kept by": in TinyStore its
  // overflow store's, which is a slab store whose index -m pays for.
  EXPECT_EQ(got.engine, EngineKind::kSlabs);
  EXPECT_EQ(got.index_in_limit, tiny());
  EXPECT_EQ(e().memory_limit(), want.memory_limit);
  if (!tiny()) {
    const EngineStats s = e().engine_stats();
    EXPECT_EQ(s.inline_items, 0u);
    EXPECT_EQ(s.inline_table_bytes, 0u);
    EXPECT_EQ(s.prefixes, 0u);
  }
}

// ---- SizeOk and Store ------------------------------------------------------

TEST_P(EngineTest, SizeOkAgreesWithStore) {
  Make();
  const size_t max = e().options().slabs.item_size_max;
  EXPECT_TRUE(e().SizeOk("k", 0, 0, 1));
  EXPECT_TRUE(e().SizeOk("k", 7, 100, 512 << 10));
  EXPECT_TRUE(e().SizeOk(std::string(250, 'k'), 0, 0, 100));
  EXPECT_FALSE(e().SizeOk("k", 0, 0, max));
  EXPECT_FALSE(e().SizeOk("k", 0, 0, 2 * max));
  for (const size_t n : {size_t{1}, size_t{512} << 10, max - 4096, max, 2 * max}) {
    const bool ok = e().SizeOk("sized", 0, 0, n);
    const StoreResult r = Set("sized", std::string(n, 's'));
    EXPECT_EQ(r, ok ? StoreResult::kStored : StoreResult::kTooLarge) << n;
  }
  // A key longer than memcached's 250 bytes is never stored.
  EXPECT_EQ(Set(std::string(251, 'k'), "v"), StoreResult::kTooLarge);
  EXPECT_GE(stats_.store_too_large.Get(), 2u);  // counted in `stats`
}

TEST_P(EngineTest, StoreModesFollowMemcached) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    EXPECT_EQ(Set(k, "mid", 0, 0, StoreMode::kReplace), StoreResult::kNotStored);
    EXPECT_EQ(Set(k, "x", 0, 0, StoreMode::kAppend), StoreResult::kNotStored);
    EXPECT_EQ(Set(k, "x", 0, 0, StoreMode::kPrepend), StoreResult::kNotStored);
    EXPECT_EQ(Get(k), std::nullopt);
    EXPECT_EQ(Set(k, "mid", 0, 0, StoreMode::kAdd), StoreResult::kStored);
    EXPECT_EQ(Set(k, "zzz", 0, 0, StoreMode::kAdd), StoreResult::kNotStored);
    EXPECT_EQ(Get(k), "mid");
    EXPECT_EQ(Set(k, ">", 0, 9, StoreMode::kAppend), StoreResult::kStored);
    EXPECT_EQ(Set(k, "<", 0, 9, StoreMode::kPrepend), StoreResult::kStored);
    uint32_t flags = 99;
    EXPECT_EQ(Get(k, &flags), "<mid>");
    EXPECT_EQ(flags, 0u);  // append/prepend keep the item's flags
    EXPECT_EQ(Set(k, "new", 0, 0, StoreMode::kReplace), StoreResult::kStored);
    EXPECT_EQ(Get(k), "new");
    EXPECT_EQ(Set(k, "with flags", 0, 0xdeadbeef), StoreResult::kStored);
    EXPECT_EQ(Get(k, &flags), "with flags");
    EXPECT_EQ(flags, 0xdeadbeefu);
    EXPECT_EQ(Set(k, "12"), StoreResult::kStored);  // an inline value in the tiny engine
    EXPECT_EQ(Set(k, "3", 0, 0, StoreMode::kAppend), StoreResult::kStored);
    EXPECT_EQ(Get(k, &flags), "123");
    EXPECT_EQ(flags, 0u);
    EXPECT_EQ(Set(k, "", 0, 0, StoreMode::kSet), StoreResult::kStored);  // empty values too
    EXPECT_EQ(Get(k), "");
  }
}

TEST_P(EngineTest, CasMatchesOnlyTheCurrentUnique) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    EXPECT_EQ(Set(k, "b", 0, 0, StoreMode::kCas, 1), StoreResult::kNotFound);
    ASSERT_EQ(Set(k, "1"), StoreResult::kStored);
    const uint64_t cas1 = CasOf(k);
    if (!cas_on()) {
      // No uniques (-C): every item shows 0 and no cas can succeed (memcached).
      EXPECT_EQ(cas1, 0u);
      EXPECT_EQ(Set(k, "b", 0, 0, StoreMode::kCas, 0), StoreResult::kExists);
      EXPECT_EQ(Set(k, "b", 0, 0, StoreMode::kCas, 1), StoreResult::kExists);
      EXPECT_EQ(Get(k), "1");
      continue;
    }
    EXPECT_NE(cas1, 0u);
    EXPECT_EQ(Set(k, "b", 0, 0, StoreMode::kCas, cas1 + 1), StoreResult::kExists);
    EXPECT_EQ(Set(k, "b", 0, 0, StoreMode::kCas, 0), StoreResult::kExists);
    EXPECT_EQ(Get(k), "1");
    EXPECT_EQ(Set(k, "b", 0, 5, StoreMode::kCas, cas1), StoreResult::kStored);
    uint32_t flags = 0;
    uint64_t cas2 = 0;
    EXPECT_EQ(Get(k, &flags, &cas2), "b");
    EXPECT_EQ(flags, 5u);
    EXPECT_GT(cas2, cas1);
    EXPECT_EQ(Set(k, "c", 0, 0, StoreMode::kCas, cas1), StoreResult::kExists);  // spent
    EXPECT_EQ(Get(k), "b");
    // Every change takes a new unique.
    ASSERT_EQ(Set(k, "+", 0, 0, StoreMode::kAppend), StoreResult::kStored);
    EXPECT_GT(CasOf(k), cas2);
  }
  // Uniques differ between keys.
  if (cas_on()) {
    EXPECT_NE(CasOf(kKeys[0]), CasOf(kKeys[1]));
  }
}

TEST_P(EngineTest, FailedSetDropsTheOldValue) {
  Make();
  const std::string too_large(2 * e().options().slabs.item_size_max, 'L');
  for (const std::string k : kKeys) {
    ASSERT_EQ(Set(k, "old"), StoreResult::kStored);
    // A failed add/replace/append leaves the item alone (memcached drops only for set).
    EXPECT_EQ(Set(k, too_large, 0, 0, StoreMode::kReplace), StoreResult::kTooLarge) << k;
    EXPECT_EQ(Get(k), "old") << k;
    EXPECT_EQ(Set(k, too_large, 0, 0, StoreMode::kSet), StoreResult::kTooLarge) << k;
    // engine.h: "a failed kSet also drops the key's old value".
    EXPECT_EQ(Get(k), std::nullopt) << k;
  }
  EXPECT_EQ(stats_.store_too_large.Get(), 2 * std::size(kKeys));
}

// ---- reads -------------------------------------------------------------------

TEST_P(EngineTest, GetShowsFlagsCasAndVisitsOnce) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    EXPECT_EQ(Get(k), std::nullopt);  // the visitor is not called on a miss
    ASSERT_EQ(Set(k, "v1", 0, 42), StoreResult::kStored);
    uint32_t flags = 0;
    uint64_t cas = 99;
    EXPECT_EQ(Get(k, &flags, &cas), "v1");
    EXPECT_EQ(flags, 42u);
    if (cas_on()) {
      EXPECT_NE(cas, 0u);
    } else {
      EXPECT_EQ(cas, 0u);
    }
    ASSERT_EQ(Set(k, "v2"), StoreResult::kStored);  // flags 0: inline in the tiny engine
    EXPECT_EQ(Get(k, &flags, &cas), "v2");
    EXPECT_EQ(flags, 0u);
    EXPECT_EQ(cas == 0, !cas_on());
  }
}

TEST_P(EngineTest, GatSetsTheNewExpiryAndReturnsTheValue) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    clock_.SetForTest(kStart);
    EXPECT_EQ(Get(k, nullptr, nullptr, int64_t{100}), std::nullopt);
    ASSERT_EQ(Set(k, "g"), StoreResult::kStored);
    EXPECT_EQ(Get(k, nullptr, nullptr, int64_t{10}), "g");  // gat 10
    clock_.AdvanceForTest(9);
    EXPECT_EQ(Get(k), "g");
    EXPECT_EQ(Get(k, nullptr, nullptr, int64_t{0}), "g");  // gat 0: never expires
    clock_.AdvanceForTest(100);
    EXPECT_EQ(Get(k), "g");
    EXPECT_EQ(Get(k, nullptr, nullptr, int64_t{-1}), "g");  // gat returns it, then it is gone
    EXPECT_EQ(Get(k), std::nullopt);
  }
}

// ---- pins ------------------------------------------------------------------

TEST_P(EngineTest, PinnedBytesStayUntilUnpinned) {
  Make();
  const size_t item_size_max = e().options().slabs.item_size_max;
  ASSERT_GE(item_size_max, size_t{800} << 10);
  for (const std::string k : {"pin:key", "31337"}) {
    // A slab chunk, the smallest pinnable value, and a large item.
    for (const size_t size : {Engine::kPinMinValue, size_t{100} << 10, size_t{700} << 10}) {
      SCOPED_TRACE(k + " " + std::to_string(size));
      const std::string v1 = ValueFor(k, 1, size), v2 = ValueFor(k, 2, size);
      ASSERT_EQ(Set(k, v1), StoreResult::kStored);
      const size_t malloced = e().Totals().malloced;
      PinnedValue pin, pin2;
      int calls = 0;
      ASSERT_TRUE(e().Get(k, std::nullopt, stats_, [&](const ItemView& v) {
        ++calls;
        pin = e().PinVisited(v);
        pin2 = e().PinVisited(v);  // two replies in flight from one item
      }));
      EXPECT_EQ(calls, 1);
      ASSERT_NE(pin.data, nullptr);
      ASSERT_EQ(pin.size, v1.size());
      EXPECT_EQ(std::string(pin.data, pin.size), v1);
      // Replaced while pinned: readers see the new value, the pin the old.
      ASSERT_EQ(Set(k, v2), StoreResult::kStored);
      EXPECT_EQ(Get(k), v2);
      // Stores around it reuse freed memory, never the pinned bytes.
      for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(Set(k, ValueFor(k, 3 + i, size)), StoreResult::kStored);
      }
      EXPECT_TRUE(e().Delete(k, stats_));
      EXPECT_EQ(Get(k), std::nullopt);
      EXPECT_EQ(std::string(pin.data, pin.size), v1);
      e().Unpin(pin);
      EXPECT_EQ(std::string(pin2.data, pin2.size), v1);  // the other pin still holds it
      e().Unpin(pin2);
      if (size > e().layout_report().chunk_max) {
        // A large item's block goes back with the last Unpin.
        EXPECT_LT(e().Totals().malloced, malloced);
      }
      // Pinned and then deleted without a replacement: the same.
      ASSERT_EQ(Set(k, v1), StoreResult::kStored);
      ASSERT_TRUE(
          e().Get(k, std::nullopt, stats_, [&](const ItemView& v) { pin = e().PinVisited(v); }));
      EXPECT_TRUE(e().Delete(k, stats_));
      EXPECT_EQ(std::string(pin.data, pin.size), v1);
      e().Unpin(pin);
      EXPECT_EQ(e().Totals().curr_items, 0u);
    }
  }
}

// ---- touch, delete, drop ----------------------------------------------------

TEST_P(EngineTest, TouchSetsTheExpiry) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    clock_.SetForTest(kStart);
    EXPECT_EQ(e().Touch(k, 100, stats_), TouchResult::kNotFound);
    ASSERT_EQ(Set(k, "t", 5), StoreResult::kStored);
    EXPECT_EQ(e().Touch(k, 100, stats_), TouchResult::kTouched);
    clock_.AdvanceForTest(50);
    EXPECT_EQ(Get(k), "t");
    EXPECT_EQ(e().Touch(k, 0, stats_), TouchResult::kTouched);  // never expires
    clock_.AdvanceForTest(1000);
    EXPECT_EQ(Get(k), "t");
    ASSERT_EQ(Set(k, "t"), StoreResult::kStored);               // inline in tiny
    EXPECT_EQ(e().Touch(k, 0, stats_), TouchResult::kTouched);  // stays where it is
    EXPECT_EQ(e().Touch(k, 3, stats_), TouchResult::kTouched);  // needs an expiry
    clock_.AdvanceForTest(2);
    EXPECT_EQ(Get(k), "t");
    clock_.AdvanceForTest(1);
    EXPECT_EQ(Get(k), std::nullopt);
    EXPECT_EQ(e().Touch(k, 100, stats_), TouchResult::kNotFound);
    ASSERT_EQ(Set(k, "t"), StoreResult::kStored);
    EXPECT_EQ(e().Touch(k, -1, stats_), TouchResult::kTouched);  // expired at once
    EXPECT_EQ(Get(k), std::nullopt);
  }
}

TEST_P(EngineTest, DeleteAndDrop) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    EXPECT_FALSE(e().Delete(k, stats_));
    ASSERT_EQ(Set(k, "d"), StoreResult::kStored);
    EXPECT_EQ(e().Totals().curr_items, 1u);
    EXPECT_TRUE(e().Delete(k, stats_));
    EXPECT_FALSE(e().Delete(k, stats_));
    EXPECT_EQ(Get(k), std::nullopt);
    EXPECT_EQ(e().Totals().curr_items, 0u);
    // Deleted: add works again.
    EXPECT_EQ(Set(k, "again", 0, 0, StoreMode::kAdd), StoreResult::kStored);
    const uint64_t misses = stats_.delete_misses.Get();
    e().Drop(k);
    EXPECT_EQ(Get(k), std::nullopt);
    EXPECT_EQ(e().Totals().curr_items, 0u);
    e().Drop(k);                                         // absent: nothing happens
    EXPECT_EQ(stats_.delete_misses.Get(), misses);       // Drop counts no delete
    ASSERT_EQ(Set(k, "x", 0, 3), StoreResult::kStored);  // an overflow item in tiny, too
    e().Drop(k);
    EXPECT_EQ(Get(k), std::nullopt);
  }
  EXPECT_EQ(e().Totals().bytes, 0u);
}

// ---- incr / decr -----------------------------------------------------------

TEST_P(EngineTest, DeltaWrapsFloorsAndWritesDigits) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    Delta(k, true, 1, DeltaResult::kNotFound);
    Delta(k, false, 1, DeltaResult::kNotFound);
    ASSERT_EQ(Set(k, "100"), StoreResult::kStored);
    EXPECT_EQ(Delta(k, false, 95), "5");
    EXPECT_EQ(StoredNumber(k), 5u);  // memcached pads in place ("5  "); the number is what counts
    EXPECT_EQ(Delta(k, true, 995), "1000");
    EXPECT_EQ(StoredNumber(k), 1000u);
    EXPECT_EQ(Delta(k, false, 5000), "0");  // decr stops at 0
    EXPECT_EQ(Delta(k, false, 1), "0");
    EXPECT_EQ(Delta(k, true, 0), "0");
    ASSERT_EQ(Set(k, "18446744073709551615"), StoreResult::kStored);           // 2^64 - 1
    EXPECT_EQ(Delta(k, true, 2), "1");                                         // incr wraps at 2^64
    EXPECT_EQ(Delta(k, true, 18446744073709551614u), "18446744073709551615");  // 20 digits
    EXPECT_EQ(Get(k), "18446744073709551615");
    EXPECT_EQ(Delta(k, false, 18446744073709551615u), "0");
    ASSERT_EQ(Set(k, "7", 0, 42), StoreResult::kStored);
    EXPECT_EQ(Delta(k, true, 10), "17");
    uint32_t flags = 0;
    EXPECT_EQ(Get(k, &flags).value_or("").substr(0, 2), "17");
    EXPECT_EQ(flags, 42u);  // kept
    ASSERT_EQ(Set(k, "9"), StoreResult::kStored);
    EXPECT_EQ(Delta(k, true, 1), "10");  // one digit more
    EXPECT_EQ(Get(k), "10");
    EXPECT_EQ(Delta(k, true, 99999999999u), "100000000009");  // outgrows a slot
    EXPECT_EQ(Get(k), "100000000009");
    for (const char* bad : {"12abc", "", "-1", "abc", "99999999999999999999", "1.5"}) {
      ASSERT_EQ(Set(k, bad), StoreResult::kStored);
      Delta(k, true, 1, DeltaResult::kNonNumeric);
      Delta(k, false, 1, DeltaResult::kNonNumeric);
      EXPECT_EQ(Get(k), bad);  // unchanged
    }
    ASSERT_EQ(Set(k, " 12"), StoreResult::kStored);  // leading space: strtoull's rule
    EXPECT_EQ(Delta(k, true, 1), "13");
    ASSERT_EQ(Set(k, "5", 10), StoreResult::kStored);
    clock_.AdvanceForTest(10);
    Delta(k, true, 1, DeltaResult::kNotFound);  // expired
    clock_.SetForTest(kStart);
  }
}

// ---- expiry, crawler, flush ------------------------------------------------

TEST_P(EngineTest, ExpiryFollowsMemcachedsRules) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    clock_.SetForTest(kStart);
    ASSERT_EQ(Set(k, "rel", 5), StoreResult::kStored);
    clock_.AdvanceForTest(4);
    EXPECT_EQ(Get(k), "rel");
    clock_.AdvanceForTest(1);
    EXPECT_EQ(Get(k), std::nullopt);  // expires at now + 5
    EXPECT_EQ(Set(k, "v", 0, 0, StoreMode::kReplace), StoreResult::kNotStored);
    ASSERT_EQ(Set(k, "neg", -1), StoreResult::kStored);  // negative: already expired
    EXPECT_EQ(Get(k), std::nullopt);
    // Above 30 days: absolute Unix time.
    ASSERT_EQ(Set(k, "abs", clock_.UnixNow() + 20), StoreResult::kStored);
    clock_.AdvanceForTest(19);
    EXPECT_EQ(Get(k), "abs");
    clock_.AdvanceForTest(1);
    EXPECT_EQ(Get(k), std::nullopt);
    ASSERT_EQ(Set(k, "past", clock_.UnixNow() - 5), StoreResult::kStored);
    EXPECT_EQ(Get(k), std::nullopt);
    ASSERT_EQ(Set(k, "forever", 0), StoreResult::kStored);
    clock_.AdvanceForTest(365 * 24 * 3600);
    EXPECT_EQ(Get(k), "forever");
    EXPECT_TRUE(e().Delete(k, stats_));
  }
}

TEST_P(EngineTest, ReclaimDeadRemovesOnlyDeadItems) {
  Make();
  ASSERT_EQ(Set("dies", "x", 5), StoreResult::kStored);
  ASSERT_EQ(Set("dies2", "y", 5, 3), StoreResult::kStored);
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "live"), StoreResult::kStored);
  EXPECT_EQ(e().Totals().curr_items, 2 + std::size(kKeys));
  EXPECT_EQ(e().ReclaimDead(1000), 0u);
  clock_.AdvanceForTest(6);
  EXPECT_EQ(e().ReclaimDead(1000), 2u);
  EXPECT_EQ(e().ReclaimDead(1000), 0u);
  const StoreTotals t = e().Totals();
  EXPECT_EQ(t.curr_items, std::size(kKeys));
  EXPECT_EQ(t.reclaimed, 2u);
  EXPECT_EQ(t.expired_unfetched, 2u);  // never read
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "live");
}

TEST_P(EngineTest, FlushAllNowAndDelayed) {
  Make();
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "before"), StoreResult::kStored);
  e().FlushAll(0);
  // memcached's oldest_live: the flush's second (less one with CAS on, as
  // memcached marks the flush by a unique too).
  EXPECT_EQ(e().oldest_live(), cas_on() ? kStart - 1 : kStart);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), std::nullopt) << k;
  e().ReclaimDead(1000);
  EXPECT_EQ(e().Totals().curr_items, 0u);
  // Stored after the flush in the same second: survives.
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "after"), StoreResult::kStored);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "after") << k;
  e().FlushAll(10);
  EXPECT_EQ(e().oldest_live(), cas_on() ? kStart + 9 : kStart + 10);
  clock_.AdvanceForTest(9);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "after") << k;
  clock_.AdvanceForTest(1);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), std::nullopt) << k;
  clock_.AdvanceForTest(1);
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "later"), StoreResult::kStored);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "later") << k;
  // A delayed flush replaced by an immediate one: nothing flushes later.
  e().FlushAll(5);
  e().FlushAll(0);
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "kept"), StoreResult::kStored);
  clock_.AdvanceForTest(10);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "kept") << k;
}

// ---- meta commands ----------------------------------------------------------

TEST_P(EngineTest, MetaGetHitMissVivifyAndNoBump) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    int calls = 0;
    auto count = [&](const MetaItem&) {
      ++calls;
      return MetaChange{};
    };
    EXPECT_EQ(e().MetaGet(k, MetaGetOptions{}, stats_, count), MetaGetResult::kMiss);
    EXPECT_EQ(calls, 0);
    ASSERT_EQ(Set(k, "mv", 0, 77), StoreResult::kStored);
    const uint64_t cas = CasOf(k);
    ASSERT_TRUE(e().Delete(k, stats_));
    ASSERT_EQ(Set(k, "mv", 0, 77), StoreResult::kStored);
    const uint64_t cas_now = CasOf(k);
    std::string value;
    MetaItem seen;
    EXPECT_EQ(e().MetaGet(k, MetaGetOptions{}, stats_,
                          [&](const MetaItem& m) {
                            ++calls;
                            seen = m;
                            value = std::string(m.value);
                            return MetaChange{};
                          }),
              MetaGetResult::kHit);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(value, "mv");
    EXPECT_EQ(seen.flags, 77u);
    EXPECT_EQ(seen.cas, cas_now);
    if (cas_on()) {
      EXPECT_NE(seen.cas, cas);
    }
    EXPECT_EQ(seen.exptime, 0u);
    EXPECT_FALSE(seen.created);
    EXPECT_EQ(seen.state, 0);
    EXPECT_GT(seen.size, value.size());
    EXPECT_GT(seen.class_id, 0);  // flags 77: a slab item in every engine

    // No bump (u): what "fetched" shows does not change; a bumping get sets it.
    ASSERT_EQ(Set(k, "nb"), StoreResult::kStored);  // flags 0: inline in tiny
    MetaGetOptions nobump;
    nobump.bump = false;
    bool first = false, second = true;
    e().MetaGet(k, nobump, stats_, [&](const MetaItem& m) {
      first = m.fetched;
      return MetaChange{};
    });
    e().MetaGet(k, nobump, stats_, [&](const MetaItem& m) {
      second = m.fetched;
      return MetaChange{};
    });
    EXPECT_EQ(first, second);
    EXPECT_EQ(e().MetaGet(k, MetaGetOptions{}, stats_, count), MetaGetResult::kHit);
    std::optional<MetaItem> after = Peek(k);
    ASSERT_TRUE(after.has_value());
    EXPECT_TRUE(after->fetched);

    // debug (me): counts nothing.
    const uint64_t gets = stats_.get_cmds.Get(), misses = stats_.get_misses.Get();
    Peek(k);
    Peek("absent:key");
    EXPECT_EQ(stats_.get_cmds.Get(), gets);
    EXPECT_EQ(stats_.get_misses.Get(), misses);

    // The visitor's change is applied: an expiry (relative time).
    clock_.SetForTest(kStart);
    e().MetaGet(k, MetaGetOptions{}, stats_, [&](const MetaItem&) {
      MetaChange c;
      c.exptime = clock_.Now() + 5;
      return c;
    });
    std::optional<MetaItem> expiring = Peek(k);
    ASSERT_TRUE(expiring.has_value());
    EXPECT_EQ(expiring->exptime, kStart + 5);
    clock_.AdvanceForTest(5);
    EXPECT_EQ(Get(k), std::nullopt);
    clock_.SetForTest(kStart);

    // Vivify (N): an empty item is created on a miss, once.
    MetaGetOptions viv;
    viv.vivify = true;
    MetaItem born;
    EXPECT_EQ(e().MetaGet(k, viv, stats_,
                          [&](const MetaItem& m) {
                            born = m;
                            born.value = {};
                            EXPECT_TRUE(m.value.empty());
                            return MetaChange{};
                          }),
              MetaGetResult::kCreated);
    EXPECT_TRUE(born.created);
    EXPECT_EQ(born.state, 0);  // as it was before this command: nothing
    EXPECT_EQ(Get(k), "");
    EXPECT_EQ(e().MetaGet(k, viv, stats_,
                          [&](const MetaItem& m) {
                            EXPECT_FALSE(m.created);
                            // The creator won the recache.
                            EXPECT_NE(m.state & compact::kMetaWinSent, 0);
                            return MetaChange{};
                          }),
              MetaGetResult::kHit);
    ASSERT_TRUE(e().Delete(k, stats_));
  }
}

TEST_P(EngineTest, MetaStoreReportsCasAndInvalidates) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    uint64_t cas_out = 123;
    EXPECT_EQ(e().MetaStore(StoreMode::kReplace, k, 0, 0, "r", 0, {}, stats_, &cas_out),
              StoreResult::kNotStored);
    EXPECT_EQ(cas_out, 0u);
    EXPECT_EQ(e().MetaStore(StoreMode::kSet, k, 0, 0, "s1", 0, {}, stats_, &cas_out),
              StoreResult::kStored);
    EXPECT_EQ(cas_out, CasOf(k));
    EXPECT_EQ(cas_out != 0, cas_on());
    const uint64_t cas1 = cas_out;
    cas_out = 123;
    EXPECT_EQ(e().MetaStore(StoreMode::kAdd, k, 0, 0, "a", 0, {}, stats_, &cas_out),
              StoreResult::kNotStored);
    EXPECT_EQ(cas_out, 0u);
    EXPECT_EQ(e().MetaStore(StoreMode::kSet, k, 5, 0, "s2", 0, {}, stats_, nullptr),
              StoreResult::kStored);  // cas_out may be null
    EXPECT_EQ(Get(k), "s2");
    const uint64_t cas2 = CasOf(k);
    if (!cas_on()) {
      // No uniques: no cas matches, and invalidate (which needs an older unique) never applies.
      MetaStoreOptions inv;
      inv.invalidate = true;
      EXPECT_EQ(e().MetaStore(StoreMode::kCas, k, 0, 0, "x", 0, inv, stats_, &cas_out),
                StoreResult::kExists);
      EXPECT_EQ(e().MetaStore(StoreMode::kAppend, k, 0, 0, "+", 0, {}, stats_, &cas_out),
                StoreResult::kStored);
      EXPECT_EQ(Get(k), "s2+");
      EXPECT_TRUE(e().Delete(k, stats_));
      continue;
    }
    EXPECT_GT(cas2, cas1);
    // A meta append names the CAS it expects (0: any).
    EXPECT_EQ(e().MetaStore(StoreMode::kAppend, k, 0, 0, "+", cas1, {}, stats_, &cas_out),
              StoreResult::kExists);
    EXPECT_EQ(cas_out, 0u);
    EXPECT_EQ(e().MetaStore(StoreMode::kPrepend, k, 0, 0, "-", cas2, {}, stats_, &cas_out),
              StoreResult::kStored);
    EXPECT_GT(cas_out, cas2);
    EXPECT_EQ(e().MetaStore(StoreMode::kAppend, k, 0, 0, "+", 0, {}, stats_, &cas_out),
              StoreResult::kStored);
    const uint64_t cas3 = cas_out;
    EXPECT_EQ(Get(k), "-s2+");
    // kCas with an older unique: refused, unless invalidating (stored, stale).
    EXPECT_EQ(e().MetaStore(StoreMode::kCas, k, 0, 0, "old", cas1, {}, stats_, &cas_out),
              StoreResult::kExists);
    MetaStoreOptions inv;
    inv.invalidate = true;
    // A newer unique than the item's is not "older": refused even so.
    EXPECT_EQ(e().MetaStore(StoreMode::kCas, k, 0, 0, "new", cas3 + 1000, inv, stats_, &cas_out),
              StoreResult::kExists);
    EXPECT_EQ(e().MetaStore(StoreMode::kCas, k, 0, 0, "stale", cas1, inv, stats_, &cas_out),
              StoreResult::kStored);
    EXPECT_NE(cas_out, 0u);
    EXPECT_EQ(Get(k), "stale");
    std::optional<MetaItem> m = Peek(k);
    ASSERT_TRUE(m.has_value());
    EXPECT_NE(m->state & compact::kMetaStale, 0);
    // The matching unique stores plainly, no longer stale.
    EXPECT_EQ(e().MetaStore(StoreMode::kCas, k, 0, 0, "fresh", cas_out, {}, stats_, &cas_out),
              StoreResult::kStored);
    m = Peek(k);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->state & compact::kMetaStale, 0);
    EXPECT_TRUE(e().Delete(k, stats_));
  }
}

TEST_P(EngineTest, MetaDeleteChecksCasAndInvalidates) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    EXPECT_EQ(e().MetaDelete(k, {}, stats_), MetaDeleteResult::kNotFound);
    ASSERT_EQ(Set(k, "md"), StoreResult::kStored);
    const uint64_t cas = CasOf(k);
    MetaDeleteOptions wrong;
    wrong.cas = cas + 1;
    EXPECT_EQ(e().MetaDelete(k, wrong, stats_), MetaDeleteResult::kExists);
    EXPECT_EQ(Get(k), "md");
    // Invalidate (I): kept, marked stale, a new unique, and an expiry given with T.
    MetaDeleteOptions inv;
    inv.invalidate = true;
    inv.exptime = clock_.Now() + 30;
    EXPECT_EQ(e().MetaDelete(k, inv, stats_), MetaDeleteResult::kDeleted);
    std::string value;
    std::optional<MetaItem> m = Peek(k, &value);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(value, "md");
    EXPECT_NE(m->state & compact::kMetaStale, 0);
    EXPECT_EQ(m->exptime, clock_.Now() + 30);
    if (cas_on()) {
      EXPECT_NE(m->cas, cas);
    } else {
      EXPECT_EQ(m->cas, 0u);
    }
    MetaDeleteOptions right;
    right.cas = m->cas;
    if (cas_on()) {
      EXPECT_EQ(e().MetaDelete(k, right, stats_), MetaDeleteResult::kDeleted);
    } else {
      EXPECT_EQ(e().MetaDelete(k, {}, stats_), MetaDeleteResult::kDeleted);
    }
    EXPECT_EQ(Get(k), std::nullopt);
    EXPECT_EQ(e().MetaDelete(k, right, stats_), MetaDeleteResult::kNotFound);
  }
}

TEST_P(EngineTest, MetaDeltaVivifiesAndChecksCas) {
  Make();
  for (const std::string k : kKeys) {
    SCOPED_TRACE(k);
    char out[Engine::kDeltaMaxLength];
    size_t n = 0;
    int calls = 0;
    MetaItem seen;
    std::string value;
    auto look = [&](const MetaItem& m) {
      ++calls;
      seen = m;
      value = std::string(m.value);
      seen.value = {};
      return MetaChange{};
    };
    EXPECT_EQ(e().MetaDelta(k, true, 1, {}, stats_, out, &n, look), DeltaResult::kNotFound);
    EXPECT_EQ(calls, 0);
    MetaDeltaOptions viv;
    viv.vivify = true;
    viv.initial = 40;
    EXPECT_EQ(e().MetaDelta(k, true, 1, viv, stats_, out, &n, look), DeltaResult::kOk);
    EXPECT_EQ(std::string(out, n), "40");  // created with J, the delta not applied
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(seen.created);
    EXPECT_EQ(value, "40");
    EXPECT_EQ(Get(k), "40");
    EXPECT_EQ(e().MetaDelta(k, true, 2, viv, stats_, out, &n, look), DeltaResult::kOk);
    EXPECT_EQ(std::string(out, n), "42");
    EXPECT_FALSE(seen.created);
    uint64_t shown = 0;
    EXPECT_TRUE(ParseStoredNumber(value, &shown)) << value;
    EXPECT_EQ(shown, 42u);  // the visitor sees the item after the change
    const uint64_t cas = CasOf(k);
    MetaDeltaOptions c;
    c.cas = cas + 7;
    calls = 0;
    EXPECT_EQ(e().MetaDelta(k, false, 1, c, stats_, out, &n, look), DeltaResult::kExists);
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(StoredNumber(k), 42u);
    c.cas = 0;  // C0 matches anything (memcached)
    EXPECT_EQ(e().MetaDelta(k, false, 2, c, stats_, out, &n, look), DeltaResult::kOk);
    EXPECT_EQ(std::string(out, n), "40");
    if (cas_on()) {
      c.cas = CasOf(k);
      EXPECT_EQ(e().MetaDelta(k, true, 1, c, stats_, out, &n, look), DeltaResult::kOk);
      EXPECT_EQ(std::string(out, n), "41");
      EXPECT_EQ(seen.cas, CasOf(k));
      EXPECT_NE(seen.cas, *c.cas);  // changed: a new unique
    }
    // The visitor's change is applied to the item after the delta.
    clock_.SetForTest(kStart);
    EXPECT_EQ(e().MetaDelta(k, true, 1, {}, stats_, out, &n,
                            [&](const MetaItem&) {
                              MetaChange ch;
                              ch.exptime = clock_.Now() + 3;
                              return ch;
                            }),
              DeltaResult::kOk);
    clock_.AdvanceForTest(3);
    EXPECT_EQ(Get(k), std::nullopt);
    clock_.SetForTest(kStart);
    ASSERT_EQ(Set(k, "nan"), StoreResult::kStored);
    EXPECT_EQ(e().MetaDelta(k, true, 1, viv, stats_, out, &n, look), DeltaResult::kNonNumeric);
    EXPECT_TRUE(e().Delete(k, stats_));
  }
}

// ---- page moves and automove -------------------------------------------------

TEST_P(EngineTest, ReassignAnswersLikeMemcached) {
  StoreOptions o = Options(8);
  o.automove = Automove::kOff;
  Make(o);
  const int n = static_cast<int>(e().layout_report().classes.size());
  ASSERT_GE(n, 2);
  EXPECT_EQ(e().Reassign(1, 1), ReassignResult::kSame);
  EXPECT_EQ(e().Reassign(1, n + 1), ReassignResult::kBadClass);
  EXPECT_EQ(e().Reassign(n + 1, 1), ReassignResult::kBadClass);
  EXPECT_EQ(e().Reassign(-2, 1), ReassignResult::kBadClass);
  EXPECT_EQ(e().Reassign(-1, 2), ReassignResult::kBadClass);  // no class has a spare page
  EXPECT_EQ(e().Reassign(1, 2), ReassignResult::kNoSpare);    // class 1 owns nothing
  // Fill one class with a few pages (text keys of one length and size).
  auto pages_of = [&](int cls) -> size_t {
    for (const ClassSnapshot& c : e().SnapshotClasses()) {
      if (c.id == cls) return c.pages;
    }
    return 0;
  };
  int keys = 0;
  while (keys < 200000 && (keys % 512 != 0 || pages_of(FullestClass()) < 3)) {
    char k[16];
    std::snprintf(k, sizeof(k), "r%07d", keys++);
    ASSERT_EQ(Set(k, ValueFor(k, 0, 40)), StoreResult::kStored);
  }
  ASSERT_GE(pages_of(FullestClass()), 3u);
  const int cls = FullestClass();
  ASSERT_GT(cls, 0);
  const int dst = cls == n ? 1 : cls + 1;
  const uint64_t moved = e().mover_stats().slabs_moved;
  EXPECT_EQ(e().Reassign(cls, dst), ReassignResult::kOk);
  // Without StartMaintenance() the move is done before Reassign() returns.
  EXPECT_EQ(e().mover_stats().slabs_moved, moved + 1);
  EXPECT_FALSE(e().mover_stats().running);
  EXPECT_EQ(pages_of(dst), 1u);
  // Every item either kept its value or was evicted; none is wrong.
  int found = 0;
  for (int i = 0; i < keys; ++i) {
    char k[16];
    std::snprintf(k, sizeof(k), "r%07d", i);
    if (std::optional<std::string> v = Get(k)) {
      ++found;
      EXPECT_EQ(*v, ValueFor(k, 0, 40));
    }
  }
  EXPECT_GT(found, 0);
  EXPECT_EQ(static_cast<uint64_t>(found), e().Totals().curr_items);
}

TEST_P(EngineTest, AutomoveSettingsRoundTrip) {
  Make();
  EXPECT_EQ(e().automove(), e().options().automove);
  EXPECT_DOUBLE_EQ(e().automove_ratio(), e().options().automove_ratio);
  for (const Automove a : {Automove::kOff, Automove::kAggressive, Automove::kBalance}) {
    e().SetAutomove(a);
    EXPECT_EQ(e().automove(), a);
  }
  for (const double r : {0.0, 0.5, 0.95}) {
    e().SetAutomoveRatio(r);
    EXPECT_DOUBLE_EQ(e().automove_ratio(), r);
  }
  const MoverStats m = e().mover_stats();
  EXPECT_EQ(m.slabs_moved, 0u);
  EXPECT_FALSE(m.running);
}

// ---- reporting ---------------------------------------------------------------

TEST_P(EngineTest, TotalsCountItemsAndResetStatsKeepsCurrentOnes) {
  Make();
  StoreTotals t = e().Totals();
  EXPECT_EQ(t.curr_items, 0u);
  EXPECT_EQ(t.total_items, 0u);
  EXPECT_EQ(t.bytes, 0u);
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "1"), StoreResult::kStored);
  t = e().Totals();
  EXPECT_EQ(t.curr_items, std::size(kKeys));
  EXPECT_EQ(t.total_items, std::size(kKeys));
  EXPECT_GT(t.bytes, 0u);
  const uint64_t bytes3 = t.bytes;
  ASSERT_EQ(Set(kKeys[0], "2"), StoreResult::kStored);                    // an overwrite
  ASSERT_EQ(Set(kKeys[1], std::string(300, 'w')), StoreResult::kStored);  // grows
  t = e().Totals();
  EXPECT_EQ(t.curr_items, std::size(kKeys));
  EXPECT_EQ(t.total_items, std::size(kKeys) + 2);
  EXPECT_GT(t.bytes, bytes3);
  EXPECT_TRUE(e().Delete(kKeys[1], stats_));
  t = e().Totals();
  EXPECT_EQ(t.curr_items, std::size(kKeys) - 1);
  EXPECT_EQ(t.total_items, std::size(kKeys) + 2);
  EXPECT_LT(t.bytes, bytes3);
  EXPECT_GT(t.malloced, 0u);
  EXPECT_EQ(t.evictions, 0u);
  e().ResetStats();
  t = e().Totals();
  EXPECT_EQ(t.total_items, 0u);
  EXPECT_EQ(t.curr_items, std::size(kKeys) - 1);  // items are not stats
  EXPECT_GT(t.bytes, 0u);
  ASSERT_EQ(Set("one-more", "x"), StoreResult::kStored);
  EXPECT_EQ(e().Totals().total_items, 1u);
}

TEST_P(EngineTest, LayoutReportDescribesTheSlabTable) {
  Make();
  const LayoutReport r = e().layout_report();
  ASSERT_FALSE(r.classes.empty());
  EXPECT_LE(r.classes.size(), static_cast<size_t>(e().options().slabs.max_classes));
  EXPECT_GT(r.header_bytes, 0u);
  EXPECT_GT(r.ref_bytes, 0u);
  EXPECT_EQ(r.page_size, e().options().slabs.page_size);
  EXPECT_GT(r.chunk_max, 0u);
  EXPECT_LE(r.chunk_max, r.page_size);
  size_t prev = 0;
  for (size_t i = 0; i < r.classes.size(); ++i) {
    SCOPED_TRACE(i + 1);
    EXPECT_GT(r.classes[i].chunk_size, prev);  // increasing
    EXPECT_EQ(r.classes[i].chunk_size % e().options().slabs.align, 0u);
    EXPECT_LE(r.classes[i].chunk_size, r.chunk_max);
    EXPECT_GE(r.classes[i].per_page, 1u);
    EXPECT_LE(r.classes[i].per_page * r.classes[i].chunk_size, r.page_size);
    prev = r.classes[i].chunk_size;
  }
  EXPECT_EQ(r.classes.back().chunk_size, r.chunk_max);  // the last class is slab_chunk_max
  EXPECT_GE(r.classes.front().chunk_size, r.header_bytes);
  if (GetParam().compact) {  // -f 1.05, up to 255 classes
    EXPECT_GT(r.classes.size(), 63u);
  }
}

TEST_P(EngineTest, SnapshotClassesMatchTheItemsStored) {
  Make();
  const LayoutReport layout = e().layout_report();
  for (const ClassSnapshot& c : e().SnapshotClasses()) EXPECT_EQ(c.items, 0u) << c.id;
  constexpr int kItems = 500;
  for (int i = 0; i < kItems; ++i) {
    char k[16];
    std::snprintf(k, sizeof(k), "s%05d", i);
    ASSERT_EQ(Set(k, std::string(100, 'v')), StoreResult::kStored);
  }
  const std::vector<ClassSnapshot> snap = e().SnapshotClasses();
  ASSERT_FALSE(snap.empty());
  size_t items = 0;
  uint64_t bytes = 0;
  int prev_id = 0;
  for (const ClassSnapshot& c : snap) {
    SCOPED_TRACE(c.id);
    ASSERT_GE(c.id, 1);
    ASSERT_LE(static_cast<size_t>(c.id), layout.classes.size());
    EXPECT_GT(c.id, prev_id);
    prev_id = c.id;
    EXPECT_EQ(c.chunk_size, layout.classes[c.id - 1].chunk_size);
    EXPECT_EQ(c.per_page, layout.classes[c.id - 1].per_page);
    EXPECT_GE(c.pages * c.per_page, c.items + c.free_chunks);
    items += c.items;
    bytes += c.bytes;
  }
  EXPECT_EQ(items, static_cast<size_t>(kItems));
  EXPECT_EQ(bytes, e().Totals().bytes);
  // All of one size: one class holds them.
  const int cls = FullestClass();
  for (const ClassSnapshot& c : snap) {
    if (c.id == cls) {
      EXPECT_EQ(c.items, static_cast<size_t>(kItems));
      EXPECT_GE(c.chunk_size, 100u);
    }
  }
}

TEST_P(EngineTest, VisitItemsListsLiveItemsWithDecodedKeys) {
  Make();
  std::set<std::string> want;
  for (int i = 0; i < 20; ++i) {
    char k[16];
    std::snprintf(k, sizeof(k), "v%05d", i);
    ASSERT_EQ(Set(k, "visit-me", 0, 1), StoreResult::kStored);
    want.insert(k);
  }
  ASSERT_EQ(Set("v99999", "visit-me", 2, 1), StoreResult::kStored);  // expires
  // Numeric keys: the tiny engine with CAS off keeps these inline (class 0).
  std::set<std::string> numeric;
  for (const char* k : {"1", "22", "333", "18446744073709551615"}) {
    ASSERT_EQ(Set(k, "7"), StoreResult::kStored);
    numeric.insert(k);
  }
  clock_.AdvanceForTest(3);
  // The class the text items went to (all of one size: one class).
  int cls = 0;
  for (const ClassSnapshot& c : e().SnapshotClasses()) {
    e().VisitItems(c.id, 1000, [&](const ItemInfo& i) {
      if (i.key == "v00000") cls = c.id;
    });
  }
  ASSERT_GT(cls, 0);
  std::set<std::string> got;
  const size_t n = e().VisitItems(cls, 1000, [&](const ItemInfo& i) {
    got.emplace(i.key);
    EXPECT_EQ(i.cls, cls);
    EXPECT_EQ(i.value_bytes, i.key[0] == 'v' ? 8u : 1u) << i.key;
    EXPECT_GT(i.total_bytes, i.value_bytes);
    EXPECT_EQ(i.exptime, 0u);
    EXPECT_EQ(i.cas != 0, cas_on());
  });
  // The visited class may also hold the numeric items (in a slab engine).
  std::set<std::string> text;
  for (const std::string& k : got) {
    if (k[0] == 'v') text.insert(k);
  }
  EXPECT_EQ(text, want);  // the expired one is not listed
  EXPECT_EQ(n, got.size());
  EXPECT_EQ(e().VisitItems(cls, 3, [](const ItemInfo&) {}), 3u);
  EXPECT_EQ(e().VisitItems(cls, 0, [](const ItemInfo&) {}), 0u);
  EXPECT_EQ(e().VisitItems(static_cast<int>(e().layout_report().classes.size()) + 1, 100,
                           [](const ItemInfo&) {}),
            0u);
  EXPECT_EQ(e().VisitItems(-1, 100, [](const ItemInfo&) {}), 0u);

  // Class 0: the tiny engine's inline items; none in a slab engine.
  std::set<std::string> inline_keys;
  const size_t n0 = e().VisitItems(0, 1000, [&](const ItemInfo& i) {
    inline_keys.emplace(i.key);
    EXPECT_EQ(i.cls, 0);
    EXPECT_EQ(i.value_bytes, 1u);
    EXPECT_EQ(i.exptime, 0u);  // inline items never expire
    EXPECT_EQ(i.cas, 0u);
  });
  EXPECT_EQ(n0, inline_keys.size());
  EXPECT_EQ(n0, e().engine_stats().inline_items);
  if (tiny() && !cas_on()) {
    EXPECT_EQ(inline_keys, numeric);
    EXPECT_EQ(e().VisitItems(0, 2, [](const ItemInfo&) {}), 2u);
  } else {
    EXPECT_EQ(n0, 0u);  // no inline items: slab engines, and tiny with CAS on
  }
  // Every item is in exactly one class.
  size_t all = n0;
  for (const ClassSnapshot& c : e().SnapshotClasses()) {
    all += e().VisitItems(c.id, 100000, [](const ItemInfo&) {});
  }
  EXPECT_EQ(all, want.size() + numeric.size());
}

// ---- memory -------------------------------------------------------------------

TEST_P(EngineTest, MemoryLimitMovesAtRunTime) {
  Make(Options(8));
  EXPECT_EQ(e().memory_limit(), size_t{8} << 20);
  e().SetMemoryLimit(size_t{3} << 20);
  EXPECT_EQ(e().memory_limit(), size_t{3} << 20);
  const std::string value(1000, 'v');
  for (int i = 0; i < 8000; ++i) {
    ASSERT_EQ(Set("m" + std::to_string(i), value), StoreResult::kStored) << i;
  }
  EXPECT_GT(e().Totals().evictions, 0u);
  EXPECT_LE(e().Totals().malloced, (size_t{3} << 20) + e().layout_report().page_size);
  e().SetMemoryLimit(size_t{8} << 20);
  EXPECT_EQ(e().memory_limit(), size_t{8} << 20);
  const uint64_t evicted = e().Totals().evictions;
  for (int i = 0; i < 2000; ++i)
    ASSERT_EQ(Set("n" + std::to_string(i), value), StoreResult::kStored);
  EXPECT_EQ(e().Totals().evictions, evicted);  // room again
  // Raising past the arena reserved at start: reported, adds no room.
  e().SetMemoryLimit(size_t{64} << 20);
  EXPECT_EQ(e().memory_limit(), size_t{64} << 20);
}

TEST_P(EngineTest, EvictionNeverRefusesAStore) {
  Make(Options(2));
  const size_t limit = e().memory_limit();
  // Inline-sized items (inline in the tiny engine with CAS off): far more than fit.
  for (int i = 0; i < 300000; ++i) {
    ASSERT_EQ(Set(std::to_string(1000000 + i), "1"), StoreResult::kStored) << i;
  }
  EXPECT_EQ(Get("1299999"), "1");
  EXPECT_GT(e().Totals().evictions, 0u);
  if (tiny() && !cas_on()) {
    EXPECT_GT(e().engine_stats().inline_evictions, 0u);
  } else {
    EXPECT_EQ(e().engine_stats().inline_evictions, 0u);
  }
  // Slab items of several sizes, several times the limit.
  int stored = 300000;
  for (int round = 0; round < 3; ++round) {
    for (const size_t size : {size_t{50}, size_t{1000}, size_t{20000}, size_t{300} << 10}) {
      const int count = static_cast<int>(std::min<size_t>(3000, (2 * limit) / size));
      for (int i = 0; i < count; ++i) {
        const std::string k = "e" + std::to_string(size) + ":" + std::to_string(i);
        ASSERT_EQ(Set(k, ValueFor(k, round, size)), StoreResult::kStored) << k;
        ++stored;
      }
      // The one just stored is there and right.
      const std::string last = "e" + std::to_string(size) + ":" + std::to_string(count - 1);
      EXPECT_EQ(Get(last), ValueFor(last, round, size));
    }
  }
  const StoreTotals t = e().Totals();
  EXPECT_GT(t.evictions, 0u);
  EXPECT_LT(t.curr_items, static_cast<uint64_t>(stored));
  // Items and the engine's own tables within -m (the slab engine's hash
  // index is memcached's, outside -m: StoreOptions::index_in_limit).
  EXPECT_LE(t.malloced, limit);
}

TEST_P(EngineTest, WithoutEvictionAFullStoreRefusesWithNoMemory) {
  StoreOptions o = Options(2);
  o.evict = false;
  Make(o);
  ASSERT_FALSE(e().options().evict);
  const std::string value(1000, 'f');
  int stored = 0;
  StoreResult r = StoreResult::kStored;
  for (; stored < 10000; ++stored) {
    r = Set("f" + std::to_string(stored), value);
    if (r != StoreResult::kStored) break;
  }
  EXPECT_EQ(r, StoreResult::kNoMemory);
  EXPECT_GT(stored, 100);
  EXPECT_EQ(stats_.store_no_memory.Get(), 1u);  // counted in `stats`
  EXPECT_EQ(e().Totals().evictions, 0u);
  EXPECT_EQ(e().Totals().curr_items, static_cast<uint64_t>(stored));
  EXPECT_EQ(Get("f0"), value);  // nothing was evicted
  // A failed set drops the key's old value rather than leave it stale...
  EXPECT_EQ(Set("f0", std::string(1000, 'g')), StoreResult::kNoMemory);
  EXPECT_EQ(Get("f0"), std::nullopt);
  EXPECT_EQ(stats_.store_no_memory.Get(), 2u);
  // ...which frees its memory for the next store of that size.
  EXPECT_EQ(Set("f0", std::string(1000, 'h')), StoreResult::kStored);
  EXPECT_EQ(Get("f0"), std::string(1000, 'h'));
  EXPECT_LE(e().Totals().malloced, e().memory_limit());
}

// An incr whose result no longer fits the item's chunk needs a new item,
// maybe of a class that owns no page yet. With evictions on, engine.h
// promises that only an item that can never fit is refused for memory.
TEST_P(EngineTest, DeltaThatGrowsIsNotRefusedWhileEvicting) {
  // 4 pages of 1 MB: in tiny one holds the slot table, and the page that
  // the counter lives on is never the one emptied for it.
  Make(Options(4));
  ASSERT_TRUE(e().options().evict);
  // Every page of the limit given to one class...
  for (int i = 0; i < 20000 && e().Totals().evictions == 0; ++i) {
    ASSERT_EQ(Set("fill:" + std::to_string(i), std::string(1000, 'f')), StoreResult::kStored);
  }
  ASSERT_GT(e().Totals().evictions, 0u);
  // ...then a small counter, for which the store makes room.
  ASSERT_EQ(Set("ctr", "1"), StoreResult::kStored);
  // 1 -> 20 digits; the store path would make room the same way.
  char out[Engine::kDeltaMaxLength];
  size_t n = 0;
  ASSERT_EQ(e().Delta("ctr", true, 9999999999999999999u, stats_, out, &n), DeltaResult::kOk);
  EXPECT_EQ(std::string(out, n), "10000000000000000000");
  EXPECT_EQ(Get("ctr"), "10000000000000000000");
}

// ---- threads -------------------------------------------------------------------

// Several threads through one Engine&: their own keys, shared keys, shared
// counters and one shared append. Each check below holds for every
// interleaving.
TEST_P(EngineTest, ConcurrentOperationsStayAtomicPerKey) {
  // Room for a page in every slab class (up to 255 of 1 MB): the appended
  // log passes through many classes, and this test is about atomicity, not
  // about memory (DeltaThatGrowsIsNotRefusedWhileEvicting is).
  Make(Options(320));
  constexpr int kThreads = 4;
  constexpr int kOps = 2000;
  constexpr int kShared = 8;
  const std::vector<std::string> counters = {"ctr:text", "5150"};  // 5150: inline in tiny
  for (const std::string& c : counters) ASSERT_EQ(Set(c, "0"), StoreResult::kStored);
  ASSERT_EQ(Set("log", ""), StoreResult::kStored);
  for (int i = 0; i < kShared; ++i) {
    const std::string k = "shared:" + std::to_string(i);
    ASSERT_EQ(Set(k, ValueFor(k, 0, 0)), StoreResult::kStored);
  }

  std::atomic<int> bad_values{0}, bad_results{0}, misses{0}, first_bad_delta{-1};
  std::vector<std::vector<uint64_t>> counts(kThreads * counters.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ThreadStats stats;  // each thread its own (the contract)
      char out[Engine::kDeltaMaxLength];
      size_t n = 0;
      auto check = [&](const std::string& key, std::string_view v) {
        // key/version/pad/key, the pad's length and letter following the version.
        const size_t a = v.find('/');
        const size_t b = a == std::string_view::npos ? a : v.find('/', a + 1);
        if (a != key.size() || b == std::string_view::npos || v.substr(0, a) != key || b == a + 1 ||
            b - a - 1 > 19 ||
            v.substr(a + 1, b - a - 1).find_first_not_of("0123456789") != std::string_view::npos) {
          bad_values.fetch_add(1);
          return;
        }
        const uint64_t version = std::stoull(std::string(v.substr(a + 1, b - a - 1)));
        if (v != ValueFor(key, version, version % 97)) bad_values.fetch_add(1);
      };
      for (int i = 0; i < kOps; ++i) {
        const uint64_t version = static_cast<uint64_t>(t) * kOps + i;
        // Own key: what this thread stored last is what it reads.
        const std::string own = "own" + std::to_string(t) + ":" + std::to_string(i % 16);
        const std::string own_value = ValueFor(own, version, version % 97);
        if (engine_->Store(StoreMode::kSet, own, 0, 0, own_value, 0, stats) !=
            StoreResult::kStored) {
          bad_results.fetch_add(1);
        }
        bool hit = engine_->Get(own, std::nullopt, stats, [&](const ItemView& v) {
          if (v.value != own_value) bad_values.fetch_add(1);
        });
        if (!hit) misses.fetch_add(1);
        // Shared keys: any thread's whole value, never a mix.
        const std::string shared = "shared:" + std::to_string(i % kShared);
        if (engine_->Store(StoreMode::kSet, shared, 0, 0, ValueFor(shared, version, version % 97),
                           0, stats) != StoreResult::kStored) {
          bad_results.fetch_add(1);
        }
        const std::string peer = "shared:" + std::to_string((i + t) % kShared);
        hit = engine_->Get(peer, std::nullopt, stats,
                           [&](const ItemView& v) { check(peer, v.value); });
        if (!hit) misses.fetch_add(1);
        // Counters: every increment counted once.
        for (size_t c = 0; c < counters.size(); ++c) {
          const DeltaResult r = engine_->Delta(counters[c], true, 1, stats, out, &n);
          if (r != DeltaResult::kOk) {
            int none = -1;
            first_bad_delta.compare_exchange_strong(none, static_cast<int>(r));
            bad_results.fetch_add(1);
          } else {
            counts[t * counters.size() + c].push_back(std::stoull(std::string(out, n)));
          }
        }
        if (i % 4 == 0) {
          const std::string token = "<" + std::to_string(t) + ">";
          if (engine_->Store(StoreMode::kAppend, "log", 0, 0, token, 0, stats) !=
              StoreResult::kStored) {
            bad_results.fetch_add(1);
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();

  EXPECT_EQ(bad_values.load(), 0);
  EXPECT_EQ(bad_results.load(), 0) << "first failed Delta: DeltaResult " << first_bad_delta.load();
  EXPECT_EQ(misses.load(), 0);
  for (size_t c = 0; c < counters.size(); ++c) {
    SCOPED_TRACE(counters[c]);
    EXPECT_EQ(StoredNumber(counters[c]), uint64_t{kThreads} * kOps);
    // The results seen are exactly 1..N, each once, and rise within a thread.
    std::vector<uint64_t> all;
    for (int t = 0; t < kThreads; ++t) {
      const std::vector<uint64_t>& mine = counts[t * counters.size() + c];
      EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
      all.insert(all.end(), mine.begin(), mine.end());
    }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), static_cast<size_t>(kThreads) * kOps);
    for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
  }
  // The append log: every token whole, each thread's kOps / 4 of them.
  const std::optional<std::string> log = Get("log");
  ASSERT_TRUE(log.has_value());
  std::vector<int> tokens(kThreads, 0);
  size_t pos = 0;
  while (pos < log->size()) {
    ASSERT_EQ((*log)[pos], '<') << pos;
    const size_t end = log->find('>', pos);
    ASSERT_NE(end, std::string::npos);
    const int t = std::stoi(log->substr(pos + 1, end - pos - 1));
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    ++tokens[t];
    pos = end + 1;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(tokens[t], kOps / 4) << t;
  // Own keys end as their thread left them.
  for (int t = 0; t < kThreads; ++t) {
    for (int j = 0; j < 16; ++j) {
      const int last = kOps - 16 + j;
      const std::string own = "own" + std::to_string(t) + ":" + std::to_string(last % 16);
      const uint64_t version = static_cast<uint64_t>(t) * kOps + last;
      EXPECT_EQ(Get(own), ValueFor(own, version, version % 97));
    }
  }
  EXPECT_EQ(e().Totals().curr_items, counters.size() + 1 + kShared + kThreads * 16u);
}

INSTANTIATE_TEST_SUITE_P(Engines, EngineTest, ::testing::ValuesIn(kCases), CaseName);

}  // namespace
}  // namespace tinycached::core
