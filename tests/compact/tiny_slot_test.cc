#include "compact/tiny_slot.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace tinycached::compact::tiny {
namespace {

std::string RoundTrip(std::string_view text, int w = 32) {
  SlotValue v;
  if (!EncodeValue(text, w, &v)) return "<none>";
  EXPECT_EQ(uint64_t{v.code} >> w, 0u) << "a " << w << "-bit code";
  EXPECT_EQ(v.ext >> kContinuationBits, 0u);
  EXPECT_TRUE(w == kHugeWideBits || WideCode(v.code) || v.ext == 0);
  char out[kMaxText];
  return std::string(out, DecodeValue(v, w, out));
}

bool Wide(std::string_view text) {
  SlotValue v;
  return EncodeValue(text, 32, &v) && WideCode(v.code);
}

TEST(TinyValueTest, TextsComeBackByteForByte) {
  for (std::string_view t : {"", "x", "0", "7", "42", "12345678", "536870911", "9 ", "1   ", "007",
                             " 1", "ab", "\r\n", "0 "}) {
    EXPECT_EQ(RoundTrip(t), t) << "'" << t << "'";
  }
}

TEST(TinyValueTest, WhatHasNoCode) {
  for (std::string_view t : {"536870912", "1234567890", "1    ", "abcd", "00 7", "01  "}) {
    uint32_t code;
    EXPECT_FALSE(EncodeCode(t, 32, &code)) << "'" << t << "'";
    EXPECT_TRUE(Wide(t)) << "'" << t << "'";  // but a wide value does
    EXPECT_EQ(RoundTrip(t), t);
  }
}

TEST(TinyValueTest, WideValuesHoldCountersTo2To64AndTenBytes) {
  for (std::string_view t :
       {"536870912", "18446744073709551615", "10000000000000000000", "1                   ",
        "0    ", "12345678901234567890", "abcd", "12345678", "ABCDEFGHIJ", "\x00\x01\x02\x03\xff",
        "0123456789", " 12", "1234567890 "}) {
    EXPECT_EQ(RoundTrip(t), t) << "'" << t << "'";
  }
  // Every length of raw bytes, with every byte value at every position.
  for (size_t len = 4; len <= kMaxWideRaw; ++len) {
    for (int b = 0; b < 256; ++b) {
      std::string t(len, 'a');
      t[static_cast<size_t>(b) % len] = static_cast<char>(b);
      t[len - 1 - static_cast<size_t>(b) % len] = static_cast<char>(255 - b);
      ASSERT_EQ(RoundTrip(t), t) << len << " " << b;
    }
  }
  // Numbers with every amount of padding up to 20 characters.
  for (std::string n : {"0", "7", "4294967296", "18446744073709551615"}) {
    for (std::string t = n; t.size() <= kMaxText; t += ' ')
      ASSERT_EQ(RoundTrip(t), t) << "'" << t << "'";
  }
  // What no value holds: beyond 2^64, 11 bytes, 21 characters, narrow classes.
  for (std::string_view t :
       {"18446744073709551616", "abcdefghijk", "1                    ", "123456789012345678901"}) {
    EXPECT_EQ(RoundTrip(t), "<none>") << t;
  }
  EXPECT_EQ(RoundTrip("12345678", 22), "<none>");
  // What a code holds never goes wide.
  EXPECT_FALSE(Wide("536870911"));
  EXPECT_FALSE(Wide("abc"));
  EXPECT_FALSE(Wide("9   "));
}

TEST(TinyValueTest, TheLongestKeysTakeTwoSlotsForAnyValue) {
  // Class 5's values: numbers to 2^64 - 1 with up to 7 spaces (20 characters
  // in all), or up to 7 bytes; every one is wide.
  for (std::string_view t : {"", "x", "0", "255", "18446744073709551615", "1       ", "abcdefg",
                             "\xff\x00\x01", "007", "12345678901234567   "}) {
    EXPECT_EQ(RoundTrip(t, kHugeWideBits), t) << "'" << t << "'";
    SlotValue v;
    ASSERT_TRUE(EncodeValue(t, kHugeWideBits, &v));
    EXPECT_TRUE(WideValue(kHugeInt2, v));
    EXPECT_TRUE(IsWide(MakeSlot(kHugeInt2, 1, false, v.code)));
  }
  for (std::string_view t :
       {"abcdefgh", "1        ", "18446744073709551616", "123456789012345678901"}) {
    EXPECT_EQ(RoundTrip(t, kHugeWideBits), "<none>") << t;
  }
}

TEST(TinySlotTest, AContinuationIsNoKeyAndKeepsItsSixtyBits) {
  for (uint64_t ext :
       {uint64_t{0}, Mask(kContinuationBits), uint64_t{0x0123456789abcdef} & Mask(60)}) {
    const uint64_t c = MakeContinuation(ext);
    EXPECT_TRUE(Used(c));
    EXPECT_TRUE(IsContinuation(c));
    EXPECT_FALSE(IsWide(c));
    EXPECT_EQ(ContinuationBits(c), ext);
    for (int cls = 0; cls < kClasses; ++cls) {
      EXPECT_NE(c & KeyFields(cls), MakeSlot(cls, Remainder(c), Alt(c), 0) & KeyFields(cls));
    }
  }
  SlotValue v;
  ASSERT_TRUE(EncodeValue("18446744073709551615", 32, &v));
  EXPECT_TRUE(IsWide(MakeSlot(kInt, 3, false, v.code)));
  ASSERT_TRUE(EncodeValue("abc", 32, &v));
  EXPECT_FALSE(IsWide(MakeSlot(kInt, 3, false, v.code)));
}

TEST(TinyValueTest, NarrowCodesHoldLess) {
  // W = 22: numbers below 2^19, 2 bytes.
  for (std::string_view t : {"", "x", "ab", "524287", "7   ", "0"}) EXPECT_EQ(RoundTrip(t, 22), t);
  for (std::string_view t : {"524288", "abc", "1234567"})
    EXPECT_EQ(RoundTrip(t, 22), "<none>") << t;
  // W = 14: below 2^11, 1 byte.
  for (std::string_view t : {"", "x", "2047", "9 "}) EXPECT_EQ(RoundTrip(t, 14), t);
  for (std::string_view t : {"2048", "ab"}) EXPECT_EQ(RoundTrip(t, 14), "<none>") << t;
  // W = 11: 0..255, 1 byte.
  for (std::string_view t : {"", "x", "255", "1  ", "0"}) EXPECT_EQ(RoundTrip(t, 11), t);
  for (std::string_view t : {"256", "ab", "1000"}) EXPECT_EQ(RoundTrip(t, 11), "<none>") << t;
  // Every 1-byte text, in every class's width.
  for (int w : {11, 14, 22, 32}) {
    for (int c = 0; c < 256; ++c) {
      const std::string t(1, static_cast<char>(c));
      ASSERT_EQ(RoundTrip(t, w), t) << w << " " << c;
    }
  }
}

TEST(TinyValueTest, AnIntegerTextIsAlwaysAnInt) {
  uint32_t a, b;
  ASSERT_TRUE(EncodeCode("7", 32, &a));
  EXPECT_EQ(a & RawKind(32), 0u);
  EXPECT_EQ(a & IntMax(32), 7u);
  ASSERT_TRUE(EncodeCode("07", 32, &b));
  EXPECT_NE(b & RawKind(32), 0u);  // not canonical: raw bytes
  ASSERT_TRUE(EncodeCode("9  ", 32, &a));
  EXPECT_EQ((a >> IntBits(32)) & kMaxPad, 2u);
}

TEST(TinySlotTest, FieldsDoNotOverlapInAnyClass) {
  for (int c = 0; c < kClasses; ++c) {
    const uint64_t r = Mask(RemainderBits(c));
    const uint32_t v = static_cast<uint32_t>(Mask(ValueBits(c)));
    const uint64_t s = MakeSlot(c, r, true, v);
    EXPECT_TRUE(Used(s));
    EXPECT_TRUE(Alt(s));
    EXPECT_FALSE(Referenced(s));
    EXPECT_EQ(SlotClass(s), c);
    EXPECT_EQ(Remainder(s), r);
    EXPECT_EQ(Value(s), v);
    const uint64_t t = WithValue(WithRemainder(s | kRef, 5), 9);
    EXPECT_TRUE(Referenced(t));
    EXPECT_EQ(SlotClass(t), c);
    EXPECT_EQ(Remainder(t), 5u);
    EXPECT_EQ(Value(t), 9u);
    EXPECT_NE(MakeSlot(c, 0, false, 0), 0u);
    // The key fields see the class: equal remainders of two classes differ.
    if (c > 0) {
      EXPECT_NE(MakeSlot(c, 5, false, 0) & KeyFields(c), MakeSlot(0, 5, false, 0) & KeyFields(c));
    }
  }
}

TEST(TinyKeyTest, ParseDecimalTakesCanonicalIntegersBelow2To64) {
  uint64_t k = 0;
  EXPECT_TRUE(ParseDecimal("0", &k));
  EXPECT_EQ(k, 0u);
  EXPECT_TRUE(ParseDecimal("18446744073709551615", &k));
  EXPECT_EQ(k, UINT64_MAX);
  for (std::string_view t :
       {"", "01", "-1", "+1", "1a", " 1", "18446744073709551616", "123456789012345678901"}) {
    EXPECT_FALSE(ParseDecimal(t, &k)) << t;
  }
}

TEST(TinyKeyTest, EachNumberHasOneClass) {
  constexpr int s = 14;  // 1 MiB pages
  TinyKey t;
  const struct {
    uint64_t n;
    int cls;
  } cases[] = {{0, kInt},
               {(uint64_t{1} << 40) - 1, kInt},
               {uint64_t{1} << 40, kLongInt},
               {999999999999999, kLongInt},  // every 15-digit id
               {uint64_t{1} << 50, kHugeInt},
               {(uint64_t{1} << 61) - 1, kHugeInt},
               {uint64_t{1} << 61, kHugeInt2},
               {UINT64_MAX, kHugeInt2}};
  for (const auto& c : cases) {
    ASSERT_TRUE(IntKey(c.n, s, &t)) << c.n;
    EXPECT_EQ(ClassOfKey(t), c.cls) << c.n;
    EXPECT_EQ(KeyNumber(t), c.n);
  }
  // With smaller pages every class has fewer key bits: 2^56 and above has none.
  EXPECT_TRUE(IntKey((uint64_t{1} << 56) - 1, 6, &t));
  EXPECT_FALSE(IntKey(uint64_t{1} << 56, 6, &t));
}

TEST(TinyKeyTest, PrefixedKeysRoundTrip) {
  constexpr int s = 14;
  TinyKey t;
  uint32_t id = 0;
  uint64_t n = 0;
  for (uint32_t want_id : {0u, 1u, 255u}) {
    for (uint64_t want_n : {uint64_t{0}, uint64_t{42}, (uint64_t{1} << 32) - 1, uint64_t{1} << 32,
                            (uint64_t{1} << 50) - 1}) {
      ASSERT_TRUE(PrefixedKey(want_id, want_n, s, &t)) << want_id << " " << want_n;
      EXPECT_EQ(ClassOfKey(t), want_n >> 32 == 0 ? kPrefixed : kPrefixedLong);
      SplitPrefixed(t, s, &id, &n);
      EXPECT_EQ(id, want_id);
      EXPECT_EQ(n, want_n);
    }
  }
  EXPECT_FALSE(PrefixedKey(0, uint64_t{1} << 50, s, &t));
  EXPECT_FALSE(PrefixedKey(256, 1, s, &t));
  // The key bits of every class fit a tagged key.
  for (int c = 0; c < kClasses; ++c) EXPECT_LE(KeyBits(c, 30), kMaxKeyBits);
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
  // Keys 1..N (the fill's), and N consecutive keys at the bottom of each
  // class's range, land evenly on 2^10 buckets by the low bits: 64 a
  // bucket on average (a Poisson spread would put the extremes near 38 and
  // 92; 64-bit keys measured 31..93).
  const struct {
    int cls;
    uint64_t base;
  } cases[] = {{kInt, 0},
               {kLongInt, uint64_t{1} << 40},
               {kHugeInt, uint64_t{1} << 50},
               {kHugeInt2, uint64_t{1} << 61},
               {kHugeInt2, 0}};
  for (const auto& c : cases) {
    const KeyMix mix(KeyBits(c.cls, 14));
    std::vector<int> count(1024);
    for (uint64_t k = 1; k <= 1024 * 64; ++k) ++count[mix.Mix(c.base + k, 0) & 1023];
    for (int n : count) {
      EXPECT_GT(n, 24) << c.cls;
      EXPECT_LT(n, 104) << c.cls;
    }
  }
}

}  // namespace
}  // namespace tinycached::compact::tiny
