// experiments/fill_protocol.h — the fill client's side of the memcached text
// protocol: a connection that keeps reading while it writes (Connection, over
// client_io::Reader), `stats` polls and the replies to noreply sets they
// collect (StatsReply), the ordering multi-get behind a proxy and the
// per-server polls of --stats-port (StatsSource), and the process readings
// around a fill (VmRSS, memcached's hash table growth).
#ifndef TINYCACHED_EXPERIMENTS_FILL_PROTOCOL_H_
#define TINYCACHED_EXPERIMENTS_FILL_PROTOCOL_H_

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/client_io.h"
#include "experiments/fill_options.h"

namespace tinycached::fill {

// One TCP connection (non-blocking) with a receive buffer.
class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to host:port (any address family). On failure returns false and
  // sets error(). `timeout_ms` bounds every later wait for the server.
  bool Connect(const std::string& host, uint16_t port, int timeout_ms);

  // Writes all of `data`. Whatever the server sends meanwhile is buffered, so
  // a server that answers (errors, or sets whose noreply it ignores) can never
  // block on us while we block on it.
  bool SendAll(std::string_view data);

  // Reads the next "\r\n"-terminated line into *line, without the terminator.
  bool ReadLine(std::string* line);
  // Reads exactly n bytes into *out.
  bool ReadBytes(size_t n, std::string* out);

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  int fd_ = -1;
  int timeout_ms_ = 30000;
  client_io::Reader in_;
  std::string error_;
};

struct StatsReply {
  std::map<std::string, std::string, std::less<>> values;
  // Lines received before the STAT lines: replies to earlier commands, which
  // for noreply sets only exist when something went wrong.
  uint64_t out_of_memory = 0;  // "SERVER_ERROR out of memory ..."
  uint64_t errors = 0;         // any other ERROR / CLIENT_ERROR / SERVER_ERROR
  uint64_t other = 0;          // anything else (e.g. STORED: noreply ignored)
  std::string first_error;

  std::optional<uint64_t> Get(std::string_view name) const {
    const auto it = values.find(name);
    uint64_t v = 0;
    if (it == values.end() || !ParseU64(it->second, &v)) return std::nullopt;
    return v;
  }
};

// Sends `stats` and reads up to END. Returns false on a connection failure.
bool QueryStats(Connection& conn, StatsReply* reply);

// Sends `request` (a multi-get) and reads its reply up to END, skipping the
// values; lines before it are counted into *reply as QueryStats does.
bool QueryBarrier(Connection& conn, const std::string& request, StatsReply* reply);

// Parses "VALUE <key> <flags> <bytes> [<cas>]".
bool ParseValueLine(std::string_view line, std::string_view* key, uint64_t* flags, uint64_t* bytes);

// VmRSS of a process in kB, from /proc/<pid>/status.
std::optional<uint64_t> ReadRssKb(pid_t pid);

// Waits until the server's hash table has caught up with its items, so that
// the RSS read next is the steady state. memcached 1.6 grows its table by one
// power of two at a time in a background thread (checked about once a second)
// whenever curr_items > 1.5 * 2^hash_power_level, so at the first eviction the
// table is often one or two sizes short of where it settles. Returns at once
// if the server reports no `hash_power_level`; stops waiting after `max_ms`,
// or when the table is below that threshold but has not grown for
// kHashGrowWindowMs (a server with another growth rule).
void WaitForHashTable(Connection& conn, uint64_t max_ms);

// Where the stats come from: the server itself, or (--stats-port) every server
// behind the proxy, polled directly after an ordering multi-get through it.
class StatsSource {
 public:
  StatsSource(Connection& conn, const Options& options) : conn_(conn), options_(options) {}

  // Connects to every --stats-port server. Returns an error message, "" on success.
  std::string Open() {
    for (const uint16_t port : options_.stats_ports) {
      Direct d;
      d.port = port;
      d.conn = std::make_unique<Connection>();
      if (!d.conn->Connect(options_.host, port, options_.timeout_ms)) return d.conn->error();
      direct_.push_back(std::move(d));
    }
    return "";
  }

  bool proxied() const { return !direct_.empty(); }
  const std::string& error() const { return error_; }

