#include "core/tiny_table.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace tinycached::core {

namespace ct = compact::tiny;

namespace {

// Locks the stripes of two buckets in stripe order (once if they share one).
class PairLock {
 public:
  PairLock(absl::Mutex* a, absl::Mutex* b) : a_(std::min(a, b)), b_(a == b ? nullptr : std::max(a, b)) {
    a_->Lock();
    if (b_ != nullptr) b_->Lock();
  }
  ~PairLock() {
    if (b_ != nullptr) b_->Unlock();
    a_->Unlock();
  }

 private:
  absl::Mutex* const a_;
  absl::Mutex* const b_;
};

// A free slot, or -1. (Taking slots whose partner is used first, to keep
// pairs whole for wide items, held fewer items in every fill measured:
// 8,185,076 against 8,195,042 narrow, 5,089,586 against 5,097,781 with
// 9-digit values, of which a third are wide.)
int FreeSlot(const uint64_t* bucket) {
  for (int i = 0; i < TinyTable::kSlotsPerBucket; ++i) {
    if (!ct::Used(bucket[i])) return i;
  }
  return -1;
}

// The first slot of a free aligned pair, or -1.
int FreePair(const uint64_t* bucket) {
  for (int i = 0; i < TinyTable::kSlotsPerBucket; i += 2) {
    if (!ct::Used(bucket[i]) && !ct::Used(bucket[i + 1])) return i;
  }
  return -1;
}

int UsedSlots(const uint64_t* bucket) {
  int n = 0;
  for (int i = 0; i < TinyTable::kSlotsPerBucket; ++i) n += ct::Used(bucket[i]) ? 1 : 0;
  return n;
}

// A used slot that is an item's (head) slot.
bool IsItem(uint64_t slot) { return ct::Used(slot) && !ct::IsContinuation(slot); }

int ItemsIn(const uint64_t* bucket, int* wide) {
  int n = 0;
  for (int i = 0; i < TinyTable::kSlotsPerBucket; ++i) {
    if (!IsItem(bucket[i])) continue;
    ++n;
    if (ct::IsWide(bucket[i])) ++*wide;
  }
  return n;
}

ct::SlotValue ValueAt(const uint64_t* p) {
  return {ct::Value(*p), ct::IsWide(*p) ? ct::ContinuationBits(p[1]) : 0};
}

std::array<ct::KeyMix, 8> Mixes(int min_addr_bits) {
  auto mix = [&](int cls) { return ct::KeyMix(ct::KeyBits(cls, min_addr_bits)); };
  static_assert(ct::kClasses == 6, "one bijection per class");
  return {mix(0), mix(1), mix(2), mix(3), mix(4), mix(5), mix(0), mix(0)};
}

}  // namespace

TinyTable::TinyTable(size_t page_size, size_t max_pages, PageSource* source)
    : page_size_(page_size),
      max_pages_(max_pages),
      bucket_shift_(std::countr_zero(page_size / kBucketBytes)),
      bucket_mask_(page_size / kBucketBytes - 1),
      mix_(Mixes(bucket_shift_)),
      source_(source),
      dir_(new uint8_t*[max_pages]()),
      stripes_(new absl::Mutex[kStripes]),
      level_(bucket_shift_) {}

TinyTable::~TinyTable() {
  for (size_t i = 0; i < npages_.load(); ++i) source_->ReturnPage(dir_[i]);
}

TinyTable::Addr TinyTable::AddressOf(const TinyKey& key, int choice) const {
  const int cls = ct::ClassOfKey(key);
  const uint64_t h = mix_[cls].Mix(ct::KeyNumber(key), choice);
  size_t a = h & ((uint64_t{1} << level_) - 1);
  int bits = level_;
  if (a < split_) {
    a = h & ((uint64_t{1} << (level_ + 1)) - 1);
    bits = level_ + 1;
  }
  return {a, h >> bits, cls};
}

TinyTable::TinyKey TinyTable::KeyOf(uint64_t slot, size_t b) const {
  const int cls = ct::SlotClass(slot);
  const uint64_t h = (ct::Remainder(slot) << AddrBits(b)) | b;
  return ct::TagKey(cls, mix_[cls].Unmix(h, ct::Alt(slot) ? 1 : 0));
}

