#include "core/item_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace tinycached::core {
namespace {

using ItemStoreTest = StoreTest;

TEST_P(ItemStoreTest, SetGetOverwriteDelete) {
  Make();
  EXPECT_EQ(Set("k", "v1", 0, 7), StoreResult::kStored);
  uint32_t flags = 0;
  EXPECT_EQ(Get("k", &flags), "v1");
  EXPECT_EQ(flags, 7u);
  EXPECT_EQ(Set("k", std::string(5000, 'z')), StoreResult::kStored);  // moves class
  EXPECT_EQ(Get("k"), std::string(5000, 'z'));
  EXPECT_EQ(store_->Totals().curr_items, 1u);
  EXPECT_TRUE(store_->Delete("k", stats_));
  EXPECT_FALSE(store_->Delete("k", stats_));
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(store_->Totals().curr_items, 0u);
  EXPECT_EQ(store_->Totals().bytes, 0u);
}

TEST_P(ItemStoreTest, BytesCountsMemcachedItemSizes) {
  if (!stock()) GTEST_SKIP() << "memcached's sizes are the stock layout's";
  Make();
  Set("a", "x");
  EXPECT_EQ(store_->Totals().bytes, 61u);  // memcached 1.6.18 reports 61 for a/x
  Set("b", "x", 0, 1);
  EXPECT_EQ(store_->Totals().bytes, 61u + 65u);
}

TEST_P(ItemStoreTest, AddReplaceAppendPrepend) {
  Make();
  EXPECT_EQ(Set("k", "mid", 0, 0, StoreMode::kReplace), StoreResult::kNotStored);
  EXPECT_EQ(Set("k", "mid", 0, 3, StoreMode::kAdd), StoreResult::kStored);
  EXPECT_EQ(Set("k", "zzz", 0, 0, StoreMode::kAdd), StoreResult::kNotStored);
  EXPECT_EQ(Set("k", ">", 0, 9, StoreMode::kAppend), StoreResult::kStored);
  EXPECT_EQ(Set("k", "<", 0, 9, StoreMode::kPrepend), StoreResult::kStored);
  uint32_t flags = 0;
  EXPECT_EQ(Get("k", &flags), "<mid>");
  EXPECT_EQ(flags, 3u);  // append/prepend keep the old flags
  EXPECT_EQ(Set("nope", "x", 0, 0, StoreMode::kAppend), StoreResult::kNotStored);
  EXPECT_EQ(Set("k", "new", 0, 0, StoreMode::kReplace), StoreResult::kStored);
  EXPECT_EQ(Get("k"), "new");
}

TEST_P(ItemStoreTest, CasUniquesAndOutcomes) {
  Make();
  Set("k", "a");
  uint64_t cas1 = 0, cas2 = 0;
  Get("k", nullptr, &cas1);
  EXPECT_NE(cas1, 0u);
  EXPECT_EQ(Set("k", "b", 0, 0, StoreMode::kCas, cas1 + 1), StoreResult::kExists);
  EXPECT_EQ(Set("k", "b", 0, 0, StoreMode::kCas, cas1), StoreResult::kStored);
  Get("k", nullptr, &cas2);
  EXPECT_GT(cas2, cas1);
  EXPECT_EQ(Set("k", "c", 0, 0, StoreMode::kCas, cas1), StoreResult::kExists);
  EXPECT_EQ(Set("missing", "c", 0, 0, StoreMode::kCas, cas1), StoreResult::kNotFound);
  EXPECT_EQ(Get("k"), "b");
}

TEST_P(ItemStoreTest, CasDisabledReportsZeroAndNeverMatches) {
  StoreOptions o;
  o.cas_enabled = false;
  Make(o);
  Set("k", "a");
  uint64_t cas = 1;
  Get("k", nullptr, &cas);
  EXPECT_EQ(cas, 0u);
  EXPECT_EQ(Set("k", "b", 0, 0, StoreMode::kCas, 0), StoreResult::kExists);
  if (stock()) {
    EXPECT_EQ(store_->Totals().bytes, 53u);  // no 8-byte CAS field
  }
}

TEST_P(ItemStoreTest, IncrDecrWrapFloorAndPadding) {
  Make();
  Set("n", "100");
  EXPECT_EQ(Delta("n", false, 95), "5");
  EXPECT_EQ(Get("n"), "5  ");                // in place, space padded to the old length (memcached)
  EXPECT_EQ(Delta("n", true, 995), "1000");  // grows: a new item
  EXPECT_EQ(Get("n"), "1000");
  EXPECT_EQ(Delta("n", false, 5000), "0");  // floor at 0
  Set("n", "18446744073709551615");
  EXPECT_EQ(Delta("n", true, 2), "1");  // 64-bit wrap
  Set("s", " 12");
  EXPECT_EQ(Delta("s", true, 1), "13");  // leading space accepted, as strtoull
  Set("t", "12abc");
  Delta("t", true, 1, DeltaResult::kNonNumeric);
  Set("e", "");
  Delta("e", true, 1, DeltaResult::kNonNumeric);
  Set("neg", "-1");
  Delta("neg", true, 1, DeltaResult::kNonNumeric);
  Set("big", "99999999999999999999");
  Delta("big", true, 1, DeltaResult::kNonNumeric);
  Delta("missing", true, 1, DeltaResult::kNotFound);
  uint32_t flags = 0;
  Set("f", "7", 0, 42);
  EXPECT_EQ(Delta("f", true, 10), "17");
  Get("f", &flags);
  EXPECT_EQ(flags, 42u);
}

TEST_P(ItemStoreTest, ExpiryIsLazyAndFollowsMemcachedRules) {
  Make();
  Set("rel", "x", 10);
  Set("never", "x", 0);
  Set("past", "x", -1);
  Set("abs", "x", clock_.StartedAt() + 1005);
  EXPECT_EQ(Get("past"), std::nullopt);
  EXPECT_EQ(Get("rel"), "x");
  clock_.AdvanceForTest(5);  // now 1005
  EXPECT_EQ(Get("abs"), std::nullopt);
  EXPECT_EQ(Get("rel"), "x");
  clock_.AdvanceForTest(5);  // now 1010: exptime <= now is expired
  EXPECT_EQ(Get("rel"), std::nullopt);
  EXPECT_EQ(Get("never"), "x");
  EXPECT_EQ(stats_.get_expired.Get(), 3u);
  EXPECT_EQ(store_->Totals().curr_items, 1u);
}

TEST_P(ItemStoreTest, TouchAndGatSetNewExpiry) {
  Make();
  Set("k", "x", 5);
  EXPECT_EQ(store_->Touch("k", 100, stats_), TouchResult::kTouched);
  clock_.AdvanceForTest(50);
  EXPECT_EQ(Get("k"), "x");
  bool hit = store_->Get("k", int64_t{-1}, stats_, [](const ItemView&) {});
  EXPECT_TRUE(hit);  // gat returns the value, then it is expired
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(store_->Touch("k", 100, stats_), TouchResult::kNotFound);
}

TEST_P(ItemStoreTest, FlushAllNowAndDelayed) {
  Make();
  Set("a", "1");
  store_->FlushAll(0);
  EXPECT_EQ(Get("a"), std::nullopt);
  Set("b", "2");  // stored after the flush in the same second: survives
  EXPECT_EQ(Get("b"), "2");
  store_->FlushAll(10);
  EXPECT_EQ(Get("b"), "2");
  clock_.AdvanceForTest(10);
  EXPECT_EQ(Get("b"), std::nullopt);
  clock_.AdvanceForTest(1);
  Set("c", "3");
  EXPECT_EQ(Get("c"), "3");
}

TEST_P(ItemStoreTest, FlushEpochsNeverResurrectAndCancelAndReplace) {
  StoreOptions o;
  o.cas_enabled = false;  // the epoch alone, no CAS to lean on
  Make(o);
  Set("old", "1");
  store_->FlushAll(0);
  Set("mid", "2");
  EXPECT_EQ(store_->Totals().curr_items, 1u);  // the flush removed "old" before returning
  store_->FlushAll(0);                         // the parity flips back to old's
  EXPECT_EQ(Get("old"), std::nullopt);
  EXPECT_EQ(Get("mid"), std::nullopt);
  Set("new", "3");
  EXPECT_EQ(Get("new"), "3");
  // A later delayed flush replaces an earlier one; an immediate flush cancels both.
  store_->FlushAll(5);
  store_->FlushAll(20);
  clock_.AdvanceForTest(6);
  EXPECT_EQ(Get("new"), "3");
  store_->FlushAll(0);
  Set("after", "4");
  clock_.AdvanceForTest(30);
  EXPECT_EQ(Get("after"), "4");
  EXPECT_EQ(store_->Totals().curr_items, 1u);
}

TEST_P(ItemStoreTest, SweeperThreadRemovesFlushedItemsAfterTheReply) {
  Make();
  store_->StartMaintenance();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 20000; ++i) Set("k" + std::to_string(i), "v");
    store_->FlushAll(0);
    // Invisible at once, whatever the sweeper has reached.
    EXPECT_EQ(Get("k0"), std::nullopt);
    EXPECT_EQ(Get("k19999"), std::nullopt);
    Set("fresh", "f");
    EXPECT_EQ(Get("fresh"), "f");
  }
  // A flush waits for the previous sweep, so after this one returns only the
  // last round's items can be left, and the sweeper removes those too. A
  // second flush is how the test waits for that sweep (no clock): it returns
  // once the sweep is done, and there is nothing of its own to sweep, so what
  // is counted then is what the first sweep left: nothing. (An item it had
  // missed would even be alive again: the parity flips back.)
  store_->FlushAll(0);
  store_->FlushAll(0);
  EXPECT_EQ(store_->Totals().curr_items, 0u);
  EXPECT_EQ(store_->index().items(), 0u);
  EXPECT_EQ(Get("fresh"), std::nullopt);
}

