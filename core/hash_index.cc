#include "core/hash_index.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace tinycached::core {
namespace {

// The largest table's segment count: the directory's size.
constexpr size_t kMaxSegments = size_t{1} << (HashIndex::kMaxHashPower - HashIndex::kSegmentBits);

}  // namespace

uint8_t* HashIndex::NewSegment() const {
  const size_t width = layout_->refs().width();
  auto* t = static_cast<uint8_t*>(std::malloc(kSegmentBuckets * width));
  if (t == nullptr) return nullptr;
  uint8_t null_ref[8];
  layout_->refs().Store(null_ref, nullptr);
  std::memset(t, null_ref[0], kSegmentBuckets * width);  // null is all-zero or all-ones bytes
  return t;
}

HashIndex::HashIndex(const Layout* layout, int hashpower)
    : layout_(layout),
      stripes_(new Stripe[kStripes]),
      segments_(static_cast<uint8_t**>(std::calloc(kMaxSegments, sizeof(uint8_t*)))) {
  if (segments_ == nullptr) std::abort();
  const size_t buckets = size_t{1} << std::clamp(hashpower, kMinHashPower, kMaxHashPower);
  size_t n = 0;
  for (; n < buckets / kSegmentBuckets; ++n) {
    uint8_t* segment = NewSegment();
    if (segment == nullptr) break;  // smaller, then: it grows when it can
    __atomic_store_n(&segments_[n], segment, __ATOMIC_RELAXED);
  }
  if (n == 0) std::abort();  // not even one segment: nothing can be indexed
  nsegments_.store(n, std::memory_order_relaxed);
  nbuckets_.store(n * kSegmentBuckets, std::memory_order_release);
}

HashIndex::~HashIndex() {
  StopMaintainer();
  for (size_t i = 0; i < nsegments_.load(); ++i) std::free(segments_[i]);
}

uint8_t* HashIndex::Find(uint64_t hash, const StoredKey& key) const {
  for (uint8_t* it = Head(BucketFor(hash)); it != nullptr; it = layout_->HashNext(it)) {
    if (layout_->KeyMatches(it, key)) return it;
  }
  return nullptr;
}

void HashIndex::Insert(uint64_t hash, uint8_t* it) {
  uint8_t* bucket = BucketFor(hash);
  layout_->SetHashNext(it, Head(bucket));
  SetHead(bucket, it);
  CountItem(stripes_[StripeOf(hash)], 1);
}

void HashIndex::CountItem(Stripe& stripe, int delta) {
  const size_t n = stripe.items.load(std::memory_order_relaxed) + static_cast<size_t>(delta);
  stripe.items.store(n, std::memory_order_relaxed);
  if (delta < 0) return;
  const size_t buckets = this->buckets();
  // 1.5 items a bucket over the stripe's buckets / kStripes buckets.
  if (n <= (buckets >> kStripeBits) * 3 / 2 || stripe.woke_at == buckets || expanding() ||
      hashpower() >= kMaxHashPower) {
    return;
  }
  stripe.woke_at = buckets;
  absl::MutexLock lock(&maint_mu_);  // wakes the maintainer (see MaintainerLoop)
}

size_t HashIndex::items() const {
  size_t n = 0;
  for (size_t i = 0; i < kStripes; ++i) n += stripes_[i].items.load(std::memory_order_relaxed);
  return n;
}

// Finds `it` in its chain and splices `replacement`'s chain position in:
// the predecessor (or the bucket) then points at `replacement`.
bool HashIndex::Splice(uint64_t hash, uint8_t* it, uint8_t* replacement) {
  uint8_t* bucket = BucketFor(hash);
  uint8_t* prev = nullptr;
  for (uint8_t* cur = Head(bucket); cur != nullptr; prev = cur, cur = layout_->HashNext(cur)) {
    if (cur != it) continue;
    if (prev == nullptr) {
      SetHead(bucket, replacement);
    } else {
      layout_->SetHashNext(prev, replacement);
    }
    layout_->SetHashNext(it, nullptr);
    return true;
  }
  return false;
}

bool HashIndex::Remove(uint64_t hash, uint8_t* it) {
  if (!Splice(hash, it, layout_->HashNext(it))) return false;
  CountItem(stripes_[StripeOf(hash)], -1);
  return true;
}

