// core/item_store.h — the item store: slab chunks, key index, per-class LRU,
// expiry, CAS, flush, and the counters `stats` reports.
//
// Room: core/ owns where items live and when they die. It knows nothing of
// the protocol: callers pass keys, values and client exptimes and get small
// result enums back (server/protocol/outcome.h names them in every protocol).
// Item bytes are read and written only through compact::ItemLayout, which
// is configured at start-up (StoreOptions::layout); every item lives in the
// PagePool's arena, which also says which class an item belongs to.
//
// Locks of core/, and the only order they are taken in (this is the one
// place that states the whole order; the headers below say what each lock
// guards):
//   0. TinyStore only (core/tiny_store.h): a key lock, then the prefix
//      dictionary, then the tiny table's stripe locks — all released before
//      the overflow ItemStore below is called.
//   1. PageMover::move_mu_ (core/page_mover.h) — one page move at a time;
//      ItemStore::flush_mu_ — one flush at a time. Neither is ever taken
//      holding a lock below, and neither is held while taking the other.
//   2. item stripe lock (HashIndex::StripeLock(hash)) — the key's chain, the
//      bytes of the items in it and their pins;
//   3. a slab class lock (SlabClass::mu) — that class's free chunks, page
//      cursor, LRU list, item counters and its pages' PageState;
//   4. leaves: PagePool (atomics), HashIndex's maintainer mutex,
//      PageMover::mover_mu_ (its queue), the index charge mutex; and a room
//      donor's own locks (TinyStore's table resize mutex), called under 1.
// Eviction and page moves run holding a class lock and must take victims'
// stripe locks against the order, so they only TryLock() them and pass over
// busy ones (the stripe the caller already holds is passed down and used as
// is).
//
// Readers copy a value out while its stripe lock is held, except a large
// value sent in place: Get()'s visitor may pin it (PinVisited), and a pinned
// item that is freed meanwhile — deleted, replaced, evicted, moved off its
// page — becomes a zombie, out of the index and the LRU, whose chunk the
// last Unpin() frees. An unpinned evicted chunk is reused at once.
//
// Recency is a second-chance LRU: a read only sets the item's kActive bit
// (under its stripe lock; no class lock, no relink). Eviction takes from the
// tail, and an active item found there is moved to the head with its bit
// cleared instead of evicted. New items start inactive.
//
// flush_all is an epoch: every item carries the parity of the flush epoch it
// was linked in (kEpoch), and an item of the other parity is dead. A flush
// increments the epoch — from that instant every older item is invisible —
// and the sweeper thread then removes the old items stripe by stripe (without
// StartMaintenance(), the flush does it before returning). The next flush
// waits for that sweep, so no item of the old parity is left when it flips
// the parity back. A delayed flush waits in `pending_flush_` and is run by
// the first operation at or after its time. No item needs an access time for
// any of this.
//
// Dead items are freed at the LRU tails (counted as reclaimed) — by a store
// that finds one at its class's tail, and by the server's once-a-second step
// over every class's oldest items (ReclaimDead, memcached's LRU maintainer) —
// by reads that find one (get_expired, get_flushed), and by the whole-class
// crawls `lru_crawler crawl` asks for (StartCrawl; crawler_reclaimed), which
// the sweeper thread runs between sweeps, walking the index stripe by stripe.
//
// Pages move between classes (core/page_mover.h, memcached's slab
// reassignment): a page is emptied — its items relocated to free chunks of
// the same class, or evicted — and then re-cut for another class or given
// back to the budget. The automover does this in the background so that the
// classes' LRU tails stay about equally old; and a store that finds no memory
// in its class and nothing there to evict releases its stripe lock, has a
// page made free for it (MakeRoom) and tries again, so with evictions on a
// store that passes -I is never refused.
#ifndef TINYCACHED_CORE_ITEM_STORE_H_
#define TINYCACHED_CORE_ITEM_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "compact/item_layout.h"
#include "core/clock.h"
#include "core/engine.h"
#include "core/hash_index.h"
#include "core/page_mover.h"
#include "core/slab_class.h"
#include "core/slabs.h"
#include "core/stats.h"

