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
// Item shapes (experiments/shapes.py): by default key number k (1, 2, 3, ..., or
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
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/flags/flag.h"
#include "experiments/client_io.h"
#include "experiments/fill_options.h"
#include "experiments/fill_protocol.h"
#include "experiments/fill_report.h"
#include "experiments/fill_shape.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address");
ABSL_FLAG(int, port, 11211, "server port");
ABSL_FLAG(std::string, value_size, "", "value of N bytes 'x' (default 1)");
ABSL_FLAG(std::string, value_shape, "x", "x, digits:D or text:N");
ABSL_FLAG(std::string, order, "sequential", "sequential or shuffled");
ABSL_FLAG(uint64_t, seed, 1, "seed of the shuffled order and of the shapes");
ABSL_FLAG(std::string, key_space, "", "shuffled order: permutation of keys 1..N");
ABSL_FLAG(std::string, key_prefix, "", "prepended to every key");
ABSL_FLAG(std::string, key_shape, "seq", "seq, random:D, hex:N or uuid");
ABSL_FLAG(uint64_t, key_prefixes, 1, "N > 1: keys cycle over N prefixes");
ABSL_FLAG(std::string, limit_mb, "", "memory limit used for bytes/item (default: limit_maxbytes)");
ABSL_FLAG(std::string, max_items, "", "safety cap on items sent (default: limit bytes)");
ABSL_FLAG(std::string, past_eviction, "", "N or N%: sets to send after the first eviction");
ABSL_FLAG(uint64_t, batch, 4096, "largest batch of sets per write");
ABSL_FLAG(uint64_t, min_batch, 64, "smallest batch near the end");
ABSL_FLAG(std::string, pid, "", "server pid: read VmRSS before and after the fill");
ABSL_FLAG(uint64_t, hash_wait_ms, 20000, "wait up to MS for a hash table to finish growing");
ABSL_FLAG(uint64_t, settle_ms, 0, "then wait MS more");
ABSL_FLAG(bool, verify, false, "re-read a sample of keys with multi-get afterwards");
ABSL_FLAG(uint64_t, verify_sample, 100000, "keys to re-read (0 = every key sent)");
ABSL_FLAG(std::string, verify_only, "", "send nothing: re-read the first N keys a fill would send");
ABSL_FLAG(int64_t, timeout_ms, 30000, "give up when the server is silent this long");
ABSL_FLAG(std::string, label, "", "name of this run in the report");
ABSL_FLAG(std::string, csv, "", "append one CSV line (header first if the file is new)");
ABSL_FLAG(bool, json, false, "print one JSON object instead of the text report");
ABSL_FLAG(std::vector<std::string>, stats_port, {},
          "the servers behind the proxy at --port (repeat, or comma-separated)");
ABSL_FLAG(bool, every_node, false, "with --stats-port: fill on until every server has evicted");

namespace tinycached::fill {
namespace {

// memcached's key length limit; longer keys are rejected by every server.
constexpr size_t kMaxKeyLength = 250;
// Largest shuffled key space: the permutation is held as 32-bit key numbers.
constexpr uint64_t kMaxKeySpace = uint64_t{1} << 31;
// Keys per multi-get and multi-gets in flight during --verify.
constexpr size_t kKeysPerGet = 100;
constexpr size_t kGetsInFlight = 8;
// The batch shrinks to (estimated room left) / kBatchRoomDivisor near the end.
constexpr uint64_t kBatchRoomDivisor = 8;
// A batch never holds more than this many request bytes (large --value-size).
constexpr uint64_t kMaxBatchBytes = uint64_t{4} << 20;
// --stats-port: most servers behind a proxy.
constexpr size_t kMaxStatsPorts = 64;
constexpr uint64_t kMaxKeyPrefixes = 1000000;
constexpr uint64_t kMaxTextValue = kMiB;

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
  --verify-only N      send nothing: re-read the first N keys of the sequence
                       a fill with the same flags sends (--verify-sample of
                       them) and check each; a missing key is a failure too
                       (exit 1); for a server restarted with -e, say
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
  --help               this text (then every flag; names take '-' or '_')
)";

bool ParsePositiveDouble(std::string_view text, double* out) {
  const std::string copy(text);
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(copy.c_str(), &end);
  return !copy.empty() && errno == 0 && end == copy.c_str() + copy.size() && std::isfinite(*out) &&
         *out > 0;
}

// A key prefix must keep keys legal in the text protocol.
bool IsValidKeyText(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > ' ' && u != 0x7f;
  });
}

