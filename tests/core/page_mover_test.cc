// Tests for core/page_mover.cc (and the pins of core/item_store.h): pages
// that move between classes under every item layout, stores that are never
// refused while evicting, and values pinned for replies being sent.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/item_store.h"
#include "core/slab_class.h"
#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace tinycached::core {
namespace {

using PageMoverTest = StoreTest;

// A value that names its key, so a reader can tell a wrong item from a right one.
std::string ValueFor(const std::string& key, size_t size, int version = 0) {
  std::string v = key + "/" + std::to_string(version) + "/";
  while (v.size() < size) v += static_cast<char>('a' + (v.size() * 7 + key.size()) % 26);
  v.resize(size);
  return v;
}

// Fixed-width keys, so that every item of a test lands in one class.
std::string Key(char prefix, int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%c%06d", prefix, i);
  return buf;
}

int ClassOfItem(const ItemStore& s, size_t nvalue) {
  return s.classes().ClassFor(s.layout().ItemSize(7, 0, nvalue, 0));
}

size_t PagesOf(const ItemStore& s, int cls) {
  for (const ClassSnapshot& c : s.SnapshotClasses()) {
    if (c.id == cls) return c.pages;
  }
  return 0;
}

TEST(AgeRingTest, TailAgeIsTheTimeOfTheTailsLink) {
  AgeRing ring;
  EXPECT_EQ(ring.TailAgeMs(5000, 10, 10, 30000), 0u);  // no history yet
  ring.Record(1000, 0);
  ring.Record(2000, 100);
  ring.Record(3000, 200);
  // 250 links, 200 items: the tail was link 50, made between 1 s and 2 s.
  EXPECT_EQ(ring.TailAgeMs(4000, 250, 200, 30000), 3000u);
  // 250 links, 100 items: link 150, after the 2 s record.
  EXPECT_EQ(ring.TailAgeMs(4000, 250, 100, 30000), 2000u);
  // Older than the window: the window's span.
  EXPECT_EQ(ring.TailAgeMs(4000, 250, 200, 2500), 2000u);
  EXPECT_EQ(ring.TailAgeMs(4000, 250, 0, 30000), 0u);  // nothing in the list
}

TEST_P(PageMoverTest, ReassignAnswersLikeMemcached) {
  Make();
  const int n = store_->classes().count();
  EXPECT_EQ(store_->Reassign(1, 1), ReassignResult::kSame);
  EXPECT_EQ(store_->Reassign(1, n + 1), ReassignResult::kBadClass);
  EXPECT_EQ(store_->Reassign(-2, 1), ReassignResult::kBadClass);
  EXPECT_EQ(store_->Reassign(1, 2), ReassignResult::kNoSpare);    // class 1 owns nothing
  EXPECT_EQ(store_->Reassign(-1, 2), ReassignResult::kBadClass);  // no class has a spare page
  // Class 0 is memcached's global page pool: pages given back by moves.
  EXPECT_EQ(store_->Reassign(0, 2), ReassignResult::kNoSpare);
  const int small = ClassOfItem(*store_, 10);
  const int big = ClassOfItem(*store_, 2000);
  for (int i = 0; PagesOf(*store_, small) < 4; ++i) {
    ASSERT_EQ(Set(Key('k', i), "x"), StoreResult::kStored);
  }
  ASSERT_EQ(store_->Reassign(small, 0), ReassignResult::kOk);
  ASSERT_EQ(store_->Reassign(small, 0), ReassignResult::kOk);
  EXPECT_EQ(store_->mover_stats().global_page_pool, 2u);
  EXPECT_EQ(store_->Reassign(0, big), ReassignResult::kOk);
  EXPECT_EQ(PagesOf(*store_, big), 1u);
  EXPECT_EQ(store_->mover_stats().global_page_pool, 1u);
  EXPECT_EQ(store_->mover_stats().slabs_moved, 3u);
}

TEST_P(PageMoverTest, ReassignMovesAPageAndEveryValueStaysRight) {
  StoreOptions o;
  o.memory_limit = size_t{4} << 20;
  Make(o);
  const int small = ClassOfItem(*store_, 10);
  int keys = 0;
  for (; store_->Totals().evictions == 0; ++keys) {
    const std::string k = Key('k', keys);
    ASSERT_EQ(Set(k, ValueFor(k, 10)), StoreResult::kStored);
  }
  const size_t small_pages = PagesOf(*store_, small);
  ASSERT_GE(small_pages, 2u);
  const int big = ClassOfItem(*store_, 2000);
  ASSERT_NE(big, small);

  ASSERT_EQ(store_->Reassign(small, big), ReassignResult::kOk);
  EXPECT_EQ(PagesOf(*store_, small), small_pages - 1);
  EXPECT_EQ(PagesOf(*store_, big), 1u);
  const MoverStats m = store_->mover_stats();
  EXPECT_EQ(m.slabs_moved, 1u);
  EXPECT_GT(m.evictions_nomem, 0u);  // a full class has nowhere to put them
  // Every key reads back right or not at all, and the hits are the items left.
  size_t hits = 0;
  for (int i = 0; i < keys; ++i) {
    const std::string k = Key('k', i);
    if (std::optional<std::string> v = Get(k)) {
      EXPECT_EQ(*v, ValueFor(k, 10));
      ++hits;
    }
  }
  EXPECT_EQ(hits, store_->Totals().curr_items);
  // The moved page is the big class's room: no eviction needed for it.
  const uint64_t evictions = store_->Totals().evictions;
  ASSERT_EQ(Set(Key('b', 0), std::string(2000, 'b')), StoreResult::kStored);
  EXPECT_EQ(store_->Totals().evictions, evictions);
}

TEST_P(PageMoverTest, DeletedItemsAreRelocatedNotEvicted) {
  StoreOptions o;
  o.memory_limit = size_t{4} << 20;
  Make(o);
  int keys = 0;
  for (; store_->Totals().evictions == 0; ++keys) {
    const std::string k = Key('k', keys);
    ASSERT_EQ(Set(k, ValueFor(k, 10)), StoreResult::kStored);
  }
  // Free two thirds of them: every page now has room to take another's items.
  for (int i = 0; i < keys; ++i) {
    if (i % 3 != 0) store_->Delete(Key('k', i), stats_);
  }
  std::vector<std::string> kept;  // (the first few were evicted by the fill)
  for (int i = 0; i < keys; i += 3) {
    if (Get(Key('k', i)).has_value()) kept.push_back(Key('k', i));
  }
  const uint64_t items = store_->Totals().curr_items;
  ASSERT_EQ(kept.size(), items);
  const int small = ClassOfItem(*store_, 10);
  ASSERT_EQ(store_->Reassign(small, 0), ReassignResult::kOk);  // back to the budget
  EXPECT_EQ(store_->Totals().curr_items, items);
  EXPECT_EQ(store_->mover_stats().evictions_nomem, 0u);
  EXPECT_GT(store_->mover_stats().rescues, 0u);
  for (const std::string& k : kept) EXPECT_EQ(Get(k), ValueFor(k, 10)) << k;
}

TEST_P(PageMoverTest, PagesMoveUnderConcurrentVerifiedReadersAndWriters) {
  // A fixed amount of work, whatever the scheduling: kRounds page moves, the
  // next one made only once every worker has done kOpsPerRound more
  // operations, and every worker going on until the last move is made, it
  // has done its kMinOps and it has read back at least one value. No clock
  // decides anything, so a loaded machine only makes it slower.
  StoreOptions o;
  o.memory_limit = size_t{8} << 20;
  Make(o);
  constexpr size_t kSmall = 12, kBig = 300;
  constexpr int kWorkers = 3, kRounds = 100, kKeys = 40000;
  constexpr uint64_t kOpsPerRound = 500;
  constexpr uint64_t kMinOps = (kRounds + 1) * kOpsPerRound;  // some after the last move too
  // A bound in operations, not time: a working store hits long before it;
  // one that never returns a value fails here instead of spinning forever.
  constexpr uint64_t kMaxOps = 200 * kMinOps;
  const int small = ClassOfItem(*store_, kSmall);
  const int big = ClassOfItem(*store_, kBig);
  ASSERT_NE(small, big);
  // All of memory goes to the two classes first (every small key, then big
  // ones until the first eviction). Nothing here gives a page back to the
  // budget (no large items, no moves to class 0, no automover), so from now
  // on one of the two always holds two pages or more: a move can always be
  // made in one direction or the other.
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_EQ(Set(Key('s', i), ValueFor(Key('s', i), kSmall)), StoreResult::kStored);
  }
  for (int i = 0; store_->Totals().evictions == 0; ++i) {
    ASSERT_LT(i, kKeys) << "the big keys fit: no memory pressure to test";
    ASSERT_EQ(Set(Key('b', i), ValueFor(Key('b', i), kBig)), StoreResult::kStored);
  }
  ASSERT_GE(PagesOf(*store_, small) + PagesOf(*store_, big), 4u);

