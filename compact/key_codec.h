// compact/key_codec.h — packing of decimal, hexadecimal and UUID keys.
//
// Room: compact/. Pure functions over bytes; no allocation, no state.
//
// A key is stored in one of two forms, and the item header says which
// (ItemFlag kPackedKey, compact/item_layout.h): its text, or packed. Every
// key text has exactly one stored form — the index hashes and compares the
// stored form (core/hash_index.h) — and the round trip is exact, byte for
// byte. A key is packed when it has one of the shapes below, tried in this
// order; any other key ("01", "+1", "1a", "0x1f", "Dead", "", ...) is text.
//
// DECIMAL: a canonical decimal integer — "0", or a nonzero digit followed by
// digits, at most UINT64_MAX — is stored as its value in base 250, most
// significant digit first, in the fewest digits (1..9, since
// 250^8 < 2^64 < 250^9):
//
//    0        1             n-1
//   +--------+---- ... ----+--------+
//   | d < 250|             | d < 250|      n = 1..9 base-250 digits
//   +--------+---- ... ----+--------+
//
//   "7"        -> [7]                   1 byte  (was 1)
//   "1234567"  -> [19 188 67]           3 bytes (was 7: 1234567 = 19*250^2 + 188*250 + 67)
//   "18446744073709551615" -> 9 bytes           (was 20)
//
// Why 250 and not 256: digit bytes stay below 0xFA, so a decimal key's first
// byte is never 0xFA..0xFF; those six values are the tags of the other forms.
// The cost is nothing at the sizes that matter (250^3 = 15.6M keys fit 3
// bytes; 256^3 = 16.7M would).
//
// HEX: kMinHexKey (4) or more hex digits, all of one case: [0-9a-f] or
// [0-9A-F] (a key of digits only counts as lowercase: "0123" -> 0xFA, never
// 0xFC). Mixed case ("DeadBeef") stays text. A tag byte, then the digits two
// to a byte, high nibble first; an odd count puts a zero nibble in front:
//
//    0      1      2           1+ceil(n/2)-1
//   +------+------+------+ ... +------+
//   | tag  |h0 h1 |h2 h3 |     |      |      even n: n/2 bytes after the tag
//   +------+------+------+ ... +------+
//   +------+------+------+ ... +------+
//   | tag  | 0 h0 |h1 h2 |     |      |      odd n: (n+1)/2 bytes after the tag
//   +------+------+------+ ... +------+
//    tag: 0xFA lowercase even, 0xFB lowercase odd,
//         0xFC uppercase even, 0xFD uppercase odd
//
//   "d41d8cd98f00b204e9800998ecf8427e" (md5, 32) -> [FA D4 1D ... 7E]  17 bytes (was 32)
//   "abc12"                                     -> [FB 0A BC 12]       4 bytes (was 5)
//   a 250-digit hex key                          -> 126 bytes (kMaxStoredKey)
//
// UUID: 36 characters, hex groups of 8-4-4-4-12 joined by '-', all one case
// as for HEX. The tag, then the 32 digits two to a byte (the dashes are
// implied by the tag):
//
//    0      1              5      7      9      11              17
//   +------+--------------+------+------+------+----------------+
//   | tag  | group 1 (4)  |g2 (2)|g3 (2)|g4 (2)| group 5 (6)    |
//   +------+--------------+------+------+------+----------------+
//    tag: 0xFE lowercase, 0xFF uppercase
//
//   "123e4567-e89b-12d3-a456-426614174000" -> [FE 12 3E 45 ... 40 00]  17 bytes (was 36)
//
// A decimal key wins over HEX ("1234" -> [4 234], not [FA 12 34]); a digits-
// only key that is not canonical decimal ("0123", a 21-digit number) is HEX.
// A 36-character key is a UUID only with all four dashes in place; a 36-digit
// hex key without dashes is HEX.
#ifndef TINYCACHED_COMPACT_KEY_CODEC_H_
#define TINYCACHED_COMPACT_KEY_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tinycached::compact {

inline constexpr size_t kMaxKeyLength = 250;  // memcached's longest key (text)
inline constexpr unsigned kKeyBase = 250;
inline constexpr size_t kMaxPackedKey = 9;    // base-250 digits of UINT64_MAX
inline constexpr size_t kMaxDecimalKey = 20;  // decimal digits of UINT64_MAX

// Tags: the first byte of a packed key that is not decimal.
inline constexpr uint8_t kTagHexLower = 0xFA;  // + 1 when the digit count is odd
inline constexpr uint8_t kTagHexUpper = 0xFC;  // + 1 when the digit count is odd
inline constexpr uint8_t kTagUuidLower = 0xFE;
inline constexpr uint8_t kTagUuidUpper = 0xFF;
static_assert(kKeyBase == kTagHexLower, "decimal digit bytes must stay below every tag");

