// core/hash_index.h — the key index: chained hash table + item lock stripes.
//
// Implementation details
//   Buckets hold the first item of a chain; items chain through the layout's
//   hash-next field, so the table costs one reference per bucket (8 bytes
//   with pointers, 3 with 3-byte page references) and nothing per item
//   beyond the header field (memcached's assoc.c shape).
//
//   Keys are hashed and compared in their stored form (compact::StoredKey:
//   packed — base-250 decimal, or tagged hex/UUID bytes — or text, with the
//   packed bit), which is unique per key text (compact/key_codec.h), so
//   growth rehashes from the items' own bytes.
//
//   Locking: kStripes mutexes ("item locks"); stripe = hash & (kStripes - 1).
//   A stripe lock protects every chain whose bucket maps to it and the
//   contents of the items in those chains. Because kStripes divides every
//   power of two the table uses, all keys of one bucket share a stripe, and a
//   bucket and the one it splits into share it too.
//
//   Counting: each stripe counts its items under its lock. A stripe past
//   1.5 items per bucket of its own wakes the maintainer (once per table
//   size it sees), which sums the stripes and grows the table when the
//   whole is past 1.5.
//
//   Growth is linear hashing, one bucket at a time, so the table never
//   exists twice: with 2^L <= n < 2^(L+1) buckets and split pointer
//   s = n - 2^L, a hash h addresses bucket h mod 2^L, or h mod 2^(L+1) when
//   that is below s. Splitting bucket s moves the items of its chain whose
//   hash has bit L set to the new bucket s + 2^L, under s's stripe lock (the
//   new bucket's too), then publishes n + 1. Buckets live in segments of
//   2^kSegmentBits, allocated as the split pointer reaches them; a directory
//   of segment pointers, sized for the largest table and committed by the
//   kernel only where written, finds them. Memory grows a segment at a time
//   (12 KiB with 3-byte references), not by a second table of twice the
//   size: memcached's doubling holds old and new tables at once, 3x the
//   final index for a while. A lookup under its stripe lock computes its
//   bucket from the bucket count it reads; a split elsewhere can change that
//   count but not the bucket of any key in a stripe it does not hold.
//
// Thread safety: Find/Insert/Remove/Replace REQUIRE the key's stripe lock.
#ifndef TINYCACHED_CORE_HASH_INDEX_H_
#define TINYCACHED_CORE_HASH_INDEX_H_

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"
#include "compact/item_layout.h"

namespace tinycached::core {

class HashIndex {
 public:
  static constexpr int kStripeBits = 10;
  static constexpr size_t kStripes = size_t{1} << kStripeBits;
  static constexpr int kMinHashPower = kStripeBits + 2;
  static constexpr int kMaxHashPower = 32;
  // Buckets are allocated a segment at a time.
  static constexpr int kSegmentBits = kMinHashPower;
  static constexpr size_t kSegmentBuckets = size_t{1} << kSegmentBits;
  static_assert(kMinHashPower > kStripeBits,
                "every table size must be a multiple of kStripes so a bucket has one stripe");

  using Layout = compact::ItemLayout;
  using StoredKey = compact::StoredKey;

  // `hashpower` is clamped to [kMinHashPower, kMaxHashPower].
  HashIndex(const Layout* layout, int hashpower);
  ~HashIndex();
  HashIndex(const HashIndex&) = delete;
  HashIndex& operator=(const HashIndex&) = delete;

  static uint64_t Hash(const StoredKey& key) { return Hash(key.bytes(), key.packed()); }
  static uint64_t Hash(std::string_view stored, bool packed) {
    return absl::HashOf(stored, packed);
  }
  uint64_t HashOfItem(const uint8_t* it) const {
    return Hash(layout_->StoredKeyBytes(it), layout_->KeyPacked(it));
  }
  absl::Mutex& StripeLock(uint64_t hash) { return stripes_[hash & (kStripes - 1)].mu; }
  static size_t StripeOf(uint64_t hash) { return hash & (kStripes - 1); }
  absl::Mutex& StripeLockAt(size_t stripe) { return stripes_[stripe].mu; }

  // REQUIRES: StripeLock(hash) held.
  uint8_t* Find(uint64_t hash, const StoredKey& key) const;
  // Links `it` (whose key must not be present). REQUIRES: StripeLock(hash).
  void Insert(uint64_t hash, uint8_t* it);
  // Unlinks `it`; false if it was not linked. REQUIRES: StripeLock(hash).
  bool Remove(uint64_t hash, uint8_t* it);
  // Puts `new_it` where `old_it` was. REQUIRES: StripeLock(hash).
  void Replace(uint64_t hash, uint8_t* old_it, uint8_t* new_it);

  // Every item of every chain under `stripe`, in both tables while growing.
  // `visit` must not change the chains. REQUIRES: StripeLockAt(stripe).
  void ForEachInStripe(size_t stripe, absl::FunctionRef<void(uint8_t*)> visit) const;

