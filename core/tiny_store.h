// core/tiny_store.h — the `tiny` engine: tiny items live in the slots of
// its index (core/tiny_table.h), everything else in an ItemStore behind it
// (the overflow area), and -m pays for both.
//
// Room: core/. Everything protocol-visible behaves as in ItemStore; what is
// tiny is decided per store, item by item.
//
// Where an item lives. A store of key K goes inline — 8 bytes in the
// table, no header, no links — when K has a slot class (compact/tiny_slot.h:
// a canonical decimal integer below 2^64, or a learned prefix followed by
// one below 2^50) and the item has flags 0, no expiry, no CAS (CAS off) and
// a value that class holds (a number with up to 3 trailing spaces, or a few
// bytes: below 2^29 or 3 bytes for keys below 2^40 and prefixed numbers
// below 2^32, fewer for longer keys; in those two classes also, in two
// slots, a number below 2^64 with spaces up to 20 characters, or up to 10
// bytes; keys of 2^61 and above always take two slots). Any other item goes to the
// overflow store, and the key's copy in the other place is removed, so a
// key lives in exactly one place. An operation that an inline item cannot
// take as it is (append/prepend/cas, a touch or gat with an expiry, an
// incr that outgrows the code) first moves the item to the overflow store
// (Promote) and lets that store do it, so every reply is the overflow
// store's own. incr/decr of an inline number happens in the slot.
//
// Memory. The table's pages come from the overflow store's page pool, so
// one budget (-m) holds index, tiny items and overflow items. The table
// grows while there is budget; the overflow store, when it has no page of
// its own to free, makes the table give one back (SetRoomDonor); and
// whichever side keeps evicting more takes a page from the other now and
// then (AfterPut, AfterOverflowStore). The overflow store's
// hash index is paid from -m too: its growth is charged within a second
// (ReclaimDead), and pages are given back until the budget holds again.
//
// Prefixes. A key shaped <prefix><number> (the prefix ends in a non-digit,
// the number is canonical) lives inline only once its prefix is in the
// dictionary (core/key_prefixes.h), which learns prefixes from stores that
// would go inline. Until then such keys are stored like text keys; once
// learned, the next store of a key moves it inline and drops the overflow
// copy, as for any key. A learned id never changes, so a key names the same
// item before and after.
//
// Locks. Operations on a key that may live inline (a number, or a prefix
// and a number, learned or not) that change it hold that key's lock (one of
// kKeyLocks, chosen from the key's text, so the same before and after its
// prefix is learned) across both places, and look the prefix up under it:
// moving a key between places is atomic to every other writer. Order: key
// lock → prefix dictionary → table locks (released before the overflow
// store is called) → overflow store's locks → (room donor) table resize
// mutex. Other text keys never live inline and skip the key lock.
//
// Reads (get, gets, multiget) take no key lock: they look in the table,
// then in the overflow store, then in the table again. A move from the
// overflow store into the table stores in the table before it drops the
// overflow copy, and a move out stores in the overflow store before it
// erases the slot, so a key present before and after a concurrent move is
// found by one of the three looks. incr/decr of an inline number hold the
// key lock and change the slot with one compare-and-swap (TinyTable::Update).
#ifndef TINYCACHED_CORE_TINY_STORE_H_
#define TINYCACHED_CORE_TINY_STORE_H_

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "core/engine.h"
#include "core/item_store.h"
#include "core/key_prefixes.h"
#include "core/tiny_table.h"

namespace tinycached::core {

class TinyStore final : public Engine, private TinyTable::PageSource {
 public:
  static absl::StatusOr<std::unique_ptr<TinyStore>> Create(const StoreOptions& options,
                                                           const Clock* clock);
  ~TinyStore() override;

