#include "core/tiny_store.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace tinycached::core {

namespace ct = compact::tiny;

namespace {

// Counters of the store's own moves (a promotion is not a client's set).
ThreadStats& Scratch() {
  thread_local ThreadStats scratch;
  return scratch;
}

// The inline per-class counters: class 0, which no slab class uses.
ClassCounters& Inline(ThreadStats& stats) { return stats.per_class[0]; }

// The text of value code `code` of tagged key `k`.
std::string_view Text(const ct::TinyKey& k, const ct::SlotValue& v, char (&buf)[ct::kMaxText]) {
  return {buf, ct::DecodeValue(v, ct::ValueBits(ct::ClassOfKey(k)), buf)};
}

// The text incr/decr (`delta`) makes of `old_text`, as memcached makes it:
// a result no longer than the old text is written over it, padded with
// spaces to the old length; a longer one replaces it. The digits go to
// out[0, *out_len), the padding after them, so the new text is
// out[0, returned length). False if the old text is no number.
bool NextCount(std::string_view old_text, bool incr, uint64_t delta,
               char (&out)[Engine::kDeltaMaxLength], size_t* out_len, std::string_view* new_text) {
  uint64_t value = 0;
  if (old_text.empty() || !ParseStoredNumber(old_text, &value)) return false;
  if (incr) {
    value += delta;  // wraps at 2^64, as memcached
  } else {
    value = delta > value ? 0 : value - delta;
  }
  const size_t n = compact::FormatDecimal(value, out);
  *out_len = n;
  static_assert(ct::kMaxText <= Engine::kDeltaMaxLength, "an old text's length fits in out");
  const size_t len = std::max(n, old_text.size());
  std::memset(out + n, ' ', len - n);
  *new_text = std::string_view(out, len);
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The bytes of table an inline value takes: one slot, or a wide pair.
size_t SlotBytes(const ct::TinyKey& k, const ct::SlotValue& v) {
  return (ct::WideValue(k.cls, v) ? 2 : 1) * sizeof(uint64_t);
}
size_t SlotBytes(const ct::TinyKey& k, std::string_view text) {
  ct::SlotValue v;
  ct::EncodeValue(text, ct::ValueBits(ct::ClassOfKey(k)), &v);
  return SlotBytes(k, v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TinyStore>> TinyStore::Create(const StoreOptions& options,
                                                             const Clock* clock) {
  StoreOptions slab_options = options;
  slab_options.engine = EngineKind::kSlabs;
  slab_options.index_in_limit = true;
  absl::StatusOr<std::unique_ptr<ItemStore>> overflow = ItemStore::Create(slab_options, clock);
  if (!overflow.ok()) return overflow.status();
  return std::unique_ptr<TinyStore>(new TinyStore(options, clock, *std::move(overflow)));
}

TinyStore::TinyStore(const StoreOptions& options, const Clock* clock,
                     std::unique_ptr<ItemStore> overflow)
    : options_(options),
      clock_(clock),
      overflow_(std::move(overflow)),
      table_(options.slabs.page_size, options.memory_limit / options.slabs.page_size + 2, this),
      key_locks_(new KeyStripe[kKeyLocks]) {
  overflow_->SetRoomDonor([this] { return table_.ReleasePage(); });
  overflow_->ChargeIndex();
}

TinyStore::~TinyStore() { overflow_->SetRoomDonor(nullptr); }

void TinyStore::MaybeRunPendingFlush() {
  RelTime due = pending_flush_.load(std::memory_order_relaxed);
  if (due != 0 && clock_->Now() >= due &&
      pending_flush_.compare_exchange_strong(due, 0, std::memory_order_relaxed)) {
    table_.Clear();
  }
}

namespace {

// What a counter gained since `mark`, and `mark` moved up to it. A counter
// below its mark was reset ("stats reset"): all of it is new.
uint64_t Since(std::atomic<uint64_t>& mark, uint64_t now) {
  const uint64_t then = mark.exchange(now, std::memory_order_relaxed);
  return now >= then ? now - then : now;
}

}  // namespace

// Memory follows evictions, in both directions, by one rule: when one side
// has evicted kPullEvery items since it last looked, and the other side
// evicted fewer over the same stretch, a page moves to the side that evicts
// more. The table takes the overflow store's stalest page; the overflow
// store takes a page of the table (merging buckets, CLOCK choosing what
// stays). So neither side keeps memory that the other's traffic needs: the
// pages of a filled table go to text-keyed items when those come (the size
// shift of experiments/shift.py).

void TinyStore::AfterPut(TinyTable::PutResult r) {
  // Counted per thread, as AfterOverflowStore counts (the table's eviction
  // count is a sum over its stripes, too dear to read on every eviction).
  thread_local uint64_t evicted = 0;
  if (r != TinyTable::PutResult::kEvicted || ++evicted % kPullEvery != 0) return;
  const uint64_t ours = Since(table_mark_, table_.evictions());
  const uint64_t theirs = Since(overflow_mark_, overflow_->Totals().evictions);
  if (theirs < ours) overflow_->ReleaseStalestPage();
}

void TinyStore::AfterOverflowStore() {
  // The overflow store's eviction count is a sum over its classes; it is
  // read every kCheckEvery stores of this thread, not on each (a counter of
  // the thread's own: a shared one would be one more contended line on
  // every text-keyed set).
  thread_local uint64_t stores = 0;
  if (++stores % kCheckEvery != 0) return;
  const uint64_t now = overflow_->Totals().evictions;
  const uint64_t mark = overflow_mark_.load(std::memory_order_relaxed);
  if (now >= mark && now - mark < kPullEvery) return;
  const uint64_t theirs = Since(overflow_mark_, now);
  const uint64_t ours = Since(table_mark_, table_.evictions());
  if (ours < theirs) table_.ReleasePage();
}

StoreResult TinyStore::OverflowStore(StoreMode mode, std::string_view key, uint32_t flags,
                                     int64_t exptime, std::string_view value, uint64_t cas_unique,
                                     ThreadStats& stats) {
  const StoreResult r = overflow_->Store(mode, key, flags, exptime, value, cas_unique, stats);
  AfterOverflowStore();
  return r;
}

bool TinyStore::ShapeOf(std::string_view key, KeyShape* shape) const {
  // The number is the key's last run of digits, so a prefix ends in a
  // non-digit and each key splits one way only.
  size_t start = key.size();
  while (start > 0 && IsDigit(key[start - 1])) --start;
  if (start == key.size() || !ct::ParseDecimal(key.substr(start), &shape->n)) return false;
  shape->prefix = key.substr(0, start);
  if (shape->prefix.empty()) return ct::IntKey(shape->n, table_.min_addr_bits(), &shape->key);
  if (shape->prefix.size() > KeyPrefixes::kMaxPrefixLength) return false;
  ct::TinyKey k;
  // Any id will do to ask whether a class holds the number.
  if (!ct::PrefixedKey(0, shape->n, table_.min_addr_bits(), &k)) return false;
  shape->prefix_hash = KeyPrefixes::Hash(shape->prefix);
  return true;
}

void TinyStore::Prefetch(std::string_view key) const {
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->Prefetch(key);
  ct::TinyKey k = shape.key;
  if (!shape.prefix.empty()) {
    const std::optional<uint32_t> id = prefixes_.Find(shape.prefix, shape.prefix_hash);
    if (!id.has_value() || !ct::PrefixedKey(*id, shape.n, table_.min_addr_bits(), &k)) return;
  }
  table_.Prefetch(k);
}

bool TinyStore::Resolve(const KeyShape& s, ThreadStats& stats, ct::TinyKey* k) const {
  if (s.prefix.empty()) {
    *k = s.key;
    return true;
  }
  const int bits = table_.min_addr_bits();
  const std::optional<uint32_t> id = prefixes_.Find(s.prefix, s.prefix_hash);
  (id.has_value() ? stats.prefix_hits : stats.prefix_misses).Add();
  return id.has_value() && ct::PrefixedKey(*id, s.n, bits, k);
}

bool TinyStore::ResolveForStore(const KeyShape& s, uint32_t flags, int64_t exptime,
                                std::string_view value, ThreadStats& stats, ct::TinyKey* k) {
  if (Resolve(s, stats, k)) return true;
  if (s.prefix.empty() || prefixes_.full()) return false;
  // Would the item go inline, were its prefix known? (Any id will do: the
  // class depends on the number only.)
  ct::TinyKey probe;
  ct::SlotValue code;
  if (!ct::PrefixedKey(0, s.n, table_.min_addr_bits(), &probe) ||
      !Inlinable(probe, flags, exptime, value, &code)) {
    return false;
  }
  const std::optional<uint32_t> id = prefixes_.Learn(s.prefix, s.prefix_hash);
  return id.has_value() && ct::PrefixedKey(*id, s.n, table_.min_addr_bits(), k);
}

std::string TinyStore::KeyText(const ct::TinyKey& k) const {
  char digits[compact::kMaxDecimalKey];
  if (!ct::IsPrefixed(ct::ClassOfKey(k))) {
    return std::string(digits, compact::FormatDecimal(ct::KeyNumber(k), digits));
  }
  uint32_t id = 0;
  uint64_t n = 0;
  ct::SplitPrefixed(k, table_.min_addr_bits(), &id, &n);
  std::string text(prefixes_.Prefix(id));
  text.append(digits, compact::FormatDecimal(n, digits));
  return text;
}

bool TinyStore::Promote(std::string_view key, const ct::TinyKey& k, std::string_view text) {
  if (OverflowStore(StoreMode::kSet, key, 0, 0, text, 0, Scratch()) != StoreResult::kStored) {
    return false;
  }
  table_.Erase(k);
  return true;
}

StoreResult TinyStore::Store(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                             std::string_view value, uint64_t cas_unique, ThreadStats& stats) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) {
    return OverflowStore(mode, key, flags, exptime, value, cas_unique, stats);
  }
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!ResolveForStore(shape, flags, exptime, value, stats, &k)) {
    return OverflowStore(mode, key, flags, exptime, value, cas_unique, stats);
  }
  ct::SlotValue code;
  const bool inlinable = Inlinable(k, flags, exptime, value, &code);
  ct::SlotValue old;
  const bool present = table_.Peek(k, &old);
  auto put_inline = [&]() -> bool {
    const TinyTable::PutResult r = table_.Put(k, code);
    if (r == TinyTable::PutResult::kNoRoom) return false;
    Inline(stats).cmd_set.Add();
    std::atomic<uint64_t>& stores = KeyStripeOf(shape).inline_stores;
    stores.store(stores.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    AfterPut(r);
    return true;
  };
  switch (mode) {
    case StoreMode::kSet:
      if (inlinable && put_inline()) {
        if (!present) overflow_->Drop(key);
        return StoreResult::kStored;
      }
      break;
    case StoreMode::kAdd:
      if (present) {
        Inline(stats).cmd_set.Add();
        return StoreResult::kNotStored;
      }
      if (inlinable) {
        bool exists = false;
        overflow_->Get(key, std::nullopt, Scratch(), [&](const ItemView&) { exists = true; });
        if (exists) {
          Inline(stats).cmd_set.Add();
          return StoreResult::kNotStored;
        }
        if (put_inline()) return StoreResult::kStored;
      }
      return OverflowStore(mode, key, flags, exptime, value, cas_unique, stats);
    case StoreMode::kReplace:
      if (!present) return OverflowStore(mode, key, flags, exptime, value, cas_unique, stats);
      if (inlinable && put_inline()) return StoreResult::kStored;
      {
        const StoreResult r =
            OverflowStore(StoreMode::kSet, key, flags, exptime, value, cas_unique, stats);
        if (r == StoreResult::kStored) table_.Erase(k);
        return r;
      }
    case StoreMode::kAppend:
    case StoreMode::kPrepend:
    case StoreMode::kCas:
      if (present) {
        char buf[ct::kMaxText];
        if (!Promote(key, k, Text(k, old, buf))) {
          stats.store_no_memory.Add();
          return StoreResult::kNoMemory;
        }
      }
      return OverflowStore(mode, key, flags, exptime, value, cas_unique, stats);
  }
  // A set that does not go inline: the overflow store's, and no inline copy
  // survives it (a failed set drops the old value too).
  const StoreResult r = OverflowStore(mode, key, flags, exptime, value, cas_unique, stats);
  if (present) table_.Erase(k);
  return r;
}

namespace {

void VisitInline(std::string_view text, absl::FunctionRef<void(const ItemView&)> visit) {
  ItemView view{};
  view.flags = 0;
  view.value = text;
  view.cas = 0;
  visit(view);
}

}  // namespace

bool TinyStore::Get(std::string_view key, std::optional<int64_t> new_exptime, ThreadStats& stats,
                    absl::FunctionRef<void(const ItemView&)> visit) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->Get(key, new_exptime, stats, visit);
  if (new_exptime.has_value()) return GetAndTouch(key, shape, *new_exptime, stats, visit);
  // No key lock (see Locks in the header): the table, the overflow store,
  // the table again.
  ct::TinyKey k;
  bool resolved = Resolve(shape, stats, &k);
  ct::SlotValue code;
  bool inline_hit = resolved && table_.Get(k, &code);
  if (!inline_hit) {
    if (overflow_->Get(key, std::nullopt, stats, visit)) return true;
    if (!resolved) resolved = Resolve(shape, Scratch(), &k);
    if (!resolved || !table_.Get(k, &code)) return false;
    // Moved into the table meanwhile: the overflow store's miss was none.
    stats.get_cmds.Sub();
    stats.get_misses.Sub();
  }
  char buf[ct::kMaxText];
  stats.get_cmds.Add();
  Inline(stats).get_hits.Add();
  VisitInline(Text(k, code, buf), visit);
  return true;
}

bool TinyStore::GetAndTouch(std::string_view key, const KeyShape& shape, int64_t exptime,
                            ThreadStats& stats, absl::FunctionRef<void(const ItemView&)> visit) {
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, stats, &k)) return overflow_->Get(key, exptime, stats, visit);
  ct::SlotValue code;
  if (!table_.Get(k, &code)) return overflow_->Get(key, exptime, stats, visit);
  char buf[ct::kMaxText];
  const std::string_view text = Text(k, code, buf);
  // gat with an expiry: the item needs one, so it moves to the overflow store.
  if (exptime != 0 && Promote(key, k, text)) return overflow_->Get(key, exptime, stats, visit);
  stats.touch_cmds.Add();
  Inline(stats).touch_hits.Add();
  VisitInline(text, visit);
  return true;
}