uint64_t* TinyTable::Find(const Addr& a, int choice) const {
  uint64_t* bucket = Bucket(a.bucket);
  const uint64_t want = ct::MakeSlot(a.cls, a.remainder, choice != 0, 0);
  const uint64_t fields = ct::KeyFields(a.cls);
  for (int i = 0; i < kSlotsPerBucket; ++i) {
    if ((bucket[i] & fields) == want) return &bucket[i];
  }
  return nullptr;
}

bool TinyTable::WithSlot(const TinyKey& key, absl::FunctionRef<void(uint64_t*)> fn) {
  absl::ReaderMutexLock geo(&geo_);
  if (npages_.load(std::memory_order_relaxed) == 0) return false;
  const Addr a0 = AddressOf(key, 0), a1 = AddressOf(key, 1);
  // Both buckets at once: a cuckoo move may carry the key from one to the other.
  PairLock lock(&StripeOf(a0.bucket), &StripeOf(a1.bucket));
  uint64_t* p = Find(a0, 0);
  if (p == nullptr) p = Find(a1, 1);
  if (p == nullptr) return false;
  fn(p);
  return true;
}

bool TinyTable::Lookup(const TinyKey& key, SlotValue* value, bool mark) {
  return WithSlot(key, [&](uint64_t* p) {
    *value = ValueAt(p);
    if (mark && !ct::Referenced(*p)) *p |= ct::kRef;
  });
}

bool TinyTable::Get(const TinyKey& key, SlotValue* value) { return Lookup(key, value, true); }
bool TinyTable::Inspect(const TinyKey& key, SlotValue* value, bool mark, bool* referenced) {
  return WithSlot(key, [&](uint64_t* p) {
    *value = ValueAt(p);
    *referenced = ct::Referenced(*p);
    if (mark && !*referenced) *p |= ct::kRef;
  });
}
bool TinyTable::Peek(const TinyKey& key, SlotValue* value) { return Lookup(key, value, false); }

TinyTable::Addr TinyTable::OtherAddress(uint64_t slot, size_t b) const {
  return AddressOf(KeyOf(slot, b), ct::Alt(slot) ? 0 : 1);
}

bool TinyTable::CuckooFrom(uint64_t* bucket, int i, size_t b, const absl::Mutex* held0,
                           const absl::Mutex* held1, int depth, const Addr* known) {
  const uint64_t s = bucket[i];
  if (!IsItem(s)) return false;
  const bool wide = ct::IsWide(s);
  const int other = ct::Alt(s) ? 0 : 1;
  const Addr to = known != nullptr ? *known : OtherAddress(s, b);
  if (to.bucket == b) return false;
  absl::Mutex& m = StripeOf(to.bucket);
  const bool held = &m == held0 || &m == held1 || &m == &StripeOf(b);
  if (!held && !m.TryLock()) return false;
  uint64_t* dst = Bucket(to.bucket);
  int j = wide ? FreePair(dst) : FreeSlot(dst);
  if (j < 0 && depth > 1) {
    // The other bucket is full too: make room there first, one level down
    // (a slot, or for a wide item a pair).
    if (wide) {
      for (int k = 0; k < kSlotsPerBucket && j < 0; k += 2) {
        if (FreeCell(dst, k, to.bucket, held0, held1, depth - 1)) j = k;
      }
    } else {
      for (int k = 0; k < kSlotsPerBucket && j < 0; ++k) {
        if (CuckooFrom(dst, k, to.bucket, held0, held1, depth - 1)) j = k;
      }
    }
  }
  if (j >= 0) {
    dst[j] = ct::MakeSlot(to.cls, to.remainder, other != 0, ct::Value(s)) | (s & ct::kRef);
    if (wide) dst[j + 1] = bucket[i + 1];
  }
  if (!held) m.Unlock();
  if (j >= 0) {
    bucket[i] = 0;
    if (wide) bucket[i + 1] = 0;
  }
  return j >= 0;
}

bool TinyTable::FreeCell(uint64_t* bucket, int i, size_t b, const absl::Mutex* held0,
                         const absl::Mutex* held1, int depth) {
  for (int k = i; k < i + 2; ++k) {
    if (IsItem(bucket[k]) && !CuckooFrom(bucket, k, b, held0, held1, depth)) return false;
  }
  return !ct::Used(bucket[i]) && !ct::Used(bucket[i + 1]);
}

