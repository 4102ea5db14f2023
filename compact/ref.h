// compact/ref.h — how one item refers to another (LRU links, hash chains).
//
// Room: compact/. The codec only turns addresses into stored bytes and back;
// the allocator in core/ owns the arena it describes and is the only code
// that decides where items live.
//
// Two kinds of reference, chosen at start-up:
//
//   pointer (8 bytes) — the item's address, as memcached stores it; null = 0.
//
//   page reference (page_bytes + 2 bytes) — where the item sits in the arena:
//
//        byte 0      1      2 ...  2+page_bytes-1          (little endian)
//       +------+------+------------------------+
//       | chunk index |      page index        |
//       |   (u16)     | (page_bytes x 8 bits)  |
//       +------+------+------------------------+
//       address = arena.base + (page << arena.page_shift)
//                            + chunk * arena.chunk_size[page]
//       null    = every bit set (the allocator never hands out the
//                 all-ones page index, so no item encodes to it)
//
//   "ref32" is a page reference with a 2-byte page index (65535 pages:
//   64 GB of 1 MiB pages); "page16" sizes the page index to the memory limit,
//   1 byte (3-byte references) for up to 254 pages + large items.
//   A 1 MiB page holds at most 65536 chunks, so a page-referenced class
//   never has chunks smaller than page_size / 65536 (16 bytes).
#ifndef TINYCACHED_COMPACT_REF_H_
#define TINYCACHED_COMPACT_REF_H_

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tinycached::compact {

static_assert(std::endian::native == std::endian::little, "references are stored little endian");

// The memory every item lives in: page i starts at base + (i << page_shift).
// chunk_size[i] is the chunk size of the class page i was given to (a large
// item's page has one chunk). Owned by core/'s PagePool.
struct Arena {
  uint8_t* base = nullptr;
  int page_shift = 20;
  const uint32_t* chunk_size = nullptr;
};

inline constexpr size_t kChunkIndexBits = 16;
inline constexpr size_t kMaxChunksPerPage = size_t{1} << kChunkIndexBits;

class RefCodec {
 public:
  // 8-byte pointers.
  static constexpr RefCodec Pointer() { return RefCodec(0, nullptr); }
  // (page_bytes + 2)-byte page references into `arena` (1 <= page_bytes <= 4).
  static constexpr RefCodec Page(int page_bytes, const Arena* arena) {
    return RefCodec(page_bytes, arena);
  }

  bool is_pointer() const { return page_bytes_ == 0; }
  int page_bytes() const { return page_bytes_; }
  size_t width() const { return width_; }
  // Pages a reference can name: the all-ones index is kept for null.
  uint64_t max_pages() const {
    return is_pointer() ? UINT64_MAX : (uint64_t{1} << (8 * page_bytes_)) - 1;
  }

  uint8_t* Load(const uint8_t* src) const {
    if (is_pointer()) {
      uint8_t* p;
      std::memcpy(&p, src, sizeof(p));
      return p;
    }
    uint64_t v = LoadBytes(src);
    if (v == null_) return nullptr;
    const uint64_t page = v >> kChunkIndexBits;
    const uint64_t chunk = v & (kMaxChunksPerPage - 1);
    return arena_->base + (page << arena_->page_shift) + chunk * arena_->chunk_size[page];
  }

  void Store(uint8_t* dst, const uint8_t* p) const {
    if (is_pointer()) {
      std::memcpy(dst, &p, sizeof(p));
      return;
    }
    StoreBytes(dst, p == nullptr ? null_ : Encode(p));
  }

  // The page reference of `p` (not null), as an integer.
  uint64_t Encode(const uint8_t* p) const {
    const size_t off = static_cast<size_t>(p - arena_->base);
    const uint64_t page = off >> arena_->page_shift;
    const size_t in_page = off & ((size_t{1} << arena_->page_shift) - 1);
    const uint32_t size = arena_->chunk_size[page];
    assert(in_page % size == 0 && in_page / size < kMaxChunksPerPage);
    return (page << kChunkIndexBits) | (in_page / size);
  }

 private:
  constexpr RefCodec(int page_bytes, const Arena* arena)
      : page_bytes_(page_bytes),
        width_(page_bytes == 0 ? sizeof(void*) : static_cast<size_t>(page_bytes) + 2),
        null_(page_bytes == 0 ? 0 : (uint64_t{1} << (8 * (page_bytes + 2))) - 1),
        arena_(arena) {}

  uint64_t LoadBytes(const uint8_t* src) const {
    switch (width_) {
      case 3: {
        uint16_t lo;
        std::memcpy(&lo, src, 2);
        return lo | (uint64_t{src[2]} << 16);
      }
      case 4: {
        uint32_t v;
        std::memcpy(&v, src, 4);
        return v;
      }
      default: {
        uint64_t v = 0;
        std::memcpy(&v, src, width_);
        return v;
      }
    }
  }
  void StoreBytes(uint8_t* dst, uint64_t v) const {
    switch (width_) {
      case 3: {
        const auto lo = static_cast<uint16_t>(v);
        std::memcpy(dst, &lo, 2);
        dst[2] = static_cast<uint8_t>(v >> 16);
        return;
      }
      case 4: {
        const auto v32 = static_cast<uint32_t>(v);
        std::memcpy(dst, &v32, 4);
        return;
      }
      default:
        std::memcpy(dst, &v, width_);
    }
  }

  int page_bytes_;
  size_t width_;
  uint64_t null_;
  const Arena* arena_;
};

}  // namespace tinycached::compact

#endif  // TINYCACHED_COMPACT_REF_H_
