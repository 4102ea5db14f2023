#include "compact/key_codec.h"

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace tinycached::compact {
namespace {

std::string Pack(std::string_view key) {
  uint8_t out[kMaxPackedKey];
  const size_t n = PackDecimalKey(key, out);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string Unpack(const std::string& packed) {
  char out[kMaxDecimalKey];
  const size_t n =
      UnpackDecimalKey(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(), out);
  return std::string(out, n);
}

TEST(KeyCodecTest, KnownEncodings) {
  EXPECT_EQ(Pack("0"), std::string(1, '\0'));
  EXPECT_EQ(Pack("7"), "\x07");
  EXPECT_EQ(Pack("249"), "\xf9");
  EXPECT_EQ(Pack("250"), std::string("\x01\x00", 2));
  EXPECT_EQ(Pack("1234567"), "\x13\xbc\x43");  // 19*250^2 + 188*250 + 67
  EXPECT_EQ(Pack("18446744073709551615").size(), 9u);
}

TEST(KeyCodecTest, NonCanonicalKeysStayText) {
  for (const char* k : {"", "01", "00", "+1", "-1", " 1", "1 ", "1a", "0x10", "1.0",
                        "18446744073709551616", "99999999999999999999", "000000000000000000001"}) {
    EXPECT_EQ(Pack(k), "") << k;
  }
}

TEST(KeyCodecTest, RoundTripIsExactAndSizesAreMinimal) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    const std::string key = std::to_string(v);
    const std::string packed = Pack(key);
    ASSERT_FALSE(packed.empty()) << key;
    EXPECT_EQ(Unpack(packed), key);
    for (unsigned char d : packed) EXPECT_LT(d, kKeyBase);
    size_t digits = 1;
    for (uint64_t x = v; x >= kKeyBase; x /= kKeyBase) ++digits;
    EXPECT_EQ(packed.size(), digits) << key;
  }
}

TEST(KeyCodecTest, StoredKeyPacksOnlyWhenAsked) {
  const StoredKey text("1234567", false);
  EXPECT_FALSE(text.packed());
  EXPECT_EQ(text.bytes(), "1234567");
  const StoredKey packed("1234567", true);
  EXPECT_TRUE(packed.packed());
  EXPECT_EQ(packed.bytes().size(), 3u);
  const StoredKey other("k1", true);
  EXPECT_FALSE(other.packed());
  EXPECT_EQ(other.bytes(), "k1");
}

}  // namespace
}  // namespace tinycached::compact