// A shape option's value: "name" or "name:SIZE" (*sized says which).
bool SplitShape(std::string_view value, std::string_view* name, bool* sized, uint64_t* size) {
  const size_t colon = value.find(':');
  *name = value.substr(0, colon);
  *sized = colon != std::string_view::npos;
  *size = 0;
  return !*sized || ParseU64(value.substr(colon + 1), size);
}

// Reads the parsed flags into *options. Returns an error message, "" on success.
std::string OptionsFromFlags(Options* options) {
  auto bad = [](std::string_view name, std::string_view value) {
    return "bad value for --" + std::string(name) + ": " + std::string(value);
  };
  // A number flag given as text (so that "not given" can be told apart).
  auto number = [&](const std::string& text, uint64_t min, uint64_t max, uint64_t* out) {
    return ParseU64(text, out) && *out >= min && *out <= max;
  };
  uint64_t n = 0;
  options->host = absl::GetFlag(FLAGS_host);
  if (options->host.empty()) return bad("host", "");
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 1 || port > 65535) return bad("port", std::to_string(port));
  options->port = static_cast<uint16_t>(port);
  if (const std::string v = absl::GetFlag(FLAGS_value_size); !v.empty()) {
    if (!number(v, 0, kMaxValueLength, &options->value_size)) return bad("value-size", v);
    options->value_size_given = true;
  }
  const std::string order = absl::GetFlag(FLAGS_order);
  if (order == "sequential") {
    options->order = KeyOrder::kSequential;
  } else if (order == "shuffled") {
    options->order = KeyOrder::kShuffled;
  } else {
    return bad("order", order);
  }
  options->seed = absl::GetFlag(FLAGS_seed);
  if (const std::string v = absl::GetFlag(FLAGS_key_space); !v.empty()) {
    if (!number(v, 1, kMaxKeySpace, &n)) return bad("key-space", v);
    options->key_space = n;
  }
  options->key_prefix = absl::GetFlag(FLAGS_key_prefix);
  if (!IsValidKeyText(options->key_prefix)) return bad("key-prefix", options->key_prefix);
  {
    const std::string value = absl::GetFlag(FLAGS_key_shape);
    std::string_view shape;
    bool sized = false;
    uint64_t size = 0;
    const bool parsed = SplitShape(value, &shape, &sized, &size);
    if (parsed && shape == "seq" && !sized) {
      options->key_shape = KeyShape::kSeq;
    } else if (parsed && shape == "random" && sized && size >= 1 && size <= 20) {
      options->key_shape = KeyShape::kRandom;
    } else if (parsed && shape == "hex" && sized && size >= 1 && size <= 64) {
      options->key_shape = KeyShape::kHex;
    } else if (parsed && shape == "uuid" && !sized) {
      options->key_shape = KeyShape::kUuid;
    } else {
      return bad("key-shape", value) + " (seq, random:D with D 1..20, hex:N with N 1..64, uuid)";
    }
    options->key_shape_size = size;
  }
  options->key_prefixes = absl::GetFlag(FLAGS_key_prefixes);
  if (options->key_prefixes < 1 || options->key_prefixes > kMaxKeyPrefixes)
    return bad("key-prefixes", std::to_string(options->key_prefixes));
  {
    const std::string value = absl::GetFlag(FLAGS_value_shape);
    std::string_view shape;
    bool sized = false;
    uint64_t size = 0;
    const bool parsed = SplitShape(value, &shape, &sized, &size);
    if (parsed && shape == "x" && !sized) {
      options->value_shape = ValueShape::kX;
    } else if (parsed && shape == "digits" && sized && size >= 1 && size <= 20) {
      options->value_shape = ValueShape::kDigits;
    } else if (parsed && shape == "text" && sized && size >= 1 && size <= kMaxTextValue) {
      options->value_shape = ValueShape::kText;
    } else {
      return bad("value-shape", value) + " (x, digits:D with D 1..20, text:N with N 1.." +
             std::to_string(kMaxTextValue) + ")";
    }
    options->value_shape_size = size;
  }
  if (const std::string v = absl::GetFlag(FLAGS_limit_mb); !v.empty()) {
    double mb = 0;
    if (!ParsePositiveDouble(v, &mb) || mb > 1e9) return bad("limit-mb", v);
    options->limit_bytes = static_cast<uint64_t>(std::llround(mb * static_cast<double>(kMiB)));
  }
  if (const std::string v = absl::GetFlag(FLAGS_max_items); !v.empty()) {
    if (!number(v, 1, UINT64_MAX, &n)) return bad("max-items", v);
    options->max_items = n;
  }
  if (const std::string v = absl::GetFlag(FLAGS_verify_only); !v.empty()) {
    if (!number(v, 1, UINT64_MAX, &n)) return bad("verify-only", v);
    options->verify_only = n;
  }
  if (const std::string v = absl::GetFlag(FLAGS_past_eviction); !v.empty()) {
    if (v.back() == '%') {
      double pct = 0;
      if (!ParsePositiveDouble(std::string_view(v).substr(0, v.size() - 1), &pct) || pct > 1e6)
        return bad("past-eviction", v);
      options->past_eviction_pct = pct;
    } else {
      if (!number(v, 0, UINT64_MAX, &n)) return bad("past-eviction", v);
      options->past_eviction = n;
    }
  }
  options->batch = absl::GetFlag(FLAGS_batch);
  if (options->batch < 1 || options->batch > (1 << 24))
    return bad("batch", std::to_string(options->batch));
  options->min_batch = absl::GetFlag(FLAGS_min_batch);
  if (options->min_batch < 1 || options->min_batch > (1 << 24))
    return bad("min-batch", std::to_string(options->min_batch));
  if (const std::string v = absl::GetFlag(FLAGS_pid); !v.empty()) {
    if (!number(v, 1, INT32_MAX, &n)) return bad("pid", v);
    options->pid = static_cast<pid_t>(n);
  }
  options->hash_wait_ms = absl::GetFlag(FLAGS_hash_wait_ms);
  if (options->hash_wait_ms > 600000)
    return bad("hash-wait-ms", std::to_string(options->hash_wait_ms));
  options->settle_ms = absl::GetFlag(FLAGS_settle_ms);
  if (options->settle_ms > 600000) return bad("settle-ms", std::to_string(options->settle_ms));
  options->verify = absl::GetFlag(FLAGS_verify);
  options->verify_sample = absl::GetFlag(FLAGS_verify_sample);
  const int64_t timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  if (timeout_ms < 1 || timeout_ms > INT32_MAX)
    return bad("timeout-ms", std::to_string(timeout_ms));
  options->timeout_ms = static_cast<int>(timeout_ms);
  options->label = absl::GetFlag(FLAGS_label);
  options->csv_path = absl::GetFlag(FLAGS_csv);
  options->json = absl::GetFlag(FLAGS_json);
  for (const std::string& v : absl::GetFlag(FLAGS_stats_port)) {
    if (!number(v, 1, 65535, &n) || options->stats_ports.size() >= kMaxStatsPorts)
      return bad("stats-port", v);
    options->stats_ports.push_back(static_cast<uint16_t>(n));
  }
  options->every_node = absl::GetFlag(FLAGS_every_node);

  options->min_batch = std::min(options->min_batch, options->batch);
  if (options->every_node && options->stats_ports.empty()) return "--every-node needs --stats-port";
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

