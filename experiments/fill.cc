// fill — fills any memcached-protocol server with tiny items until its first
// eviction and reports how many it held (README.md, "The 64 MB fill
// experiment").
//
// Protocol, in one picture:
//
//   client                                         server
//   set 1 0 0 1 noreply\r\nx\r\n ... (one batch) ->  (no reply to noreply sets)
//   stats\r\n                                   ->
//                         <- [error lines for failed sets, if any]
//                         <- STAT ... \r\n ... END\r\n
//
// The stats reply comes after every earlier command on the connection has been
// processed, so each poll sees the exact effect of everything sent so far.
// Filling stops at the first poll whose `evictions` grew; the figure "items
// stored" is that poll's `curr_items`. A server that refuses items instead of
// evicting (memcached -M) is "full" too: memcached 1.6 sends no error for a
// noreply set, so that shows as a poll where `curr_items` grew by less than the
// batch while `evictions` did not move (every key is new, none expires). A
// server that does send error lines stops the fill as well.
//
// Reproducibility: every decision (batch sizes, when to poll, when to stop) is
// a function of earlier stats values only, never of time, so a deterministic
// server gives the same figure on every run.
//
// Behind a proxy (twemproxy/nutcracker, which answers no `stats`), --stats-port
// names the servers behind it; each is polled directly and their figures are
// summed. A multi-get through the proxy orders the polls after the sets:
//
//   fill --set ... noreply (a batch)----------------> proxy --> node A, B, C
//        --get <the batch's last 64 keys>-----------> proxy --> a part to each
//        <-- VALUE ... END (every node's part done) --
//        --stats--------------------------------------------> node A, B, C
//
// The proxy sends a client's requests for one node down one connection, in
// order, so when the multi-get's reply is back every node that got a part of
// it has processed every set sent to it before. A node with a share s of the
// keys gets no part with probability (1 - s)^64 (1e-8 at s = 1/4); it then
// reports its items of a batch later, never wrong ones. "items stored" is the
// sum of curr_items at the first eviction on any node; --every-node keeps
// filling until each node has evicted and adds each node's curr_items at its
// own first eviction (its capacity as sharded by the proxy).
//
// --past-eviction keeps filling past the first eviction (steady-state
// eviction: the server recycles memory instead of taking more); the figure
// "items stored" stays the first eviction's, the run's end is reported
// beside it.
//
// Item shapes (experiments/shapes): by default key number k (1, 2, 3, ..., or
// the shuffled order's) is the key "<prefix>k" with the value 'x' x
// --value-size. --key-shape makes it a random distinct D-digit number, N hex
// digits or a UUID (each a keyed bijection of k, so distinct), --key-prefixes
// cycles the keys over N prefixes, --value-shape makes the value a D-digit
// number or N letters derived from k. Every byte is a function of k and
// --seed, so --verify rebuilds the key and value of any item it re-reads.
// With every shape option at its default the bytes sent are exactly the
// seed's.
//
// Exit codes: 0 filled (or stopped by a server out of memory), 1 --verify found
// corrupt values, 2 bad usage, 3 connection or protocol failure, 4 the item cap
// or key space ran out before the server filled up.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tinycached::fill {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// memcached's key length limit; longer keys are rejected by every server.
constexpr size_t kMaxKeyLength = 250;
// Largest shuffled key space: the permutation is held as 32-bit key numbers.
constexpr uint64_t kMaxKeySpace = uint64_t{1} << 31;
// Keys per multi-get and multi-gets in flight during --verify.
constexpr size_t kKeysPerGet = 100;
constexpr size_t kGetsInFlight = 8;
// A reply line longer than this means we are out of sync with the server.
constexpr size_t kMaxLineLength = 1 << 20;
// Largest value --verify accepts in a VALUE line before calling it corrupt.
constexpr uint64_t kMaxValueLength = uint64_t{1} << 30;
// The batch shrinks to (estimated room left) / kBatchRoomDivisor near the end.
constexpr uint64_t kBatchRoomDivisor = 8;
// WaitForHashTable: poll interval, and how long the hash table may stay below
// memcached's growth threshold without growing before we assume the server
// follows another policy.
constexpr int kHashPollMs = 50;
constexpr int kHashGrowWindowMs = 3000;
// A batch never holds more than this many request bytes (large --value-size).
constexpr uint64_t kMaxBatchBytes = uint64_t{4} << 20;
// --stats-port: most servers behind a proxy, and keys per ordering multi-get.
constexpr size_t kMaxStatsPorts = 64;
constexpr uint64_t kBarrierKeys = 64;

constexpr int kExitOk = 0;
constexpr int kExitCorrupt = 1;
constexpr int kExitUsage = 2;
constexpr int kExitFailure = 3;
constexpr int kExitNotFilled = 4;

constexpr char kUsage[] =
    R"(usage: fill [options]
Fills a memcached-protocol server with keys 1, 2, 3, ... (value 'x'; other
key and value shapes below) using pipelined `set <key> 0 0 <n> noreply`,
polls `stats` after every batch and stops at the first eviction. Reports
curr_items at that moment.

  --host HOST          server address (default 127.0.0.1)
  --port PORT          server port (default 11211)
  --value-size N       value of N bytes 'x' (default 1)
  --value-shape SHAPE  the value of key number k:
                         x          --value-size bytes of 'x' (default)
                         digits:D   a decimal number of exactly D digits,
                                    D 1..20, varying with k (and --seed),
                                    below 2^64 - 1
                         text:N     N letters (a-z, A-Z), N 1..1048576,
                                    varying with k (and --seed)
                       (--value-size only goes with x)
  --order ORDER        sequential (default) or shuffled
  --seed N             seed of the shuffled order and of the random, hex,
                       uuid, digits and text shapes (default 1)
  --key-space N        shuffled order: permutation of keys 1..N
                       (default: --max-items, else limit bytes / 8)
  --key-prefix STR     prepended to every key (default none)
  --key-shape SHAPE    what follows the prefix for key number k (k = 1, 2,
                       3, ..., or the shuffled order's numbers):
                         seq        k in decimal (default)
                         random:D   a distinct canonical D-digit decimal
                                    number, D 1..20 (a bijection of k - 1
                                    onto [10^(D-1), 10^D), keyed by --seed;
                                    9 x 10^(D-1) keys at most)
                         hex:N      N lowercase hex digits, N 1..64,
                                    distinct per k (16^N keys at most
                                    below N = 16), keyed by --seed
                         uuid       36-character lowercase version-4 UUID
                                    text, distinct per k, keyed by --seed
  --key-prefixes N     N > 1: key number k also gets the prefix
                       "<k-1 mod N>:" after --key-prefix, so the keys
                       cycle over N prefixes ("rl:0:...", "rl:1:...", ...;
                       default 1: none)
  --limit-mb MB        memory limit used for bytes/item (default: the
                       server's limit_maxbytes)
  --max-items N        safety cap on items sent (default: limit bytes)
  --past-eviction N    after the first eviction, send N more sets (N% : that
                       percentage of the items held at the first eviction),
                       so the RSS read afterwards includes steady-state
                       eviction (with --pid, "RSS after" is read after
                       them, rss_first_eviction_kb at the first eviction);
                       adds past_* fields to the report
  --batch N            largest batch of sets per write (default 4096)
  --min-batch N        smallest batch near the end (default 64)
  --pid PID            server pid: read VmRSS before and after the fill
  --hash-wait-ms MS    before reading the RSS after the fill, wait up to MS
                       for a memcached-style hash table to finish growing
                       (default 20000, 0 = do not wait)
  --settle-ms MS       then wait MS more (default 0)
  --verify             re-read a sample of keys with multi-get afterwards
                       (each value is checked against the one sent)
  --verify-sample N    keys to re-read (default 100000, 0 = every key sent)
  --timeout-ms MS      give up when the server is silent this long
                       (default 30000)
  --label NAME         name of this run in the report
  --csv FILE           append one CSV line (header first if the file is new)
  --json               print one JSON object instead of the text report
  --stats-port PORT    the server at --port is a proxy without `stats`
                       (twemproxy): poll the server at --host:PORT instead;
                       repeat for every server behind the proxy (summed)
  --every-node         with --stats-port: fill on until every server has
                       evicted; report each one's items at its first eviction
  --help               this text
)";

// ---------------------------------------------------------------------------
// Options.

enum class KeyOrder { kSequential, kShuffled };

// --key-shape and --value-shape (ItemShape below makes the bytes).
enum class KeyShape { kSeq, kRandom, kHex, kUuid };
enum class ValueShape { kX, kDigits, kText };
constexpr uint64_t kMaxKeyPrefixes = 1000000;
constexpr uint64_t kMaxTextValue = kMiB;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 11211;
  uint64_t value_size = 1;
  KeyOrder order = KeyOrder::kSequential;
  uint64_t seed = 1;
  std::optional<uint64_t> key_space;
  std::string key_prefix;
  KeyShape key_shape = KeyShape::kSeq;
  uint64_t key_shape_size = 0;  // random:D digits, hex:N characters
  uint64_t key_prefixes = 1;
  ValueShape value_shape = ValueShape::kX;
  uint64_t value_shape_size = 0;  // digits:D digits, text:N bytes
  bool value_size_given = false;
  std::optional<uint64_t> limit_bytes;
  std::optional<uint64_t> max_items;
  // --past-eviction: a count, or a percentage of the items at the first eviction.
  std::optional<uint64_t> past_eviction;
  std::optional<double> past_eviction_pct;
  uint64_t batch = 4096;
  uint64_t min_batch = 64;
  std::optional<pid_t> pid;
  uint64_t settle_ms = 0;
  uint64_t hash_wait_ms = 20000;
  bool verify = false;
  uint64_t verify_sample = 100000;
  int timeout_ms = 30000;
  std::string label;
  std::string csv_path;
  bool json = false;
  bool help = false;
  // --stats-port: the servers behind the proxy at host:port (same host).
  std::vector<uint16_t> stats_ports;
  bool every_node = false;
};

bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

bool ParsePositiveDouble(std::string_view text, double* out) {
  const std::string copy(text);
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(copy.c_str(), &end);
  return !copy.empty() && errno == 0 && end == copy.c_str() + copy.size() &&
         std::isfinite(*out) && *out > 0;
}

// A key prefix must keep keys legal in the text protocol.
bool IsValidKeyText(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > ' ' && u != 0x7f;
  });
}

// Parses argv into *options. Returns an error message, empty on success.
std::string ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--")
      return "unexpected argument: " + std::string(arg);
    arg.remove_prefix(2);
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    auto flag = [&](bool* field) -> std::string {
      if (inline_value.has_value())
        return "--" + std::string(name) + " takes no value";
      *field = true;
      return "";
    };
    if (name == "verify") {
      if (auto e = flag(&options->verify); !e.empty()) return e;
      continue;
    }
    if (name == "json") {
      if (auto e = flag(&options->json); !e.empty()) return e;
      continue;
    }
    if (name == "help") {
      if (auto e = flag(&options->help); !e.empty()) return e;
      continue;
    }
    if (name == "every-node") {
      if (auto e = flag(&options->every_node); !e.empty()) return e;
      continue;
    }

    static constexpr std::string_view kValueOptions[] = {
        "host",         "port",      "value-size",    "order",
        "seed",         "key-space", "key-prefix",    "limit-mb",
        "max-items",    "batch",     "min-batch",     "pid",
        "hash-wait-ms", "settle-ms", "verify-sample", "timeout-ms",
        "label",        "csv",       "past-eviction", "stats-port",
        "key-shape",    "key-prefixes", "value-shape"};
    if (std::find(std::begin(kValueOptions), std::end(kValueOptions), name) ==
        std::end(kValueOptions)) {
      return "unknown option: --" + std::string(name);
    }
    std::string_view value;
    if (inline_value.has_value()) {
      value = *inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return "--" + std::string(name) + " needs a value";
    }
    const std::string bad =
        "bad value for --" + std::string(name) + ": " + std::string(value);
    uint64_t number = 0;
    auto number_at_least = [&](uint64_t min, uint64_t max) {
      return ParseUint(value, &number) && number >= min && number <= max;
    };

    if (name == "host") {
      if (value.empty()) return bad;
      options->host = std::string(value);
    } else if (name == "port") {
      if (!number_at_least(1, 65535)) return bad;
      options->port = static_cast<uint16_t>(number);
    } else if (name == "value-size") {
      if (!number_at_least(0, kMaxValueLength)) return bad;
      options->value_size = number;
      options->value_size_given = true;
    } else if (name == "order") {
      if (value == "sequential") {
        options->order = KeyOrder::kSequential;
      } else if (value == "shuffled") {
        options->order = KeyOrder::kShuffled;
      } else {
        return bad;
      }
    } else if (name == "seed") {
      if (!number_at_least(0, UINT64_MAX)) return bad;
      options->seed = number;
    } else if (name == "key-space") {
      if (!number_at_least(1, kMaxKeySpace)) return bad;
      options->key_space = number;
    } else if (name == "key-prefix") {
      if (!IsValidKeyText(value)) return bad;
      options->key_prefix = std::string(value);
    } else if (name == "key-shape") {
      // "name" or "name:SIZE".
      const size_t colon = value.find(':');
      const std::string_view shape = value.substr(0, colon);
      const bool sized = colon != std::string_view::npos;
      uint64_t size = 0;
      if (sized && !ParseUint(value.substr(colon + 1), &size)) return bad;
      if (shape == "seq" && !sized) {
        options->key_shape = KeyShape::kSeq;
      } else if (shape == "random" && sized && size >= 1 && size <= 20) {
        options->key_shape = KeyShape::kRandom;
      } else if (shape == "hex" && sized && size >= 1 && size <= 64) {
        options->key_shape = KeyShape::kHex;
      } else if (shape == "uuid" && !sized) {
        options->key_shape = KeyShape::kUuid;
      } else {
        return bad + " (seq, random:D with D 1..20, hex:N with N 1..64, uuid)";
      }
      options->key_shape_size = size;
    } else if (name == "key-prefixes") {
      if (!number_at_least(1, kMaxKeyPrefixes)) return bad;
      options->key_prefixes = number;
    } else if (name == "value-shape") {
      const size_t colon = value.find(':');
      const std::string_view shape = value.substr(0, colon);
      const bool sized = colon != std::string_view::npos;
      uint64_t size = 0;
      if (sized && !ParseUint(value.substr(colon + 1), &size)) return bad;
      if (shape == "x" && !sized) {
        options->value_shape = ValueShape::kX;
      } else if (shape == "digits" && sized && size >= 1 && size <= 20) {
        options->value_shape = ValueShape::kDigits;
      } else if (shape == "text" && sized && size >= 1 && size <= kMaxTextValue) {
        options->value_shape = ValueShape::kText;
      } else {
        return bad + " (x, digits:D with D 1..20, text:N with N 1.." +
               std::to_string(kMaxTextValue) + ")";
      }
      options->value_shape_size = size;
    } else if (name == "limit-mb") {
      double mb = 0;
      if (!ParsePositiveDouble(value, &mb) || mb > 1e9) return bad;
      options->limit_bytes =
          static_cast<uint64_t>(std::llround(mb * static_cast<double>(kMiB)));
    } else if (name == "max-items") {
      if (!number_at_least(1, UINT64_MAX)) return bad;
      options->max_items = number;
    } else if (name == "past-eviction") {
      if (!value.empty() && value.back() == '%') {
        double pct = 0;
        if (!ParsePositiveDouble(value.substr(0, value.size() - 1), &pct) ||
            pct > 1e6)
          return bad;
        options->past_eviction_pct = pct;
        options->past_eviction.reset();
      } else {
        if (!number_at_least(0, UINT64_MAX)) return bad;
        options->past_eviction = number;
        options->past_eviction_pct.reset();
      }
    } else if (name == "batch") {
      if (!number_at_least(1, 1 << 24)) return bad;
      options->batch = number;
    } else if (name == "min-batch") {
      if (!number_at_least(1, 1 << 24)) return bad;
      options->min_batch = number;
    } else if (name == "pid") {
      if (!number_at_least(1, INT32_MAX)) return bad;
      options->pid = static_cast<pid_t>(number);
    } else if (name == "hash-wait-ms") {
      if (!number_at_least(0, 600000)) return bad;
      options->hash_wait_ms = number;
    } else if (name == "settle-ms") {
      if (!number_at_least(0, 600000)) return bad;
      options->settle_ms = number;
    } else if (name == "verify-sample") {
      if (!number_at_least(0, UINT64_MAX)) return bad;
      options->verify_sample = number;
    } else if (name == "timeout-ms") {
      if (!number_at_least(1, INT32_MAX)) return bad;
      options->timeout_ms = static_cast<int>(number);
    } else if (name == "stats-port") {
      if (!number_at_least(1, 65535) || options->stats_ports.size() >= kMaxStatsPorts)
        return bad;
      options->stats_ports.push_back(static_cast<uint16_t>(number));
    } else if (name == "label") {
      options->label = std::string(value);
    } else if (name == "csv") {
      if (value.empty()) return bad;
      options->csv_path = std::string(value);
    } else {
      return "unknown option: --" + std::string(name);
    }
  }
  options->min_batch = std::min(options->min_batch, options->batch);
  if (options->every_node && options->stats_ports.empty())
    return "--every-node needs --stats-port";
  if (!options->stats_ports.empty() &&
      (options->pid.has_value() || options->past_eviction.has_value() ||
       options->past_eviction_pct.has_value()))
    return "--stats-port does not combine with --pid or --past-eviction";
  if (options->value_shape != ValueShape::kX) {
    if (options->value_size_given)
      return "--value-size goes only with --value-shape x (digits:D and text:N set the length)";
    options->value_size = options->value_shape_size;
  }
  return "";
}

