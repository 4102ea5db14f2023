// core/engine.h — the one store interface the server talks to, and the
// types its calls take and return.
//
// Room: core/. This header is the whole of core/ the server sees: it
// includes no other core header but the value types it needs (clock, slab
// options, thread counters). Two engines sit behind it (CreateEngine, in
// core/engine.cc, picks one from StoreOptions::engine):
//   - EngineKind::kSlabs, ItemStore (core/item_store.h): memcached's design —
//     slab classes, a hash index of chained items, per-class LRU — with
//     configurable item layouts from memcached's own (stock) to `compact`;
//   - EngineKind::kTiny, TinyStore (core/tiny_store.h): an index whose 8-byte
//     slots are the items themselves when they are tiny, with an ItemStore
//     for the rest.
// Replies depend only on the results below. What `stats` shows of an
// engine's insides comes as values (EngineStats, LayoutReport,
// ClassSnapshot); pinning goes through an opaque PinToken.
//
// Adding an engine: a class implementing Engine in core/, an EngineKind,
// and its line in CreateEngine. The conformance suite
// (tests/core/engine_test.cc) runs every contract below on each kind.
#ifndef TINYCACHED_CORE_ENGINE_H_
#define TINYCACHED_CORE_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "compact/item_layout.h"
#include "core/clock.h"
#include "core/slabs.h"
#include "core/stats.h"

namespace tinycached::core {

// Which engine a store is (StoreOptions::engine, Engine::kind()).
enum class EngineKind : uint8_t {
  kSlabs,  // ItemStore: every item in a slab chunk
  kTiny,   // TinyStore: tiny items in index slots, the rest in an ItemStore
};
// The name `stats settings` shows as item_store.
constexpr std::string_view EngineKindName(EngineKind k) {
  return k == EngineKind::kTiny ? "tiny" : "slabs";
}

enum class StoreMode { kSet, kAdd, kReplace, kAppend, kPrepend, kCas };
enum class StoreResult { kStored, kNotStored, kExists, kNotFound, kTooLarge, kNoMemory };
// kExists: a meta arithmetic's CAS did not match; kNotStored: its vivify found
// the key taken meanwhile.
enum class DeltaResult { kOk, kNotFound, kNonNumeric, kNoMemory, kExists, kNotStored };
enum class TouchResult { kTouched, kNotFound, kNoMemory };

// How items refer to each other (compact/ref.h).
enum class RefMode : uint8_t {
  kPointer,  // 8-byte pointers
  kRef32,    // 4-byte page references (2-byte page index)
  kPage,     // page references with the page index sized to the memory limit
};

// The item layout knobs beside CAS (StoreOptions::cas_enabled) and chunk
// alignment (SlabOptions::align).
struct LayoutKnobs {
  RefMode refs = RefMode::kPointer;
  bool pack_keys = false;
  compact::HeaderStyle header = compact::HeaderStyle::kStock;
};

// memcached's slab_automove levels.
enum class Automove : uint8_t {
  kOff = 0,         // pages move only on `slabs reassign` (and for a store with no room)
  kBalance = 1,     // keep LRU tail ages balanced; return spare free pages (default)
  kAggressive = 2,  // any evicting class takes a page from the oldest one
};

struct StoreOptions {
  size_t memory_limit = size_t{64} << 20;  // -m
  SlabOptions slabs;                       // -n -f -I, page size
  bool cas_enabled = true;                 // !-C
  bool evict = true;                       // !-M
  int hashpower_init = 16;                 // -o hashpower=
  LayoutKnobs layout;                      // -o preset= / refs= / keys= / header=
  bool slab_reassign = true;               // -o slab_reassign / no_slab_reassign
  Automove automove = Automove::kBalance;  // -o slab_automove=
  double automove_ratio = 0.8;             // -o slab_automove_ratio=
  int automove_window = 30;                // -o slab_automove_window= (seconds of age history)
  EngineKind engine = EngineKind::kSlabs;  // -o preset=tiny: kTiny
  bool index_in_limit = false;             // the hash index is paid from -m (TinyStore's overflow)
};

// `slabs reassign` outcomes (memcached's replies: OK, BUSY, BADCLASS, NOSPARE, SAME).
enum class ReassignResult { kOk, kBusy, kBadClass, kNoSpare, kSame };

// Page mover counters for `stats`.
struct MoverStats {
  uint64_t slabs_moved = 0;      // pages that changed class or went back to the budget
  uint64_t rescues = 0;          // items relocated out of a moving page
  uint64_t evictions_nomem = 0;  // live items evicted from a moving page (no free chunk)
  uint64_t busy_items = 0;       // item locks found busy while emptying a page (retried)
  bool running = false;          // a page is being moved now
  size_t global_page_pool = 0;   // whole pages of the limit not given to any class
};

// Names the item a visitor is looking at to the engine that showed it, for
// Engine::PinVisited(). Opaque: only the engines look inside.
class PinToken {
 public:
  PinToken() = default;

