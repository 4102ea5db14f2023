#include "core/hash_index.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace tinycached::core {
uint8_t* HashIndex::NewTable(int hashpower) const {
  const size_t buckets = size_t{1} << hashpower;
  const size_t width = layout_->refs().width();
  auto* t = static_cast<uint8_t*>(std::malloc(buckets * width));
  if (t == nullptr) return nullptr;
  uint8_t null_ref[8];
  layout_->refs().Store(null_ref, nullptr);
  std::memset(t, null_ref[0], buckets * width);  // null is all-zero or all-ones bytes
  return t;
}

HashIndex::HashIndex(const Layout* layout, int hashpower)
    : layout_(layout),
      stripes_(new Stripe[kStripes]),
      hashpower_(std::clamp(hashpower, kMinHashPower, kMaxHashPower)) {
  primary_ = NewTable(hashpower_);
}

HashIndex::~HashIndex() {
  StopMaintainer();
  std::free(primary_);
  std::free(old_);
}

uint8_t* HashIndex::BucketFor(uint64_t hash) const {
  const int hp = hashpower_.load(std::memory_order_relaxed);
  if (expanding_.load(std::memory_order_relaxed)) {
    const size_t old_bucket = hash & ((size_t{1} << (hp - 1)) - 1);
    if (old_bucket >= expand_bucket_.load(std::memory_order_acquire)) {
      return Bucket(old_, old_bucket);
    }
  }
  return Bucket(primary_, hash & ((size_t{1} << hp) - 1));
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
  const int hp = hashpower();
  // 1.5 items a bucket over the stripe's 2^hp / kStripes buckets.
  if (n <= (size_t{3} << (hp - kStripeBits)) / 2 || stripe.woke_at == hp || expanding() ||
      hp >= kMaxHashPower) {
    return;
  }
  stripe.woke_at = hp;
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

void HashIndex::ForEachInStripe(size_t stripe,
                                absl::FunctionRef<void(uint8_t*)> visit) const {
  const int hp = hashpower();
  auto walk = [&](uint8_t* table, size_t buckets, size_t from) {
    // Buckets of a stripe are those congruent to it modulo kStripes.
    for (size_t b = stripe; b < buckets; b += kStripes) {
      if (b < from) continue;
      for (uint8_t* it = Head(Bucket(table, b)); it != nullptr; it = layout_->HashNext(it)) {
        visit(it);
      }
    }
  };
  walk(primary_, size_t{1} << hp, 0);
  if (expanding()) walk(old_, size_t{1} << (hp - 1), expand_bucket_.load(std::memory_order_acquire));
}

void HashIndex::LockAll() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (size_t i = 0; i < kStripes; ++i) stripes_[i].mu.Lock();
}

void HashIndex::UnlockAll() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (size_t i = kStripes; i-- > 0;) stripes_[i].mu.Unlock();
}

bool HashIndex::Grow() {
  const int hp = hashpower();
  if (hp >= kMaxHashPower) return true;
  uint8_t* bigger = NewTable(hp + 1);
  if (bigger == nullptr) return false;  // stay at this size; chains just get longer

  LockAll();
  old_ = primary_;
  primary_ = bigger;
  expand_bucket_.store(0, std::memory_order_release);
  hashpower_.store(hp + 1, std::memory_order_relaxed);
  expanding_.store(true, std::memory_order_relaxed);
  UnlockAll();

  const size_t old_size = size_t{1} << hp;
  const size_t new_mask = (size_t{1} << (hp + 1)) - 1;
  for (size_t b = 0; b < old_size; ++b) {
    absl::MutexLock lock(&stripes_[b & (kStripes - 1)].mu);
    uint8_t* it = Head(Bucket(old_, b));
    while (it != nullptr) {
      uint8_t* next = layout_->HashNext(it);
      uint8_t* dst = Bucket(primary_, HashOfItem(it) & new_mask);
      layout_->SetHashNext(it, Head(dst));
      SetHead(dst, it);
      it = next;
    }
    SetHead(Bucket(old_, b), nullptr);
    expand_bucket_.store(b + 1, std::memory_order_release);
  }

  LockAll();
  std::free(old_);
  old_ = nullptr;
  expanding_.store(false, std::memory_order_relaxed);
  UnlockAll();
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
    return stop_ || (items() > (size_t{3} << hashpower()) / 2 && hashpower() < kMaxHashPower);
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
    if (!Grow()) {
      // Out of memory for the bigger table: try again in a while, not in a spin.
      absl::MutexLock lock(&maint_mu_);
      maint_mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Seconds(1));
      if (stop_) return;
    }
  }
}

}  // namespace tinycached::core