TouchResult TinyStore::Touch(std::string_view key, int64_t exptime, ThreadStats& stats) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->Touch(key, exptime, stats);
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, stats, &k)) return overflow_->Touch(key, exptime, stats);
  ct::SlotValue code;
  if (!table_.Get(k, &code)) return overflow_->Touch(key, exptime, stats);
  if (exptime == 0) {
    stats.touch_cmds.Add();
    Inline(stats).touch_hits.Add();
    return TouchResult::kTouched;
  }
  char buf[ct::kMaxText];
  if (!Promote(key, k, Text(k, code, buf))) return TouchResult::kNoMemory;
  return overflow_->Touch(key, exptime, stats);
}

bool TinyStore::Delete(std::string_view key, ThreadStats& stats) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->Delete(key, stats);
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, stats, &k)) return overflow_->Delete(key, stats);
  if (table_.Erase(k)) {
    Inline(stats).delete_hits.Add();
    return true;
  }
  return overflow_->Delete(key, stats);
}

void TinyStore::Drop(std::string_view key) {
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->Drop(key);
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, Scratch(), &k)) return overflow_->Drop(key);
  table_.Erase(k);
  overflow_->Drop(key);
}

size_t TinyStore::VisitItems(int cls, size_t limit,
                             absl::FunctionRef<void(const ItemInfo&)> visit) {
  if (cls != 0) return overflow_->VisitItems(cls, limit, visit);
  MaybeRunPendingFlush();
  // A bucket at a time, so each stripe lock is held only while its 8 slots
  // are copied; the callback runs with no table lock held.
  struct Inline {
    ct::TinyKey key;
    ct::SlotValue code;
    bool referenced;
  };
  std::vector<Inline> batch;
  size_t cursor = 0;
  size_t visited = 0;
  while (visited < limit) {
    batch.clear();
    const size_t before = cursor;
    table_.ForEach(&cursor, std::min<size_t>(limit - visited, 4096),
                   [&](const ct::TinyKey& key, const ct::SlotValue& code, bool referenced) {
                     batch.push_back({key, code, referenced});
                   });
    for (const Inline& item : batch) {
      if (visited == limit) break;
      const std::string key = KeyText(item.key);
      char buf[ct::kMaxText];
      ItemInfo info;
      info.key = key;
      info.value = Text(item.key, item.code, buf);
      info.value_bytes = info.value.size();
      info.total_bytes = SlotBytes(item.key, item.code);
      info.fetched = item.referenced;
      visit(info);
      ++visited;
    }
    if (cursor == before) break;  // the table's end
  }
  return visited;
}