TEST_P(ItemStoreTest, DelayedFlushRunsOnTheFirstOperationAtItsTime) {
  Make();
  for (int i = 0; i < 1000; ++i) Set("k" + std::to_string(i), "v");
  store_->FlushAll(3);
  clock_.AdvanceForTest(3);
  // No crawler, no tick: a delete of an unrelated key is the first operation.
  EXPECT_FALSE(store_->Delete("unrelated", stats_));
  EXPECT_EQ(store_->Totals().curr_items, 0u);
  EXPECT_EQ(Get("k1"), std::nullopt);
}

TEST_P(ItemStoreTest, FlushWhileOtherThreadsStore) {
  Make();
  // Counted, not timed: flush f runs once every writer has stored
  // f * kStoresPerFlush items, and the writers go on until the last flush is
  // done and each has stored kMinStores, so every run interleaves as much.
  constexpr int kWriters = 2, kFlushes = 20;
  constexpr uint64_t kStoresPerFlush = 500;
  constexpr uint64_t kMinStores = (kFlushes + 1) * kStoresPerFlush;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> stored[kWriters] = {};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      ThreadStats stats;
      for (uint64_t i = 0; i < kMinStores || !done.load(); ++i) {
        const std::string k = std::to_string(t) + ":" + std::to_string(i % 5000);
        store_->Store(StoreMode::kSet, k, 0, 0, "v", 0, stats);
        stored[t].store(i + 1);
      }
    });
  }
  for (uint64_t f = 1; f <= kFlushes; ++f) {
    for (const std::atomic<uint64_t>& n : stored) {
      while (n.load() < f * kStoresPerFlush) std::this_thread::yield();
    }
    store_->FlushAll(0);
  }
  done = true;
  for (std::thread& w : writers) w.join();
  for (const std::atomic<uint64_t>& n : stored) EXPECT_GE(n.load(), kMinStores);
  // Everything left was stored after the last flush began: the index, the
  // LRU lists and the counters agree, and nothing dead is counted.
  store_->FlushAll(0);
  const StoreTotals t = store_->Totals();
  EXPECT_EQ(t.curr_items, 0u);
  EXPECT_EQ(store_->index().items(), 0u);
  EXPECT_EQ(t.bytes, 0u);
}