namespace tinycached::core {

class ItemStore final : public Engine {
 public:
  friend class PageMover;
  using Layout = compact::ItemLayout;
  using StoredKey = compact::StoredKey;

  // `clock` must outlive the store.
  static absl::StatusOr<std::unique_ptr<ItemStore>> Create(const StoreOptions& options,
                                                           const Clock* clock);
  ~ItemStore();
  ItemStore(const ItemStore&) = delete;
  ItemStore& operator=(const ItemStore&) = delete;

  // Starts the index's growth thread, the flush sweeper and the page mover
  // (the server calls this).
  void StartMaintenance() override;
  // Joins those threads; a flush whose sweep had not run is swept here.
  void StopMaintenance() override;
  void ExportItems(absl::FunctionRef<void(const ItemInfo&)> visit) override;
  void ReserveItems(size_t items) override;
  void Prefetch(std::string_view key) const override;

  // memcached's item_size_ok(): could this item ever be stored?
  bool SizeOk(std::string_view key, uint32_t flags, int64_t exptime, size_t nvalue) const override;

  // set/add/replace/append/prepend/cas. `exptime` is the client's value.
  // kTooLarge and kNoMemory are counted in `stats`; a failed kSet also drops
  // the key's old value, as memcached does, so no stale value survives.
  StoreResult Store(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                    std::string_view value, uint64_t cas_unique, ThreadStats& stats) override;

  // get/gets (new_exptime empty) and gat/gats (new_exptime = client exptime).
  // On a hit calls `visit` under the item lock, then returns true. (A gat
  // that must grow a lean item to hold an expiry and finds no memory still
  // returns the value; the expiry is left unchanged.)
  bool Get(std::string_view key, std::optional<int64_t> new_exptime, ThreadStats& stats,
           absl::FunctionRef<void(const ItemView&)> visit) override;

  // Pins the item a Get() visitor is looking at. Call only inside the
  // visitor (its stripe lock is held). Every pin must be Unpin()ned.
  PinnedValue PinVisited(const ItemView& view) override;
  // Call holding no store lock.
  void Unpin(const PinnedValue& pin) override;
  size_t pinned_items() const { return pinned_.load(std::memory_order_relaxed); }

  // kNoMemory: a lean item stored without an expiry must be rewritten to
  // hold one, and no memory could be found.
  TouchResult Touch(std::string_view key, int64_t exptime, ThreadStats& stats) override;
  bool Delete(std::string_view key, ThreadStats& stats) override;
  // Removes `key` if present without counting a delete (a failed set's old value).
  void Drop(std::string_view key) override;

  // The LRU crawler: reclaims expired and flushed items among the `budget`
  // oldest items of every class. The server calls it once a second.
  size_t ReclaimDead(size_t budget) override;
  // `lru_crawler crawl`: walks the hash index stripe by stripe (one stripe
  // lock at a time, as the flush sweeper does), so a crawl of a large class
  // never holds its class lock for long; runs on the sweeper thread.
  CrawlStart StartCrawl(const std::vector<int>& classes) override;

  // incr/decr. On kOk writes the new value's digits to `out` (no NUL) and
  // their count to `out_len`. incr wraps at 2^64, decr stops at 0.
  DeltaResult Delta(std::string_view key, bool incr, uint64_t delta, ThreadStats& stats,
                    char (&out)[kDeltaMaxLength], size_t* out_len) override;

  // flush_all [delay]: items last stored before the flush time become invisible.
  void FlushAll(int64_t delay) override;

  // Meta commands (core/engine.h). The meta state lives in the expiry word
  // (compact/item_layout.h); a lean item without one is rewritten to hold it.
  MetaGetResult MetaGet(std::string_view key, const MetaGetOptions& options, ThreadStats& stats,
                        absl::FunctionRef<MetaChange(const MetaItem&)> visit) override;
  StoreResult MetaStore(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                        std::string_view value, uint64_t cas_unique,
                        const MetaStoreOptions& options, ThreadStats& stats,
                        uint64_t* cas_out) override;
  MetaDeleteResult MetaDelete(std::string_view key, const MetaDeleteOptions& options,
                              ThreadStats& stats) override;
  DeltaResult MetaDelta(std::string_view key, bool incr, uint64_t delta,
                        const MetaDeltaOptions& options, ThreadStats& stats,
                        char (&out)[kDeltaMaxLength], size_t* out_len,
                        absl::FunctionRef<MetaChange(const MetaItem&)> visit) override;

