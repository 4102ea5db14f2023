// compact/item_layout.h — where each byte of an item goes, chosen at start-up.
//
// Room: compact/ knows how an item's bytes are arranged and nothing else: no
// locks, no allocation, no protocol. core/ reads and writes items only
// through ItemLayout and never computes an offset itself.
//
// One layout object describes every configuration; its knobs are
//   refs    — 8-byte pointers or page references (compact/ref.h)
//   cas     — an 8-byte CAS field, or none (memcached -C)
//   keys    — keys as text, or packed where they are decimal integers, hex
//             digests or UUIDs (compact/key_codec.h: base-250 or tagged bytes)
//   header  — stock (memcached 1.6's fields) or lean (only what is used)
// Chunk alignment belongs to the slab table (core/slabs.h), not the item.
//
// STOCK header: memcached 1.6's struct _stritem on x86-64 when refs are
// pointers (W = 8): every field fixed, the struct padded to 8.
//
//    0     W     2W    3W     +4     +8     +12  +14  +16 +17 +18    H
//   +-----+-----+-----+------+------+------+----+----+---+---+-----+
//   |next |prev |hnext| time | exp  |nbytes|refc|flag|cls|nk | pad |
//   +-----+-----+-----+------+------+------+----+----+---+---+-----+
//    next/prev: LRU links; hnext: hash chain (W bytes each)
//    time: last access (u32 relative seconds); exp: the expiry word (below)
//    nbytes: value length + 2 (memcached counts the stored "\r\n") (u32)
//    refc: reference count (u16), always 1: readers copy out under the lock
//    flag: ItemFlag bits (u16); cls: slab class (u8); nk: key length (u8)
//    H = 3W + 18 rounded up to the struct's alignment (8 for W = 8, else 4):
//        48 bytes with pointers (memcached), 32 with 4-byte refs, 28 with 3.
//   H: [cas u64]  key  '\0'  [client flags u32 if nonzero]  value  "\r\n"
//
// LEAN header: the same links, then only what a stored item uses.
//
//    0     W     2W    3W  3W+1 3W+2
//   +-----+-----+-----+---+----+---------+
//   |next |prev |hnext|flg| nk | vlen    |
//   +-----+-----+-----+---+----+---------+
//    flg: ItemFlag bits (u8); nk: stored key length (u8)
//    vlen: value length, LEB128 varint, 1 byte below 128, at most 5
//   then [cas u64 if cas]  [exptime u32 if kExptime]
//        [client flags u32 if kClientFlags]  key  value
//   Not stored: refcount (copy-out), class id (the page knows it), the key's
//   NUL and the value's "\r\n" (the reply writer adds them), padding, and
//   the access time: recency is the kActive bit, flush_all the kEpoch bit
//   (core/item_store.h), so only `stats` ages are lost (they read 0).
//
// The expiry word (stock `exp`, lean's optional exptime field), u32:
//
//    31     30      29     28                                 0
//   +------+-------+------+-----------------------------------+
//   |binkey|winsent|stale |  expiry: relative seconds, 0=never |
//   +------+-------+------+-----------------------------------+
//    stale:   invalidated by a meta delete or set with I (memcached's ITEM_STALE)
//    winsent: a meta get has handed out the right to recache it (ITEM_TOKEN_SENT)
//    binkey:  stored by a meta set with a base64 key: `k` returns it base64
//             (ITEM_KEY_BINARY)
//   Relative expiries stay below 2^29 (17 years of uptime; an absolute one is
//   at most 2^31 minus the start time, under 2^29 since 2015). A lean item
//   that has a meta state but no expiry stores the field anyway (its word is
//   non-zero).
//
// Example, key "1234567", value "x", flags 0, no expiry, no CAS:
//   stock + pointers + text keys:  48 + 8 + 1 + 3 = 60 bytes (+8 with CAS)
//   lean + 3-byte refs + base250:   9 + 1 + 1 + 1 + 3 + 1 = 16 bytes
// and an md5 hex key (32 characters; packed: a tag + 16 bytes):
//   lean + 3-byte refs + text keys: 9 + 1 + 1 + 1 + 32 + 1 = 45 bytes
//   lean + 3-byte refs + packed:    9 + 1 + 1 + 1 + 17 + 1 = 30 bytes
#ifndef TINYCACHED_COMPACT_ITEM_LAYOUT_H_
#define TINYCACHED_COMPACT_ITEM_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "compact/key_codec.h"
#include "compact/ref.h"

