#include "core/item_store.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"

namespace tinycached::core {
namespace {

using compact::kActive;
using compact::kEpoch;
using compact::kFetched;
using compact::kLarge;

// How many items from an LRU tail one allocation looks at, as memcached.
constexpr int kTailSearch = 5;
// A large item makes room by evicting large items only (they share the LRU
// of the largest class with its slab chunks): it looks this far for one.
constexpr int kLargeTailSearch = 1000;
// Items passed over because another thread holds their stripe, at most, on
// top of those searched. A store holds its key's stripe while it waits for
// its class's lock, so with N threads storing into a class up to N - 1
// stripes are busy, and the tail gathers the items they made it pass over.
constexpr int kBusyScan = 64;
// Allocation attempts (each may free one item) before giving up.
constexpr int kAllocTries = 10;
// Active items one eviction may move from the tail to the head before it
// evicts regardless, so a class whose items are all hot still makes room.
constexpr int kMaxRescues = 50;

}  // namespace

namespace {

compact::LayoutOptions LayoutOptionsFor(const StoreOptions& o, int page_bytes,
                                        const compact::Arena* arena) {
  compact::LayoutOptions l;
  l.refs = page_bytes == 0 ? compact::RefCodec::Pointer()
                           : compact::RefCodec::Page(page_bytes, arena);
  l.cas = o.cas_enabled;
  l.pack_keys = o.layout.pack_keys;
  l.header = o.layout.header;
  return l;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ItemStore>> ItemStore::Create(const StoreOptions& options,
                                                             const Clock* clock) {
  // Page-index width first: it sets the header size, which sets the classes.
  // Slots needed: every page of the limit, plus one per possible large item
  // (each is bigger than chunk_max). First pages granted past the limit
  // take whatever slots remain.
  SlabOptions slab_options = options.slabs;
  const size_t page = slab_options.page_size;
  const size_t chunk_max = slab_options.chunk_max != 0 ? slab_options.chunk_max : page / 2;
  const size_t limit_pages = (options.memory_limit + page - 1) / page;
  const size_t needed = limit_pages + options.memory_limit / std::max<size_t>(chunk_max, 1) + 1;
  int page_bytes = 0;
  size_t max_slots = needed + kMaxClassId + slab_options.item_size_max / page + 1;
  if (options.layout.refs != RefMode::kPointer) {
    // ref32: always a 2-byte page index. page16: the narrowest that names them all.
    page_bytes = options.layout.refs == RefMode::kRef32 ? 2 : 1;
    while (options.layout.refs == RefMode::kPage && page_bytes < 4 &&
           needed > compact::RefCodec::Page(page_bytes, nullptr).max_pages()) {
      ++page_bytes;
    }
    const uint64_t max_pages = compact::RefCodec::Page(page_bytes, nullptr).max_pages();
    if (needed > max_pages) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "-m %d MB needs %d pages, more than %d-byte page references can name (%d)",
          options.memory_limit >> 20, needed, page_bytes + 2, max_pages));
    }
    max_slots = static_cast<size_t>(max_pages);
    slab_options.min_chunk = std::max(slab_options.min_chunk, page / compact::kMaxChunksPerPage);
  }
  slab_options.header_size = Layout(LayoutOptionsFor(options, page_bytes, nullptr)).header_size();
  absl::StatusOr<SlabClassTable> classes = SlabClassTable::Build(slab_options);
  if (!classes.ok()) return classes.status();
  if (classes->count() > kMaxClassId) {
    return absl::InvalidArgumentError("too many slab classes for a one-byte class id");
  }
  return std::unique_ptr<ItemStore>(
      new ItemStore(options, *std::move(classes), page_bytes, max_slots, clock));
}

