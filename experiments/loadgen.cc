// experiments/loadgen.cc — a closed-loop memcached ASCII load client that
// measures throughput and latency and verifies every reply.
//
// Room: experiments/. Talks to any memcached-protocol server over TCP; links
// nothing of the project, so the same binary measures tinycached and memcached.
//
//   loadgen --port P --workload getset|multiget|set|incr [--seconds 5]
//           [--connections 32] [--threads 1] [--keys 100000] [--json]
//           [--preload-only | --skip-preload]
// The preload (see below) can run alone, so a driver can measure the
// server's CPU over the timed phase only.
//
// Every connection has one request in flight: it sends, waits for the whole
// reply, checks it, records the latency, sends the next. Workloads:
//   getset   90% `get k`, 10% `set k` over keys 1..--keys, preloaded first
//   multiget `get k1 .. k10` (10 random keys), preloaded first
//   set      100% `set k` over keys 1..--keys, after filling the server to its
//            first eviction, so (with --keys beyond what fits) every set evicts
//   incr     `incr c<i> 1` over --counters counters set to 0 first (the
//            name's prefix is --counter-prefix; "" makes them integer keys)
// Values are 1-8 bytes and a pure function of the key, so any value a get
// returns can be checked. incr replies must grow per connection and counter,
// and at the end the counters must sum to the increments acknowledged.
// Latency is kept in a log-linear histogram (1/64 of a power of two).
//
// Output: a human summary, or with --json one JSON object on stdout.
// Exit status: 0 ran and verified, 1 verification failures or errors, 2 usage.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "experiments/client_io.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (IPv4)");
ABSL_FLAG(int, port, 11211, "server port");
ABSL_FLAG(std::string, workload, "getset", "getset, multiget, set or incr");
ABSL_FLAG(double, seconds, 5, "length of the timed phase");
ABSL_FLAG(int, connections, 32, "connections, each with one request in flight");
ABSL_FLAG(int, threads, 1, "client threads the connections are spread over");
ABSL_FLAG(uint64_t, keys, 100000, "key space 1..N of getset, multiget and set");
ABSL_FLAG(uint64_t, counters, 1000, "incr: counters <prefix>1..N");
ABSL_FLAG(std::string, counter_prefix, "c",
          "incr: counter name prefix (\"\" makes them integer keys)");
ABSL_FLAG(bool, json, false, "print one JSON object instead of the summary");
ABSL_FLAG(bool, preload_only, false, "run the preload only");
ABSL_FLAG(bool, skip_preload, false, "skip the preload (the server was preloaded)");

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 11211;
  std::string workload = "getset";
  double seconds = 5;
  int connections = 32;
  int threads = 1;
  uint64_t keys = 100000;
  uint64_t counters = 1000;
  std::string counter_prefix = "c";
  bool json = false;
  bool preload_only = false;
  bool skip_preload = false;
};

using client_io::Mix;

// Appends the parts to *out, front to back. Requests and messages are built
// this way rather than as `"literal" + std::string(...)`: that operator+ inserts
// the literal at the front of the temporary, moving the bytes already there, and
// GCC 12 at -O2/-O3 cannot prove the copy in that insert free of overlap
// (-Wrestrict). Appending does no such move.
void Append(std::string* out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) out->append(p);
}

std::string Cat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string s;
  s.reserve(n);
  Append(&s, parts);
  return s;
}

// Appends `set <key> 0 0 <bytes>[ noreply]\r\n<value>\r\n`.
void AppendSet(std::string* out, std::string_view key, std::string_view value, bool noreply) {
  Append(out, {"set ", key, " 0 0 ", std::to_string(value.size()), noreply ? " noreply" : "",
               "\r\n", value, "\r\n"});
}

// The value every set of `key` writes: 1-8 decimal digits.
std::string ValueOf(uint64_t key) {
  const uint64_t h = Mix(key);
  const int len = 1 + static_cast<int>(h % 8);
  std::string v = std::to_string(h / 8);
  return v.substr(0, static_cast<size_t>(len));
}