void TinyStore::ExportItems(absl::FunctionRef<void(const ItemInfo&)> visit) {
  MaybeRunPendingFlush();
  // The overflow store's items first: stored back into a table already
  // grown over the whole budget, they would make it give pages back, and
  // evict slots, to make room for them.
  overflow_->ExportItems(visit);
  size_t cursor = 0;
  for (;;) {
    const size_t before = cursor;
    table_.ForEach(&cursor, 4096,
                   [&](const ct::TinyKey& key, const ct::SlotValue& code, bool referenced) {
                     const std::string text = KeyText(key);
                     char buf[ct::kMaxText];
                     ItemInfo info;
                     info.key = text;
                     info.value = Text(key, code, buf);
                     info.value_bytes = info.value.size();
                     info.total_bytes = SlotBytes(key, code);
                     info.fetched = referenced;
                     visit(info);
                   });
    if (cursor == before) break;  // the table's end
  }
}

std::vector<std::string> TinyStore::LearnedPrefixes() const {
  std::vector<std::string> out;
  for (size_t id = 0; id < prefixes_.size(); ++id) {
    out.emplace_back(prefixes_.Prefix(static_cast<uint32_t>(id)));
  }
  return out;
}

void TinyStore::TeachPrefixes(const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes) prefixes_.Teach(p);
}

