// core/page_mover.cc — pages that move between slab classes: memcached's
// slab reassignment and automove, for every item layout.
//
// Implementation details
//   Moving a page of class S to class D (or back to the budget, D = 0):
//   1. Under S's lock the page becomes S.draining: its chunks leave the free
//      list, the cursor leaves it (or it leaves S.spare, already empty), and
//      from then on Alloc() never hands out a chunk of it and a chunk of it
//      that is freed is marked in S.drain_free instead of going back.
//   2. Chunks Alloc() gave out before that and that are not linked yet
//      (PageState::inflight) are waited for: their writers hold only their
//      stripe lock and link within microseconds.
//   3. Every other chunk of the page now holds a linked item. Holding S's
//      lock, the mover TryLock()s each item's stripe (against the lock
//      order, so it never blocks; a busy stripe is retried on the next pass,
//      with S's lock let go in between) and either relocates the item to a
//      free chunk of S elsewhere — copy, then the index and the LRU point at
//      the copy — or, when S has none, evicts it. An item pinned by a
//      reply being sent is copied all the same; the original stays behind
//      as a zombie until its last Unpin(), and a page still holding zombies
//      after kZombieWaitMs is given back to S instead of moved.
//   4. The empty page leaves S; no reference into it is stored anywhere, so
//      the PagePool re-cuts it for D (it joins D.spare) or returns it.
//   Page references (compact/ref.h) stay valid throughout: a reference
//   names the item's chunk, and the chunk is only reused after the item has
//   moved out and every reference to it has been rewritten.
//
//   Who moves pages:
//   - `slabs reassign` (queued for the mover thread, as memcached's);
//   - the automover (AutomoveStep, every 10-100 ms on the mover thread):
//     a class holding 2.5 pages' worth of free chunks returns one page to
//     the budget; and a class that evicted since the last step, whose LRU
//     tail is young, takes a page from the class whose tail is oldest
//     (level 1: when young < ratio x old; level 2: whenever younger). The
//     net effect approximates one global LRU across classes;
//   - MakeRoom(), for a store that found no memory and nothing to evict in
//     its own class (or a large item that needs bytes, not a chunk): run on
//     the storing thread, holding no lock.
//   Ages come from AgeRing (core/slab_class.h): no item carries a time.
#include "core/page_mover.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/item_store.h"

namespace tinycached::core {
namespace {

// A class gives a page back once it holds this many pages' worth of free
// chunks (in halves: 5 = 2.5 pages; memcached's automove=1 uses 2.5 too).
constexpr size_t kSpareHalfPages = 5;
constexpr uint64_t kAgeSampleMs = 1000;
// How long a move waits for replies still being sent from its page.
constexpr uint64_t kZombieWaitMs = 200;

}  // namespace

PageMover::PageMover(ItemStore& store, const StoreOptions& options)
    : s_(store),
      room_by_moving_(options.evict && options.slab_reassign),
      automove_(options.automove),
      automove_ratio_(options.automove_ratio) {}

void PageMover::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void PageMover::Stop() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mover_mu_);
    stop_ = true;
  }
  thread_.join();
}

void PageMover::TakeFromGlobalPool() {
  size_t n = global_pool_pages_.load(std::memory_order_relaxed);
  while (n > 0 && !global_pool_pages_.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
  }
}

uint64_t PageMover::SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint8_t* PageMover::PickPage(int src) const {
  const SlabClass& c = s_.slab_classes_[src];
  absl::MutexLock lock(&c.mu);
  if (!c.spare.empty()) return c.spare.back();
  uint8_t* best = nullptr;
  uint32_t best_live = UINT32_MAX;
  for (uint8_t* page : c.page_list) {
    if (page == c.draining) continue;
    const PageState& ps = s_.page_state_[s_.pool_.SlotOf(page)];
    if (ps.zombies > 0) continue;  // held by replies being sent; it could not empty
    const uint32_t live = ps.live;
    if (live < best_live) {
      best = page;
      best_live = live;
    }
  }
  return best;
}

uint64_t PageMover::TailAgeMs(int cls, uint64_t now_ms) const {
  const SlabClass& c = s_.slab_classes_[cls];
  absl::MutexLock lock(&c.mu);
  // A class with pages and no items is all free memory: the best donor.
  if (c.items == 0) return c.pages > 0 ? UINT64_MAX : 0;
  const uint64_t window_ms = static_cast<uint64_t>(std::max(s_.options_.automove_window, 1)) * 1000;
  return c.ages.TailAgeMs(now_ms, c.links, c.items, window_ms);
}