// ---------------------------------------------------------------------------
// Connection: one TCP connection with a receive buffer.

class Connection {
 public:
  Connection() = default;
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to host:port (any address family). On failure returns false and
  // sets error(). `timeout_ms` bounds every later wait for the server.
  bool Connect(const std::string& host, uint16_t port, int timeout_ms) {
    timeout_ms_ = timeout_ms;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc =
            getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
        rc != 0) {
      return Fail("cannot resolve " + host + ": " + gai_strerror(rc));
    }
    std::string last_error = "no address";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      last_error = std::strerror(errno);
      close(fd);
    }
    freeaddrinfo(found);
    if (fd_ < 0)
      return Fail("cannot connect to " + host + ":" + service + ": " +
                  last_error);
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int flags = fcntl(fd_, F_GETFL, 0);
    if (flags < 0 || fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0)
      return Fail("fcntl failed");
    return true;
  }

  // Writes all of `data`. Whatever the server sends meanwhile is buffered, so
  // a server that answers (errors, or sets whose noreply it ignores) can never
  // block on us while we block on it.
  bool SendAll(std::string_view data) {
    size_t sent = 0;
    while (sent < data.size()) {
      pollfd p{fd_, POLLIN | POLLOUT, 0};
      const int ready = poll(&p, 1, timeout_ms_);
      if (ready < 0) {
        if (errno == EINTR) continue;
        return Fail(std::string("poll: ") + std::strerror(errno));
      }
      if (ready == 0) return Fail("timed out writing to the server");
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
          !ReceiveAvailable())
        return false;
      if ((p.revents & POLLOUT) != 0) {
        const ssize_t n =
            send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            continue;
          return Fail(std::string("send: ") + std::strerror(errno));
        }
        sent += static_cast<size_t>(n);
      }
    }
    return true;
  }

  // Reads the next "\r\n"-terminated line into *line, without the terminator.
  bool ReadLine(std::string* line) {
    size_t scan_from = in_pos_;
    while (true) {
      const size_t eol = in_.find("\r\n", scan_from);
      if (eol != std::string::npos) {
        line->assign(in_, in_pos_, eol - in_pos_);
        in_pos_ = eol + 2;
        Compact();
        return true;
      }
      if (in_.size() - in_pos_ > kMaxLineLength)
        return Fail("reply line too long");
      scan_from = std::max(in_pos_, in_.size() > 0 ? in_.size() - 1 : 0);
      if (!WaitAndReceive()) return false;
    }
  }

  // Reads exactly n bytes into *out.
  bool ReadBytes(size_t n, std::string* out) {
    while (in_.size() - in_pos_ < n) {
      if (!WaitAndReceive()) return false;
    }
    out->assign(in_, in_pos_, n);
    in_pos_ += n;
    Compact();
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  // Blocks until the server sends something (or timeout), then buffers it.
  bool WaitAndReceive() {
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      const int ready = poll(&p, 1, timeout_ms_);
      if (ready < 0) {
        if (errno == EINTR) continue;
        return Fail(std::string("poll: ") + std::strerror(errno));
      }
      if (ready == 0) return Fail("timed out waiting for the server's reply");
      return ReceiveAvailable();
    }
  }

  // Appends everything readable now to the buffer. Fails if the server closed.
  bool ReceiveAvailable() {
    char chunk[65536];
    while (true) {
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        in_.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) return Fail("the server closed the connection");
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return Fail(std::string("recv: ") + std::strerror(errno));
    }
  }

  void Compact() {
    if (in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    } else if (in_pos_ > (1 << 16) && in_pos_ > in_.size() / 2) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
    }
  }

  int fd_ = -1;
  int timeout_ms_ = 30000;
  std::string in_;
  size_t in_pos_ = 0;  // first unread byte of in_
  std::string error_;
};

// ---------------------------------------------------------------------------
// Stats.

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
    if (it == values.end() || !ParseUint(it->second, &v)) return std::nullopt;
    return v;
  }
};

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Counts a reply line that answers an earlier command (a noreply set's error).
void CountReplyLine(const std::string& line, StatsReply* reply) {
  const bool is_error = line == "ERROR" || StartsWith(line, "ERROR ") ||
                        StartsWith(line, "CLIENT_ERROR") ||
                        StartsWith(line, "SERVER_ERROR");
  if (StartsWith(line, "SERVER_ERROR") &&
      line.find("out of memory") != std::string::npos) {
    ++reply->out_of_memory;
  } else if (is_error) {
    ++reply->errors;
  } else {
    ++reply->other;
  }
  if (is_error && reply->first_error.empty()) reply->first_error = line;
}

// Sends `stats` and reads up to END. Returns false on a connection failure.
bool QueryStats(Connection& conn, StatsReply* reply) {
  *reply = StatsReply();
  if (!conn.SendAll("stats\r\n")) return false;
  std::string line;
  while (true) {
    if (!conn.ReadLine(&line)) return false;
    if (line == "END") return true;
    if (StartsWith(line, "STAT ")) {
      const std::string_view rest = std::string_view(line).substr(5);
      const size_t space = rest.find(' ');
      if (space == std::string_view::npos) continue;
      reply->values.emplace(std::string(rest.substr(0, space)),
                            std::string(rest.substr(space + 1)));
      continue;
    }
    CountReplyLine(line, reply);
  }
}

// Sends `request` (a multi-get) and reads its reply up to END, skipping the
// values; lines before it are counted into *reply as QueryStats does.
bool QueryBarrier(Connection& conn, const std::string& request, StatsReply* reply) {
  if (!conn.SendAll(request)) return false;
  std::string line;
  std::string data;
  while (true) {
    if (!conn.ReadLine(&line)) return false;
    if (line == "END") return true;
    if (StartsWith(line, "VALUE ")) {
      // "VALUE <key> <flags> <bytes>": skip <bytes> and its \r\n.
      const size_t last = line.rfind(' ');
      uint64_t bytes = 0;
      if (!ParseUint(std::string_view(line).substr(last + 1), &bytes) ||
          bytes > kMaxValueLength)
        return false;
      if (!conn.ReadBytes(bytes + 2, &data)) return false;
      continue;
    }
    // Through a proxy an error is the whole reply (a node it could not reach).
    CountReplyLine(line, reply);
    if (reply->errors + reply->out_of_memory > 0) return true;
  }
}

// VmRSS of a process in kB, from /proc/<pid>/status.
std::optional<uint64_t> ReadRssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!StartsWith(line, "VmRSS:")) continue;
    std::string_view rest = std::string_view(line).substr(6);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
      rest.remove_prefix(1);
    const size_t end = rest.find(' ');
    uint64_t kb = 0;
    if (ParseUint(rest.substr(0, end), &kb)) return kb;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Key order.