 private:
  friend class ItemStore;
  PinToken(const uint8_t* item, uint32_t stripe) : item_(item), stripe_(stripe) {}
  const uint8_t* item_ = nullptr;
  uint32_t stripe_ = 0;
};

// What a reader sees of an item; valid only inside the visitor. (The key is
// the caller's own: a stored key may be packed.)
struct ItemView {
  uint32_t flags;
  std::string_view value;
  uint64_t cas;
  PinToken pin;  // for PinVisited()
};

// A value sent in place (zero copy) from its item. While any pin is held the
// item's bytes stay where they are and unchanged: an item freed meanwhile
// (deleted, replaced, evicted, moved off its page) becomes a zombie, out of
// the index and the LRU, whose memory the last Unpin() frees. Its memory
// stays within -m all along.
struct PinnedValue {
  const char* data = nullptr;
  size_t size = 0;
  PinToken pin;  // what Unpin() releases
};

// "stats items" / "stats slabs" numbers of one class.
struct ClassSnapshot {
  int id = 0;
  size_t chunk_size = 0, per_page = 0, pages = 0;
  size_t items = 0, free_chunks = 0;
  uint64_t bytes = 0;  // sum of item sizes (mem_requested)
  RelTime age = 0;     // now - last access of the LRU tail
  uint64_t evicted = 0, evicted_nonzero = 0, evicted_unfetched = 0;
  RelTime evicted_time = 0;
  uint64_t outofmemory = 0, reclaimed = 0, expired_unfetched = 0;
  uint64_t crawler_reclaimed = 0, crawler_items_checked = 0;
};

// reclaimed: dead (expired or flushed) items freed at an LRU tail, by a
// store that needed the memory or by ReclaimDead (memcached's LRU maintainer
// counts its tail frees so too); crawler_reclaimed: dead items a crawl freed
// (StartCrawl), crawler_items_checked: items it looked at (memcached's names).
struct StoreTotals {
  uint64_t curr_items = 0, total_items = 0, bytes = 0;
  uint64_t evictions = 0, reclaimed = 0, expired_unfetched = 0, evicted_unfetched = 0;
  uint64_t crawler_reclaimed = 0, crawler_items_checked = 0;
  size_t malloced = 0;  // pages + large items, bytes
};

// The slab layout an engine runs with (fixed at creation), for `stats
// settings`, the class-id range of admin commands and -vv's class table.
struct LayoutReport {
  size_t header_bytes = 0;  // item header (compact/item_layout.h)
  size_t ref_bytes = 0;     // one item reference (compact/ref.h)
  size_t chunk_max = 0;     // largest chunk (slab_chunk_max)
  size_t page_size = 0;
  struct Class {
    size_t chunk_size = 0, per_page = 0;
  };
  std::vector<Class> classes;  // [i] is class i + 1
};

// Engine counters for `stats` beyond StoreTotals (zero where they do not apply).
struct EngineStats {
  EngineKind kind = EngineKind::kSlabs;
  // The chained hash index of slab items (memcached's hash_* stats).
  int hash_power_level = 0;
  size_t hash_bytes = 0;
  bool hash_expanding = false;
  // The tiny engine's slot table.
  uint64_t inline_items = 0;      // items held in index slots
  uint64_t inline_evictions = 0;  // of those
  size_t inline_table_bytes = 0;  // the slot table (inside -m)
  size_t prefixes = 0;            // learned key prefixes (core/key_prefixes.h)
  // A crawl StartCrawl() began is not finished yet (memcached's lru_crawler_running).
  bool crawl_running = false;
};

// StartCrawl() outcomes (memcached's replies to `lru_crawler crawl`: OK, BUSY).
enum class CrawlStart { kStarted, kBusy };

// ---- meta commands (mg ms md ma me) ---------------------------------------
// The engine gives the meta protocol (server/protocol/meta.cc) one item
// under its lock; the protocol decides, flag by flag and in memcached's
// order, what to answer and what to change, and the engine applies the
// changes before it lets go of the lock.

// What a meta command sees of an item, as it was before this command.
struct MetaItem {
  std::string_view value;
  uint32_t flags = 0;
  uint64_t cas = 0;
  RelTime exptime = 0;  // 0 = never
  RelTime last_access = 0;
  bool has_access_time = false;  // false where the layout keeps none (lean, tiny slots)
  bool fetched = false;          // read before (memcached's ITEM_FETCHED)
  uint8_t state = 0;             // compact::MetaState bits
  bool created = false;          // made by this command (mg/ma with N)
  int class_id = 0;              // 0 for an item in a tiny slot
  size_t size = 0;               // bytes it occupies (memcached's ITEM_ntotal)
  PinToken pin;                  // for PinVisited()
};

// What the visitor asks to change; applied when it returns, under the lock.
struct MetaChange {
  std::optional<RelTime> exptime;  // new expiry (relative; 0 = never)
  std::optional<uint8_t> state;    // new MetaState bits
};

struct MetaGetOptions {
  bool bump = true;     // !u: mark fetched, refresh recency
  bool touch = false;   // T given: counted as a touch, not a get
  bool vivify = false;  // N given: create an empty item on a miss
  bool debug = false;   // me: no bump, counts nothing
};

enum class MetaGetResult { kHit, kCreated, kMiss, kNoMemory };

struct MetaStoreOptions {
  // In kCas mode: a value whose CAS is older than the item's is stored
  // stale (keeping the item's expiry and win token) instead of refused.
  bool invalidate = false;
  bool binary_key = false;  // the key came base64-encoded (compact::kMetaBinaryKey)
  // Warm restart only (core/snapshot.h): the CAS unique the item had before
  // the restart, kept instead of a new one (0: a new one). Later uniques are
  // all above it.
  uint64_t restored_cas = 0;
};

struct MetaDeleteOptions {
  std::optional<uint64_t> cas;     // C: delete only if it matches
  bool invalidate = false;         // I: mark stale, new CAS, keep the item
  std::optional<RelTime> exptime;  // T (with I): new expiry
};
enum class MetaDeleteResult { kDeleted, kNotFound, kExists, kNoMemory };

struct MetaDeltaOptions {
  std::optional<uint64_t> cas;  // C (0 matches anything, as memcached)
  bool vivify = false;          // N: create with `initial` on a miss
  uint64_t initial = 0;         // J
};

// What `stats cachedump` and `lru_crawler metadump` show of one item
// (Engine::VisitItems), and what a warm restart keeps of it
// (Engine::ExportItems). Valid only inside the visitor.
struct ItemInfo {
  std::string_view key;     // decoded (a packed key is unpacked)
  std::string_view value;   // the value's bytes (an inline value as its text)
  uint32_t flags = 0;       // client flags
  size_t value_bytes = 0;   // the value's length
  size_t total_bytes = 0;   // the whole item (memcached's ITEM_ntotal)
  RelTime exptime = 0;      // 0: never expires
  RelTime last_access = 0;  // 0: the layout keeps no access time
  uint64_t cas = 0;
  bool fetched = false;
  int cls = 0;  // slab class; 0: an inline item of the tiny engine
};

// memcached's safe_strtoull() applied to a stored value (incr/decr):
// optional leading whitespace and sign, decimal digits, then whitespace or
// the end. A value that is negative or overflows is not a number.
bool ParseStoredNumber(std::string_view v, uint64_t* out);

// Contract, for every engine:
//  - Thread safety: every method may be called from any number of threads
//    at once; each keyed operation is atomic with respect to the others on
//    the same key (a reader sees a value as one store wrote it, never a mix).
//    Operations on different keys do not wait for each other beyond brief
//    internal locks.
//  - Visitors (the FunctionRef arguments) run while the engine holds the
//    item's locks. A visitor must not call back into the engine (no
//    re-entry: it would deadlock or see a half-applied change), must not
//    block, and must not keep the view's pointers after it returns — except
//    through PinVisited().
//  - `stats` owns its counters per thread (ThreadStats); the engine adds to
//    the one it is passed and never reads another thread's.
//  - Memory: items, the index and the engine's own tables stay within
//    memory_limit(); a store is refused with kNoMemory only when evictions
//    are off (StoreOptions::evict) or the item can never fit.
class Engine {
 public:
  static constexpr size_t kDeltaMaxLength = 20;  // digits of UINT64_MAX
  // Values at least this long may be pinned instead of copied out.
  static constexpr size_t kPinMinValue = 16 * 1024;