size_t TinyStore::ReclaimDead(size_t budget) {
  MaybeRunPendingFlush();
  const size_t reclaimed = overflow_->ReclaimDead(budget);  // charges the index's growth too
  // Back under the limit, if the index's growth took it over: the stalest
  // overflow page goes first, else a page of the table.
  const PagePool& pool = overflow_->pool();
  for (int i = 0; i < 64 && pool.used() > pool.limit(); ++i) {
    if (!overflow_->ReleaseStalestPage() && !table_.ReleasePage()) break;
  }
  return reclaimed;
}

DeltaResult TinyStore::Delta(std::string_view key, bool incr, uint64_t delta, ThreadStats& stats,
                             char (&out)[kDeltaMaxLength], size_t* out_len) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->Delta(key, incr, delta, stats, out, out_len);
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, stats, &k)) return overflow_->Delta(key, incr, delta, stats, out, out_len);
  // A narrow counter that stays narrow: one compare-and-swap on its slot.
  const TinyTable::UpdateResult u =
      table_.Update(k, [&](const ct::SlotValue& old, ct::SlotValue* now) {
        char buf[ct::kMaxText];
        std::string_view new_text;
        return NextCount(Text(k, old, buf), incr, delta, out, out_len, &new_text) &&
               ct::EncodeValue(new_text, ct::ValueBits(ct::ClassOfKey(k)), now) &&
               !ct::WideValue(ct::ClassOfKey(k), *now);
      });
  if (u == TinyTable::UpdateResult::kUpdated) {
    (incr ? Inline(stats).incr_hits : Inline(stats).decr_hits).Add();
    return DeltaResult::kOk;
  }
  if (u == TinyTable::UpdateResult::kAbsent) {
    return overflow_->Delta(key, incr, delta, stats, out, out_len);
  }
  // A wide item, no number, or a result that outgrows its slot.
  ct::SlotValue code;
  if (!table_.Get(k, &code)) return overflow_->Delta(key, incr, delta, stats, out, out_len);
  return DeltaInline(key, k, code, incr, delta, stats, out, out_len, nullptr);
}

