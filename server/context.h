// server/context.h — state shared by the listener and every worker thread.
#ifndef TINYCACHED_SERVER_CONTEXT_H_
#define TINYCACHED_SERVER_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/engine.h"
#include "server/admin.h"
#include "server/sasl.h"
#include "server/settings.h"

namespace tinycached::server {

// Descriptors memcached reports as reserved for its own use ("stats":
// reserved_fds, five per worker thread); its -c rule counts them against the
// limit, and so do we.
inline uint64_t ReservedFds(const Settings& s) { return 5 * static_cast<uint64_t>(s.threads); }

// Data blocks longer than this are buffered against the shared input budget
// (-o read_buf_mem_limit); shorter ones are a connection's own read-ahead.
inline constexpr size_t kInputBudgetMin = 16 * 1024;

// What "stats conns" shows of one connection. Written by its worker thread,
// read by whichever thread runs "stats conns".
struct ConnInfo {
  int fd = -1;
  bool udp = false;  // a worker's UDP socket (server/udp.h), not a client connection
  std::string addr;  // "tcp:127.0.0.1:43428"; a UDP socket's own, "udp:127.0.0.1:11211"
  const std::string* listen_addr = nullptr;  // its listener's: "tcp:127.0.0.1:11211"
  std::atomic<const char*> state{"conn_new_cmd"};
  std::atomic<core::RelTime> last_cmd_time{0};
};

// A socket the server accepts connections on; fixed once the server starts.
struct Listener {
  int fd = -1;
  std::string addr;  // "tcp:<ip>:<port>", "tcp6:[<ip>]:<port>" or "unix:<path>"
  // Its line of memcached's MEMCACHED_PORT_FILENAME file, with the port
  // actually bound: "TCP INET: 41235", "UDP INET6: 41236"; empty for -s.
  std::string port_line;
};

struct ServerContext {
  ServerContext(const Settings& s, std::unique_ptr<core::Engine> st, core::Clock* c)
      : settings(s),
        clock(c),
        store(std::move(st)),
        prefix_stats(s.prefix_delimiter, s.detail_enabled) {
    crawler.enabled.store(s.lru_crawler);
    crawler.sleep_us.store(s.lru_crawler_sleep);
    crawler.tocrawl.store(s.lru_crawler_tocrawl);
  }

  const Settings settings;
  core::Clock* const clock;
  const std::unique_ptr<core::Engine> store;  // core/engine.h: all the server sees of core/
  std::vector<std::unique_ptr<core::ThreadStats>> thread_stats;  // one per worker, fixed at start
  std::vector<Listener> listeners;     // every -l address, or -s's path; set by Server::Create
  std::vector<std::string> udp_addrs;  // -U: each UDP socket's address ("udp:<ip>:<port>")
  // Every TCP socket's Listener::port_line, then every UDP socket's (the
  // order memcached writes them in); none with -s.
  std::vector<std::string> port_lines;

  // Bytes of large data blocks (values longer than kInputBudgetMin) being
  // received by all connections, against settings.read_buf_mem_limit_mb.
  std::atomic<size_t> input_reserved{0};

  PrefixStats prefix_stats;  // stats detail (-D)
  CrawlerSettings crawler;   // lru_crawler enable|disable|sleep|tocrawl
  // -S's users (main.cc loads them before the server starts); null without -S.
  const SaslPasswords* sasl = nullptr;

  std::atomic<int> verbosity{0};
  std::atomic<uint64_t> curr_conns{0};   // client connections open now
  std::atomic<uint64_t> total_conns{1};  // ever opened, the listener included (as memcached)
  std::atomic<uint64_t> rejected_conns{0};
  std::atomic<uint64_t> conn_structures{0};
  std::atomic<uint64_t> conn_yields{0};  // -R: a connection stopped at its per-event cap
  std::atomic<uint64_t> idle_kicks{0};   // -o idle_timeout: idle connections closed

  absl::Mutex conns_mu;
  absl::flat_hash_map<int, ConnInfo*> conns ABSL_GUARDED_BY(conns_mu);
};

// One connection's share of ServerContext::input_reserved: a data block
// longer than kInputBudgetMin is reserved before it is received and released
// once it is (or when the connection goes).
class InputReservation {
 public:
  explicit InputReservation(ServerContext* ctx) : ctx_(ctx) {}
  ~InputReservation() { Release(); }
  InputReservation(const InputReservation&) = delete;
  InputReservation& operator=(const InputReservation&) = delete;

  // False: the block would take the total past -o read_buf_mem_limit.
  bool Reserve(size_t n) {
    if (n <= kInputBudgetMin) return true;
    const size_t limit = ctx_->settings.read_buf_mem_limit_mb << 20;
    const size_t before = ctx_->input_reserved.fetch_add(n, std::memory_order_relaxed);
    if (limit != 0 && before + n > limit) {
      ctx_->input_reserved.fetch_sub(n, std::memory_order_relaxed);
      return false;
    }
    held_ = n;
    return true;
  }
  void Release() {
    if (held_ == 0) return;
    ctx_->input_reserved.fetch_sub(held_, std::memory_order_relaxed);
    held_ = 0;
  }

 private:
  ServerContext* const ctx_;
  size_t held_ = 0;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_CONTEXT_H_