namespace {

uint64_t NextInstance() {
  static std::atomic<uint64_t> instances{0};
  return instances.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace

namespace {

// The next number of a counter that threads take from in blocks: each
// thread takes `block` numbers of `shared` at a time (its own per counter
// `Tag` and per store `instance`), so the shared counter is written once per
// `block` numbers. Numbers are unique and grow on each thread; across
// threads they are ordered only to within a block per thread.
template <int Tag>
uint64_t NextFromBlock(std::atomic<uint64_t>& shared, uint64_t instance, uint64_t block) {
  struct Block {
    uint64_t instance = 0;
    uint64_t next = 0;
    uint64_t end = 0;
  };
  thread_local Block b;
  if (b.instance != instance || b.next == b.end) {
    b.instance = instance;
    b.next = shared.fetch_add(block, std::memory_order_relaxed) + 1;
    b.end = b.next + block;
  }
  return b.next++;
}

}  // namespace

uint64_t ItemStore::NextCas() { return NextFromBlock<0>(cas_counter_, instance_, kCasBlock); }

uint64_t ItemStore::NextAllocSeq() {
  return NextFromBlock<1>(alloc_seq_, instance_, kAllocSeqBlock);
}

ItemStore::ItemStore(const StoreOptions& options, SlabClassTable classes, int page_bytes,
                     size_t max_slots, const Clock* clock)
    : options_(options),
      classes_(std::move(classes)),
      clock_(clock),
      pool_(options.memory_limit, classes_.page_size(), max_slots),
      layout_(LayoutOptionsFor(options, page_bytes, &pool_.arena())),
      index_(&layout_, options.hashpower_init),
      slab_classes_(new SlabClass[classes_.count() + 1]),
      pin_stripes_(new PinStripe[HashIndex::kStripes]),
      page_state_(new PageState[max_slots]),
      automove_(options.automove),
      automove_ratio_(options.automove_ratio),
      room_by_moving_(options.evict && options.slab_reassign),
      instance_(NextInstance()) {
  for (int i = 1; i <= classes_.count(); ++i) {
    slab_classes_[i].chunk_size = classes_.ChunkSize(i);
    slab_classes_[i].per_page = classes_.PerPage(i);
  }
}

ItemStore::~ItemStore() {
  if (mover_.joinable()) {
    {
      absl::MutexLock lock(&mover_mu_);
      stop_mover_ = true;
    }
    mover_.join();
  }
  if (sweeper_.joinable()) {
    {
      absl::MutexLock lock(&flush_mu_);
      stop_sweeper_ = true;
    }
    sweeper_.join();
  }
  index_.StopMaintainer();  // it reads item keys while growing the table
  // Every item lives in the pool's arena, which goes with the pool.
}

bool ItemStore::SizeOk(std::string_view key, uint32_t flags, int64_t exptime,
                       size_t nvalue) const {
  const StoredKey skey(key, layout_.pack_keys());
  const RelTime rel = clock_->ToRelative(exptime);
  return classes_.ClassFor(layout_.ItemSize(skey.bytes().size(), flags, nvalue, rel)) != 0;
}

ItemStore::Liveness ItemStore::Check(const uint8_t* it) const {
  if (Flushed(it)) return Liveness::kFlushed;
  if (clock_->Expired(layout_.Exptime(it))) return Liveness::kExpired;
  return Liveness::kLive;
}

uint8_t* ItemStore::FindLive(uint64_t hash, const StoredKey& key, ThreadStats& stats) {
  uint8_t* it = index_.Find(hash, key);
  if (it == nullptr) return nullptr;
  switch (Check(it)) {
    case Liveness::kLive:
      return it;
    case Liveness::kExpired:
      stats.get_expired.Add();
      break;
    case Liveness::kFlushed:
      stats.get_flushed.Add();
      break;
  }
  Unlink(hash, it);
  return nullptr;
}

template <typename Fn>
auto ItemStore::WithLiveItem(std::string_view key, ThreadStats& stats, Fn fn) {
  MaybeRunPendingFlush();
  const StoredKey skey(key, layout_.pack_keys());
  const uint64_t hash = HashIndex::Hash(skey);
  absl::MutexLock lock(&index_.StripeLock(hash));
  return fn(hash, skey, FindLive(hash, skey, stats));
}

uint8_t* ItemStore::Alloc(int cls, size_t ntotal, const uint8_t* pinned, size_t held_stripe,
                          bool final, size_t* busy_stripe) {
  SlabClass& c = slab_classes_[cls];
  const bool large = classes_.IsLarge(ntotal);
  absl::MutexLock lock(&c.mu);
  // A large item evicts large items (oldest first) for as long as there are
  // any: they, not other classes' pages, pay for it.
  for (int attempt = 0; large || attempt < kAllocTries; ++attempt) {
    if (large) {
      if (uint8_t* it = pool_.AllocLarge(ntotal, /*first_of_class=*/!room_by_moving_ &&
                                                     c.pages == 0 && c.large_bytes == 0,
                                         static_cast<uint8_t>(cls))) {
        c.large_bytes += ntotal;
        page_state_[pool_.SlotOf(it)].last_alloc =
            NextAllocSeq();
        return it;
      }
    } else {
      uint8_t* it = nullptr;
      if (c.free_list != nullptr) {
        it = c.free_list;
        c.free_list = layout_.Next(it);
        --c.free_count;
      } else if (c.cursor_left > 0) {
        it = c.cursor;
        c.cursor += c.chunk_size;
        --c.cursor_left;
      }
      if (it != nullptr) {
        // Counted until Link(): the page mover waits for these.
        PageState& ps = page_state_[pool_.SlotOf(it)];
        ++ps.live;
        ++ps.inflight;
        ps.last_alloc = NextAllocSeq();
        return it;
      }
      if (!c.spare.empty()) {
        c.cursor = c.spare.back();
        c.spare.pop_back();
        c.cursor_left = c.per_page;
        continue;
      }
      if (uint8_t* page = pool_.NewPage(/*first_of_class=*/!room_by_moving_ && c.pages == 0,
                                        static_cast<uint8_t>(cls),
                                        static_cast<uint32_t>(c.chunk_size))) {
        c.cursor = page;
        c.cursor_left = c.per_page;
        c.page_list.push_back(page);
        ++c.pages;
        TakeFromGlobalPool();
        continue;
      }
    }
    // A large item needs bytes back, which only freeing another large item gives.
    if (!ReclaimOrEvictLocked(c, pinned, held_stripe, /*large_only=*/large, busy_stripe)) break;
  }
  if (final) ++c.outofmemory;
  return nullptr;
}

bool ItemStore::ReclaimOrEvictLocked(SlabClass& c, const uint8_t* pinned, size_t held_stripe,
                                     bool large_only, size_t* busy_stripe) {
  // Pass 0 reclaims a dead (expired or flushed) item near the tail.
  int searched = 0;
  for (uint8_t* it = c.tail; it != nullptr && searched < kTailSearch;
       it = layout_.Prev(it), ++searched) {
    if (it == pinned || (large_only && (layout_.Flags(it) & kLarge) == 0)) continue;
    if (TryFreeLocked(c, it, held_stripe, /*evict_live=*/false)) return true;
  }
  if (!options_.evict) return false;
  // Pass 1 evicts the oldest live item, giving active ones a second chance.
  int rescues = 0;
  int busy = 0;
  searched = 0;
  const int search = large_only ? kLargeTailSearch : kTailSearch;
  for (uint8_t* it = c.tail; it != nullptr && searched < search;) {
    uint8_t* prev = layout_.Prev(it);
    if (it == pinned || (large_only && (layout_.Flags(it) & kLarge) == 0)) {
      ++searched;
    } else if (rescues < kMaxRescues && prev != nullptr && TryRescueLocked(c, it, held_stripe)) {
      ++rescues;
    } else if (TryFreeLocked(c, it, held_stripe, /*evict_live=*/true)) {
      return true;
    } else if (busy < kBusyScan) {
      // Its stripe is busy (nothing else fails an eviction): look further.
      if (busy++ == 0 && busy_stripe != nullptr) {
        *busy_stripe = HashIndex::StripeOf(index_.HashOfItem(it));
      }
    } else {
      ++searched;
    }
    it = prev;
  }
  return false;
}

bool ItemStore::TryRescueLocked(SlabClass& c, uint8_t* it, size_t held_stripe) {
  // The flags byte belongs to the item's stripe lock, like the rest of it.
  const size_t stripe = HashIndex::StripeOf(index_.HashOfItem(it));
  absl::Mutex& mu = index_.StripeLockAt(stripe);
  if (stripe != held_stripe && !mu.TryLock()) return false;  // busy: not rescued
  const uint16_t flags = layout_.Flags(it);
  const bool active = (flags & kActive) != 0;
  if (active) {
    layout_.SetFlags(it, flags & ~kActive);
    c.LruUnlink(layout_, it);
    c.LruLink(layout_, it);
  }
  if (stripe != held_stripe) mu.Unlock();
  return active;
}

bool ItemStore::TryFreeLocked(SlabClass& c, uint8_t* it, size_t held_stripe, bool evict_live) {
  const uint64_t hash = index_.HashOfItem(it);
  const size_t stripe = HashIndex::StripeOf(hash);
  absl::Mutex& mu = index_.StripeLockAt(stripe);
  if (stripe != held_stripe && !mu.TryLock()) return false;  // busy: skip it
  const Liveness live = Check(it);
  const bool fetched = (layout_.Flags(it) & kFetched) != 0;
  bool freed = false;
  if (live != Liveness::kLive) {
    ++c.reclaimed;
    if (!fetched && live == Liveness::kExpired) ++c.expired_unfetched;
    freed = true;
  } else if (evict_live) {
    ++c.evicted;
    if (layout_.Exptime(it) != 0) ++c.evicted_nonzero;
    if (!fetched) ++c.evicted_unfetched;
    c.evicted_time = layout_.has_time() ? clock_->Now() - layout_.Time(it) : 0;
    freed = true;
  }
  if (freed) {
    index_.Remove(hash, it);
    ReleaseLocked(c, it);
  }
  if (stripe != held_stripe) mu.Unlock();
  return freed;
}

void ItemStore::ReleaseLocked(SlabClass& c, uint8_t* it) {
  c.LruUnlink(layout_, it);
  --c.items;
  c.bytes -= layout_.TotalSize(it);
  if (pinned_.load(std::memory_order_relaxed) != 0) {
    if (PinEntry* pin = FindPin(HashIndex::StripeOf(index_.HashOfItem(it)), it)) {
      pin->zombie = true;  // a reply is being sent from it: the last Unpin frees it
      if ((layout_.Flags(it) & kLarge) == 0) ++page_state_[pool_.SlotOf(it)].zombies;
      return;
    }
  }
  FreeChunkLocked(c, it);
}

void ItemStore::FreeChunkLocked(SlabClass& c, uint8_t* it) {
  if ((layout_.Flags(it) & kLarge) != 0) {
    const size_t size = layout_.TotalSize(it);
    pool_.FreeLarge(it, size);
    c.large_bytes -= size;
    return;
  }
  --page_state_[pool_.SlotOf(it)].live;
  layout_.SetFlags(it, 0);
  if (c.draining != nullptr && pool_.SlotOf(it) == pool_.SlotOf(c.draining)) {
    c.drain_free[ChunkIndex(c, it)] = true;  // the mover is emptying this page
    return;
  }
  layout_.SetNext(it, c.free_list);
  c.free_list = it;
  ++c.free_count;
}

PinnedValue ItemStore::PinVisited(const ItemView& view) {
  PinEntry& pin = pin_stripes_[view.pin.stripe_].pins[view.pin.item_];
  if (pin.count++ == 0) pinned_.fetch_add(1, std::memory_order_relaxed);
  return PinnedValue{view.value.data(), view.value.size(), view.pin};
}

void ItemStore::Unpin(const PinnedValue& p) {
  absl::MutexLock lock(&index_.StripeLockAt(p.pin.stripe_));
  auto& pins = pin_stripes_[p.pin.stripe_].pins;
  auto found = pins.find(p.pin.item_);
  if (found == pins.end() || --found->second.count > 0) return;
  const bool zombie = found->second.zombie;
  pins.erase(found);
  pinned_.fetch_sub(1, std::memory_order_relaxed);
  if (!zombie) return;
  uint8_t* it = const_cast<uint8_t*>(p.pin.item_);
  SlabClass& c = slab_classes_[ClassOf(it)];
  absl::MutexLock class_lock(&c.mu);
  if ((layout_.Flags(it) & kLarge) == 0) --page_state_[pool_.SlotOf(it)].zombies;
  FreeChunkLocked(c, it);
}

size_t ItemStore::ChunkIndex(const SlabClass& c, const uint8_t* it) const {
  const uint8_t* page = pool_.SlotBase(pool_.SlotOf(it));
  return static_cast<size_t>(it - page) / c.chunk_size;
}

void ItemStore::Link(uint64_t hash, uint8_t* it, uint8_t* old, std::optional<uint64_t> cas) {
  // The epoch is read under the stripe lock, so a flush's sweep of this
  // stripe either comes later and sees this item, or came first and this
  // item carries the new parity.
  const bool odd = (epoch_.load(std::memory_order_acquire) & 1) != 0;
  layout_.SetFlags(it, (layout_.Flags(it) & ~kEpoch) | (odd ? kEpoch : 0));
  layout_.SetCas(it, cas.has_value() ? *cas : options_.cas_enabled ? NextCas() : 0);
  if (old != nullptr) {
    index_.Replace(hash, old, it);
  } else {
    index_.Insert(hash, it);
  }
  {
    SlabClass& c = slab_classes_[ClassOf(it)];
    absl::MutexLock lock(&c.mu);
    if ((layout_.Flags(it) & kLarge) == 0) --page_state_[pool_.SlotOf(it)].inflight;
    c.LruLink(layout_, it);
    ++c.items;
    ++c.total_items;
    c.bytes += layout_.TotalSize(it);
  }
  if (old != nullptr) {
    SlabClass& c = slab_classes_[ClassOf(old)];
    absl::MutexLock lock(&c.mu);
    ReleaseLocked(c, old);
  }
}

void ItemStore::Unlink(uint64_t hash, uint8_t* it) {
  index_.Remove(hash, it);
  SlabClass& c = slab_classes_[ClassOf(it)];
  absl::MutexLock lock(&c.mu);
  ReleaseLocked(c, it);
}

void ItemStore::Bump(uint8_t* it) {
  const uint16_t flags = layout_.Flags(it);
  // Each written only when it changes: a hot item read from many cores
  // keeps its cache line shared.
  if ((flags & kActive) == 0) layout_.SetFlags(it, flags | kActive);
  const RelTime now = clock_->Now();
  if (layout_.Time(it) != now) layout_.SetTime(it, now);
}

uint8_t* ItemStore::SetExptime(uint64_t hash, uint8_t* it, RelTime exptime) {
  return SetExptimeWord(hash, it, compact::ExptimeWord(exptime, layout_.State(it)));
}

uint8_t* ItemStore::SetExptimeWord(uint64_t hash, uint8_t* it, uint32_t word) {
  if (layout_.SetExptimeWord(it, word)) return it;
  // A lean item without an expiry field: rewrite it one field bigger,
  // keeping everything else (CAS, flags, access time, fetched).
  char buf[compact::kMaxKeyLength];
  const StoredKey key(layout_.Key(it, buf), layout_.pack_keys());
  const std::string_view value = layout_.Value(it);
  const size_t ntotal =
      layout_.ItemSize(key.bytes().size(), layout_.ClientFlags(it), value.size(), word);
  const int cls = classes_.ClassFor(ntotal);
  uint8_t* fresh =
      cls == 0 ? nullptr : Alloc(cls, ntotal, it, HashIndex::StripeOf(hash), /*final=*/true);
  if (fresh == nullptr) return nullptr;
  compact::ItemMeta meta;
  meta.class_id = static_cast<uint8_t>(cls);
  meta.flags = static_cast<uint16_t>((layout_.Flags(it) & (kFetched | kActive)) |
                                     (classes_.IsLarge(ntotal) ? kLarge : 0));
  meta.client_flags = layout_.ClientFlags(it);
  meta.time = layout_.Time(it);
  meta.exptime = word & compact::kExptimeMask;
  meta.state = static_cast<uint8_t>(word >> compact::kExptimeBits);
  layout_.Init(fresh, meta, key, value.size(), value.data());
  Link(hash, fresh, it, layout_.Cas(it));
  return fresh;
}

StoreResult ItemStore::Store(StoreMode mode, std::string_view key, uint32_t flags,
                             int64_t exptime, std::string_view value, uint64_t cas_unique,
                             ThreadStats& stats) {
  return MetaStore(mode, key, flags, exptime, value, cas_unique, MetaStoreOptions{}, stats,
                   nullptr);
}

StoreResult ItemStore::MetaStore(StoreMode mode, std::string_view key, uint32_t flags,
                                 int64_t exptime, std::string_view value, uint64_t cas_unique,
                                 const MetaStoreOptions& meta, ThreadStats& stats,
                                 uint64_t* cas_out) {
  MaybeRunPendingFlush();
  if (cas_out != nullptr) *cas_out = 0;
  for (int attempt = 0;; ++attempt) {
    // With evictions on, a store that found no room waits for a page to be
    // freed for it (holding no lock), then starts over.
    const bool final = !options_.evict || attempt == kRoomRetries;
    Need need;
    if (std::optional<StoreResult> r = StoreOnce(mode, key, flags, exptime, value, cas_unique,
                                                 meta, stats, final, &need, cas_out)) {
      return *r;
    }
    if (need.busy_stripe != kNoStripe) {
      // What it would have evicted is under a stripe lock that another store
      // holds while it waits for the class lock this one just let go of:
      // wait for that store (holding nothing) rather than retry at once —
      // on one CPU an immediate retry can run out of retries before the
      // other store is scheduled at all.
      absl::MutexLock wait(&index_.StripeLockAt(need.busy_stripe));
    }
    MakeRoom(need);
  }
}

std::optional<StoreResult> ItemStore::StoreOnce(StoreMode mode, std::string_view key,
                                                uint32_t flags, int64_t exptime,
                                                std::string_view value, uint64_t cas_unique,
                                                const MetaStoreOptions& mopts, ThreadStats& stats,
                                                bool final, Need* need, uint64_t* cas_out) {
  const StoredKey skey(key, layout_.pack_keys());
  RelTime rel_exptime = clock_->ToRelative(exptime);
  const size_t request_size =
      layout_.ItemSize(skey.bytes().size(), flags, value.size(), rel_exptime);
  const int request_class = classes_.ClassFor(request_size);
  if (request_class == 0 || key.size() > compact::kMaxKeyLength) {
    stats.store_too_large.Add();
    return StoreResult::kTooLarge;
  }
  // memcached counts a set once its item is allocated: every outcome but
  // out-of-memory.
  Counter& cmd_set = stats.per_class[request_class].cmd_set;
  const uint64_t hash = HashIndex::Hash(skey);
  const size_t stripe = HashIndex::StripeOf(hash);
  absl::MutexLock lock(&index_.StripeLockAt(stripe));
  uint8_t* old = FindLive(hash, skey, stats);

  std::string_view old_value;
  uint8_t state = mopts.binary_key ? compact::kMetaBinaryKey : 0;
  switch (mode) {
    case StoreMode::kSet:
      break;
    case StoreMode::kAdd:
      if (old != nullptr) {
        cmd_set.Add();
        Bump(old);
        return StoreResult::kNotStored;
      }
      break;
    case StoreMode::kReplace:
      if (old == nullptr) {
        cmd_set.Add();
        return StoreResult::kNotStored;
      }
      break;
    case StoreMode::kAppend:
    case StoreMode::kPrepend:
      if (old == nullptr) {
        cmd_set.Add();
        return StoreResult::kNotStored;
      }
      // A meta append may name the CAS it expects (plain append sends 0);
      // with CAS off memcached has no unique to compare and ignores it.
      if (options_.cas_enabled && cas_unique != 0 && layout_.Cas(old) != cas_unique) {
        cmd_set.Add();
        return StoreResult::kExists;
      }
      // The old item's client flags and expiry stay.
      flags = layout_.ClientFlags(old);
      rel_exptime = layout_.Exptime(old);
      old_value = layout_.Value(old);
      break;
    case StoreMode::kCas:
      if (old == nullptr) {
        cmd_set.Add();
        stats.cas_misses.Add();
        return StoreResult::kNotFound;
      }
      // With CAS off every item's unique is 0 and no cas can succeed (memcached).
      if (!options_.cas_enabled || layout_.Cas(old) != cas_unique) {
        // A meta set with I may replace a newer item with an older value;
        // it keeps the item's expiry and is marked stale (a recache that
        // lost the race). Its win token stays with it.
        if (mopts.invalidate && options_.cas_enabled && cas_unique < layout_.Cas(old)) {
          rel_exptime = layout_.Exptime(old);
          state |= static_cast<uint8_t>(compact::kMetaStale |
                                        (layout_.State(old) & compact::kMetaWinSent));
          break;
        }
        cmd_set.Add();
        stats.per_class[ClassOf(old)].cas_badval.Add();
        return StoreResult::kExists;
      }
      break;
  }

  const size_t nvalue = old_value.size() + value.size();
  const size_t ntotal = layout_.ItemSize(skey.bytes().size(), flags, nvalue,
                                         compact::ExptimeWord(rel_exptime, state));
  const int cls = classes_.ClassFor(ntotal);
  size_t busy_stripe = kNoStripe;
  uint8_t* it = cls == 0 ? nullptr : Alloc(cls, ntotal, old, stripe, final, &busy_stripe);
  if (it == nullptr && cls != 0 && !final) {
    *need = Need{cls, ntotal, busy_stripe == stripe ? kNoStripe : busy_stripe};
    return std::nullopt;  // counted once, by the attempt that ends it
  }
  const bool concat = mode == StoreMode::kAppend || mode == StoreMode::kPrepend;
  if (mode == StoreMode::kCas) {
    cmd_set.Add();
    stats.per_class[ClassOf(old)].cas_hits.Add();
  } else if (it != nullptr || concat) {
    cmd_set.Add();
  }
  if (it == nullptr) {
    if (concat) return StoreResult::kNotStored;  // memcached's reply for a failed append
    stats.store_no_memory.Add();
    if (mode == StoreMode::kSet && old != nullptr) Unlink(hash, old);
    return StoreResult::kNoMemory;
  }
  compact::ItemMeta meta;
  meta.class_id = static_cast<uint8_t>(cls);
  meta.flags = classes_.IsLarge(ntotal) ? kLarge : 0;
  meta.client_flags = flags;
  meta.time = clock_->Now();
  meta.exptime = rel_exptime;
  meta.state = state;
  layout_.Init(it, meta, skey, nvalue, nullptr);
  char* dst = reinterpret_cast<char*>(layout_.ValuePtr(it));
  const std::string_view first = mode == StoreMode::kPrepend ? value : old_value;
  const std::string_view second = mode == StoreMode::kPrepend ? old_value : value;
  if (!first.empty()) std::memcpy(dst, first.data(), first.size());
  if (!second.empty()) std::memcpy(dst + first.size(), second.data(), second.size());
  Link(hash, it, old);
  if (cas_out != nullptr) *cas_out = layout_.Cas(it);
  return StoreResult::kStored;
}

bool ItemStore::Get(std::string_view key, std::optional<int64_t> new_exptime, ThreadStats& stats,
                    absl::FunctionRef<void(const ItemView&)> visit) {
  MaybeRunPendingFlush();
  const StoredKey skey(key, layout_.pack_keys());
  const uint64_t hash = HashIndex::Hash(skey);
  absl::MutexLock lock(&index_.StripeLock(hash));
  // gat/gats count as touches, get/gets as gets (memcached's accounting).
  (new_exptime.has_value() ? stats.touch_cmds : stats.get_cmds).Add();
  uint8_t* it = FindLive(hash, skey, stats);
  if (it == nullptr) {
    if (new_exptime.has_value()) {
      stats.touch_misses.Add();
    } else {
      stats.get_misses.Add();
    }
    return false;
  }
  ClassCounters& per_class = stats.per_class[ClassOf(it)];
  if (new_exptime.has_value()) {
    if (uint8_t* moved = SetExptime(hash, it, clock_->ToRelative(*new_exptime))) it = moved;
    per_class.touch_hits.Add();
  } else {
    per_class.get_hits.Add();
  }
  visit(ItemView{layout_.ClientFlags(it), layout_.Value(it), layout_.Cas(it), PinFor(hash, it)});
  MarkFetched(it);
  Bump(it);
  return true;
}

TouchResult ItemStore::Touch(std::string_view key, int64_t exptime, ThreadStats& stats) {
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey&, uint8_t* it) {
    stats.touch_cmds.Add();
    if (it == nullptr) {
      stats.touch_misses.Add();
      return TouchResult::kNotFound;
    }
    stats.per_class[ClassOf(it)].touch_hits.Add();
    it = SetExptime(hash, it, clock_->ToRelative(exptime));
    if (it == nullptr) return TouchResult::kNoMemory;
    MarkFetched(it);
    Bump(it);
    return TouchResult::kTouched;
  });
}