uint8_t* PageMover::StalestPage(int except, int* cls, const uint8_t* keep) const {
  uint8_t* best = nullptr;
  uint64_t best_seq = UINT64_MAX;
  // Only compared: `keep` may have been freed since (no lock is held).
  const size_t keep_slot = keep == nullptr ? SIZE_MAX : s_.pool_.SlotOf(keep);
  for (int i = 1; i <= s_.classes_.count(); ++i) {
    if (i == except) continue;
    const SlabClass& c = s_.slab_classes_[i];
    absl::MutexLock lock(&c.mu);
    for (uint8_t* page : c.page_list) {
      const size_t slot = s_.pool_.SlotOf(page);
      const PageState& ps = s_.page_state_[slot];
      if (page == c.draining || ps.zombies > 0 || slot == keep_slot) continue;
      // A spare page holds nothing: it goes first.
      const uint64_t seq = ps.live == 0 ? 0 : ps.last_alloc;
      if (seq < best_seq) {
        best = page;
        best_seq = seq;
        *cls = i;
      }
    }
  }
  return best;
}

uint64_t PageMover::OldestLargeSeq() const {
  const SlabClass& c = s_.slab_classes_[s_.classes_.count()];
  absl::MutexLock lock(&c.mu);
  int searched = 0;
  for (const uint8_t* it = c.tail; it != nullptr && searched < 1000;
       it = s_.layout_.Prev(it), ++searched) {
    if ((s_.layout_.Flags(it) & compact::kLarge) != 0) {
      return s_.page_state_[s_.pool_.SlotOf(it)].last_alloc;
    }
  }
  return UINT64_MAX;
}

int PageMover::OldestClass(int except, size_t min_pages, uint64_t now_ms) const {
  int best = 0;
  uint64_t best_age = 0;
  for (int i = 1; i <= s_.classes_.count(); ++i) {
    if (i == except) continue;
    {
      const SlabClass& c = s_.slab_classes_[i];
      absl::MutexLock lock(&c.mu);
      if (c.pages < min_pages) continue;
    }
    const uint64_t age = TailAgeMs(i, now_ms);
    if (best == 0 || age > best_age) {
      best = i;
      best_age = age;
    }
  }
  return best;
}