DeltaResult TinyStore::DeltaInline(std::string_view key, const ct::TinyKey& k,
                                   const ct::SlotValue& code, bool incr, uint64_t delta,
                                   ThreadStats& stats, char (&out)[kDeltaMaxLength],
                                   size_t* out_len, std::string_view* slot_text) {
  char buf[ct::kMaxText];
  std::string_view new_text;
  if (!NextCount(Text(k, code, buf), incr, delta, out, out_len, &new_text)) {
    return DeltaResult::kNonNumeric;
  }
  (incr ? Inline(stats).incr_hits : Inline(stats).decr_hits).Add();
  if (slot_text != nullptr) *slot_text = {};
  ct::SlotValue new_code;
  if (ct::EncodeValue(new_text, ct::ValueBits(ct::ClassOfKey(k)), &new_code) &&
      table_.Put(k, new_code) != TinyTable::PutResult::kNoRoom) {
    if (slot_text != nullptr) *slot_text = new_text;
    return DeltaResult::kOk;
  }
  return Promote(key, k, new_text) ? DeltaResult::kOk : DeltaResult::kNoMemory;
}

MetaItem TinyStore::InlineView(std::string_view text, bool referenced, size_t bytes) {
  MetaItem m;
  m.value = text;
  m.fetched = referenced;
  m.size = bytes;
  return m;
}