namespace tinycached::compact {

// Unaligned-safe field access: compact layouts pack fields at any byte offset.
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

// Item flag bits. The stock header stores them in a u16, the lean in a u8.
enum ItemFlag : uint16_t {
  kActive = 1 << 0,       // used since it last reached the LRU tail (second chance)
  kFetched = 1 << 1,      // read at least once since stored
  kClientFlags = 1 << 2,  // a 4-byte client-flags field is present
  kLarge = 1 << 3,        // a large item: one to a page, not a slab chunk
  kPackedKey = 1 << 4,    // the key is stored packed (base-250, or tagged hex/UUID bytes)
  kExptime = 1 << 5,      // lean: a 4-byte exptime field is present
  kEpoch = 1 << 6,        // parity of the flush epoch the item was linked in
};

enum class HeaderStyle : uint8_t { kStock, kLean };

// The meta commands' item state, kept in the top bits of the expiry word.
enum MetaState : uint8_t {
  kMetaStale = 1 << 0,      // invalidated (mg answers X)
  kMetaWinSent = 1 << 1,    // a client has won the recache (mg answers Z)
  kMetaBinaryKey = 1 << 2,  // the key came base64-encoded
};
inline constexpr int kExptimeBits = 29;
inline constexpr uint32_t kExptimeMask = (uint32_t{1} << kExptimeBits) - 1;
// The expiry word of an item with this expiry and meta state.
inline constexpr uint32_t ExptimeWord(uint32_t exptime, uint8_t state) {
  return (exptime & kExptimeMask) | (static_cast<uint32_t>(state) << kExptimeBits);
}

struct LayoutOptions {
  RefCodec refs = RefCodec::Pointer();
  bool cas = true;
  bool pack_keys = false;
  HeaderStyle header = HeaderStyle::kStock;
};

// What Init() writes besides the key and value.
struct ItemMeta {
  uint8_t class_id = 0;
  uint16_t flags = 0;  // kLarge and friends; kClientFlags/kExptime/kPackedKey are derived
  uint32_t client_flags = 0;
  uint32_t time = 0;  // stock only: the access time field
  uint32_t exptime = 0;
  uint8_t state = 0;  // MetaState bits
};

class ItemLayout {
 public:
  static constexpr size_t kStockFixedFields = 18;  // time..nkey after the links
  static constexpr size_t kCasSize = 8;
  static constexpr size_t kClientFlagsSize = 4;
  static constexpr size_t kExptimeSize = 4;
  static constexpr size_t kStockValueSuffix = 2;  // "\r\n"

  explicit ItemLayout(const LayoutOptions& o)
      : refs_(o.refs),
        cas_(o.cas),
        pack_keys_(o.pack_keys),
        lean_(o.header == HeaderStyle::kLean),
        w_(o.refs.width()) {
    if (lean_) {
      flags_off_ = 3 * w_;
      nkey_off_ = flags_off_ + 1;
      header_ = nkey_off_ + 1;  // + varint
    } else {
      time_off_ = 3 * w_;
      exptime_off_ = time_off_ + 4;
      nbytes_off_ = exptime_off_ + 4;
      refcount_off_ = nbytes_off_ + 4;
      flags_off_ = refcount_off_ + 2;
      class_off_ = flags_off_ + 2;
      nkey_off_ = class_off_ + 1;
      const size_t struct_align = w_ == 8 ? 8 : 4;
      header_ = (3 * w_ + kStockFixedFields + struct_align - 1) / struct_align * struct_align;
    }
  }
  // memcached 1.6, byte for byte (CAS per -C).
  static ItemLayout Stock(bool cas) {
    LayoutOptions o;
    o.cas = cas;
    return ItemLayout(o);
  }