  void StartMaintenance() override { overflow_->StartMaintenance(); }
  void StopMaintenance() override { overflow_->StopMaintenance(); }
  // The overflow store's items first, then the inline ones (in table order:
  // the table keeps no recency order).
  void ExportItems(absl::FunctionRef<void(const ItemInfo&)> visit) override;
  std::vector<std::string> LearnedPrefixes() const override;
  void TeachPrefixes(const std::vector<std::string>& prefixes) override;
  void Prefetch(std::string_view key) const override;
  bool SizeOk(std::string_view key, uint32_t flags, int64_t exptime, size_t nvalue) const override {
    return overflow_->SizeOk(key, flags, exptime, nvalue);
  }
  StoreResult Store(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                    std::string_view value, uint64_t cas_unique, ThreadStats& stats) override;
  bool Get(std::string_view key, std::optional<int64_t> new_exptime, ThreadStats& stats,
           absl::FunctionRef<void(const ItemView&)> visit) override;
  // Inline values are never long enough to be pinned: these are the overflow store's.
  PinnedValue PinVisited(const ItemView& view) override { return overflow_->PinVisited(view); }
  void Unpin(const PinnedValue& pin) override { overflow_->Unpin(pin); }
  TouchResult Touch(std::string_view key, int64_t exptime, ThreadStats& stats) override;
  bool Delete(std::string_view key, ThreadStats& stats) override;
  void Drop(std::string_view key) override;
  size_t ReclaimDead(size_t budget) override;
  // Inline items never expire, and a flush empties the table at once: a
  // crawl is the overflow store's (class 0 is passed over).
  CrawlStart StartCrawl(const std::vector<int>& classes) override {
    MaybeRunPendingFlush();
    return overflow_->StartCrawl(classes);
  }
  DeltaResult Delta(std::string_view key, bool incr, uint64_t delta, ThreadStats& stats,
                    char (&out)[kDeltaMaxLength], size_t* out_len) override;
  void FlushAll(int64_t delay) override;

  // Meta commands. An inline item answers what it has (no expiry, CAS 0,
  // flags 0; "fetched" is its CLOCK bit, which a read sets and an
  // overwrite too); a change it cannot hold (an expiry, a meta state) moves
  // it to the overflow store first, as Promote does for the classic
  // commands.
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

  ReassignResult Reassign(int src, int dst) override { return overflow_->Reassign(src, dst); }
  void SetAutomove(Automove level) override { overflow_->SetAutomove(level); }
  Automove automove() const override { return overflow_->automove(); }
  void SetAutomoveRatio(double r) override { overflow_->SetAutomoveRatio(r); }
  double automove_ratio() const override { return overflow_->automove_ratio(); }
  MoverStats mover_stats() const override { return overflow_->mover_stats(); }

  StoreTotals Totals() const override;
  void ResetStats() override;
  RelTime oldest_live() const override { return overflow_->oldest_live(); }
  EngineStats engine_stats() const override;
  EngineKind kind() const override { return EngineKind::kTiny; }
  const StoreOptions& options() const override { return overflow_->options(); }
  LayoutReport layout_report() const override { return overflow_->layout_report(); }
  std::vector<ClassSnapshot> SnapshotClasses() const override {
    return overflow_->SnapshotClasses();
  }

  const TinyTable& table() const { return table_; }
  const ItemStore& overflow() const { return *overflow_; }
  const KeyPrefixes& prefixes() const { return prefixes_; }

  // Class 0 is the inline items (cls 0, no expiry, no access time); any
  // other class is the overflow store's.
  size_t VisitItems(int cls, size_t limit, absl::FunctionRef<void(const ItemInfo&)> visit) override;
  size_t memory_limit() const override { return overflow_->memory_limit(); }
  void SetMemoryLimit(size_t bytes) override { overflow_->SetMemoryLimit(bytes); }

 private:
  static constexpr size_t kKeyLocks = 1024;
  // A side that evicted this many items since it last looked takes a page
  // from the other side, if that side evicted fewer meanwhile.
  static constexpr uint64_t kPullEvery = 8192;
  // Overflow stores (per thread) between looks at the overflow store's eviction count.
  static constexpr uint64_t kCheckEvery = 1024;

  TinyStore(const StoreOptions& options, const Clock* clock, std::unique_ptr<ItemStore> overflow);

  // TinyTable::PageSource: pages of the overflow store's budget.
  uint8_t* TakePage() override { return overflow_->TakeRawPage(); }
  void ReturnPage(uint8_t* page) override { overflow_->ReturnRawPage(page); }