// splitmix64: a tiny, fully specified generator, so the shuffled order is the
// same with every compiler and standard library (std::shuffle is not).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  // Uniform-enough integer in [0, bound) (multiply-shift; bias < 2^-32 here).
  uint64_t Below(uint64_t bound) {
    return static_cast<uint64_t>(
        (static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

 private:
  uint64_t state_;
};

// The n-th key number sent (0-based n): n + 1, or a fixed permutation of
// 1..key_space.
class KeySequence {
 public:
  static KeySequence Sequential() { return KeySequence(); }
  static KeySequence Shuffled(uint64_t key_space, uint64_t seed) {
    KeySequence keys;
    keys.permutation_.resize(key_space);
    for (uint64_t i = 0; i < key_space; ++i)
      keys.permutation_[i] = static_cast<uint32_t>(i + 1);
    SplitMix64 rng(seed);
    for (uint64_t i = key_space; i > 1; --i) {  // Fisher-Yates
      std::swap(keys.permutation_[i - 1], keys.permutation_[rng.Below(i)]);
    }
    return keys;
  }

  uint64_t KeyAt(uint64_t n) const {
    return permutation_.empty() ? n + 1 : permutation_[n];
  }
  // How many distinct keys the sequence has (unbounded when sequential).
  uint64_t Size() const {
    return permutation_.empty() ? UINT64_MAX : permutation_.size();
  }

 private:
  KeySequence() = default;
  std::vector<uint32_t> permutation_;
};

// ---------------------------------------------------------------------------
// Item shapes (--key-shape, --key-prefixes, --value-shape): the bytes of the
// key and value of key number k (KeySequence's numbers: 1, 2, 3, ... or the
// shuffled order). Every byte is a function of k and --seed alone, so --verify
// rebuilds the exact key and value of any item.

using U128 = unsigned __int128;

// splitmix64's finaliser: a bijection of the 64-bit integers.
uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

uint64_t LowMask(int bits) {
  return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}

// A keyed bijection of 0..n-1, 2 <= n <= 2^127: a Feistel network on the
// smallest width w >= 2 bits with 2^w >= n, split into a low and a high half
// (at most 64 bits each); each round XORs one half with a keyed hash of the
// other, which is invertible. A value that lands at or past n is mapped again
// (cycle walking) until it falls inside, which keeps it a bijection of 0..n-1;
// since 2^w < 2n, fewer than two passes are needed on average.
class Bijection {
 public:
  Bijection() = default;
  Bijection(U128 n, uint64_t seed) : n_(n) {
    int w = 2;
    while (w < 128 && (U128{1} << w) < n) ++w;
    low_bits_ = w / 2;
    high_bits_ = w - low_bits_;
    for (int r = 0; r < kRounds; ++r)
      keys_[r] = Mix64(seed * 0x9e3779b97f4a7c15 + static_cast<uint64_t>(r) + 1);
  }

  U128 operator()(U128 x) const {
    do {
      x = Once(x);
    } while (x >= n_);
    return x;
  }

 private:
  static constexpr int kRounds = 6;

  U128 Once(U128 x) const {
    const uint64_t low_mask = LowMask(low_bits_);
    const uint64_t high_mask = LowMask(high_bits_);
    uint64_t lo = static_cast<uint64_t>(x) & low_mask;
    uint64_t hi = static_cast<uint64_t>(x >> low_bits_) & high_mask;
    for (int r = 0; r < kRounds; ++r) {
      if (r % 2 == 0) {
        lo ^= Mix64(hi ^ keys_[r]) & low_mask;
      } else {
        hi ^= Mix64(lo ^ keys_[r]) & high_mask;
      }
    }
    return (U128{hi} << low_bits_) | lo;
  }

  U128 n_ = 1;
  int low_bits_ = 1;
  int high_bits_ = 1;
  uint64_t keys_[kRounds] = {};
};

void AppendDecimal(uint64_t number, std::string* out) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), number);
  out->append(digits, result.ptr);
}

void AppendDecimal128(U128 number, std::string* out) {
  if (number <= UINT64_MAX) {
    AppendDecimal(static_cast<uint64_t>(number), out);
    return;
  }
  char digits[40];
  char* p = digits + sizeof(digits);
  while (number != 0) {
    *--p = static_cast<char>('0' + static_cast<int>(number % 10));
    number /= 10;
  }
  out->append(p, static_cast<size_t>(digits + sizeof(digits) - p));
}

// The low `count` (<= 16) hex digits of v, most significant first.
void AppendHex(uint64_t v, int count, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = count - 1; i >= 0; --i) out->push_back(kHex[(v >> (4 * i)) & 0xf]);
}

U128 Pow10(int exponent) {
  U128 v = 1;
  for (int i = 0; i < exponent; ++i) v *= 10;
  return v;
}

std::string ShapeName(std::string_view name, uint64_t size) {
  return size == 0 ? std::string(name) : std::string(name) + ":" + std::to_string(size);
}

class ItemShape {
 public:
  explicit ItemShape(const Options& o)
      : o_(o),
        key_seed_(Mix64(o.seed ^ 0x6b65792d73686170)),    // "key-shap"
        value_seed_(Mix64(o.seed ^ 0x76616c75652d7368)) {  // "value-sh"
    switch (o.key_shape) {
      case KeyShape::kSeq:
        max_shape_length_ = 20;
        break;
      case KeyShape::kRandom: {
        const int d = static_cast<int>(o.key_shape_size);
        random_low_ = Pow10(d - 1);
        const U128 n = 9 * random_low_;
        key_limit_ = n > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(n);
        bijection_ = Bijection(n, key_seed_);
        max_shape_length_ = o.key_shape_size;
        break;
      }
      case KeyShape::kHex:
        if (o.key_shape_size < 16) {
          key_limit_ = uint64_t{1} << (4 * o.key_shape_size);
          bijection_ = Bijection(key_limit_, key_seed_);
        }
        max_shape_length_ = o.key_shape_size;
        break;
      case KeyShape::kUuid:
        max_shape_length_ = 36;
        break;
    }
    if (o.key_prefixes > 1) {
      std::string tag;
      AppendDecimal(o.key_prefixes - 1, &tag);
      max_shape_length_ += tag.size() + 1;
    }
    set_head_ = " 0 0 " + std::to_string(o.value_size) + " noreply\r\n";
    if (o.value_shape == ValueShape::kX) {
      x_value_.assign(o.value_size, 'x');
      x_tail_ = set_head_ + x_value_ + "\r\n";
    } else if (o.value_shape == ValueShape::kDigits) {
      const uint64_t low = static_cast<uint64_t>(Pow10(static_cast<int>(o.value_shape_size) - 1));
      digits_low_ = low;
      // 20 digits: [10^19, 2^64 - 1), so every value is below 2^64 - 1.
      digits_span_ = o.value_shape_size == 20 ? UINT64_MAX - low : 9 * low;
    }
  }

  // Whether every shape option is at its default (keys 1, 2, 3, value 'x').
  bool Default() const {
    return o_.key_shape == KeyShape::kSeq && o_.key_prefixes == 1 &&
           o_.value_shape == ValueShape::kX;
  }
  std::string KeyShapeName() const {
    static constexpr std::string_view kNames[] = {"seq", "random", "hex", "uuid"};
    return ShapeName(kNames[static_cast<int>(o_.key_shape)], o_.key_shape_size);
  }
  std::string ValueShapeName() const {
    static constexpr std::string_view kNames[] = {"x", "digits", "text"};
    return ShapeName(kNames[static_cast<int>(o_.value_shape)], o_.value_shape_size);
  }

  // Key numbers 1..KeyLimit() have distinct keys.
  uint64_t KeyLimit() const { return key_limit_; }
  // The longest key, --key-prefix included.
  size_t MaxKeyLength() const { return o_.key_prefix.size() + max_shape_length_; }
  // Key bytes beyond the default's longest (prefix + 20 digits): for the batch size.
  size_t ExtraKeyBytes() const {
    return max_shape_length_ > 20 ? max_shape_length_ - 20 : 0;
  }
  // Bytes of a set after its key: " 0 0 <n> noreply\r\n<value>\r\n".
  size_t TailBytes() const { return set_head_.size() + o_.value_size + 2; }

  void AppendKey(uint64_t k, std::string* out) const {
    out->append(o_.key_prefix);
    if (o_.key_prefixes > 1) {
      AppendDecimal((k - 1) % o_.key_prefixes, out);
      out->push_back(':');
    }
    switch (o_.key_shape) {
      case KeyShape::kSeq:
        AppendDecimal(k, out);
        break;
      case KeyShape::kRandom:
        AppendDecimal128(random_low_ + bijection_(k - 1), out);
        break;
      case KeyShape::kHex:
        AppendHexKey(k, out);
        break;
      case KeyShape::kUuid:
        AppendUuid(k, out);
        break;
    }
  }

