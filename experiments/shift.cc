// shift — the read-through client of the size-shift experiment (phase 2 of
// experiments/shift.py): what hit ratio a cache reaches when its item sizes change.
//
// Room: experiments/. Talks to any memcached-protocol server over TCP; links
// nothing of the project, so the same binary measures tinycached and memcached.
//
//   shift --port P [--seconds 60] [--keys 150000] [--value-size 300]
//         [--keys-per-get 100] [--connections 4] [--prefix k] [--seed 1]
//         [--rate GETS_PER_SECOND] [--json]
//
// Every connection runs its own thread and loops:
//
//   client                                             server
//   get k17 k90211 ... (100 uniform random keys)  ->
//                              <- VALUE k17 0 300 ... END (the hits, in request order)
//   set k90211 0 0 300 noreply ... (each miss)   }
//   get ... (the next 100 keys)                   }  one write
// so each connection has one multi-get in flight, and the sets that fill its
// misses travel with the next get. Keys are <prefix><n>, n uniform in
// 1..--keys (with replacement; a key asked twice in one get counts twice, and
// is set once if it missed). A key's value is a pure function of the key: it
// starts with the key and a colon and continues with pseudo-random letters, so
// every hit is checked byte for byte (and its flags must be 0); a wrong value,
// a key not asked for or a reply out of order is a verify failure.
//
// Error lines (SERVER_ERROR out of memory, ...) may come back for noreply
// sets: memcached answers some failures even then. They arrive before the next
// get's reply and are counted as set errors, not as protocol failures.
//
// --rate caps the multi-gets per second over all connections (0, the default:
// as fast as the server answers), to see how the client's speed, which sets
// how fast the misses are filled, shapes the curves.
//
// Accounting: a get is counted in the second (since the start) in which its
// reply finished; requests still in flight at the deadline are read, checked
// and not counted. Per second: hit ratio = hits / keys asked.
//
// Output: a per-second table and totals, or with --json one JSON object.
// Exit status: 0 ran with no verify failures and no protocol errors,
// 1 verify failures or protocol errors (set errors alone do not fail),
// 2 usage, 3 could not connect.
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
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "experiments/client_io.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (IPv4)");
ABSL_FLAG(int, port, 11211, "server port");
ABSL_FLAG(double, seconds, 60, "length of the run");
ABSL_FLAG(uint64_t, keys, 150000, "key space: <prefix>1..N");
ABSL_FLAG(uint64_t, value_size, 300, "bytes of every value");
ABSL_FLAG(int, keys_per_get, 100, "keys of every multi-get");
ABSL_FLAG(int, connections, 4, "connections, one thread each");
ABSL_FLAG(std::string, prefix, "k", "key prefix");
ABSL_FLAG(uint64_t, seed, 1, "seed of the key streams");
ABSL_FLAG(int, timeout_ms, 10000, "give up when the server is silent this long");
ABSL_FLAG(double, rate, 0, "multi-gets per second over all connections (0: no cap)");
ABSL_FLAG(bool, json, false, "print one JSON object instead of the table");

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 11211;
  double seconds = 60;
  uint64_t keys = 150000;
  size_t value_size = 300;
  int keys_per_get = 100;
  int connections = 4;
  std::string prefix = "k";
  uint64_t seed = 1;
  int timeout_ms = 10000;
  double rate = 0;  // multi-gets per second over all connections; 0 = no cap
  bool json = false;
};

using client_io::Mix;

// The value of key number n: "<key>:" then letters from a hash chain of n,
// cut or padded to `size` bytes. Writes into *out (reused, no allocation).
void ValueOf(const Options& o, uint64_t n, std::string* out) {
  out->assign(o.prefix);
  out->append(std::to_string(n));
  out->push_back(':');
  uint64_t h = Mix(n ^ 0x5348494654ull);
  while (out->size() < o.value_size) {
    h = Mix(h);
    uint64_t bits = h;
    for (int i = 0; i < 8 && out->size() < o.value_size; ++i, bits >>= 8) {
      out->push_back(static_cast<char>('a' + (bits & 0xff) % 26));
    }
  }
  out->resize(o.value_size);
}

// Counters of one second (or of the whole run).
struct Tally {
  uint64_t gets = 0, keys = 0, hits = 0, sets = 0;
  void Add(const Tally& t) {
    gets += t.gets;
    keys += t.keys;
    hits += t.hits;
    sets += t.sets;
  }
};

