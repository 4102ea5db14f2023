// core/tiny_table.h — the tiny store's index, which is also where its tiny
// items live: a bucketised hash table of 8-byte slots (compact/tiny_slot.h)
// that grows and shrinks a page at a time.
//
// Room: core/. The table knows tagged keys (a class and a number,
// compact/tiny_slot.h) and value codes only; what is tiny, which prefix a
// prefix id names, and everything else, is core/tiny_store's business.
//
// Implementation details
// ----------------------
// Memory picture: buckets of 8 slots (64 bytes, one cache line), 16384 of
// them to a 1 MiB page. Pages come from a PageSource (the store's budget,
// so -m counts them); a directory maps bucket b to page b / buckets_per_page.
// No other memory grows with the item count.
//
//   directory: [page 0][page 1] ... [page n-1]        (n <= max_pages)
//   page:      [bucket][bucket] ... (buckets_per_page)
//   bucket:    [slot 0][slot 1] ... [slot 7]           (slot: tiny_slot.h)
//
// Addressing is linear hashing: with `level` L and split pointer s, the
// table has 2^L + s buckets; a hash h addresses bucket h mod 2^L, or
// h mod 2^(L+1) when that is below s (the bucket was split this round).
// Growing splits bucket s into s and s + 2^L by one more bit of h, which
// is the low bit of each slot's remainder — no key is rehashed — and a new
// page is taken every buckets_per_page splits. Shrinking merges the last
// pair back (each remainder gains a bit) and gives back the page that
// emptied. So memory moves between the table and the rest of the store
// a page at a time, in either direction, and items per byte stay the
// same at any table size.
//
// Two choices: a key may sit in either of two buckets (bijections 0 and 1
// of compact::tiny::KeyMix; the slot's alt bit says which). An insert takes
// the emptier one; with both full it moves one resident to its other
// bucket (one cuckoo step, or a few). That keeps buckets evenly loaded
// although split and unsplit buckets cover different shares of the hash
// space: a bucket split late in a round has taken keys at twice the rate
// of a split one all round, so the table grows at 70% and a full table
// still reaches 99% of its slots by moves alone.
//
// Wide items (compact/tiny_slot.h) take an aligned pair of slots, 2j and
// 2j + 1, of one bucket: a bucket is also 4 cells of 2. A wide item moves
// only as a pair (a cuckoo move into a free pair, a split or a merge); to
// make room for one, an insert moves a cell's residents to their other
// buckets (making room there the same way, kWideExtraDepth levels deeper
// than a narrow insert searches), else evicts a cell's items (CLOCK over
// the 8 cells). A merge that finds no free pair for a wide item evicts it.
//
// Eviction is CLOCK within a key's 16 candidate slots: a read sets the
// slot's ref bit; an insert with no room and no memory to grow evicts the
// first unreferenced slot of the two buckets, clearing ref bits it passes.
// No links, no timestamps: a set-associative cache.
//
// Concurrency. Reads take no lock and write nothing another reader reads:
//   - Each of kStripes stripes (bucket b's is b mod kStripes) has a mutex
//     and a version, odd while a writer changes one of its buckets. The
//     geometry (the bucket count; level and split pointer derive from it)
//     has a version of its own, odd while a resize changes it.
//   - A lookup reads the geometry version, the bucket count, its two
//     buckets' stripe versions, the buckets, then the three versions again,
//     and starts over if any was odd or moved (a seqlock per stripe, as
//     MemC3's optimistic cuckoo hashing has per bucket). Marking an item
//     used (CLOCK's ref bit) is a compare-and-swap on the slot word, done
//     only when the bit is not yet set.
//   - Writers (Put, Erase) take their buckets' stripe mutexes in stripe
//     order, then check that the geometry has not moved since they computed
//     their addresses. A cuckoo move only TryLocks a third stripe, and
//     checks the geometry again. Resizes (one bucket split or merged at a
//     time) hold the stripes of the buckets they change and a resize mutex
//     that orders them. So no request path takes a lock in shared mode.
//   - Update (incr/decr) is a compare-and-swap on the slot word, with no
//     lock. So every locked writer that moves or rewrites another item's
//     slot empties it with an exchange (or clears a bit with fetch_and),
//     and writes what the exchange returned: an update lands before the
//     move or fails and starts over.
//   - A page given back (ReleasePage) is first unpublished, and returned to
//     the source only after every reader that might still hold it has
//     finished (core/read_epoch.h). Every lock-free access is inside a
//     ReadSection.
//   - Item counts are per stripe, written under its mutex; the load that
//     decides growth is a shared approximation that each stripe updates
//     once per kFoldEvery slots it gains or loses, not on every store.
// The PageSource is called with the resize mutex held, so it must not call
// back into the table.
#ifndef TINYCACHED_CORE_TINY_TABLE_H_
#define TINYCACHED_CORE_TINY_TABLE_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "compact/tiny_slot.h"