void ItemStore::Drop(std::string_view key) {
  MaybeRunPendingFlush();
  const StoredKey skey(key, layout_.pack_keys());
  const uint64_t hash = HashIndex::Hash(skey);
  absl::MutexLock lock(&index_.StripeLock(hash));
  if (uint8_t* it = index_.Find(hash, skey)) Unlink(hash, it);
}

void ItemStore::ChargeIndex() {
  if (!options_.index_in_limit) return;
  absl::MutexLock lock(&index_charge_mu_);
  const size_t now = index_.bytes();
  if (now > index_charged_) pool_.ChargeOver(now - index_charged_);
  if (now < index_charged_) pool_.Uncharge(index_charged_ - now);
  index_charged_ = now;
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

bool ItemStore::Delete(std::string_view key, ThreadStats& stats) {
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey&, uint8_t* it) {
    if (it == nullptr) {
      stats.delete_misses.Add();
      return false;
    }
    stats.per_class[ClassOf(it)].delete_hits.Add();
    Unlink(hash, it);
    return true;
  });
}

DeltaResult ItemStore::Delta(std::string_view key, bool incr, uint64_t delta, ThreadStats& stats,
                             char (&out)[kDeltaMaxLength], size_t* out_len) {
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey& skey, uint8_t* it) {
    if (it == nullptr) {
      (incr ? stats.incr_misses : stats.decr_misses).Add();
      return DeltaResult::kNotFound;
    }
    return DeltaLocked(hash, skey, &it, incr, delta, stats, out, out_len);
  });
}

