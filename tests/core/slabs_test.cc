#include "core/slabs.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::core {
namespace {

// "slab class   1: chunk size        96 perslab   10922" lines printed by
// Debian's memcached 1.6.18 with -vv (tests/core/testdata/).
std::vector<std::pair<size_t, size_t>> ReadMemcachedClasses(const std::string& name) {
  std::ifstream in(std::string(TC_TESTDATA_DIR) + "/memcached_1.6.18_classes_" + name + ".txt");
  std::vector<std::pair<size_t, size_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    size_t id, size, per;
    if (std::sscanf(line.c_str(), "slab class %zu: chunk size %zu perslab %zu", &id, &size, &per) ==
        3) {
      out.emplace_back(size, per);
    }
  }
  return out;
}

struct TableCase {
  std::string name;
  size_t min_space;
  double factor;
  size_t item_size_max;
};

class MemcachedClassTable : public ::testing::TestWithParam<TableCase> {};

TEST_P(MemcachedClassTable, MatchesMemcached) {
  const TableCase& c = GetParam();
  SlabOptions o;
  o.min_space = c.min_space;
  o.factor = c.factor;
  o.item_size_max = c.item_size_max;
  absl::StatusOr<SlabClassTable> t = SlabClassTable::Build(o);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto expected = ReadMemcachedClasses(c.name);
  ASSERT_FALSE(expected.empty()) << "missing test data for " << c.name;
  ASSERT_EQ(t->count(), static_cast<int>(expected.size()));
  for (int i = 1; i <= t->count(); ++i) {
    EXPECT_EQ(t->ChunkSize(i), expected[i - 1].first) << "class " << i;
    EXPECT_EQ(t->PerPage(i), expected[i - 1].second) << "class " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Debian, MemcachedClassTable,
                         ::testing::Values(TableCase{"default", 48, 1.25, 1 << 20},
                                           TableCase{"n5_f105", 5, 1.05, 1 << 20},
                                           TableCase{"f12_n20_i4m", 20, 1.2, 4 << 20}),
                         [](const auto& info) { return info.param.name; });

TEST(SlabClassTableTest, ClassForPicksSmallestFittingChunk) {
  absl::StatusOr<SlabClassTable> t = SlabClassTable::Build(SlabOptions{});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ClassFor(0), 0);
  EXPECT_EQ(t->ClassFor(1), 1);
  EXPECT_EQ(t->ClassFor(96), 1);
  EXPECT_EQ(t->ClassFor(97), 2);
  EXPECT_EQ(t->ClassFor(120), 2);
  EXPECT_EQ(t->ClassFor(524288), t->count());
  EXPECT_FALSE(t->IsLarge(524288));
  // Larger than a chunk: a large item, charged to the largest class.
  EXPECT_EQ(t->ClassFor(524289), t->count());
  EXPECT_TRUE(t->IsLarge(524289));
  EXPECT_EQ(t->ClassFor(1 << 20), t->count());
  EXPECT_EQ(t->ClassFor((1 << 20) + 1), 0);
}

TEST(SlabClassTableTest, AlignmentAndMonotonicity) {
  for (size_t align : {1, 2, 4, 8}) {
    SlabOptions o;
    o.min_space = 5;
    o.factor = 1.01;
    o.align = align;
    o.max_classes = 250;
    absl::StatusOr<SlabClassTable> t = SlabClassTable::Build(o);
    ASSERT_TRUE(t.ok());
    EXPECT_LE(t->count(), 250);
    for (int i = 1; i < t->count(); ++i) {
      EXPECT_EQ(t->ChunkSize(i) % align, 0u) << "align " << align << " class " << i;
      EXPECT_LT(t->ChunkSize(i), t->ChunkSize(i + 1));
    }
  }
}

TEST(SlabClassTableTest, RejectsBadKnobs) {
  SlabOptions o;
  o.factor = 1.0;
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  o = SlabOptions{};
  o.min_space = 0;
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  o = SlabOptions{};
  o.item_size_max = 64 << 10;  // below the default chunk max, as memcached refuses
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  o = SlabOptions{};
  o.align = 3;
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  // memcached's slab_chunk_max rules: it divides the page and -I.
  o = SlabOptions{};
  o.item_size_max = 1500 << 10;
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  o = SlabOptions{};
  o.item_size_max = 2 << 20;
  o.chunk_max = 2 << 20;  // larger than a page: chunks_per_page would be 0
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  o.chunk_max = 300 << 10;
  EXPECT_FALSE(SlabClassTable::Build(o).ok());
  o.chunk_max = 16 << 10;
  EXPECT_TRUE(SlabClassTable::Build(o).ok());
}

TEST(PagePoolTest, EnforcesLimitButGivesEveryClassItsFirstPage) {
  PagePool pool(2 << 20, 1 << 20, 8);
  uint8_t* a = pool.NewPage(false, 1, 96);
  uint8_t* b = pool.NewPage(false, 2, 120);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(pool.NewPage(false, 1, 96), nullptr);
  EXPECT_EQ(pool.used(), size_t{2} << 20);
  uint8_t* first = pool.NewPage(true, 3, 200);  // a class with no page yet
  ASSERT_NE(first, nullptr);
  first[0] = 1;
  first[(1 << 20) - 1] = 1;  // the whole page is usable
  EXPECT_EQ(pool.pages(), 3u);
  EXPECT_EQ(pool.AllocLarge(1, false, 4), nullptr);
  // Pages are arena slots: the class and chunk size are found from any address.
  EXPECT_EQ(pool.ClassOf(a + 96 * 5), 1);
  EXPECT_EQ(pool.ClassOf(b), 2);
  EXPECT_EQ(pool.ClassOf(first + (1 << 20) - 1), 3);
  EXPECT_EQ((first - pool.arena().base) % (1 << 20), 0);
  EXPECT_EQ(pool.arena().chunk_size[(b - pool.arena().base) >> 20], 120u);
}

TEST(PagePoolTest, LargeBlocksChargeTheirSizeAndGiveSlotsBack) {
  PagePool pool(4 << 20, 1 << 20, 4);
  uint8_t* big = pool.AllocLarge((2 << 20) + 5, false, 9);  // three slots
  ASSERT_NE(big, nullptr);
  big[(2 << 20) + 4] = 7;
  EXPECT_EQ(pool.used(), (size_t{2} << 20) + 5);
  EXPECT_EQ(pool.ClassOf(big), 9);
  EXPECT_NE(pool.NewPage(false, 1, 64), nullptr);       // the fourth slot
  EXPECT_EQ(pool.AllocLarge(1000, false, 9), nullptr);  // bytes left, but no slot
  pool.FreeLarge(big, (2 << 20) + 5);
  EXPECT_EQ(pool.used(), size_t{1} << 20);
  uint8_t* again = pool.AllocLarge(1000, false, 9);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again[0], 0);  // memory given back reads as zero
}

}  // namespace
}  // namespace tinycached::core
