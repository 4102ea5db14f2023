// core/clock.h — the server's coarse clock and memcached's expiry rules.
//
// Time inside the store is "relative seconds": seconds since a moment a little
// before the process started (as memcached, so that relative time 0 and 1 are
// never "now"). Callers tick the clock once a second; reads are one atomic load.
//
// Client exptime rules (memcached 1.6):
//   0                      never expires
//   1 .. 30 days           relative: now + exptime
//   > 30 days              absolute Unix time (in the past => already expired)
//   < 0                    already expired
#ifndef TINYCACHED_CORE_CLOCK_H_
#define TINYCACHED_CORE_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <ctime>

namespace tinycached::core {

using RelTime = uint32_t;

class Clock {
 public:
  static constexpr int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;  // 30 days
  // memcached starts its relative clock this far in the past.
  static constexpr int64_t kStartOffset = 62;

  // A clock that follows the system's wall time.
  Clock() : started_(std::time(nullptr) - kStartOffset) { Tick(); }

  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;

  // Re-reads the system time. The server calls this once a second.
  void Tick() {
    now_.store(static_cast<RelTime>(std::time(nullptr) - started_), std::memory_order_relaxed);
  }

  RelTime Now() const { return now_.load(std::memory_order_relaxed); }
  int64_t StartedAt() const { return started_; }
  int64_t UnixNow() const { return started_ + Now(); }

  // Tests move time by hand (the server never calls these).
  void SetForTest(RelTime now) { now_.store(now, std::memory_order_relaxed); }
  void AdvanceForTest(RelTime secs) { now_.fetch_add(secs, std::memory_order_relaxed); }

  // Converts a client exptime to relative time; 0 means never.
  RelTime ToRelative(int64_t exptime) const {
    if (exptime < 0) return 1;  // memcached: already expired
    if (exptime == 0) return 0;
    if (exptime > kMaxRelativeExptime) {
      if (exptime <= started_) return 1;
      return static_cast<RelTime>(exptime - started_);
    }
    return static_cast<RelTime>(exptime + Now());
  }

  // True when an item with this relative expiry is expired now.
  bool Expired(RelTime exptime) const { return exptime != 0 && exptime <= Now(); }

 private:
  const int64_t started_;
  std::atomic<RelTime> now_{0};
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_CLOCK_H_
