#include "compact/tiny_slot.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace tinycached::compact::tiny {
namespace {

std::string RoundTrip(std::string_view text) {
  uint32_t code = 0;
  if (!EncodeValue(text, &code)) return "<none>";
  char out[kMaxText];
  return std::string(out, DecodeValue(code, out));
}

TEST(TinyValueTest, TextsComeBackByteForByte) {
  for (std::string_view t : {"", "x", "0", "7", "42", "12345678", "536870911", "9 ", "1   ",
                             "007", " 1", "ab", "\r\n", "0 "}) {
    EXPECT_EQ(RoundTrip(t), t) << "'" << t << "'";
  }
}

TEST(TinyValueTest, WhatHasNoCode) {
  for (std::string_view t : {"536870912", "1234567890", "1    ", "abcd", "00 7", "01  "}) {
    uint32_t code;
    EXPECT_FALSE(EncodeValue(t, &code)) << "'" << t << "'";
  }
}

TEST(TinyValueTest, AnIntegerTextIsAlwaysAnInt) {
  uint32_t a, b;
  ASSERT_TRUE(EncodeValue("7", &a));
  EXPECT_EQ(a & kRawKind, 0u);
  EXPECT_EQ(a & kIntMax, 7u);
  ASSERT_TRUE(EncodeValue("07", &b));
  EXPECT_NE(b & kRawKind, 0u);  // not canonical: raw bytes
  ASSERT_TRUE(EncodeValue("9  ", &a));
  EXPECT_EQ((a >> kIntBits) & kMaxPad, 2u);
}

TEST(TinySlotTest, FieldsDoNotOverlap) {
  const uint64_t s = MakeSlot(kRemainderMask, true, 0xffffffffu);
  EXPECT_TRUE(Used(s));
  EXPECT_TRUE(Alt(s));
  EXPECT_FALSE(Referenced(s));
  EXPECT_EQ(Remainder(s), kRemainderMask);
  EXPECT_EQ(Value(s), 0xffffffffu);
  const uint64_t t = WithValue(WithRemainder(s | kRef, 5), 9);
  EXPECT_TRUE(Referenced(t));
  EXPECT_EQ(Remainder(t), 5u);
  EXPECT_EQ(Value(t), 9u);
  EXPECT_NE(MakeSlot(0, false, 0), 0u);
}

TEST(TinyKeyTest, ParseKeyTakesCanonicalIntegersBelowTheBound) {
  uint64_t k = 0;
  EXPECT_TRUE(ParseKey("0", 43, &k));
  EXPECT_EQ(k, 0u);
  EXPECT_TRUE(ParseKey("8796093022207", 43, &k));  // 2^43 - 1
  EXPECT_EQ(k, (uint64_t{1} << 43) - 1);
  EXPECT_FALSE(ParseKey("8796093022208", 43, &k));
  for (std::string_view t : {"", "01", "-1", "+1", "1a", " 1", "123456789012345"}) {
    EXPECT_FALSE(ParseKey(t, 43, &k)) << t;
  }
}

TEST(TinyKeyTest, MixIsABijectionOfSmallDomains) {
  for (int bits : {8, 13, 16}) {
    const KeyMix mix(bits);
    for (int choice = 0; choice < 2; ++choice) {
      std::vector<bool> seen(size_t{1} << bits);
      for (uint64_t x = 0; x < (uint64_t{1} << bits); ++x) {
        const uint64_t y = mix.Mix(x, choice);
        ASSERT_LT(y, uint64_t{1} << bits);
        ASSERT_FALSE(seen[y]) << bits << " " << x;
        seen[y] = true;
        ASSERT_EQ(mix.Unmix(y, choice), x);
      }
    }
  }
}

TEST(TinyKeyTest, MixInvertsAtFullWidth) {
  const KeyMix mix(kMaxKeyBits);
  for (uint64_t x : {uint64_t{0}, uint64_t{1}, uint64_t{12345678}, (uint64_t{1} << 43) - 1}) {
    for (int c = 0; c < 2; ++c) EXPECT_EQ(mix.Unmix(mix.Mix(x, c), c), x);
  }
  EXPECT_NE(mix.Mix(12345, 0), mix.Mix(12345, 1));
}

TEST(TinyKeyTest, SequentialKeysSpreadOverBuckets) {
  // Keys 1..N (the fill's) land evenly on 2^10 buckets by the low bits.
  const KeyMix mix(kMaxKeyBits);
  std::vector<int> count(1024);
  for (uint64_t k = 1; k <= 1024 * 64; ++k) ++count[mix.Mix(k, 0) & 1023];
  for (int c : count) {
    EXPECT_GT(c, 32);
    EXPECT_LT(c, 96);
  }
}

}  // namespace
}  // namespace tinycached::compact::tiny