// Log-linear latency histogram in nanoseconds.
class Histogram {
 public:
  static constexpr int kSub = 64;
  Histogram() : counts_(64 * kSub, 0) {}
  void Add(uint64_t ns) {
    ++counts_[Index(ns)];
    ++total_;
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }
  uint64_t total() const { return total_; }
  // The upper bound of the bucket holding quantile q.
  double QuantileUs(double q) const {
    if (total_ == 0) return 0;
    const uint64_t want = static_cast<uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= want) return static_cast<double>(Upper(i)) / 1000.0;
    }
    return static_cast<double>(Upper(counts_.size() - 1)) / 1000.0;
  }

 private:
  static size_t Index(uint64_t ns) {
    if (ns < kSub) return ns;
    const int msb = 63 - __builtin_clzll(ns);
    const int shift = msb - 6;  // keep the top 7 bits: 64 sub-buckets per power of two
    return static_cast<size_t>((shift + 1) * kSub + ((ns >> shift) - kSub));
  }
  static uint64_t Upper(size_t i) {
    if (i < kSub) return i;
    const size_t shift = i / kSub - 1;
    return ((i % kSub + kSub + 1) << shift) - 1;
  }
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

struct Stats {
  uint64_t ops = 0, keys_asked = 0, hits = 0, misses = 0, stored = 0;
  uint64_t incr_ok = 0, errors = 0, verify_failures = 0;
  std::string first_problem;
  Histogram latency;
  void Problem(const std::string& what, bool verify) {
    (verify ? verify_failures : errors)++;
    if (first_problem.empty()) first_problem = what;
  }
  void Merge(const Stats& o) {
    ops += o.ops;
    keys_asked += o.keys_asked;
    hits += o.hits;
    misses += o.misses;
    stored += o.stored;
    incr_ok += o.incr_ok;
    errors += o.errors;
    verify_failures += o.verify_failures;
    if (first_problem.empty()) first_problem = o.first_problem;
    latency.Merge(o.latency);
  }
};

int Connect(const Options& o) { return client_io::Connect(o.host, o.port); }
using client_io::WriteAll;

// The preload and the counter check wait this long for a reply.
constexpr int kReplyTimeoutMs = 60000;

// Reads lines up to and including one that is `last` (or starts with it);
// false if the connection fails first. *seen gets every line's text.
bool ReadUntil(client_io::Reader& in, std::string_view last, std::string* seen) {
  seen->clear();
  for (;;) {
    std::string_view line;
    if (!in.Line(&line)) return false;
    Append(seen, {line, "\r\n"});
    if (line.rfind(last, 0) == 0) return true;
  }
}

// Sets keys [from, to) with noreply, then a `version` round trip to sync.
bool Preload(const Options& o, uint64_t from, uint64_t to, bool counters) {
  const int fd = Connect(o);
  if (fd < 0) return false;
  std::string batch;
  for (uint64_t k = from; k < to; ++k) {
    if (counters) {
      AppendSet(&batch, Cat({o.counter_prefix, std::to_string(k)}), "0", true);
    } else {
      AppendSet(&batch, std::to_string(k), ValueOf(k), true);
    }
    if (batch.size() > (1 << 16) || k + 1 == to) {
      if (!WriteAll(fd, batch)) return close(fd), false;
      batch.clear();
    }
  }
  client_io::Reader in(fd, kReplyTimeoutMs);
  std::string_view line;
  const bool ok = WriteAll(fd, "version\r\n") && in.Line(&line) && line.rfind("VERSION", 0) == 0;
  close(fd);
  return ok;
}

// Sets keys 1, 2, 3, ... (noreply, in batches) until `stats` reports an
// eviction, the way the fill experiment does. Returns the keys sent.
uint64_t FillUntilEviction(const Options& o) {
  const int fd = Connect(o);
  if (fd < 0) return 0;
  client_io::Reader in(fd, kReplyTimeoutMs);
  std::string batch, reply;
  uint64_t key = 1;
  for (;;) {
    batch.clear();
    for (int i = 0; i < 20000; ++i, ++key) {
      AppendSet(&batch, std::to_string(key), ValueOf(key), true);
    }
    batch += "stats\r\n";
    if (!WriteAll(fd, batch) || !ReadUntil(in, "END", &reply)) break;
    const size_t at = reply.find("STAT evictions ");
    if (at == std::string::npos) break;
    if (std::strtoull(reply.c_str() + at + 15, nullptr, 10) > 0) {
      close(fd);
      return key - 1;
    }
  }
  close(fd);
  return 0;
}