void HashIndex::Replace(uint64_t hash, uint8_t* old_it, uint8_t* new_it) {
  layout_->SetHashNext(new_it, layout_->HashNext(old_it));
  Splice(hash, old_it, new_it);
}

void HashIndex::ForEachInStripe(size_t stripe, absl::FunctionRef<void(uint8_t*)> visit) const {
  // Buckets of a stripe are those congruent to it modulo kStripes; new ones
  // of this stripe come only from splits under its lock, which is held.
  const size_t n = buckets();
  for (size_t b = stripe; b < n; b += kStripes) {
    for (uint8_t* it = Head(BucketAt(b)); it != nullptr; it = layout_->HashNext(it)) visit(it);
  }
}

bool HashIndex::SplitOne() {
  const size_t n = nbuckets_.load(std::memory_order_relaxed);
  if (n >= (size_t{1} << kMaxHashPower)) return false;
  const int level = std::bit_width(n) - 1;
  const size_t s = n - (size_t{1} << level);  // splits into s + 2^level = n
  const size_t seg = n >> kSegmentBits;
  if (seg >= nsegments_.load(std::memory_order_relaxed)) {
    uint8_t* segment = NewSegment();
    if (segment == nullptr) return false;
    __atomic_store_n(&segments_[seg], segment, __ATOMIC_RELEASE);
    nsegments_.store(seg + 1, std::memory_order_relaxed);
  }
  absl::MutexLock lock(&stripes_[s & (kStripes - 1)].mu);  // n's stripe too: 2^level is a multiple
  uint8_t* from = BucketAt(s);
  uint8_t* to = BucketAt(n);
  uint8_t* keep = nullptr;
  uint8_t* move = nullptr;
  for (uint8_t* it = Head(from); it != nullptr;) {
    uint8_t* next = layout_->HashNext(it);
    uint8_t*& list = ((HashOfItem(it) >> level) & 1) != 0 ? move : keep;
    layout_->SetHashNext(it, list);
    list = it;
    it = next;
  }
  SetHead(from, keep);
  SetHead(to, move);
  nbuckets_.store(n + 1, std::memory_order_release);
  return true;
}

bool HashIndex::GrowToLoad() {
  absl::MutexLock grow(&grow_mu_);
  expanding_.store(true, std::memory_order_relaxed);
  bool ok = true;
  for (;;) {
    // The stripes are summed once per batch, not per split.
    const size_t want = items() * 2 / 3 + 1;
    const size_t have = buckets();
    if (have >= want) break;
    for (size_t i = 0; i < std::min<size_t>(want - have, kSegmentBuckets) && ok; ++i)
      ok = SplitOne();
    if (!ok) break;
  }
  expanding_.store(false, std::memory_order_relaxed);
  return ok;
}

bool HashIndex::Grow() {
  absl::MutexLock grow(&grow_mu_);
  const size_t target = std::min(buckets() * 2, size_t{1} << kMaxHashPower);
  while (buckets() < target) {
    if (!SplitOne()) return false;
  }
  return true;
}

bool HashIndex::Reserve(size_t items) {
  absl::MutexLock grow(&grow_mu_);
  const size_t target = std::min(items * 2 / 3 + 1, size_t{1} << kMaxHashPower);
  while (buckets() < target) {
    if (!SplitOne()) return false;
  }
  return true;
}

void HashIndex::StopMaintainer() {
  {
    absl::MutexLock lock(&maint_mu_);
    stop_ = true;
  }
  if (maintainer_.joinable()) maintainer_.join();
}

void HashIndex::StartMaintainer() {
  maintainer_ = std::thread([this] { MaintainerLoop(); });
}

void HashIndex::MaintainerLoop() {
  auto needs_growth = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_) {
    return stop_ || (items() > buckets() * 3 / 2 && hashpower() < kMaxHashPower);
  };
  for (;;) {
    {
      // Woken by a stripe past the growth load (CountItem); looks again each
      // second as well, in case the stripes that woke it did so too early.
      absl::MutexLock lock(&maint_mu_);
      while (!maint_mu_.AwaitWithTimeout(absl::Condition(&needs_growth), absl::Seconds(1))) {
      }
      if (stop_) return;
    }
    if (!GrowToLoad()) {
      // Out of memory for a segment: try again in a while, not in a spin.
      absl::MutexLock lock(&maint_mu_);
      maint_mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Seconds(1));
      if (stop_) return;
    }
  }
}

}  // namespace tinycached::core