  // "set <key> 0 0 <n> noreply\r\n<value>\r\n".
  void AppendSet(uint64_t k, std::string* out) const {
    out->append("set ");
    AppendKey(k, out);
    if (o_.value_shape == ValueShape::kX) {
      out->append(x_tail_);
      return;
    }
    out->append(set_head_);
    AppendValue(k, out);
    out->append("\r\n");
  }

  // The value of key number k: x_value_, or built in *scratch.
  std::string_view Value(uint64_t k, std::string* scratch) const {
    if (o_.value_shape == ValueShape::kX) return x_value_;
    scratch->clear();
    AppendValue(k, scratch);
    return *scratch;
  }

 private:
  void AppendValue(uint64_t k, std::string* out) const {
    uint64_t state = Mix64(k ^ value_seed_);
    if (o_.value_shape == ValueShape::kDigits) {
      AppendDecimal(digits_low_ + static_cast<uint64_t>((U128{state} * digits_span_) >> 64),
                    out);
      return;
    }
    static constexpr char kLetters[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint64_t draw = state;  // 52^10 < 2^64: ten letters a draw
    for (uint64_t i = 0; i < o_.value_shape_size; ++i) {
      if (i % 10 == 0 && i > 0) {
        state = Mix64(state + 0x9e3779b97f4a7c15);
        draw = state;
      }
      out->push_back(kLetters[draw % 52]);
      draw /= 52;
    }
  }

  void AppendHexKey(uint64_t k, std::string* out) const {
    const int n = static_cast<int>(o_.key_shape_size);
    if (n < 16) {
      AppendHex(static_cast<uint64_t>(bijection_(k - 1)), n, out);
      return;
    }
    // The first 16 digits are a bijection of k, so keys are distinct; the
    // rest hash on from them.
    uint64_t h = Mix64(k ^ key_seed_);
    AppendHex(h, 16, out);
    for (int left = n - 16; left > 0; left -= 16) {
      h = Mix64(h ^ 0x686578686578);
      AppendHex(h, std::min(left, 16), out);
    }
  }

  // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx (version 4, variant 10xx): the 60
  // bits of x's outside the version nibble and 4 of the fourth group hold a
  // bijection of k, so keys are distinct.
  void AppendUuid(uint64_t k, std::string* out) const {
    const uint64_t h = Mix64(k ^ key_seed_);
    const uint64_t r = Mix64(h ^ 0x75756964);
    std::string hex;
    AppendHex(h >> 16, 12, &hex);           // digits 0-11
    hex.push_back('4');                     // 12: version
    AppendHex((h >> 4) & 0xfff, 3, &hex);   // 13-15
    AppendHex(8 | (r & 3), 1, &hex);        // 16: variant
    AppendHex(h & 0xf, 1, &hex);            // 17
    AppendHex(r >> 8, 14, &hex);            // 18-31
    out->append(hex, 0, 8).append("-").append(hex, 8, 4).append("-");
    out->append(hex, 12, 4).append("-").append(hex, 16, 4).append("-");
    out->append(hex, 20, 12);
  }

  const Options& o_;
  uint64_t key_seed_;
  uint64_t value_seed_;
  uint64_t key_limit_ = UINT64_MAX;
  size_t max_shape_length_ = 20;
  U128 random_low_ = 0;
  Bijection bijection_;
  uint64_t digits_low_ = 0;
  uint64_t digits_span_ = 0;
  std::string set_head_;
  std::string x_value_;
  std::string x_tail_;
};

// ---------------------------------------------------------------------------
// Fill and verify.

struct VerifyResult {
  uint64_t sampled = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t corrupt = 0;  // wrong value, flags, length, key or framing
  std::string first_problem;
};

struct FillResult {
  uint64_t items = 0;  // curr_items at the stop
  uint64_t sent = 0;   // sets sent
  uint64_t evictions = 0;
  uint64_t limit_bytes = 0;
  uint64_t polls = 0;
  uint64_t unexpected_replies =
      0;  // e.g. STORED from a server ignoring noreply
  double seconds = 0;
  std::string
      stop_reason;  // eviction | rejected | out_of_memory | error | max_items
  std::string server_message;
  std::optional<uint64_t> rss_before_kb;
  std::optional<uint64_t> rss_after_kb;
  std::optional<VerifyResult> verify;
  // --past-eviction only: what happened after the first eviction.
  struct Past {
    uint64_t target = 0;         // sets asked for past the first eviction
    uint64_t sent = 0;           // sets sent past the first eviction
    uint64_t items_end = 0;      // curr_items at the last poll
    uint64_t evictions_end = 0;  // evictions (since the start) at the last poll
    double seconds = 0;          // time spent past the first eviction
    std::optional<uint64_t> rss_first_eviction_kb;  // VmRSS at the first eviction
  };
  std::optional<Past> past;
  // --stats-port only: each server behind the proxy.
  struct Node {
    uint16_t port = 0;
    uint64_t items_at_first_eviction = 0;  // when the first server evicted
    std::optional<uint64_t> items_at_own_eviction;
    uint64_t items_end = 0;
    uint64_t evictions_end = 0;
  };
  std::vector<Node> nodes;
};

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
      const uint64_t room =
          used < limit ? (limit - used) / std::max<uint64_t>(1, used / items) : 0;
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

// Waits until the server's hash table has caught up with its items, so that
// the RSS read next is the steady state. memcached 1.6 grows its table by one
// power of two at a time in a background thread (checked about once a second)
// whenever curr_items > 1.5 * 2^hash_power_level, so at the first eviction the
// table is often one or two sizes short of where it settles. Returns at once
// if the server reports no `hash_power_level`; stops waiting after `max_ms`,
// or when the table is below that threshold but has not grown for
// kHashGrowWindowMs (a server with another growth rule).
// Replaces *request with the pipelined sets of keys first .. first + n - 1.
void AppendSets(const ItemShape& shape, const KeySequence& keys, uint64_t first, uint64_t n,
                std::string* request) {
  request->clear();
  for (uint64_t i = 0; i < n; ++i) shape.AppendSet(keys.KeyAt(first + i), request);
}

// Replaces *request with "get" of the last kBarrierKeys of keys first ..
// first + n - 1: the multi-get that orders a poll behind a proxy.
void AppendBarrier(const ItemShape& shape, const KeySequence& keys, uint64_t first, uint64_t n,
                   std::string* request) {
  request->assign("get");
  for (uint64_t i = n - std::min(n, kBarrierKeys); i < n; ++i) {
    request->push_back(' ');
    shape.AppendKey(keys.KeyAt(first + i), request);
  }
  request->append("\r\n");
}

void WaitForHashTable(Connection& conn, uint64_t max_ms) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(max_ms);
  auto last_growth = start;
  std::optional<uint64_t> last_power;
  while (Clock::now() < deadline) {
    StatsReply stats;
    if (!QueryStats(conn, &stats)) return;
    const std::optional<uint64_t> power = stats.Get("hash_power_level");
    if (!power.has_value() || *power >= 62) return;
    if (power != last_power) {
      last_power = power;
      last_growth = Clock::now();
    }
    const uint64_t items = stats.Get("curr_items").value_or(0);
    const bool expanding = stats.Get("hash_is_expanding").value_or(0) != 0;
    const bool below_threshold = 2 * items > (uint64_t{3} << *power);
    if (!expanding && !below_threshold) return;
    if (!expanding && Clock::now() - last_growth >
                          std::chrono::milliseconds(kHashGrowWindowMs)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kHashPollMs));
  }
}