struct Conn {
  int fd = -1;
  uint64_t rng = 0;
  std::string out, in;
  size_t out_pos = 0;
  Clock::time_point sent;
  // The request in flight.
  enum Kind { kGet, kSet, kIncr } kind = kGet;
  std::vector<uint64_t> keys;
  std::vector<uint64_t> last_counter;  // incr: last value seen per counter

  uint64_t Next() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }
};

class Worker {
 public:
  Worker(const Options& o, int nconn, uint64_t seed) : o_(o), conns_(nconn) {
    for (int i = 0; i < nconn; ++i) conns_[i].rng = Mix(seed * 1000 + i) | 1;
  }

  bool Run(Clock::time_point deadline) {
    const int ep = epoll_create1(0);
    if (ep < 0) return false;
    for (size_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      c.fd = Connect(o_);
      if (c.fd < 0) return close(ep), false;
      fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
      if (o_.workload == "incr") c.last_counter.assign(o_.counters + 1, 0);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      Issue(c);
    }
    epoll_event events[256];
    char buf[65536];
    // Until the deadline every reply is followed by a new request; after it,
    // the requests in flight are drained so every acknowledgement is counted.
    size_t in_flight = conns_.size();
    while (in_flight > 0) {
      const int n = epoll_wait(ep, events, 256, 100);
      for (int e = 0; e < n; ++e) {
        Conn& c = conns_[events[e].data.u64];
        for (;;) {
          const ssize_t got = read(c.fd, buf, sizeof(buf));
          if (got > 0) {
            c.in.append(buf, static_cast<size_t>(got));
            continue;
          }
          if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
          stats_.Problem("connection closed by the server", false);
          close(ep);
          return false;
        }
        if (Complete(c)) {
          stats_.latency.Add(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - c.sent).count()));
          ++stats_.ops;
          Check(c);
          c.in.clear();
          if (Clock::now() < deadline) {
            Issue(c);
          } else {
            --in_flight;
          }
        }
      }
    }
    close(ep);
    for (Conn& c : conns_) close(c.fd);
    return true;
  }

  const Stats& stats() const { return stats_; }

 private:
  uint64_t RandomKey(Conn& c, uint64_t space) { return 1 + c.Next() % space; }

  void Issue(Conn& c) {
    c.out.clear();
    c.keys.clear();
    const std::string& w = o_.workload;
    const uint64_t r = c.Next() % 100;
    if (w == "incr") {
      c.kind = Conn::kIncr;
      c.keys.push_back(RandomKey(c, o_.counters));
      Append(&c.out, {"incr ", o_.counter_prefix, std::to_string(c.keys[0]), " 1\r\n"});
    } else if (w == "set" || (w == "getset" && r < 10)) {
      c.kind = Conn::kSet;
      const uint64_t k = RandomKey(c, o_.keys);
      c.keys.push_back(k);
      AppendSet(&c.out, std::to_string(k), ValueOf(k), false);
    } else {
      c.kind = Conn::kGet;
      const int n = w == "multiget" ? 10 : 1;
      c.out = "get";
      for (int i = 0; i < n; ++i) {
        c.keys.push_back(RandomKey(c, o_.keys));
        Append(&c.out, {" ", std::to_string(c.keys.back())});
      }
      c.out += "\r\n";
      stats_.keys_asked += static_cast<uint64_t>(n);
    }
    c.sent = Clock::now();
    // Requests are small; a blocking-style write loop on a non-blocking
    // socket only spins if the kernel buffer is full, which it never is here.
    std::string_view data = c.out;
    while (!data.empty()) {
      const ssize_t n = write(c.fd, data.data(), data.size());
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        continue;
      } else {
        stats_.Problem("write failed", false);
        return;
      }
    }
  }

  // Is the reply to the request in flight all here?
  bool Complete(const Conn& c) const {
    if (c.kind != Conn::kGet) return c.in.find("\r\n") != std::string::npos;
    // VALUE blocks then END: walk the blocks so a value containing "END" cannot fool us.
    size_t pos = 0;
    for (;;) {
      const size_t eol = c.in.find("\r\n", pos);
      if (eol == std::string::npos) return false;
      const std::string_view line(c.in.data() + pos, eol - pos);
      if (line.rfind("VALUE ", 0) != 0) return true;  // END, or an error line
      const size_t sp = line.rfind(' ');
      const uint64_t bytes = std::strtoull(std::string(line.substr(sp + 1)).c_str(), nullptr, 10);
      pos = eol + 2 + bytes + 2;
      if (pos > c.in.size()) return false;
    }
  }

  void Check(Conn& c) {
    switch (c.kind) {
      case Conn::kSet:
        if (c.in == "STORED\r\n") {
          ++stats_.stored;
        } else {
          stats_.Problem(Cat({"set: ", c.in.substr(0, 80)}), false);
        }
        return;
      case Conn::kIncr: {
        const uint64_t counter = c.keys[0];
        char* end = nullptr;
        const uint64_t v = std::strtoull(c.in.c_str(), &end, 10);
        if (end == c.in.c_str() || std::string_view(end) != "\r\n") {
          stats_.Problem(Cat({"incr: ", c.in.substr(0, 80)}), false);
        } else if (v <= c.last_counter[counter]) {
          stats_.Problem(
              Cat({"incr went backwards on ", o_.counter_prefix, std::to_string(counter)}), true);
        } else {
          c.last_counter[counter] = v;
          ++stats_.incr_ok;
        }
        return;
      }
      case Conn::kGet: {
        size_t pos = 0;
        size_t next_key = 0;
        for (;;) {
          const size_t eol = c.in.find("\r\n", pos);
          const std::string_view line(c.in.data() + pos, eol - pos);
          if (line == "END") break;
          if (line.rfind("VALUE ", 0) != 0) {
            stats_.Problem(Cat({"get: ", line.substr(0, 80)}), false);
            return;
          }
          // VALUE <key> <flags> <bytes>
          const size_t k1 = 6, k2 = line.find(' ', k1);
          const uint64_t key =
              std::strtoull(std::string(line.substr(k1, k2 - k1)).c_str(), nullptr, 10);
          const size_t sp = line.rfind(' ');
          const size_t bytes = std::strtoull(std::string(line.substr(sp + 1)).c_str(), nullptr, 10);
          const std::string_view value(c.in.data() + eol + 2, bytes);
          // Replies come in request order; skipped keys were misses.
          while (next_key < c.keys.size() && c.keys[next_key] != key) {
            ++next_key;
            ++stats_.misses;
          }
          if (next_key == c.keys.size()) {
            stats_.Problem(Cat({"get returned a key not asked for: ", std::to_string(key)}), true);
            return;
          }
          ++next_key;
          if (value != ValueOf(key)) {
            stats_.Problem(Cat({"wrong value for ", std::to_string(key)}), true);
          } else {
            ++stats_.hits;
          }
          pos = eol + 2 + bytes + 2;
        }
        stats_.misses += c.keys.size() - next_key;
        return;
      }
    }
  }

  const Options& o_;
  std::vector<Conn> conns_;
  Stats stats_;
};