DeltaResult ItemStore::DeltaLocked(uint64_t hash, const StoredKey& skey, uint8_t** item, bool incr,
                                   uint64_t delta, ThreadStats& stats,
                                   char (&out)[kDeltaMaxLength], size_t* out_len) {
  uint8_t* it = *item;
  const size_t stripe = HashIndex::StripeOf(hash);
  const std::string_view old_value = layout_.Value(it);
  uint64_t value = 0;
  if (old_value.empty() || (layout_.Flags(it) & kLarge) != 0 ||
      !ParseStoredNumber(old_value, &value)) {
    return DeltaResult::kNonNumeric;
  }
  if (incr) {
    value += delta;  // wraps at 2^64, as memcached
  } else {
    value = delta > value ? 0 : value - delta;
  }
  ClassCounters& per_class = stats.per_class[ClassOf(it)];
  (incr ? per_class.incr_hits : per_class.decr_hits).Add();

  static_assert(kDeltaMaxLength == compact::kMaxDecimalKey, "both are UINT64_MAX's digits");
  const size_t n = compact::FormatDecimal(value, out);
  *out_len = n;

  // In place unless a reply is being sent from the old bytes.
  if (n <= old_value.size() && FindPin(stripe, it) == nullptr) {
    // In place, padded with spaces to the old length (memcached does this),
    // with a new CAS.
    char* dst = reinterpret_cast<char*>(layout_.ValuePtr(it));
    std::memcpy(dst, out, n);
    std::memset(dst + n, ' ', old_value.size() - n);
    layout_.SetCas(it, options_.cas_enabled ? NextCas() : 0);
    Bump(it);
    return DeltaResult::kOk;
  }
  compact::ItemMeta meta;
  meta.client_flags = layout_.ClientFlags(it);
  meta.time = clock_->Now();
  meta.exptime = layout_.Exptime(it);
  const size_t ntotal = layout_.ItemSize(skey.bytes().size(), meta.client_flags, n, meta.exptime);
  const int cls = classes_.ClassFor(ntotal);
  uint8_t* fresh = Alloc(cls, ntotal, it, stripe, /*final=*/true);
  if (fresh == nullptr) return DeltaResult::kNoMemory;
  meta.class_id = static_cast<uint8_t>(cls);
  layout_.Init(fresh, meta, skey, n, out);
  Link(hash, fresh, it);
  *item = fresh;
  return DeltaResult::kOk;
}