  std::atomic<bool> done{false};
  std::atomic<uint64_t> wrong{0}, refused{0};
  std::atomic<uint64_t> ops[kWorkers] = {};
  uint64_t worker_hits[kWorkers] = {};  // each written by its worker only, read after join
  auto worker = [&](int id) {
    ThreadStats stats;
    uint64_t x = 0x9e3779b97f4a7c15ULL * (id + 1);
    uint64_t n = 0, hits = 0;
    for (; n < kMaxOps && (n < kMinOps || hits == 0 || !done.load()); ++n) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const bool is_big = (x & 1) != 0;
      const std::string k = Key(is_big ? 'b' : 's', static_cast<int>((x >> 8) % kKeys));
      const size_t size = is_big ? kBig : kSmall;
      if ((x >> 4) % 3 == 0) {
        if (store_->Store(StoreMode::kSet, k, 0, 0, ValueFor(k, size), 0, stats) !=
            StoreResult::kStored) {
          refused.fetch_add(1);
        }
      } else {
        store_->Get(k, std::nullopt, stats, [&](const ItemView& v) {
          ++hits;
          if (v.value != ValueFor(k, size)) wrong.fetch_add(1);
        });
      }
      ops[id].store(n + 1);
    }
    worker_hits[id] = hits;
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; ++i) threads.emplace_back(worker, i);
  uint64_t moves = 0;
  int unexpected = -1;  // a Reassign() answer other than kOk, kNoSpare or kBusy
  for (int round = 0; round < kRounds && unexpected < 0; ++round) {
    for (const std::atomic<uint64_t>& n : ops) {
      while (n.load() < (round + 1) * kOpsPerRound) std::this_thread::yield();
    }
    // Alternate directions; a class down to its last page gives the other
    // way round, and a move already running (a store's) is waited out.
    int from = round % 2 == 0 ? small : big;
    int to = round % 2 == 0 ? big : small;
    for (;;) {
      const ReassignResult r = store_->Reassign(from, to);
      if (r == ReassignResult::kOk) {
        ++moves;
        break;
      }
      if (r == ReassignResult::kNoSpare) {
        std::swap(from, to);
      } else if (r != ReassignResult::kBusy) {
        unexpected = static_cast<int>(r);
        break;
      }
      std::this_thread::yield();
    }
  }
  done.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(unexpected, -1);
  EXPECT_EQ(moves, static_cast<uint64_t>(kRounds));
  EXPECT_GE(store_->mover_stats().slabs_moved, moves);  // stores waiting for room move some too
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(refused.load(), 0u);
  for (int i = 0; i < kWorkers; ++i) {
    EXPECT_GE(ops[i].load(), kMinOps) << "worker " << i;
    EXPECT_GT(worker_hits[i], 0u) << "worker " << i;
  }
  // Afterwards every key reads back right or not at all, and the hits are
  // exactly the items the store counts.
  size_t found = 0;
  for (const char prefix : {'s', 'b'}) {
    for (int i = 0; i < kKeys; ++i) {
      const std::string k = Key(prefix, i);
      if (std::optional<std::string> v = Get(k)) {
        EXPECT_EQ(*v, ValueFor(k, prefix == 's' ? kSmall : kBig)) << k;
        ++found;
      }
    }
  }
  EXPECT_EQ(found, store_->Totals().curr_items);
}