// Re-reads a sample of the keys sent with pipelined multi-gets and checks each
// value returned against the one its key number was set to. Returns false on
// a connection or framing failure.
bool Verify(Connection& conn, const Options& options, const ItemShape& shape,
            const KeySequence& keys, uint64_t sent, VerifyResult* result) {
  const uint64_t sample =
      (options.verify_sample == 0 || options.verify_sample > sent) ? sent : options.verify_sample;
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
        const uint64_t index =
            static_cast<uint64_t>(static_cast<unsigned __int128>(next) * sent / sample);
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
          note((known ? "wrong value or flags: " : "key not requested (or repeated): ") + line);
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
int FillPastEviction(Connection& conn, const Options& options, const ItemShape& shape,
                     const KeySequence& keys, uint64_t cap, uint64_t max_batch,
                     std::optional<uint64_t> evictions_at_start, FillResult* result) {
  FillResult::Past past;
  if (options.pid.has_value()) past.rss_first_eviction_kb = ReadRssKb(*options.pid);
  past.target = options.past_eviction.value_or(0);
  if (options.past_eviction_pct.has_value()) {
    past.target = static_cast<uint64_t>(
        std::llround(static_cast<double>(result->items) * *options.past_eviction_pct / 100.0));
  }
  past.items_end = result->items;
  past.evictions_end = result->evictions;
  const auto start = std::chrono::steady_clock::now();
  std::string request;
  StatsReply stats;
  int code = kExitOk;
  while (past.sent < past.target && result->sent < cap) {
    const uint64_t n = std::min({max_batch, past.target - past.sent, cap - result->sent});
    AppendSets(shape, keys, result->sent, n, &request);
    if (!conn.SendAll(request)) {
      std::fprintf(stderr, "fill: send failed %llu sets past the eviction: %s\n",
                   static_cast<unsigned long long>(past.sent), conn.error().c_str());
      code = kExitFailure;
      break;
    }
    result->sent += n;
    past.sent += n;
    if (!QueryStats(conn, &stats)) {
      std::fprintf(stderr, "fill: stats failed %llu sets past the eviction: %s\n",
                   static_cast<unsigned long long>(past.sent), conn.error().c_str());
      code = kExitFailure;
      break;
    }
    ++result->polls;
    result->unexpected_replies += stats.other;
    past.items_end = stats.Get("curr_items").value_or(0);
    const uint64_t evictions = stats.Get("evictions").value_or(0);
    past.evictions_end = evictions - std::min(evictions, evictions_at_start.value_or(0));
    if (stats.errors > 0 || stats.out_of_memory > 0) {
      std::fprintf(stderr,
                   "fill: the server answered with an error %llu sets past the "
                   "eviction: %s\n",
                   static_cast<unsigned long long>(past.sent), stats.first_error.c_str());
      code = kExitFailure;
      break;
    }
  }
  past.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result->past = past;
  return code;
}

// Runs the whole experiment against an open connection. Returns the exit code.
int Fill(Connection& conn, const Options& options, const ItemShape& shape, FillResult* result) {
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
  } else if (auto limit = stats.Get("limit_maxbytes"); limit.has_value() && *limit > 0) {
    result->limit_bytes = *limit;
  } else {
    std::fprintf(stderr, "fill: the server reports no limit_maxbytes; pass --limit-mb\n");
    return kExitUsage;
  }
  const std::optional<uint64_t> evictions_at_start = stats.Get("evictions");
  if (!evictions_at_start.has_value()) {
    std::fprintf(stderr,
                 "fill: warning: the server reports no `evictions`; "
                 "filling until an error or --max-items\n");
  }
  if (auto items = stats.Get("curr_items");
      items.has_value() && *items > 0 && !options.verify_only.has_value()) {
    std::fprintf(stderr, "fill: warning: the server already holds %llu items\n",
                 static_cast<unsigned long long>(*items));
  }

  uint64_t cap = options.max_items.value_or(result->limit_bytes);
  KeySequence keys = KeySequence::Sequential();
  if (options.order == KeyOrder::kShuffled) {
    const uint64_t space =
        std::min(kMaxKeySpace,
                 options.key_space.value_or(options.max_items.value_or(result->limit_bytes / 8)));
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
      1,
      std::min(options.batch, kMaxBatchBytes / (shape.TailBytes() + 32 + shape.ExtraKeyBytes())));
  const uint64_t min_batch = std::min(options.min_batch, max_batch);
  std::optional<uint64_t> items_before = stats.Get("curr_items");

  if (options.verify_only.has_value()) {
    result->sent = *options.verify_only;
    result->stop_reason = "verify_only";
    VerifyResult verify;
    const bool read = Verify(conn, options, shape, keys, result->sent, &verify);
    result->verify = verify;
    if (!read || verify.corrupt > 0 || verify.misses > 0) {
      std::fprintf(stderr, "fill: verify-only: %llu of %llu keys missing, %llu wrong%s%s %s\n",
                   static_cast<unsigned long long>(verify.misses),
                   static_cast<unsigned long long>(verify.sampled),
                   static_cast<unsigned long long>(verify.corrupt),
                   read ? "" : "; read failed: ", read ? "" : conn.error().c_str(),
                   verify.first_problem.c_str());
      return kExitCorrupt;
    }
    return kExitOk;
  }

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
                   static_cast<unsigned long long>(result->sent), conn.error().c_str());
      return kExitFailure;
    }
    if (source.proxied()) AppendBarrier(shape, keys, result->sent, n, &barrier);
    result->sent += n;
    if (!source.Poll(barrier, &stats)) {
      std::fprintf(stderr, "fill: stats failed after %llu sets: %s\n",
                   static_cast<unsigned long long>(result->sent), source.error().c_str());
      return kExitFailure;
    }
    ++result->polls;
    result->unexpected_replies += stats.other;
    if (evicted) {
      if (stats.errors > 0 || stats.out_of_memory > 0 || source.AllEvicted()) break;
      batch = std::clamp(source.RoomLeft().value_or(0) / kBatchRoomDivisor, min_batch, max_batch);
      continue;
    }
    const std::optional<uint64_t> items = stats.Get("curr_items");
    result->items = items.value_or(0);
    const uint64_t evictions = stats.Get("evictions").value_or(0);
    result->evictions = evictions - std::min(evictions, evictions_at_start.value_or(0));
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
    if (items.has_value() && items_before.has_value() && *items < *items_before + n) {
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
      const uint64_t room =
          used < result->limit_bytes ? (result->limit_bytes - used) / per_item : 0;
      batch = std::clamp(room / kBatchRoomDivisor, min_batch, max_batch);
    }
  }
  result->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  source.MarkEnd(result);

  if (result->stop_reason == "eviction" &&
      (options.past_eviction.has_value() || options.past_eviction_pct.has_value())) {
    if (const int code = FillPastEviction(conn, options, shape, keys, cap, max_batch,
                                          evictions_at_start, result);
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
    std::fprintf(stderr, "fill: warning: %llu unexpected replies to noreply sets\n",
                 static_cast<unsigned long long>(result->unexpected_replies));
  }

  int code = kExitOk;
  if (result->stop_reason == "error") {
    std::fprintf(stderr, "fill: the server answered with an error: %s\n",
                 result->server_message.c_str());
    code = kExitFailure;
  } else if (result->stop_reason == "rejected" && result->items == 0) {
    std::fprintf(stderr, "fill: the server stored none of the items (too large?)\n");
    code = kExitFailure;
  } else if (result->stop_reason == "max_items" && shape_bounded) {
    std::fprintf(stderr,
                 "fill: sent all %llu distinct keys of --key-shape %s without an eviction\n",
                 static_cast<unsigned long long>(result->sent), shape.KeyShapeName().c_str());
    code = kExitNotFilled;
  } else if (result->stop_reason == "max_items") {
    std::fprintf(stderr, "fill: sent %llu items without an eviction (raise --max-items%s)\n",
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
                   static_cast<unsigned long long>(verify.corrupt), verify.first_problem.c_str());
      if (code == kExitOk) code = kExitCorrupt;
    }
    result->verify = verify;
  }
  return code;
}

int Main(int argc, char** argv) {
  client_io::ParseFlags(argc, argv, kUsage, {"stats_port"});
  Options options;
  if (const std::string error = OptionsFromFlags(&options); !error.empty()) {
    std::fprintf(stderr, "fill: %s\n%s", error.c_str(), kUsage);
    return kExitUsage;
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
    std::fprintf(stderr, "fill: cannot append to %s\n", options.csv_path.c_str());
    return code == kExitOk ? kExitFailure : code;
  }
  return code;
}
}  // namespace
}  // namespace tinycached::fill

int main(int argc, char** argv) { return tinycached::fill::Main(argc, argv); }
