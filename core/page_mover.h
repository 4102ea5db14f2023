// core/page_mover.h — whole pages that move between an ItemStore's slab
// classes: memcached's slab reassignment (`slabs reassign`), the automover,
// and room made for a store that found no memory in its own class.
//
// Room: core/, a part of ItemStore. The mover owns its thread, its request
// queue and its counters; the pages, classes and items it moves are the
// store's (it is the store's friend and takes the store's locks in the
// store's order, core/item_store.h). Nothing outside ItemStore uses it.
//
// Locks: move_mu_ (one page move at a time) is taken first, never while
// holding a stripe or class lock; mover_mu_ guards only the queue.
#ifndef TINYCACHED_CORE_PAGE_MOVER_H_
#define TINYCACHED_CORE_PAGE_MOVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/engine.h"

namespace tinycached::core {

class ItemStore;

class PageMover {
 public:
  // `store` owns the mover and outlives it.
  PageMover(ItemStore& store, const StoreOptions& options);
  ~PageMover() { Stop(); }
  PageMover(const PageMover&) = delete;
  PageMover& operator=(const PageMover&) = delete;

  // The mover thread: queued reassignments and the automover's steps.
  void Start();
  void Stop();

  // Frees memory for a store of `ntotal` bytes in class `cls` by moving one
  // or more pages (to that class, or back to the budget for a large item).
  // A page holding `keep` (may be null) is not emptied for it. Call holding
  // no lock.
  void MakeRoom(int cls, size_t ntotal, const uint8_t* keep = nullptr);
  // Frees the page whose newest item is the oldest, back to the budget.
  // False if there is none.
  bool ReleaseStalestPage();
  // Called by MakeRoom() when no page of the store can be freed: frees a
  // page's worth of budget elsewhere; false if it cannot. Set before Start().
  void SetRoomDonor(std::function<bool()> donor) { room_donor_ = std::move(donor); }

  // `slabs reassign <src> <dst>` (see ItemStore::Reassign). Without Start()
  // the move runs before returning.
  ReassignResult Reassign(int src, int dst);
  void SetAutomove(Automove level) { automove_.store(level, std::memory_order_relaxed); }
  Automove automove() const { return automove_.load(std::memory_order_relaxed); }
  void SetAutomoveRatio(double r) { automove_ratio_.store(r, std::memory_order_relaxed); }
  double automove_ratio() const { return automove_ratio_.load(std::memory_order_relaxed); }
  // One automover step at `now_ms` (a steady clock): records tail ages once a
  // second and moves at most one page. True if it moved one.
  bool AutomoveStep(uint64_t now_ms);
  // Estimated age of class `cls`'s LRU tail, in ms (see AgeRing).
  uint64_t TailAgeMs(int cls, uint64_t now_ms) const;
  MoverStats stats() const;

  // A page was charged to the budget: one fewer in memcached's terms of a
  // global pool, if it had any.
  void TakeFromGlobalPool();
  // A class that owns nothing gets its first page by a page move (within
  // -m) rather than past the limit, as memcached grants it. Off with -M or
  // no_slab_reassign, where memcached's grant is the only way.
  bool room_by_moving() const { return room_by_moving_; }

 private:
  // Empties `page` of class `src` and gives it to `dst` (0: the budget).
  bool MovePage(int src, uint8_t* page, int dst) ABSL_EXCLUSIVE_LOCKS_REQUIRED(move_mu_);
  // `slabs reassign` once validated: src 0 takes a page from the budget.
  void RunReassign(int src, int dst) ABSL_EXCLUSIVE_LOCKS_REQUIRED(move_mu_);
  // The page of `src` with the fewest live chunks (spares first), or null.
  uint8_t* PickPage(int src) const;
  // The class, other than `except`, whose tail is oldest among those with
  // at least `min_pages` pages; 0 if none.
  int OldestClass(int except, size_t min_pages, uint64_t now_ms) const;
  // For a store waiting for room: the page, of any class but `except`,
  // whose last allocation is the oldest (so is every item in it); its class
  // in *cls; never the page holding `keep`. Null if there is none.
  uint8_t* StalestPage(int except, int* cls, const uint8_t* keep = nullptr) const;
  // The allocation sequence of the oldest large item near the LRU tail of the
  // largest class, or UINT64_MAX if there is none.
  uint64_t OldestLargeSeq() const;
  // A page's allocation sequence for StalestPage (0 when it holds nothing).
  uint64_t PageSeq(int cls, const uint8_t* page) const;
  void Loop();
  static uint64_t SteadyMs();

  ItemStore& s_;
  const bool room_by_moving_;
  absl::Mutex move_mu_;   // one page move at a time
  absl::Mutex mover_mu_;  // the mover thread's queue and stop flag
  struct ReassignRequest {
    int src, dst;
  };
  std::optional<ReassignRequest> request_ ABSL_GUARDED_BY(mover_mu_);
  bool stop_ ABSL_GUARDED_BY(mover_mu_) = false;
  std::thread thread_;
  std::atomic<Automove> automove_;
  std::atomic<double> automove_ratio_;
  uint64_t last_age_sample_ms_ = 0;  // mover thread only (or a test)
  std::atomic<bool> running_{false};
  // memcached's global page pool: pages the mover gave back to the budget
  // and no class has taken since (`slabs reassign 0 <dst>` takes from it).
  std::atomic<size_t> global_pool_pages_{0};
  std::atomic<uint64_t> slabs_moved_{0}, rescues_{0}, evictions_nomem_{0}, busy_items_{0};
  std::function<bool()> room_donor_;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_PAGE_MOVER_H_