// Parses "VALUE <key> <flags> <bytes> [<cas>]".
bool ParseValueLine(std::string_view line, std::string_view* key,
                    uint64_t* flags, uint64_t* bytes) {
  std::vector<std::string_view> tokens;
  while (!line.empty()) {
    const size_t space = line.find(' ');
    tokens.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  if (tokens.size() < 4 || tokens.size() > 5 || tokens[0] != "VALUE")
    return false;
  *key = tokens[1];
  return ParseUint(tokens[2], flags) && ParseUint(tokens[3], bytes);
}

// Re-reads a sample of the keys sent with pipelined multi-gets and checks each
// value returned against the one its key number was set to. Returns false on
// a connection or framing failure.
bool Verify(Connection& conn, const Options& options, const ItemShape& shape,
            const KeySequence& keys, uint64_t sent, VerifyResult* result) {
  const uint64_t sample =
      (options.verify_sample == 0 || options.verify_sample > sent)
          ? sent
          : options.verify_sample;
  result->sampled = sample;
  std::string scratch;
  auto note = [&](const std::string& problem) {
    if (result->first_problem.empty()) result->first_problem = problem;
  };

  uint64_t next = 0;  // next sample index
  std::string request;
  std::string line;
  std::string data;
  while (next < sample) {
    // Build up to kGetsInFlight multi-gets, remembering each one's keys and
    // their key numbers.
    std::vector<std::unordered_map<std::string, uint64_t>> pending;
    request.clear();
    for (size_t g = 0; g < kGetsInFlight && next < sample; ++g) {
      pending.emplace_back();
      request.append("get");
      for (size_t k = 0; k < kKeysPerGet && next < sample; ++k, ++next) {
        // Evenly spaced over the send order; distinct because sample <= sent.
        const uint64_t index = static_cast<uint64_t>(
            static_cast<unsigned __int128>(next) * sent / sample);
        const uint64_t number = keys.KeyAt(index);
        std::string key;
        shape.AppendKey(number, &key);
        request.push_back(' ');
        request.append(key);
        pending.back().emplace(std::move(key), number);
      }
      request.append("\r\n");
    }
    if (!conn.SendAll(request)) return false;

    for (auto& want : pending) {
      while (true) {
        if (!conn.ReadLine(&line)) return false;
        if (line == "END") break;
        std::string_view key;
        uint64_t flags = 0;
        uint64_t bytes = 0;
        if (!ParseValueLine(line, &key, &flags, &bytes)) {
          // An error instead of a multi-get reply: nothing follows it.
          ++result->corrupt;
          note("unexpected reply to get: " + line);
          break;
        }
        if (bytes > kMaxValueLength) {
          note("absurd value length: " + line);
          ++result->corrupt;
          return false;  // cannot resynchronise
        }
        if (!conn.ReadBytes(bytes + 2, &data)) return false;
        const bool framed = data.compare(bytes, 2, "\r\n") == 0;
        if (!framed) {
          ++result->corrupt;
          note("value not followed by \\r\\n for " + line);
          return false;  // out of sync with the stream
        }
        const auto wanted = want.find(std::string(key));
        const bool known = wanted != want.end();
        const bool right = known && flags == 0 && bytes == options.value_size &&
                           data.compare(0, bytes, shape.Value(wanted->second, &scratch)) == 0;
        if (known) want.erase(wanted);
        if (known && right) {
          ++result->hits;
        } else {
          ++result->corrupt;
          note((known ? "wrong value or flags: "
                      : "key not requested (or repeated): ") +
               line);
        }
      }
      result->misses += want.size();
    }
  }
  return true;
}

// --past-eviction: after the first eviction, sends the requested number of
// further sets in full batches, polling `stats` after each, and records the
// end state in result->past. result->items (the first eviction's figure) is
// left alone; result->sent grows, so --verify samples every key sent.
// Returns kExitOk, or kExitFailure on a connection failure or error replies.
int FillPastEviction(Connection& conn, const Options& options,
                     const ItemShape& shape, const KeySequence& keys, uint64_t cap,
                     uint64_t max_batch,
                     std::optional<uint64_t> evictions_at_start,
                     FillResult* result) {
  FillResult::Past past;
  if (options.pid.has_value()) past.rss_first_eviction_kb = ReadRssKb(*options.pid);
  past.target = options.past_eviction.value_or(0);
  if (options.past_eviction_pct.has_value()) {
    past.target = static_cast<uint64_t>(std::llround(
        static_cast<double>(result->items) * *options.past_eviction_pct / 100.0));
  }
  past.items_end = result->items;
  past.evictions_end = result->evictions;
  const auto start = std::chrono::steady_clock::now();
  std::string request;
  StatsReply stats;
  int code = kExitOk;
  while (past.sent < past.target && result->sent < cap) {
    const uint64_t n =
        std::min({max_batch, past.target - past.sent, cap - result->sent});
    AppendSets(shape, keys, result->sent, n, &request);
    if (!conn.SendAll(request)) {
      std::fprintf(stderr, "fill: send failed %llu sets past the eviction: %s\n",
                   static_cast<unsigned long long>(past.sent),
                   conn.error().c_str());
      code = kExitFailure;
      break;
    }
    result->sent += n;
    past.sent += n;
    if (!QueryStats(conn, &stats)) {
      std::fprintf(stderr, "fill: stats failed %llu sets past the eviction: %s\n",
                   static_cast<unsigned long long>(past.sent),
                   conn.error().c_str());
      code = kExitFailure;
      break;
    }
    ++result->polls;
    result->unexpected_replies += stats.other;
    past.items_end = stats.Get("curr_items").value_or(0);
    const uint64_t evictions = stats.Get("evictions").value_or(0);
    past.evictions_end =
        evictions - std::min(evictions, evictions_at_start.value_or(0));
    if (stats.errors > 0 || stats.out_of_memory > 0) {
      std::fprintf(stderr,
                   "fill: the server answered with an error %llu sets past the "
                   "eviction: %s\n",
                   static_cast<unsigned long long>(past.sent),
                   stats.first_error.c_str());
      code = kExitFailure;
      break;
    }
  }
  past.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  result->past = past;
  return code;
}

// Runs the whole experiment against an open connection. Returns the exit code.
int Fill(Connection& conn, const Options& options, const ItemShape& shape,
         FillResult* result) {
  StatsSource source(conn, options);
  if (const std::string error = source.Open(); !error.empty()) {
    std::fprintf(stderr, "fill: %s\n", error.c_str());
    return kExitFailure;
  }
  StatsReply stats;
  if (!source.Poll("", &stats)) {
    std::fprintf(stderr, "fill: stats failed: %s\n", source.error().c_str());
    return kExitFailure;
  }
  if (options.limit_bytes.has_value()) {
    result->limit_bytes = *options.limit_bytes;
  } else if (auto limit = stats.Get("limit_maxbytes");
             limit.has_value() && *limit > 0) {
    result->limit_bytes = *limit;
  } else {
    std::fprintf(
        stderr,
        "fill: the server reports no limit_maxbytes; pass --limit-mb\n");
    return kExitUsage;
  }
  const std::optional<uint64_t> evictions_at_start = stats.Get("evictions");
  if (!evictions_at_start.has_value()) {
    std::fprintf(stderr,
                 "fill: warning: the server reports no `evictions`; "
                 "filling until an error or --max-items\n");
  }
  if (auto items = stats.Get("curr_items"); items.has_value() && *items > 0) {
    std::fprintf(stderr, "fill: warning: the server already holds %llu items\n",
                 static_cast<unsigned long long>(*items));
  }

  uint64_t cap = options.max_items.value_or(result->limit_bytes);
  KeySequence keys = KeySequence::Sequential();
  if (options.order == KeyOrder::kShuffled) {
    const uint64_t space = std::min(
        kMaxKeySpace, options.key_space.value_or(
                          options.max_items.value_or(result->limit_bytes / 8)));
    keys = KeySequence::Shuffled(std::max<uint64_t>(space, 1), options.seed);
  }
  cap = std::min(cap, keys.Size());
  // A key shape with fewer distinct keys (random:D, hex:N below 16) bounds them.
  if (keys.Size() != UINT64_MAX && keys.Size() > shape.KeyLimit()) {
    std::fprintf(stderr,
                 "fill: the shuffled key space (%llu) is larger than --key-shape %s has "
                 "distinct keys (%llu); lower --key-space\n",
                 static_cast<unsigned long long>(keys.Size()), shape.KeyShapeName().c_str(),
                 static_cast<unsigned long long>(shape.KeyLimit()));
    return kExitUsage;
  }
  const bool shape_bounded = shape.KeyLimit() < cap;
  cap = std::min(cap, shape.KeyLimit());

  if (options.pid.has_value()) {
    result->rss_before_kb = ReadRssKb(*options.pid);
    if (!result->rss_before_kb.has_value()) {
      std::fprintf(stderr, "fill: warning: cannot read VmRSS of pid %d\n",
                   static_cast<int>(*options.pid));
    }
  }

  // A set's bytes after the key (" 0 0 <n> noreply\r\n<value>\r\n"), plus
  // room for a key.
  const uint64_t max_batch = std::max<uint64_t>(
      1, std::min(options.batch,
                  kMaxBatchBytes / (shape.TailBytes() + 32 + shape.ExtraKeyBytes())));
  const uint64_t min_batch = std::min(options.min_batch, max_batch);
  std::optional<uint64_t> items_before = stats.Get("curr_items");

  const auto start = std::chrono::steady_clock::now();
  uint64_t batch = max_batch;
  std::string request;
  std::string barrier;
  // --every-node: the first eviction is seen, filling goes on until every
  // server behind the proxy has evicted.
  bool evicted = false;
  while (true) {
    if (result->sent >= cap) {
      if (!evicted) result->stop_reason = "max_items";
      break;
    }
    const uint64_t n = std::min(batch, cap - result->sent);
    AppendSets(shape, keys, result->sent, n, &request);
    if (!conn.SendAll(request)) {
      std::fprintf(stderr, "fill: send failed after %llu sets: %s\n",
                   static_cast<unsigned long long>(result->sent),
                   conn.error().c_str());
      return kExitFailure;
    }
    if (source.proxied()) AppendBarrier(shape, keys, result->sent, n, &barrier);
    result->sent += n;
    if (!source.Poll(barrier, &stats)) {
      std::fprintf(stderr, "fill: stats failed after %llu sets: %s\n",
                   static_cast<unsigned long long>(result->sent),
                   source.error().c_str());
      return kExitFailure;
    }
    ++result->polls;
    result->unexpected_replies += stats.other;
    if (evicted) {
      if (stats.errors > 0 || stats.out_of_memory > 0 || source.AllEvicted()) break;
      batch = std::clamp(source.RoomLeft().value_or(0) / kBatchRoomDivisor, min_batch,
                         max_batch);
      continue;
    }
    const std::optional<uint64_t> items = stats.Get("curr_items");
    result->items = items.value_or(0);
    const uint64_t evictions = stats.Get("evictions").value_or(0);
    result->evictions =
        evictions - std::min(evictions, evictions_at_start.value_or(0));
    if (stats.errors > 0) {
      result->stop_reason = "error";
      result->server_message = stats.first_error;
      break;
    }
    if (stats.out_of_memory > 0) {
      result->stop_reason = "out_of_memory";
      result->server_message = stats.first_error;
      break;
    }
    if (result->evictions > 0) {
      result->stop_reason = "eviction";
      if (!source.proxied()) break;
      source.MarkFirstEviction(result);
      if (!options.every_node || source.AllEvicted()) break;
      evicted = true;
      continue;
    }
    if (items.has_value() && items_before.has_value() &&
        *items < *items_before + n) {
      result->stop_reason = "rejected";
      break;
    }
    items_before = items;
    // Near the end, shrink the batch so few sets land past the first eviction.
    // `bytes` (item bytes stored) under-counts a slab server's real use, so
    // this is only a rough guide; it never affects reproducibility because it
    // depends on stats values alone.
    const uint64_t used = stats.Get("bytes").value_or(0);
    if (const std::optional<uint64_t> room = source.RoomLeft(); room.has_value()) {
      batch = std::clamp(*room / kBatchRoomDivisor, min_batch, max_batch);
    } else if (result->items > 0 && used > 0) {
      const uint64_t per_item = std::max<uint64_t>(1, used / result->items);
      const uint64_t room = used < result->limit_bytes
                                ? (result->limit_bytes - used) / per_item
                                : 0;
      batch = std::clamp(room / kBatchRoomDivisor, min_batch, max_batch);
    }
  }
  result->seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  source.MarkEnd(result);

  if (result->stop_reason == "eviction" &&
      (options.past_eviction.has_value() ||
       options.past_eviction_pct.has_value())) {
    if (const int code = FillPastEviction(conn, options, shape, keys, cap,
                                          max_batch, evictions_at_start, result);
        code != kExitOk) {
      return code;
    }
  }

  if (options.pid.has_value()) {
    if (options.hash_wait_ms > 0) WaitForHashTable(conn, options.hash_wait_ms);
    if (options.settle_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options.settle_ms));
    }
    result->rss_after_kb = ReadRssKb(*options.pid);
  }
  if (result->unexpected_replies > 0) {
    std::fprintf(stderr,
                 "fill: warning: %llu unexpected replies to noreply sets\n",
                 static_cast<unsigned long long>(result->unexpected_replies));
  }

  int code = kExitOk;
  if (result->stop_reason == "error") {
    std::fprintf(stderr, "fill: the server answered with an error: %s\n",
                 result->server_message.c_str());
    code = kExitFailure;
  } else if (result->stop_reason == "rejected" && result->items == 0) {
    std::fprintf(stderr,
                 "fill: the server stored none of the items (too large?)\n");
    code = kExitFailure;
  } else if (result->stop_reason == "max_items" && shape_bounded) {
    std::fprintf(stderr,
                 "fill: sent all %llu distinct keys of --key-shape %s without an eviction\n",
                 static_cast<unsigned long long>(result->sent), shape.KeyShapeName().c_str());
    code = kExitNotFilled;
  } else if (result->stop_reason == "max_items") {
    std::fprintf(
        stderr,
        "fill: sent %llu items without an eviction (raise --max-items%s)\n",
        static_cast<unsigned long long>(result->sent),
        options.order == KeyOrder::kShuffled ? " or --key-space" : "");
    code = kExitNotFilled;
  }

  if (options.verify) {
    VerifyResult verify;
    if (!Verify(conn, options, shape, keys, result->sent, &verify)) {
      std::fprintf(stderr, "fill: verify failed: %s %s\n", conn.error().c_str(),
                   verify.first_problem.c_str());
      result->verify = verify;
      return kExitFailure;
    }
    if (verify.corrupt > 0) {
      std::fprintf(stderr, "fill: verify: %llu corrupt values, first: %s\n",
                   static_cast<unsigned long long>(verify.corrupt),
                   verify.first_problem.c_str());
      if (code == kExitOk) code = kExitCorrupt;
    }
    result->verify = verify;
  }
  return code;
}

