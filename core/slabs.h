// core/slabs.h — slab class table and the page pool.
//
// Memory is cut into pages (1 MiB by default). A page belongs to one slab
// class for life and is cut into equal chunks of that class's size. Classes
// are derived from memcached's knobs:
//   size(1)   = align_up(header + min_space)            (-n, default 48)
//   size(i+1) = align_up(size(i) * factor)              (-f, default 1.25)
// until size >= chunk_max / factor (or the class limit is reached); the last
// class is chunk_max itself. Items larger than chunk_max (up to -I) are
// "large": allocated one by one outside the pages, charged to the same limit.
//
// Thread safety: SlabClassTable is immutable after Build(). PagePool is
// thread-safe (atomics); it only counts and allocates, it keeps no lists.
#ifndef TINYCACHED_CORE_SLABS_H_
#define TINYCACHED_CORE_SLABS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tinycached::core {

struct SlabOptions {
  size_t page_size = 1 << 20;
  size_t header_size = 48;   // bytes the layout's fixed header takes (memcached: sizeof(item))
  size_t min_space = 48;     // -n: minimum key+value+flags space of the smallest class
  double factor = 1.25;      // -f
  size_t align = 8;          // chunk sizes are multiples of this
  size_t chunk_max = 0;      // largest chunk; 0 = page_size / 2 (slab_chunk_max)
  size_t item_size_max = 1 << 20;  // -I
  int max_classes = 63;      // memcached 1.6: MAX_NUMBER_OF_SLAB_CLASSES - 1
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

// Counts memory against the limit (-m) and hands out page-sized blocks.
class PagePool {
 public:
  PagePool(size_t limit_bytes, size_t page_size) : limit_(limit_bytes), page_size_(page_size) {}
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // A new page, or nullptr when the limit is reached. As memcached, a class
  // that owns no page yet always gets its first one (`first_of_class`), so
  // every size stays storable even with a tiny limit.
  uint8_t* NewPage(bool first_of_class);

  // Large items: charge/refund `n` bytes. Charge fails beyond the limit,
  // except, like a first page, up to a page for a class holding nothing yet.
  bool Charge(size_t n, bool first_of_class = false);
  void Refund(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

  size_t limit() const { return limit_; }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t pages() const;

 private:
  const size_t limit_;
  const size_t page_size_;
  std::atomic<size_t> used_{0};  // pages and large items, bytes
  mutable absl::Mutex mu_;
  std::vector<uint8_t*> pages_ ABSL_GUARDED_BY(mu_);  // freed at destruction
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_SLABS_H_