namespace tinycached::core {

class TinyTable {
 public:
  // Where the table's pages come from and go back to.
  class PageSource {
   public:
    virtual ~PageSource() = default;
    // A zeroed page of page_size bytes, or nullptr when the budget is spent.
    virtual uint8_t* TakePage() = 0;
    virtual void ReturnPage(uint8_t* page) = 0;
  };

  static constexpr int kSlotsPerBucket = 8;
  static constexpr size_t kBucketBytes = kSlotsPerBucket * sizeof(uint64_t);
  // The table grows (splits) while items exceed this share of its slots;
  // once out of pages it fills further, to ~99%, by cuckoo moves. Growing
  // at 70% rather than 90% leaves the final density unchanged (the top-up
  // gets there either way), while an insert needs moves 4.6x less often:
  // a fill of 128 pages to the first eviction cost 498 ns of CPU per
  // insert growing at 70%, 603 at 80%, 1069 at 90%.
  static constexpr double kMaxLoad = 0.70;
  // How many residents an insert may move, one behind the other, to make room.
  static constexpr int kCuckooDepth = 3;
  // A wide item's room is a free pair, which moves find less often than a
  // free slot: it searches this many levels deeper. Filling 64 pages with
  // wide items only, the first eviction came at 94.0% of the pairs searching
  // 3 levels, 96.5% at 4, 97.3% at 5 (narrow items: 97.6% at 3).
  static constexpr int kWideExtraDepth = 2;

  // `page_size` is a power of two of at least 64 buckets. The table starts
  // with no page; the first Put() takes one.
  TinyTable(size_t page_size, size_t max_pages, PageSource* source);
  ~TinyTable();  // gives every page back
  TinyTable(const TinyTable&) = delete;
  TinyTable& operator=(const TinyTable&) = delete;

  // Keys of class `cls` below 2^key_bits(cls) fit (at most
  // compact::tiny::kMaxKeyBits); a value's code fits its class's value_bits.
  int key_bits(int cls) const { return mix_[cls].key_bits(); }
  // The fewest address bits a bucket has: the `s` of compact/tiny_slot.h.
  int min_addr_bits() const { return bucket_shift_; }

  using SlotValue = compact::tiny::SlotValue;
  using TinyKey = compact::tiny::TinyKey;
  // The value of `key`, marking it used (CLOCK's ref bit). Takes no lock.
  bool Get(const TinyKey& key, SlotValue* value);
  // The same without marking it.
  bool Peek(const TinyKey& key, SlotValue* value);
  // Starts loading `key`'s two buckets into the cache (see Engine::Prefetch).
  // Takes no lock and reads no slot: a resize racing it only makes it useless.
  void Prefetch(const TinyKey& key) const;
  // Either (mark: Get), also telling whether the ref bit was set before.
  bool Inspect(const TinyKey& key, SlotValue* value, bool mark, bool* referenced);

  enum class UpdateResult {
    kUpdated,   // the slot holds fn's value
    kAbsent,    // no such key
    kDeclined,  // a wide item, or fn declined: nothing written
  };
  // Replaces the value of narrow item `key` by what `fn(old, &now)` makes
  // of it, marking it used: one compare-and-swap on the slot word, taken
  // again (fn called again) if the slot changed meanwhile. Takes no lock.
  // fn returns false to decline (its value would not fit one slot of the
  // key's class: compact::tiny::WideValue); it must have no other effect
  // than on its own output, since it may run more than once.
  UpdateResult Update(const TinyKey& key,
                      absl::FunctionRef<bool(const SlotValue& old, SlotValue* now)> fn);