  // The stats after everything sent so far. `barrier` (a multi-get through the
  // proxy; empty before the first set) orders the poll after the sets.
  bool Poll(const std::string& barrier, StatsReply* total) {
    if (!proxied()) {
      if (QueryStats(conn_, total)) return true;
      error_ = conn_.error();
      return false;
    }
    *total = StatsReply();
    if (!barrier.empty() && !QueryBarrier(conn_, barrier, total)) {
      error_ = "through the proxy: " + conn_.error();
      return false;
    }
    std::map<std::string, uint64_t, std::less<>> sums;
    for (Direct& d : direct_) {
      if (!QueryStats(*d.conn, &d.stats)) {
        error_ = "server on port " + std::to_string(d.port) + ": " + d.conn->error();
        return false;
      }
      const uint64_t evictions = d.stats.Get("evictions").value_or(0);
      if (!d.evictions_at_start.has_value()) d.evictions_at_start = evictions;
      if (!d.items_at_own_eviction.has_value() && evictions > *d.evictions_at_start)
        d.items_at_own_eviction = d.stats.Get("curr_items").value_or(0);
      for (const char* name : {"curr_items", "evictions", "bytes", "limit_maxbytes"})
        sums[name] += d.stats.Get(name).value_or(0);
      total->errors += d.stats.errors;
      total->out_of_memory += d.stats.out_of_memory;
      total->other += d.stats.other;
    }
    for (const auto& [name, sum] : sums) total->values[name] = std::to_string(sum);
    return true;
  }

  // Whether every server behind the proxy has evicted since the first poll.
  bool AllEvicted() const {
    return std::all_of(direct_.begin(), direct_.end(),
                       [](const Direct& d) { return d.items_at_own_eviction.has_value(); });
  }

  // Items that fit before the next eviction, roughly: per server (not yet
  // evicted) free bytes / its bytes per item, the smallest times the number
  // of servers. From `bytes`, which under-counts, so only a guide for the
  // batch size. nullopt when not proxied or nothing is known yet.
  std::optional<uint64_t> RoomLeft() const {
    std::optional<uint64_t> least;
    for (const Direct& d : direct_) {
      if (d.items_at_own_eviction.has_value()) continue;
      const uint64_t items = d.stats.Get("curr_items").value_or(0);
      const uint64_t used = d.stats.Get("bytes").value_or(0);
      const uint64_t limit = d.stats.Get("limit_maxbytes").value_or(0);
      if (items == 0 || used == 0) return std::nullopt;
      const uint64_t room = used < limit ? (limit - used) / std::max<uint64_t>(1, used / items) : 0;
      least = std::min(least.value_or(room), room);
    }
    if (!least.has_value()) return std::nullopt;
    return *least * direct_.size();
  }

  // Records each server's curr_items now as its items at the first eviction.
  void MarkFirstEviction(FillResult* result) const {
    result->nodes.clear();
    for (const Direct& d : direct_) {
      FillResult::Node n;
      n.port = d.port;
      n.items_at_first_eviction = d.stats.Get("curr_items").value_or(0);
      result->nodes.push_back(n);
    }
  }

  // Fills in each server's end state (after MarkFirstEviction).
  void MarkEnd(FillResult* result) const {
    for (size_t i = 0; i < direct_.size() && i < result->nodes.size(); ++i) {
      const Direct& d = direct_[i];
      FillResult::Node& n = result->nodes[i];
      n.items_at_own_eviction = d.items_at_own_eviction;
      n.items_end = d.stats.Get("curr_items").value_or(0);
      const uint64_t evictions = d.stats.Get("evictions").value_or(0);
      n.evictions_end = evictions - std::min(evictions, d.evictions_at_start.value_or(0));
    }
  }

 private:
  struct Direct {
    uint16_t port = 0;
    std::unique_ptr<Connection> conn;
    StatsReply stats;
    std::optional<uint64_t> evictions_at_start;
    std::optional<uint64_t> items_at_own_eviction;
  };
  Connection& conn_;
  const Options& options_;
  std::vector<Direct> direct_;
  std::string error_;
};

}  // namespace tinycached::fill

#endif  // TINYCACHED_EXPERIMENTS_FILL_PROTOCOL_H_
