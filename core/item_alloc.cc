// core/item_alloc.cc — where ItemStore's items get their memory and how they
// leave it: chunks from a class's free list, cursor or a new page; the LRU
// (link, unlink, second-chance bump); eviction and reclaiming from the tail;
// pins that keep a value in place while a reply sends it. Lock order as in
// core/item_store.h: a stripe lock, then a class lock; eviction only
// TryLock()s victims' stripes.
#include <algorithm>

#include "core/item_store.h"

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

uint8_t* ItemStore::Alloc(int cls, size_t ntotal, const uint8_t* pinned, size_t held_stripe,
                          bool final, size_t* busy_stripe) {
  SlabClass& c = slab_classes_[cls];
  const bool large = classes_.IsLarge(ntotal);
  absl::MutexLock lock(&c.mu);
  // A large item evicts large items (oldest first) for as long as there are
  // any: they, not other classes' pages, pay for it.
  for (int attempt = 0; large || attempt < kAllocTries; ++attempt) {
    if (large) {
      if (uint8_t* it = pool_.AllocLarge(ntotal, /*first_of_class=*/!mover_.room_by_moving() &&
                                                     c.pages == 0 && c.large_bytes == 0,
                                         static_cast<uint8_t>(cls))) {
        c.large_bytes += ntotal;
        page_state_[pool_.SlotOf(it)].last_alloc = NextAllocSeq();
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
      if (uint8_t* page =
              pool_.NewPage(/*first_of_class=*/!mover_.room_by_moving() && c.pages == 0,
                            static_cast<uint8_t>(cls), static_cast<uint32_t>(c.chunk_size))) {
        c.cursor = page;
        c.cursor_left = c.per_page;
        c.page_list.push_back(page);
        ++c.pages;
        mover_.TakeFromGlobalPool();
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

bool ItemStore::TryFreeLocked(SlabClass& c, uint8_t* it, size_t held_stripe, bool evict_live,
                              bool by_crawler) {
  const uint64_t hash = index_.HashOfItem(it);
  const size_t stripe = HashIndex::StripeOf(hash);
  absl::Mutex& mu = index_.StripeLockAt(stripe);
  if (stripe != held_stripe && !mu.TryLock()) return false;  // busy: skip it
  const Liveness live = Check(it);
  const bool fetched = (layout_.Flags(it) & kFetched) != 0;
  bool freed = false;
  if (live != Liveness::kLive) {
    ++(by_crawler ? c.crawler_reclaimed : c.reclaimed);
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

uint8_t* ItemStore::TakeRawPage() {
  uint8_t* page =
      pool_.NewPage(/*first_of_class=*/false, 0, static_cast<uint32_t>(classes_.page_size()));
  if (page != nullptr) mover_.TakeFromGlobalPool();
  return page;
}

void ItemStore::ReturnRawPage(uint8_t* page) { pool_.FreePage(page); }

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

}  // namespace tinycached::core