  enum class PutResult {
    kStored,   // inserted or overwritten
    kEvicted,  // inserted after evicting another item (no memory to grow)
    kNoRoom,   // the table has no page and none could be taken
  };
  // A wide value (compact::tiny::WideCode) takes two slots; only keys of
  // 32-bit-code classes may have one.
  PutResult Put(const TinyKey& key, const SlotValue& value);
  // Removes `key`; false if it was not there.
  bool Erase(const TinyKey& key);
  // Calls `fn(key, value, referenced)` on the items of buckets [*cursor, ...)
  // until `limit` items were visited or the table ends, and advances *cursor
  // past the buckets done (a bucket is visited whole; items that cuckoo moves
  // or a resize carry between calls may be seen twice or not at all). Reads
  // each bucket under its stripe mutex and calls `fn` with no lock held.
  // Returns the items visited.
  size_t ForEach(size_t* cursor, size_t limit,
                 absl::FunctionRef<void(const TinyKey&, const SlotValue&, bool)> fn);
  // Removes every item (flush_all); keeps the pages.
  void Clear();
  // Gives one page back to the source, merging buckets and evicting the
  // items that no longer fit. False if the table holds no page. Waits for
  // lock-free readers that may hold the page (core/read_epoch.h), so it is
  // never called from inside a ReadSection.
  bool ReleasePage();