void TinyStore::ApplyInline(std::string_view key, const ct::TinyKey& k, std::string_view text,
                            const MetaChange& change) {
  const bool expires = change.exptime.has_value() && *change.exptime != 0;
  const bool marked = change.state.has_value() && *change.state != 0;
  if (!expires && !marked) return;
  // The reply already went out from the inline item; without memory for the
  // move the change is dropped, as a lean item's rewrite would be.
  if (!Promote(key, k, text)) return;
  MetaGetOptions apply;
  apply.debug = true;  // counts nothing, bumps nothing
  overflow_->MetaGet(key, apply, Scratch(), [&](const MetaItem&) { return change; });
}

MetaGetResult TinyStore::MetaGet(std::string_view key, const MetaGetOptions& options,
                                 ThreadStats& stats,
                                 absl::FunctionRef<MetaChange(const MetaItem&)> visit) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->MetaGet(key, options, stats, visit);
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, stats, &k)) return overflow_->MetaGet(key, options, stats, visit);
  ct::SlotValue code;
  bool referenced = false;
  const bool mark = options.bump && !options.debug;
  if (!table_.Inspect(k, &code, mark, &referenced)) {
    return overflow_->MetaGet(key, options, stats, visit);  // a vivified item is born there
  }
  if (!options.debug) {
    (options.touch ? stats.touch_cmds : stats.get_cmds).Add();
    (options.touch ? Inline(stats).touch_hits : Inline(stats).get_hits).Add();
  }
  char buf[ct::kMaxText];
  const std::string_view text = Text(k, code, buf);
  const MetaChange change = visit(InlineView(text, referenced, SlotBytes(k, code)));
  ApplyInline(key, k, text, change);
  return MetaGetResult::kHit;
}

StoreResult TinyStore::MetaStore(StoreMode mode, std::string_view key, uint32_t flags,
                                 int64_t exptime, std::string_view value, uint64_t cas_unique,
                                 const MetaStoreOptions& options, ThreadStats& stats,
                                 uint64_t* cas_out) {
  // With CAS off every unique is 0 (so `invalidate`, which needs an older
  // one, never applies) and a plain store does: but a base64 key must be
  // remembered, which no slot can.
  if (!overflow_->options().cas_enabled && !options.binary_key) {
    if (cas_out != nullptr) *cas_out = 0;
    return Store(mode, key, flags, exptime, value, cas_unique, stats);
  }
  MaybeRunPendingFlush();
  KeyShape shape;
  std::optional<absl::MutexLock> lock;
  if (ShapeOf(key, &shape)) {
    lock.emplace(&KeyLock(shape));
    ct::TinyKey k;
    ct::SlotValue code;
    char buf[ct::kMaxText];
    if (Resolve(shape, stats, &k) && table_.Peek(k, &code) &&
        !Promote(key, k, Text(k, code, buf))) {
      stats.store_no_memory.Add();
      return StoreResult::kNoMemory;
    }
  }
  const StoreResult r =
      overflow_->MetaStore(mode, key, flags, exptime, value, cas_unique, options, stats, cas_out);
  AfterOverflowStore();
  return r;
}

