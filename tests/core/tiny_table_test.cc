// The table's concurrent tests (writers, lock-free readers, Update, page
// releases) also run under ThreadSanitizer: see tests/tsan_suppressions.txt.
#include "core/tiny_table.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "gtest/gtest.h"

namespace tinycached::core {
namespace {

constexpr size_t kPage = 4096;  // 64 buckets, 512 slots a page

// Pages from the heap, at most `budget` of them at once.
class HeapPages : public TinyTable::PageSource {
 public:
  explicit HeapPages(size_t budget) : budget_(budget) {}
  ~HeapPages() override { EXPECT_EQ(out_.size(), 0u) << "the table kept pages"; }
  uint8_t* TakePage() override {
    if (out_.size() >= budget_) return nullptr;
    auto* p = static_cast<uint8_t*>(std::calloc(1, kPage));
    out_.insert(p);
    return p;
  }
  void ReturnPage(uint8_t* page) override {
    ASSERT_EQ(out_.erase(page), 1u);
    std::free(page);
  }
  size_t out() const { return out_.size(); }
  void set_budget(size_t b) { budget_ = b; }

 private:
  size_t budget_;
  absl::flat_hash_set<uint8_t*> out_;
};

using V = compact::tiny::SlotValue;

V CodeFor(uint64_t key) { return V{static_cast<uint32_t>(key * 2654435761u) & 0x7fffffff}; }

TEST(TinyTableTest, StoresFindsAndErases) {
  HeapPages pages(1000);
  {
    TinyTable t(kPage, 1000, &pages);
    EXPECT_EQ(t.key_bits(compact::tiny::kInt), 26 + 6);
    EXPECT_EQ(t.min_addr_bits(), 6);
    V code;
    EXPECT_FALSE(t.Get(1, &code));
    EXPECT_EQ(t.Put(1, V{10}), TinyTable::PutResult::kStored);
    EXPECT_EQ(t.pages(), 1u);
    ASSERT_TRUE(t.Get(1, &code));
    EXPECT_EQ(code.code, 10u);
    EXPECT_EQ(t.Put(1, V{11}), TinyTable::PutResult::kStored);  // overwrite
    EXPECT_EQ(t.items(), 1u);
    ASSERT_TRUE(t.Peek(1, &code));
    EXPECT_EQ(code.code, 11u);
    EXPECT_TRUE(t.Erase(1));
    EXPECT_FALSE(t.Erase(1));
    EXPECT_FALSE(t.Get(1, &code));
    EXPECT_EQ(t.items(), 0u);
  }
  EXPECT_EQ(pages.out(), 0u);
}

TEST(TinyTableTest, GrowsWithoutEvictingWhilePagesLast) {
  HeapPages pages(1000);
  TinyTable t(kPage, 1000, &pages);
  constexpr uint64_t kN = 100000;
  for (uint64_t k = 1; k <= kN; ++k) ASSERT_NE(t.Put(k, CodeFor(k)), TinyTable::PutResult::kNoRoom);
  EXPECT_EQ(t.evictions(), 0u);
  EXPECT_EQ(t.items(), kN);
  // Linear hashing keeps the load near its bound at any size.
  const double load = static_cast<double>(kN) / static_cast<double>(t.buckets() * 8);
  EXPECT_GT(load, TinyTable::kMaxLoad - 0.02);
  EXPECT_LE(load, TinyTable::kMaxLoad);
  EXPECT_LE(t.bytes(), (t.buckets() * 64 / kPage + 1) * kPage);
  for (uint64_t k = 1; k <= kN; ++k) {
    V code;
    ASSERT_TRUE(t.Get(k, &code)) << k;
    ASSERT_EQ(code, CodeFor(k));
  }
  // Keys at the top of the domain round-trip too.
  const uint64_t top = (uint64_t{1} << t.key_bits(compact::tiny::kInt)) - 1;
  ASSERT_NE(t.Put(top, V{5}), TinyTable::PutResult::kNoRoom);
  V code;
  ASSERT_TRUE(t.Get(top, &code));
  EXPECT_EQ(code.code, 5u);
}

// Keys of every class, mixed: a key of each class, with a code as wide
// as its class allows.
using compact::tiny::TinyKey;

TinyKey MixedKey(uint64_t i, const TinyTable& t) {
  namespace ct = compact::tiny;
  const int cls = static_cast<int>(i % ct::kClasses);
  // Spread over the class's whole domain (the high keys are the long ones).
  return ct::TagKey(cls, (i * 0x9e3779b97f4a7c15ULL) & ct::Mask(t.key_bits(cls)));
}
// Every third key of a 32-bit-code class gets a wide value; class 5's are all wide.
V MixedCode(const TinyKey& key) {
  namespace ct = compact::tiny;
  const int w = ct::ValueBits(key.cls);
  V v;
  if (w == ct::kHugeWideBits || (w == ct::kWideCodeBits && key.n % 3 == 0)) {
    const std::string text = w == ct::kHugeWideBits
                                 ? std::to_string(key.n)
                                 : std::to_string(key.n * 2654435761u | (uint64_t{1} << 63));
    EXPECT_TRUE(ct::EncodeValue(text, w, &v));
    EXPECT_TRUE(ct::WideValue(key.cls, v));
    return v;
  }
  v.code = static_cast<uint32_t>((key.n * 2654435761u) & ct::Mask(w));
  if (ct::WideCode(v.code)) v.code &= ~(uint32_t{1} << 28);  // a narrow code, not a wide mark
  return v;
}
std::pair<int, uint64_t> Id(const TinyKey& k) { return {k.cls, k.n}; }

TEST(TinyTableTest, EveryKeyClassRoundTripsThroughGrowthMovesAndShrinking) {
  namespace ct = compact::tiny;
  HeapPages pages(1000);
  TinyTable t(kPage, 1000, &pages);
  constexpr uint64_t kN = 30000;
  absl::flat_hash_map<std::pair<int, uint64_t>, V> want;
  for (uint64_t i = 1; i <= kN; ++i) {
    const TinyKey k = MixedKey(i, t);
    want[Id(k)] = MixedCode(k);
    ASSERT_EQ(t.Put(k, want[Id(k)]), TinyTable::PutResult::kStored);
  }
  // Equal numbers in different classes are different keys.
  ASSERT_EQ(t.Put(ct::TagKey(ct::kInt, 77), V{1}), TinyTable::PutResult::kStored);
  ASSERT_EQ(t.Put(ct::TagKey(ct::kPrefixed, 77), V{2}), TinyTable::PutResult::kStored);
  want[Id(ct::TagKey(ct::kInt, 77))] = V{1};
  want[Id(ct::TagKey(ct::kPrefixed, 77))] = V{2};
  EXPECT_EQ(t.items(), want.size());
  EXPECT_GT(t.wide_items(), want.size() / 6);
  const auto check_all = [&](bool all_present) {
    size_t cursor = 0, seen = 0;
    t.ForEach(&cursor, SIZE_MAX, [&](const TinyKey& key, const V& code, bool) {
      auto it = want.find(Id(key));
      ASSERT_NE(it, want.end()) << key.cls << " " << key.n;
      ASSERT_EQ(code, it->second) << key.cls << " " << key.n;
      ++seen;
    });
    EXPECT_EQ(seen, t.items());
    if (all_present) {
      EXPECT_EQ(seen, want.size());
    }
    for (const auto& [id, code] : want) {
      V got;
      if (t.Peek(TinyKey(id.first, id.second), &got)) {
        ASSERT_EQ(got, code) << id.first << " " << id.second;
      } else {
        ASSERT_FALSE(all_present) << id.first << " " << id.second;
      }
    }
  };
  check_all(true);
  // Merging buckets gives every remainder a bit back, in every class.
  while (t.pages() > 12) ASSERT_TRUE(t.ReleasePage());
  check_all(false);
  EXPECT_EQ(t.items() + t.evictions(), want.size());
}

TEST(TinyTableTest, EvictsOnlyWhenOutOfPagesAndNeverCorrupts) {
  HeapPages pages(8);  // 4096 slots
  TinyTable t(kPage, 1000, &pages);
  uint64_t first_eviction_at = 0;
  for (uint64_t k = 1; k <= 20000; ++k) {
    t.Put(k, CodeFor(k));
    if (first_eviction_at == 0 && t.evictions() > 0) first_eviction_at = k;
  }
  EXPECT_EQ(pages.out(), 8u);
  // The first eviction comes with the slots nearly full.
  EXPECT_GT(first_eviction_at, 0.97 * 8 * 512);
  size_t found = 0;
  for (uint64_t k = 1; k <= 20000; ++k) {
    V code;
    if (t.Peek(k, &code)) {
      ++found;
      ASSERT_EQ(code, CodeFor(k)) << k;
    }
  }
  EXPECT_EQ(found, t.items());
  EXPECT_EQ(t.items() + t.evictions(), 20000u);
}

TEST(TinyTableTest, ReadItemsSurviveEviction) {
  HeapPages pages(8);
  TinyTable t(kPage, 1000, &pages);
  for (uint64_t k = 1; k <= 4000; ++k) t.Put(k, CodeFor(k));
  V code;
  size_t hot = 0;
  for (uint64_t k = 1; k <= 4000; k += 10) hot += t.Get(k, &code) ? 1 : 0;
  for (uint64_t k = 100000; k < 101000; ++k) t.Put(k, CodeFor(k));
  size_t hot_left = 0, cold_left = 0, cold = 0;
  for (uint64_t k = 1; k <= 4000; ++k) {
    if (k % 10 == 1) {
      hot_left += t.Peek(k, &code) ? 1 : 0;
    } else {
      ++cold;
      cold_left += t.Peek(k, &code) ? 1 : 0;
    }
  }
  EXPECT_GT(static_cast<double>(hot_left) / hot, 0.95);
  EXPECT_LT(static_cast<double>(cold_left) / cold, 0.85);
}

TEST(TinyTableTest, ReleasingPagesKeepsWhatFits) {
  HeapPages pages(1000);
  TinyTable t(kPage, 1000, &pages);
  for (uint64_t k = 1; k <= 20000; ++k) t.Put(k * 7919, CodeFor(k));
  const size_t before = t.pages();
  ASSERT_GT(before, 10u);
  for (size_t n = before; n > 0; --n) {
    ASSERT_TRUE(t.ReleasePage());
    EXPECT_EQ(t.pages(), n - 1);
    EXPECT_EQ(pages.out(), n - 1);
    size_t found = 0;
    for (uint64_t k = 1; k <= 20000; ++k) {
      V code;
      if (t.Peek(k * 7919, &code)) {
        ++found;
        ASSERT_EQ(code, CodeFor(k));
      }
    }
    ASSERT_EQ(found, t.items());
    ASSERT_LE(found, t.buckets() * 8);
  }
  EXPECT_FALSE(t.ReleasePage());
  EXPECT_EQ(t.items(), 0u);
  // And it grows again.
  for (uint64_t k = 1; k <= 2000; ++k) t.Put(k, CodeFor(k));
  EXPECT_EQ(t.items(), 2000u);
}

TEST(TinyTableTest, ClearKeepsPages) {
  HeapPages pages(1000);
  TinyTable t(kPage, 1000, &pages);
  for (uint64_t k = 1; k <= 5000; ++k) t.Put(k, V{1});
  const size_t n = t.pages();
  t.Clear();
  EXPECT_EQ(t.items(), 0u);
  EXPECT_EQ(t.pages(), n);
  V code;
  EXPECT_FALSE(t.Get(17, &code));
}

// Keys base..base + kConcurrentKeys - 1 of two writers (base 1 and 1000000).
constexpr uint64_t kConcurrentKeys = 20000;
constexpr uint64_t kPutsPerRelease = 500;
constexpr uint64_t kWriterBases[] = {1, 1000000};

struct ShrinkRun {
  uint64_t bad = 0;       // reads that saw a value the key never had in that round
  uint64_t releases = 0;  // ReleasePage() calls made
};

// Two writers store value_of(k, round) for `rounds` rounds over their keys,
// each reading back the key 5 before the one it stored, while a shrinker
// keeps calling ReleasePage(). The releases are paced by counts, not left to
// the scheduler: after its n-th kPutsPerRelease puts a writer waits until
// the shrinker has called ReleasePage() n times, so every run shrinks the
// table under the writers at least that often (the shrinker never waits).
ShrinkRun WriteWhileShrinking(TinyTable& t, int rounds,
                              absl::FunctionRef<V(uint64_t, int)> value_of) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> releases{0};
  std::atomic<uint64_t> bad{0};
  auto writer = [&](uint64_t base) {
    uint64_t puts = 0;
    for (int round = 0; round < rounds; ++round) {
      for (uint64_t k = base; k < base + kConcurrentKeys; ++k) {
        t.Put(k, value_of(k, round));
        const uint64_t r = k - 5 < base ? k : k - 5;
        V code;
        if (t.Get(r, &code) && code != value_of(r, round)) bad.fetch_add(1);
        if (++puts % kPutsPerRelease == 0) {
          while (releases.load() < puts / kPutsPerRelease) std::this_thread::yield();
        }
      }
    }
  };
  std::thread shrinker([&] {
    while (!stop.load()) {
      t.ReleasePage();
      releases.fetch_add(1);
      std::this_thread::yield();
    }
  });
  std::thread w1(writer, kWriterBases[0]), w2(writer, kWriterBases[1]);
  w1.join();
  w2.join();
  stop.store(true);
  shrinker.join();
  return {bad.load(), releases.load()};
}

TEST(TinyTableTest, ConcurrentWritersReadersAndReleases) {
  HeapPages pages(60);
  TinyTable t(kPage, 1000, &pages);
  const ShrinkRun run = WriteWhileShrinking(t, 3, [](uint64_t k, int) { return CodeFor(k); });
  EXPECT_GE(run.releases, 3 * kConcurrentKeys / kPutsPerRelease);
  EXPECT_EQ(run.bad, 0u);
  size_t found = 0;
  for (uint64_t base : kWriterBases) {
    for (uint64_t k = base; k < base + kConcurrentKeys; ++k) {
      V code;
      if (t.Peek(k, &code)) {
        ++found;
        ASSERT_EQ(code, CodeFor(k));
      }
    }
  }
  EXPECT_EQ(found, t.items());
}

// One slot or two: a third of the keys get a value that takes a wide pair.
V MixedWidth(uint64_t k) {
  if (k % 3 != 0) return CodeFor(k);
  V v;
  EXPECT_TRUE(compact::tiny::EncodeValue(std::to_string(k * 0x9e3779b97f4a7c15ULL | 1), 32, &v));
  return v;
}

TEST(TinyTableTest, WideAndNarrowItemsUnderConcurrentWritersReadersAndReleases) {
  HeapPages pages(60);
  TinyTable t(kPage, 1000, &pages);
  // As above, with pairs and single slots mixed, and values that change
  // width: round r stores the key's value, or (odd rounds) a narrow one.
  auto value_of = [](uint64_t k, int round) { return round % 2 == 0 ? MixedWidth(k) : CodeFor(k); };
  const ShrinkRun run = WriteWhileShrinking(t, 4, value_of);
  EXPECT_GE(run.releases, 4 * kConcurrentKeys / kPutsPerRelease);
  EXPECT_EQ(run.bad, 0u);
  // The last round was narrow; store the wide values once more, no releases.
  for (uint64_t base : kWriterBases) {
    for (uint64_t k = base; k < base + kConcurrentKeys; ++k) t.Put(k, MixedWidth(k));
  }
  size_t found = 0, wide = 0;
  for (uint64_t base : kWriterBases) {
    for (uint64_t k = base; k < base + kConcurrentKeys; ++k) {
      V code;
      if (t.Peek(k, &code)) {
        ++found;
        ASSERT_EQ(code, MixedWidth(k)) << k;
        wide += compact::tiny::WideCode(code.code) ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(found, t.items());
  EXPECT_EQ(wide, t.wide_items());
  EXPECT_GT(wide, 0u);
  size_t cursor = 0, visited = 0;
  t.ForEach(&cursor, SIZE_MAX, [&](const compact::tiny::TinyKey&, const V&, bool) { ++visited; });
  EXPECT_EQ(visited, found);
}

// Lock-free readers against writers, growth and page releases: every value
// a reader sees is one that was stored under that key (values name their
// key), and keys a reader's own thread stored and nobody removed are found.
// The readers never lock; the writers grow the table while a shrinker gives
// pages back, paced by counts as in WriteWhileShrinking.
TEST(TinyTableTest, LockFreeReadersSeeOnlyStoredValuesThroughGrowthAndReleases) {
  HeapPages pages(40);
  TinyTable t(kPage, 1000, &pages);
  constexpr uint64_t kKeys = 30000;
  constexpr int kRounds = 3;
  // Round r stores r * 2^20 + k (below 2^22: a narrow code of a class-0 key).
  auto value_of = [](uint64_t k, int round) { return V{static_cast<uint32_t>((round << 20) | k)}; };
  std::atomic<int> writers_done{0};
  std::atomic<uint64_t> releases{0};
  std::atomic<uint64_t> bad{0}, seen{0};
  auto writer = [&](uint64_t first) {
    uint64_t puts = 0;
    for (int round = 0; round < kRounds; ++round) {
      for (uint64_t k = first; k <= kKeys; k += 2) {
        t.Put(k, value_of(k, round));
        if (++puts % kPutsPerRelease == 0) {
          while (releases.load() < puts / kPutsPerRelease) std::this_thread::yield();
        }
      }
    }
    writers_done.fetch_add(1);
  };
  auto reader = [&](uint64_t seed) {
    uint64_t x = seed;
    while (writers_done.load() < 2) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      const uint64_t k = 1 + (x >> 33) % kKeys;
      V v;
      if (!t.Get(k, &v)) continue;
      seen.fetch_add(1, std::memory_order_relaxed);
      if ((v.code & ((1u << 20) - 1)) != k || (v.code >> 20) >= kRounds) bad.fetch_add(1);
    }
  };
  std::thread shrinker([&] {
    while (writers_done.load() < 2) {
      t.ReleasePage();
      releases.fetch_add(1);
      std::this_thread::yield();
    }
  });
  std::thread r1(reader, 1), r2(reader, 2);
  std::thread w1(writer, 1), w2(writer, 2);
  w1.join();
  w2.join();
  r1.join();
  r2.join();
  shrinker.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(seen.load(), 0u);
  EXPECT_GE(releases.load(), kRounds * (kKeys / 2) / kPutsPerRelease);  // each writer's pace
  // What is left is whole: each present key holds a value of its own.
  size_t found = 0;
  for (uint64_t k = 1; k <= kKeys; ++k) {
    V v;
    if (!t.Peek(k, &v)) continue;
    ++found;
    ASSERT_EQ(v.code & ((1u << 20) - 1), k);
  }
  EXPECT_EQ(found, t.items());
}

// Update() is a compare-and-swap on the slot: two threads incrementing the
// same counters lose no increment while a third thread's inserts grow the
// table (splits rewrite every slot of a split bucket) and cuckoo moves carry
// the counters between their two buckets, and readers look on.
TEST(TinyTableTest, ConcurrentUpdatesLoseNoIncrementThroughSplitsAndMoves) {
  HeapPages pages(1000);
  TinyTable t(kPage, 1000, &pages);
  constexpr uint64_t kCounters = 2000;
  constexpr uint32_t kIncrements = 150;
  for (uint64_t k = 1; k <= kCounters; ++k)
    ASSERT_EQ(t.Put(k, V{0}), TinyTable::PutResult::kStored);
  std::atomic<int> done{0};
  std::atomic<uint64_t> bad{0};
  auto incrementer = [&] {
    for (uint32_t n = 0; n < kIncrements; ++n) {
      for (uint64_t k = 1; k <= kCounters; ++k) {
        const auto r = t.Update(k, [](const V& old, V* now) {
          *now = V{old.code + 1};
          return true;
        });
        if (r != TinyTable::UpdateResult::kUpdated) bad.fetch_add(1);
      }
    }
    done.fetch_add(1);
  };
  std::thread filler([&] {
    // Fresh keys while the incrementers work, the table growing all along
    // (150k keys fit 1000 pages at the growth load).
    for (uint64_t k = 1000000; k < 1150000 && done.load() < 2; ++k) t.Put(k, CodeFor(k));
  });
  std::thread reader([&] {
    while (done.load() < 2) {
      for (uint64_t k = 1; k <= kCounters; ++k) {
        V v;
        if (!t.Get(k, &v) || v.code > 2 * kIncrements) bad.fetch_add(1);
      }
    }
  });
  std::thread i1(incrementer), i2(incrementer);
  i1.join();
  i2.join();
  filler.join();
  reader.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(t.evictions(), 0u);
  EXPECT_GT(t.buckets(), 2 * kCounters / 8);  // it grew meanwhile
  for (uint64_t k = 1; k <= kCounters; ++k) {
    V v;
    ASSERT_TRUE(t.Peek(k, &v)) << k;
    ASSERT_EQ(v.code, 2 * kIncrements) << k;
  }
}

// A wide item declines Update (its value spans two words); so does fn.
TEST(TinyTableTest, UpdateDeclinesWideItemsAndLeavesThemAlone) {
  HeapPages pages(10);
  TinyTable t(kPage, 100, &pages);
  V wide;
  ASSERT_TRUE(compact::tiny::EncodeValue("18446744073709551615", 32, &wide));
  ASSERT_TRUE(compact::tiny::WideValue(0, wide));
  ASSERT_NE(t.Put(7, wide), TinyTable::PutResult::kNoRoom);
  ASSERT_NE(t.Put(8, V{41}), TinyTable::PutResult::kNoRoom);
  int calls = 0;
  auto plus_one = [&](const V& old, V* now) {
    ++calls;
    *now = V{old.code + 1};
    return true;
  };
  EXPECT_EQ(t.Update(7, plus_one), TinyTable::UpdateResult::kDeclined);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(t.Update(9, plus_one), TinyTable::UpdateResult::kAbsent);
  EXPECT_EQ(t.Update(8, [](const V&, V*) { return false; }), TinyTable::UpdateResult::kDeclined);
  EXPECT_EQ(t.Update(8, plus_one), TinyTable::UpdateResult::kUpdated);
  V v;
  ASSERT_TRUE(t.Peek(8, &v));
  EXPECT_EQ(v.code, 42u);
  ASSERT_TRUE(t.Peek(7, &v));
  EXPECT_EQ(v, wide);
}

}  // namespace
}  // namespace tinycached::core