  // Exact counts: sums over the stripes (for stats, not for hot paths).
  size_t items() const;
  // Of those, items that take two slots.
  size_t wide_items() const;
  uint64_t evictions() const;
  void ResetEvictions();
  size_t pages() const { return npages_.load(std::memory_order_relaxed); }
  size_t bytes() const { return pages() * page_size_; }
  size_t buckets() const { return nbuckets_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kStripes = 1024;
  // A stripe reports the slots it gained or lost to the shared load count
  // once this many have accumulated.
  static constexpr int64_t kFoldEvery = 16;
  struct Stripe;
  class Writing;
  struct Addr {
    size_t bucket;
    uint64_t remainder;
    int cls;
  };
  // What one locked operation works against: the geometry version it
  // validated and the bucket count that goes with it, and the stripes it
  // holds from the start.
  struct Frame {
    uint64_t geo;
    size_t nbuckets;
    Stripe* held0;  // the key's first bucket's: keeps its evictions and CLOCK hand
    Stripe* held1;
  };
  // An item as a lock-free lookup saw it.
  struct Seen {
    uint64_t* slot;  // its head slot
    uint64_t word;   // what the slot held
    uint64_t cont;   // a wide item's continuation word
  };
  static int Level(size_t nbuckets) { return std::bit_width(nbuckets) - 1; }
  Addr AddressOf(const TinyKey& key, int choice, size_t nbuckets) const;
  // The key held by `slot` of bucket `b`.
  TinyKey KeyOf(uint64_t slot, size_t b, size_t nbuckets) const;
  static int AddrBits(size_t b, size_t nbuckets) {
    const int level = Level(nbuckets);
    const size_t split = nbuckets - (size_t{1} << level);
    return (b < split || b >= (size_t{1} << level)) ? level + 1 : level;
  }
  // Bucket b, or null if its page is not (or no longer) published.
  uint64_t* Bucket(size_t b) const {
    uint8_t* page = dir_[b >> bucket_shift_].load(std::memory_order_acquire);
    if (page == nullptr) return nullptr;
    return reinterpret_cast<uint64_t*>(page) + (b & bucket_mask_) * kSlotsPerBucket;
  }
  Stripe& StripeOf(size_t b) const;
  // The geometry version once no resize is under way.
  uint64_t StableGeometry() const;
  // The slot of `key` in bucket `a` (a wide item's head), or null.
  // REQUIRES: a's stripe mutex.
  uint64_t* Find(const Addr& a, int choice) const;
  // A consistent lock-free look at `key`'s two buckets. REQUIRES: a ReadSection.
  bool Locate(const TinyKey& key, Seen* seen) const;
  // Shared part of Get/Peek/Inspect.
  bool Lookup(const TinyKey& key, SlotValue* value, bool mark, bool* referenced);
  // Counts `items` (and `wide`) items arriving in (negative: leaving) bucket b.
  // REQUIRES: b's stripe mutex.
  void Count(size_t b, int items, int wide);
  enum class Place { kStored, kFull, kMoved, kNoPage };
  // What one store did.
  struct Change {
    bool added = false;         // a new item (not an overwrite)
    int evicted = 0;            // items evicted to make room
    bool retry_growth = false;  // see kRetryGrowthEvery
  };
  // One attempt at storing: locks the key's buckets, then PutLocked.
  // kMoved: the geometry moved under it; try again.
  Place PutOnce(const TinyKey& key, const SlotValue& value, int depth, bool evict, Change* change);
  Place PutLocked(const TinyKey& key, const SlotValue& value, const Addr (&a)[2], const Frame& f,
                  int depth, bool evict, Change* change);
  // Empties the aligned pair at slots i, i + 1 of bucket b by moving its
  // items to their other buckets (CuckooFrom at `depth`). True if the pair
  // is free.
  bool FreeCell(uint64_t* bucket, int i, size_t b, const Frame& f, int depth);
  // Moves the item in slot i of bucket b (b's stripe held) to its other
  // bucket, first making room there `depth - 1` levels down (a wide item
  // into a pair that it frees the same way).
  // True if moved (slot i, and a wide item's partner, are then empty); a
  // continuation slot never moves on its own.
  // `known`, if given, is OtherAddress(bucket[i], b).
  bool CuckooFrom(uint64_t* bucket, int i, size_t b, const Frame& f, int depth,
                  const Addr* known = nullptr);
  // The other bucket of the item in `slot` of bucket `b`, and its remainder there.
  Addr OtherAddress(uint64_t slot, size_t b, size_t nbuckets) const;
  // Splits buckets while the load is above kMaxLoad (or at least `min_splits`
  // times). False if it could not split at all (no page).
  bool Grow(size_t min_splits);
  bool SplitOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(resize_);
  void MergeOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(resize_);
  // A geometry change: odd version, new bucket count, even version.
  void BeginResize() ABSL_EXCLUSIVE_LOCKS_REQUIRED(resize_);
  void EndResize(size_t nbuckets) ABSL_EXCLUSIVE_LOCKS_REQUIRED(resize_);
  bool NeedsGrowth() const {
    return static_cast<double>(approx_slots_.load(std::memory_order_relaxed)) >
           kMaxLoad * static_cast<double>(buckets() * kSlotsPerBucket);
  }
  // Zeroes a page's slots (atomic stores: lock-free readers may look).
  void ZeroPage(uint8_t* page);
  // Zeroes every stripe's item counts (counting the items as evicted if
  // `evicted`) and the shared load. REQUIRES: every stripe mutex.
  void EmptyCounts(bool evicted);
  // The sum of one per-stripe count.
  template <typename Field>
  int64_t SumStripes(Field field) const;
  // Every stripe mutex, for Clear and the last page's release.
  void LockAll();
  void UnlockAll();

  const size_t page_size_;
  const size_t max_pages_;
  const int bucket_shift_;  // log2(buckets per page) = the lowest level
  const size_t bucket_mask_;
  // One pair of bijections per class field value, each on that class's key
  // bits (6 and 7 are no key's class: placeholders).
  const std::array<compact::tiny::KeyMix, 8> mix_;
  PageSource* const source_;
  std::unique_ptr<std::atomic<uint8_t*>[]> dir_;  // [max_pages_]; set under resize_
  std::unique_ptr<Stripe[]> stripes_;

  absl::Mutex resize_;                    // orders resizes (Grow, ReleasePage, Clear)
  std::atomic<uint64_t> geo_version_{0};  // odd while the geometry changes
  std::atomic<size_t> nbuckets_{0};       // 2^level + split, or 0 with no page
  std::atomic<size_t> npages_{0};         // written under resize_
  // Slots in use, give or take kFoldEvery per stripe: decides growth only.
  std::atomic<int64_t> approx_slots_{0};
  // The last growth found no page: inserts evict instead of searching deep
  // for room, until a stripe's kRetryGrowthEvery-th eviction.
  std::atomic<bool> out_of_pages_{false};
  // Out of pages, inserts moved residents until one could not: from then on
  // (until the table grows again) a full pair evicts without searching.
  std::atomic<bool> topped_up_{false};
  // Evictions between looks for free pages: each stripe looks once per this
  // many of its own evictions, the stripes staggered, so the table as a
  // whole looks about once per this many evictions.
  static constexpr uint64_t kRetryGrowthEvery = 4096;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_TINY_TABLE_H_
