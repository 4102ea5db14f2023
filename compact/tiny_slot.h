// compact/tiny_slot.h — the tiny store's index slot: an item in 8 bytes.
//
// Room: compact/. Pure encoding: how a tiny item (an integer key, a short
// value, nothing else) is packed into one 64-bit slot of core/tiny_table's
// buckets, and how it is read back exactly. No allocation, no state.
//
// An item is tiny when its key is a canonical decimal integer below
// 2^key_bits (KeyMix::key_bits(), at most kMaxKeyBits), its value has an
// inline code (below), its client flags are 0, it never expires, and it
// carries no CAS. Every other item lives in the tiny store's overflow area.
//
// Quotienting. The key k is first mixed by a bijection H of the key_bits-bit
// integers (two of them, choice 0 and 1: an item may live in either of two
// buckets). The low `addr_bits` bits of H(k) are the bucket's number — the
// bucket already says them — so the slot keeps only the rest, the
// remainder H(k) >> addr_bits. Because H is a bijection the key comes back
// exactly: k = H^-1((remainder << addr_bits) | bucket). addr_bits grows
// with the table (linear hashing: a bucket has level or level+1 address
// bits), so the remainder never needs more than key_bits - min_addr_bits
// bits; kRemainderBits bounds key_bits - min_addr_bits.
//
// The slot (one little-endian uint64_t; 0 is the empty slot):
//
//   63    62    61   60                   32 31                         0
//  +-----+-----+-----+-----------------------+---------------------------+
//  |used | ref | alt |  remainder (29 bits)  |   value code (32 bits)    |
//  +-----+-----+-----+-----------------------+---------------------------+
//   used: the slot holds an item (so a used slot is never 0)
//   ref:  CLOCK's referenced bit, set by a read, cleared by the eviction scan
//   alt:  which of the two bijections placed it (choice 1 = the alternate)
//
// The value code (32 bits) holds the value's bytes exactly, in one of two
// kinds:
//
//   int:  31  30 29  28                                  0
//        +---+------+-------------------------------------+
//        | 0 | pad  |   n (29 bits, n < 2^29)             |
//        +---+------+-------------------------------------+
//        text = decimal digits of n (no leading zero) then `pad` spaces
//        (0..3): "7", "12345678", "9 " (what memcached's decr leaves after
//        "10"), "0". A counter stays an int as long as it fits.
//
//   raw:  31  30 29  28    24 23                          0
//        +---+------+--------+----------------------------+
//        | 1 | len  | unused |  bytes (len <= 3), byte 0 low |
//        +---+------+--------+----------------------------+
//        text = `len` bytes (0..3): "x", "", "007", " 1", "ab".
//
// A text that is both (e.g. "7") is always an int, so each text has one
// code and equal texts have equal codes.
#ifndef TINYCACHED_COMPACT_TINY_SLOT_H_
#define TINYCACHED_COMPACT_TINY_SLOT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "compact/key_codec.h"

namespace tinycached::compact::tiny {

// ---- slot fields ----------------------------------------------------------
inline constexpr int kValueBits = 32;
inline constexpr int kRemainderBits = 29;
inline constexpr int kRemainderShift = kValueBits;
inline constexpr int kAltBit = kRemainderShift + kRemainderBits;  // 61
inline constexpr int kRefBit = kAltBit + 1;                       // 62
inline constexpr int kUsedBit = kRefBit + 1;                      // 63
static_assert(kUsedBit == 63, "the slot's fields fill exactly 64 bits");

inline constexpr uint64_t kValueMask = (uint64_t{1} << kValueBits) - 1;
inline constexpr uint64_t kRemainderMask = (uint64_t{1} << kRemainderBits) - 1;
inline constexpr uint64_t kAlt = uint64_t{1} << kAltBit;
inline constexpr uint64_t kRef = uint64_t{1} << kRefBit;
inline constexpr uint64_t kUsed = uint64_t{1} << kUsedBit;

inline constexpr uint64_t MakeSlot(uint64_t remainder, bool alt, uint32_t value) {
  return kUsed | (alt ? kAlt : 0) | (remainder << kRemainderShift) | value;
}
inline constexpr bool Used(uint64_t slot) { return (slot & kUsed) != 0; }
inline constexpr bool Referenced(uint64_t slot) { return (slot & kRef) != 0; }
inline constexpr bool Alt(uint64_t slot) { return (slot & kAlt) != 0; }
inline constexpr uint64_t Remainder(uint64_t slot) {
  return (slot >> kRemainderShift) & kRemainderMask;
}
inline constexpr uint32_t Value(uint64_t slot) { return static_cast<uint32_t>(slot & kValueMask); }
inline constexpr uint64_t WithValue(uint64_t slot, uint32_t value) {
  return (slot & ~kValueMask) | value;
}
inline constexpr uint64_t WithRemainder(uint64_t slot, uint64_t remainder) {
  return (slot & ~(kRemainderMask << kRemainderShift)) | (remainder << kRemainderShift);
}
static_assert(MakeSlot(0, false, 0) != 0, "a used slot is never the empty slot");

// ---- value codes ----------------------------------------------------------
inline constexpr int kIntBits = 29;
inline constexpr int kPadBits = 2;
inline constexpr uint32_t kRawKind = uint32_t{1} << 31;
inline constexpr uint32_t kIntMax = (uint32_t{1} << kIntBits) - 1;
inline constexpr uint32_t kMaxPad = (uint32_t{1} << kPadBits) - 1;
inline constexpr size_t kMaxRaw = 3;
static_assert(kIntBits + kPadBits + 1 == kValueBits, "int code: kind, pad, n fill 32 bits");
static_assert(8 * kMaxRaw + kPadBits + 1 <= kValueBits, "raw code: kind, len, bytes fit 32 bits");
// Longest text a code holds: 9 digits (2^29 - 1 = 536870911) + 3 spaces.
inline constexpr size_t kMaxText = 9 + kMaxPad;

// The code of `text`, if it has one.
inline bool EncodeValue(std::string_view text, uint32_t* code) {
  // int: digits without a leading zero ("0" alone is fine), then 0..3 spaces.
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const size_t pad = text.size() - digits;
  if (digits > 0 && digits <= 9 && (text[0] != '0' || digits == 1) && pad <= kMaxPad &&
      text.find_first_not_of(' ', digits) == std::string_view::npos) {
    uint32_t n = 0;
    for (size_t i = 0; i < digits; ++i) n = n * 10 + static_cast<uint32_t>(text[i] - '0');
    if (n <= kIntMax) {
      *code = (static_cast<uint32_t>(pad) << kIntBits) | n;
      return true;
    }
  }
  if (text.size() > kMaxRaw) return false;
  uint32_t bytes = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bytes |= static_cast<uint32_t>(static_cast<uint8_t>(text[i])) << (8 * i);
  }
  *code = kRawKind | (static_cast<uint32_t>(text.size()) << kIntBits) | bytes;
  return true;
}