bool PageMover::MovePage(int src, uint8_t* page, int dst) {
  if (page == nullptr) return false;
  SlabClass& c = s_.slab_classes_[src];
  const size_t slot = s_.pool_.SlotOf(page);
  running_.store(true, std::memory_order_relaxed);
  bool drained_already = false;
  {
    absl::MutexLock lock(&c.mu);
    auto spare = std::find(c.spare.begin(), c.spare.end(), page);
    if (spare != c.spare.end()) {
      c.spare.erase(spare);  // never cut: nothing in it
      drained_already = true;
    } else {
      c.draining = page;
      c.drain_free.assign(c.per_page, false);
      // Its free chunks leave the free list (kept in order otherwise).
      uint8_t* kept_head = nullptr;
      uint8_t* kept_tail = nullptr;
      for (uint8_t* it = c.free_list; it != nullptr;) {
        uint8_t* next = s_.layout_.Next(it);
        if (s_.pool_.SlotOf(it) == slot) {
          c.drain_free[s_.ChunkIndex(c, it)] = true;
          --c.free_count;
        } else {
          s_.layout_.SetNext(it, nullptr);
          if (kept_tail == nullptr) {
            kept_head = it;
          } else {
            s_.layout_.SetNext(kept_tail, it);
          }
          kept_tail = it;
        }
        it = next;
      }
      c.free_list = kept_head;
      // Chunks past the cursor were never used.
      if (c.cursor_left > 0 && s_.pool_.SlotOf(c.cursor) == slot) {
        for (size_t i = s_.ChunkIndex(c, c.cursor); i < c.per_page; ++i) c.drain_free[i] = true;
        c.cursor = nullptr;
        c.cursor_left = 0;
      }
    }
  }
  if (!drained_already) {
    // Chunks handed out before the page was closed get linked first.
    for (;;) {
      {
        absl::MutexLock lock(&c.mu);
        if (s_.page_state_[slot].inflight == 0) break;
      }
      std::this_thread::yield();
    }
    const uint64_t started_ms = SteadyMs();
    for (int pass = 0;; ++pass) {
      uint64_t busy = 0;
      uint64_t zombies = 0;
      {
        absl::MutexLock lock(&c.mu);
        for (size_t i = 0; i < c.per_page; ++i) {
          if (c.drain_free[i]) continue;
          uint8_t* it = page + i * c.chunk_size;
          const uint64_t hash = s_.index_.HashOfItem(it);
          const size_t stripe = HashIndex::StripeOf(hash);
          absl::Mutex& mu = s_.index_.StripeLockAt(stripe);
          if (!mu.TryLock()) {  // held by a thread that may wait for c.mu
            ++busy;
            continue;
          }
          ItemStore::PinEntry* pin = s_.FindPin(stripe, it);
          if (pin != nullptr && pin->zombie) {  // unlinked; a reply still reads it
            ++zombies;
            mu.Unlock();
            continue;
          }
          uint8_t* to = nullptr;
          if (s_.Check(it) == ItemStore::Liveness::kLive) {
            if (c.free_list != nullptr) {
              to = c.free_list;
              c.free_list = s_.layout_.Next(to);
              --c.free_count;
            } else if (c.cursor_left > 0 || !c.spare.empty()) {
              if (c.cursor_left == 0) {
                c.cursor = c.spare.back();
                c.spare.pop_back();
                c.cursor_left = c.per_page;
              }
              to = c.cursor;
              c.cursor += c.chunk_size;
              --c.cursor_left;
            }
          }
          if (to != nullptr) {
            std::memcpy(to, it, s_.layout_.TotalSize(it));
            s_.index_.Replace(hash, it, to);
            c.LruReplace(s_.layout_, it, to);
            ++s_.page_state_[s_.pool_.SlotOf(to)].live;
            if (pin != nullptr) {
              pin->zombie = true;  // the copy lives on; the original waits for its reply
              ++s_.page_state_[slot].zombies;
              ++zombies;
            } else {
              --s_.page_state_[slot].live;
              c.drain_free[i] = true;
            }
            rescues_.fetch_add(1, std::memory_order_relaxed);
          } else {
            // Dead, or no free chunk left in the class: it goes.
            if (s_.Check(it) == ItemStore::Liveness::kLive) {
              evictions_nomem_.fetch_add(1, std::memory_order_relaxed);
            } else {
              ++c.reclaimed;
            }
            s_.index_.Remove(hash, it);
            s_.ReleaseLocked(c, it);  // marks drain_free, or leaves a zombie
            if (pin != nullptr) ++zombies;
          }
          mu.Unlock();
        }
      }
      if (busy == 0 && zombies == 0) break;
      busy_items_.fetch_add(busy, std::memory_order_relaxed);
      if (busy == 0 && SteadyMs() - started_ms > kZombieWaitMs) {
        // Only chunks that replies are still being sent from are left (a
        // client not reading): give up on this page rather than wait on it.
        absl::MutexLock lock(&c.mu);
        for (size_t i = 0; i < c.per_page; ++i) {
          if (!c.drain_free[i]) continue;
          uint8_t* it = page + i * c.chunk_size;
          s_.layout_.SetNext(it, c.free_list);
          c.free_list = it;
          ++c.free_count;
        }
        c.draining = nullptr;
        c.drain_free.clear();
        running_.store(false, std::memory_order_relaxed);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(pass < 10 ? 50 : 1000));
    }
  }
  {
    absl::MutexLock lock(&c.mu);
    c.page_list.erase(std::find(c.page_list.begin(), c.page_list.end(), page));
    --c.pages;
    if (c.draining == page) {
      c.draining = nullptr;
      c.drain_free.clear();
    }
    s_.page_state_[slot] = PageState{};
  }
  if (dst == 0) {
    s_.pool_.FreePage(page);
    global_pool_pages_.fetch_add(1, std::memory_order_relaxed);
  } else {
    SlabClass& d = s_.slab_classes_[dst];
    s_.pool_.RecutPage(page, static_cast<uint8_t>(dst), static_cast<uint32_t>(d.chunk_size));
    absl::MutexLock lock(&d.mu);
    d.spare.push_back(page);
    d.page_list.push_back(page);
    ++d.pages;
  }
  slabs_moved_.fetch_add(1, std::memory_order_relaxed);
  running_.store(false, std::memory_order_relaxed);
  return true;
}