uint8_t* ItemStore::CreateLocked(uint64_t hash, const StoredKey& skey, std::string_view value,
                                 uint8_t state) {
  const size_t ntotal =
      layout_.ItemSize(skey.bytes().size(), 0, value.size(), compact::ExptimeWord(0, state));
  const int cls = classes_.ClassFor(ntotal);
  uint8_t* it =
      cls == 0 ? nullptr : Alloc(cls, ntotal, nullptr, HashIndex::StripeOf(hash), /*final=*/true);
  if (it == nullptr) return nullptr;
  compact::ItemMeta meta;
  meta.class_id = static_cast<uint8_t>(cls);
  meta.flags = classes_.IsLarge(ntotal) ? kLarge : 0;
  meta.time = clock_->Now();
  meta.state = state;
  layout_.Init(it, meta, skey, value.size(), value.data());
  Link(hash, it, nullptr);
  return it;
}

MetaItem ItemStore::MetaView(uint64_t hash, const uint8_t* it, bool created) const {
  MetaItem m;
  m.value = layout_.Value(it);
  m.flags = layout_.ClientFlags(it);
  m.cas = layout_.Cas(it);
  m.exptime = layout_.Exptime(it);
  m.last_access = layout_.Time(it);
  m.has_access_time = layout_.has_time();
  m.fetched = (layout_.Flags(it) & kFetched) != 0;
  m.state = layout_.State(it);
  m.created = created;
  m.class_id = ClassOf(it);
  m.size = layout_.TotalSize(it);
  m.pin = PinFor(hash, it);
  return m;
}