StoreOptions OnePageOfClassOne() {
  StoreOptions o;
  o.memory_limit = size_t{1} << 20;  // one page
  o.slabs.item_size_max = 512 << 10;
  return o;
}

TEST_P(ItemStoreTest, EvictsLeastRecentlyUsedFromTheTail) {
  Make(OnePageOfClassOne());
  const int per_page = PerPage1();  // stock: 10922 96-byte chunks
  for (int i = 0; i < per_page; ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  EXPECT_EQ(store_->Totals().evictions, 0u);
  EXPECT_EQ(Get("0"), "x");  // 0 becomes most recent; 1 is now the oldest
  ASSERT_EQ(Set("new1", "x"), StoreResult::kStored);
  ASSERT_EQ(Set("new2", "x"), StoreResult::kStored);
  EXPECT_EQ(store_->Totals().evictions, 2u);
  EXPECT_EQ(Get("0"), "x");
  EXPECT_EQ(Get("1"), std::nullopt);
  EXPECT_EQ(Get("2"), std::nullopt);
  EXPECT_EQ(Get("3"), "x");
  EXPECT_EQ(store_->Totals().curr_items, static_cast<uint64_t>(per_page));
}

// A store holds its key's stripe lock while it waits for its class's lock,
// so other stores' stripes can cover the first items of the LRU tail. Here
// this thread holds the stripes of the oldest items, 8 stripes (reading
// them, each read inside the last: a get's visitor runs under the key's
// stripe lock)
// and stores a new key: the store passes over the busy items and evicts the
// oldest one it can lock, where it used to give up after 5 busy ones and
// answer SERVER_ERROR out of memory (seen under -t 4 with evicting sets).
TEST_P(ItemStoreTest, BusyTailItemsArePassedOverNotAnOutOfMemory) {
  Make(OnePageOfClassOne());
  const int per_page = PerPage1();
  for (int i = 0; i < per_page; ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  const auto stripe_of = [&](const std::string& k) {
    return HashIndex::StripeOf(HashIndex::Hash(compact::StoredKey(k, GetParam().knobs.pack_keys)));
  };
  // The oldest keys up to the 8th distinct stripe: one get per stripe (a
  // stripe lock is not re-entrant; absl's hash is seeded per process, so
  // which keys share a stripe varies), the keys in between covered by it.
  std::vector<std::string> held;  // read, holding their stripes
  std::vector<std::string> busy;  // every oldest key under a held stripe
  std::vector<size_t> stripes;
  int next = 0;  // the oldest key under no held stripe
  for (;; ++next) {
    const std::string k = std::to_string(next);
    const bool covered = std::find(stripes.begin(), stripes.end(), stripe_of(k)) != stripes.end();
    if (!covered && held.size() == 8) break;
    if (!covered) {
      held.push_back(k);
      stripes.push_back(stripe_of(k));
    }
    busy.push_back(k);
  }
  std::string fresh = "new";
  while (std::find(stripes.begin(), stripes.end(), stripe_of(fresh)) != stripes.end()) fresh += "x";
  std::optional<StoreResult> stored;
  std::function<void(size_t)> hold = [&](size_t i) {
    if (i == held.size()) {
      stored = Set(fresh, "x");
      return;
    }
    store_->Get(held[i], std::nullopt, stats_, [&](const ItemView&) { hold(i + 1); });
  };
  hold(0);
  EXPECT_EQ(stored, StoreResult::kStored);
  EXPECT_EQ(store_->Totals().evictions, 1u);
  for (const std::string& k : busy) EXPECT_EQ(Get(k), "x") << k;
  EXPECT_EQ(Get(std::to_string(next)), std::nullopt);  // the oldest that could be locked
  EXPECT_EQ(Get(fresh), "x");
}

TEST_P(ItemStoreTest, AllActiveItemsStillMakeRoom) {
  Make(OnePageOfClassOne());
  const int per_page = PerPage1();
  for (int i = 0; i < per_page; ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  for (int i = 0; i < per_page; ++i) ASSERT_EQ(Get(std::to_string(i)), "x");  // all active
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(Set("new" + std::to_string(i), "x"), StoreResult::kStored);
  EXPECT_EQ(store_->Totals().evictions, 100u);
  EXPECT_EQ(store_->Totals().curr_items, static_cast<uint64_t>(per_page));
  // The second chances moved active items to the head instead of evicting them.
  EXPECT_EQ(Get("0"), "x");
}

TEST_P(ItemStoreTest, ExpiredTailIsReclaimedBeforeAnythingLiveIsEvicted) {
  Make(OnePageOfClassOne());
  const int per_page = PerPage1();
  ASSERT_EQ(Set("short", "x", 5), StoreResult::kStored);  // the oldest item
  for (int i = 1; i < per_page; ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  clock_.AdvanceForTest(10);
  ASSERT_EQ(Set("new", "x"), StoreResult::kStored);
  const StoreTotals t = store_->Totals();
  EXPECT_EQ(t.evictions, 0u);
  EXPECT_EQ(t.reclaimed, 1u);
  EXPECT_EQ(t.crawler_reclaimed, 0u);  // a store's reclaim, not the crawler's
  EXPECT_EQ(t.expired_unfetched, 1u);
  EXPECT_EQ(Get("1"), "x");
}

TEST_P(ItemStoreTest, NoEvictModeFailsInsteadOfEvicting) {
  StoreOptions o = OnePageOfClassOne();
  o.evict = false;
  Make(o);
  for (int i = 0; i < PerPage1(); ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  EXPECT_EQ(Set("one-more", "x"), StoreResult::kNoMemory);
  EXPECT_EQ(stats_.store_no_memory.Get(), 1u);
  EXPECT_EQ(store_->Totals().evictions, 0u);
  EXPECT_EQ(Get("0"), "x");
  // A failed set drops the key's old value rather than leave it stale...
  EXPECT_EQ(Set("0", "y"), StoreResult::kNoMemory);
  EXPECT_EQ(Get("0"), std::nullopt);
  // ...which frees its chunk for the next store.
  EXPECT_EQ(Set("0", "z"), StoreResult::kStored);
  EXPECT_EQ(Get("0"), "z");
}

TEST_P(ItemStoreTest, AppendNeverEvictsItsOwnSource) {
  Make(OnePageOfClassOne());
  ASSERT_EQ(Set("src", "x"), StoreResult::kStored);  // oldest item of class 1
  for (int i = 1; i < PerPage1(); ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  ASSERT_EQ(Set("src", "y", 0, 0, StoreMode::kAppend), StoreResult::kStored);
  EXPECT_EQ(Get("src"), "xy");
}

TEST_P(ItemStoreTest, LargeItemsLiveOutsideThePages) {
  Make();
  const std::string big(900 * 1024, 'b');
  ASSERT_EQ(Set("big", big), StoreResult::kStored);
  EXPECT_EQ(Get("big"), big);
  EXPECT_GE(store_->Totals().malloced, big.size());
  EXPECT_FALSE(store_->SizeOk("abc", 0, 0, 1 << 20));
  EXPECT_EQ(Set("huge", std::string(1 << 20, 'h')), StoreResult::kTooLarge);
  EXPECT_TRUE(store_->Delete("big", stats_));
  EXPECT_LT(store_->Totals().malloced, big.size());
}

TEST_P(ItemStoreTest, LargeItemFitsEvenWhenPagesFillTheLimit) {
  StoreOptions o;
  o.memory_limit = size_t{2} << 20;
  Make(o);
  // Fill the whole limit with small-item pages.
  for (int i = 0; store_->Totals().malloced < o.memory_limit; ++i) {
    ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  }
  // As memcached gives a class with nothing its first page over the limit,
  // the first large item gets up to a page.
  const std::string big(600 << 10, 'b');
  ASSERT_EQ(Set("big", big), StoreResult::kStored);
  EXPECT_EQ(Get("big"), big);
  // A second one replaces it by evicting the first, never small items.
  const uint64_t evictions = store_->Totals().evictions;
  ASSERT_EQ(Set("big2", big), StoreResult::kStored);
  EXPECT_EQ(Get("big"), std::nullopt);
  EXPECT_EQ(store_->Totals().evictions, evictions + 1);
  EXPECT_EQ(Get("0"), "x");  // the oldest small item is untouched
}

TEST_P(ItemStoreTest, FailedAppendIsNotStoredEvenForAnEmptyValue) {
  StoreOptions o = OnePageOfClassOne();
  o.evict = false;
  Make(o);
  ASSERT_EQ(Set("e", ""), StoreResult::kStored);
  for (int i = 1; i < PerPage1(); ++i) ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  // The grown value needs a chunk and none is left: memcached says NOT_STORED.
  EXPECT_EQ(Set("e", "more", 0, 0, StoreMode::kAppend), StoreResult::kNotStored);
  EXPECT_EQ(stats_.store_no_memory.Get(), 0u);
  EXPECT_EQ(Get("e"), "");
}

TEST_P(ItemStoreTest, TheTickReclaimsDeadItemsAtTheTails) {
  Make();
  Set("a", "x", 5);
  Set("b", "x", 0);
  clock_.AdvanceForTest(6);
  EXPECT_EQ(store_->ReclaimDead(0), 0u);  // -o no_lru_maintainer: nothing looked at
  EXPECT_EQ(store_->ReclaimDead(100), 1u);
  const StoreTotals t = store_->Totals();
  EXPECT_EQ(t.curr_items, 1u);
  // memcached's LRU maintainer counts its tail frees as reclaimed; only a
  // crawl's are crawler_reclaimed.
  EXPECT_EQ(t.reclaimed, 1u);
  EXPECT_EQ(t.crawler_reclaimed, 0u);
  EXPECT_EQ(t.crawler_items_checked, 0u);
  EXPECT_EQ(t.expired_unfetched, 1u);
}

// Both ways a dead item goes, in one class: a store takes the memory of the
// expired item at the tail (reclaimed), a crawl frees another
// (crawler_reclaimed); each is counted once, in its own counter, per class.
TEST_P(ItemStoreTest, TailReclaimsAndCrawlerReclaimsAreCountedApart) {
  Make(OnePageOfClassOne());
  const int per_page = PerPage1();
  ASSERT_EQ(Set("tail", "x", 5), StoreResult::kStored);  // the oldest item
  for (int i = 1; i < per_page - 1; ++i) {
    ASSERT_EQ(Set(std::to_string(i), "x"), StoreResult::kStored);
  }
  ASSERT_EQ(Set("newest", "x", 5), StoreResult::kStored);  // the page is full now
  clock_.AdvanceForTest(10);
  ASSERT_EQ(Set("new", "x"), StoreResult::kStored);  // takes `tail`'s chunk
  StoreTotals t = store_->Totals();
  EXPECT_EQ(t.reclaimed, 1u);
  EXPECT_EQ(t.crawler_reclaimed, 0u);
  EXPECT_EQ(t.evictions, 0u);
  // A crawl of the class looks at every item and frees `newest` (without
  // StartMaintenance() it is done before StartCrawl() returns).
  EXPECT_EQ(store_->StartCrawl({1}), CrawlStart::kStarted);
  t = store_->Totals();
  EXPECT_EQ(t.reclaimed, 1u);
  EXPECT_EQ(t.crawler_reclaimed, 1u);
  EXPECT_EQ(t.crawler_items_checked, static_cast<uint64_t>(per_page));
  EXPECT_EQ(t.expired_unfetched, 2u);  // both counted there, as memcached
  const std::vector<ClassSnapshot> classes = store_->SnapshotClasses();
  ASSERT_EQ(classes.size(), 1u);
  EXPECT_EQ(classes[0].id, 1);
  EXPECT_EQ(classes[0].reclaimed, 1u);
  EXPECT_EQ(classes[0].crawler_reclaimed, 1u);
  EXPECT_EQ(classes[0].crawler_items_checked, static_cast<uint64_t>(per_page));
  store_->ResetStats();
  t = store_->Totals();
  EXPECT_EQ(t.reclaimed + t.crawler_reclaimed + t.crawler_items_checked, 0u);
}

// `lru_crawler crawl`: every item of the classes asked for, however many
// (the once-a-second step looks at `budget` per class), and no other class.
TEST_P(ItemStoreTest, StartCrawlFreesEveryDeadItemOfTheClassesAskedFor) {
  Make();
  char key[16];
  for (int i = 0; i < 3000; ++i) {
    std::snprintf(key, sizeof(key), "s%04d", i);
    ASSERT_EQ(Set(key, "x", i % 3 == 0 ? 5 : 0), StoreResult::kStored);
  }
  const std::string big(2000, 'b');
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(Set("b" + std::to_string(i), big, 5), StoreResult::kStored);
  // (An item with an expiry may take a larger class than one without.)
  std::vector<int> small_classes, big_classes;
  for (const ClassSnapshot& c : store_->SnapshotClasses()) {
    (c.chunk_size < 1000 ? small_classes : big_classes).push_back(c.id);
  }
  ASSERT_FALSE(small_classes.empty());
  ASSERT_FALSE(big_classes.empty());
  clock_.AdvanceForTest(6);  // a third of the small items and every big one have expired
  // Without StartMaintenance() the crawl is done before StartCrawl() returns;
  // ids that are no slab class are passed over.
  std::vector<int> asked = small_classes;
  asked.push_back(0);
  asked.push_back(999);
  EXPECT_EQ(store_->StartCrawl(asked), CrawlStart::kStarted);
  EXPECT_FALSE(store_->engine_stats().crawl_running);
  StoreTotals t = store_->Totals();
  EXPECT_EQ(t.crawler_reclaimed, 1000u);
  EXPECT_EQ(t.crawler_items_checked, 3000u);
  EXPECT_EQ(t.reclaimed, 0u);
  EXPECT_EQ(t.expired_unfetched, 1000u);
  EXPECT_EQ(t.curr_items, 2000u + 10u);  // the big items' class was not crawled
  EXPECT_EQ(Get("s0001"), "x");
  EXPECT_EQ(store_->StartCrawl(big_classes), CrawlStart::kStarted);
  t = store_->Totals();
  EXPECT_EQ(t.crawler_reclaimed, 1010u);
  EXPECT_EQ(t.crawler_items_checked, 3010u);
  EXPECT_EQ(t.curr_items, 2000u);
}

// With the maintenance threads a crawl runs on the sweeper thread; another
// asked for meanwhile is refused (memcached's BUSY) until it is done.
TEST_P(ItemStoreTest, ACrawlRunsInTheBackgroundAndIsBusyUntilDone) {
  Make();
  for (int i = 0; i < 500; ++i)
    ASSERT_EQ(Set("k" + std::to_string(i), "x", 5), StoreResult::kStored);
  clock_.AdvanceForTest(6);
  store_->StartMaintenance();
  // The crawl walks the index stripe by stripe from stripe 0: holding that
  // stripe's lock keeps it from finishing.
  absl::Mutex& first = const_cast<HashIndex&>(store_->index()).StripeLockAt(0);
  first.Lock();
  EXPECT_EQ(store_->StartCrawl({1}), CrawlStart::kStarted);
  EXPECT_TRUE(store_->engine_stats().crawl_running);
  EXPECT_EQ(store_->StartCrawl({1}), CrawlStart::kBusy);
  first.Unlock();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (store_->engine_stats().crawl_running && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_FALSE(store_->engine_stats().crawl_running) << "the crawl never finished";
  EXPECT_EQ(store_->Totals().crawler_reclaimed, 500u);
  EXPECT_EQ(store_->Totals().curr_items, 0u);
  EXPECT_EQ(store_->StartCrawl({1}), CrawlStart::kStarted);
  store_->StopMaintenance();  // joins the sweeper, whether or not it crawled yet
  EXPECT_FALSE(store_->engine_stats().crawl_running);
}

// The fill experiment, in process: keys 1, 2, 3, ... with a 1-byte value
// until the first eviction. Real memcached 1.6.18 stores exactly these counts
// in 64 MB (measured: 699k, 927k, 1042k). After the first
// eviction curr_items stays put (each set evicts one), so sampling is exact.
std::string DecimalKey(uint64_t n) { return std::to_string(n); }

uint64_t ItemsAtFirstEviction(StoreOptions o, std::string (*key_text)(uint64_t) = DecimalKey) {
  Clock clock;
  ThreadStats stats;
  auto store = *ItemStore::Create(o, &clock);
  for (uint64_t key = 1; key < 5'000'000; ++key) {
    store->Store(StoreMode::kSet, key_text(key), 0, 0, "x", 0, stats);
    if (key % 256 == 0) {
      const StoreTotals t = store->Totals();
      if (t.evictions > 0) return t.curr_items;
    }
  }
  return 0;
}

INSTANTIATE_TEST_SUITE_P(Layouts, ItemStoreTest, ::testing::ValuesIn(kLayouts), LayoutName);

TEST(ItemStoreCreateTest, PageReferenceWidthFollowsTheMemoryLimit) {
  Clock clock;
  auto width = [&](RefMode refs, size_t mb) -> size_t {
    StoreOptions o;
    o.memory_limit = mb << 20;
    o.layout.refs = refs;
    auto s = ItemStore::Create(o, &clock);
    return s.ok() ? (*s)->layout().refs().width() : 0;
  };
  // Slots needed: pages of the limit + one per possible large item (> 512 KiB) + 1.
  EXPECT_EQ(width(RefMode::kPage, 64), 3u);  // 64 + 128 + 1 <= 255
  EXPECT_EQ(width(RefMode::kPage, 84), 3u);  // 84 + 168 + 1 = 253
  EXPECT_EQ(width(RefMode::kPage, 86), 4u);  // 86 + 172 + 1 = 259
  EXPECT_EQ(width(RefMode::kPage, 4096), 4u);
  EXPECT_EQ(width(RefMode::kRef32, 64), 4u);
  EXPECT_EQ(width(RefMode::kPointer, 64), 8u);
  EXPECT_EQ(width(RefMode::kRef32, 32768), 0u);  // more pages than a 2-byte index names
}

TEST(FillTest, StockLayoutMatchesMemcached) {
  StoreOptions defaults;
  EXPECT_EQ(ItemsAtFirstEviction(defaults), 64u * 10922);  // 699008: 96-byte chunks
  StoreOptions small;
  small.slabs.min_space = 5;
  small.slabs.factor = 1.05;
  // Keys 1..9999 fit 64-byte chunks (one page), the rest 72-byte ones: 927468.
  EXPECT_EQ(ItemsAtFirstEviction(small), 9999u + 63 * 14563);
  small.cas_enabled = false;
  // Without CAS: 56-byte chunks, then 64-byte ones: 1042191.
  EXPECT_EQ(ItemsAtFirstEviction(small), 9999u + 63 * 16384);
}

TEST(FillTest, CompactLayoutHoldsFourMillion) {
  // The `compact` preset: 3-byte page references, lean header, base-250 keys, no CAS,
  // 1-byte alignment. Every fill item is at most 9 + 1 + 1 + 1 + 3 + 1 = 16 bytes and
  // the smallest class is header 11 + n 5 = 16 bytes: 65536 per page (the most a 16-bit
  // chunk index names), 64 pages.
  StoreOptions o;
  o.hashpower_init = 22;  // no maintainer thread here to grow the index
  o.slabs.min_space = 5;
  o.slabs.factor = 1.05;
  o.slabs.align = 1;
  o.slabs.max_classes = 255;
  o.cas_enabled = false;
  o.layout.refs = RefMode::kPage;
  o.layout.pack_keys = true;
  o.layout.header = compact::HeaderStyle::kLean;
  EXPECT_EQ(ItemsAtFirstEviction(o), 64u * 65536);  // 4194304
}

// An md5-style key: 32 lowercase hex digits, a different one for every n.
std::string Md5Key(uint64_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string key;
  uint64_t x = n;
  for (int half = 0; half < 2; ++half) {
    x += 0x9E3779B97F4A7C15ull;  // splitmix64: a bijection of n per half
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int i = 0; i < 16; ++i) key.push_back(kDigits[(z >> (60 - 4 * i)) & 15]);
  }
  return key;
}

TEST(FillTest, PackedHexKeysFitMoreItems) {
  // The `compact` preset with md5-hex keys: 11 + 1 + 17 + 1 = 30 bytes an item
  // with packed keys, 11 + 1 + 32 + 1 = 45 with text keys.
  StoreOptions o;
  o.memory_limit = size_t{16} << 20;
  o.hashpower_init = 22;  // no maintainer thread here to grow the index
  o.slabs.min_space = 5;
  o.slabs.factor = 1.05;
  o.slabs.align = 1;
  o.slabs.max_classes = 255;
  o.cas_enabled = false;
  o.layout.refs = RefMode::kPage;
  o.layout.header = compact::HeaderStyle::kLean;
  o.layout.pack_keys = false;
  const uint64_t text = ItemsAtFirstEviction(o, Md5Key);
  o.layout.pack_keys = true;
  const uint64_t packed = ItemsAtFirstEviction(o, Md5Key);
  RecordProperty("items_text_keys", std::to_string(text));
  RecordProperty("items_packed_keys", std::to_string(packed));
  EXPECT_GT(text, 0u);
  EXPECT_GT(packed, text * 14 / 10) << "text " << text << ", packed " << packed;
}

// md5-hex, sha1-hex and UUID keys, either case: stored and found by their
// text, listed by their text, smaller when keys are packed.
TEST_P(ItemStoreTest, HexAndUuidKeysRoundTrip) {
  Make();
  const bool pack = store_->layout().pack_keys();
  const std::vector<std::string> keys = {
      "d41d8cd98f00b204e9800998ecf8427e",
      "D41D8CD98F00B204E9800998ECF8427E",  // the same digits upper case: another key
      "da39a3ee5e6b4b0d3255bfef95601890afd80709",
      "123e4567-e89b-12d3-a456-426614174000",
      "123E4567-E89B-12D3-A456-426614174000",
      "123e4567e89b12d3a456426614174000",      // the UUID's digits without dashes
      "123e4567-E89B-12d3-a456-426614174000",  // mixed case: text
      "abc12",                                 // odd
      "0abc12",
      "1234",    // decimal
      "01234",   // hex
      "0x1234",  // text
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(Set(keys[i], "v" + std::to_string(i)), StoreResult::kStored) << keys[i];
  }
  EXPECT_EQ(store_->Totals().curr_items, keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(Get(keys[i]), "v" + std::to_string(i)) << keys[i];
  }
  EXPECT_EQ(Get("d41d8cd98f00b204e9800998ecf8427E"), std::nullopt);  // mixed case: absent
  EXPECT_EQ(Get("123e4567-e89b-12d3-a456-42661417400"), std::nullopt);

  // What the item visitors (cachedump, metadump) see: the texts.
  auto listed = [&] {
    std::vector<std::string> seen;
    for (int cls = 1; cls <= store_->classes().count(); ++cls) {
      store_->VisitItems(cls, 1000, [&](const ItemInfo& i) { seen.emplace_back(i.key); });
    }
    std::sort(seen.begin(), seen.end());
    return seen;
  };
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(listed(), sorted);

  // A lean item stored without an expiry is rewritten to hold one: its key
  // goes through Key() and back to the same stored form.
  for (const std::string& k : keys) {
    EXPECT_EQ(store_->Touch(k, 500, stats_), TouchResult::kTouched) << k;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(Get(keys[i]), "v" + std::to_string(i)) << keys[i];
  }
  EXPECT_EQ(listed(), sorted);
  EXPECT_EQ(store_->Totals().curr_items, keys.size());

  ASSERT_EQ(Set(keys[3], "41"), StoreResult::kStored);
  EXPECT_EQ(Delta(keys[3], true, 1), "42");
  EXPECT_TRUE(store_->Delete(keys[4], stats_));
  EXPECT_EQ(Get(keys[4]), std::nullopt);
  EXPECT_EQ(Get(keys[3]), "42");

  // Size: a tag and 16 bytes in place of 32 characters.
  ASSERT_TRUE(store_->Delete(keys[3], stats_));
  const uint64_t before = store_->Totals().bytes;
  ASSERT_EQ(Set(keys[0] + "0", "x"), StoreResult::kStored);  // 33 digits: 1 + 17 bytes
  const compact::ItemLayout& l = store_->layout();
  EXPECT_EQ(store_->Totals().bytes - before, l.ItemSize(pack ? 18 : 33, 0, 1, 0));
  const uint64_t before_uuid = store_->Totals().bytes;
  ASSERT_EQ(Set(keys[3], "x"), StoreResult::kStored);
  EXPECT_EQ(store_->Totals().bytes - before_uuid, l.ItemSize(pack ? 17 : 36, 0, 1, 0));
}

TEST_P(ItemStoreTest, VisitItemsListsAClassMostRecentFirst) {
  Make();
  ASSERT_EQ(Set("a", "1"), StoreResult::kStored);
  ASSERT_EQ(Set("12345", "22", 100), StoreResult::kStored);
  ASSERT_EQ(Set("gone", "x", 1), StoreResult::kStored);  // expires at 1000 + 1
  ASSERT_TRUE(Get("a").has_value());
  clock_.AdvanceForTest(5);
  std::vector<std::string> keys;
  std::vector<ItemInfo> infos;
  const size_t n = store_->VisitItems(1, 100, [&](const ItemInfo& i) {
    keys.emplace_back(i.key);
    infos.push_back(i);
  });
  EXPECT_EQ(n, 2u);  // the expired item is not listed
  // The LRU head first; a read bumps only by the active bit, so "a" stays behind.
  EXPECT_EQ(keys, (std::vector<std::string>{"12345", "a"}));
  EXPECT_EQ(infos[0].value_bytes, 2u);
  EXPECT_EQ(infos[0].exptime, 1100u);  // relative: the clock stood at 1000
  EXPECT_FALSE(infos[0].fetched);
  EXPECT_TRUE(infos[1].fetched);
  EXPECT_EQ(infos[1].exptime, 0u);
  EXPECT_EQ(infos[1].cls, 1);
  EXPECT_GT(infos[1].total_bytes, 2u);
  // Bounded by the limit; no class, no items.
  EXPECT_EQ(store_->VisitItems(1, 1, [](const ItemInfo&) {}), 1u);
  EXPECT_EQ(store_->VisitItems(0, 100, [](const ItemInfo&) {}), 0u);
  EXPECT_EQ(store_->VisitItems(store_->classes().count() + 1, 100, [](const ItemInfo&) {}), 0u);
}

TEST_P(ItemStoreTest, MemoryLimitMovesAtRunTime) {
  StoreOptions o;
  o.memory_limit = size_t{8} << 20;
  Make(o);
  EXPECT_EQ(store_->memory_limit(), size_t{8} << 20);
  store_->SetMemoryLimit(size_t{2} << 20);
  EXPECT_EQ(store_->memory_limit(), size_t{2} << 20);
  const std::string value(1000, 'v');
  for (int i = 0; i < 8000; ++i) Set("k" + std::to_string(i), value);
  // The pages of a 1000-byte class, charged against the lower limit.
  EXPECT_LE(store_->Totals().malloced, (size_t{2} << 20) + store_->classes().page_size());
  EXPECT_GT(store_->Totals().evictions, 0u);
  store_->SetMemoryLimit(size_t{8} << 20);
  const uint64_t evicted = store_->Totals().evictions;
  for (int i = 0; i < 2000; ++i) Set("j" + std::to_string(i), value);
  EXPECT_EQ(store_->Totals().evictions, evicted);  // room again
}

}  // namespace
}  // namespace tinycached::core
