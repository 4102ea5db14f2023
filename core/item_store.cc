// core/item_store.cc — ItemStore's creation and its keyed commands: store,
// get, touch, delete, incr/decr and the meta commands, each under its key's
// stripe lock. Chunks, the LRU and eviction are in core/item_alloc.cc; flush,
// the dead-item crawl and reporting in core/item_upkeep.cc; page moves in
// core/page_mover.cc.
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

}  // namespace

namespace {

compact::LayoutOptions LayoutOptionsFor(const StoreOptions& o, int page_bytes,
                                        const compact::Arena* arena) {
  compact::LayoutOptions l;
  l.refs =
      page_bytes == 0 ? compact::RefCodec::Pointer() : compact::RefCodec::Page(page_bytes, arena);
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
      instance_(NextInstance()),
      mover_(*this, options) {
  for (int i = 1; i <= classes_.count(); ++i) {
    slab_classes_[i].chunk_size = classes_.ChunkSize(i);
    slab_classes_[i].per_page = classes_.PerPage(i);
  }
}

ItemStore::~ItemStore() {
  StopMaintenance();  // the index maintainer reads item keys while it grows the table
  // Every item lives in the pool's arena, which goes with the pool.
}

void ItemStore::StopMaintenance() {
  mover_.Stop();
  if (sweeper_.joinable()) {
    crawl_abort_.store(true, std::memory_order_relaxed);  // a crawl under way ends early
    {
      absl::MutexLock lock(&flush_mu_);
      stop_sweeper_ = true;
    }
    sweeper_.join();
    crawl_abort_.store(false, std::memory_order_relaxed);
  }
  {
    absl::MutexLock lock(&flush_mu_);
    // A crawl the sweeper had not begun is dropped: it only reclaims.
    if (crawl_pending_) {
      crawl_pending_ = false;
      crawl_classes_.clear();
      crawl_running_.store(false, std::memory_order_release);
    }
    // A sweep the sweeper had not started yet is done here: a flushed item
    // must not outlive its flush by sitting in a stopped store.
    if (sweep_pending_) {
      SweepLocked();
      sweep_pending_ = false;
    }
  }
  index_.StopMaintainer();
}

bool ItemStore::SizeOk(std::string_view key, uint32_t flags, int64_t exptime, size_t nvalue) const {
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

template <typename Op>
auto ItemStore::WithRoom(Op op) {
  for (int attempt = 0;; ++attempt) {
    const bool final = !options_.evict || attempt == kRoomRetries;
    Need need;
    auto r = op(final, &need);
    if (need.cls == 0) return r;
    if (need.busy_stripe != kNoStripe) {
      // What it would have evicted is under a stripe lock that another store
      // holds while it waits for the class lock this one just let go of:
      // wait for that store (holding nothing) rather than retry at once —
      // on one CPU an immediate retry can run out of retries before the
      // other store is scheduled at all.
      absl::MutexLock wait(&index_.StripeLockAt(need.busy_stripe));
    }
    mover_.MakeRoom(need.cls, need.ntotal, need.keep);
  }
}

StoreResult ItemStore::Store(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                             std::string_view value, uint64_t cas_unique, ThreadStats& stats) {
  return MetaStore(mode, key, flags, exptime, value, cas_unique, MetaStoreOptions{}, stats,
                   nullptr);
}

StoreResult ItemStore::MetaStore(StoreMode mode, std::string_view key, uint32_t flags,
                                 int64_t exptime, std::string_view value, uint64_t cas_unique,
                                 const MetaStoreOptions& meta, ThreadStats& stats,
                                 uint64_t* cas_out) {
  MaybeRunPendingFlush();
  if (cas_out != nullptr) *cas_out = 0;
  const StoreResult r = WithRoom([&](bool final, Need* need) {
    return StoreOnce(mode, key, flags, exptime, value, cas_unique, meta, stats, final, need,
                     cas_out);
  });
  // A set that cannot be stored leaves no stale value behind (memcached).
  if (r == StoreResult::kTooLarge && mode == StoreMode::kSet) Drop(key);
  return r;
}

StoreResult ItemStore::StoreOnce(StoreMode mode, std::string_view key, uint32_t flags,
                                 int64_t exptime, std::string_view value, uint64_t cas_unique,
                                 const MetaStoreOptions& mopts, ThreadStats& stats, bool final,
                                 Need* need, uint64_t* cas_out) {
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
    return StoreResult::kNoMemory;  // not counted: the attempt that ends it counts
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
  if (mopts.restored_cas != 0 && options_.cas_enabled) {
    // Uniques handed out from now on are above every restored one.
    uint64_t counter = cas_counter_.load(std::memory_order_relaxed);
    while (counter < mopts.restored_cas &&
           !cas_counter_.compare_exchange_weak(counter, mopts.restored_cas,
                                               std::memory_order_relaxed)) {
    }
    Link(hash, it, old, mopts.restored_cas);
  } else {
    Link(hash, it, old);
  }
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
  return WithRoom([&](bool final, Need* need) {
    return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey& skey, uint8_t* it) {
      if (it == nullptr) {
        (incr ? stats.incr_misses : stats.decr_misses).Add();
        return DeltaResult::kNotFound;
      }
      return DeltaLocked(hash, skey, &it, incr, delta, stats, out, out_len, final, need);
    });
  });
}

DeltaResult ItemStore::DeltaLocked(uint64_t hash, const StoredKey& skey, uint8_t** item, bool incr,
                                   uint64_t delta, ThreadStats& stats, char (&out)[kDeltaMaxLength],
                                   size_t* out_len, bool final, Need* need) {
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
  Counter& hits = incr ? per_class.incr_hits : per_class.decr_hits;

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
    hits.Add();
    return DeltaResult::kOk;
  }
  compact::ItemMeta meta;
  meta.client_flags = layout_.ClientFlags(it);
  meta.time = clock_->Now();
  meta.exptime = layout_.Exptime(it);
  const size_t ntotal = layout_.ItemSize(skey.bytes().size(), meta.client_flags, n, meta.exptime);
  const int cls = classes_.ClassFor(ntotal);
  size_t busy_stripe = kNoStripe;
  uint8_t* fresh = Alloc(cls, ntotal, it, stripe, final, &busy_stripe);
  if (fresh == nullptr && !final) {
    // Not counted yet: the attempt that ends it counts.
    *need = Need{cls, ntotal, busy_stripe == stripe ? kNoStripe : busy_stripe, it};
    return DeltaResult::kNoMemory;
  }
  hits.Add();  // memcached counts a hit whether or not the new value fits
  if (fresh == nullptr) return DeltaResult::kNoMemory;
  meta.class_id = static_cast<uint8_t>(cls);
  layout_.Init(fresh, meta, skey, n, out);
  Link(hash, fresh, it);
  *item = fresh;
  return DeltaResult::kOk;
}