  virtual ~Engine() = default;

  // Starts background threads (the server calls this).
  virtual void StartMaintenance() = 0;
  // memcached's item_size_ok(): could this item ever be stored?
  virtual bool SizeOk(std::string_view key, uint32_t flags, int64_t exptime,
                      size_t nvalue) const = 0;
  // set/add/replace/append/prepend/cas. `exptime` is the client's value.
  // kTooLarge and kNoMemory are counted in `stats`; a failed kSet also drops
  // the key's old value, as memcached does, so no stale value survives.
  virtual StoreResult Store(StoreMode mode, std::string_view key, uint32_t flags, int64_t exptime,
                            std::string_view value, uint64_t cas_unique, ThreadStats& stats) = 0;
  // get/gets (new_exptime empty) and gat/gats (new_exptime = client exptime).
  // On a hit calls `visit` under the item's lock, then returns true.
  virtual bool Get(std::string_view key, std::optional<int64_t> new_exptime, ThreadStats& stats,
                   absl::FunctionRef<void(const ItemView&)> visit) = 0;
  // Pins the item a Get() visitor is looking at (only inside the visitor,
  // only values of at least kPinMinValue bytes). Every pin must be Unpin()ned.
  virtual PinnedValue PinVisited(const ItemView& view) = 0;
  // Call holding no store lock.
  virtual void Unpin(const PinnedValue& pin) = 0;
  virtual TouchResult Touch(std::string_view key, int64_t exptime, ThreadStats& stats) = 0;
  virtual bool Delete(std::string_view key, ThreadStats& stats) = 0;
  // Removes `key` if present without counting a delete (a failed set's old value).
  virtual void Drop(std::string_view key) = 0;
  // The server's once-a-second upkeep (memcached's LRU maintainer): frees the
  // dead items among the `budget` oldest of every class (counted as
  // reclaimed; budget 0 under -o no_lru_maintainer), runs a delayed flush
  // that is due and charges what the index and the tiny table grew.
  // Returns how many items it freed.
  virtual size_t ReclaimDead(size_t budget) = 0;
  // `lru_crawler crawl`: a crawl of every item of the slab classes listed
  // (ids outside the engine's classes, and the tiny engine's class 0, are
  // passed over), freeing the dead ones (counted as crawler_reclaimed, the
  // items looked at as crawler_items_checked).
  // It runs on the engine's maintenance thread, or before returning without
  // StartMaintenance(). kBusy while an earlier crawl has not finished
  // (EngineStats::crawl_running).
  virtual CrawlStart StartCrawl(const std::vector<int>& classes) = 0;
  // incr/decr. On kOk writes the new value's digits to `out` (no NUL) and
  // their count to `out_len`. incr wraps at 2^64, decr stops at 0.
  virtual DeltaResult Delta(std::string_view key, bool incr, uint64_t delta, ThreadStats& stats,
                            char (&out)[kDeltaMaxLength], size_t* out_len) = 0;
  // flush_all [delay].
  virtual void FlushAll(int64_t delay) = 0;

