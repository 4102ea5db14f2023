#include "compact/key_codec.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

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

// ---- every packed form ----------------------------------------------------

// The stored form of `key` with packing on: (packed?, bytes).
std::pair<bool, std::string> Stored(std::string_view key) {
  const StoredKey k(key, true);
  return {k.packed(), std::string(k.bytes())};
}

std::string PackAny(std::string_view key) {
  uint8_t out[kMaxStoredKey];
  const size_t n = PackKey(key, out);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string UnpackAny(const std::string& packed) {
  char out[kMaxKeyLength];
  const size_t n = UnpackKey(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(), out);
  return std::string(out, n);
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

// Packs `key`, checks the round trip and that packing saved bytes; returns
// the packed bytes ("" for a text key).
std::string RoundTrip(std::string_view key) {
  const std::string packed = PackAny(key);
  if (packed.empty()) return packed;
  EXPECT_EQ(UnpackAny(packed), key) << key;
  EXPECT_LT(packed.size(), key.size() == 1 ? 2 : key.size()) << key;
  EXPECT_LE(packed.size(), kMaxStoredKey) << key;
  return packed;
}

TEST(KeyCodecTest, HexKnownEncodings) {
  EXPECT_EQ(RoundTrip("d41d8cd98f00b204e9800998ecf8427e"),
            Bytes({0xFA, 0xD4, 0x1D, 0x8C, 0xD9, 0x8F, 0x00, 0xB2, 0x04, 0xE9, 0x80, 0x09, 0x98,
                   0xEC, 0xF8, 0x42, 0x7E}));
  EXPECT_EQ(RoundTrip("D41D8CD98F00B204E9800998ECF8427E"),
            Bytes({0xFC, 0xD4, 0x1D, 0x8C, 0xD9, 0x8F, 0x00, 0xB2, 0x04, 0xE9, 0x80, 0x09, 0x98,
                   0xEC, 0xF8, 0x42, 0x7E}));
  EXPECT_EQ(RoundTrip("abcd"), Bytes({0xFA, 0xAB, 0xCD}));
  EXPECT_EQ(RoundTrip("ABCD"), Bytes({0xFC, 0xAB, 0xCD}));
  EXPECT_EQ(RoundTrip("abc12"), Bytes({0xFB, 0x0A, 0xBC, 0x12}));
  EXPECT_EQ(RoundTrip("ABC12"), Bytes({0xFD, 0x0A, 0xBC, 0x12}));
  EXPECT_EQ(RoundTrip("0abc1"), Bytes({0xFB, 0x00, 0xAB, 0xC1}));  // the zero digit survives
  // Digits only, but not canonical decimal: hex, and always the lowercase tag.
  EXPECT_EQ(RoundTrip("0123"), Bytes({0xFA, 0x01, 0x23}));
  EXPECT_EQ(RoundTrip("00000"), Bytes({0xFB, 0x00, 0x00, 0x00}));
  EXPECT_EQ(RoundTrip("18446744073709551616"),  // 2^64: too big for DECIMAL
            Bytes({0xFA, 0x18, 0x44, 0x67, 0x44, 0x07, 0x37, 0x09, 0x55, 0x16, 0x16}));
  // sha1 and sha256 digests.
  EXPECT_EQ(RoundTrip("da39a3ee5e6b4b0d3255bfef95601890afd80709").size(), 21u);
  EXPECT_EQ(RoundTrip("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").size(),
            33u);
}

TEST(KeyCodecTest, UuidKnownEncodings) {
  EXPECT_EQ(RoundTrip("123e4567-e89b-12d3-a456-426614174000"),
            Bytes({0xFE, 0x12, 0x3E, 0x45, 0x67, 0xE8, 0x9B, 0x12, 0xD3, 0xA4, 0x56, 0x42, 0x66,
                   0x14, 0x17, 0x40, 0x00}));
  EXPECT_EQ(RoundTrip("123E4567-E89B-12D3-A456-426614174000"),
            Bytes({0xFF, 0x12, 0x3E, 0x45, 0x67, 0xE8, 0x9B, 0x12, 0xD3, 0xA4, 0x56, 0x42, 0x66,
                   0x14, 0x17, 0x40, 0x00}));
  EXPECT_EQ(RoundTrip("00000000-0000-0000-0000-000000000000"),
            Bytes({0xFE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(RoundTrip("ffffffff-ffff-ffff-ffff-ffffffffffff").size(), kUuidPacked);
  EXPECT_EQ(RoundTrip("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF").size(), kUuidPacked);
  // 36 hex digits without dashes are HEX, not a UUID.
  EXPECT_EQ(RoundTrip("123e4567e89b12d3a456426614174000abcd")[0], '\xFA');
  EXPECT_EQ(RoundTrip("123e4567e89b12d3a456426614174000abcd").size(), 19u);
}

TEST(KeyCodecTest, NearMissesStayText) {
  for (const char* k : {
           "abc",
           "ABC",
           "ab",
           "a",
           "",  // too short to save a byte
           "DeadBeef",
           "deadbeeF",
           "aB12",  // mixed case
           "0x1f2e3d",
           "0X1F2E",
           "abcg",
           "ABCG",  // not hex
           "abcd ",
           " abcd",
           "ab-cd",
           "abcd\n",
           // UUID shapes that are not UUIDs.
           "123e4567-e89b-12d3-a456-42661417400",    // 35 characters
           "123e4567-e89b-12d3-a456-4266141740000",  // 37 characters
           "123e4567e-89b-12d3-a456-426614174000",   // a dash out of place
           "123e4567-e89b-12d3-a456_426614174000",   // '_' for '-'
           "123e4567-e89b-12d3-a4564-26614174000",   // a dash moved
           "123e4567-E89B-12d3-a456-426614174000",   // mixed case across groups
           "123e4567-e89B-12d3-a456-426614174000",   // mixed case in a group
           "123g4567-e89b-12d3-a456-426614174000",   // 'g'
           "{123e4567-e89b-12d3-a456-42661417400}",  // braces
           "--------------------------------------",
       }) {
    EXPECT_EQ(PackAny(k), "") << k;
    EXPECT_EQ(Stored(k), std::make_pair(false, std::string(k))) << k;
  }
  // A NUL inside: not hex.
  EXPECT_EQ(PackAny(std::string("ab\0d", 4)), "");
  // Longer than memcached's keys: never packed.
  EXPECT_EQ(PackAny(std::string(kMaxKeyLength + 1, 'a')), "");
}

TEST(KeyCodecTest, DecimalWinsAndIsUnchanged) {
  EXPECT_EQ(RoundTrip("1234"), Bytes({4, 234}));  // 4*250 + 234, not [FA 12 34]
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const std::string key = std::to_string(rng() >> (rng() % 64));
    const std::string any = PackAny(key);
    ASSERT_EQ(any, Pack(key)) << key;                       // the same bytes as before
    ASSERT_LT(static_cast<uint8_t>(any[0]), kTagHexLower);  // no tag
    ASSERT_EQ(UnpackAny(any), key);
  }
}

TEST(KeyCodecTest, LongestKeys) {
  const std::string even(250, 'f'), odd(249, 'E');
  EXPECT_EQ(RoundTrip(even).size(), kMaxStoredKey);  // 1 + 125
  EXPECT_EQ(RoundTrip(odd).size(), kMaxStoredKey);   // 1 + 125, a zero nibble in front
  EXPECT_EQ(static_cast<uint8_t>(PackAny(even)[0]), 0xFA);
  EXPECT_EQ(static_cast<uint8_t>(PackAny(odd)[0]), 0xFD);
  std::string mixed = even;
  mixed[249] = 'F';
  EXPECT_EQ(PackAny(mixed), "");
}

TEST(KeyCodecTest, RandomHexAndUuidKeysRoundTrip) {
  std::mt19937_64 rng(1);
  const char* lower = "0123456789abcdef";
  const char* upper = "0123456789ABCDEF";
  for (int i = 0; i < 20000; ++i) {
    const char* digits = rng() % 2 ? upper : lower;
    const size_t n = kMinHexKey + rng() % (kMaxKeyLength - kMinHexKey + 1);
    std::string key;
    for (size_t j = 0; j < n; ++j) key.push_back(digits[rng() % 16]);
    const std::string packed = RoundTrip(key);
    ASSERT_FALSE(packed.empty()) << key;
    if (Pack(key).empty()) {  // not a (rare) canonical decimal
      ASSERT_EQ(packed.size(), 1 + (n + 1) / 2) << key;
      ASSERT_EQ(static_cast<uint8_t>(packed[0]) & 1, n % 2) << key;
    }
    // Uuid-shaped.
    std::string uuid;
    for (size_t j = 0; j < kUuidKey; ++j) {
      uuid.push_back(j == 8 || j == 13 || j == 18 || j == 23 ? '-' : digits[rng() % 16]);
    }
    const std::string upacked = RoundTrip(uuid);
    ASSERT_EQ(upacked.size(), kUuidPacked) << uuid;
    ASSERT_GE(static_cast<uint8_t>(upacked[0]), kTagUuidLower) << uuid;
  }
}

// Two key texts never share a stored form: every string over a small alphabet
// that covers each class (decimal digits with '0', both cases of hex letters,
// a non-hex letter, '-'), and UUID-shaped keys with one character changed.
TEST(KeyCodecTest, StoredFormsAreUnique) {
  const std::string alphabet = "019aAfFg-";
  std::set<std::string> texts;
  std::set<std::pair<bool, std::string>> seen;
  size_t total = 0;
  auto add = [&](const std::string& key) {
    if (!texts.insert(key).second) return;  // this text was tried already
    const auto stored = Stored(key);
    ++total;
    ASSERT_TRUE(seen.insert(stored).second) << key;
    if (stored.first) {
      ASSERT_EQ(UnpackAny(stored.second), key);
    } else {
      ASSERT_EQ(stored.second, key);
    }
  };
  std::string key;
  for (size_t len = 0; len <= 6; ++len) {
    std::vector<size_t> idx(len, 0);
    for (;;) {
      key.assign(len, ' ');
      for (size_t i = 0; i < len; ++i) key[i] = alphabet[idx[i]];
      add(key);
      size_t i = 0;
      while (i < len && ++idx[i] == alphabet.size()) idx[i++] = 0;
      if (i == len) break;
    }
  }
  // A packed form never equals a text form, even byte for byte: the packed
  // bit tells them apart, so the same bytes as a text key are a different key.
  add("abcd");
  add(PackAny("abcd"));
  // UUIDs and near-UUIDs.
  const std::string base = "09afaf09-af09-09af-af09-0909afafaf09";
  add(base);
  for (size_t pos = 0; pos < kUuidKey; ++pos) {
    for (char c : std::string("0aAfFg-")) {
      if (base[pos] == c) continue;
      key = base;
      key[pos] = c;
      add(key);
      for (char& ch : key) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      add(key);
    }
  }
  std::string dashless = base;
  dashless.erase(std::remove(dashless.begin(), dashless.end(), '-'), dashless.end());
  add(dashless);           // 32 hex digits
  add(dashless + "0909");  // 36 hex digits
  EXPECT_EQ(seen.size(), total);
}

TEST(KeyCodecTest, StoredKeyPacksHexAndUuid) {
  const StoredKey md5("d41d8cd98f00b204e9800998ecf8427e", true);
  EXPECT_TRUE(md5.packed());
  EXPECT_EQ(md5.bytes().size(), 17u);
  const StoredKey uuid("123e4567-e89b-12d3-a456-426614174000", true);
  EXPECT_TRUE(uuid.packed());
  EXPECT_EQ(uuid.bytes().size(), 17u);
  const StoredKey off("d41d8cd98f00b204e9800998ecf8427e", false);
  EXPECT_FALSE(off.packed());
  EXPECT_EQ(off.bytes(), "d41d8cd98f00b204e9800998ecf8427e");
}

}  // namespace
}  // namespace tinycached::compact