// incr: the counters' final values must add up to the increments acknowledged.
bool CountersAddUp(const Options& o, uint64_t acknowledged, std::string* problem) {
  const int fd = Connect(o);
  if (fd < 0) return false;
  client_io::Reader in(fd, kReplyTimeoutMs);
  uint64_t sum = 0;
  for (uint64_t k = 1; k <= o.counters; ++k) {
    std::string_view line, value;
    bool read =
        WriteAll(fd, Cat({"get ", o.counter_prefix, std::to_string(k), "\r\n"})) && in.Line(&line);
    if (read && line.rfind("VALUE ", 0) == 0) {
      // VALUE <key> <flags> <bytes>
      const uint64_t bytes =
          std::strtoull(std::string(line.substr(line.rfind(' ') + 1)).c_str(), nullptr, 10);
      read = in.Data(bytes, &value) && in.Line(&line);
      if (read) sum += std::strtoull(std::string(value).c_str(), nullptr, 10);
    }  // else evicted: cannot be checked
    if (!read) {
      close(fd);
      *problem = "reading counters failed";
      return false;
    }
  }
  close(fd);
  if (sum != acknowledged) {
    *problem = Cat({"counters sum to ", std::to_string(sum), ", ", std::to_string(acknowledged),
                    " increments were acknowledged"});
    return false;
  }
  return true;
}

constexpr char kUsage[] =
    R"(usage: loadgen [--host H] [--port P] [--workload getset|multiget|set|incr]
               [--seconds S] [--connections C] [--threads T] [--keys N]
               [--counters N] [--counter-prefix STR] [--json] [--preload-only | --skip-preload]
Closed-loop memcached load with latency percentiles; every reply is checked.
Flag names take '-' or '_'.)";

