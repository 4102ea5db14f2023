// core/item_upkeep.cc — what ItemStore does besides serving keys: flush_all
// (an epoch step, then the sweeper), the crawler's reclaim of dead items (the
// once-a-second step and the crawls asked for), the hash index's charge
// against -m, and the numbers `stats` and the admin commands read
// (snapshots, totals, item walks).
#include <algorithm>
#include <thread>

#include "core/item_store.h"

namespace tinycached::core {
namespace {

using compact::kFetched;

}  // namespace

void ItemStore::FlushAll(int64_t delay) {
  const RelTime now = clock_->Now();
  const RelTime when = delay > 0 ? clock_->ToRelative(delay) : now;
  // memcached's "oldest" setting, for stats.
  oldest_live_.store(options_.cas_enabled ? when - 1 : when, std::memory_order_relaxed);
  // memcached takes a unique for its oldest_cas when the flush is due within
  // a second: the next item stored gets the one after it.
  if (options_.cas_enabled && when <= now + 1) NextCas();
  if (when > now) {
    pending_flush_.store(when, std::memory_order_relaxed);  // replaces an earlier one
    return;
  }
  pending_flush_.store(0, std::memory_order_relaxed);  // an immediate flush cancels it
  FlushNow();
}

void ItemStore::RunPendingFlush(RelTime due) {
  // One caller wins the exchange and flushes; the others go on (their items
  // are already dead, or will be as soon as the winner flips the epoch).
  if (pending_flush_.compare_exchange_strong(due, 0, std::memory_order_relaxed)) FlushNow();
}

void ItemStore::StartMaintenance() {
  index_.StartMaintainer();
  sweeper_ = std::thread([this] { SweeperLoop(); });
  mover_.Start();
}

void ItemStore::FlushNow() {
  absl::MutexLock flush(&flush_mu_);
  // The previous flush's sweep must be done, not just started: flipping the
  // parity back before then would bring its unswept items back to life.
  flush_mu_.Await(absl::Condition(
      +[](ItemStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->flush_mu_) { return !s->sweep_pending_; },
      this));
  // From this store on, items of the old parity are dead to every reader.
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  if (sweeper_.joinable()) {
    sweep_pending_ = true;  // the sweeper takes it from here
  } else {
    SweepLocked();
  }
}

void ItemStore::SweeperLoop() {
  flush_mu_.Lock();
  for (;;) {
    flush_mu_.Await(absl::Condition(
        +[](ItemStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->flush_mu_) {
          return s->sweep_pending_ || s->crawl_pending_ || s->stop_sweeper_;
        },
        this));
    if (stop_sweeper_) break;
    if (sweep_pending_) {
      SweepLocked();
      sweep_pending_ = false;
      continue;
    }
    const std::vector<bool> wanted = std::move(crawl_classes_);
    crawl_classes_.clear();
    crawl_pending_ = false;
    // A crawl holds no flush lock: a flush meanwhile is not kept waiting.
    flush_mu_.Unlock();
    CrawlNow(wanted);
    flush_mu_.Lock();
    crawl_running_.store(false, std::memory_order_release);
  }
  flush_mu_.Unlock();
}

CrawlStart ItemStore::StartCrawl(const std::vector<int>& classes) {
  // Here, not in CrawlNow(): on the sweeper thread a flush would wait for
  // the sweep that thread itself has still to do.
  MaybeRunPendingFlush();
  std::vector<bool> wanted(classes_.count() + 1, false);
  for (const int cls : classes) {
    if (cls >= 1 && cls <= classes_.count()) wanted[cls] = true;
  }
  {
    absl::MutexLock lock(&flush_mu_);
    if (crawl_running_.load(std::memory_order_acquire)) return CrawlStart::kBusy;
    crawl_running_.store(true, std::memory_order_release);
    if (sweeper_.joinable() && !stop_sweeper_) {
      crawl_classes_ = std::move(wanted);
      crawl_pending_ = true;  // the sweeper takes it from here
      return CrawlStart::kStarted;
    }
  }
  CrawlNow(wanted);
  crawl_running_.store(false, std::memory_order_release);
  return CrawlStart::kStarted;
}

void ItemStore::CrawlNow(const std::vector<bool>& wanted) {
  std::vector<uint64_t> checked(wanted.size(), 0);
  std::vector<uint8_t*> dead;
  for (size_t stripe = 0; stripe < HashIndex::kStripes; ++stripe) {
    if (crawl_abort_.load(std::memory_order_relaxed)) break;
    absl::MutexLock lock(&index_.StripeLockAt(stripe));
    dead.clear();
    index_.ForEachInStripe(stripe, [&](uint8_t* it) {
      const int cls = ClassOf(it);
      if (static_cast<size_t>(cls) >= wanted.size() || !wanted[cls]) return;
      ++checked[cls];
      if (Check(it) != Liveness::kLive) dead.push_back(it);
    });
    // Freed (and counted) as a tail reclaim frees them, the stripe held.
    for (uint8_t* it : dead) {
      SlabClass& c = slab_classes_[ClassOf(it)];
      absl::MutexLock class_lock(&c.mu);
      TryFreeLocked(c, it, stripe, /*evict_live=*/false, /*by_crawler=*/true);
    }
  }
  for (size_t cls = 1; cls < checked.size(); ++cls) {
    if (checked[cls] == 0) continue;
    SlabClass& c = slab_classes_[cls];
    absl::MutexLock lock(&c.mu);
    c.crawler_items_checked += checked[cls];
  }
}

void ItemStore::SweepLocked() {
  std::vector<uint8_t*> doomed;
  for (size_t stripe = 0; stripe < HashIndex::kStripes; ++stripe) {
    absl::MutexLock lock(&index_.StripeLockAt(stripe));
    doomed.clear();
    index_.ForEachInStripe(stripe, [&](uint8_t* it) {
      if (Flushed(it)) doomed.push_back(it);
    });
    for (uint8_t* it : doomed) Unlink(index_.HashOfItem(it), it);
  }
}

size_t ItemStore::ReclaimDead(size_t budget) {
  MaybeRunPendingFlush();
  ChargeIndex();
  size_t reclaimed = 0;
  for (int i = 1; i <= classes_.count(); ++i) {
    SlabClass& c = slab_classes_[i];
    absl::MutexLock lock(&c.mu);
    size_t seen = 0;
    for (uint8_t* it = c.tail; it != nullptr && seen < budget; ++seen) {
      uint8_t* prev = layout_.Prev(it);  // `it` may be freed below
      if (TryFreeLocked(c, it, kNoStripe, /*evict_live=*/false)) ++reclaimed;
      it = prev;
    }
  }
  return reclaimed;
}

void ItemStore::ChargeIndex() {
  if (!options_.index_in_limit) return;
  absl::MutexLock lock(&index_charge_mu_);
  const size_t now = index_.bytes();
  if (now > index_charged_) pool_.ChargeOver(now - index_charged_);
  if (now < index_charged_) pool_.Uncharge(index_charged_ - now);
  index_charged_ = now;
}

std::vector<ClassSnapshot> ItemStore::SnapshotClasses() const {
  std::vector<ClassSnapshot> out;
  const RelTime now = clock_->Now();
  for (int i = 1; i <= classes_.count(); ++i) {
    const SlabClass& c = slab_classes_[i];
    absl::MutexLock lock(&c.mu);
    if (c.pages == 0 && c.items == 0 && c.total_items == 0) continue;
    ClassSnapshot s;
    s.id = i;
    s.chunk_size = c.chunk_size;
    s.per_page = c.per_page;
    s.pages = c.pages;
    s.items = c.items;
    s.free_chunks = c.FreeChunks();
    s.bytes = c.bytes;
    // The tail's access time is written under its item lock, not this one: a
    // racy but harmless read, as memcached's own "age".
    s.age = c.tail != nullptr && layout_.has_time() ? now - layout_.Time(c.tail) : 0;
    s.evicted = c.evicted;
    s.evicted_nonzero = c.evicted_nonzero;
    s.evicted_unfetched = c.evicted_unfetched;
    s.evicted_time = c.evicted_time;
    s.outofmemory = c.outofmemory;
    s.reclaimed = c.reclaimed;
    s.expired_unfetched = c.expired_unfetched;
    s.crawler_reclaimed = c.crawler_reclaimed;
    s.crawler_items_checked = c.crawler_items_checked;
    out.push_back(s);
  }
  return out;
}

EngineStats ItemStore::engine_stats() const {
  EngineStats s;
  s.kind = EngineKind::kSlabs;
  s.hash_power_level = index_.hash_bits();
  s.hash_bytes = index_.bytes();
  s.hash_expanding = index_.expanding();
  s.crawl_running = crawl_running_.load(std::memory_order_acquire);
  return s;
}

LayoutReport ItemStore::layout_report() const {
  LayoutReport r;
  r.header_bytes = layout_.header_size();
  r.ref_bytes = layout_.refs().width();
  r.chunk_max = classes_.chunk_max();
  r.page_size = classes_.page_size();
  r.classes.reserve(classes_.count());
  for (int i = 1; i <= classes_.count(); ++i) {
    r.classes.push_back({classes_.ChunkSize(i), classes_.PerPage(i)});
  }
  return r;
}

StoreTotals ItemStore::Totals() const {
  StoreTotals t;
  for (int i = 1; i <= classes_.count(); ++i) {
    const SlabClass& c = slab_classes_[i];
    absl::MutexLock lock(&c.mu);
    t.curr_items += c.items;
    t.total_items += c.total_items;
    t.bytes += c.bytes;
    t.evictions += c.evicted;
    t.reclaimed += c.reclaimed;
    t.expired_unfetched += c.expired_unfetched;
    t.evicted_unfetched += c.evicted_unfetched;
    t.crawler_reclaimed += c.crawler_reclaimed;
    t.crawler_items_checked += c.crawler_items_checked;
  }
  t.malloced = pool_.used();
  return t;
}

size_t ItemStore::VisitItems(int cls, size_t limit,
                             absl::FunctionRef<void(const ItemInfo&)> visit) {
  if (cls < 1 || cls > classes_.count()) return 0;
  MaybeRunPendingFlush();
  SlabClass& c = slab_classes_[cls];
  absl::MutexLock lock(&c.mu);
  size_t visited = 0;
  for (uint8_t* it = c.head; it != nullptr && visited < limit; it = layout_.Next(it)) {
    // The item's fields belong to its stripe lock (lock order: stripe, then
    // class): only try it, and pass over an item someone is using.
    if (TryVisitLocked(cls, it, visit)) ++visited;
  }
  return visited;
}

void ItemStore::ExportItems(absl::FunctionRef<void(const ItemInfo&)> visit) {
  MaybeRunPendingFlush();
  for (int cls = 1; cls <= classes_.count(); ++cls) {
    SlabClass& c = slab_classes_[cls];
    absl::MutexLock lock(&c.mu);
    for (uint8_t* it = c.tail; it != nullptr; it = layout_.Prev(it)) {
      // Nothing else runs (see Engine::ExportItems), so the stripe lock is
      // free; it is taken against the lock order, hence only tried.
      TryVisitLocked(cls, it, visit);
    }
  }
}

bool ItemStore::TryVisitLocked(int cls, const uint8_t* it,
                               absl::FunctionRef<void(const ItemInfo&)> visit) {
  absl::Mutex& mu = index_.StripeLockAt(HashIndex::StripeOf(index_.HashOfItem(it)));
  if (!mu.TryLock()) return false;
  const bool live = Check(it) == Liveness::kLive;
  if (live) {
    char buf[compact::kMaxKeyLength];
    ItemInfo info;
    info.key = layout_.Key(it, buf);
    info.value = layout_.Value(it);
    info.flags = layout_.ClientFlags(it);
    info.value_bytes = info.value.size();
    info.total_bytes = layout_.TotalSize(it);
    info.exptime = layout_.Exptime(it);
    info.last_access = layout_.Time(it);
    info.cas = layout_.Cas(it);
    info.fetched = (layout_.Flags(it) & kFetched) != 0;
    info.cls = cls;
    visit(info);
  }
  mu.Unlock();
  return live;
}

void ItemStore::Prefetch(std::string_view key) const {
  index_.Prefetch(HashIndex::Hash(StoredKey(key, layout_.pack_keys())));
}

void ItemStore::ReserveItems(size_t items) {
  // Only where the index is not paid from -m: a tiny engine's overflow store
  // gets only the items that do not go inline, which the count cannot tell.
  if (!options_.index_in_limit) index_.Reserve(items);
}

void ItemStore::ResetStats() {
  for (int i = 1; i <= classes_.count(); ++i) {
    SlabClass& c = slab_classes_[i];
    absl::MutexLock lock(&c.mu);
    c.total_items = 0;
    c.evicted = c.evicted_nonzero = c.evicted_unfetched = 0;
    c.outofmemory = c.reclaimed = c.expired_unfetched = 0;
    c.crawler_reclaimed = c.crawler_items_checked = 0;
  }
}

}  // namespace tinycached::core
