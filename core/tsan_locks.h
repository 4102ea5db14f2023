// core/tsan_locks.h — absl::Mutex made visible to ThreadSanitizer where the
// Abseil library itself was built without it (Debian's is): without these,
// TSan sees no order between two holders of a lock and reports every
// access under it as a race.
//
// Room: core/. Used by the lock-free tiny table and its reclamation
// (tiny_table.cc, read_epoch.cc), whose stress tests are meant to run under
// TSan (see tests/core/tiny_table_test.cc). Compiles to nothing otherwise.
#ifndef TINYCACHED_CORE_TSAN_LOCKS_H_
#define TINYCACHED_CORE_TSAN_LOCKS_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#if defined(__SANITIZE_THREAD__)
#define TINYCACHED_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TINYCACHED_TSAN 1
#endif
#endif

#ifdef TINYCACHED_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace tinycached::core {

// After taking `mu` / before letting it go.
inline void TsanAcquired(absl::Mutex* mu) {
#ifdef TINYCACHED_TSAN
  __tsan_acquire(mu);
#else
  (void)mu;
#endif
}
inline void TsanReleasing(absl::Mutex* mu) {
#ifdef TINYCACHED_TSAN
  __tsan_release(mu);
#else
  (void)mu;
#endif
}

// absl::MutexLock that TSan sees.
class ABSL_SCOPED_LOCKABLE SeenLock {
 public:
  explicit SeenLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
    TsanAcquired(mu_);
  }
  ~SeenLock() ABSL_UNLOCK_FUNCTION() {
    TsanReleasing(mu_);
    mu_->Unlock();
  }
  SeenLock(const SeenLock&) = delete;
  SeenLock& operator=(const SeenLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_TSAN_LOCKS_H_