void PageMover::MakeRoom(int cls, size_t ntotal, const uint8_t* keep) {
  if (!s_.options_.slab_reassign) return;
  absl::MutexLock move(&move_mu_);
  const bool large = s_.classes_.IsLarge(ntotal);
  auto enough = [&] {
    if (large) return s_.pool_.available() >= ntotal;
    if (s_.pool_.available() >= s_.classes_.page_size()) return true;  // a new page fits
    SlabClass& c = s_.slab_classes_[cls];
    absl::MutexLock lock(&c.mu);
    return c.FreeChunks() > 0;  // another store made room meanwhile
  };
  // What goes is the oldest memory: the page whose newest item is older than
  // any other page's newest, or the oldest large item if it is older still.
  // A large item takes bytes, so its pages go back to the budget (first
  // pages granted past the limit are paid back here too); a slab class gets
  // the page itself.
  for (size_t i = 0; i < s_.pool_.max_slots() && !enough(); ++i) {
    int src = 0;
    uint8_t* page = StalestPage(large ? 0 : cls, &src, keep);
    const uint64_t page_seq = page == nullptr ? UINT64_MAX : PageSeq(src, page);
    if (OldestLargeSeq() < page_seq) {
      SlabClass& c = s_.slab_classes_[s_.classes_.count()];
      absl::MutexLock lock(&c.mu);
      if (s_.ReclaimOrEvictLocked(c, nullptr, ItemStore::kNoStripe, /*large_only=*/true)) continue;
    }
    // Nothing of ours to free: the engine in front of this store may have
    // memory to give back (TinyStore's slot table).
    if (page == nullptr && room_donor_ && room_donor_()) continue;
    if (page == nullptr || !MovePage(src, page, large ? 0 : cls)) return;
    if (!large) return;
  }
}

bool PageMover::ReleaseStalestPage() {
  absl::MutexLock move(&move_mu_);
  int src = 0;
  uint8_t* page = StalestPage(0, &src);
  return page != nullptr && MovePage(src, page, 0);
}

uint64_t PageMover::PageSeq(int cls, const uint8_t* page) const {
  const SlabClass& c = s_.slab_classes_[cls];
  absl::MutexLock lock(&c.mu);
  const PageState& ps = s_.page_state_[s_.pool_.SlotOf(page)];
  return ps.live == 0 ? 0 : ps.last_alloc;
}

void PageMover::RunReassign(int src, int dst) {
  if (src != 0) {
    MovePage(src, PickPage(src), dst);
    return;
  }
  // From the unassigned budget: a fresh page.
  SlabClass& d = s_.slab_classes_[dst];
  absl::MutexLock lock(&d.mu);
  if (uint8_t* page = s_.pool_.NewPage(/*first_of_class=*/false, static_cast<uint8_t>(dst),
                                       static_cast<uint32_t>(d.chunk_size))) {
    d.spare.push_back(page);
    d.page_list.push_back(page);
    ++d.pages;
    TakeFromGlobalPool();
    slabs_moved_.fetch_add(1, std::memory_order_relaxed);
  }
}

ReassignResult PageMover::Reassign(int src, int dst) {
  {
    absl::MutexLock lock(&mover_mu_);
    if (request_.has_value() || running_.load(std::memory_order_relaxed)) {
      return ReassignResult::kBusy;
    }
  }
  if (src == dst) return ReassignResult::kSame;
  const int n = s_.classes_.count();
  if (src == -1) {
    // "Any class": the first, after dst, with a page to spare.
    for (int k = 1; k <= n && src == -1; ++k) {
      const int i = (dst + k - 1) % n + 1;
      if (i == dst) continue;
      const SlabClass& c = s_.slab_classes_[i];
      absl::MutexLock lock(&c.mu);
      if (c.pages >= 2) src = i;
    }
  }
  if (src < 0 || src > n || dst < 0 || dst > n) return ReassignResult::kBadClass;
  size_t src_pages = std::min(global_pool_pages_.load(std::memory_order_relaxed),
                              s_.pool_.available() / s_.classes_.page_size());
  if (src != 0) {
    const SlabClass& c = s_.slab_classes_[src];
    absl::MutexLock lock(&c.mu);
    src_pages = c.pages;
  }
  if (src_pages < 2) return ReassignResult::kNoSpare;
  if (!thread_.joinable()) {
    absl::MutexLock move(&move_mu_);
    RunReassign(src, dst);
    return ReassignResult::kOk;
  }
  absl::MutexLock lock(&mover_mu_);
  if (request_.has_value()) return ReassignResult::kBusy;
  request_ = ReassignRequest{src, dst};
  return ReassignResult::kOk;
}