uint8_t* ItemStore::CreateLocked(uint64_t hash, const StoredKey& skey, std::string_view value,
                                 uint8_t state, bool final, Need* need) {
  const size_t ntotal =
      layout_.ItemSize(skey.bytes().size(), 0, value.size(), compact::ExptimeWord(0, state));
  const int cls = classes_.ClassFor(ntotal);
  const size_t stripe = HashIndex::StripeOf(hash);
  size_t busy_stripe = kNoStripe;
  uint8_t* it = cls == 0 ? nullptr : Alloc(cls, ntotal, nullptr, stripe, final, &busy_stripe);
  if (it == nullptr) {
    if (cls != 0 && !final) {
      *need = Need{cls, ntotal, busy_stripe == stripe ? kNoStripe : busy_stripe};
    }
    return nullptr;
  }
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
      it = CreateLocked(hash, skey, {}, compact::kMetaWinSent, /*final=*/true, nullptr);
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
      change.state =
          static_cast<uint8_t>((layout_.State(it) | compact::kMetaStale) & ~compact::kMetaWinSent);
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
  return WithRoom([&](bool final, Need* need) {
    return MetaDeltaOnce(key, incr, delta, options, stats, out, out_len, visit, final, need);
  });
}

DeltaResult ItemStore::MetaDeltaOnce(std::string_view key, bool incr, uint64_t delta,
                                     const MetaDeltaOptions& options, ThreadStats& stats,
                                     char (&out)[kDeltaMaxLength], size_t* out_len,
                                     absl::FunctionRef<MetaChange(const MetaItem&)> visit,
                                     bool final, Need* need) {
  return WithLiveItem(key, stats, [&](uint64_t hash, const StoredKey& skey, uint8_t* it) {
    bool created = false;
    if (it == nullptr) {
      if (!options.vivify) {
        (incr ? stats.incr_misses : stats.decr_misses).Add();
        return DeltaResult::kNotFound;
      }
      const size_t n = compact::FormatDecimal(options.initial, out);
      *out_len = n;
      it = CreateLocked(hash, skey, std::string_view(out, n), 0, final, need);
      if (it == nullptr) return DeltaResult::kNoMemory;
      created = true;
    } else {
      // C0 matches anything (memcached). An empty or large value is not a
      // number whatever the CAS: memcached looks at the value first.
      if (options.cas.has_value() && *options.cas != 0 && layout_.Cas(it) != *options.cas &&
          !layout_.Value(it).empty() && (layout_.Flags(it) & kLarge) == 0) {
        return DeltaResult::kExists;
      }
      const DeltaResult r =
          DeltaLocked(hash, skey, &it, incr, delta, stats, out, out_len, final, need);
      if (r != DeltaResult::kOk) return r;
    }
    const MetaChange change = visit(MetaView(hash, it, created));
    ApplyMetaChange(hash, it, change);
    return DeltaResult::kOk;
  });
}

}  // namespace tinycached::core
