// compact/tiny_slot.h — the tiny store's index slot: an item in 8 bytes.
//
// Room: compact/. Pure encoding: how a tiny item (an integer key, possibly
// behind a learned text prefix, and a short value) is packed into one 64-bit
// slot of core/tiny_table's buckets, and how it is read back exactly. No
// allocation, no state: which prefix a prefix number names is the business
// of core/key_prefixes.
//
// Keys and their classes. A key that may live in a slot is a number k and
// its class c (a TinyKey). The class fixes how many bits the slot gives the
// key and how many the value:
//
//   class          the key text          k                       R    W
//   0 kInt         n < 2^(26+s)          n                       26   32
//   1 kPrefixed    <prefix>n, n < 2^32   prefix id << 32 | n     26   32
//   2 kLongInt     n < 2^(36+s)          n                       36   22
//   3 kHugeInt     n < 2^(47+s), < 2^61  n                       47   11
//   4 kPrefixedLong <prefix>n, n < 2^50  prefix id << 50 | n     44   14
//   5 kHugeInt2    n < 2^64              n                       50    8 *
//   7 kContinuation  (not a key: the second slot of a wide item, below)
//   * always two slots: the value's other 60 bits are in the continuation
//
// n is a canonical decimal integer ("0", or no leading zero); s is the
// table's smallest number of address bits (log2 of the buckets in a page:
// 14 for 1 MiB pages, so class 0 keys are below 2^40, class 2 below 2^50,
// class 3 below 2^61);
// a prefix id has kPrefixIdBits bits and the rest of the class's key bits
// (KeyBits() - kPrefixIdBits; 32 and 50 at s = 14) are n's. Every key text
// has at most one class: a plain number takes the first of 0, 2, 3, 5 whose
// range holds it, a prefixed one the first of 1, 4. R is the remainder's
// width, W the value code's.
//
// Quotienting. k is first mixed by a bijection H_c of the KeyBits(c)-bit
// integers (two of them, choice 0 and 1: an item may live in either of two
// buckets). The low `addr_bits` bits of H_c(k) are the bucket's number — the
// bucket already says them — so the slot keeps only the rest, the
// remainder H_c(k) >> addr_bits. Because H_c is a bijection the key comes
// back exactly: k = H_c^-1((remainder << addr_bits) | bucket). addr_bits
// grows with the table (linear hashing: a bucket has level or level+1
// address bits) and is never below s, so R = KeyBits(c) - s bits always
// hold the remainder.
//
// The slot (one little-endian uint64_t; 0 is the empty slot):
//
//   63    62    61   60    58 57             W W-1                  0
//  +-----+-----+-----+-------+-----------------+----------------------+
//  |used | ref | alt | class |  remainder (R)  |   value code (W)     |
//  +-----+-----+-----+-------+-----------------+----------------------+
//   used:  the slot holds an item (so a used slot is never 0)
//   ref:   CLOCK's referenced bit, set by a read, cleared by the eviction scan
//   alt:   which of the two bijections placed it (choice 1 = the alternate)
//   class: the key's class (above); R + W = 58 in every class
//
// The value code (W bits) holds the value's bytes exactly, in one of two
// kinds:
//
//   int:  W-1  W-2 W-3  W-4                                0
//        +---+--------+-----------------------------------+
//        | 0 |  pad   |   n (W-3 bits, n < 2^(W-3))       |
//        +---+--------+-----------------------------------+
//        text = decimal digits of n (no leading zero) then `pad` spaces
//        (0..3): "7", "12345678", "9 " (what memcached's decr leaves after
//        "10"), "0". A counter stays an int as long as it fits.
//
//   raw:  W-1  W-2 W-3  W-4                                0
//        +---+--------+-----------------------------------+
//        | 1 |  len   | bytes (len <= MaxRaw(W)), byte 0 low |
//        +---+--------+-----------------------------------+
//        text = `len` bytes: "x", "", "007", " 1", "ab".
//
//   W = 32: numbers below 2^29 (9 digits), up to 3 bytes;
//   W = 22: below 2^19 (6 digits), 2 bytes;  W = 14: below 2^11, 1 byte;
//   W = 11: below 2^8 (0..255), 1 byte.
//
// Wide items: two slots. In classes 0 and 1 (W = 32) a value that no
// 32-bit code holds — a number up to 2^64 - 1 (memcached's incr range) with
// trailing spaces, up to 20 characters in all, or up to 10 bytes — takes an
// aligned pair of slots in one bucket: the head (slot 2j), an ordinary slot
// whose code carries the wide mark and the value's top 30 bits, and the
// continuation (slot 2j + 1), which holds the other 60:
//
//   head code:  31   30 29  28    27                              0
//              +---+-------+----+----------------------------------+
//              | 1 | P[89:88] | 1 |          P[87:60]               |
//              +---+-------+----+----------------------------------+
//               (a raw code's bits 24..28 are always 0: bit 28 marks wide)
//
//   continuation slot:
//     63    62 61    60 58     57                                 0
//    +----+--------+---------+------------------------------------+
//    |used|P[59:58]| class 7 |             P[57:0]                 |
//    +----+--------+---------+------------------------------------+
//     class 7 is no key's class, so a lookup never matches it.
//
//   the 90-bit wide value P:
//     int:  P[89] = 0, P[68:64] = pad (0..19 spaces), P[63:0] = n
//     raw:  P[89] = 1, P[83:80] = len (0..10), P[79:0] = bytes, byte 0 low
//
// Class 5 (keys from 2^61 to 2^64 - 1: the remainder takes 50 of the head's
// 58 bits) is always wide: its head's 8-bit code is Q[67:60] of a 68-bit
// value Q, the continuation Q[59:0]:
//     int:  Q[67] = 0, Q[66:64] = pad (0..7 spaces), Q[63:0] = n
//     raw:  Q[67] = 1, Q[66:64] = len (0..7), Q[55:0] = bytes, byte 0 low
//
// A text that is both (e.g. "7") is always an int, and a text a 32-bit code
// holds never goes wide, so each text has one code and equal texts have
// equal codes.
#ifndef TINYCACHED_COMPACT_TINY_SLOT_H_
#define TINYCACHED_COMPACT_TINY_SLOT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "compact/key_codec.h"

