#include "core/read_epoch.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/tsan_locks.h"

namespace tinycached::core {

namespace read_epoch_internal {

struct alignas(64) Record {
  std::atomic<uint64_t> active{0};  // the epoch this thread's section began in; 0 outside
  int depth = 0;                    // nesting; only the owning thread touches it
};

}  // namespace read_epoch_internal

namespace {

using read_epoch_internal::Record;

struct Registry {
  std::atomic<uint64_t> epoch{1};
  absl::Mutex mu;
  std::vector<Record*> records ABSL_GUARDED_BY(mu);
};

Registry& Global() {
  static auto* registry = new Registry;  // never destroyed: threads may outlive statics
  return *registry;
}

// A thread's record, registered on first use and removed when it exits.
class Owner {
 public:
  Owner() {
    Registry& r = Global();
    SeenLock lock(&r.mu);
    r.records.push_back(&record_);
  }
  ~Owner() {
    Registry& r = Global();
    SeenLock lock(&r.mu);
    std::erase(r.records, &record_);
  }
  Record& record() { return record_; }

 private:
  Record record_;
};

Record& ThisThread() {
  thread_local Owner owner;
  return owner.record();
}

}  // namespace

ReadSection::ReadSection() : record_(&ThisThread()) {
  if (record_->depth++ > 0) return;
  record_->active.store(Global().epoch.load(std::memory_order_relaxed), std::memory_order_relaxed);
  // Pairs with WaitForReaders' fence: either it sees this record active, or
  // this section's reads see everything unpublished before it was called.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

ReadSection::~ReadSection() {
  if (--record_->depth > 0) return;
  record_->active.store(0, std::memory_order_release);
}

void WaitForReaders() {
  Registry& r = Global();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Sections that read the new epoch began after the fence above.
  const uint64_t now = r.epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  SeenLock lock(&r.mu);
  for (Record* record : r.records) {
    for (int spins = 0;; ++spins) {
      const uint64_t began = record->active.load(std::memory_order_acquire);
      if (began == 0 || began >= now) break;
      if (spins > 64) std::this_thread::yield();
    }
  }
}

}  // namespace tinycached::core
