#include "core/slabs.h"

#include <sys/mman.h>

#include <algorithm>
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
    return absl::InvalidArgumentError(absl::StrFormat(
        "slab_chunk_max (bytes: %d) cannot be larger than -I (item_size_max %d)", chunk_max,
        o.item_size_max));
  }
  if (o.item_size_max % chunk_max != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "-I (item_size_max: %d) must be evenly divisible by slab_chunk_max (bytes: %d)",
        o.item_size_max, chunk_max));
  }
  if (chunk_max > o.page_size || o.page_size % chunk_max != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "slab_chunk_max (bytes: %d) must divide evenly into %d (slab_page_size)", chunk_max,
        o.page_size));
  }
  if (o.max_classes < 2) return absl::InvalidArgumentError("need at least two slab classes");

  SlabClassTable t;
  t.page_size_ = o.page_size;
  t.item_size_max_ = o.item_size_max;
  t.sizes_.push_back(0);
  t.per_page_.push_back(0);
  double size = static_cast<double>(o.header_size + o.min_space);
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

uint8_t* PagePool::NewPage(bool first_of_class) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (!first_of_class && used + page_size_ > limit_) return nullptr;
  } while (!used_.compare_exchange_weak(used, used + page_size_, std::memory_order_relaxed));
  // Pages come straight from the kernel: page aligned, no allocator headers
  // or fragments, so RSS grows by exactly the pages touched.
  void* mem = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  auto* page = mem == MAP_FAILED ? nullptr : static_cast<uint8_t*>(mem);
  if (page == nullptr) {
    used_.fetch_sub(page_size_, std::memory_order_relaxed);
    return nullptr;
  }
  absl::MutexLock lock(&mu_);
  pages_.push_back(page);
  return page;
}

bool PagePool::Charge(size_t n, bool first_of_class) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (!(first_of_class && n <= page_size_) && used + n > limit_) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

PagePool::~PagePool() {
  for (uint8_t* p : pages_) munmap(p, page_size_);
}

size_t PagePool::pages() const {
  absl::MutexLock lock(&mu_);
  return pages_.size();
}

}  // namespace tinycached::core