namespace tinycached::compact::tiny {

// ---- key classes ------------------------------------------------------------
enum KeyClass : int {
  kInt = 0,
  kPrefixed = 1,
  kLongInt = 2,
  kHugeInt = 3,
  kPrefixedLong = 4,
  kHugeInt2 = 5,      // always two slots
  kContinuation = 7,  // not a key class: a wide item's second slot
};
inline constexpr int kClasses = 6;  // key classes: 0 .. kClasses - 1
struct ClassShape {
  int remainder_bits;  // R
  int value_bits;      // W
};
inline constexpr int kPayloadBits = 58;  // R + W
// Indexed by the 3-bit class field; 5, 6 (unused) and 7 (continuation) get
// a harmless shape so that no field read can index past the table.
inline constexpr ClassShape kShapes[8] = {{26, 32}, {26, 32}, {36, 22}, {47, 11},
                                          {44, 14}, {50, 8},  {26, 32}, {26, 32}};
inline constexpr int kHugeWideBits = 8;  // class 5's code: only ever wide
constexpr bool ShapesFill() {
  for (const ClassShape& c : kShapes) {
    if (c.remainder_bits + c.value_bits != kPayloadBits || c.value_bits > 32 ||
        (c.value_bits < 11 && c.value_bits != kHugeWideBits)) {
      return false;
    }
  }
  return true;
}
static_assert(ShapesFill(),
              "every class splits the 58 payload bits; codes fit 32 bits, 1 raw byte");

inline constexpr int kMaxKeyBits = 64;
inline constexpr int kPrefixIdBits = 8;

// A key as the table knows it. A plain number converts to a class-0 key
// (callers make sure it is below 2^KeyBits(kInt)).
struct TinyKey {
  uint64_t n = 0;
  int cls = kInt;
  constexpr TinyKey() = default;
  constexpr TinyKey(uint64_t number) : n(number) {}  // NOLINT: class 0
  constexpr TinyKey(int c, uint64_t number) : n(number), cls(c) {}
  friend constexpr bool operator==(const TinyKey&, const TinyKey&) = default;
};

inline constexpr TinyKey TagKey(int cls, uint64_t k) { return TinyKey(cls, k); }
inline constexpr int ClassOfKey(const TinyKey& key) { return key.cls; }
inline constexpr uint64_t KeyNumber(const TinyKey& key) { return key.n; }
// Bits of k in class `cls` for a table whose buckets have at least
// `min_addr_bits` address bits.
inline constexpr int KeyBits(int cls, int min_addr_bits) {
  return std::min(kMaxKeyBits, kShapes[cls].remainder_bits + min_addr_bits);
}
inline constexpr bool IsPrefixed(int cls) { return cls == kPrefixed || cls == kPrefixedLong; }

// ---- slot fields ----------------------------------------------------------
inline constexpr int kClassShift = kPayloadBits;  // 58
inline constexpr int kAltBit = kClassShift + 3;   // 61
inline constexpr int kRefBit = kAltBit + 1;       // 62
inline constexpr int kUsedBit = kRefBit + 1;      // 63
static_assert(kUsedBit == 63, "the slot's fields fill exactly 64 bits");

inline constexpr uint64_t kAlt = uint64_t{1} << kAltBit;
inline constexpr uint64_t kRef = uint64_t{1} << kRefBit;
inline constexpr uint64_t kUsed = uint64_t{1} << kUsedBit;
inline constexpr uint64_t kClassMask = uint64_t{7} << kClassShift;

inline constexpr uint64_t Mask(int bits) {
  return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}
inline constexpr int ValueBits(int cls) { return kShapes[cls].value_bits; }
inline constexpr int RemainderBits(int cls) { return kShapes[cls].remainder_bits; }

inline constexpr uint64_t MakeSlot(int cls, uint64_t remainder, bool alt, uint32_t value) {
  return kUsed | (alt ? kAlt : 0) | (static_cast<uint64_t>(cls) << kClassShift) |
         (remainder << ValueBits(cls)) | value;
}
inline constexpr bool Used(uint64_t slot) { return (slot & kUsed) != 0; }
inline constexpr bool Referenced(uint64_t slot) { return (slot & kRef) != 0; }
inline constexpr bool Alt(uint64_t slot) { return (slot & kAlt) != 0; }
inline constexpr int SlotClass(uint64_t slot) {
  return static_cast<int>((slot & kClassMask) >> kClassShift);
}
inline constexpr uint64_t Remainder(uint64_t slot) {
  const int c = SlotClass(slot);
  return (slot >> ValueBits(c)) & Mask(RemainderBits(c));
}
inline constexpr uint32_t Value(uint64_t slot) {
  return static_cast<uint32_t>(slot & Mask(ValueBits(SlotClass(slot))));
}
inline constexpr uint64_t WithValue(uint64_t slot, uint32_t value) {
  return (slot & ~Mask(ValueBits(SlotClass(slot)))) | value;
}
inline constexpr uint64_t WithRemainder(uint64_t slot, uint64_t remainder) {
  const int c = SlotClass(slot);
  return (slot & ~(Mask(RemainderBits(c)) << ValueBits(c))) | (remainder << ValueBits(c));
}
// The bits that say which key a slot of class `cls` holds.
inline constexpr uint64_t KeyFields(int cls) {
  return kUsed | kAlt | kClassMask | (Mask(RemainderBits(cls)) << ValueBits(cls));
}
static_assert(MakeSlot(0, 0, false, 0) != 0, "a used slot is never the empty slot");

// The value of `text` if it is a canonical decimal integer below 2^64.
inline bool ParseDecimal(std::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > kMaxDecimalKey || (text[0] == '0' && text.size() > 1)) {
    return false;
  }
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    const uint64_t d = static_cast<uint64_t>(ch - '0');
    // Only a 20th digit can pass 2^64 - 1 (19 digits are below 10^19).
    if (text.size() == kMaxDecimalKey && v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *value = v;
  return true;
}

// If `text` is a canonical decimal number below 2^64 followed by nothing
// but spaces: the number and how many spaces.
inline bool NumberThenSpaces(std::string_view text, uint64_t* n, size_t* pad) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || text.find_first_not_of(' ', digits) != std::string_view::npos) return false;
  *pad = text.size() - digits;
  return ParseDecimal(text.substr(0, digits), n);
}