  const RefCodec& refs() const { return refs_; }
  bool cas_enabled() const { return cas_; }
  bool pack_keys() const { return pack_keys_; }
  bool lean() const { return lean_; }
  // Bytes before the first variable-size field (stock: the padded struct;
  // lean: links + flags + nkey, before the varint).
  size_t header_size() const { return header_; }

  // Bytes an item needs. Must agree with Init() and the accessors.
  // `exptime` is the expiry word (ExptimeWord()): a lean item has the field
  // when it is non-zero.
  size_t ItemSize(size_t nkey, uint32_t client_flags, size_t nvalue, uint32_t exptime) const {
    const size_t cf = client_flags != 0 ? kClientFlagsSize : 0;
    const size_t cas = cas_ ? kCasSize : 0;
    if (!lean_) return header_ + cas + nkey + 1 + cf + nvalue + kStockValueSuffix;
    const size_t ex = exptime != 0 ? kExptimeSize : 0;
    return header_ + VarintSize(nvalue) + cas + ex + cf + nkey + nvalue;
  }

  // Writes the header, key, optional fields and (if `value` is not null)
  // the value; links are null, CAS 0.
  void Init(uint8_t* it, const ItemMeta& m, const StoredKey& key, size_t nvalue,
            const char* value) const {
    uint16_t flags = m.flags & ~(kClientFlags | kExptime | kPackedKey);
    const uint32_t word = compact::ExptimeWord(m.exptime, m.state);
    if (m.client_flags != 0) flags |= kClientFlags;
    if (key.packed()) flags |= kPackedKey;
    const std::string_view k = key.bytes();
    uint8_t* v;
    refs_.Store(it, nullptr);
    refs_.Store(it + w_, nullptr);
    refs_.Store(it + 2 * w_, nullptr);
    if (lean_) {
      if (word != 0) flags |= kExptime;
      it[flags_off_] = static_cast<uint8_t>(flags);
      it[nkey_off_] = static_cast<uint8_t>(k.size());
      uint8_t* p = it + header_;
      p += PutVarint(p, nvalue);
      if (cas_) {
        StoreField<uint64_t>(p, 0);
        p += kCasSize;
      }
      if (word != 0) {
        StoreField<uint32_t>(p, word);
        p += kExptimeSize;
      }
      if (m.client_flags != 0) {
        StoreField<uint32_t>(p, m.client_flags);
        p += kClientFlagsSize;
      }
      std::memcpy(p, k.data(), k.size());
      v = p + k.size();
    } else {
      std::memset(it + 3 * w_, 0, header_ - 3 * w_);
      StoreField<uint32_t>(it + time_off_, m.time);
      StoreField<uint32_t>(it + exptime_off_, word);
      StoreField<uint32_t>(it + nbytes_off_, static_cast<uint32_t>(nvalue + kStockValueSuffix));
      StoreField<uint16_t>(it + refcount_off_, 1);
      StoreField<uint16_t>(it + flags_off_, flags);
      it[class_off_] = m.class_id;
      it[nkey_off_] = static_cast<uint8_t>(k.size());
      uint8_t* p = it + header_;
      if (cas_) {
        StoreField<uint64_t>(p, 0);
        p += kCasSize;
      }
      std::memcpy(p, k.data(), k.size());
      p += k.size();
      *p++ = '\0';
      if (m.client_flags != 0) {
        StoreField<uint32_t>(p, m.client_flags);
        p += kClientFlagsSize;
      }
      v = p;
      v[nvalue] = '\r';
      v[nvalue + 1] = '\n';
    }
    if (value != nullptr && nvalue > 0) std::memcpy(v, value, nvalue);
  }

