// tests/core/engine_test.cc — the conformance suite of core/engine.h: every
// contract stated on Engine, run through the Engine interface alone (no cast
// to a concrete store) on each engine kind and on the slab layouts at both
// ends of the preset ladder. Here the keyed commands; page moves, reporting,
// memory and threads in engine_upkeep_test.cc; the fixture in
// engine_test_util.h.
//
// Where engines may legitimately differ the test branches on what the
// interface reports (kind(), options()) and says why.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/engine_test_util.h"

namespace tinycached::core::engine_test {
namespace {

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
  // Freed at the LRU tails, as memcached's LRU maintainer counts them; the
  // crawler's counters are a crawl's (StartCrawl).
  EXPECT_EQ(t.reclaimed, 2u);
  EXPECT_EQ(t.crawler_reclaimed, 0u);
  EXPECT_EQ(t.crawler_items_checked, 0u);
  EXPECT_EQ(t.expired_unfetched, 2u);  // never read
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "live");
}

TEST_P(EngineTest, StartCrawlFreesTheDeadItemsOfEveryClassAskedFor) {
  Make();
  ASSERT_EQ(Set("dies", "x", 5), StoreResult::kStored);
  ASSERT_EQ(Set("dies2", std::string(3000, 'y'), 5), StoreResult::kStored);
  for (const std::string k : kKeys) ASSERT_EQ(Set(k, "live"), StoreResult::kStored);
  clock_.AdvanceForTest(6);
  std::vector<int> all = {0};  // the tiny engine's inline items: passed over
  for (size_t i = 1; i <= e().layout_report().classes.size(); ++i) {
    all.push_back(static_cast<int>(i));
  }
  // Without StartMaintenance() the crawl is done before StartCrawl() returns.
  EXPECT_EQ(e().StartCrawl(all), CrawlStart::kStarted);
  EXPECT_FALSE(e().engine_stats().crawl_running);
  const StoreTotals t = e().Totals();
  EXPECT_EQ(t.curr_items, std::size(kKeys));
  EXPECT_EQ(t.crawler_reclaimed, 2u);
  EXPECT_EQ(t.reclaimed, 0u);
  EXPECT_GE(t.crawler_items_checked, 2u);
  for (const std::string k : kKeys) EXPECT_EQ(Get(k), "live");
  uint64_t per_class = 0;
  for (const ClassSnapshot& c : e().SnapshotClasses()) per_class += c.crawler_reclaimed;
  EXPECT_EQ(per_class, 2u);
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

INSTANTIATE_TEST_SUITE_P(Engines, EngineTest, ::testing::ValuesIn(kCases), CaseName);

}  // namespace
}  // namespace tinycached::core::engine_test