// ---------------------------------------------------------------------------
// Reports.

std::string FormatDouble(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string BytesPerItem(const FillResult& r) {
  return r.items == 0
             ? ""
             : FormatDouble(static_cast<double>(r.limit_bytes) / r.items, 2);
}

std::string AllInBytesPerItem(const FillResult& r) {
  if (r.items == 0 || !r.rss_before_kb.has_value() ||
      !r.rss_after_kb.has_value())
    return "";
  const double growth =
      (static_cast<double>(*r.rss_after_kb) - *r.rss_before_kb) * 1024.0;
  return FormatDouble(growth / r.items, 2);
}

std::string OptionalNumber(const std::optional<uint64_t>& value) {
  return value.has_value() ? std::to_string(*value) : "";
}

std::string OrderName(KeyOrder order) {
  return order == KeyOrder::kShuffled ? "shuffled" : "sequential";
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", u);
      out.append(escape);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos)
    return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

// One row of named fields; an empty value means "not measured".
std::vector<std::pair<std::string, std::string>> ReportFields(
    const Options& o, const ItemShape& shape, const FillResult& r) {
  const VerifyResult v = r.verify.value_or(VerifyResult());
  const bool verified = r.verify.has_value();
  auto verify_number = [&](uint64_t n) {
    return verified ? std::to_string(n) : std::string();
  };
  std::vector<std::pair<std::string, std::string>> fields = {
      {"label", o.label},
      {"host", o.host},
      {"port", std::to_string(o.port)},
      {"order", OrderName(o.order)},
      {"value_size", std::to_string(o.value_size)},
      {"key_prefix", o.key_prefix},
      {"items", std::to_string(r.items)},
      {"limit_bytes", std::to_string(r.limit_bytes)},
      {"bytes_per_item", BytesPerItem(r)},
      {"rss_before_kb", OptionalNumber(r.rss_before_kb)},
      {"rss_after_kb", OptionalNumber(r.rss_after_kb)},
      {"allin_bytes_per_item", AllInBytesPerItem(r)},
      {"seconds", FormatDouble(r.seconds, 3)},
      {"evictions", std::to_string(r.evictions)},
      {"sent", std::to_string(r.sent)},
      {"polls", std::to_string(r.polls)},
      {"stop_reason", r.stop_reason},
      {"verify_sampled", verify_number(v.sampled)},
      {"verify_hits", verify_number(v.hits)},
      {"verify_misses", verify_number(v.misses)},
      {"verify_corrupt", verify_number(v.corrupt)},
  };
  // Only with --stats-port: JSON arrays, one number per server behind the proxy.
  if (!r.nodes.empty()) {
    auto list = [&](auto field) {
      std::string out = "[";
      for (const FillResult::Node& n : r.nodes) {
        if (out.size() > 1) out.push_back(',');
        out.append(field(n));
      }
      return out + "]";
    };
    uint64_t full = 0;
    bool all_full = true;
    for (const FillResult::Node& n : r.nodes) {
      full += n.items_at_own_eviction.value_or(0);
      all_full = all_full && n.items_at_own_eviction.has_value();
    }
    fields.insert(
        fields.end(),
        {{"node_ports", list([](const auto& n) { return std::to_string(n.port); })},
         {"node_items",
          list([](const auto& n) { return std::to_string(n.items_at_first_eviction); })},
         {"node_items_full",
          list([](const auto& n) {
            return n.items_at_own_eviction.has_value() ? std::to_string(*n.items_at_own_eviction)
                                                       : std::string("null");
          })},
         {"node_items_end", list([](const auto& n) { return std::to_string(n.items_end); })},
         {"node_evictions_end",
          list([](const auto& n) { return std::to_string(n.evictions_end); })},
         {"items_every_node_full", all_full ? std::to_string(full) : std::string()}});
  }
  // Only with a shape option, so the default report is unchanged.
  if (!shape.Default()) {
    fields.insert(fields.end(), {{"key_shape", shape.KeyShapeName()},
                                 {"key_prefixes", std::to_string(o.key_prefixes)},
                                 {"value_shape", shape.ValueShapeName()}});
  }
  // Only with --past-eviction, so the default report is unchanged.
  if (r.past.has_value()) {
    const FillResult::Past& p = *r.past;
    fields.insert(fields.end(),
                  {{"past_eviction_target", std::to_string(p.target)},
                   {"past_eviction_sent", std::to_string(p.sent)},
                   {"past_eviction_seconds", FormatDouble(p.seconds, 3)},
                   {"items_end", std::to_string(p.items_end)},
                   {"evictions_end", std::to_string(p.evictions_end)},
                   {"rss_first_eviction_kb",
                    OptionalNumber(p.rss_first_eviction_kb)}});
  }
  return fields;
}

// Fields printed as JSON strings rather than numbers.
bool IsTextField(std::string_view name) {
  return name == "label" || name == "host" || name == "order" ||
         name == "key_prefix" || name == "stop_reason" || name == "key_shape" ||
         name == "value_shape";
}

void PrintJson(const Options& o, const ItemShape& shape, const FillResult& r) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : ReportFields(o, shape, r)) {
    if (!first) out.append(", ");
    first = false;
    out.append(JsonString(name)).append(": ");
    if (IsTextField(name)) {
      out.append(JsonString(value));
    } else {
      out.append(value.empty() ? "null" : value);
    }
  }
  out.append("}\n");
  std::fputs(out.c_str(), stdout);
}

