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
//   table size, all keys of one bucket share a stripe, before and after
//   growth.
//
//   Counting: each stripe counts its items under its lock. A stripe past
//   1.5 items per bucket of its own wakes the maintainer (once per table
//   size), which sums the stripes and grows the table when the whole is.
//
//   Growth: when items > 1.5 x buckets the maintenance thread doubles the
//   table without stopping the server: it installs the new table under all
//   stripe locks (a pointer swap), then moves old buckets one at a time, each
//   under that bucket's stripe lock, advancing expand_bucket_. A lookup under
//   its stripe lock uses the old table for old buckets >= expand_bucket_ and
//   the new table otherwise; that comparison can only change under the same
//   stripe lock, so every lookup sees one consistent chain. A final all-locks
//   swap frees the old table.
//
// Thread safety: Find/Insert/Remove/Replace REQUIRE the key's stripe lock.
#ifndef TINYCACHED_CORE_HASH_INDEX_H_
#define TINYCACHED_CORE_HASH_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
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
  int hashpower() const { return hashpower_.load(std::memory_order_relaxed); }
  // The table's bytes, and the old one's while the index grows.
  size_t bytes() const {
    const size_t buckets = size_t{1} << hashpower();
    return (expanding() ? buckets + buckets / 2 : buckets) * layout_->refs().width();
  }
  bool expanding() const { return expanding_.load(std::memory_order_relaxed); }

  // Background growth. Start() once; the destructor stops the thread.
  void StartMaintainer();
  // Stops and joins the maintainer (idempotent; the destructor calls it).
  void StopMaintainer();
  // Grows now, synchronously (tests; the maintainer calls it too). False
  // when the bigger table could not be allocated.
  bool Grow();

 private:
  // A stripe's lock and the count of the items in its chains, kept in the
  // lock's cache line: a store writes no counter other stores share.
  struct alignas(64) Stripe {
    absl::Mutex mu;
    std::atomic<size_t> items{0};  // written under mu, read by anyone
    int woke_at = 0;               // the hashpower at which it last woke the maintainer; under mu
  };
  // Counts an item in (+1) or out (-1) of `stripe`; wakes the maintainer
  // when the stripe alone is past the growth load. REQUIRES: its lock.
  void CountItem(Stripe& stripe, int delta);

  // A bucket is one stored reference (layout_->refs()) in a table.
  uint8_t* NewTable(int hashpower) const;
  uint8_t* BucketFor(uint64_t hash) const;
  uint8_t* Bucket(uint8_t* table, size_t b) const { return table + b * layout_->refs().width(); }
  uint8_t* Head(const uint8_t* bucket) const { return layout_->refs().Load(bucket); }
  void SetHead(uint8_t* bucket, const uint8_t* it) const { layout_->refs().Store(bucket, it); }
  bool Splice(uint64_t hash, uint8_t* it, uint8_t* replacement);
  void MaintainerLoop();
  void LockAll();
  void UnlockAll();

  const Layout* layout_;
  std::unique_ptr<Stripe[]> stripes_;

  // Changed only under all stripe locks; read under any stripe lock.
  uint8_t* primary_ = nullptr;
  uint8_t* old_ = nullptr;
  std::atomic<int> hashpower_;
  std::atomic<bool> expanding_{false};
  // Old buckets below this have moved. Changed under that bucket's stripe lock.
  std::atomic<size_t> expand_bucket_{0};

  absl::Mutex maint_mu_;
  bool stop_ ABSL_GUARDED_BY(maint_mu_) = false;
  std::thread maintainer_;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_HASH_INDEX_H_