// Writes the text of `code` to `out`; returns its length.
inline size_t DecodeValue(uint32_t code, char (&out)[kMaxText]) {
  const size_t len_or_pad = (code >> kIntBits) & kMaxPad;
  if ((code & kRawKind) != 0) {
    for (size_t i = 0; i < len_or_pad; ++i) out[i] = static_cast<char>((code >> (8 * i)) & 0xff);
    return len_or_pad;
  }
  char digits[kMaxDecimalKey];
  const size_t d = FormatDecimal(code & kIntMax, digits);  // at most 9 digits
  for (size_t i = 0; i < d; ++i) out[i] = digits[i];
  for (size_t i = 0; i < len_or_pad; ++i) out[d + i] = ' ';
  return d + len_or_pad;
}

// ---- keys -----------------------------------------------------------------
inline constexpr int kMaxKeyBits = 43;

// The key if `text` is a canonical decimal integer below 2^key_bits.
inline bool ParseKey(std::string_view text, int key_bits, uint64_t* key) {
  if (text.empty() || text.size() > 14 || (text[0] == '0' && text.size() > 1)) return false;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');  // 14 digits < 2^64
  }
  if (v >> key_bits != 0) return false;
  *key = v;
  return true;
}

// The inverse of odd `a` modulo 2^64 (so modulo any 2^b): Newton's iteration
// doubles the number of correct low bits each step (3 -> 6 -> ... -> 96).
constexpr uint64_t InverseOdd(uint64_t a) {
  uint64_t x = a;  // correct to 3 bits: a * a == 1 mod 8 for odd a
  for (int i = 0; i < 5; ++i) x *= 2 - a * x;
  return x;
}
static_assert(0x6a09e667f3bcc909ULL * InverseOdd(0x6a09e667f3bcc909ULL) == 1,
              "Newton's iteration gives the inverse mod 2^64");

// Two bijections of the key_bits-bit integers (choice 0 and 1). Each is
// three rounds of "multiply by an odd constant, xor the high half into the
// low half", all modulo 2^key_bits: both steps are invertible there (an odd
// number has an inverse mod 2^b; x ^ (x >> s) with 2s >= b is its own
// inverse), and the xor brings the high bits — which depend on every input
// bit — down to the low bits that address buckets.
class KeyMix {
 public:
  // 2 * (key_bits / 2 + 1) > key_bits keeps the xor-shift self-inverse.
  explicit constexpr KeyMix(int key_bits)
      : bits_(key_bits), mask_((uint64_t{1} << key_bits) - 1), shift_(key_bits / 2 + 1) {}

  int key_bits() const { return bits_; }
  uint64_t Mix(uint64_t x, int choice) const {
    const uint64_t* m = kMul[choice];
    for (int r = 0; r < kRounds; ++r) {
      x = (x * m[r]) & mask_;
      x ^= x >> shift_;
    }
    return x;
  }
  uint64_t Unmix(uint64_t x, int choice) const {
    for (int r = kRounds - 1; r >= 0; --r) {
      x ^= x >> shift_;
      x = (x * kInv[choice][r]) & mask_;
    }
    return x;
  }

 private:
  static constexpr int kRounds = 3;
  // Odd 64-bit constants (fractional digits of sqrt(2), sqrt(3), ... as
  // hex, low bit forced); used modulo 2^key_bits.
  static constexpr uint64_t kMul[2][kRounds] = {
      {0x6a09e667f3bcc909ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL},
      {0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL}};
  static constexpr uint64_t kInv[2][kRounds] = {
      {InverseOdd(kMul[0][0]), InverseOdd(kMul[0][1]), InverseOdd(kMul[0][2])},
      {InverseOdd(kMul[1][0]), InverseOdd(kMul[1][1]), InverseOdd(kMul[1][2])}};

  int bits_;
  uint64_t mask_;
  int shift_;
};

}  // namespace tinycached::compact::tiny

#endif  // TINYCACHED_COMPACT_TINY_SLOT_H_