// ---- value codes ----------------------------------------------------------
inline constexpr int kPadBits = 2;
inline constexpr uint32_t kMaxPad = (uint32_t{1} << kPadBits) - 1;
inline constexpr int IntBits(int w) { return w - 1 - kPadBits; }
inline constexpr uint32_t IntMax(int w) { return static_cast<uint32_t>(Mask(IntBits(w))); }
inline constexpr uint32_t RawKind(int w) { return uint32_t{1} << (w - 1); }
inline constexpr size_t MaxRaw(int w) {
  return std::min<size_t>(3, static_cast<size_t>(IntBits(w)) / 8);
}
// Longest text a value holds: a wide int's 20 characters (digits and pad).
inline constexpr size_t kMaxText = kMaxDecimalKey;

// The code of `text` in a `w`-bit field, if it has one (one slot).
inline bool EncodeCode(std::string_view text, int w, uint32_t* code) {
  // int: digits without a leading zero ("0" alone is fine), then 0..3 spaces.
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const size_t pad = text.size() - digits;
  if (digits > 0 && digits <= 9 && (text[0] != '0' || digits == 1) && pad <= kMaxPad &&
      text.find_first_not_of(' ', digits) == std::string_view::npos) {
    uint32_t n = 0;
    for (size_t i = 0; i < digits; ++i) n = n * 10 + static_cast<uint32_t>(text[i] - '0');
    if (n <= IntMax(w)) {
      *code = (static_cast<uint32_t>(pad) << IntBits(w)) | n;
      return true;
    }
  }
  if (text.size() > MaxRaw(w)) return false;
  uint32_t bytes = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bytes |= static_cast<uint32_t>(static_cast<uint8_t>(text[i])) << (8 * i);
  }
  *code = RawKind(w) | (static_cast<uint32_t>(text.size()) << IntBits(w)) | bytes;
  return true;
}