TinyTable::Place TinyTable::PutLocked(const TinyKey& key, const SlotValue& value, int depth, bool evict,
                                      Change* change) {
  const bool wide = ct::WideValue(key.cls, value);
  const Addr a[2] = {AddressOf(key, 0), AddressOf(key, 1)};
  PairLock lock(&StripeOf(a[0].bucket), &StripeOf(a[1].bucket));
  uint64_t* b[2] = {Bucket(a[0].bucket), Bucket(a[1].bucket)};
  for (int c = 0; c < 2; ++c) {
    uint64_t* p = Find(a[c], c);
    if (p == nullptr) continue;
    const bool was_wide = ct::IsWide(*p);
    const bool pair_head = (p - b[c]) % 2 == 0;
    if (!wide || was_wide || (pair_head && !ct::Used(p[1]))) {
      // In place: the same width, narrower, or wider into the free partner.
      *p = ct::WithValue(*p, value.code) | ct::kRef;
      if (wide) {
        p[1] = ct::MakeContinuation(value.ext);
      } else if (was_wide) {
        p[1] = 0;
      }
      change->wide += (wide ? 1 : 0) - (was_wide ? 1 : 0);
      return Place::kStored;
    }
    // Wider with its partner taken: out, and in again below as a new item.
    *p = 0;
    change->items -= 1;
    break;
  }
  const auto put = [&](int c, int i) {
    b[c][i] = ct::MakeSlot(a[c].cls, a[c].remainder, c != 0, value.code);
    if (wide) b[c][i + 1] = ct::MakeContinuation(value.ext);
    change->items += 1;
    change->wide += wide ? 1 : 0;
  };
  const absl::Mutex* held0 = &StripeOf(a[0].bucket);
  const absl::Mutex* held1 = &StripeOf(a[1].bucket);
  // The emptier bucket.
  const int first = UsedSlots(b[1]) < UsedSlots(b[0]) ? 1 : 0;
  for (int k = 0; k < 2; ++k) {
    const int c = first ^ k;
    const int i = wide ? FreePair(b[c]) : FreeSlot(b[c]);
    if (i >= 0) {
      put(c, i);
      return Place::kStored;
    }
  }
  if (wide) {
    // Room for a pair: move a cell's residents to their other buckets,
    // shallow moves first, as below.
    for (int d = 1; d <= (depth > 0 ? depth + kWideExtraDepth : 0); ++d) {
      for (int k = 0; k < 2; ++k) {
        const int c = first ^ k;
        for (int i = 0; i < kSlotsPerBucket; i += 2) {
          if (FreeCell(b[c], i, a[c].bucket, held0, held1, d)) {
            put(c, i);
            return Place::kStored;
          }
        }
      }
    }
    if (!evict) return Place::kFull;
    // CLOCK over the 8 cells: the first whose items are all unreferenced
    // goes; referenced items passed on the way lose their bit.
    constexpr uint32_t kCells = kSlotsPerBucket;  // 4 a bucket, 2 buckets
    const uint32_t start = clock_hand_.fetch_add(1, std::memory_order_relaxed) % kCells;
    uint32_t victim = start;
    for (uint32_t n = 0; n < kCells; ++n) {
      const uint32_t v = (start + n) % kCells;
      uint64_t* cell = b[v / 4] + 2 * (v % 4);
      bool referenced = false;
      for (int k = 0; k < 2; ++k) {
        if (IsItem(cell[k]) && ct::Referenced(cell[k])) {
          referenced = true;
          cell[k] &= ~ct::kRef;
        }
      }
      if (!referenced) {
        victim = v;
        break;
      }
    }
    const int c = static_cast<int>(victim / 4);
    uint64_t* cell = b[c] + 2 * (victim % 4);
    for (int k = 0; k < 2; ++k) {
      if (!IsItem(cell[k])) continue;
      change->items -= 1;
      change->evicted += 1;
      if (ct::IsWide(cell[k])) change->wide -= 1;
    }
    cell[0] = cell[1] = 0;
    put(c, static_cast<int>(2 * (victim % 4)));
    return Place::kStored;
  }
  // Both full: make room by moving residents to their other buckets — one
  // resident (a cuckoo step), or else a resident and one of the residents
  // of its other bucket (two steps), and so on to `depth`. Buckets beyond
  // the pair are only TryLock()ed; a busy one is passed over.
  // Shallow moves first: every one-step move is tried before any two-step
  // one. Candidate n is resident n % 8 of bucket n / 8; its other bucket is
  // a random cache line. Most inserts that get here find room at one of
  // the first candidates, so each is fetched one step ahead of its check
  // rather than all 16 at once (which cost 45% more per insert at load 0.9).
  // A continuation is no candidate (its item moves from its head).
  constexpr int kCandidates = 2 * kSlotsPerBucket;
  Addr other[kCandidates];
  const auto locate = [&](int n) {
    const int c = n / kSlotsPerBucket;
    const uint64_t slot = b[c][n % kSlotsPerBucket];
    if (!IsItem(slot)) return;
    other[n] = OtherAddress(slot, a[c].bucket);
    __builtin_prefetch(Bucket(other[n].bucket));
  };
  if (depth > 0) locate(0);
  for (int d = 1; d <= depth; ++d) {
    for (int n = 0; n < kCandidates; ++n) {
      if (d == 1 && n + 1 < kCandidates) locate(n + 1);
      const int c = n / kSlotsPerBucket;
      const int i = n % kSlotsPerBucket;
      if (!IsItem(b[c][i])) continue;
      if (CuckooFrom(b[c], i, a[c].bucket, held0, held1, d, &other[n])) {
        put(c, i);
        return Place::kStored;
      }
    }
  }
  if (!evict) return Place::kFull;
  // CLOCK over the 16 candidates: the first unreferenced item goes; the
  // referenced ones passed on the way lose their bit.
  const uint32_t start = clock_hand_.fetch_add(1, std::memory_order_relaxed) % (2 * kSlotsPerBucket);
  uint32_t victim = start;
  for (uint32_t n = 0; n < 2 * kSlotsPerBucket; ++n) {
    const uint32_t v = (start + n) % (2 * kSlotsPerBucket);
    uint64_t& s = b[v / kSlotsPerBucket][v % kSlotsPerBucket];
    if (!IsItem(s)) continue;
    if (!ct::Referenced(s)) {
      victim = v;
      break;
    }
    s &= ~ct::kRef;
  }
  int c = static_cast<int>(victim / kSlotsPerBucket);
  int i = static_cast<int>(victim % kSlotsPerBucket);
  if (!IsItem(b[c][i])) i &= ~1;  // the start was a continuation and every item referenced
  if (ct::IsWide(b[c][i])) {
    b[c][i + 1] = 0;
    change->wide -= 1;
  }
  change->items -= 1;
  change->evicted += 1;
  put(c, i);
  return Place::kStored;
}

