#include "core/tiny_table.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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

uint32_t CodeFor(uint64_t key) { return static_cast<uint32_t>(key * 2654435761u) & 0x7fffffff; }

TEST(TinyTableTest, StoresFindsAndErases) {
  HeapPages pages(1000);
  {
    TinyTable t(kPage, 1000, &pages);
    EXPECT_EQ(t.key_bits(compact::tiny::kInt), 26 + 6);
    EXPECT_EQ(t.min_addr_bits(), 6);
    uint32_t code;
    EXPECT_FALSE(t.Get(1, &code));
    EXPECT_EQ(t.Put(1, 10), TinyTable::PutResult::kStored);
    EXPECT_EQ(t.pages(), 1u);
    ASSERT_TRUE(t.Get(1, &code));
    EXPECT_EQ(code, 10u);
    EXPECT_EQ(t.Put(1, 11), TinyTable::PutResult::kStored);  // overwrite
    EXPECT_EQ(t.items(), 1u);
    ASSERT_TRUE(t.Peek(1, &code));
    EXPECT_EQ(code, 11u);
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
    uint32_t code = 0;
    ASSERT_TRUE(t.Get(k, &code)) << k;
    ASSERT_EQ(code, CodeFor(k));
  }
  // Keys at the top of the domain round-trip too.
  const uint64_t top = (uint64_t{1} << t.key_bits(compact::tiny::kInt)) - 1;
  ASSERT_NE(t.Put(top, 5), TinyTable::PutResult::kNoRoom);
  uint32_t code = 0;
  ASSERT_TRUE(t.Get(top, &code));
  EXPECT_EQ(code, 5u);
}

// Keys of every class, mixed: a key of each class, with a code as wide
// as its class allows.
uint64_t MixedKey(uint64_t i, const TinyTable& t) {
  namespace ct = compact::tiny;
  const int cls = static_cast<int>(i % ct::kClasses);
  const uint64_t top = uint64_t{1} << t.key_bits(cls);
  // Spread over the class's whole domain (the high keys are the long ones).
  return ct::TagKey(cls, (i * 0x9e3779b97f4a7c15ULL) & (top - 1));
}
uint32_t MixedCode(uint64_t key) {
  namespace ct = compact::tiny;
  return static_cast<uint32_t>((key * 2654435761u) & ct::Mask(ct::ValueBits(ct::ClassOfKey(key))));
}

TEST(TinyTableTest, EveryKeyClassRoundTripsThroughGrowthMovesAndShrinking) {
  namespace ct = compact::tiny;
  HeapPages pages(1000);
  TinyTable t(kPage, 1000, &pages);
  constexpr uint64_t kN = 30000;
  absl::flat_hash_map<uint64_t, uint32_t> want;
  for (uint64_t i = 1; i <= kN; ++i) {
    const uint64_t k = MixedKey(i, t);
    want[k] = MixedCode(k);
    ASSERT_EQ(t.Put(k, want[k]), TinyTable::PutResult::kStored);
  }
  // Equal numbers in different classes are different keys.
  ASSERT_EQ(t.Put(ct::TagKey(ct::kInt, 77), 1), TinyTable::PutResult::kStored);
  ASSERT_EQ(t.Put(ct::TagKey(ct::kPrefixed, 77), 2), TinyTable::PutResult::kStored);
  want[ct::TagKey(ct::kInt, 77)] = 1;
  want[ct::TagKey(ct::kPrefixed, 77)] = 2;
  EXPECT_EQ(t.items(), want.size());
  const auto check_all = [&](bool all_present) {
    size_t cursor = 0, seen = 0;
    t.ForEach(&cursor, SIZE_MAX, [&](uint64_t key, uint32_t code, bool) {
      auto it = want.find(key);
      ASSERT_NE(it, want.end()) << key;
      ASSERT_EQ(code, it->second) << key;
      ++seen;
    });
    EXPECT_EQ(seen, t.items());
    if (all_present) {
      EXPECT_EQ(seen, want.size());
    }
    for (const auto& [key, code] : want) {
      uint32_t got = 0;
      if (t.Peek(key, &got)) {
        ASSERT_EQ(got, code) << key;
      } else {
        ASSERT_FALSE(all_present) << key;
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
    uint32_t code;
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
  uint32_t code;
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
      uint32_t code;
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
  for (uint64_t k = 1; k <= 5000; ++k) t.Put(k, 1);
  const size_t n = t.pages();
  t.Clear();
  EXPECT_EQ(t.items(), 0u);
  EXPECT_EQ(t.pages(), n);
  uint32_t code;
  EXPECT_FALSE(t.Get(17, &code));
}

TEST(TinyTableTest, ConcurrentWritersReadersAndReleases) {
  HeapPages pages(60);
  TinyTable t(kPage, 1000, &pages);
  // The page releases are paced by counts, not left to the scheduler: after
  // its n-th kPutsPerRelease puts a writer waits until the shrinker has
  // called ReleasePage() n times, so every run shrinks the table under the
  // writers at least that often (the shrinker never waits for them).
  constexpr uint64_t kKeys = 20000, kPutsPerRelease = 500;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> releases{0};
  std::atomic<uint64_t> bad{0};
  auto writer = [&](uint64_t base) {
    uint64_t puts = 0;
    for (int round = 0; round < 3; ++round) {
      for (uint64_t k = base; k < base + kKeys; ++k) {
        t.Put(k, CodeFor(k));
        uint32_t code;
        if (t.Get(k - 5 < base ? k : k - 5, &code) && code != CodeFor(k - 5 < base ? k : k - 5)) {
          bad.fetch_add(1);
        }
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
  std::thread w1(writer, 1), w2(writer, 1000000);
  w1.join();
  w2.join();
  stop.store(true);
  shrinker.join();
  EXPECT_GE(releases.load(), 3 * kKeys / kPutsPerRelease);
  EXPECT_EQ(bad.load(), 0u);
  size_t found = 0;
  for (uint64_t base : {uint64_t{1}, uint64_t{1000000}}) {
    for (uint64_t k = base; k < base + kKeys; ++k) {
      uint32_t code;
      if (t.Peek(k, &code)) {
        ++found;
        ASSERT_EQ(code, CodeFor(k));
      }
    }
  }
  EXPECT_EQ(found, t.items());
}

}  // namespace
}  // namespace tinycached::core