MetaDeleteResult TinyStore::MetaDelete(std::string_view key, const MetaDeleteOptions& options,
                                       ThreadStats& stats) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) return overflow_->MetaDelete(key, options, stats);
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  if (!Resolve(shape, stats, &k)) return overflow_->MetaDelete(key, options, stats);
  ct::SlotValue code;
  if (table_.Peek(k, &code)) {
    if (options.cas.has_value() && *options.cas != 0) {  // an inline item's unique is 0
      stats.delete_misses.Add();
      return MetaDeleteResult::kExists;
    }
    if (!options.invalidate) {
      table_.Erase(k);
      Inline(stats).delete_hits.Add();
      return MetaDeleteResult::kDeleted;
    }
    char buf[ct::kMaxText];
    if (!Promote(key, k, Text(k, code, buf))) return MetaDeleteResult::kNoMemory;
  }
  return overflow_->MetaDelete(key, options, stats);
}

DeltaResult TinyStore::MetaDelta(std::string_view key, bool incr, uint64_t delta,
                                 const MetaDeltaOptions& options, ThreadStats& stats,
                                 char (&out)[kDeltaMaxLength], size_t* out_len,
                                 absl::FunctionRef<MetaChange(const MetaItem&)> visit) {
  MaybeRunPendingFlush();
  KeyShape shape;
  if (!ShapeOf(key, &shape)) {
    return overflow_->MetaDelta(key, incr, delta, options, stats, out, out_len, visit);
  }
  absl::MutexLock lock(&KeyLock(shape));
  ct::TinyKey k;
  ct::SlotValue code;
  if (!Resolve(shape, stats, &k) || !table_.Get(k, &code)) {
    return overflow_->MetaDelta(key, incr, delta, options, stats, out, out_len, visit);
  }
  if (options.cas.has_value() && *options.cas != 0) {
    // A slot keeps no CAS, so none matches; but memcached looks at the value
    // first, and an empty one is not a number.
    char buf[ct::kMaxText];
    return Text(k, code, buf).empty() ? DeltaResult::kNonNumeric : DeltaResult::kExists;
  }
  std::string_view text;
  const DeltaResult r = DeltaInline(key, k, code, incr, delta, stats, out, out_len, &text);
  if (r != DeltaResult::kOk) return r;
  if (!text.empty()) {
    ApplyInline(key, k, text, visit(InlineView(text, true, SlotBytes(k, text))));
    return DeltaResult::kOk;
  }
  // The result outgrew the slot and moved to the overflow store: it answers.
  MetaGetOptions apply;
  apply.debug = true;
  overflow_->MetaGet(key, apply, Scratch(), visit);
  return DeltaResult::kOk;
}

void TinyStore::FlushAll(int64_t delay) {
  overflow_->FlushAll(delay);
  const RelTime now = clock_->Now();
  const RelTime when = delay > 0 ? clock_->ToRelative(delay) : now;
  if (when > now) {
    pending_flush_.store(when, std::memory_order_relaxed);
    return;
  }
  pending_flush_.store(0, std::memory_order_relaxed);
  table_.Clear();
}

StoreTotals TinyStore::Totals() const {
  StoreTotals t = overflow_->Totals();
  t.curr_items += table_.items();
  for (size_t i = 0; i < kKeyLocks; ++i) {
    t.total_items += key_locks_[i].inline_stores.load(std::memory_order_relaxed);
  }
  t.bytes += (table_.items() + table_.wide_items()) * sizeof(uint64_t);
  t.evictions += table_.evictions();
  return t;  // malloced: the pool's bytes, the table's pages included
}

void TinyStore::ResetStats() {
  overflow_->ResetStats();
  for (size_t i = 0; i < kKeyLocks; ++i)
    key_locks_[i].inline_stores.store(0, std::memory_order_relaxed);
  table_.ResetEvictions();
}

EngineStats TinyStore::engine_stats() const {
  EngineStats s = overflow_->engine_stats();
  s.kind = EngineKind::kTiny;
  s.inline_items = table_.items();
  s.inline_evictions = table_.evictions();
  s.inline_table_bytes = table_.bytes();
  s.prefixes = prefixes_.size();
  return s;
}

}  // namespace tinycached::core