TinyTable::PutResult TinyTable::Put(const TinyKey& key, const SlotValue& value) {
  // While pages can be had the table grows at kMaxLoad, and an insert whose
  // buckets are both full makes room by cuckoo moves, or by a split and
  // once more. Out of pages, inserts keep making room by moves until one
  // fails (the table tops up to ~99%); from then on a full pair evicts.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const bool full = out_of_pages_.load(std::memory_order_relaxed);
    const bool evict = attempt == 2 || full;
    const int depth = full && topped_up_.load(std::memory_order_relaxed) ? 0 : kCuckooDepth;
    Change change;
    Place place = Place::kFull;
    {
      absl::ReaderMutexLock geo(&geo_);
      if (npages_.load(std::memory_order_relaxed) == 0) {
        if (attempt == 2) return PutResult::kNoRoom;
      } else {
        place = PutLocked(key, value, depth, evict, &change);
      }
    }
    if (change.items != 0) items_.fetch_add(change.items, std::memory_order_relaxed);
    if (change.wide != 0) wide_.fetch_add(change.wide, std::memory_order_relaxed);
    if (place == Place::kStored) {
      if (change.evicted > 0) {
        topped_up_.store(true, std::memory_order_relaxed);
        // Now and then, see whether pages have come free.
        const uint64_t before =
            evictions_.fetch_add(static_cast<uint64_t>(change.evicted), std::memory_order_relaxed);
        if (before / kRetryGrowthEvery !=
                (before + static_cast<uint64_t>(change.evicted)) / kRetryGrowthEvery ||
            before % kRetryGrowthEvery == 0) {
          out_of_pages_.store(false, std::memory_order_relaxed);
        }
        return PutResult::kEvicted;
      }
      if (change.items > 0 && NeedsGrowth() && !out_of_pages_.load(std::memory_order_relaxed)) {
        Grow(0);
      }
      return PutResult::kStored;
    }
    if (!Grow(1)) attempt = std::max(attempt, 1);  // nothing to grow into: evict next
  }
  return PutResult::kNoRoom;
}