uint8_t* ItemStore::ApplyMetaChange(uint64_t hash, uint8_t* it, const MetaChange& change) {
  const uint32_t word = compact::ExptimeWord(change.exptime.value_or(layout_.Exptime(it)),
                                             change.state.value_or(layout_.State(it)));
  if (word == layout_.ExptimeWord(it)) return it;
  return SetExptimeWord(hash, it, word);
}

MetaGetResult ItemStore::MetaGet(std::string_view key, const MetaGetOptions& options,
                                 ThreadStats& stats,
                                 absl::FunctionRef<MetaChange(const MetaItem&)> visit) {
  const bool count = !options.debug;
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey& skey, uint8_t* it) {
    // mg with T counts as a touch, without as a get (memcached's accounting).
    if (count) (options.touch ? stats.touch_cmds : stats.get_cmds).Add();
    bool created = false;
    if (it == nullptr && options.vivify) {
      // An empty item whose creator has won the recache. (memcached answers a
      // miss when it cannot allocate one.)
      it = CreateLocked(hash, skey, {}, compact::kMetaWinSent);
      created = it != nullptr;
    }
    if (it == nullptr) {
      if (count) (options.touch ? stats.touch_misses : stats.get_misses).Add();
      return MetaGetResult::kMiss;
    }
    if (count) {
      ClassCounters& per_class = stats.per_class[ClassOf(it)];
      (options.touch ? per_class.touch_hits : per_class.get_hits).Add();
    }
    MetaItem view = MetaView(hash, it, created);
    if (created) view.state = 0;  // as it was before this command: nothing
    const MetaChange change = visit(view);
    if (uint8_t* moved = ApplyMetaChange(hash, it, change)) it = moved;
    if (count && options.bump) {
      MarkFetched(it);
      Bump(it);
    }
    return created ? MetaGetResult::kCreated : MetaGetResult::kHit;
  });
}

