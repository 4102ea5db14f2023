// compact/stock_layout.h — memcached 1.6's item layout, byte for byte.
//
// Room: compact/ knows how an item's bytes are arranged and nothing else: no
// locks, no allocation, no protocol. core/ stores items through the accessors
// below and never computes an offset itself; a new layout is a new class here
// with the same accessor names.
//
// The stock layout reproduces memcached 1.6 on x86-64 so that the fill
// experiment can measure every later trick against the real baseline:
//
//    0       8       16      24   28   32   36   38   40 41 42    48
//   +-------+-------+-------+----+----+----+----+----+--+--+-----+
//   | next  | prev  |h_next |time|exp |nbyt|refc|flag|cl|nk| pad |
//   +-------+-------+-------+----+----+----+----+----+--+--+-----+
//    LRU links (8+8) and hash chain (8): raw 64-bit pointers, null = 0
//    time:   last access, relative server seconds (u32)
//    exp:    expiry, relative server seconds, 0 = never (u32)
//    nbyt:   value length INCLUDING the trailing "\r\n" (u32), as memcached
//    refc:   reference count (u16) — kept for size fidelity, always 1 here:
//            readers copy values out under the item lock instead
//    flag:   item flag bits, see ItemFlag (u16)
//    cl:     slab class id (u8)
//    nk:     key length (u8), at most kMaxKeyLength
//    pad:    6 bytes: memcached's header is a struct padded to 8
//
//   48: [cas u64, only when CAS is enabled]
//       key bytes, '\0'
//       [client flags u32, only when non-zero: kClientFlags set]
//       value bytes, "\r\n"
//
// Total size = 48 + (cas ? 8 : 0) + nkey + 1 + (flags ? 4 : 0) + nvalue + 2,
// exactly memcached 1.6.18's item_make_header() + CAS.
#ifndef TINYCACHED_COMPACT_STOCK_LAYOUT_H_
#define TINYCACHED_COMPACT_STOCK_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tinycached::compact {

// Unaligned-safe field access: later layouts pack fields at any byte offset.
template <typename T>
inline T LoadField(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void StoreField(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(v));
}

inline constexpr size_t kMaxKeyLength = 250;

// Bits of the 16-bit flag field.
enum ItemFlag : uint16_t {
  kLinked = 1 << 0,       // in the hash index and an LRU list
  kFetched = 1 << 1,      // read at least once since stored
  kClientFlags = 1 << 2,  // a 4-byte client-flags field is present
  kLarge = 1 << 3,        // allocated outside the slab pages (> chunk max)
};

class StockLayout {
 public:
  using Ref = uint8_t*;  // an item is addressed by a plain pointer

  static constexpr size_t kNextOffset = 0;
  static constexpr size_t kPrevOffset = 8;
  static constexpr size_t kHashNextOffset = 16;
  static constexpr size_t kTimeOffset = 24;
  static constexpr size_t kExptimeOffset = 28;
  static constexpr size_t kNbytesOffset = 32;
  static constexpr size_t kRefcountOffset = 36;
  static constexpr size_t kFlagsOffset = 38;
  static constexpr size_t kClassOffset = 40;
  static constexpr size_t kKeyLengthOffset = 41;
  static constexpr size_t kHeaderSize = 48;
  static constexpr size_t kCasSize = 8;
  static constexpr size_t kClientFlagsSize = 4;
  static constexpr size_t kValueSuffix = 2;  // "\r\n" stored after the value
  static_assert(kKeyLengthOffset + 1 <= kHeaderSize, "fields must fit the header");
  static_assert(kMaxKeyLength <= UINT8_MAX, "key length is stored in one byte");

  explicit constexpr StockLayout(bool cas_enabled)
      : cas_enabled_(cas_enabled), key_offset_(kHeaderSize + (cas_enabled ? kCasSize : 0)) {}

  bool cas_enabled() const { return cas_enabled_; }

  // Bytes an item needs. Must agree with the accessors below.
  constexpr size_t ItemSize(size_t nkey, uint32_t client_flags, size_t nvalue) const {
    return key_offset_ + nkey + 1 + (client_flags != 0 ? kClientFlagsSize : 0) + nvalue +
           kValueSuffix;
  }