  // Page moves (core/page_mover.h). `slabs reassign <src> <dst>`: schedules
  // one page of `src` (-1: any class with a spare page; 0: memcached's global
  // page pool, the pages moves gave back) to move to `dst` (0: back to the
  // budget, into that pool). Without StartMaintenance() the move runs before
  // returning.
  ReassignResult Reassign(int src, int dst) override { return mover_.Reassign(src, dst); }
  // `slabs automove <level>` and `slabs automove ratio <r>`.
  void SetAutomove(Automove level) override { mover_.SetAutomove(level); }
  Automove automove() const override { return mover_.automove(); }
  void SetAutomoveRatio(double r) override { mover_.SetAutomoveRatio(r); }
  double automove_ratio() const override { return mover_.automove_ratio(); }
  // One automover step at `now_ms` (a steady clock). The mover thread calls
  // it; tests call it directly with their own clock.
  bool AutomoveStep(uint64_t now_ms) { return mover_.AutomoveStep(now_ms); }
  uint64_t TailAgeMs(int cls, uint64_t now_ms) const { return mover_.TailAgeMs(cls, now_ms); }
  MoverStats mover_stats() const override { return mover_.stats(); }

  EngineKind kind() const override { return EngineKind::kSlabs; }
  const StoreOptions& options() const override { return options_; }
  LayoutReport layout_report() const override;
  const SlabClassTable& classes() const { return classes_; }
  const Layout& layout() const { return layout_; }
  const PagePool& pool() const { return pool_; }
  const HashIndex& index() const { return index_; }
  const Clock& clock() const { return *clock_; }
  // memcached's settings.oldest_live for `stats settings` "oldest": the
  // time of the last flush_all (0 if none).
  RelTime oldest_live() const override { return oldest_live_.load(std::memory_order_relaxed); }

  std::vector<ClassSnapshot> SnapshotClasses() const override;
  StoreTotals Totals() const override;
  EngineStats engine_stats() const override;

  // For an engine that keeps its own structures inside this store's limit
  // (TinyStore): a zeroed page charged to the budget, or nullptr; and back.
  uint8_t* TakeRawPage();
  void ReturnRawPage(uint8_t* page);
  // Called by MakeRoom() when no page of this store can be freed: frees a
  // page's worth of budget elsewhere; false if it cannot.
  void SetRoomDonor(std::function<bool()> donor) { mover_.SetRoomDonor(std::move(donor)); }
  // With StoreOptions::index_in_limit: charges the pool for what the hash
  // index takes now (ReclaimDead() calls it, so within a second of a growth).
  void ChargeIndex();
  // Frees the page whose newest item is the oldest, back to the budget.
  // False if there is none.
  bool ReleaseStalestPage() { return mover_.ReleaseStalestPage(); }
  void ResetStats() override;  // "stats reset": total_items and the per-class event counters

  size_t VisitItems(int cls, size_t limit, absl::FunctionRef<void(const ItemInfo&)> visit) override;
  size_t memory_limit() const override { return pool_.limit(); }
  void SetMemoryLimit(size_t bytes) override { pool_.SetLimit(bytes); }

 private:
  enum class Liveness { kLive, kExpired, kFlushed };
  // A store that must wait for room: the class and size it needs.
  struct Need {
    int cls = 0;
    size_t ntotal = 0;
    // The tail items it could have evicted were under this stripe lock,
    // held by a store that waits for this class's lock in turn (see Store).
    size_t busy_stripe = kNoStripe;
    // The item the command grows (incr): its page is not emptied for it.
    const uint8_t* keep = nullptr;
  };
  // Attempts a store makes before it is refused: with other stores of its class
  // running, the room made for one may go to another first.
  static constexpr int kRoomRetries = 32;

