#include "compact/ref.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::compact {
namespace {

TEST(RefCodecTest, Widths) {
  EXPECT_EQ(RefCodec::Pointer().width(), 8u);
  EXPECT_EQ(RefCodec::Page(1, nullptr).width(), 3u);
  EXPECT_EQ(RefCodec::Page(2, nullptr).width(), 4u);
  EXPECT_EQ(RefCodec::Page(3, nullptr).width(), 5u);
  // The all-ones page index is null's.
  EXPECT_EQ(RefCodec::Page(1, nullptr).max_pages(), 255u);
  EXPECT_EQ(RefCodec::Page(2, nullptr).max_pages(), 65535u);
}

TEST(RefCodecTest, PointerNullIsZero) {
  const RefCodec r = RefCodec::Pointer();
  uint8_t slot[8];
  r.Store(slot, nullptr);
  for (uint8_t b : slot) EXPECT_EQ(b, 0);
  EXPECT_EQ(r.Load(slot), nullptr);
  r.Store(slot, slot + 3);
  EXPECT_EQ(r.Load(slot), slot + 3);
}

// The codec only does arithmetic, so a 256-page arena of 1 MiB pages is
// described at an address nothing is mapped at; addresses are compared,
// never dereferenced.
class PageRefTest : public ::testing::TestWithParam<int> {};

TEST_P(PageRefTest, EveryChunkRoundTripsAndNullIsAllOnes) {
  const int page_bytes = GetParam();
  std::vector<uint32_t> sizes(256);
  for (size_t i = 0; i < sizes.size(); ++i) sizes[i] = static_cast<uint32_t>(16 + i * 7);
  Arena arena;
  arena.base = reinterpret_cast<uint8_t*>(uintptr_t{1} << 44);
  arena.page_shift = 20;
  arena.chunk_size = sizes.data();
  const RefCodec r = RefCodec::Page(page_bytes, &arena);

  uint8_t slot[8];
  std::fill(std::begin(slot), std::end(slot), 0x5A);
  r.Store(slot, nullptr);
  for (size_t i = 0; i < r.width(); ++i) EXPECT_EQ(slot[i], 0xFF);
  EXPECT_EQ(slot[r.width()], 0x5A);  // nothing past the reference
  EXPECT_EQ(r.Load(slot), nullptr);

  const size_t pages = std::min<uint64_t>(r.max_pages(), sizes.size());
  for (size_t page = 0; page < pages; page += 13) {
    const size_t per_page = std::min<size_t>((size_t{1} << 20) / sizes[page], kMaxChunksPerPage);
    for (size_t chunk : {size_t{0}, size_t{1}, per_page / 2, per_page - 1}) {
      const uint8_t* p = arena.base + (page << 20) + chunk * sizes[page];
      r.Store(slot, p);
      EXPECT_EQ(r.Load(slot), p) << page << ":" << chunk;
      EXPECT_EQ(r.Encode(p), (uint64_t{page} << 16) | chunk);
      EXPECT_EQ(slot[r.width()], 0x5A);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PageBytes, PageRefTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace tinycached::compact