void PrintText(const Options& o, const ItemShape& shape, const FillResult& r) {
  auto kb = [](const std::optional<uint64_t>& v) {
    return v.has_value() ? std::to_string(*v) + " kB"
                         : std::string("(no --pid)");
  };
  const std::string allin = AllInBytesPerItem(r);
  std::printf("label:                 %s\n",
              o.label.empty() ? "-" : o.label.c_str());
  if (!shape.Default()) {
    std::printf("shape:                 keys %s%s, %llu prefixes; values %s\n",
                o.key_prefix.empty() ? "" : (o.key_prefix + " + ").c_str(),
                shape.KeyShapeName().c_str(), static_cast<unsigned long long>(o.key_prefixes),
                shape.ValueShapeName().c_str());
  }
  std::printf("items stored:          %llu\n",
              static_cast<unsigned long long>(r.items));
  const std::string per_item = BytesPerItem(r);
  std::printf("bytes per item:        %s (limit %llu bytes)\n",
              per_item.empty() ? "-" : per_item.c_str(),
              static_cast<unsigned long long>(r.limit_bytes));
  std::printf("RSS before:            %s\n", kb(r.rss_before_kb).c_str());
  std::printf("RSS after:             %s\n", kb(r.rss_after_kb).c_str());
  std::printf("all-in bytes per item: %s\n",
              allin.empty() ? "-" : allin.c_str());
  std::printf("seconds:               %.3f\n", r.seconds);
  std::printf("evictions seen:        %llu\n",
              static_cast<unsigned long long>(r.evictions));
  for (const FillResult::Node& n : r.nodes) {
    const std::string own = n.items_at_own_eviction.has_value()
                                ? std::to_string(*n.items_at_own_eviction)
                                : std::string("none");
    std::printf("  server port %-8u %llu items at the first eviction, %s at its own\n",
                static_cast<unsigned>(n.port),
                static_cast<unsigned long long>(n.items_at_first_eviction), own.c_str());
  }
  std::printf("sets sent:             %llu in %llu batches, stopped by %s\n",
              static_cast<unsigned long long>(r.sent),
              static_cast<unsigned long long>(r.polls), r.stop_reason.c_str());
  if (r.past.has_value()) {
    const FillResult::Past& p = *r.past;
    std::printf("past the eviction:     %llu more sets in %.3f s: %llu items, "
                "%llu evictions at the end\n",
                static_cast<unsigned long long>(p.sent), p.seconds,
                static_cast<unsigned long long>(p.items_end),
                static_cast<unsigned long long>(p.evictions_end));
    std::printf("RSS at first eviction: %s\n", kb(p.rss_first_eviction_kb).c_str());
  }
  if (r.verify.has_value()) {
    const VerifyResult& v = *r.verify;
    std::printf(
        "verify:                %llu keys re-read: %llu hits, %llu misses, "
        "%llu corrupt\n",
        static_cast<unsigned long long>(v.sampled),
        static_cast<unsigned long long>(v.hits),
        static_cast<unsigned long long>(v.misses),
        static_cast<unsigned long long>(v.corrupt));
  }
}

bool AppendCsv(const Options& o, const ItemShape& shape, const FillResult& r) {
  struct stat st {};
  const bool fresh = stat(o.csv_path.c_str(), &st) != 0 || st.st_size == 0;
  std::ofstream out(o.csv_path, std::ios::app);
  if (!out) return false;
  const auto fields = ReportFields(o, shape, r);
  if (fresh) {
    for (size_t i = 0; i < fields.size(); ++i)
      out << (i ? "," : "") << fields[i].first;
    out << "\n";
  }
  for (size_t i = 0; i < fields.size(); ++i)
    out << (i ? "," : "") << CsvField(fields[i].second);
  out << "\n";
  return static_cast<bool>(out);
}

int Main(int argc, char** argv) {
  Options options;
  if (const std::string error = ParseOptions(argc, argv, &options);
      !error.empty()) {
    std::fprintf(stderr, "fill: %s\n%s", error.c_str(), kUsage);
    return kExitUsage;
  }
  if (options.help) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  // Longest key: prefix plus the 20 digits of a 64-bit number, or what the
  // shape options make.
  const ItemShape shape(options);
  if (shape.MaxKeyLength() > kMaxKeyLength) {
    std::fprintf(stderr, "fill: --key-prefix too long%s\n",
                 shape.Default() ? "" : " for --key-shape and --key-prefixes (250 bytes)");
    return kExitUsage;
  }

  Connection conn;
  if (!conn.Connect(options.host, options.port, options.timeout_ms)) {
    std::fprintf(stderr, "fill: %s\n", conn.error().c_str());
    return kExitFailure;
  }
  FillResult result;
  const int code = Fill(conn, options, shape, &result);
  if (result.stop_reason.empty()) return code;  // failed before filling

  if (options.json) {
    PrintJson(options, shape, result);
  } else {
    PrintText(options, shape, result);
  }
  if (!options.csv_path.empty() && !AppendCsv(options, shape, result)) {
    std::fprintf(stderr, "fill: cannot append to %s\n",
                 options.csv_path.c_str());
    return code == kExitOk ? kExitFailure : code;
  }
  return code;
}

}  // namespace
}  // namespace tinycached::fill

int main(int argc, char** argv) { return tinycached::fill::Main(argc, argv); }