  ItemStore(const StoreOptions& options, SlabClassTable classes, int page_bytes, size_t max_slots,
            const Clock* clock);

  Liveness Check(const uint8_t* it) const;
  // Finds a live item; a dead one found on the way is unlinked and counted.
  // REQUIRES: stripe lock of `hash`.
  uint8_t* FindLive(uint64_t hash, const StoredKey& key, ThreadStats& stats);
  // How a keyed command begins: runs a due delayed flush, takes the key's
  // stripe lock and, holding it, returns fn(hash, skey, it), `it` being the
  // key's live item or null (FindLive). Get, the hot path, keeps its own
  // copy of these lines; StoreOnce differs (it checks the size first and
  // may give up the lock to make room).
  template <typename Fn>
  auto WithLiveItem(std::string_view key, ThreadStats& stats, Fn fn);
  // Sets a found item's expiry, rewriting a lean item that has no room for
  // it. Returns the item (maybe moved) or nullptr when memory ran out.
  // REQUIRES: stripe lock of `hash`.
  uint8_t* SetExptime(uint64_t hash, uint8_t* it, RelTime exptime);
  // The same for the whole expiry word (expiry and meta state).
  uint8_t* SetExptimeWord(uint64_t hash, uint8_t* it, uint32_t word);
  // incr/decr of a found item; *item becomes the item holding the result.
  // REQUIRES: stripe lock of `hash`.
  // Without memory for a grown value: kNoMemory, and unless `final`, *need
  // filled and nothing counted (see WithRoom).
  DeltaResult DeltaLocked(uint64_t hash, const StoredKey& skey, uint8_t** item, bool incr,
                          uint64_t delta, ThreadStats& stats, char (&out)[kDeltaMaxLength],
                          size_t* out_len, bool final, Need* need);
  // One attempt of MetaDelta() (see WithRoom).
  DeltaResult MetaDeltaOnce(std::string_view key, bool incr, uint64_t delta,
                            const MetaDeltaOptions& options, ThreadStats& stats,
                            char (&out)[kDeltaMaxLength], size_t* out_len,
                            absl::FunctionRef<MetaChange(const MetaItem&)> visit, bool final,
                            Need* need);
  // How a command that needs memory ends: `op(final, &need)` runs under its
  // key's stripe lock; when it found no memory and may retry (!final) it
  // fills `need` and returns having changed and counted nothing, and room is
  // made for it (MakeRoom: a page moved to its class) holding no lock before
  // it runs again. So with evictions on, a store, an incr that grows its
  // value or an ma that creates one is refused only when no page can be
  // freed in kRoomRetries tries.
  template <typename Op>
  auto WithRoom(Op op);
  // Links a new item (flags 0, no expiry, meta `state`), or nullptr when no
  // memory can be had without dropping the lock (then, unless `final`, *need
  // says what it needs). REQUIRES: stripe lock.
  uint8_t* CreateLocked(uint64_t hash, const StoredKey& skey, std::string_view value, uint8_t state,
                        bool final, Need* need);
  MetaItem MetaView(uint64_t hash, const uint8_t* it, bool created) const;
  // Applies a meta visitor's change; the item (maybe moved), or nullptr when
  // a rewrite found no memory (the item is then unchanged).
  uint8_t* ApplyMetaChange(uint64_t hash, uint8_t* it, const MetaChange& change);
  int ClassOf(const uint8_t* it) const { return pool_.ClassOf(it); }
  static PinToken PinFor(uint64_t hash, const uint8_t* it) {
    return PinToken(it, static_cast<uint32_t>(HashIndex::StripeOf(hash)));
  }

