#include "core/tiny_table.h"

#include <algorithm>
#include <bit>
#include <thread>

#include "core/read_epoch.h"
#include "core/tsan_locks.h"

namespace tinycached::core {

namespace ct = compact::tiny;

struct alignas(64) TinyTable::Stripe {
  absl::Mutex mu;
  // Odd while a writer changes one of the stripe's buckets.
  std::atomic<uint64_t> version{0};
  // Written under mu (a plain load and store), read by anyone.
  std::atomic<int64_t> items{0};
  std::atomic<int64_t> wide{0};
  std::atomic<uint64_t> evictions{0};
  int64_t unfolded = 0;  // slots gained (lost) not yet in approx_slots_; under mu
  uint32_t hand = 0;     // where CLOCK starts its scan; under mu
};

namespace {

// Slot words are relaxed atomics: lock-free readers and Update() touch them
// while writers hold stripe mutexes. Order comes from the stripe versions.
uint64_t Ld(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
void St(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
// Empties slot p and returns what it held: an Update racing the move either
// landed first, and moves with the item, or finds the slot changed and
// looks again.
uint64_t Take(uint64_t* p) { return __atomic_exchange_n(p, uint64_t{0}, __ATOMIC_RELAXED); }
void ClearRef(uint64_t* p) { __atomic_fetch_and(p, ~ct::kRef, __ATOMIC_RELAXED); }
bool Cas(uint64_t* p, uint64_t expected, uint64_t desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, /*weak=*/false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED);
}

// A reader that met a writer at work waits a moment before looking again.
void Relax(int spins) {
  if (spins > 16) {
    std::this_thread::yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A free slot, or -1. (Taking slots whose partner is used first, to keep
// pairs whole for wide items, held fewer items in every fill measured:
// 8,185,076 against 8,195,042 narrow, 5,089,586 against 5,097,781 with
// 9-digit values, of which a third are wide.)
int FreeSlot(const uint64_t* bucket) {
  for (int i = 0; i < TinyTable::kSlotsPerBucket; ++i) {
    if (!ct::Used(Ld(&bucket[i]))) return i;
  }
  return -1;
}

// The first slot of a free aligned pair, or -1.
int FreePair(const uint64_t* bucket) {
  for (int i = 0; i < TinyTable::kSlotsPerBucket; i += 2) {
    if (!ct::Used(Ld(&bucket[i])) && !ct::Used(Ld(&bucket[i + 1]))) return i;
  }
  return -1;
}

int UsedSlots(const uint64_t* bucket) {
  int n = 0;
  for (int i = 0; i < TinyTable::kSlotsPerBucket; ++i) n += ct::Used(Ld(&bucket[i])) ? 1 : 0;
  return n;
}

// A used slot that is an item's (head) slot.
bool IsItem(uint64_t slot) { return ct::Used(slot) && !ct::IsContinuation(slot); }

std::array<ct::KeyMix, 8> Mixes(int min_addr_bits) {
  auto mix = [&](int cls) { return ct::KeyMix(ct::KeyBits(cls, min_addr_bits)); };
  static_assert(ct::kClasses == 6, "one bijection per class");
  return {mix(0), mix(1), mix(2), mix(3), mix(4), mix(5), mix(0), mix(0)};
}

}  // namespace

// Holds the mutexes of one or two stripes (taken in address order, the one
// lock order among stripes) and keeps their versions odd meanwhile, so
// that lock-free readers of their buckets look again.
class TinyTable::Writing {
 public:
  Writing(Stripe* a, Stripe* b) : a_(std::min(a, b)), b_(a == b ? nullptr : std::max(a, b)) {
    Begin(a_);
    if (b_ != nullptr) Begin(b_);
  }
  ~Writing() {
    if (b_ != nullptr) End(b_);
    End(a_);
  }
  Writing(const Writing&) = delete;
  Writing& operator=(const Writing&) = delete;

  static void Begin(Stripe* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    s->mu.Lock();
    TsanAcquired(&s->mu);
    Mark(s);
  }
  static bool TryBegin(Stripe* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (!s->mu.TryLock()) return false;
    TsanAcquired(&s->mu);
    Mark(s);
    return true;
  }
  static void End(Stripe* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    s->version.store(s->version.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    TsanReleasing(&s->mu);
    s->mu.Unlock();
  }

 private:
  // The odd version is visible before any slot this writer stores.
  static void Mark(Stripe* s) {
    s->version.store(s->version.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }

  Stripe* const a_;
  Stripe* const b_;
};

TinyTable::TinyTable(size_t page_size, size_t max_pages, PageSource* source)
    : page_size_(page_size),
      max_pages_(max_pages),
      bucket_shift_(std::countr_zero(page_size / kBucketBytes)),
      bucket_mask_(page_size / kBucketBytes - 1),
      mix_(Mixes(bucket_shift_)),
      source_(source),
      dir_(new std::atomic<uint8_t*>[max_pages]()),
      stripes_(new Stripe[kStripes]) {}

TinyTable::~TinyTable() {
  for (size_t i = 0; i < npages_.load(); ++i) source_->ReturnPage(dir_[i].load());
}

TinyTable::Stripe& TinyTable::StripeOf(size_t b) const { return stripes_[b % kStripes]; }

uint64_t TinyTable::StableGeometry() const {
  for (int spins = 0;; ++spins) {
    const uint64_t g = geo_version_.load(std::memory_order_acquire);
    if ((g & 1) == 0) return g;
    Relax(spins);
  }
}

void TinyTable::BeginResize() {
  geo_version_.store(geo_version_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}

void TinyTable::EndResize(size_t nbuckets) {
  nbuckets_.store(nbuckets, std::memory_order_relaxed);
  geo_version_.store(geo_version_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

TinyTable::Addr TinyTable::AddressOf(const TinyKey& key, int choice, size_t nbuckets) const {
  const int level = Level(nbuckets);
  const size_t split = nbuckets - (size_t{1} << level);
  const int cls = ct::ClassOfKey(key);
  const uint64_t h = mix_[cls].Mix(ct::KeyNumber(key), choice);
  size_t a = h & ((uint64_t{1} << level) - 1);
  int bits = level;
  if (a < split) {
    a = h & ((uint64_t{1} << (level + 1)) - 1);
    bits = level + 1;
  }
  return {a, h >> bits, cls};
}

void TinyTable::Prefetch(const TinyKey& key) const {
  const size_t nb = nbuckets_.load(std::memory_order_relaxed);
  if (nb == 0) return;
  for (int c = 0; c < 2; ++c) {
    if (const uint64_t* bucket = Bucket(AddressOf(key, c, nb).bucket)) {
      __builtin_prefetch(bucket, /*rw=*/1);  // a bucket is one 64-byte line
    }
  }
}

TinyTable::TinyKey TinyTable::KeyOf(uint64_t slot, size_t b, size_t nbuckets) const {
  const int cls = ct::SlotClass(slot);
  const uint64_t h = (ct::Remainder(slot) << AddrBits(b, nbuckets)) | b;
  return ct::TagKey(cls, mix_[cls].Unmix(h, ct::Alt(slot) ? 1 : 0));
}

TinyTable::Addr TinyTable::OtherAddress(uint64_t slot, size_t b, size_t nbuckets) const {
  return AddressOf(KeyOf(slot, b, nbuckets), ct::Alt(slot) ? 0 : 1, nbuckets);
}

uint64_t* TinyTable::Find(const Addr& a, int choice) const {
  uint64_t* bucket = Bucket(a.bucket);
  const uint64_t want = ct::MakeSlot(a.cls, a.remainder, choice != 0, 0);
  const uint64_t fields = ct::KeyFields(a.cls);
  for (int i = 0; i < kSlotsPerBucket; ++i) {
    if ((Ld(&bucket[i]) & fields) == want) return &bucket[i];
  }
  return nullptr;
}

void TinyTable::Count(size_t b, int items, int wide) {
  Stripe& s = StripeOf(b);
  if (items != 0)
    s.items.store(s.items.load(std::memory_order_relaxed) + items, std::memory_order_relaxed);
  if (wide != 0)
    s.wide.store(s.wide.load(std::memory_order_relaxed) + wide, std::memory_order_relaxed);
  s.unfolded += items + wide;
  // Small tables report every change; big ones every few, so that the
  // shared count is off by at most 1/256 of the slots.
  const int64_t every = std::clamp<int64_t>(
      static_cast<int64_t>(nbuckets_.load(std::memory_order_relaxed) / (32 * kStripes)), 1,
      kFoldEvery);
  if (s.unfolded >= every || s.unfolded <= -every) {
    approx_slots_.fetch_add(s.unfolded, std::memory_order_relaxed);
    s.unfolded = 0;
  }
}

bool TinyTable::Locate(const TinyKey& key, Seen* seen) const {
  for (int spins = 0;; ++spins) {
    if (spins > 0) Relax(spins);
    const uint64_t g = geo_version_.load(std::memory_order_acquire);
    if ((g & 1) != 0) continue;
    const size_t nb = nbuckets_.load(std::memory_order_relaxed);
    if (nb == 0) return false;
    const Addr a[2] = {AddressOf(key, 0, nb), AddressOf(key, 1, nb)};
    const Stripe& s0 = StripeOf(a[0].bucket);
    const Stripe& s1 = StripeOf(a[1].bucket);
    const uint64_t v0 = s0.version.load(std::memory_order_acquire);
    const uint64_t v1 = s1.version.load(std::memory_order_acquire);
    if (((v0 | v1) & 1) != 0) continue;
    Seen found{nullptr, 0, 0};
    bool unpublished = false;
    for (int c = 0; c < 2 && found.slot == nullptr; ++c) {
      uint64_t* bucket = Bucket(a[c].bucket);
      if (bucket == nullptr) {
        unpublished = true;
        break;
      }
      const uint64_t want = ct::MakeSlot(a[c].cls, a[c].remainder, c != 0, 0);
      const uint64_t fields = ct::KeyFields(a[c].cls);
      for (int i = 0; i < kSlotsPerBucket; ++i) {
        const uint64_t w = Ld(&bucket[i]);
        if ((w & fields) != want) continue;
        // Only an even slot heads a pair (a torn read may show otherwise).
        const bool wide = ct::IsWide(w) && i % 2 == 0;
        found = {&bucket[i], w, wide ? Ld(&bucket[i + 1]) : 0};
        break;
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (unpublished || s0.version.load(std::memory_order_relaxed) != v0 ||
        s1.version.load(std::memory_order_relaxed) != v1 ||
        geo_version_.load(std::memory_order_relaxed) != g) {
      continue;
    }
    *seen = found;
    return found.slot != nullptr;
  }
}

bool TinyTable::Lookup(const TinyKey& key, SlotValue* value, bool mark, bool* referenced) {
  ReadSection section;
  Seen s;
  if (!Locate(key, &s)) return false;
  *value = {ct::Value(s.word), ct::IsWide(s.word) ? ct::ContinuationBits(s.cont) : 0};
  if (referenced != nullptr) *referenced = ct::Referenced(s.word);
  // Written only when it changes, and only if the slot still holds what was read.
  if (mark && !ct::Referenced(s.word)) Cas(s.slot, s.word, s.word | ct::kRef);
  return true;
}

bool TinyTable::Get(const TinyKey& key, SlotValue* value) {
  return Lookup(key, value, true, nullptr);
}
bool TinyTable::Peek(const TinyKey& key, SlotValue* value) {
  return Lookup(key, value, false, nullptr);
}
bool TinyTable::Inspect(const TinyKey& key, SlotValue* value, bool mark, bool* referenced) {
  return Lookup(key, value, mark, referenced);
}

TinyTable::UpdateResult TinyTable::Update(
    const TinyKey& key, absl::FunctionRef<bool(const SlotValue& old, SlotValue* now)> fn) {
  ReadSection section;
  for (;;) {
    Seen s;
    if (!Locate(key, &s)) return UpdateResult::kAbsent;
    if (ct::IsWide(s.word)) return UpdateResult::kDeclined;
    SlotValue now;
    if (!fn(SlotValue{ct::Value(s.word), 0}, &now) || ct::WideValue(key.cls, now)) {
      return UpdateResult::kDeclined;
    }
    if (Cas(s.slot, s.word, ct::WithValue(s.word, now.code) | ct::kRef)) {
      return UpdateResult::kUpdated;
    }
  }
}

bool TinyTable::CuckooFrom(uint64_t* bucket, int i, size_t b, const Frame& f, int depth,
                           const Addr* known) {
  const uint64_t s = Ld(&bucket[i]);
  if (!IsItem(s)) return false;
  const bool wide = ct::IsWide(s);
  const int other = ct::Alt(s) ? 0 : 1;
  const Addr to = known != nullptr ? *known : OtherAddress(s, b, f.nbuckets);
  if (to.bucket == b) return false;
  Stripe* m = &StripeOf(to.bucket);
  const bool held = m == f.held0 || m == f.held1 || m == &StripeOf(b);
  if (!held) {
    if (!Writing::TryBegin(m)) return false;
    // The address is only good for the geometry this operation began with.
    if (geo_version_.load(std::memory_order_acquire) != f.geo) {
      Writing::End(m);
      return false;
    }
  }
  uint64_t* dst = Bucket(to.bucket);
  int j = wide ? FreePair(dst) : FreeSlot(dst);
  if (j < 0 && depth > 1) {
    // The other bucket is full too: make room there first, one level down
    // (a slot, or for a wide item a pair).
    if (wide) {
      for (int k = 0; k < kSlotsPerBucket && j < 0; k += 2) {
        if (FreeCell(dst, k, to.bucket, f, depth - 1)) j = k;
      }
    } else {
      for (int k = 0; k < kSlotsPerBucket && j < 0; ++k) {
        if (CuckooFrom(dst, k, to.bucket, f, depth - 1)) j = k;
      }
    }
  }
  if (j >= 0) {
    const uint64_t moving = Take(&bucket[i]);  // with any update that landed meanwhile
    St(&dst[j],
       ct::MakeSlot(to.cls, to.remainder, other != 0, ct::Value(moving)) | (moving & ct::kRef));
    if (wide) {
      St(&dst[j + 1], Ld(&bucket[i + 1]));
      St(&bucket[i + 1], 0);
    }
    Count(to.bucket, 1, wide ? 1 : 0);
    Count(b, -1, wide ? -1 : 0);
  }
  if (!held) Writing::End(m);
  return j >= 0;
}

bool TinyTable::FreeCell(uint64_t* bucket, int i, size_t b, const Frame& f, int depth) {
  for (int k = i; k < i + 2; ++k) {
    if (IsItem(Ld(&bucket[k])) && !CuckooFrom(bucket, k, b, f, depth)) return false;
  }
  return !ct::Used(Ld(&bucket[i])) && !ct::Used(Ld(&bucket[i + 1]));
}

TinyTable::Place TinyTable::PutOnce(const TinyKey& key, const SlotValue& value, int depth,
                                    bool evict, Change* change) {
  const uint64_t g = StableGeometry();
  const size_t nb = nbuckets_.load(std::memory_order_relaxed);
  if (nb == 0) return Place::kNoPage;
  const Addr a[2] = {AddressOf(key, 0, nb), AddressOf(key, 1, nb)};
  Stripe* s0 = &StripeOf(a[0].bucket);
  Stripe* s1 = &StripeOf(a[1].bucket);
  Writing writing(s0, s1);
  // A resize since the addresses were computed: compute them again.
  if (geo_version_.load(std::memory_order_acquire) != g) return Place::kMoved;
  return PutLocked(key, value, a, Frame{g, nb, s0, s1}, depth, evict, change);
}

TinyTable::Place TinyTable::PutLocked(const TinyKey& key, const SlotValue& value,
                                      const Addr (&a)[2], const Frame& f, int depth, bool evict,
                                      Change* change) {
  const bool wide = ct::WideValue(key.cls, value);
  uint64_t* b[2] = {Bucket(a[0].bucket), Bucket(a[1].bucket)};
  for (int c = 0; c < 2; ++c) {
    uint64_t* p = Find(a[c], c);
    if (p == nullptr) continue;
    const uint64_t old = Ld(p);
    const bool was_wide = ct::IsWide(old);
    const bool pair_head = (p - b[c]) % 2 == 0;
    if (!wide || was_wide || (pair_head && !ct::Used(Ld(p + 1)))) {
      // In place: the same width, narrower, or wider into the free partner.
      St(p, ct::WithValue(old, value.code) | ct::kRef);
      if (wide) {
        St(p + 1, ct::MakeContinuation(value.ext));
      } else if (was_wide) {
        St(p + 1, 0);
      }
      Count(a[c].bucket, 0, (wide ? 1 : 0) - (was_wide ? 1 : 0));
      return Place::kStored;
    }
    // Wider with its partner taken: out, and in again below as a new item.
    St(p, 0);
    Count(a[c].bucket, -1, 0);
    break;
  }
  const auto put = [&](int c, int i) {
    St(&b[c][i], ct::MakeSlot(a[c].cls, a[c].remainder, c != 0, value.code));
    if (wide) St(&b[c][i + 1], ct::MakeContinuation(value.ext));
    Count(a[c].bucket, 1, wide ? 1 : 0);
    change->added = true;
  };
  // Evicting the item at slot i of bucket c (a wide one takes its partner along).
  const auto evict_at = [&](int c, int i) {
    const uint64_t victim = Ld(&b[c][i]);
    if (!IsItem(victim)) return;
    const bool victim_wide = ct::IsWide(victim);
    St(&b[c][i], 0);
    if (victim_wide) St(&b[c][i + 1], 0);
    Count(a[c].bucket, -1, victim_wide ? -1 : 0);
    ++change->evicted;
  };
  // The key's first stripe keeps the count of its evictions and its CLOCK hand.
  Stripe& home = *f.held0;
  const auto count_evictions = [&] {
    const uint64_t before = home.evictions.load(std::memory_order_relaxed);
    const uint64_t after = before + static_cast<uint64_t>(change->evicted);
    home.evictions.store(after, std::memory_order_relaxed);
    const uint64_t offset =
        static_cast<uint64_t>(&home - stripes_.get()) * (kRetryGrowthEvery / kStripes);
    change->retry_growth =
        (before + offset) / kRetryGrowthEvery != (after + offset) / kRetryGrowthEvery;
  };
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
          if (FreeCell(b[c], i, a[c].bucket, f, d)) {
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
    const uint32_t start = home.hand++ % kCells;
    uint32_t victim = start;
    for (uint32_t n = 0; n < kCells; ++n) {
      const uint32_t v = (start + n) % kCells;
      uint64_t* cell = b[v / 4] + 2 * (v % 4);
      bool referenced = false;
      for (int k = 0; k < 2; ++k) {
        const uint64_t w = Ld(&cell[k]);
        if (IsItem(w) && ct::Referenced(w)) {
          referenced = true;
          ClearRef(&cell[k]);
        }
      }
      if (!referenced) {
        victim = v;
        break;
      }
    }
    const int c = static_cast<int>(victim / 4);
    const int i = static_cast<int>(2 * (victim % 4));
    evict_at(c, i);
    evict_at(c, i + 1);
    count_evictions();
    put(c, i);
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
    const uint64_t slot = Ld(&b[c][n % kSlotsPerBucket]);
    if (!IsItem(slot)) return;
    other[n] = OtherAddress(slot, a[c].bucket, f.nbuckets);
    __builtin_prefetch(Bucket(other[n].bucket));
  };
  if (depth > 0) locate(0);
  for (int d = 1; d <= depth; ++d) {
    for (int n = 0; n < kCandidates; ++n) {
      if (d == 1 && n + 1 < kCandidates) locate(n + 1);
      const int c = n / kSlotsPerBucket;
      const int i = n % kSlotsPerBucket;
      if (!IsItem(Ld(&b[c][i]))) continue;
      if (CuckooFrom(b[c], i, a[c].bucket, f, d, &other[n])) {
        put(c, i);
        return Place::kStored;
      }
    }
  }
  if (!evict) return Place::kFull;
  // CLOCK over the 16 candidates: the first unreferenced item goes; the
  // referenced ones passed on the way lose their bit.
  const uint32_t start = home.hand++ % (2 * kSlotsPerBucket);
  uint32_t victim = start;
  for (uint32_t n = 0; n < 2 * kSlotsPerBucket; ++n) {
    const uint32_t v = (start + n) % (2 * kSlotsPerBucket);
    uint64_t* s = &b[v / kSlotsPerBucket][v % kSlotsPerBucket];
    const uint64_t w = Ld(s);
    if (!IsItem(w)) continue;
    if (!ct::Referenced(w)) {
      victim = v;
      break;
    }
    ClearRef(s);
  }
  const int c = static_cast<int>(victim / kSlotsPerBucket);
  int i = static_cast<int>(victim % kSlotsPerBucket);
  if (!IsItem(Ld(&b[c][i]))) i &= ~1;  // the start was a continuation and every item referenced
  evict_at(c, i);
  count_evictions();
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
    Place place;
    {
      // Deep cuckoo moves read buckets of a geometry that may have moved on.
      ReadSection section;
      do {
        place = PutOnce(key, value, depth, evict, &change);
      } while (place == Place::kMoved);
    }
    if (place == Place::kNoPage) {
      if (attempt == 2) return PutResult::kNoRoom;
    } else if (place == Place::kStored) {
      if (change.evicted > 0) {
        if (!topped_up_.load(std::memory_order_relaxed)) {
          topped_up_.store(true, std::memory_order_relaxed);
        }
        // Now and then, see whether pages have come free.
        if (change.retry_growth && out_of_pages_.load(std::memory_order_relaxed)) {
          out_of_pages_.store(false, std::memory_order_relaxed);
        }
        return PutResult::kEvicted;
      }
      if (change.added && NeedsGrowth() && !out_of_pages_.load(std::memory_order_relaxed)) {
        Grow(0);
      }
      return PutResult::kStored;
    }
    if (!Grow(1)) attempt = std::max(attempt, 1);  // nothing to grow into: evict next
  }
  return PutResult::kNoRoom;
}

bool TinyTable::Erase(const TinyKey& key) {
  for (;;) {
    const uint64_t g = StableGeometry();
    const size_t nb = nbuckets_.load(std::memory_order_relaxed);
    if (nb == 0) return false;
    const Addr a[2] = {AddressOf(key, 0, nb), AddressOf(key, 1, nb)};
    Writing writing(&StripeOf(a[0].bucket), &StripeOf(a[1].bucket));
    if (geo_version_.load(std::memory_order_acquire) != g) continue;
    for (int c = 0; c < 2; ++c) {
      uint64_t* p = Find(a[c], c);
      if (p == nullptr) continue;
      const bool wide = ct::IsWide(Ld(p));
      St(p, 0);
      if (wide) St(p + 1, 0);
      Count(a[c].bucket, -1, wide ? -1 : 0);
      return true;
    }
    return false;
  }
}

size_t TinyTable::ForEach(size_t* cursor, size_t limit,
                          absl::FunctionRef<void(const TinyKey&, const SlotValue&, bool)> fn) {
  struct Item {
    TinyKey key;
    SlotValue value;
    bool referenced;
  };
  size_t visited = 0;
  size_t b = *cursor;
  for (; visited < limit; ++b) {
    Item items[kSlotsPerBucket];
    int n = 0;
    {
      // Under b's stripe b cannot be merged away, so its page stays.
      Stripe& s = StripeOf(b);
      SeenLock lock(&s.mu);
      const size_t nb = nbuckets_.load(std::memory_order_acquire);
      if (b >= nb) break;
      const uint64_t* bucket = Bucket(b);
      for (int i = 0; i < kSlotsPerBucket; ++i) {
        const uint64_t w = Ld(&bucket[i]);
        if (!IsItem(w)) continue;
        items[n++] = {KeyOf(w, b, nb),
                      {ct::Value(w), ct::IsWide(w) ? ct::ContinuationBits(Ld(&bucket[i + 1])) : 0},
                      ct::Referenced(w)};
      }
    }
    for (int k = 0; k < n; ++k) fn(items[k].key, items[k].value, items[k].referenced);
    visited += static_cast<size_t>(n);
  }
  *cursor = b;
  return visited;
}

void TinyTable::LockAll() {
  for (size_t i = 0; i < kStripes; ++i) Writing::Begin(&stripes_[i]);
}

void TinyTable::UnlockAll() {
  for (size_t i = kStripes; i-- > 0;) Writing::End(&stripes_[i]);
}

void TinyTable::ZeroPage(uint8_t* page) {
  auto* w = reinterpret_cast<uint64_t*>(page);
  for (size_t k = 0; k < page_size_ / sizeof(uint64_t); ++k) St(&w[k], 0);
}

void TinyTable::EmptyCounts(bool evicted) {
  for (size_t i = 0; i < kStripes; ++i) {
    Stripe& s = stripes_[i];
    if (evicted) {
      s.evictions.store(s.evictions.load(std::memory_order_relaxed) +
                            static_cast<uint64_t>(s.items.load(std::memory_order_relaxed)),
                        std::memory_order_relaxed);
    }
    s.items.store(0, std::memory_order_relaxed);
    s.wide.store(0, std::memory_order_relaxed);
    s.unfolded = 0;
  }
  approx_slots_.store(0, std::memory_order_relaxed);
}

void TinyTable::Clear() {
  SeenLock resize(&resize_);
  LockAll();
  for (size_t i = 0; i < npages_.load(std::memory_order_relaxed); ++i) {
    ZeroPage(dir_[i].load(std::memory_order_relaxed));
  }
  EmptyCounts(/*evicted=*/false);
  UnlockAll();
}

bool TinyTable::Grow(size_t min_splits) {
  SeenLock resize(&resize_);
  if (npages_.load(std::memory_order_relaxed) == 0) {
    uint8_t* page = source_->TakePage();
    if (page == nullptr) {
      out_of_pages_.store(true, std::memory_order_relaxed);
      return false;
    }
    dir_[0].store(page, std::memory_order_release);
    npages_.store(1, std::memory_order_relaxed);
    BeginResize();
    EndResize(size_t{1} << bucket_shift_);
    return true;
  }
  // A bounded batch, so that other resizes never wait long.
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
  const size_t nb = nbuckets_.load(std::memory_order_relaxed);
  const size_t npages = npages_.load(std::memory_order_relaxed);
  if ((nb >> bucket_shift_) >= npages) {
    if (npages == max_pages_) return false;
    uint8_t* page = source_->TakePage();
    if (page == nullptr) return false;
    dir_[npages].store(page, std::memory_order_release);
    npages_.store(npages + 1, std::memory_order_relaxed);
    // New room: top up again when full.
    if (topped_up_.load(std::memory_order_relaxed))
      topped_up_.store(false, std::memory_order_relaxed);
  }
  const size_t s = nb - (size_t{1} << Level(nb));  // the split pointer
  Writing writing(&StripeOf(s), &StripeOf(nb));
  BeginResize();
  uint64_t* from = Bucket(s);
  uint64_t* to = Bucket(nb);
  for (int k = 0; k < kSlotsPerBucket; ++k) St(&to[k], 0);
  // Wide items first, so that each lands on an aligned pair of `to`; what
  // moves fits, since it all came from one bucket.
  int j = 0;
  for (const bool wide_pass : {true, false}) {
    for (int i = 0; i < kSlotsPerBucket; ++i) {
      const uint64_t seen = Ld(&from[i]);
      if (!IsItem(seen) || ct::IsWide(seen) != wide_pass) continue;
      const uint64_t cur = Take(&from[i]);
      // The remainder's low bit is the hash bit that now picks the bucket.
      const uint64_t r = ct::Remainder(cur);
      const uint64_t moved = ct::WithRemainder(cur, r >> 1);
      if ((r & 1) == 0) {
        St(&from[i], moved);
        continue;
      }
      St(&to[j++], moved);
      if (wide_pass) {
        St(&to[j++], Ld(&from[i + 1]));
        St(&from[i + 1], 0);
      }
      Count(s, -1, wide_pass ? -1 : 0);
      Count(nb, 1, wide_pass ? 1 : 0);
    }
  }
  EndResize(nb + 1);
  return true;
}

void TinyTable::MergeOne() {
  const size_t last = nbuckets_.load(std::memory_order_relaxed) - 1;  // goes
  const size_t s = last - (size_t{1} << Level(last));                 // takes its items
  const size_t after = last;                                          // buckets after the merge
  Writing writing(&StripeOf(s), &StripeOf(last));
  BeginResize();
  // From here bucket s has Level(after) address bits and bucket `last` is
  // gone: each remainder takes back the bit that told the two apart.
  uint64_t* dst = Bucket(s);
  uint64_t* src = Bucket(last);
  for (int i = 0; i < kSlotsPerBucket; ++i) {
    if (!IsItem(Ld(&dst[i]))) continue;
    const uint64_t cur = Take(&dst[i]);
    St(&dst[i], ct::WithRemainder(cur, ct::Remainder(cur) << 1));
  }
  Stripe& home = StripeOf(s);
  // Wide items first, while dst has the most free pairs.
  for (const bool wide_pass : {true, false}) {
    for (int i = 0; i < kSlotsPerBucket; ++i) {
      const uint64_t seen = Ld(&src[i]);
      if (!IsItem(seen) || ct::IsWide(seen) != wide_pass) continue;
      const uint64_t cur = Take(&src[i]);
      const uint64_t t = ct::WithRemainder(cur, (ct::Remainder(cur) << 1) | 1);
      const uint64_t cont = wide_pass ? Ld(&src[i + 1]) : 0;
      if (wide_pass) St(&src[i + 1], 0);
      Count(last, -1, wide_pass ? -1 : 0);
      int j = wide_pass ? FreePair(dst) : FreeSlot(dst);
      if (j >= 0) {
        St(&dst[j], t);
        if (wide_pass) St(&dst[j + 1], cont);
        Count(s, 1, wide_pass ? 1 : 0);
        continue;
      }
      // No room in s: its other bucket (if its stripe is free), else CLOCK
      // decides who stays (a wide item without a free pair goes).
      const int other = ct::Alt(t) ? 0 : 1;
      const Addr to = AddressOf(KeyOf(t, s, after), other, after);
      bool placed = false;
      if (to.bucket != s) {
        Stripe* m = &StripeOf(to.bucket);
        const bool held = m == &home || m == &StripeOf(last);
        if (held || Writing::TryBegin(m)) {
          uint64_t* alt = Bucket(to.bucket);
          j = wide_pass ? FreePair(alt) : FreeSlot(alt);
          if (j >= 0) {
            St(&alt[j],
               ct::MakeSlot(to.cls, to.remainder, other != 0, ct::Value(t)) | (t & ct::kRef));
            if (wide_pass) St(&alt[j + 1], cont);
            Count(to.bucket, 1, wide_pass ? 1 : 0);
            placed = true;
          }
          if (!held) Writing::End(m);
        }
      }
      if (placed) continue;
      home.evictions.store(home.evictions.load(std::memory_order_relaxed) + 1,
                           std::memory_order_relaxed);
      if (wide_pass || !ct::Referenced(t)) continue;  // t goes
      for (int k = 0; k < kSlotsPerBucket; ++k) {
        const uint64_t w = Ld(&dst[k]);
        if (IsItem(w) && !ct::IsWide(w) && !ct::Referenced(w)) {
          St(&dst[k], t);  // an unreferenced narrow resident goes instead
          break;
        }
      }
    }
  }
  EndResize(after);
}

bool TinyTable::ReleasePage() {
  uint8_t* page = nullptr;
  {
    SeenLock resize(&resize_);
    const size_t npages = npages_.load(std::memory_order_relaxed);
    if (npages == 0) return false;
    if (npages == 1) {
      LockAll();
      BeginResize();
      EmptyCounts(/*evicted=*/true);
      page = dir_[0].load(std::memory_order_relaxed);
      ZeroPage(page);
      dir_[0].store(nullptr, std::memory_order_release);
      npages_.store(0, std::memory_order_relaxed);
      EndResize(0);
      UnlockAll();
    } else {
      const size_t keep = (npages - 1) << bucket_shift_;
      while (nbuckets_.load(std::memory_order_relaxed) > keep) MergeOne();
      page = dir_[npages - 1].load(std::memory_order_relaxed);
      dir_[npages - 1].store(nullptr, std::memory_order_release);
      npages_.store(npages - 1, std::memory_order_relaxed);
    }
    // Unpublished; a reader that found it before may still be reading it.
    WaitForReaders();
    source_->ReturnPage(page);  // under resize_, as every call into the source
  }
  return true;
}

template <typename Field>
int64_t TinyTable::SumStripes(Field field) const {
  int64_t n = 0;
  for (size_t i = 0; i < kStripes; ++i) {
    n += static_cast<int64_t>((stripes_[i].*field).load(std::memory_order_relaxed));
  }
  return n;
}

size_t TinyTable::items() const {
  return static_cast<size_t>(std::max<int64_t>(SumStripes(&Stripe::items), 0));
}

size_t TinyTable::wide_items() const {
  return static_cast<size_t>(std::max<int64_t>(SumStripes(&Stripe::wide), 0));
}

uint64_t TinyTable::evictions() const {
  return static_cast<uint64_t>(SumStripes(&Stripe::evictions));
}

void TinyTable::ResetEvictions() {
  for (size_t i = 0; i < kStripes; ++i) stripes_[i].evictions.store(0, std::memory_order_relaxed);
}

}  // namespace tinycached::core
