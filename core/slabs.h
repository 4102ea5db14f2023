// core/slabs.h — slab class table and the page pool.
//
// Memory is cut into pages (1 MiB by default). A page belongs to one slab
// class for life and is cut into equal chunks of that class's size. Classes
// are derived from memcached's knobs:
//   size(1)   = align_up(header + min_space)            (-n, default 48)
//   size(i+1) = align_up(size(i) * factor)              (-f, default 1.25)
// until size >= chunk_max / factor (or the class limit is reached); the last
// class is chunk_max itself. Items larger than chunk_max (up to -I) are
// "large": each gets its own run of arena slots, charged to the same limit.
//
// Thread safety: SlabClassTable is immutable after Build(). PagePool is
// thread-safe; it hands out pages and large blocks, it keeps no free chunks.
#ifndef TINYCACHED_CORE_SLABS_H_
#define TINYCACHED_CORE_SLABS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "compact/ref.h"

namespace tinycached::core {

struct SlabOptions {
  size_t page_size = 1 << 20;
  size_t header_size = 48;  // bytes the layout's fixed header takes (memcached: sizeof(item))
  size_t min_space = 48;    // -n: minimum key+value+flags space of the smallest class
  double factor = 1.25;     // -f
  size_t align = 8;         // chunk sizes are multiples of this
  size_t chunk_max = 0;     // largest chunk; 0 = page_size / 2 (slab_chunk_max)
  size_t item_size_max = 1 << 20;  // -I
  int max_classes = 63;            // memcached 1.6: MAX_NUMBER_OF_SLAB_CLASSES - 1
  size_t min_chunk = 0;            // no chunk smaller (page references: page_size / 65536)
};

class SlabClassTable {
 public:
  // Class ids run 1..count(); 0 means "no class".
  static absl::StatusOr<SlabClassTable> Build(const SlabOptions& options);

  int count() const { return static_cast<int>(sizes_.size()) - 1; }
  size_t ChunkSize(int id) const { return sizes_[id]; }
  size_t PerPage(int id) const { return per_page_[id]; }
  size_t page_size() const { return page_size_; }
  size_t chunk_max() const { return sizes_.back(); }

  // Smallest class whose chunk holds `ntotal` bytes; the largest class for
  // large items (ntotal > chunk_max); 0 when ntotal exceeds item_size_max.
  int ClassFor(size_t ntotal) const;
  bool IsLarge(size_t ntotal) const { return ntotal > chunk_max(); }

 private:
  std::vector<size_t> sizes_;     // [0] unused
  std::vector<size_t> per_page_;  // [0] unused
  size_t page_size_ = 0;
  size_t item_size_max_ = 0;
};

// The arena every item lives in, and the count against the limit (-m).
//
// One contiguous range of virtual memory is reserved up front, cut into
// page-sized slots; slot i is at base + i * page_size. A slot is committed
// when handed out, either as a slab page (cut into one class's chunks) or
// to one large item (a run of slots: one chunk, its own size). Because every
// item is inside the arena, its slot index is (address - base) >> page_shift:
// that gives its class (no class byte in the item) and makes page references
// (compact/ref.h) possible. Only committed memory counts toward RSS.
//
// Slots are a budget beside bytes: `max_slots` bounds the page index a
// reference must hold. A page moves between classes only when it holds no
// item (core/page_mover.cc empties it first): it is either re-cut for its
// new class (RecutPage) or given back to the kernel and the budget
// (FreePage). A large item's slots are returned when it is freed.
class PagePool {
 public:
  // `max_slots` (at least limit / page_size + 1) is how many slots the arena
  // reserves. `page_size` must be a power of two.
  PagePool(size_t limit_bytes, size_t page_size, size_t max_slots);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // A new page for `class_id` with chunks of `chunk_size`, or nullptr when
  // the limit (or the slot budget) is reached. As memcached, a class that
  // owns no page yet always gets its first one (`first_of_class`), so every
  // size stays storable even with a tiny limit.
  uint8_t* NewPage(bool first_of_class, uint8_t class_id, uint32_t chunk_size);

  // A large item's block of `n` bytes (a run of slots), or nullptr. Like a
  // first page, a class holding nothing yet may exceed the limit by up to a
  // page.
  uint8_t* AllocLarge(size_t n, bool first_of_class, uint8_t class_id);
  void FreeLarge(uint8_t* block, size_t n);

  // An empty slab page changes hands. REQUIRES: no reference to any chunk of
  // `page` is stored anywhere (index, LRU, free list). RecutPage keeps its
  // memory and charge; FreePage returns both.
  void RecutPage(uint8_t* page, uint8_t class_id, uint32_t chunk_size);
  void FreePage(uint8_t* page);

  uint8_t ClassOf(const uint8_t* p) const { return slot_class_[SlotOf(p)]; }
  size_t SlotOf(const uint8_t* p) const {
    return static_cast<size_t>(p - arena_.base) >> arena_.page_shift;
  }
  uint8_t* SlotBase(size_t slot) const { return arena_.base + (slot << arena_.page_shift); }
  // Bytes the limit has left (0 when a first page went past it).
  size_t available() const {
    const size_t u = used();
    const size_t l = limit();
    return u < l ? l - u : 0;
  }
  const compact::Arena& arena() const { return arena_; }

  // Bytes kept elsewhere but paid from the limit (the tiny engine's index);
  // may go past it, and then no page is handed out until it is back under.
  void ChargeOver(size_t n) { used_.fetch_add(n, std::memory_order_relaxed); }
  void Uncharge(size_t n) { Refund(n); }

  size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  // cache_memlimit: a new limit for what is handed out from now on. Lowering
  // frees nothing by itself (as memcached): pages stay with their classes
  // until moved or given back. Raising cannot reach past the arena's slots.
  void SetLimit(size_t bytes) { limit_.store(bytes, std::memory_order_relaxed); }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t pages() const;  // slab pages handed out
  size_t max_slots() const { return max_slots_; }

 private:
  bool Charge(size_t n, bool first_of_class);
  void Refund(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  // A run of `n` free slots committed for `bytes`, or nullptr.
  uint8_t* TakeSlots(size_t n, size_t bytes, uint8_t class_id, uint32_t chunk_size);

  std::atomic<size_t> limit_;
  const size_t page_size_;
  const size_t max_slots_;
  compact::Arena arena_;
  std::unique_ptr<uint32_t[]> chunk_size_;  // per slot; read by compact::RefCodec
  std::unique_ptr<uint8_t[]> slot_class_;   // per slot
  std::atomic<size_t> used_{0};             // pages and large items, bytes
  mutable absl::Mutex mu_;
  std::vector<bool> slot_used_ ABSL_GUARDED_BY(mu_);
  size_t pages_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_SLABS_H_