  // A chunk (or large block) for `ntotal` bytes of class `cls`, evicting if
  // needed and allowed. Never evicts `pinned`. `held_stripe` is the stripe
  // lock the caller holds. A failure counts as the class's outofmemory only
  // if `final` (the caller will not MakeRoom() and retry). On failure
  // *busy_stripe, if given, is as ReclaimOrEvictLocked() left it.
  uint8_t* Alloc(int cls, size_t ntotal, const uint8_t* pinned, size_t held_stripe, bool final,
                 size_t* busy_stripe = nullptr);
  // The store itself, under its stripe lock. Returns kNoMemory, filling
  // *need, when it found no memory and may retry (!final; see WithRoom).
  StoreResult StoreOnce(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                        std::string_view value, uint64_t cas_unique, const MetaStoreOptions& meta,
                        ThreadStats& stats, bool final, Need* need, uint64_t* cas_out);

  size_t ChunkIndex(const SlabClass& c, const uint8_t* it) const;
  // Frees one item near the tail of `c` (a dead one first, else the oldest
  // live one if evictions are on); `large_only` considers large items only.
  // Items whose stripe another thread holds are passed over without counting
  // as searched (up to kBusyScan of them); on failure *busy_stripe, if given,
  // names one such stripe, or stays kNoStripe.
  bool ReclaimOrEvictLocked(SlabClass& c, const uint8_t* pinned, size_t held_stripe,
                            bool large_only,
                            size_t* busy_stripe = nullptr) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Frees `it` (an item of `c`) if it is dead, or if `evict_live`; counts
  // the reclaim (as the crawler's if `by_crawler`) or eviction. Skips it when
  // its stripe is busy (TryLock; the caller's own `held_stripe` is used as
  // is). REQUIRES: c.mu held.
  bool TryFreeLocked(SlabClass& c, uint8_t* it, size_t held_stripe, bool evict_live,
                     bool by_crawler = false) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Moves `it` (an item of `c`) to the LRU head and clears its kActive bit
  // if it is active and its stripe is free; false if not. REQUIRES: c.mu held.
  bool TryRescueLocked(SlabClass& c, uint8_t* it,
                       size_t held_stripe) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Shows `it` (an item of class `cls`) to `visit` if its stripe lock is
  // free and it is live; true if it was shown. REQUIRES: the class's lock.
  bool TryVisitLocked(int cls, const uint8_t* it, absl::FunctionRef<void(const ItemInfo&)> visit)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;
  static constexpr size_t kNoStripe = HashIndex::kStripes;  // "no stripe lock held"

  // Makes a freshly written item visible: index + LRU + counters, and a new
  // CAS unless `cas` is given. `old` (may be null) is replaced and freed.
  // REQUIRES: stripe lock of `hash`.
  void Link(uint64_t hash, uint8_t* it, uint8_t* old, std::optional<uint64_t> cas = {});
  // Unlinks from index and LRU and frees. REQUIRES: stripe lock of `hash`.
  void Unlink(uint64_t hash, uint8_t* it);
  // LRU + counters + free, for an item already out of the index. A pinned
  // item becomes a zombie instead of being freed. REQUIRES: c.mu and the
  // item's stripe lock.
  void ReleaseLocked(SlabClass& c, uint8_t* it) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Returns a chunk or large block to its class or the pool. REQUIRES: c.mu.
  void FreeChunkLocked(SlabClass& c, uint8_t* it) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Pins of one stripe, guarded by that stripe's lock.
  struct PinEntry {
    uint32_t count = 0;
    bool zombie = false;  // freed while pinned: the last Unpin frees it
  };
  struct PinStripe {
    absl::flat_hash_map<const uint8_t*, PinEntry> pins;
  };
  // The pin of `it` or null. REQUIRES: the stripe lock of `stripe`.
  PinEntry* FindPin(size_t stripe, const uint8_t* it) const {
    if (pinned_.load(std::memory_order_relaxed) == 0) return nullptr;
    auto& pins = pin_stripes_[stripe].pins;
    auto found = pins.find(it);
    return found == pins.end() ? nullptr : &found->second;
  }
  // Marks a used item recently used: kActive, and (stock) its access time.
  // REQUIRES: the item's stripe lock.
  void Bump(uint8_t* it);
  // Runs a delayed flush whose time has come. Call holding no lock.
  void MaybeRunPendingFlush() {
    const RelTime due = pending_flush_.load(std::memory_order_relaxed);
    if (due != 0 && clock_->Now() >= due) RunPendingFlush(due);
  }
  void RunPendingFlush(RelTime due);
  // The flush itself: a new epoch; the older items are then removed by
  // SweepLocked(), on the sweeper thread if it runs.
  void FlushNow();
  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  void SweeperLoop();
  // A crawl (StartCrawl) of the classes whose ids are true in `wanted`:
  // frees their dead items and counts what it checked. Call holding no lock;
  // it runs no flush (the sweeper thread calls it).
  void CrawlNow(const std::vector<bool>& wanted);
  bool Flushed(const uint8_t* it) const {
    const bool odd = (layout_.Flags(it) & compact::kEpoch) != 0;
    return odd != ((epoch_.load(std::memory_order_acquire) & 1) != 0);
  }
  void MarkFetched(uint8_t* it) const {
    const uint16_t flags = layout_.Flags(it);
    if ((flags & compact::kFetched) == 0) layout_.SetFlags(it, flags | compact::kFetched);
  }