// ---- wide values ------------------------------------------------------------
inline constexpr uint32_t kWideMark = (uint32_t{1} << 31) | (uint32_t{1} << 28);
inline constexpr int kWideCodeBits = 32;  // only 32-bit codes go wide
inline constexpr size_t kMaxWideRaw = 10;
inline constexpr int kContinuationBits = 60;

// A value as the table keeps it: the head's code, and for a wide one
// (WideCode(code)) the continuation's 60 bits.
struct SlotValue {
  uint32_t code = 0;
  uint64_t ext = 0;
  friend bool operator==(const SlotValue&, const SlotValue&) = default;
};

inline constexpr bool WideCode(uint32_t code) { return (code & kWideMark) == kWideMark; }
inline constexpr bool IsContinuation(uint64_t slot) {
  return Used(slot) && SlotClass(slot) == kContinuation;
}
// Whether a value of class `cls` takes two slots.
inline constexpr bool WideValue(int cls, const SlotValue& v) {
  return cls == kHugeInt2 || (ValueBits(cls) == kWideCodeBits && WideCode(v.code));
}
// A used slot that heads a wide item (its partner is the next slot).
inline constexpr bool IsWide(uint64_t slot) {
  return Used(slot) && SlotClass(slot) != kContinuation &&
         (SlotClass(slot) == kHugeInt2 || WideCode(Value(slot)));
}
inline constexpr uint64_t MakeContinuation(uint64_t ext) {
  return kUsed | (uint64_t{kContinuation} << kClassShift) | (ext & Mask(kClassShift)) |
         (((ext >> kClassShift) & 3) << kAltBit);
}
inline constexpr uint64_t ContinuationBits(uint64_t slot) {
  return (slot & Mask(kClassShift)) | (((slot >> kAltBit) & 3) << kClassShift);
}
static_assert(ContinuationBits(MakeContinuation(Mask(kContinuationBits))) ==
              Mask(kContinuationBits));