struct Problems {
  uint64_t verify_failures = 0, protocol_errors = 0, set_errors = 0;
  std::string first_verify, first_protocol, first_set_error;
  void Add(const Problems& p) {
    verify_failures += p.verify_failures;
    protocol_errors += p.protocol_errors;
    set_errors += p.set_errors;
    if (first_verify.empty()) first_verify = p.first_verify;
    if (first_protocol.empty()) first_protocol = p.first_protocol;
    if (first_set_error.empty()) first_set_error = p.first_set_error;
  }
};

int Connect(const Options& o) { return client_io::Connect(o.host, o.port); }
using client_io::WriteAll;

using client_io::ParseU64;

class Client {
 public:
  Client(const Options& o, int index, Clock::time_point start, Clock::time_point deadline)
      : o_(o),
        rng_(Mix(o.seed * 7919 + static_cast<uint64_t>(index)) | 1),
        start_(start),
        deadline_(deadline),
        per_second_(static_cast<size_t>(o.seconds) + 2) {}

  // Runs until the deadline. Returns false if the connection failed.
  bool Run() {
    fd_ = Connect(o_);
    if (fd_ < 0) {
      Protocol("cannot connect");
      return false;
    }
    in_.Reset(fd_, o_.timeout_ms);
    std::string out;
    bool ok = true;
    // With --rate, this connection sends its gets on a schedule.
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(o_.rate > 0 ? o_.connections / o_.rate : 0));
    Clock::time_point due = start_;
    for (;;) {
      if (o_.rate > 0) {
        if (due >= deadline_) break;
        const Clock::time_point now = Clock::now();
        if (due > now) std::this_thread::sleep_until(due);
        // Fallen behind by more than a second: do not burst to catch up.
        due = std::max(due, now - std::chrono::seconds(1)) + interval;
      }
      NextKeys();
      out.clear();
      AppendSets(&out);  // the misses of the previous get
      AppendGet(&out);
      if (!WriteAll(fd_, out)) {
        Protocol("write failed");
        ok = false;
        break;
      }
      if (!ReadReply()) {
        ok = false;
        break;
      }
      const Clock::time_point now = Clock::now();
      if (now >= deadline_) break;  // the request in flight at the deadline is not counted
      const auto second = static_cast<size_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - start_).count() / 1000000);
      Tally& t = per_second_[std::min(second, per_second_.size() - 1)];
      t.gets += 1;
      t.keys += keys_.size();
      t.hits += reply_hits_;
      t.sets += misses_.size();
    }
    close(fd_);
    fd_ = -1;
    return ok;
  }

  const std::vector<Tally>& per_second() const { return per_second_; }
  const Problems& problems() const { return problems_; }

 private:
  uint64_t Next() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  void NextKeys() {
    keys_.clear();
    for (int i = 0; i < o_.keys_per_get; ++i) keys_.push_back(1 + Next() % o_.keys);
  }

  void AppendGet(std::string* out) const {
    out->append("get");
    for (uint64_t k : keys_) {
      out->push_back(' ');
      out->append(o_.prefix);
      out->append(std::to_string(k));
    }
    out->append("\r\n");
  }

  void AppendSets(std::string* out) {
    for (uint64_t k : misses_) {
      ValueOf(o_, k, &value_);
      out->append("set ");
      out->append(o_.prefix);
      out->append(std::to_string(k));
      out->append(" 0 0 ");
      out->append(std::to_string(value_.size()));
      out->append(" noreply\r\n");
      out->append(value_);
      out->append("\r\n");
    }
  }

  // Reads one get reply (after any error lines left by the sets before it),
  // checks every value, and fills misses_ and reply_hits_.
  bool ReadReply() {
    misses_.clear();
    reply_hits_ = 0;
    size_t next_key = 0;  // keys_[next_key] is the first key not yet answered
    for (;;) {
      // One line, then maybe its data block.
      std::string_view line;
      if (!in_.Line(&line)) return Protocol(in_.error());
      if (line == "END") break;
      if (line.rfind("VALUE ", 0) != 0) {
        // An error line: for a noreply set (SERVER_ERROR ...) it is a set error;
        // anything else is out of protocol.
        const std::string text(line.substr(0, 120));
        if (line.rfind("SERVER_ERROR", 0) == 0) {
          if (problems_.set_errors++ == 0) problems_.first_set_error = text;
          continue;
        }
        return Protocol("unexpected line: " + text);
      }
      // VALUE <key> <flags> <bytes>[ <cas>]
      std::string_view rest = line.substr(6);
      std::string_view fields[4];
      int nfields = 0;
      while (!rest.empty() && nfields < 4) {
        const size_t sp = rest.find(' ');
        fields[nfields++] = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
      }
      uint64_t flags = 0, bytes = 0;
      if (nfields < 3 || !ParseU64(fields[1], &flags) || !ParseU64(fields[2], &bytes) ||
          bytes > (uint64_t{1} << 30)) {
        return Protocol("bad VALUE line: " + std::string(line.substr(0, 120)));
      }
      const std::string key(fields[0]);
      std::string_view data;
      if (!in_.Data(bytes, &data)) return Protocol(in_.error() + " (value of " + key + ")");
      // Replies come in request order; keys skipped over were misses.
      uint64_t n = 0;
      const bool ours = key.size() > o_.prefix.size() &&
                        key.compare(0, o_.prefix.size(), o_.prefix) == 0 &&
                        ParseU64(std::string_view(key).substr(o_.prefix.size()), &n);
      size_t at = next_key;
      while (ours && at < keys_.size() && keys_[at] != n) ++at;
      if (!ours || at == keys_.size()) {
        Verify("reply has key " + key + ", not asked for at this place");
        continue;  // the rest is still read; this key's slot stays a miss
      }
      for (; next_key < at; ++next_key) Miss(keys_[next_key]);
      ++next_key;
      ValueOf(o_, n, &value_);
      if (flags != 0) {
        Verify("flags " + std::to_string(flags) + " for " + key);
        Miss(n);
      } else if (data != value_) {
        Verify("wrong value for " + key + " (" + std::to_string(bytes) + " bytes)");
        Miss(n);
      } else {
        ++reply_hits_;
      }
    }
    for (; next_key < keys_.size(); ++next_key) Miss(keys_[next_key]);
    return true;
  }

  // A missed key is set once, however often it was asked for in this get.
  void Miss(uint64_t k) {
    if (std::find(misses_.begin(), misses_.end(), k) == misses_.end()) misses_.push_back(k);
  }

  // Notes a protocol error; returns false.
  bool Protocol(const std::string& what) {
    if (problems_.protocol_errors++ == 0) problems_.first_protocol = what;
    return false;
  }
  void Verify(const std::string& what) {
    if (problems_.verify_failures++ == 0) problems_.first_verify = what;
  }

  const Options& o_;
  int fd_ = -1;
  uint64_t rng_;
  Clock::time_point start_, deadline_;
  std::vector<uint64_t> keys_, misses_;
  uint64_t reply_hits_ = 0;
  client_io::Reader in_;
  std::string value_;
  std::vector<Tally> per_second_;
  Problems problems_;
};