  // Meta commands (see MetaItem). mg and me: on a hit or a creation calls
  // `visit` under the item's lock and applies its change.
  virtual MetaGetResult MetaGet(std::string_view key, const MetaGetOptions& options,
                                ThreadStats& stats,
                                absl::FunctionRef<MetaChange(const MetaItem&)> visit) = 0;
  // ms: Store() that also reports the stored item's CAS (`*cas_out`, 0 if
  // not stored); see MetaStoreOptions. In kAppend and kPrepend a non-zero
  // `cas_unique` must match (plain append passes 0).
  virtual StoreResult MetaStore(StoreMode mode, std::string_view key, uint32_t flags,
                                int64_t exptime, std::string_view value, uint64_t cas_unique,
                                const MetaStoreOptions& options, ThreadStats& stats,
                                uint64_t* cas_out) = 0;
  virtual MetaDeleteResult MetaDelete(std::string_view key, const MetaDeleteOptions& options,
                                      ThreadStats& stats) = 0;
  // ma: Delta() with a CAS check and vivify; on kOk calls `visit` with the
  // item after the change (created = vivified) and applies its change.
  virtual DeltaResult MetaDelta(std::string_view key, bool incr, uint64_t delta,
                                const MetaDeltaOptions& options, ThreadStats& stats,
                                char (&out)[kDeltaMaxLength], size_t* out_len,
                                absl::FunctionRef<MetaChange(const MetaItem&)> visit) = 0;

