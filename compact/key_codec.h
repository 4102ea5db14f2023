// compact/key_codec.h — base-250 packing of decimal integer keys.
//
// Room: compact/. Pure functions over bytes; no allocation, no state.
//
// A key that is a canonical decimal integer — "0", or a nonzero digit
// followed by digits, at most UINT64_MAX — is stored as its value in base
// 250, most significant digit first, in the fewest digits (1..9, since
// 250^8 < 2^64 < 250^9). Every other key ("01", "+1", "-1", "1a", a 21-digit
// number, "" ...) is stored as its text. The item header says which form it
// holds, so the round trip is exact:
//
//   "7"        -> [7]                   1 byte  (was 1)
//   "1234567"  -> [19 188 67]           3 bytes (was 7: 1234567 = 19*250^2 + 188*250 + 67)
//   "18446744073709551615" -> 9 bytes           (was 20)
//
// Why 250 and not 256: digit bytes stay below 0xFA, leaving six byte values
// free for tags; the cost is nothing at the sizes that matter (250^3 =
// 15.6M keys fit 3 bytes; 256^3 = 16.7M would).
#ifndef TINYCACHED_COMPACT_KEY_CODEC_H_
#define TINYCACHED_COMPACT_KEY_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tinycached::compact {

inline constexpr unsigned kKeyBase = 250;
inline constexpr size_t kMaxPackedKey = 9;     // base-250 digits of UINT64_MAX
inline constexpr size_t kMaxDecimalKey = 20;   // decimal digits of UINT64_MAX

// Packs `key` into `out` if it is a canonical decimal integer; returns the
// number of bytes written, or 0 when the key must be stored as text.
inline size_t PackDecimalKey(std::string_view key, uint8_t (&out)[kMaxPackedKey]) {
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

// Writes the decimal digits of `v` (no NUL) to `out`; returns their count (1..20).
inline size_t FormatDecimal(uint64_t v, char (&out)[kMaxDecimalKey]) {
  char rev[kMaxDecimalKey];
  size_t n = 0;
  do {
    rev[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) out[i] = rev[n - 1 - i];
  return n;
}

// Inverse of PackDecimalKey: writes the decimal text of a packed key to
// `out` and returns its length (1..20). `packed` must come from
// PackDecimalKey (digits < 250, no leading zero digit unless the key is "0").
inline size_t UnpackDecimalKey(const uint8_t* packed, size_t len, char (&out)[kMaxDecimalKey]) {
  uint64_t v = 0;
  for (size_t i = 0; i < len; ++i) v = v * kKeyBase + packed[i];
  return FormatDecimal(v, out);
}

// The form a key takes inside an item: what the index compares and hashes.
// Built once per request; `bytes` points into `buf` or into the caller's key.
class StoredKey {
 public:
  StoredKey(std::string_view key, bool pack) {
    size_t n = pack ? PackDecimalKey(key, buf_) : 0;
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
  uint8_t buf_[kMaxPackedKey];
  std::string_view bytes_;
  bool packed_ = false;
};

}  // namespace tinycached::compact

#endif  // TINYCACHED_COMPACT_KEY_CODEC_H_
