// server/admin.h — memcached's administration commands: stats detail,
// stats cachedump, lru_crawler, cache_memlimit, watch; and the per-prefix
// counters behind "stats detail" (-D).
//
// Room: server/. Replies are memcached 1.6.18's, byte for byte. Like
// server/protocol/text.cc, this file may call the store (core/engine.h) and the
// protocol helpers (server/protocol/), never core internals.
//
// Thread safety: every function may run on any worker thread at once.
#ifndef TINYCACHED_SERVER_ADMIN_H_
#define TINYCACHED_SERVER_ADMIN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/protocol/ascii.h"

namespace tinycached::server {

struct ServerContext;

// "stats detail": get/hit/set/delete counts per key prefix (the key up to the
// first delimiter; a key without one is not counted), as memcached's
// stats_prefix.c. memcached keeps every prefix it ever sees; here at most
// kMaxPrefixes are tracked and later new prefixes go uncounted (counted in
// dropped()), so a client inventing prefixes costs a bounded amount.
// While off (the default without -D) the hot path pays one relaxed load.
class PrefixStats {
 public:
  static constexpr size_t kMaxPrefixes = 4096;

  PrefixStats(char delimiter, bool enabled) : delimiter_(delimiter), enabled_(enabled) {}

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  void SetEnabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }
  char delimiter() const { return delimiter_; }

  void RecordGet(std::string_view key, bool hit) { Record(key, hit ? kGetHit : kGetMiss); }
  void RecordSet(std::string_view key) { Record(key, kSet); }
  void RecordDelete(std::string_view key) { Record(key, kDelete); }

  // "PREFIX <p> get <n> hit <n> set <n> del <n>\r\n" per prefix, then "END\r\n".
  void Dump(std::string* out) const;
  // "stats reset": forgets every prefix.
  void Reset();
  size_t prefixes() const;
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  enum Event { kGetHit, kGetMiss, kSet, kDelete };
  struct Counts {
    uint64_t gets = 0, hits = 0, sets = 0, deletes = 0;
  };
  void Record(std::string_view key, Event e);

  const char delimiter_;
  std::atomic<bool> enabled_;
  std::atomic<uint64_t> dropped_{0};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Counts> counts_ ABSL_GUARDED_BY(mu_);
};

// The LRU crawler's settings as `lru_crawler` commands change them. The
// crawler here is the once-a-second expiry step (Engine::ReclaimDead), which
// always runs, and the crawls `lru_crawler crawl` starts (Engine::StartCrawl);
// `enabled` gates `lru_crawler crawl|metadump` ("CLIENT_ERROR lru crawler
// disabled") and the crawler's lines in `stats`, as memcached's crawler
// thread does. sleep_us and tocrawl are reported only.
struct CrawlerSettings {
  std::atomic<bool> enabled{true};
  std::atomic<uint32_t> sleep_us{100};
  std::atomic<uint32_t> tocrawl{0};
  // memcached's lru_crawler_starts: crawls started and metadumps begun.
  std::atomic<uint64_t> starts{0};
};

// Most output one "stats cachedump" writes (memcached's: 2 MB).
inline constexpr size_t kCachedumpMaxBytes = size_t{2} << 20;
// Most items one "lru_crawler metadump" lists. memcached streams every item;
// here the reply is built whole, so it stops after this many (about 8 MiB).
inline constexpr size_t kMetadumpMaxItems = 100000;

// Each appends its whole reply to `out`. `noreply` is the command's own
// (memcached's set_noreply_maybe()), where the command takes one.
// `replies_held`: responses of earlier commands that memcached would still
// hold unsent (ProtocolSession's RepliesHeld); memcached refuses a metadump
// or a watch then, as it hands the connection's socket to another thread.
void ProcessStatsDetail(ServerContext& ctx, const protocol::Tokens& t, std::string* out);
void ProcessCachedump(ServerContext& ctx, const protocol::Tokens& t, std::string* out);
void ProcessLruCrawler(ServerContext& ctx, const protocol::Tokens& t, bool replies_held,
                       std::string* out);
void ProcessCacheMemlimit(ServerContext& ctx, const protocol::Tokens& t, bool noreply,
                          std::string* out);
// True when the connection became a watcher ("OK" sent): from then on it
// gets no replies and its input is discarded. No log events are produced, so
// a watcher receives nothing after "OK" (memcached streams its logs).
bool ProcessWatch(ServerContext& ctx, const protocol::Tokens& t, bool replies_held,
                  std::string* out);

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_ADMIN_H_