void Usage() { std::fprintf(stderr, "%s\n", kUsage); }

}  // namespace

int main(int argc, char** argv) {
  client_io::ParseFlags(argc, argv, kUsage);
  Options o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.workload = absl::GetFlag(FLAGS_workload);
  o.seconds = absl::GetFlag(FLAGS_seconds);
  o.connections = absl::GetFlag(FLAGS_connections);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.keys = absl::GetFlag(FLAGS_keys);
  o.counters = absl::GetFlag(FLAGS_counters);
  o.counter_prefix = absl::GetFlag(FLAGS_counter_prefix);
  o.json = absl::GetFlag(FLAGS_json);
  o.preload_only = absl::GetFlag(FLAGS_preload_only);
  o.skip_preload = absl::GetFlag(FLAGS_skip_preload);
  if ((o.workload != "getset" && o.workload != "multiget" && o.workload != "set" &&
       o.workload != "incr") ||
      o.connections < 1 || o.threads < 1 || o.threads > o.connections || o.keys < 1 ||
      o.counters < 1 || o.seconds <= 0) {
    Usage();
    return 2;
  }

  if (!o.skip_preload) {
    bool ok = true;
    if (o.workload == "getset" || o.workload == "multiget") {
      ok = Preload(o, 1, o.keys + 1, false);
    } else if (o.workload == "incr") {
      ok = Preload(o, 1, o.counters + 1, true);
    } else if (o.workload == "set") {
      ok = FillUntilEviction(o) > 0;
    }
    if (!ok) {
      std::fprintf(stderr, "loadgen: preload failed (is a server on %s:%d?)\n", o.host.c_str(),
                   o.port);
      return 1;
    }
  }
  if (o.preload_only) return 0;

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < o.threads; ++t) {
    const int n = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(o, n, static_cast<uint64_t>(t) + 1));
  }
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::microseconds(static_cast<int64_t>(o.seconds * 1e6));
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&, wp = w.get()] {
      if (!wp->Run(deadline)) ok = false;
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  Stats all;
  for (auto& w : workers) all.Merge(w->stats());
  if (!ok && all.first_problem.empty()) all.Problem("a connection failed", false);
  if (o.workload == "incr") {
    std::string problem;
    if (!CountersAddUp(o, all.incr_ok, &problem)) all.Problem(problem, true);
  }

  const double ops_per_sec = static_cast<double>(all.ops) / elapsed;
  if (o.json) {
    std::printf(
        "{\"workload\": \"%s\", \"connections\": %d, \"threads\": %d, \"seconds\": %.3f, "
        "\"ops\": %" PRIu64
        ", \"ops_per_sec\": %.1f, \"keys_per_sec\": %.1f, "
        "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"hits\": %" PRIu64
        ", \"misses\": %" PRIu64 ", \"stored\": %" PRIu64 ", \"incr_ok\": %" PRIu64
        ", \"errors\": %" PRIu64 ", \"verify_failures\": %" PRIu64 ", \"first_problem\": %s}\n",
        o.workload.c_str(), o.connections, o.threads, elapsed, all.ops, ops_per_sec,
        static_cast<double>(all.keys_asked) / elapsed, all.latency.QuantileUs(0.50),
        all.latency.QuantileUs(0.99), all.latency.QuantileUs(0.999), all.hits, all.misses,
        all.stored, all.incr_ok, all.errors, all.verify_failures,
        client_io::JsonString(all.first_problem).c_str());
  } else {
    std::printf("workload %s: %" PRIu64 " ops in %.2f s = %.0f ops/s\n", o.workload.c_str(),
                all.ops, elapsed, ops_per_sec);
    std::printf("latency us: p50 %.1f  p99 %.1f  p99.9 %.1f\n", all.latency.QuantileUs(0.50),
                all.latency.QuantileUs(0.99), all.latency.QuantileUs(0.999));
    std::printf("hits %" PRIu64 "  misses %" PRIu64 "  stored %" PRIu64 "  incr %" PRIu64
                "  errors %" PRIu64 "  verify failures %" PRIu64 "\n",
                all.hits, all.misses, all.stored, all.incr_ok, all.errors, all.verify_failures);
    if (!all.first_problem.empty()) std::printf("first problem: %s\n", all.first_problem.c_str());
  }
  return all.errors == 0 && all.verify_failures == 0 ? 0 : 1;
}