using client_io::JsonString;

constexpr char kUsage[] =
    R"(usage: shift [--host H] [--port P] [--seconds S] [--keys N] [--value-size B]
             [--keys-per-get K] [--connections C] [--prefix P] [--seed S]
             [--timeout-ms MS] [--rate GETS_PER_SECOND] [--json]
Read-through multi-gets of the size-shift experiment; every hit is checked.
Flag names take '-' or '_'.)";

void Usage() { std::fprintf(stderr, "%s\n", kUsage); }

}  // namespace

int main(int argc, char** argv) {
  client_io::ParseFlags(argc, argv, kUsage);
  Options o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.seconds = absl::GetFlag(FLAGS_seconds);
  o.keys = absl::GetFlag(FLAGS_keys);
  o.value_size = absl::GetFlag(FLAGS_value_size);
  o.keys_per_get = absl::GetFlag(FLAGS_keys_per_get);
  o.connections = absl::GetFlag(FLAGS_connections);
  o.prefix = absl::GetFlag(FLAGS_prefix);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  o.rate = absl::GetFlag(FLAGS_rate);
  o.json = absl::GetFlag(FLAGS_json);
  const bool prefix_ok = !o.prefix.empty() && o.prefix.size() < 200 &&
                         std::all_of(o.prefix.begin(), o.prefix.end(), [](char c) {
                           return static_cast<unsigned char>(c) > ' ' && c != 0x7f;
                         });
  // The value starts with "<key>:", so it must have room for that.
  if (o.port < 1 || o.port > 65535 || o.seconds <= 0 || o.seconds > 86400 || o.keys < 1 ||
      o.value_size < o.prefix.size() + 21 || o.value_size > (1 << 20) || o.keys_per_get < 1 ||
      o.keys_per_get > 10000 || o.connections < 1 || o.connections > 1024 || !prefix_ok ||
      o.timeout_ms < 1 || !(o.rate >= 0)) {
    Usage();
    return 2;
  }
  {
    const int fd = Connect(o);
    if (fd < 0) {
      std::fprintf(stderr, "shift: cannot connect to %s:%d\n", o.host.c_str(), o.port);
      return 3;
    }
    close(fd);
  }

  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::microseconds(static_cast<int64_t>(o.seconds * 1e6));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < o.connections; ++i) {
    clients.push_back(std::make_unique<Client>(o, i, start, deadline));
  }
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (auto& c : clients) {
    threads.emplace_back([&failed, cp = c.get()] {
      if (!cp->Run()) failed.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  const size_t nsec = static_cast<size_t>(o.seconds + 0.999999);
  std::vector<Tally> per_second(nsec);
  Tally total;
  Problems problems;
  for (auto& c : clients) {
    for (size_t s = 0; s < nsec && s < c->per_second().size(); ++s) {
      per_second[s].Add(c->per_second()[s]);
    }
    problems.Add(c->problems());
  }
  for (const Tally& t : per_second) total.Add(t);
  auto ratio = [](const Tally& t) {
    return t.keys ? static_cast<double>(t.hits) / static_cast<double>(t.keys) : 0.0;
  };

  if (o.json) {
    std::string s = "{\"seconds\": " + std::to_string(o.seconds) +
                    ", \"elapsed\": " + std::to_string(elapsed) +
                    ", \"keys\": " + std::to_string(o.keys) +
                    ", \"value_size\": " + std::to_string(o.value_size) +
                    ", \"keys_per_get\": " + std::to_string(o.keys_per_get) +
                    ", \"connections\": " + std::to_string(o.connections) +
                    ", \"rate\": " + std::to_string(o.rate) + ", \"per_second\": [";
    char buf[256];
    for (size_t i = 0; i < per_second.size(); ++i) {
      const Tally& t = per_second[i];
      std::snprintf(buf, sizeof(buf),
                    "%s{\"second\": %zu, \"gets\": %" PRIu64 ", \"keys\": %" PRIu64
                    ", \"hits\": %" PRIu64 ", \"sets\": %" PRIu64 ", \"hit_ratio\": %.6f}",
                    i ? ", " : "", i + 1, t.gets, t.keys, t.hits, t.sets, ratio(t));
      s += buf;
    }
    std::snprintf(buf, sizeof(buf),
                  "], \"gets\": %" PRIu64 ", \"keys_asked\": %" PRIu64 ", \"hits\": %" PRIu64
                  ", \"sets\": %" PRIu64 ", \"hit_ratio\": %.6f",
                  total.gets, total.keys, total.hits, total.sets, ratio(total));
    s += buf;
    s += ", \"set_errors\": " + std::to_string(problems.set_errors) +
         ", \"first_set_error\": " + JsonString(problems.first_set_error) +
         ", \"verify_failures\": " + std::to_string(problems.verify_failures) +
         ", \"first_verify_failure\": " + JsonString(problems.first_verify) +
         ", \"protocol_errors\": " + std::to_string(problems.protocol_errors) +
         ", \"first_protocol_error\": " + JsonString(problems.first_protocol) + "}\n";
    std::fputs(s.c_str(), stdout);
  } else {
    std::printf("second  gets/s  keys/s  hits/s  sets/s  hit ratio  cumulative\n");
    Tally cum;
    for (size_t i = 0; i < per_second.size(); ++i) {
      const Tally& t = per_second[i];
      cum.Add(t);
      std::printf("%6zu %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 "  %9.4f  %10.4f\n",
                  i + 1, t.gets, t.keys, t.hits, t.sets, ratio(t), ratio(cum));
    }
    std::printf("total: %" PRIu64 " gets, %" PRIu64 " keys, %" PRIu64 " hits, %" PRIu64
                " sets in %.2f s; hit ratio %.4f\n",
                total.gets, total.keys, total.hits, total.sets, elapsed, ratio(total));
    std::printf("set errors %" PRIu64 "%s%s  verify failures %" PRIu64
                "%s%s  protocol errors %" PRIu64 "%s%s\n",
                problems.set_errors, problems.set_errors ? " (first: " : "",
                problems.set_errors ? (problems.first_set_error + ")").c_str() : "",
                problems.verify_failures, problems.verify_failures ? " (first: " : "",
                problems.verify_failures ? (problems.first_verify + ")").c_str() : "",
                problems.protocol_errors, problems.protocol_errors ? " (first: " : "",
                problems.protocol_errors ? (problems.first_protocol + ")").c_str() : "");
  }
  if (failed.load() > 0 || problems.protocol_errors > 0 || problems.verify_failures > 0) return 1;
  return 0;
}
