// tests/core/engine_upkeep_test.cc — the conformance suite of core/engine.h
// (fixture: engine_test_util.h), continued: page moves and automove,
// reporting, memory limits and eviction, and many threads on one engine.
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

// Instantiated over kCases once, in engine_test.cc.

}  // namespace
}  // namespace tinycached::core::engine_test