  // A sum over the stripes: for stats and the maintainer, not hot paths.
  size_t items() const;
  // floor(log2(buckets)): the level linear hashing splits from.
  int hashpower() const { return std::bit_width(buckets()) - 1; }
  // ceil(log2(buckets)): the hash bits a bucket address may take, reported as
  // memcached's hash_power_level (its table is always 2^level buckets and
  // doubles at once; this one reaches the next power a split at a time, and a
  // split bucket is already addressed with level + 1 bits).
  int hash_bits() const { return std::bit_width(buckets() - 1); }
  size_t buckets() const { return nbuckets_.load(std::memory_order_acquire); }
  // The segments' bytes (the directory's few touched pages aside).
  size_t bytes() const {
    return nsegments_.load(std::memory_order_relaxed) * kSegmentBuckets * layout_->refs().width();
  }
  // True while the maintainer is splitting buckets.
  bool expanding() const { return expanding_.load(std::memory_order_relaxed); }

  // Background growth. Start() once; the destructor stops the thread.
  void StartMaintainer();
  // Stops and joins the maintainer (idempotent; the destructor calls it).
  void StopMaintainer();
  // Doubles the bucket count now, a split at a time, as the maintainer
  // grows (tests). False when a segment could not be allocated.
  bool Grow();
  // Grows now (a split at a time) to the buckets `items` need at the
  // maintainer's load: a warm restart that knows how many items are coming
  // saves walking long chains until the maintainer catches up. False when a
  // segment could not be allocated.
  bool Reserve(size_t items);
  // Starts loading the bucket `hash` addresses into the cache (a hint: no
  // lock, and a split racing it only makes it useless).
  void Prefetch(uint64_t hash) const { __builtin_prefetch(BucketFor(hash)); }

 private:
  // A stripe's lock and the count of the items in its chains, kept in the
  // lock's cache line: a store writes no counter other stores share.
  struct alignas(64) Stripe {
    absl::Mutex mu;
    std::atomic<size_t> items{0};  // written under mu, read by anyone
    size_t woke_at = 0;  // the bucket count at which it last woke the maintainer; under mu
  };
  // Counts an item in (+1) or out (-1) of `stripe`; wakes the maintainer
  // when the stripe alone is past the growth load. REQUIRES: its lock.
  void CountItem(Stripe& stripe, int delta);

  // A bucket is one stored reference (layout_->refs()).
  uint8_t* NewSegment() const;
  // The bucket `hash` addresses with `nbuckets` buckets.
  static size_t BucketIndex(uint64_t hash, size_t nbuckets) {
    const int level = std::bit_width(nbuckets) - 1;
    const size_t split = nbuckets - (size_t{1} << level);
    size_t b = hash & ((size_t{1} << level) - 1);
    if (b < split) b = hash & ((size_t{1} << (level + 1)) - 1);
    return b;
  }
  uint8_t* BucketAt(size_t b) const {
    return __atomic_load_n(&segments_[b >> kSegmentBits], __ATOMIC_ACQUIRE) +
           (b & (kSegmentBuckets - 1)) * layout_->refs().width();
  }
  uint8_t* BucketFor(uint64_t hash) const { return BucketAt(BucketIndex(hash, buckets())); }
  uint8_t* Head(const uint8_t* bucket) const { return layout_->refs().Load(bucket); }
  void SetHead(uint8_t* bucket, const uint8_t* it) const { layout_->refs().Store(bucket, it); }
  bool Splice(uint64_t hash, uint8_t* it, uint8_t* replacement);
  // Splits the bucket at the split pointer. False if its new bucket needed
  // a segment that could not be had. REQUIRES: grow_mu_.
  bool SplitOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(grow_mu_);
  // Splits until items <= 1.5 x buckets (the maintainer's growth).
  bool GrowToLoad();
  void MaintainerLoop();

  const Layout* layout_;
  std::unique_ptr<Stripe[]> stripes_;

  // Segment pointers for every bucket of the largest table; an entry is set
  // (under grow_mu_) before any bucket count covers it.
  // calloc'd, so the kernel commits only the pages of entries written (8
  // MiB of address space for 2^32 buckets; one 4 KiB page per 2M buckets).
  // Plain pointers read and written with __atomic builtins.
  struct Free {
    void operator()(uint8_t** p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t*[], Free> segments_;
  std::atomic<size_t> nsegments_{0};
  std::atomic<size_t> nbuckets_{
      0};  // 2^level + split pointer; stored under the split's stripe lock
  std::atomic<bool> expanding_{false};
  absl::Mutex grow_mu_;  // one grower at a time (the maintainer, or Grow())

  absl::Mutex maint_mu_;
  bool stop_ ABSL_GUARDED_BY(maint_mu_) = false;
  std::thread maintainer_;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_HASH_INDEX_H_
