// core/slab_class.h — one slab class's state, shared by the store's two
// halves: item_store.cc (allocation, LRU, eviction) and page_mover.cc (page
// reassignment and automove). Internal to core/; nothing outside includes it.
//
// Everything here is guarded by the class's own `mu` (lock order: after the
// item stripe locks, before the PagePool). A page's PageState is guarded by
// the mu of the class that owns the page.
#ifndef TINYCACHED_CORE_SLAB_CLASS_H_
#define TINYCACHED_CORE_SLAB_CLASS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "compact/item_layout.h"
#include "core/clock.h"

namespace tinycached::core {

// Per arena slot (ItemStore::page_state_), for slab pages.
struct PageState {
  uint32_t live = 0;      // chunks handed out and not yet freed
  uint32_t inflight = 0;  // handed out by Alloc() and not yet linked
  uint32_t zombies = 0;   // freed while pinned (ItemStore::PinVisited), not yet unpinned
  // ItemStore::NextAllocSeq() when a chunk of the page was last handed out:
  // every item in it is older than that.
  uint64_t last_alloc = 0;
};

// The age of a class's LRU tail, without a time in any item.
//
// Every link at the LRU head (a new item, or an active item given a second
// chance) counts in `links`. The tail is the oldest link still in the list,
// so it was linked about `items` links ago, at link number links - items.
// Once a second the mover records (time, links); the tail's age is now minus
// the time of the newest record made at or before that link number. Deletes
// from the middle of the list make the estimate young, never old; ages past
// the recorded history read as the history's span.
class AgeRing {
 public:
  static constexpr size_t kSamples = 64;

  void Record(uint64_t now_ms, uint64_t links) {
    samples_[next_ % kSamples] = {now_ms, links};
    ++next_;
  }
  // Milliseconds since the tail was linked, looking back at most `window_ms`.
  uint64_t TailAgeMs(uint64_t now_ms, uint64_t links, size_t items, uint64_t window_ms) const {
    if (items == 0 || next_ == 0) return 0;
    const uint64_t target = links - items;
    const size_t n = next_ < kSamples ? next_ : kSamples;
    uint64_t oldest_ms = now_ms;
    for (size_t i = 0; i < n; ++i) {  // newest first
      const Sample& s = samples_[(next_ - 1 - i) % kSamples];
      if (now_ms - s.time_ms > window_ms) break;
      oldest_ms = s.time_ms;
      if (s.links <= target) return now_ms - s.time_ms;
    }
    return now_ms - oldest_ms;
  }

 private:
  struct Sample {
    uint64_t time_ms = 0;
    uint64_t links = 0;
  };
  std::array<Sample, kSamples> samples_{};
  size_t next_ = 0;
};

struct SlabClass {
  using Layout = compact::ItemLayout;

  mutable absl::Mutex mu;
  size_t chunk_size = 0;
  size_t per_page = 0;
  // Allocation: the free list, then the cursor's page, then spare pages.
  uint8_t* free_list ABSL_GUARDED_BY(mu) = nullptr;  // chained through the LRU next field
  size_t free_count ABSL_GUARDED_BY(mu) = 0;
  uint8_t* cursor ABSL_GUARDED_BY(mu) = nullptr;  // next never-used chunk of the newest page
  size_t cursor_left ABSL_GUARDED_BY(mu) = 0;
  std::vector<uint8_t*> spare ABSL_GUARDED_BY(mu);      // pages given to this class, not cut yet
  std::vector<uint8_t*> page_list ABSL_GUARDED_BY(mu);  // every page it owns, spares included
  size_t pages ABSL_GUARDED_BY(mu) = 0;                 // page_list.size()
  size_t large_bytes ABSL_GUARDED_BY(mu) = 0;           // large items: their own arena slots
  // The page being emptied by the mover (page_mover.cc), or null. Its chunks
  // are never handed out; a chunk of it that is freed is marked in
  // drain_free instead of going to the free list.
  uint8_t* draining ABSL_GUARDED_BY(mu) = nullptr;
  std::vector<bool> drain_free ABSL_GUARDED_BY(mu);
  // LRU: head is the most recently used; items link head -> tail via next.
  uint8_t* head ABSL_GUARDED_BY(mu) = nullptr;
  uint8_t* tail ABSL_GUARDED_BY(mu) = nullptr;
  uint64_t links ABSL_GUARDED_BY(mu) = 0;  // links at the head, ever (AgeRing)
  AgeRing ages ABSL_GUARDED_BY(mu);
  // Counters.
  size_t items ABSL_GUARDED_BY(mu) = 0;
  uint64_t bytes ABSL_GUARDED_BY(mu) = 0;
  uint64_t total_items ABSL_GUARDED_BY(mu) = 0;
  uint64_t evicted ABSL_GUARDED_BY(mu) = 0;
  uint64_t evicted_nonzero ABSL_GUARDED_BY(mu) = 0;
  uint64_t evicted_unfetched ABSL_GUARDED_BY(mu) = 0;
  RelTime evicted_time ABSL_GUARDED_BY(mu) = 0;
  uint64_t outofmemory ABSL_GUARDED_BY(mu) = 0;
  // Dead (expired or flushed) items freed for a store at the tail, and by
  // the crawler (memcached's reclaimed and crawler_reclaimed).
  uint64_t reclaimed ABSL_GUARDED_BY(mu) = 0;
  uint64_t crawler_reclaimed ABSL_GUARDED_BY(mu) = 0;
  uint64_t crawler_items_checked ABSL_GUARDED_BY(mu) = 0;  // items the crawler looked at
  uint64_t expired_unfetched ABSL_GUARDED_BY(mu) = 0;
  // What the automover saw of `evicted` + `outofmemory` last time.
  uint64_t pressure_seen ABSL_GUARDED_BY(mu) = 0;

  // Free chunks: the free list, the cursor's rest and the spare pages.
  size_t FreeChunks() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return free_count + cursor_left + spare.size() * per_page;
  }

  void LruLink(const Layout& l, uint8_t* it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    l.SetPrev(it, nullptr);
    l.SetNext(it, head);
    if (head != nullptr) l.SetPrev(head, it);
    head = it;
    if (tail == nullptr) tail = it;
    ++links;
  }
  void LruUnlink(const Layout& l, uint8_t* it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint8_t* prev = l.Prev(it);
    uint8_t* next = l.Next(it);
    if (prev != nullptr)
      l.SetNext(prev, next);
    else
      head = next;
    if (next != nullptr)
      l.SetPrev(next, prev);
    else
      tail = prev;
    l.SetPrev(it, nullptr);
    l.SetNext(it, nullptr);
  }
  // `to` (a copy of `from`'s bytes, links included) takes `from`'s place in
  // the LRU.
  void LruReplace(const Layout& l, uint8_t* from, uint8_t* to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint8_t* prev = l.Prev(from);
    uint8_t* next = l.Next(from);
    if (prev != nullptr)
      l.SetNext(prev, to);
    else
      head = to;
    if (next != nullptr)
      l.SetPrev(next, to);
    else
      tail = to;
  }
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_SLAB_CLASS_H_