static_assert(!IsWide(MakeContinuation(Mask(kContinuationBits))), "a continuation heads nothing");

namespace internal {
// P = hi (30 bits) : lo (60 bits).
inline constexpr uint32_t HeadCode(uint32_t hi) {
  return kWideMark | (hi & static_cast<uint32_t>(Mask(28))) | (((hi >> 28) & 3) << 29);
}
inline constexpr uint32_t HeadBits(uint32_t code) {
  return (code & static_cast<uint32_t>(Mask(28))) | (((code >> 29) & 3) << 28);
}
inline constexpr uint32_t kRawBit = uint32_t{1} << 29;  // P[89]

// Class 5's 68-bit value Q: code = Q[67:60], ext = Q[59:0].
inline bool EncodeHuge(std::string_view text, SlotValue* v) {
  uint64_t n = 0;
  size_t pad = 0;
  uint32_t top = 0;  // Q[67:60]
  if (text.size() > kMaxDecimalKey) return false;
  if (NumberThenSpaces(text, &n, &pad) && pad <= 7) {
    top = static_cast<uint32_t>(n >> 60) | static_cast<uint32_t>(pad) << 4;
  } else if (text.size() <= 7) {
    for (size_t i = 0; i < text.size(); ++i)
      n |= uint64_t{static_cast<uint8_t>(text[i])} << (8 * i);
    top = 0x80 | static_cast<uint32_t>(text.size()) << 4;  // 56 bits: nothing above Q[59]
  } else {
    return false;
  }
  v->code = top;
  v->ext = n & Mask(kContinuationBits);
  return true;
}

inline size_t DecodeHuge(const SlotValue& v, char (&out)[kMaxDecimalKey]) {
  const size_t len = (v.code >> 4) & 7;
  if ((v.code & 0x80) != 0) {
    for (size_t i = 0; i < len; ++i) out[i] = static_cast<char>((v.ext >> (8 * i)) & 0xff);
    return len;
  }
  const uint64_t n = v.ext | (static_cast<uint64_t>(v.code & 0xf) << kContinuationBits);
  char digits[kMaxDecimalKey];
  const size_t d = FormatDecimal(n, digits);
  for (size_t i = 0; i < d; ++i) out[i] = digits[i];
  for (size_t i = 0; i < len; ++i) out[d + i] = ' ';  // d + len <= 20: EncodeHuge
  return d + len;
}
}  // namespace internal

// The value of `text` under a key whose class has `w`-bit codes: one slot
// if a code holds it, else (w = 32 only) a wide value. False if neither.
inline bool EncodeValue(std::string_view text, int w, SlotValue* v) {
  v->ext = 0;
  if (w == kHugeWideBits) return internal::EncodeHuge(text, v);
  if (EncodeCode(text, w, &v->code)) return true;
  if (w != kWideCodeBits || text.size() > kMaxText) return false;
  uint64_t n = 0;
  size_t pad = 0;  // <= 19: the text is at most 20 characters
  if (NumberThenSpaces(text, &n, &pad)) {
    v->ext = n & Mask(kContinuationBits);
    v->code = internal::HeadCode(static_cast<uint32_t>(n >> kContinuationBits) |
                                 static_cast<uint32_t>(pad) << 4);
    return true;
  }
  if (text.size() > kMaxWideRaw) return false;
  uint64_t lo = 0;
  uint32_t hi = internal::kRawBit | (static_cast<uint32_t>(text.size()) << 20);
  for (size_t i = 0; i < text.size(); ++i) {
    const uint64_t byte = static_cast<uint8_t>(text[i]);
    if (i < 8) {
      lo |= byte << (8 * i);
    } else {
      hi |= static_cast<uint32_t>(byte) << (4 + 8 * (i - 8));
    }
  }
  hi |= static_cast<uint32_t>(lo >> kContinuationBits);
  v->ext = lo & Mask(kContinuationBits);
  v->code = internal::HeadCode(hi);
  return true;
}