MetaDeleteResult ItemStore::MetaDelete(std::string_view key, const MetaDeleteOptions& options,
                                       ThreadStats& stats) {
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey&, uint8_t* it) {
    if (it == nullptr) {
      stats.delete_misses.Add();
      return MetaDeleteResult::kNotFound;
    }
    if (options.cas.has_value() && layout_.Cas(it) != *options.cas) {
      stats.delete_misses.Add();
      return MetaDeleteResult::kExists;
    }
    if (options.invalidate) {
      // Stale, with a new CAS; the next mg wins the recache.
      layout_.SetCas(it, options_.cas_enabled ? NextCas() : 0);
      MetaChange change;
      change.exptime = options.exptime;
      change.state = static_cast<uint8_t>((layout_.State(it) | compact::kMetaStale) &
                                          ~compact::kMetaWinSent);
      return ApplyMetaChange(hash, it, change) != nullptr ? MetaDeleteResult::kDeleted
                                                          : MetaDeleteResult::kNoMemory;
    }
    stats.per_class[ClassOf(it)].delete_hits.Add();
    Unlink(hash, it);
    return MetaDeleteResult::kDeleted;
  });
}

DeltaResult ItemStore::MetaDelta(std::string_view key, bool incr, uint64_t delta,
                                 const MetaDeltaOptions& options, ThreadStats& stats,
                                 char (&out)[kDeltaMaxLength], size_t* out_len,
                                 absl::FunctionRef<MetaChange(const MetaItem&)> visit) {
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey& skey, uint8_t* it) {
    bool created = false;
    if (it == nullptr) {
      if (!options.vivify) {
        (incr ? stats.incr_misses : stats.decr_misses).Add();
        return DeltaResult::kNotFound;
      }
      const size_t n = compact::FormatDecimal(options.initial, out);
      *out_len = n;
      it = CreateLocked(hash, skey, std::string_view(out, n), 0);
      if (it == nullptr) return DeltaResult::kNoMemory;
      created = true;
    } else {
      // C0 matches anything (memcached). An empty or large value is not a
      // number whatever the CAS: memcached looks at the value first.
      if (options.cas.has_value() && *options.cas != 0 && layout_.Cas(it) != *options.cas &&
          !layout_.Value(it).empty() && (layout_.Flags(it) & kLarge) == 0) {
        return DeltaResult::kExists;
      }
      const DeltaResult r = DeltaLocked(hash, skey, &it, incr, delta, stats, out, out_len);
      if (r != DeltaResult::kOk) return r;
    }
    const MetaChange change = visit(MetaView(hash, it, created));
    ApplyMetaChange(hash, it, change);
    return DeltaResult::kOk;
  });
}

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
  mover_ = std::thread([this] { MoverLoop(); });
}