bool PageMover::AutomoveStep(uint64_t now_ms) {
  if (last_age_sample_ms_ == 0 || now_ms - last_age_sample_ms_ >= kAgeSampleMs) {
    for (int i = 1; i <= s_.classes_.count(); ++i) {
      SlabClass& c = s_.slab_classes_[i];
      absl::MutexLock lock(&c.mu);
      c.ages.Record(now_ms, c.links);
    }
    last_age_sample_ms_ = now_ms;
  }
  const Automove level = automove();
  if (level == Automove::kOff || !s_.options_.slab_reassign) return false;

  int hungry = 0;
  uint64_t hungry_age = 0;
  int spare_src = 0;
  for (int i = 1; i <= s_.classes_.count(); ++i) {
    SlabClass& c = s_.slab_classes_[i];
    bool pressed = false;
    {
      absl::MutexLock lock(&c.mu);
      const uint64_t pressure = c.evicted + c.outofmemory;
      pressed = pressure != c.pressure_seen && c.spare.empty();
      c.pressure_seen = pressure;
      if (c.pages >= 2 && c.draining == nullptr &&
          2 * c.FreeChunks() >= kSpareHalfPages * c.per_page) {
        spare_src = i;
      }
    }
    if (pressed) {
      const uint64_t age = TailAgeMs(i, now_ms);
      if (hungry == 0 || age < hungry_age) {
        hungry = i;
        hungry_age = age;
      }
    }
  }
  absl::MutexLock move(&move_mu_);
  if (spare_src != 0) return MovePage(spare_src, PickPage(spare_src), 0);
  // Feeding a hungry class empties a page of another class, evicting what
  // cannot be relocated: never with -M, which promises no evictions (its
  // refusals are pressure too, but a store refused stays refused). Spare
  // pages above still go back: their items all fit the free chunks left.
  if (hungry == 0 || !s_.options_.evict) return false;
  const int src = OldestClass(hungry, 2, now_ms);
  if (src == 0) return false;
  const uint64_t src_age = TailAgeMs(src, now_ms);
  const bool move_it =
      level == Automove::kAggressive
          ? src_age > hungry_age
          : static_cast<double>(hungry_age) < automove_ratio() * static_cast<double>(src_age);
  if (!move_it) return false;
  return MovePage(src, PickPage(src), hungry);
}

void PageMover::Loop() {
  bool busy = false;
  for (;;) {
    std::optional<ReassignRequest> request;
    {
      absl::MutexLock lock(&mover_mu_);
      mover_mu_.AwaitWithTimeout(absl::Condition(
                                     +[](PageMover* m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m->mover_mu_) {
                                       return m->stop_ || m->request_.has_value();
                                     },
                                     this),
                                 absl::Milliseconds(busy ? 10 : 100));
      if (stop_) return;
      request = request_;
    }
    if (request.has_value()) {
      {
        absl::MutexLock move(&move_mu_);
        RunReassign(request->src, request->dst);
      }
      absl::MutexLock lock(&mover_mu_);
      request_.reset();
    }
    busy = AutomoveStep(SteadyMs());
  }
}

MoverStats PageMover::stats() const {
  MoverStats s;
  s.slabs_moved = slabs_moved_.load(std::memory_order_relaxed);
  s.rescues = rescues_.load(std::memory_order_relaxed);
  s.evictions_nomem = evictions_nomem_.load(std::memory_order_relaxed);
  s.busy_items = busy_items_.load(std::memory_order_relaxed);
  s.running = running_.load(std::memory_order_relaxed);
  s.global_page_pool = std::min(global_pool_pages_.load(std::memory_order_relaxed),
                                s_.pool_.available() / s_.classes_.page_size());
  return s;
}

}  // namespace tinycached::core