  // Links.
  uint8_t* Next(const uint8_t* it) const { return refs_.Load(it); }
  uint8_t* Prev(const uint8_t* it) const { return refs_.Load(it + w_); }
  uint8_t* HashNext(const uint8_t* it) const { return refs_.Load(it + 2 * w_); }
  void SetNext(uint8_t* it, const uint8_t* r) const { refs_.Store(it, r); }
  void SetPrev(uint8_t* it, const uint8_t* r) const { refs_.Store(it + w_, r); }
  void SetHashNext(uint8_t* it, const uint8_t* r) const { refs_.Store(it + 2 * w_, r); }

  // Metadata.
  uint16_t Flags(const uint8_t* it) const {
    return lean_ ? it[flags_off_] : LoadField<uint16_t>(it + flags_off_);
  }
  void SetFlags(uint8_t* it, uint16_t f) const {
    if (lean_) {
      it[flags_off_] = static_cast<uint8_t>(f);
    } else {
      StoreField<uint16_t>(it + flags_off_, f);
    }
  }
  // Last access time: stock only (the lean header has none; reads 0).
  bool has_time() const { return !lean_; }
  uint32_t Time(const uint8_t* it) const { return lean_ ? 0 : LoadField<uint32_t>(it + time_off_); }
  void SetTime(uint8_t* it, uint32_t t) const {
    if (!lean_) StoreField<uint32_t>(it + time_off_, t);
  }

  // The whole expiry word (expiry and meta state).
  uint32_t ExptimeWord(const uint8_t* it) const {
    if (!lean_) return LoadField<uint32_t>(it + exptime_off_);
    if ((it[flags_off_] & kExptime) == 0) return 0;
    return LoadField<uint32_t>(it + OptionalOffset(it) + (cas_ ? kCasSize : 0));
  }
  uint32_t Exptime(const uint8_t* it) const { return ExptimeWord(it) & kExptimeMask; }
  uint8_t State(const uint8_t* it) const {
    return static_cast<uint8_t>(ExptimeWord(it) >> kExptimeBits);
  }
  // Sets the expiry (keeping the state), or the state (keeping the expiry).
  // False when the item has no room for the new word (a lean item stored
  // without the field): the caller must rewrite the item with
  // ItemSize(..., new word).
  bool SetExptime(uint8_t* it, uint32_t t) const {
    return SetExptimeWord(it, compact::ExptimeWord(t, State(it)));
  }
  bool SetState(uint8_t* it, uint8_t state) const {
    return SetExptimeWord(it, compact::ExptimeWord(Exptime(it), state));
  }
  bool SetExptimeWord(uint8_t* it, uint32_t word) const {
    if (!lean_) {
      StoreField<uint32_t>(it + exptime_off_, word);
      return true;
    }
    if ((it[flags_off_] & kExptime) == 0) return word == 0;
    StoreField<uint32_t>(it + OptionalOffset(it) + (cas_ ? kCasSize : 0), word);
    return true;
  }

  uint64_t Cas(const uint8_t* it) const {
    return cas_ ? LoadField<uint64_t>(it + CasOffset(it)) : 0;
  }
  void SetCas(uint8_t* it, uint64_t cas) const {
    if (cas_) StoreField<uint64_t>(it + CasOffset(it), cas);
  }

  uint32_t ClientFlags(const uint8_t* it) const {
    if ((Flags(it) & kClientFlags) == 0) return 0;
    if (!lean_) return LoadField<uint32_t>(it + KeyOffset(it) + KeyLength(it) + 1);
    return LoadField<uint32_t>(it + KeyOffset(it) - kClientFlagsSize);
  }