  // A CAS unique never handed out before. Each thread takes kCasBlock of
  // them from the shared counter at a time, so a store writes that counter
  // once in kCasBlock stores, not on each: uniques are unique and grow on
  // each thread, but two threads' are not ordered by time (memcached
  // promises no more).
  static constexpr uint64_t kCasBlock = 64;
  uint64_t NextCas();
  // alloc_seq_'s next number, taken the same way: a page's last_alloc orders
  // pages by age to within kAllocSeqBlock allocations per thread, which is
  // all the page mover's "stalest page" needs.
  static constexpr uint64_t kAllocSeqBlock = 64;
  uint64_t NextAllocSeq();

  const StoreOptions options_;
  const SlabClassTable classes_;
  const Clock* const clock_;
  PagePool pool_;  // before layout_: page references decode through its arena
  const Layout layout_;
  HashIndex index_;
  std::unique_ptr<SlabClass[]> slab_classes_;  // [0] unused
  std::unique_ptr<PinStripe[]> pin_stripes_;   // [HashIndex::kStripes]
  std::atomic<size_t> pinned_{0};              // pinned items, zombies included
  // Per arena slot; an entry is guarded by the mu of the class owning the page.
  std::unique_ptr<PageState[]> page_state_;

  absl::Mutex index_charge_mu_;
  size_t index_charged_ ABSL_GUARDED_BY(index_charge_mu_) = 0;  // bytes of the index in pool_
  std::atomic<uint64_t> cas_counter_{0};
  const uint64_t instance_;                // tells this store's CAS blocks from another's
  std::atomic<uint32_t> epoch_{0};         // flush_all count; items carry its parity
  std::atomic<RelTime> pending_flush_{0};  // a delayed flush's time, 0 = none
  // Lock order: flush_mu_ before any stripe lock (never taken holding one).
  absl::Mutex flush_mu_;  // one flush (epoch step + sweep) at a time
  bool sweep_pending_ ABSL_GUARDED_BY(flush_mu_) = false;
  bool stop_sweeper_ ABSL_GUARDED_BY(flush_mu_) = false;
  // A crawl StartCrawl() handed to the sweeper thread, not begun yet.
  bool crawl_pending_ ABSL_GUARDED_BY(flush_mu_) = false;
  std::vector<bool> crawl_classes_ ABSL_GUARDED_BY(flush_mu_);
  // Set (under flush_mu_) from StartCrawl() until that crawl is done.
  std::atomic<bool> crawl_running_{false};
  std::atomic<bool> crawl_abort_{false};  // StopMaintenance(): a crawl under way stops early
  std::thread sweeper_;                   // started by StartMaintenance()
  std::atomic<RelTime> oldest_live_{0};   // reported only (stats settings "oldest")
  std::atomic<uint64_t> alloc_seq_{0};    // numbers handed out in blocks (NextAllocSeq)

  // Last: its thread stops first, while everything it moves still exists.
  PageMover mover_;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_ITEM_STORE_H_