  // Page moves (memcached's slab reassignment); see ItemStore.
  virtual ReassignResult Reassign(int src, int dst) = 0;
  virtual void SetAutomove(Automove level) = 0;
  virtual Automove automove() const = 0;
  virtual void SetAutomoveRatio(double r) = 0;
  virtual double automove_ratio() const = 0;
  virtual MoverStats mover_stats() const = 0;

  // Reporting.
  virtual StoreTotals Totals() const = 0;
  virtual void ResetStats() = 0;
  // memcached's settings.oldest_live ("oldest" in stats settings).
  virtual RelTime oldest_live() const = 0;
  virtual EngineStats engine_stats() const = 0;
  virtual EngineKind kind() const = 0;
  // The options the slab items are kept by (for `stats settings`): the
  // engine's own, or, in TinyStore, its overflow store's.
  virtual const StoreOptions& options() const = 0;
  virtual LayoutReport layout_report() const = 0;
  // `stats items` / `stats slabs`: every class that owns memory or items.
  virtual std::vector<ClassSnapshot> SnapshotClasses() const = 0;

  // Administration: stats cachedump, lru_crawler metadump, cache_memlimit.
  // Visits up to `limit` live items of slab class `cls`, most recently used
  // first; class 0 holds the tiny engine's inline items (none in ItemStore).
  // A class's walk holds that class's lock, and each item's stripe lock only
  // while it is read (a busy item is skipped), so keep `visit` short.
  // Returns how many items were visited.
  virtual size_t VisitItems(int cls, size_t limit,
                            absl::FunctionRef<void(const ItemInfo&)> visit) = 0;
  // The item memory limit (-m, then cache_memlimit), in bytes.
  virtual size_t memory_limit() const = 0;
  // cache_memlimit: takes effect for memory handed out from now on; lowering
  // it frees nothing at once (as memcached), items go as stores evict.
  // Raising it past the arena reserved at start adds no room (stats still
  // report the new limit, as memcached's limit_maxbytes does).
  virtual void SetMemoryLimit(size_t bytes) = 0;

  // Warm restart (core/snapshot.h). StopMaintenance() joins the engine's
  // background threads (idempotent; the destructor does it too). Then, with
  // no other thread using the engine, ExportItems() shows every live item
  // once — class by class, each class oldest first (the tiny engine's inline
  // items last) — so that storing them again in that order rebuilds each
  // LRU as it was. The learned key prefixes (the tiny engine's dictionary,
  // in id order; empty elsewhere) are taught back before the items, so that
  // prefixed keys go inline from their first store.
  virtual void StopMaintenance() = 0;
  virtual void ExportItems(absl::FunctionRef<void(const ItemInfo&)> visit) = 0;
  // Before `items` are stored back: sizes what grows with them (the hash
  // index) at once. A hint; an engine may do nothing.
  virtual void ReserveItems(size_t items) { (void)items; }
  virtual std::vector<std::string> LearnedPrefixes() const { return {}; }
  virtual void TeachPrefixes(const std::vector<std::string>& prefixes) { (void)prefixes; }
  // A hint, a few stores ahead of storing `key`: starts fetching the memory
  // that store will look at, so that a loop over many keys (a warm restart)
  // overlaps their cache misses instead of waiting for each in turn.
  // Changes nothing; an engine may do nothing.
  virtual void Prefetch(std::string_view key) const { (void)key; }
};

// The engine `options` ask for. `clock` must outlive it.
absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(const StoreOptions& options,
                                                     const Clock* clock);

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_ENGINE_H_
