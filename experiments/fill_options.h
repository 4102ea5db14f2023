// experiments/fill_options.h — the fill client's options (its flags, parsed
// in fill.cc), its result record and the constants its parts share. See
// fill.cc for what the client does.
#ifndef TINYCACHED_EXPERIMENTS_FILL_OPTIONS_H_
#define TINYCACHED_EXPERIMENTS_FILL_OPTIONS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/client_io.h"

namespace tinycached::fill {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// Largest value --verify accepts in a VALUE line before calling it corrupt.
constexpr uint64_t kMaxValueLength = uint64_t{1} << 30;

enum class KeyOrder { kSequential, kShuffled };

// --key-shape and --value-shape (ItemShape, fill_shape.h, makes the bytes).
enum class KeyShape { kSeq, kRandom, kHex, kUuid };
enum class ValueShape { kX, kDigits, kText };

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
  std::optional<uint64_t> verify_only;  // --verify-only: no sets, re-read this many keys
  int timeout_ms = 30000;
  std::string label;
  std::string csv_path;
  bool json = false;
  // --stats-port: the servers behind the proxy at host:port (same host).
  std::vector<uint16_t> stats_ports;
  bool every_node = false;
};

using client_io::ParseU64;

inline bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

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
  uint64_t unexpected_replies = 0;  // e.g. STORED from a server ignoring noreply
  double seconds = 0;
  std::string stop_reason;  // eviction | rejected | out_of_memory | error | max_items
  std::string server_message;
  std::optional<uint64_t> rss_before_kb;
  std::optional<uint64_t> rss_after_kb;
  std::optional<VerifyResult> verify;
  // --past-eviction only: what happened after the first eviction.
  struct Past {
    uint64_t target = 0;                            // sets asked for past the first eviction
    uint64_t sent = 0;                              // sets sent past the first eviction
    uint64_t items_end = 0;                         // curr_items at the last poll
    uint64_t evictions_end = 0;                     // evictions (since the start) at the last poll
    double seconds = 0;                             // time spent past the first eviction
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

}  // namespace tinycached::fill

#endif  // TINYCACHED_EXPERIMENTS_FILL_OPTIONS_H_