  // The key as stored (packed bytes when kPackedKey).
  size_t KeyLength(const uint8_t* it) const { return it[nkey_off_]; }
  std::string_view StoredKeyBytes(const uint8_t* it) const {
    return {reinterpret_cast<const char*>(it + KeyOffset(it)), KeyLength(it)};
  }
  bool KeyPacked(const uint8_t* it) const { return (Flags(it) & kPackedKey) != 0; }
  bool KeyMatches(const uint8_t* it, const StoredKey& key) const {
    return KeyPacked(it) == key.packed() && StoredKeyBytes(it) == key.bytes();
  }
  // The key's text: the item's own bytes, or decoded into `buf` when packed.
  std::string_view Key(const uint8_t* it, char (&buf)[kMaxKeyLength]) const {
    const std::string_view stored = StoredKeyBytes(it);
    if (!KeyPacked(it)) return stored;
    const size_t n = UnpackKey(reinterpret_cast<const uint8_t*>(stored.data()), stored.size(), buf);
    return {buf, n};
  }

  size_t ValueLength(const uint8_t* it) const {
    if (!lean_) return LoadField<uint32_t>(it + nbytes_off_) - kStockValueSuffix;
    size_t n;
    GetVarint(it + header_, &n);
    return n;
  }
  uint8_t* ValuePtr(uint8_t* it) const { return it + ValueOffset(it); }
  const uint8_t* ValuePtr(const uint8_t* it) const { return it + ValueOffset(it); }
  std::string_view Value(const uint8_t* it) const {
    return {reinterpret_cast<const char*>(ValuePtr(it)), ValueLength(it)};
  }
  // Bytes this item occupies (memcached's item size; `stats` "bytes").
  size_t TotalSize(const uint8_t* it) const {
    return ValueOffset(it) + ValueLength(it) + (lean_ ? 0 : kStockValueSuffix);
  }

  // LEB128: 7 bits per byte, low first, high bit = more.
  static size_t VarintSize(size_t v) {
    size_t n = 1;
    while (v >= 0x80) {
      v >>= 7;
      ++n;
    }
    return n;
  }
  static size_t PutVarint(uint8_t* p, size_t v) {
    size_t n = 0;
    while (v >= 0x80) {
      p[n++] = static_cast<uint8_t>(v | 0x80);
      v >>= 7;
    }
    p[n++] = static_cast<uint8_t>(v);
    return n;
  }
  static size_t GetVarint(const uint8_t* p, size_t* v) {
    size_t r = 0, n = 0;
    int shift = 0;
    for (;;) {
      const uint8_t b = p[n++];
      r |= static_cast<size_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
      shift += 7;
    }
    *v = r;
    return n;
  }

 private:
  // Lean: offset of the first optional field (CAS, or exptime, ...).
  size_t OptionalOffset(const uint8_t* it) const {
    size_t n;
    return header_ + GetVarint(it + header_, &n);
  }
  size_t CasOffset(const uint8_t* it) const { return lean_ ? OptionalOffset(it) : header_; }
  size_t KeyOffset(const uint8_t* it) const {
    if (!lean_) return header_ + (cas_ ? kCasSize : 0);
    const uint8_t f = it[flags_off_];
    return OptionalOffset(it) + (cas_ ? kCasSize : 0) + ((f & kExptime) ? kExptimeSize : 0) +
           ((f & kClientFlags) ? kClientFlagsSize : 0);
  }
  size_t ValueOffset(const uint8_t* it) const {
    if (!lean_) {
      return KeyOffset(it) + KeyLength(it) + 1 +
             ((Flags(it) & kClientFlags) != 0 ? kClientFlagsSize : 0);
    }
    return KeyOffset(it) + KeyLength(it);
  }

  RefCodec refs_;
  bool cas_;
  bool pack_keys_;
  bool lean_;
  size_t w_;
  size_t header_ = 0;
  size_t flags_off_ = 0, nkey_off_ = 0;
  size_t time_off_ = 0, exptime_off_ = 0, nbytes_off_ = 0, refcount_off_ = 0;  // stock only
  size_t class_off_ = 0;                                                       // stock only
};

}  // namespace tinycached::compact

#endif  // TINYCACHED_COMPACT_ITEM_LAYOUT_H_