void ItemStore::FlushNow() {
  absl::MutexLock flush(&flush_mu_);
  // The previous flush's sweep must be done, not just started: flipping the
  // parity back before then would bring its unswept items back to life.
  flush_mu_.Await(absl::Condition(
      +[](ItemStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->flush_mu_) {
        return !s->sweep_pending_;
      },
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
  absl::MutexLock flush(&flush_mu_);
  for (;;) {
    flush_mu_.Await(absl::Condition(
        +[](ItemStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->flush_mu_) {
          return s->sweep_pending_ || s->stop_sweeper_;
        },
        this));
    if (stop_sweeper_) return;
    SweepLocked();
    sweep_pending_ = false;
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
    out.push_back(s);
  }
  return out;
}

EngineStats ItemStore::engine_stats() const {
  EngineStats s;
  s.kind = EngineKind::kSlabs;
  s.hash_power_level = index_.hashpower();
  s.hash_bytes = index_.bytes();
  s.hash_expanding = index_.expanding();
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
    const size_t stripe = HashIndex::StripeOf(index_.HashOfItem(it));
    absl::Mutex& mu = index_.StripeLockAt(stripe);
    if (!mu.TryLock()) continue;
    if (Check(it) == Liveness::kLive) {
      char buf[compact::kMaxKeyLength];
      ItemInfo info;
      info.key = layout_.Key(it, buf);
      info.value_bytes = layout_.ValueLength(it);
      info.total_bytes = layout_.TotalSize(it);
      info.exptime = layout_.Exptime(it);
      info.last_access = layout_.Time(it);
      info.cas = layout_.Cas(it);
      info.fetched = (layout_.Flags(it) & kFetched) != 0;
      info.cls = cls;
      visit(info);
      ++visited;
    }
    mu.Unlock();
  }
  return visited;
}

void ItemStore::ResetStats() {
  for (int i = 1; i <= classes_.count(); ++i) {
    SlabClass& c = slab_classes_[i];
    absl::MutexLock lock(&c.mu);
    c.total_items = 0;
    c.evicted = c.evicted_nonzero = c.evicted_unfetched = 0;
    c.outofmemory = c.reclaimed = c.expired_unfetched = 0;
  }
}

}  // namespace tinycached::core