bool TinyTable::Erase(const TinyKey& key) {
  bool wide = false;
  if (!WithSlot(key, [&](uint64_t* p) {
        wide = ct::IsWide(*p);
        p[0] = 0;
        if (wide) p[1] = 0;
      })) {
    return false;
  }
  items_.fetch_sub(1, std::memory_order_relaxed);
  if (wide) wide_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

size_t TinyTable::ForEach(size_t* cursor, size_t limit,
                          absl::FunctionRef<void(const TinyKey&, const SlotValue&, bool)> fn) {
  absl::ReaderMutexLock geo(&geo_);
  if (npages_.load(std::memory_order_relaxed) == 0) return 0;
  const size_t nbuckets = nbuckets_.load(std::memory_order_relaxed);
  size_t visited = 0;
  size_t b = *cursor;
  for (; b < nbuckets && visited < limit; ++b) {
    absl::MutexLock stripe(&StripeOf(b));
    const uint64_t* bucket = Bucket(b);
    for (int i = 0; i < kSlotsPerBucket; ++i) {
      const uint64_t slot = bucket[i];
      if (!IsItem(slot)) continue;
      fn(KeyOf(slot, b), ValueAt(&bucket[i]), ct::Referenced(slot));
      ++visited;
    }
  }
  *cursor = b;
  return visited;
}

void TinyTable::Clear() {
  absl::MutexLock geo(&geo_);
  for (size_t i = 0; i < npages_.load(std::memory_order_relaxed); ++i) {
    std::memset(dir_[i], 0, page_size_);
  }
  items_.store(0, std::memory_order_relaxed);
  wide_.store(0, std::memory_order_relaxed);
}

bool TinyTable::Grow(size_t min_splits) {
  absl::MutexLock geo(&geo_);
  if (npages_.load(std::memory_order_relaxed) == 0) {
    uint8_t* page = source_->TakePage();
    if (page == nullptr) {
      out_of_pages_.store(true, std::memory_order_relaxed);
      return false;
    }
    dir_[0] = page;
    level_ = bucket_shift_;
    split_ = 0;
    npages_.store(1, std::memory_order_relaxed);
    nbuckets_.store(size_t{1} << level_, std::memory_order_relaxed);
    return true;
  }
  // A bounded batch, so that readers never wait long.
  constexpr size_t kMaxBatch = 4096;
  size_t n = 0;
  while ((n < min_splits || NeedsGrowth()) && n < kMaxBatch) {
    if (!SplitOne()) {
      out_of_pages_.store(true, std::memory_order_relaxed);
      break;
    }
    ++n;
  }
  return n > 0;
}

bool TinyTable::SplitOne() {
  const size_t nb = (size_t{1} << level_) + split_;
  size_t npages = npages_.load(std::memory_order_relaxed);
  if ((nb >> bucket_shift_) >= npages) {
    if (npages == max_pages_) return false;
    uint8_t* page = source_->TakePage();
    if (page == nullptr) return false;
    dir_[npages] = page;
    npages_.store(npages + 1, std::memory_order_relaxed);
    topped_up_.store(false, std::memory_order_relaxed);  // new room: top up again when full
  }
  uint64_t* from = Bucket(split_);
  uint64_t* to = Bucket(nb);
  std::memset(to, 0, kBucketBytes);
  // Wide items first, so that each lands on an aligned pair of `to`; what
  // moves fits, since it all came from one bucket.
  int j = 0;
  for (const bool wide_pass : {true, false}) {
    for (int i = 0; i < kSlotsPerBucket; ++i) {
      const uint64_t s = from[i];
      if (!IsItem(s) || ct::IsWide(s) != wide_pass) continue;
      // The remainder's low bit is the hash bit that now picks the bucket.
      const uint64_t r = ct::Remainder(s);
      const uint64_t moved = ct::WithRemainder(s, r >> 1);
      if ((r & 1) == 0) {
        from[i] = moved;
        continue;
      }
      to[j++] = moved;
      from[i] = 0;
      if (wide_pass) {
        to[j++] = from[i + 1];
        from[i + 1] = 0;
      }
    }
  }
  if (++split_ == (size_t{1} << level_)) {
    ++level_;
    split_ = 0;
  }
  nbuckets_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void TinyTable::MergeOne() {
  if (split_ == 0) {
    --level_;
    split_ = size_t{1} << level_;
  }
  --split_;
  const size_t s = split_;
  const size_t nb = (size_t{1} << level_) + s;
  nbuckets_.fetch_sub(1, std::memory_order_relaxed);
  // From here bucket s has `level_` address bits and bucket nb is gone: each
  // remainder takes back the bit that told the two apart.
  uint64_t* dst = Bucket(s);
  uint64_t* src = Bucket(nb);
  for (int i = 0; i < kSlotsPerBucket; ++i) {
    if (IsItem(dst[i])) dst[i] = ct::WithRemainder(dst[i], ct::Remainder(dst[i]) << 1);
  }
  const auto drop = [&](bool wide) {
    evictions_.fetch_add(1, std::memory_order_relaxed);
    items_.fetch_sub(1, std::memory_order_relaxed);
    if (wide) wide_.fetch_sub(1, std::memory_order_relaxed);
  };
  // Wide items first, while dst has the most free pairs.
  for (const bool wide_pass : {true, false}) {
    for (int i = 0; i < kSlotsPerBucket; ++i) {
      if (!IsItem(src[i]) || ct::IsWide(src[i]) != wide_pass) continue;
      const uint64_t t = ct::WithRemainder(src[i], (ct::Remainder(src[i]) << 1) | 1);
      const uint64_t cont = wide_pass ? src[i + 1] : 0;
      src[i] = 0;
      if (wide_pass) src[i + 1] = 0;
      int j = wide_pass ? FreePair(dst) : FreeSlot(dst);
      if (j >= 0) {
        dst[j] = t;
        if (wide_pass) dst[j + 1] = cont;
        continue;
      }
      // No room in s: its other bucket, else CLOCK decides who stays (a
      // wide item without a free pair goes).
      const int other = ct::Alt(t) ? 0 : 1;
      const Addr to = AddressOf(KeyOf(t, s), other);
      uint64_t* alt = Bucket(to.bucket);
      j = to.bucket == s ? -1 : (wide_pass ? FreePair(alt) : FreeSlot(alt));
      if (j >= 0) {
        alt[j] = ct::MakeSlot(to.cls, to.remainder, other != 0, ct::Value(t)) | (t & ct::kRef);
        if (wide_pass) alt[j + 1] = cont;
        continue;
      }
      drop(wide_pass);
      if (wide_pass || !ct::Referenced(t)) continue;  // t goes
      for (int k = 0; k < kSlotsPerBucket; ++k) {
        if (IsItem(dst[k]) && !ct::IsWide(dst[k]) && !ct::Referenced(dst[k])) {
          dst[k] = t;  // an unreferenced narrow resident goes instead
          break;
        }
      }
    }
  }
}

bool TinyTable::ReleasePage() {
  absl::MutexLock geo(&geo_);
  const size_t npages = npages_.load(std::memory_order_relaxed);
  if (npages == 0) return false;
  if (npages == 1) {
    size_t n = 0;
    int wide = 0;
    for (size_t b = 0; b < nbuckets_.load(std::memory_order_relaxed); ++b) {
      n += static_cast<size_t>(ItemsIn(Bucket(b), &wide));
    }
    evictions_.fetch_add(n, std::memory_order_relaxed);
    items_.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
    wide_.fetch_sub(wide, std::memory_order_relaxed);
    std::memset(dir_[0], 0, page_size_);
    source_->ReturnPage(dir_[0]);
    npages_.store(0, std::memory_order_relaxed);
    nbuckets_.store(0, std::memory_order_relaxed);
    level_ = bucket_shift_;
    split_ = 0;
    return true;
  }
  const size_t keep = (npages - 1) << bucket_shift_;
  while (nbuckets_.load(std::memory_order_relaxed) > keep) MergeOne();
  source_->ReturnPage(dir_[npages - 1]);
  dir_[npages - 1] = nullptr;
  npages_.store(npages - 1, std::memory_order_relaxed);
  return true;
}

}  // namespace tinycached::core