  // Writes header, key, flags and value; links are nulled. `nvalue` bytes of
  // value are copied from `value` when non-null (else left for the caller).
  void Init(uint8_t* it, uint8_t class_id, uint16_t extra_flags, std::string_view key,
            uint32_t client_flags, size_t nvalue, const char* value, uint32_t now,
            uint32_t exptime) const {
    std::memset(it, 0, kHeaderSize);
    StoreField<uint32_t>(it + kTimeOffset, now);
    StoreField<uint32_t>(it + kExptimeOffset, exptime);
    StoreField<uint32_t>(it + kNbytesOffset, static_cast<uint32_t>(nvalue + kValueSuffix));
    StoreField<uint16_t>(it + kRefcountOffset, 1);
    uint16_t flags = extra_flags;
    if (client_flags != 0) flags |= kClientFlags;
    StoreField<uint16_t>(it + kFlagsOffset, flags);
    it[kClassOffset] = class_id;
    it[kKeyLengthOffset] = static_cast<uint8_t>(key.size());
    if (cas_enabled_) StoreField<uint64_t>(it + kHeaderSize, 0);
    uint8_t* k = it + key_offset_;
    std::memcpy(k, key.data(), key.size());
    k[key.size()] = '\0';
    if (client_flags != 0) StoreField<uint32_t>(k + key.size() + 1, client_flags);
    uint8_t* v = ValuePtr(it);
    if (value != nullptr && nvalue > 0) std::memcpy(v, value, nvalue);
    v[nvalue] = '\r';
    v[nvalue + 1] = '\n';
  }

  // Links.
  static Ref Next(const uint8_t* it) { return LoadField<Ref>(it + kNextOffset); }
  static Ref Prev(const uint8_t* it) { return LoadField<Ref>(it + kPrevOffset); }
  static Ref HashNext(const uint8_t* it) { return LoadField<Ref>(it + kHashNextOffset); }
  static void SetNext(uint8_t* it, Ref r) { StoreField<Ref>(it + kNextOffset, r); }
  static void SetPrev(uint8_t* it, Ref r) { StoreField<Ref>(it + kPrevOffset, r); }
  static void SetHashNext(uint8_t* it, Ref r) { StoreField<Ref>(it + kHashNextOffset, r); }

  // Metadata.
  static uint32_t Time(const uint8_t* it) { return LoadField<uint32_t>(it + kTimeOffset); }
  static void SetTime(uint8_t* it, uint32_t t) { StoreField<uint32_t>(it + kTimeOffset, t); }
  static uint32_t Exptime(const uint8_t* it) { return LoadField<uint32_t>(it + kExptimeOffset); }
  static void SetExptime(uint8_t* it, uint32_t t) {
    StoreField<uint32_t>(it + kExptimeOffset, t);
  }
  static uint16_t Flags(const uint8_t* it) { return LoadField<uint16_t>(it + kFlagsOffset); }
  static void SetFlags(uint8_t* it, uint16_t f) { StoreField<uint16_t>(it + kFlagsOffset, f); }
  static uint8_t ClassId(const uint8_t* it) { return it[kClassOffset]; }
  static size_t KeyLength(const uint8_t* it) { return it[kKeyLengthOffset]; }
  static size_t ValueLength(const uint8_t* it) {
    return LoadField<uint32_t>(it + kNbytesOffset) - kValueSuffix;
  }

  uint64_t Cas(const uint8_t* it) const {
    return cas_enabled_ ? LoadField<uint64_t>(it + kHeaderSize) : 0;
  }
  void SetCas(uint8_t* it, uint64_t cas) const {
    if (cas_enabled_) StoreField<uint64_t>(it + kHeaderSize, cas);
  }

  std::string_view Key(const uint8_t* it) const {
    return {reinterpret_cast<const char*>(it + key_offset_), KeyLength(it)};
  }
  uint32_t ClientFlags(const uint8_t* it) const {
    if ((Flags(it) & kClientFlags) == 0) return 0;
    return LoadField<uint32_t>(it + key_offset_ + KeyLength(it) + 1);
  }
  uint8_t* ValuePtr(uint8_t* it) const { return it + ValueOffset(it); }
  const uint8_t* ValuePtr(const uint8_t* it) const { return it + ValueOffset(it); }
  std::string_view Value(const uint8_t* it) const {
    return {reinterpret_cast<const char*>(ValuePtr(it)), ValueLength(it)};
  }
  // Total bytes of this item (what memcached reports as its size).
  size_t TotalSize(const uint8_t* it) const {
    return ValueOffset(it) + ValueLength(it) + kValueSuffix;
  }

 private:
  size_t ValueOffset(const uint8_t* it) const {
    return key_offset_ + KeyLength(it) + 1 +
           ((Flags(it) & kClientFlags) != 0 ? kClientFlagsSize : 0);
  }

  bool cas_enabled_;
  size_t key_offset_;
};

}  // namespace tinycached::compact

#endif  // TINYCACHED_COMPACT_STOCK_LAYOUT_H_
