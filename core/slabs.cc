#include "core/slabs.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

#include "absl/strings/str_format.h"

namespace tinycached::core {

absl::StatusOr<SlabClassTable> SlabClassTable::Build(const SlabOptions& o) {
  if (o.factor <= 1.0) return absl::InvalidArgumentError("Factor must be greater than 1");
  if (o.min_space == 0) return absl::InvalidArgumentError("Chunk size must be greater than 0");
  if (o.align == 0 || (o.align & (o.align - 1)) != 0) {
    return absl::InvalidArgumentError("chunk alignment must be a power of two");
  }
  const size_t chunk_max = o.chunk_max != 0 ? o.chunk_max : o.page_size / 2;
  if (chunk_max > o.item_size_max) {
    return absl::InvalidArgumentError(
        absl::StrFormat("slab_chunk_max (bytes: %d) cannot be larger than -I (item_size_max %d)",
                        chunk_max, o.item_size_max));
  }
  if (o.item_size_max % chunk_max != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "-I (item_size_max: %d) must be evenly divisible by slab_chunk_max (bytes: %d)",
        o.item_size_max, chunk_max));
  }
  if (chunk_max > o.page_size || o.page_size % chunk_max != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("slab_chunk_max (bytes: %d) must divide evenly into %d (slab_page_size)",
                        chunk_max, o.page_size));
  }
  if (o.max_classes < 2) return absl::InvalidArgumentError("need at least two slab classes");
  if (o.page_size == 0 || (o.page_size & (o.page_size - 1)) != 0) {
    return absl::InvalidArgumentError("slab page size must be a power of two");
  }

  SlabClassTable t;
  t.page_size_ = o.page_size;
  t.item_size_max_ = o.item_size_max;
  t.sizes_.push_back(0);
  t.per_page_.push_back(0);
  double size = static_cast<double>(std::max(o.header_size + o.min_space, o.min_chunk));
  while (static_cast<int>(t.sizes_.size()) < o.max_classes) {
    if (size >= static_cast<double>(chunk_max) / o.factor) break;
    size_t s = static_cast<size_t>(size);
    if (s % o.align != 0) s += o.align - s % o.align;
    t.sizes_.push_back(s);
    t.per_page_.push_back(o.page_size / s);
    // memcached grows the aligned size, truncating to an integer each step.
    // Where that truncation gives the same size back (tiny factors), memcached
    // repeats the class; we step to the next aligned size instead, so every
    // class is distinct. Tables from ordinary factors are unchanged.
    const size_t next = static_cast<size_t>(static_cast<double>(s) * o.factor);
    size = static_cast<double>(next > s ? next : s + 1);
  }
  t.sizes_.push_back(chunk_max);
  t.per_page_.push_back(o.page_size / chunk_max);
  return t;
}

int SlabClassTable::ClassFor(size_t ntotal) const {
  if (ntotal == 0 || ntotal > item_size_max_) return 0;
  if (ntotal > chunk_max()) return count();
  auto it = std::lower_bound(sizes_.begin() + 1, sizes_.end(), ntotal);
  return static_cast<int>(it - sizes_.begin());
}

PagePool::PagePool(size_t limit_bytes, size_t page_size, size_t max_slots)
    : limit_(limit_bytes),
      page_size_(page_size),
      max_slots_(max_slots),
      chunk_size_(new uint32_t[max_slots]()),
      slot_class_(new uint8_t[max_slots]()),
      slot_used_(max_slots, false) {
  // Address space only: PROT_NONE and MAP_NORESERVE cost no memory and no
  // overcommit charge until a slot is committed.
  void* mem = mmap(nullptr, max_slots * page_size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  arena_.base = static_cast<uint8_t*>(mem);
  arena_.page_shift = std::countr_zero(page_size);
  arena_.chunk_size = chunk_size_.get();
}

PagePool::~PagePool() { munmap(arena_.base, max_slots_ * page_size_); }

bool PagePool::Charge(size_t n, bool first_of_class) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (!(first_of_class && n <= page_size_) && used + n > limit()) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

uint8_t* PagePool::TakeSlots(size_t n, size_t bytes, uint8_t class_id, uint32_t chunk_size) {
  size_t first = 0;
  {
    absl::MutexLock lock(&mu_);
    size_t run = 0;
    for (; first + run < max_slots_ && run < n;) {
      if (slot_used_[first + run]) {
        first += run + 1;
        run = 0;
      } else {
        ++run;
      }
    }
    if (run < n) return nullptr;
    for (size_t i = first; i < first + n; ++i) slot_used_[i] = true;
    chunk_size_[first] = chunk_size;
    slot_class_[first] = class_id;
  }
  // Pages come straight from the kernel: no allocator headers or fragments,
  // so RSS grows by exactly the memory touched.
  uint8_t* p = arena_.base + first * page_size_;
  if (mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) {
    absl::MutexLock lock(&mu_);
    for (size_t i = first; i < first + n; ++i) slot_used_[i] = false;
    return nullptr;
  }
  return p;
}

uint8_t* PagePool::NewPage(bool first_of_class, uint8_t class_id, uint32_t chunk_size) {
  if (!Charge(page_size_, first_of_class)) return nullptr;
  uint8_t* page = TakeSlots(1, page_size_, class_id, chunk_size);
  if (page == nullptr) {
    Refund(page_size_);
    return nullptr;
  }
  absl::MutexLock lock(&mu_);
  ++pages_;
  return page;
}

uint8_t* PagePool::AllocLarge(size_t n, bool first_of_class, uint8_t class_id) {
  if (!Charge(n, first_of_class)) return nullptr;
  const size_t slots = (n + page_size_ - 1) / page_size_;
  uint8_t* block = TakeSlots(slots, n, class_id, static_cast<uint32_t>(page_size_));
  if (block == nullptr) Refund(n);
  return block;
}

void PagePool::FreeLarge(uint8_t* block, size_t n) {
  const size_t slots = (n + page_size_ - 1) / page_size_;
  // Give the memory back and make stray accesses fault.
  madvise(block, slots * page_size_, MADV_DONTNEED);
  mprotect(block, slots * page_size_, PROT_NONE);
  Refund(n);
  absl::MutexLock lock(&mu_);
  const size_t first = SlotOf(block);
  for (size_t i = first; i < first + slots; ++i) slot_used_[i] = false;
}

void PagePool::RecutPage(uint8_t* page, uint8_t class_id, uint32_t chunk_size) {
  absl::MutexLock lock(&mu_);
  const size_t slot = SlotOf(page);
  chunk_size_[slot] = chunk_size;
  slot_class_[slot] = class_id;
}

void PagePool::FreePage(uint8_t* page) {
  madvise(page, page_size_, MADV_DONTNEED);
  mprotect(page, page_size_, PROT_NONE);
  Refund(page_size_);
  absl::MutexLock lock(&mu_);
  slot_used_[SlotOf(page)] = false;
  --pages_;
}

size_t PagePool::pages() const {
  absl::MutexLock lock(&mu_);
  return pages_;
}

}  // namespace tinycached::core