// Writes the text of `v` (under a key whose class has `w`-bit codes) to
// `out`; returns its length.
inline size_t DecodeValue(const SlotValue& v, int w, char (&out)[kMaxText]) {
  if (w == kHugeWideBits) return internal::DecodeHuge(v, out);
  if (w == kWideCodeBits && WideCode(v.code)) {
    const uint32_t hi = internal::HeadBits(v.code);
    const uint64_t lo = v.ext | (static_cast<uint64_t>(hi & 0xf) << kContinuationBits);
    if ((hi & internal::kRawBit) != 0) {
      const size_t len = (hi >> 20) & 0xf;
      for (size_t i = 0; i < len; ++i) {
        out[i] =
            static_cast<char>(i < 8 ? (lo >> (8 * i)) & 0xff : (hi >> (4 + 8 * (i - 8))) & 0xff);
      }
      return len;
    }
    const size_t pad = (hi >> 4) & 0x1f;
    char digits[kMaxDecimalKey];
    const size_t d = FormatDecimal(lo, digits);
    for (size_t i = 0; i < d; ++i) out[i] = digits[i];
    for (size_t i = 0; i < pad; ++i) out[d + i] = ' ';
    return d + pad;
  }
  const uint32_t code = v.code;
  const size_t len_or_pad = (code >> IntBits(w)) & kMaxPad;
  if ((code & RawKind(w)) != 0) {
    for (size_t i = 0; i < len_or_pad; ++i) out[i] = static_cast<char>((code >> (8 * i)) & 0xff);
    return len_or_pad;
  }
  char digits[kMaxDecimalKey];
  const size_t d = FormatDecimal(code & IntMax(w), digits);  // at most 9 digits
  for (size_t i = 0; i < d; ++i) out[i] = digits[i];
  for (size_t i = 0; i < len_or_pad; ++i) out[d + i] = ' ';
  return d + len_or_pad;
}

// ---- keys -----------------------------------------------------------------
// The tagged key of plain number `n` in a table with `min_addr_bits`, if
// any class holds it.
inline bool IntKey(uint64_t n, int min_addr_bits, TinyKey* tagged) {
  for (int cls : {kInt, kLongInt, kHugeInt, kHugeInt2}) {
    if (KeyBits(cls, min_addr_bits) >= 64 || n >> KeyBits(cls, min_addr_bits) == 0) {
      *tagged = TagKey(cls, n);
      return true;
    }
  }
  return false;
}

// Bits left for n behind a prefix id in class `cls`.
inline constexpr int PrefixedNumberBits(int cls, int min_addr_bits) {
  return KeyBits(cls, min_addr_bits) - kPrefixIdBits;
}

// The tagged key of prefix `id` followed by number `n`, if a class holds it.
inline bool PrefixedKey(uint32_t id, uint64_t n, int min_addr_bits, TinyKey* tagged) {
  for (int cls : {kPrefixed, kPrefixedLong}) {
    const int bits = PrefixedNumberBits(cls, min_addr_bits);
    if (bits > 0 && n >> bits == 0 && id < (uint32_t{1} << kPrefixIdBits)) {
      *tagged = TagKey(cls, (static_cast<uint64_t>(id) << bits) | n);
      return true;
    }
  }
  return false;
}

// The prefix id and number of a prefixed tagged key.
inline void SplitPrefixed(const TinyKey& tagged, int min_addr_bits, uint32_t* id, uint64_t* n) {
  const int bits = PrefixedNumberBits(ClassOfKey(tagged), min_addr_bits);
  *id = static_cast<uint32_t>(KeyNumber(tagged) >> bits);
  *n = KeyNumber(tagged) & Mask(bits);
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
      : bits_(key_bits), mask_(Mask(key_bits)), shift_(key_bits / 2 + 1) {}

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