inline constexpr size_t kMinHexKey = 4;  // shorter hex keys save nothing
inline constexpr size_t kUuidKey = 36;   // 8-4-4-4-12 with dashes
inline constexpr size_t kUuidPacked = 1 + 16;
// The longest packed key: a tag and 125 bytes of a 250-digit hex key.
inline constexpr size_t kMaxStoredKey = 1 + (kMaxKeyLength + 1) / 2;

namespace key_codec_internal {

inline size_t PackDecimal(std::string_view key, uint8_t* out) {
  const size_t n = key.size();
  if (n == 0 || n > kMaxDecimalKey) return 0;
  if (key[0] == '0' && n > 1) return 0;  // "01" is not canonical
  uint64_t v = 0;
  for (char ch : key) {
    if (ch < '0' || ch > '9') return 0;
    const uint64_t d = static_cast<uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;  // beyond 2^64 - 1
    v = v * 10 + d;
  }
  uint8_t rev[kMaxPackedKey];
  size_t len = 0;
  do {
    rev[len++] = static_cast<uint8_t>(v % kKeyBase);
    v /= kKeyBase;
  } while (v != 0);
  for (size_t i = 0; i < len; ++i) out[i] = rev[len - 1 - i];
  return len;
}

inline size_t FormatDecimal(uint64_t v, char* out) {
  char rev[kMaxDecimalKey];
  size_t n = 0;
  do {
    rev[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) out[i] = rev[n - 1 - i];
  return n;
}

// Per character: its nibble in the low 4 bits and its class above; 0 for a
// character that is no hex digit ('0' is kDigit | 0, never 0).
inline constexpr uint8_t kDigit = 0x10, kLower = 0x20, kUpper = 0x40;
struct HexTable {
  uint8_t v[256] = {};
  constexpr HexTable() {
    for (int c = '0'; c <= '9'; ++c) v[c] = static_cast<uint8_t>(kDigit | (c - '0'));
    for (int c = 'a'; c <= 'f'; ++c) v[c] = static_cast<uint8_t>(kLower | (c - 'a' + 10));
    for (int c = 'A'; c <= 'F'; ++c) v[c] = static_cast<uint8_t>(kUpper | (c - 'A' + 10));
  }
};
inline constexpr HexTable kHex;

inline constexpr char kLowerDigits[] = "0123456789abcdef";
inline constexpr char kUpperDigits[] = "0123456789ABCDEF";

// Packs the `n` hex digits at `p` two to a byte into `out` (a zero nibble in
// front when n is odd). Returns the OR of their classes, or 0 when one is no
// hex digit.
inline uint8_t PackNibbles(const char* p, size_t n, uint8_t* out) {
  uint8_t seen = 0;
  size_t i = 0;
  if (n % 2 != 0) {
    const uint8_t c = kHex.v[static_cast<uint8_t>(p[0])];
    if (c == 0) return 0;
    seen |= c;
    *out++ = c & 0x0F;
    i = 1;
  }
  for (; i < n; i += 2) {
    const uint8_t hi = kHex.v[static_cast<uint8_t>(p[i])];
    const uint8_t lo = kHex.v[static_cast<uint8_t>(p[i + 1])];
    if (hi == 0 || lo == 0) return 0;
    seen |= hi | lo;
    *out++ = static_cast<uint8_t>((hi << 4) | (lo & 0x0F));
  }
  return seen;
}

// Writes the `n` hex digits held by `in` (a zero nibble in front when n is
// odd) to `out`.
inline void UnpackNibbles(const uint8_t* in, size_t n, const char* digits, char* out) {
  size_t i = 0;
  if (n % 2 != 0) {
    *out++ = digits[*in++ & 0x0F];
    i = 1;
  }
  for (; i < n; i += 2) {
    *out++ = digits[*in >> 4];
    *out++ = digits[*in++ & 0x0F];
  }
}

// One case: lowercase (or no letter at all) 0, uppercase 1, mixed -1.
inline int CaseOf(uint8_t seen) {
  if ((seen & kUpper) == 0) return 0;
  return (seen & kLower) == 0 ? 1 : -1;
}

inline constexpr size_t kUuidGroups[5][2] = {{0, 8}, {9, 4}, {14, 4}, {19, 4}, {24, 12}};

inline size_t PackUuid(std::string_view key, uint8_t* out) {
  if (key[8] != '-' || key[13] != '-' || key[18] != '-' || key[23] != '-') return 0;
  uint8_t seen = 0;
  uint8_t* p = out + 1;
  for (const auto& g : kUuidGroups) {
    const uint8_t s = PackNibbles(key.data() + g[0], g[1], p);
    if (s == 0) return 0;
    seen |= s;
    p += g[1] / 2;
  }
  const int upper = CaseOf(seen);
  if (upper < 0) return 0;
  out[0] = upper ? kTagUuidUpper : kTagUuidLower;
  return kUuidPacked;
}

inline size_t PackHex(std::string_view key, uint8_t* out) {
  const size_t n = key.size();
  const uint8_t seen = PackNibbles(key.data(), n, out + 1);
  if (seen == 0) return 0;  // not hex
  const int upper = CaseOf(seen);
  if (upper < 0) return 0;  // mixed case
  out[0] = static_cast<uint8_t>((upper ? kTagHexUpper : kTagHexLower) + n % 2);
  return 1 + (n + 1) / 2;
}

}  // namespace key_codec_internal

// Packs `key` into `out` if it is a canonical decimal integer; returns the
// number of bytes written, or 0 when the key is no canonical decimal. (Only
// the DECIMAL form; StoredKey and PackKey try every form.)
inline size_t PackDecimalKey(std::string_view key, uint8_t (&out)[kMaxPackedKey]) {
  return key_codec_internal::PackDecimal(key, out);
}

// Writes the decimal digits of `v` (no NUL) to `out`; returns their count (1..20).
inline size_t FormatDecimal(uint64_t v, char (&out)[kMaxDecimalKey]) {
  return key_codec_internal::FormatDecimal(v, out);
}

// Inverse of PackDecimalKey: writes the decimal text of a packed key to
// `out` and returns its length (1..20). `packed` must come from
// PackDecimalKey (digits < 250, no leading zero digit unless the key is "0").
inline size_t UnpackDecimalKey(const uint8_t* packed, size_t len, char (&out)[kMaxDecimalKey]) {
  uint64_t v = 0;
  for (size_t i = 0; i < len; ++i) v = v * kKeyBase + packed[i];
  return FormatDecimal(v, out);
}

// Packs `key` into `out` in the first form above that it has (DECIMAL, then
// UUID or HEX); returns the number of bytes written, or 0 when the key must
// be stored as text. Cheap for a decimal key: the decimal scan runs first
// and the others only after it has failed.
inline size_t PackKey(std::string_view key, uint8_t (&out)[kMaxStoredKey]) {
  namespace in = key_codec_internal;
  const size_t n = key.size();
  if (const size_t d = in::PackDecimal(key, out); d != 0) return d;
  if (n < kMinHexKey || n > kMaxKeyLength) return 0;
  if (n == kUuidKey && key[8] == '-') return in::PackUuid(key, out);
  return in::PackHex(key, out);
}

// Inverse of PackKey: writes the text of a packed key (`len` >= 1 bytes
// from PackKey) to `out` and returns its length.
inline size_t UnpackKey(const uint8_t* packed, size_t len, char (&out)[kMaxKeyLength]) {
  namespace in = key_codec_internal;
  const uint8_t tag = packed[0];
  if (tag < kTagHexLower) {
    uint64_t v = 0;
    for (size_t i = 0; i < len; ++i) v = v * kKeyBase + packed[i];
    return in::FormatDecimal(v, out);
  }
  if (tag >= kTagUuidLower) {
    const char* digits = tag == kTagUuidUpper ? in::kUpperDigits : in::kLowerDigits;
    const uint8_t* p = packed + 1;
    for (const auto& g : in::kUuidGroups) {
      if (g[0] != 0) out[g[0] - 1] = '-';
      in::UnpackNibbles(p, g[1], digits, out + g[0]);
      p += g[1] / 2;
    }
    return kUuidKey;
  }
  const char* digits = tag >= kTagHexUpper ? in::kUpperDigits : in::kLowerDigits;
  const size_t n = 2 * (len - 1) - (tag & 1);  // FA, FC even; FB, FD odd
  in::UnpackNibbles(packed + 1, n, digits, out);
  return n;
}

// The form a key takes inside an item: what the index compares and hashes.
// Built once per request; `bytes` points into `buf` or into the caller's key.
class StoredKey {
 public:
  StoredKey(std::string_view key, bool pack) {
    size_t n = pack ? PackKey(key, buf_) : 0;
    if (n != 0) {
      bytes_ = {reinterpret_cast<const char*>(buf_), n};
      packed_ = true;
    } else {
      bytes_ = key;
    }
  }
  StoredKey(const StoredKey&) = delete;
  StoredKey& operator=(const StoredKey&) = delete;

  std::string_view bytes() const { return bytes_; }
  bool packed() const { return packed_; }

 private:
  uint8_t buf_[kMaxStoredKey];
  std::string_view bytes_;
  bool packed_ = false;
};

}  // namespace tinycached::compact

#endif  // TINYCACHED_COMPACT_KEY_CODEC_H_
