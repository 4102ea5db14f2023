#include "compact/stock_layout.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::compact {
namespace {

TEST(StockLayoutTest, ItemSizeIsMemcachedsFormula) {
  const StockLayout cas(true), nocas(false);
  // 48 header + 8 cas + key+1 + value+2: memcached 1.6 reports 61 bytes for a/x.
  EXPECT_EQ(cas.ItemSize(1, 0, 1), 61u);
  EXPECT_EQ(nocas.ItemSize(1, 0, 1), 53u);
  // Client flags cost 4 bytes only when non-zero.
  EXPECT_EQ(cas.ItemSize(1, 7, 1), 65u);
  // The fill experiment's largest keys (6 digits) still fit a 96-byte chunk.
  EXPECT_EQ(cas.ItemSize(6, 0, 1), 66u);
  EXPECT_EQ(cas.ItemSize(250, 0, 1000), 48u + 8 + 251 + 1002);
}

struct Case {
  bool cas;
  std::string key;
  uint32_t flags;
  std::string value;
};

class StockLayoutRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(StockLayoutRoundTrip, FieldsReadBackExactly) {
  const Case& c = GetParam();
  const StockLayout layout(c.cas);
  const size_t size = layout.ItemSize(c.key.size(), c.flags, c.value.size());
  std::vector<uint8_t> buf(size + 16, 0xAB);
  uint8_t* it = buf.data();
  layout.Init(it, 17, kLarge, c.key, c.flags, c.value.size(), c.value.data(), 1234, 5678);
  layout.SetCas(it, 0x0102030405060708ull);

  EXPECT_EQ(layout.Key(it), c.key);
  EXPECT_EQ(layout.Value(it), c.value);
  EXPECT_EQ(layout.ClientFlags(it), c.flags);
  EXPECT_EQ(layout.Cas(it), c.cas ? 0x0102030405060708ull : 0u);
  EXPECT_EQ(StockLayout::Time(it), 1234u);
  EXPECT_EQ(StockLayout::Exptime(it), 5678u);
  EXPECT_EQ(StockLayout::ClassId(it), 17);
  EXPECT_NE(StockLayout::Flags(it) & kLarge, 0);
  EXPECT_EQ((StockLayout::Flags(it) & kClientFlags) != 0, c.flags != 0);
  EXPECT_EQ(layout.TotalSize(it), size);
  // memcached's bytes: NUL after the key, "\r\n" after the value.
  const uint8_t* v = layout.ValuePtr(it);
  EXPECT_EQ(v[c.value.size()], '\r');
  EXPECT_EQ(v[c.value.size() + 1], '\n');
  EXPECT_EQ(*(reinterpret_cast<const uint8_t*>(layout.Key(it).data()) + c.key.size()), '\0');
  // Nothing written past the item.
  for (size_t i = size; i < buf.size(); ++i) EXPECT_EQ(buf[i], 0xAB) << i;
}

INSTANTIATE_TEST_SUITE_P(
    Items, StockLayoutRoundTrip,
    ::testing::Values(Case{true, "a", 0, "x"}, Case{false, "a", 0, "x"},
                      Case{true, "1234567", 42, ""}, Case{false, std::string(250, 'k'), 0xFFFFFFFF,
                                                          std::string(3000, '\0')},
                      Case{true, "key with\tbytes", 1, "binary\r\n\0value"}));

TEST(StockLayoutTest, LinksRoundTripAndStartNull) {
  const StockLayout layout(true);
  std::vector<uint8_t> a(96), b(96);
  layout.Init(a.data(), 1, 0, "a", 0, 1, "x", 0, 0);
  EXPECT_EQ(StockLayout::Next(a.data()), nullptr);
  EXPECT_EQ(StockLayout::Prev(a.data()), nullptr);
  EXPECT_EQ(StockLayout::HashNext(a.data()), nullptr);
  StockLayout::SetNext(a.data(), b.data());
  StockLayout::SetPrev(a.data(), a.data());
  StockLayout::SetHashNext(a.data(), b.data() + 8);
  EXPECT_EQ(StockLayout::Next(a.data()), b.data());
  EXPECT_EQ(StockLayout::Prev(a.data()), a.data());
  EXPECT_EQ(StockLayout::HashNext(a.data()), b.data() + 8);
  // Links do not disturb the payload.
  EXPECT_EQ(layout.Key(a.data()), "a");
  EXPECT_EQ(layout.Value(a.data()), "x");
}

}  // namespace
}  // namespace tinycached::compact