  // A key that may live inline: a number, alone or behind a prefix.
  struct KeyShape {
    std::string_view prefix;  // empty for a plain number
    uint64_t n = 0;
    uint64_t prefix_hash = 0;    // KeyPrefixes::Hash(prefix), if any
    compact::tiny::TinyKey key;  // a plain number's key (its class is its range)
  };
  // False if `key` can never live inline (it then needs no key lock).
  bool ShapeOf(std::string_view key, KeyShape* shape) const;
  // A key lock, and the inline stores made under it (for total_items: a
  // count in the lock's own cache line, not one shared by every store).
  struct alignas(64) KeyStripe {
    absl::Mutex mu;
    std::atomic<uint64_t> inline_stores{0};  // written under mu
  };
  KeyStripe& KeyStripeOf(const KeyShape& s) const {
    return key_locks_[((s.n ^ s.prefix_hash) * 0x9e3779b97f4a7c15ULL) >> 54 & (kKeyLocks - 1)];
  }
  absl::Mutex& KeyLock(const KeyShape& s) const { return KeyStripeOf(s).mu; }
  // The tagged key (compact/tiny_slot.h) of `s`, if its prefix is known;
  // counts the prefix lookup. Takes no lock: a learned id never changes.
  bool Resolve(const KeyShape& s, ThreadStats& stats, compact::tiny::TinyKey* k) const;
  // Resolve(), learning the prefix from a store that would go inline
  // (flags, exptime, value) if only it were known.
  bool ResolveForStore(const KeyShape& s, uint32_t flags, int64_t exptime, std::string_view value,
                       ThreadStats& stats, compact::tiny::TinyKey* k);
  // The text of tagged key `k`.
  std::string KeyText(const compact::tiny::TinyKey& k) const;
  // The inline code of an item under tagged key `k`, if it may live inline.
  bool Inlinable(const compact::tiny::TinyKey& k, uint32_t flags, int64_t exptime,
                 std::string_view value, compact::tiny::SlotValue* code) const {
    return flags == 0 && exptime == 0 && !options_.cas_enabled &&
           compact::tiny::EncodeValue(value, compact::tiny::ValueBits(compact::tiny::ClassOfKey(k)),
                                      code);
  }
  // Moves inline item `k` (code `code`) to the overflow store with `text` as
  // its value; false when that store has no memory (the item stays).
  // REQUIRES: k's key lock.
  bool Promote(std::string_view key, const compact::tiny::TinyKey& k, std::string_view text);
  // What a meta command sees of an inline item.
  // `bytes`: the slot or pair it takes.
  static MetaItem InlineView(std::string_view text, bool referenced, size_t bytes);
  // Applies a meta change to inline item `k` (value `text`): nothing if the
  // change is empty, else the item moves to the overflow store and takes it
  // there. REQUIRES: k's key lock.
  void ApplyInline(std::string_view key, const compact::tiny::TinyKey& k, std::string_view text,
                   const MetaChange& change);
  // incr/decr of inline item `k` (code `code`), as Delta(). `out` also
  // receives the item's new text: the digits, then spaces up to the old
  // text's length. On kOk *slot_text (if not null) is that text while the
  // item stays inline, and empty when it outgrew the slot and moved to the
  // overflow store — so a caller needs no second look at the table.
  // REQUIRES: k's key lock.
  DeltaResult DeltaInline(std::string_view key, const compact::tiny::TinyKey& k,
                          const compact::tiny::SlotValue& code, bool incr, uint64_t delta,
                          ThreadStats& stats, char (&out)[kDeltaMaxLength], size_t* out_len,
                          std::string_view* slot_text);
  // gat/gats: Get() with a new expiry, under the key lock (an expiry moves
  // an inline item to the overflow store).
  bool GetAndTouch(std::string_view key, const KeyShape& shape, int64_t exptime, ThreadStats& stats,
                   absl::FunctionRef<void(const ItemView&)> visit);
  // After a table Put(): pull a page when the table keeps evicting.
  void AfterPut(TinyTable::PutResult r);
  // After an overflow store: give it a page of the table when it keeps
  // evicting and the table does not.
  void AfterOverflowStore();
  // overflow_->Store(), then AfterOverflowStore().
  StoreResult OverflowStore(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                            std::string_view value, uint64_t cas_unique, ThreadStats& stats);
  void MaybeRunPendingFlush();
  // memcached's delayed flush: the time it runs, 0 if none.
  std::atomic<RelTime> pending_flush_{0};

  const StoreOptions options_;
  const Clock* const clock_;
  const std::unique_ptr<ItemStore> overflow_;
  TinyTable table_;  // after overflow_: its pages come from there and go back first
  KeyPrefixes prefixes_;
  std::unique_ptr<KeyStripe[]> key_locks_;
  // Eviction counts of either side when pages were last weighed.
  std::atomic<uint64_t> table_mark_{0};
  std::atomic<uint64_t> overflow_mark_{0};
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_TINY_STORE_H_
