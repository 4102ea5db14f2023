// core/stats.h — per-thread command counters.
//
// Each worker thread owns one ThreadStats and is its only writer, so an
// increment is a plain load+store on a relaxed atomic (no lock prefix, no
// shared cache line); `stats` sums every thread's counters. Counters that
// memcached reports per slab class ("stats slabs": N:get_hits …) are arrays
// indexed by class id.
#ifndef TINYCACHED_CORE_STATS_H_
#define TINYCACHED_CORE_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>

namespace tinycached::core {

inline constexpr int kMaxClassId = 255;  // class ids fit the header's u8

class Counter {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Takes back a count this thread made (a miss that turned out not to be one).
  void Sub(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }
  void Reset() { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Counters kept per slab class, in "stats slabs" order.
struct ClassCounters {
  Counter get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval, touch_hits;
};

struct ThreadStats {
  Counter get_cmds, get_misses, get_expired, get_flushed;
  Counter touch_cmds, touch_misses;
  Counter delete_misses, incr_misses, decr_misses, cas_misses;
  Counter flush_cmds, store_too_large, store_no_memory;
  Counter bytes_read, bytes_written;
  // memcached's cmd_meta (which 1.6.18 counts for `me` only), and binary
  // SASL authentications completed / failed (auth_cmds, auth_errors).
  Counter meta_cmds, auth_cmds, auth_errors;
  // The tiny engine's prefix dictionary: lookups of keys shaped
  // <prefix><number> whose prefix was known / not known.
  Counter prefix_hits, prefix_misses;
  std::array<ClassCounters, kMaxClassId + 1> per_class;

  void Reset() {
    for (Counter* c :
         {&get_cmds,     &get_misses,      &get_expired,     &get_flushed, &touch_cmds,
          &touch_misses, &delete_misses,   &incr_misses,     &decr_misses, &cas_misses,
          &flush_cmds,   &store_too_large, &store_no_memory, &bytes_read,  &bytes_written,
          &meta_cmds,    &auth_cmds,       &auth_errors,     &prefix_hits, &prefix_misses}) {
      c->Reset();
    }
    for (ClassCounters& k : per_class) {
      for (Counter* c : {&k.get_hits, &k.cmd_set, &k.delete_hits, &k.incr_hits, &k.decr_hits,
                         &k.cas_hits, &k.cas_badval, &k.touch_hits}) {
        c->Reset();
      }
    }
  }
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_STATS_H_