TEST_P(PageMoverTest, NoStoreIsRefusedWhileEvicting) {
  StoreOptions o;
  o.memory_limit = size_t{8} << 20;
  Make(o);
  // Growing sizes, each class new: memory belongs to the classes before it.
  int refused = 0;
  for (size_t size = 1024, i = 0; size < (1 << 20) - 4096; size += 2048, ++i) {
    if (Set("big" + std::to_string(i), std::string(size, 'v')) != StoreResult::kStored) {
      ++refused;
    }
  }
  EXPECT_EQ(refused, 0);
  double size = 2;
  for (int i = 0; i < 69; ++i, size *= 1.2) {
    for (int j = 0; j < 10; ++j) {
      const std::string k = "key" + std::to_string(i) + ":" + std::to_string(j);
      const std::string v(static_cast<size_t>(size), 'w');
      ASSERT_EQ(Set(k, v), StoreResult::kStored) << k << " " << v.size();
      EXPECT_EQ(Get(k), v);
    }
  }
  // And -m held all along: no first page granted past it (a page moved instead).
  EXPECT_LE(store_->Totals().malloced, o.memory_limit);
}

TEST_P(PageMoverTest, NoEvictModeStillRefuses) {
  StoreOptions o;
  o.memory_limit = size_t{4} << 20;
  o.evict = false;
  Make(o);
  int refused = 0;
  for (int i = 0; i < 40; ++i) {
    if (Set("big" + std::to_string(i), std::string(300 << 10, 'v')) != StoreResult::kStored) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(store_->Totals().evictions, 0u);
}

TEST_P(PageMoverTest, PinnedValuesStayUntilUnpinned) {
  Make();
  for (const size_t size : {size_t{100} << 10, size_t{700} << 10}) {  // slab chunk, large item
    const std::string v1(size, '1'), v2(size, '2');
    ASSERT_EQ(Set("p", v1), StoreResult::kStored);
    PinnedValue pin;
    ASSERT_TRUE(store_->Get("p", std::nullopt, stats_,
                            [&](const ItemView& v) { pin = store_->PinVisited(v); }));
    EXPECT_EQ(store_->pinned_items(), 1u);
    const size_t malloced = store_->Totals().malloced;
    ASSERT_EQ(Set("p", v2), StoreResult::kStored);  // replaced: the old one is a zombie
    EXPECT_EQ(Get("p"), v2);
    EXPECT_TRUE(store_->Delete("p", stats_));
    EXPECT_EQ(std::string(pin.data, pin.size), v1);  // the reply still reads the old bytes
    store_->Unpin(pin);
    EXPECT_EQ(store_->pinned_items(), 0u);
    if (size > store_->classes().chunk_max()) {
      EXPECT_LT(store_->Totals().malloced, malloced);  // the large block went back
    }
  }
}

TEST_P(PageMoverTest, APageWithAReplyInFlightMovesOnceItIsSent) {
  StoreOptions o;
  o.memory_limit = size_t{16} << 20;
  Make(o);
  const size_t size = 100 << 10;  // several per page
  const int cls = ClassOfItem(*store_, size);
  const int per_page = static_cast<int>(store_->classes().PerPage(cls));
  // Two full pages of the class.
  for (int i = 0; i < 2 * per_page; ++i) {
    const std::string k = Key('v', i);
    ASSERT_EQ(Set(k, ValueFor(k, size)), StoreResult::kStored);
  }
  ASSERT_EQ(PagesOf(*store_, cls), 2u);
  // A reply is being sent from an item of each page.
  std::vector<PinnedValue> pins;
  for (const int i : {0, 2 * per_page - 1}) {
    ASSERT_TRUE(store_->Get(Key('v', i), std::nullopt, stats_,
                            [&](const ItemView& v) { pins.push_back(store_->PinVisited(v)); }));
  }
  // The move relocates or evicts every item, but the page keeps the bytes
  // being sent, so it stays with its class (after a short wait).
  const uint64_t moved = store_->mover_stats().slabs_moved;
  EXPECT_EQ(store_->Reassign(cls, 1), ReassignResult::kOk);
  EXPECT_EQ(store_->mover_stats().slabs_moved, moved);
  EXPECT_EQ(PagesOf(*store_, cls), 2u);
  for (const PinnedValue& p : pins) {
    const std::string k(reinterpret_cast<const char*>(p.data), 7);
    EXPECT_EQ(std::string(p.data, p.size), ValueFor(k, size));
  }
  for (const PinnedValue& p : pins) store_->Unpin(p);
  // Sent: now the page moves.
  EXPECT_EQ(store_->Reassign(cls, 1), ReassignResult::kOk);
  EXPECT_EQ(store_->mover_stats().slabs_moved, moved + 1);
  EXPECT_EQ(PagesOf(*store_, cls), 1u);
  for (int i = 0; i < 2 * per_page; ++i) {
    const std::string k = Key('v', i);
    if (std::optional<std::string> v = Get(k)) {
      EXPECT_EQ(*v, ValueFor(k, size)) << k;
    }
  }
}

TEST_P(PageMoverTest, AutomoveGivesPagesFromTheOldClassToTheEvictingOne) {
  StoreOptions o;
  o.memory_limit = size_t{8} << 20;
  Make(o);
  const int small = ClassOfItem(*store_, 10);
  const int big = ClassOfItem(*store_, 2000);
  uint64_t now = 1000;
  store_->AutomoveStep(now);
  // The small class takes all memory, then sits idle for ten seconds.
  for (int i = 0; store_->Totals().evictions == 0; ++i) {
    ASSERT_EQ(Set(Key('s', i), std::string(10, 's')), StoreResult::kStored);
  }
  for (int t = 0; t < 10; ++t) store_->AutomoveStep(now += 1000);
  // Now only big items are written: their class's first page comes from the
  // small class (within the limit), then it evicts its own.
  const size_t before = PagesOf(*store_, small);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(Set(Key('b', i), std::string(2000, 'b')), StoreResult::kStored);
  }
  ASSERT_EQ(PagesOf(*store_, big), 1u);
  const size_t small_pages = PagesOf(*store_, small);
  EXPECT_EQ(small_pages, before - 1);
  EXPECT_LE(store_->Totals().malloced, o.memory_limit);
  store_->SetAutomove(Automove::kOff);
  EXPECT_FALSE(store_->AutomoveStep(now += 10));
  store_->SetAutomove(Automove::kBalance);
  EXPECT_TRUE(store_->AutomoveStep(now += 10));
  EXPECT_EQ(PagesOf(*store_, small), small_pages - 1);
  EXPECT_EQ(PagesOf(*store_, big), 2u);
  // The page is the big class's spare: no pressure, no move.
  EXPECT_FALSE(store_->AutomoveStep(now += 10));
}

INSTANTIATE_TEST_SUITE_P(Layouts, PageMoverTest, ::testing::ValuesIn(kLayouts), LayoutName);

}  // namespace
}  // namespace tinycached::core
