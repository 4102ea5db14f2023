// missratio — the read-through client of the miss-ratio experiment
// (experiments/miss_ratio.py): what share of requests miss when a server with a
// fixed memory limit caches a key space several times larger than it holds,
// with Zipf-distributed popularity.
//
// Room: experiments/. Talks to any memcached-protocol server over TCP; links
// nothing of the project, so the same binary measures tinycached and memcached.
//
//   missratio --port P --keys N --alpha A --requests R [--warmup W]
//             [--seed S] [--batch B] [--perm-seed P] [--key-prefixes K] [--json]
//
// Requests. Request i asks for the key of rank r_i, where r_1, r_2, ... are
// independent draws from Zipf(alpha) over ranks 1..N: P(r) = r^-alpha / H(N,
// alpha). The key of rank r is the decimal integer 1 + pi(r - 1), pi a fixed
// pseudo-random bijection of 0..N-1 (a Feistel network with cycle walking,
// keyed by --perm-seed), so the popular keys are spread over the key space
// rather than being 1, 2, 3. Every request is a key asked with `get`; on a
// miss the client sets the key (`set <key> 0 0 <len> noreply`) with its value: 1-8
// decimal digits, a function of the key alone (digit count uniform in 1..8,
// first digit nonzero), so every hit is checked byte for byte.
//
// --key-prefixes K (K >= 1) gives the key of number n the text key
// "p<n mod K>:<n>" instead of "<n>" (p0:..p<K-1>:, as keys cycle over K
// prefixes: "p3:812347"); values, popularity and the request stream stay
// those of n. Text keys like these are never tiny items in tinycached's
// `tiny` preset, so this measures the miss ratio of prefixed keys.
//
// Pipelining, over one connection:
//
//   client                                             server
//   get 8812 17 ...\r\n (--batch keys, kKeysPerGet a command) ->
//                        <- VALUE 17 0 3\r\n521\r\n ... END (hits, in order)
//   set 8812 0 0 5 noreply\r\n40131\r\n ... (the batch's misses, each key once)
//   get ... (the next batch)                          }  one write
//
// A batch asks its keys with multi-key gets, as a read-through client's
// get_many does: one reply per command, not one per key. (With one `get` per
// key, memcached 1.6 sends each reply in its own sendmsg and the run is bound
// by that, not by the cache.) A key asked twice in one command is answered
// twice; hits come back in the order asked, so a VALUE line belongs to the
// next asked key with its name, and every asked key skipped over missed.
//
// The sets of a batch's misses travel with the next batch's gets. A key asked
// twice in one batch that was missing is answered as a miss both times (a
// strictly sequential client would have set it in between); such repeats are
// counted (repeat_misses) so their share can be seen, and --batch 1 is the
// strictly sequential client.
//
// Phases: the first --warmup requests fill the cache and are not counted;
// at their end the client reads `stats` (curr_items, evictions: was the cache
// full when counting began?). The next --requests requests are counted; the
// miss ratio of each half of them is reported too (equal halves mean a steady
// state). At the end, `stats` again.
//
// Output: one JSON line (--json) or a short text report. Two references:
// infinite_cache_miss_ratio, the share of counted requests asking for a key
// for the first time in the run (the misses of a cache that never evicts:
// the floor for every server, on the same request stream), and
// top_c_miss_ratio, the expected miss ratio of an ideal static cache holding
// the C = curr_items most popular keys (1 - H(C, alpha) / H(N, alpha)).
//
// --check-sampler S draws S ranks and compares them with the exact Zipf
// probabilities (no server needed).
//
// Exit status: 0 ran with every reply as expected; 1 a wrong value or a
// protocol error (error replies to noreply sets alone are counted, not
// failures); 2 usage; 3 could not connect.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "experiments/client_io.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (IPv4)");
ABSL_FLAG(int, port, 11211, "server port");
ABSL_FLAG(uint64_t, keys, 1000000, "key space: ranks 1..N");
ABSL_FLAG(double, alpha, 0.9, "Zipf exponent, > 0");
ABSL_FLAG(uint64_t, warmup, 0, "requests before counting starts");
ABSL_FLAG(uint64_t, requests, 1000000, "requests counted after the warmup");
ABSL_FLAG(uint64_t, seed, 1, "seed of the request stream");
ABSL_FLAG(uint64_t, perm_seed, 1, "seed of the rank -> key bijection");
ABSL_FLAG(uint64_t, batch, 100, "gets per pipelined batch, 1..1000");
ABSL_FLAG(uint64_t, key_prefixes, 0, "K >= 1: key number n is the text p<n mod K>:<n>");
ABSL_FLAG(int, timeout_ms, 30000, "give up when the server is silent this long");
ABSL_FLAG(bool, json, false, "one JSON line instead of the text report");
ABSL_FLAG(uint64_t, check_sampler, 0, "no server: draw S ranks and compare with Zipf");

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxBatch = 1000;   // keeps a batch's request and reply within socket buffers
constexpr uint64_t kKeysPerGet = 100;  // keys per `get` command: lines stay ~1 KB
constexpr uint64_t kMaxKeys = uint64_t{1} << 40;
// Up to this many keys, a bitmap (N / 8 bytes) notes which keys were asked for
// before, for the miss ratio of an infinite cache (first requests only).
constexpr uint64_t kMaxSeenKeys = uint64_t{1} << 34;

struct Options {
  std::string host = "127.0.0.1";
  int port = 11211;
  uint64_t keys = 1000000;
  double alpha = 0.9;
  uint64_t requests = 1000000;
  uint64_t warmup = 0;
  uint64_t seed = 1;
  uint64_t perm_seed = 1;
  uint64_t batch = 100;
  int timeout_ms = 30000;
  uint64_t check_sampler = 0;
  uint64_t key_prefixes = 0;  // 0: keys are plain decimal numbers
  bool json = false;
};

constexpr uint64_t kMaxKeyPrefixes = 1000000;

using client_io::Mix;

// A splitmix64 stream: 64 random bits per call, and uniform doubles.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(Mix(seed ^ 0x4d495353u)) {}
  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ull;
    return Mix(state_);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------
// Zipf ranks by rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-
// inversion to generate variates from monotone discrete distributions", ACM
// TOMACS 6(3), 1996). Constant time per draw, no table, any N and alpha > 0.
//
// Let h(x) = x^-a. Rank k is given the interval [k - 1/2, k + 1/2] of the
// real line; since h is convex, its integral over that interval is at least
// h(k). With H an antiderivative of h, a uniform u over [H(1/2)', H(N + 1/2)]
// is mapped back through H^-1 to x and rounded to the rank k; it is accepted
// if u lies in the top h(k)-wide part of k's interval, [H(k + 1/2) - h(k),
// H(k + 1/2)], so every rank is accepted with probability proportional to
// h(k). Rank 1 gets an interval exactly h(1) = 1 wide ([H(3/2) - 1, H(3/2)]),
// so it is always accepted. Most draws are accepted by a cheap squeeze
// (k - x <= squeeze_) without evaluating H.
//
// H(x) = (x^(1-a) - 1) / (1 - a), which tends to ln x as a -> 1; both it and
// its inverse are written with expm1/log1p so that a near 1 loses no precision.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double alpha) : n_(static_cast<double>(n)), a_(alpha) {
    h_low_ = H(1.5) - 1.0;
    h_high_ = H(n_ + 0.5);
    squeeze_ = 2.0 - HInverse(H(2.5) - h(2.0));
  }

  // A rank in 1..n.
  uint64_t operator()(Random& rng) const {
    for (;;) {
      const double u = h_high_ + rng.Uniform() * (h_low_ - h_high_);
      const double x = HInverse(u);
      double k = std::floor(x + 0.5);
      if (k < 1.0) k = 1.0;
      if (k > n_) k = n_;
      if (k - x <= squeeze_ || u >= H(k + 0.5) - h(k)) return static_cast<uint64_t>(k);
    }
  }

 private:
  // (e^t - 1) / t and ln(1 + t) / t, continuous at t = 0.
  static double ExpM1OverT(double t) {
    return std::fabs(t) > 1e-8 ? std::expm1(t) / t : 1.0 + t / 2.0 * (1.0 + t / 3.0);
  }
  static double Log1POverT(double t) {
    return std::fabs(t) > 1e-8 ? std::log1p(t) / t : 1.0 - t * (0.5 - t / 3.0);
  }
  double h(double x) const { return std::exp(-a_ * std::log(x)); }
  double H(double x) const {
    const double lx = std::log(x);
    return ExpM1OverT((1.0 - a_) * lx) * lx;
  }
  double HInverse(double y) const {
    double t = (1.0 - a_) * y;
    if (t < -1.0) t = -1.0;  // rounding at the very end of the range (a > 1)
    return std::exp(Log1POverT(t) * y);
  }

  double n_, a_;
  double h_low_, h_high_, squeeze_;
};

// H(n, a) = sum_{k=1..n} k^-a: the first terms summed, the rest by the
// Euler-Maclaurin formula (error far below 1e-12 relative from k = 10^4 on).
double GeneralizedHarmonic(uint64_t n, double a) {
  constexpr uint64_t kExact = 10000;
  double sum = 0;
  for (uint64_t k = 1; k <= std::min(n, kExact); ++k) sum += std::pow(static_cast<double>(k), -a);
  if (n <= kExact) return sum;
  const double lo = static_cast<double>(kExact), hi = static_cast<double>(n);
  auto f = [a](double x) { return std::pow(x, -a); };
  auto f1 = [a](double x) { return -a * std::pow(x, -a - 1); };
  auto f3 = [a](double x) { return -a * (a + 1) * (a + 2) * std::pow(x, -a - 3); };
  const double integral = std::fabs(a - 1.0) < 1e-12
                              ? std::log(hi / lo)
                              : (std::pow(hi, 1 - a) - std::pow(lo, 1 - a)) / (1 - a);
  // sum_{k=lo..hi} f(k), minus f(lo), which the exact part has already.
  const double tail =
      integral + (f(lo) + f(hi)) / 2 + (f1(hi) - f1(lo)) / 12 - (f3(hi) - f3(lo)) / 720 - f(lo);
  return sum + tail;
}

// ---------------------------------------------------------------------------
// A fixed bijection of 0..n-1: a Feistel network on the smallest bit width
// w >= 2 with 2^w >= n, split into a high and a low part; each round replaces
// one part by itself XOR a keyed hash of the other, which is invertible.
// Values that land at or past n are mapped again until they fall inside
// (cycle walking), which keeps it a bijection of 0..n-1; since 2^w < 2n,
// fewer than two passes are needed on average.
class Permutation {
 public:
  Permutation(uint64_t n, uint64_t seed) : n_(n) {
    int w = 2;
    while ((uint64_t{1} << w) < n) ++w;
    low_bits_ = w / 2;
    high_bits_ = w - low_bits_;
    for (int r = 0; r < kRounds; ++r) keys_[r] = Mix(seed * 0x10001 + static_cast<uint64_t>(r));
  }

  uint64_t operator()(uint64_t x) const {
    do {
      x = Once(x);
    } while (x >= n_);
    return x;
  }

 private:
  static constexpr int kRounds = 4;

  uint64_t Once(uint64_t x) const {
    const uint64_t low_mask = (uint64_t{1} << low_bits_) - 1;
    const uint64_t high_mask = (uint64_t{1} << high_bits_) - 1;
    uint64_t lo = x & low_mask, hi = x >> low_bits_;
    for (int r = 0; r < kRounds; ++r) {
      if (r % 2 == 0) {
        lo ^= Mix(hi ^ keys_[r]) & low_mask;
      } else {
        hi ^= Mix(lo ^ keys_[r]) & high_mask;
      }
    }
    return hi << low_bits_ | lo;
  }

  uint64_t n_;
  int low_bits_, high_bits_;
  uint64_t keys_[kRounds];
};

// The value every set of `key` writes: 1-8 decimal digits, the first nonzero.
void ValueOf(uint64_t key, std::string* out) {
  uint64_t h = Mix(key ^ 0x76616c7565ull);
  const int digits = 1 + static_cast<int>(h % 8);
  h = Mix(h);
  out->clear();
  out->push_back(static_cast<char>('1' + h % 9));
  h /= 9;
  for (int i = 1; i < digits; ++i) {
    out->push_back(static_cast<char>('0' + h % 10));
    h /= 10;
  }
}

void AppendNumber(std::string* out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// The text of key number `key`: "<key>", or with --key-prefixes K
// "p<key mod K>:<key>".
void AppendKey(std::string* out, uint64_t key, uint64_t prefixes) {
  if (prefixes > 0) {
    out->push_back('p');
    AppendNumber(out, key % prefixes);
    out->push_back(':');
  }
  AppendNumber(out, key);
}

std::string KeyText(uint64_t key, uint64_t prefixes) {
  std::string out;
  AppendKey(&out, key, prefixes);
  return out;
}

using client_io::ParseU64;

// The key number of a key's text (AppendKey's inverse); false if `text` is
// not a key this client makes.
bool ParseKey(std::string_view text, uint64_t prefixes, uint64_t* key) {
  if (prefixes == 0) return ParseU64(text, key);
  const size_t colon = text.find(':');
  uint64_t prefix = 0;
  return text.size() > 1 && text[0] == 'p' && colon != std::string_view::npos &&
         ParseU64(text.substr(1, colon - 1), &prefix) && ParseU64(text.substr(colon + 1), key) &&
         prefix == *key % prefixes;
}

// ---------------------------------------------------------------------------
// The run.

struct Counts {
  uint64_t requests = 0, hits = 0, misses = 0, repeat_misses = 0, first_requests = 0;
};

struct Result {
  Counts measured, halves[2];
  uint64_t warmup_misses = 0, sets = 0, set_errors = 0, verify_failures = 0, protocol_errors = 0;
  std::string first_set_error, first_verify, first_protocol;
  std::map<std::string, std::string> stats_warmup, stats_end;
  double warmup_seconds = 0, seconds = 0;
};

class Client {
 public:
  Client(const Options& o, Result* result)
      : o_(o), r_(result), rng_(o.seed), zipf_(o.keys, o.alpha), perm_(o.keys, o.perm_seed) {
    if (o.keys <= kMaxSeenKeys) seen_.assign((o.keys + 63) / 64, 0);
  }

  bool Run() {
    fd_ = client_io::Connect(o_.host, o_.port);
    if (fd_ < 0) {
      Protocol("cannot connect");
      return false;
    }
    in_.Reset(fd_, o_.timeout_ms);
    const uint64_t total = o_.warmup + o_.requests;
    uint64_t done = 0;
    Clock::time_point phase_start = Clock::now();
    bool ok = true;
    if (o_.warmup == 0) ok = Stats(&r_->stats_warmup);
    while (ok && done < total) {
      // A batch never straddles the end of the warmup.
      const uint64_t boundary = done < o_.warmup ? o_.warmup : total;
      const uint64_t n = std::min(o_.batch, boundary - done);
      out_.clear();
      AppendSets();
      keys_.clear();
      first_.clear();
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t key = 1 + perm_(zipf_(rng_) - 1);
        keys_.push_back(key);
        if (!seen_.empty()) {
          uint64_t& word = seen_[(key - 1) / 64];
          const uint64_t bit = uint64_t{1} << ((key - 1) % 64);
          first_.push_back((word & bit) == 0);
          word |= bit;
        }
        out_.append(i % kKeysPerGet == 0 ? "get " : " ");
        AppendKey(&out_, key, o_.key_prefixes);
        if (i % kKeysPerGet == kKeysPerGet - 1 || i == n - 1) out_.append("\r\n");
      }
      if (!client_io::WriteAll(fd_, out_)) {
        Protocol("write failed");
        ok = false;
        break;
      }
      const bool counted = done >= o_.warmup;
      if (!ReadReplies(counted, counted ? done - o_.warmup : 0)) {
        ok = false;
        break;
      }
      done += n;
      if (done == o_.warmup) {
        ok = Stats(&r_->stats_warmup);
        const Clock::time_point now = Clock::now();
        r_->warmup_seconds = std::chrono::duration<double>(now - phase_start).count();
        phase_start = now;
      }
    }
    if (ok) ok = Stats(&r_->stats_end);  // also sends the last batch's sets
    r_->seconds = std::chrono::duration<double>(Clock::now() - phase_start).count();
    close(fd_);
    fd_ = -1;
    return ok;
  }

 private:
  // The sets of the previous batch's misses, each key once.
  void AppendSets() {
    std::sort(to_set_.begin(), to_set_.end());
    to_set_.erase(std::unique(to_set_.begin(), to_set_.end()), to_set_.end());
    for (uint64_t key : to_set_) {
      ValueOf(key, &value_);
      out_.append("set ");
      AppendKey(&out_, key, o_.key_prefixes);
      out_.append(" 0 0 ");
      AppendNumber(&out_, value_.size());
      out_.append(" noreply\r\n");
      out_.append(value_);
      out_.append("\r\n");
    }
    r_->sets += to_set_.size();
    to_set_.clear();
  }

  // Sends the pending sets and `stats`, and reads the reply into *values.
  bool Stats(std::map<std::string, std::string>* values) {
    out_.clear();
    AppendSets();
    out_.append("stats\r\n");
    if (!client_io::WriteAll(fd_, out_)) {
      Protocol("write failed");
      return false;
    }
    for (;;) {
      std::string_view line;
      if (!Line(&line)) return false;
      if (line == "END") return true;
      if (line.rfind("SERVER_ERROR", 0) == 0) {
        SetError(line);
        continue;
      }
      if (line.rfind("STAT ", 0) != 0) {
        Protocol("unexpected line in stats: " + std::string(line.substr(0, 120)));
        return false;
      }
      const std::string_view rest = line.substr(5);
      const size_t sp = rest.find(' ');
      if (sp != std::string_view::npos) {
        (*values)[std::string(rest.substr(0, sp))] = std::string(rest.substr(sp + 1));
      }
    }
  }

  // Counts the answer to keys_[i]; a miss is set with the next batch.
  void Answer(size_t i, bool hit, bool counted, uint64_t first) {
    if (!hit) {
      to_set_.push_back(keys_[i]);
      batch_misses_.emplace_back(keys_[i], i);
    }
    if (counted) {
      const uint64_t index = first + i;
      Counts& half = r_->halves[index < o_.requests / 2 ? 0 : 1];
      for (Counts* c : {&r_->measured, &half}) {
        ++c->requests;
        ++(hit ? c->hits : c->misses);
        if (!first_.empty() && first_[i]) ++c->first_requests;
      }
    } else if (!hit) {
      ++r_->warmup_misses;
    }
  }

  // Reads the replies to keys_ (asked kKeysPerGet to a `get` command, in
  // order). `first` is the index of keys_[0] among the counted requests (for
  // the halves).
  bool ReadReplies(bool counted, uint64_t first) {
    batch_misses_.clear();
    size_t next = 0;  // the first asked key not yet answered
    for (size_t begin = 0; begin < keys_.size(); begin += kKeysPerGet) {
      const size_t end = std::min(keys_.size(), begin + kKeysPerGet);
      for (;;) {
        std::string_view line;
        if (!Line(&line)) return false;
        if (line == "END") break;
        if (line.rfind("SERVER_ERROR", 0) == 0) {  // for a noreply set sent before this get
          SetError(line);
          continue;
        }
        if (line.rfind("VALUE ", 0) != 0) {
          Protocol("get: " + std::string(line.substr(0, 120)));
          return false;
        }
        // VALUE <key> <flags> <bytes>[ <cas>]
        std::string_view rest = line.substr(6), fields[3];
        for (auto& field : fields) {
          const size_t sp = rest.find(' ');
          field = rest.substr(0, sp);
          rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        }
        uint64_t key = 0, flags = 0, bytes = 0;
        if (!ParseKey(fields[0], o_.key_prefixes, &key) || !ParseU64(fields[1], &flags) ||
            !ParseU64(fields[2], &bytes) || bytes > (uint64_t{1} << 20)) {
          Protocol("bad VALUE line: " + std::string(line.substr(0, 120)));
          return false;
        }
        std::string_view data;
        if (!in_.Data(bytes, &data)) return Protocol(in_.error());
        size_t i = next;
        while (i < end && keys_[i] != key) ++i;
        if (i == end) {
          Protocol("VALUE " + KeyText(key, o_.key_prefixes) + ": not asked, or out of order");
          return false;
        }
        for (; next < i; ++next) Answer(next, false, counted, first);
        ValueOf(key, &value_);
        const bool hit = flags == 0 && data == value_;
        if (!hit) {
          Verify("get " + KeyText(key, o_.key_prefixes) + ": VALUE " +
                 KeyText(key, o_.key_prefixes) + " " + std::to_string(flags) + " " +
                 std::to_string(bytes) + " '" + std::string(data.substr(0, 16)) + "'");
        }
        Answer(next++, hit, counted, first);
      }
      for (; next < end; ++next) Answer(next, false, counted, first);
    }
    if (counted && batch_misses_.size() > 1) {
      // Misses of a key already missed earlier in this batch.
      std::sort(batch_misses_.begin(), batch_misses_.end());
      for (size_t j = 1; j < batch_misses_.size(); ++j) {
        if (batch_misses_[j].first != batch_misses_[j - 1].first) continue;
        const uint64_t index = first + batch_misses_[j].second;
        ++r_->measured.repeat_misses;
        ++r_->halves[index < o_.requests / 2 ? 0 : 1].repeat_misses;
      }
    }
    return true;
  }

  // The next line (without \r\n) from the input; it stays valid until the next read.
  bool Line(std::string_view* line) { return in_.Line(line) || Protocol(in_.error()); }

  void SetError(std::string_view line) {
    if (r_->set_errors++ == 0) r_->first_set_error = std::string(line.substr(0, 120));
  }
  // Notes a protocol error; returns false.
  bool Protocol(const std::string& what) {
    if (r_->protocol_errors++ == 0) r_->first_protocol = what;
    return false;
  }
  void Verify(const std::string& what) {
    if (r_->verify_failures++ == 0) r_->first_verify = what;
  }

  const Options& o_;
  Result* r_;
  Random rng_;
  ZipfSampler zipf_;
  Permutation perm_;
  int fd_ = -1;
  std::vector<uint64_t> keys_, to_set_;
  std::vector<uint64_t> seen_;  // bit key-1: asked for before (empty if --keys is too big)
  std::vector<bool> first_;     // keys_[i] had not been asked for before
  std::vector<std::pair<uint64_t, size_t>> batch_misses_;
  client_io::Reader in_;
  std::string out_, value_;
};

// ---------------------------------------------------------------------------
// Output.

using client_io::JsonString;

// A stats value as a JSON number, or null when absent or not a number.
std::string StatNumber(const std::map<std::string, std::string>& stats, const char* name) {
  const auto it = stats.find(name);
  uint64_t v = 0;
  if (it == stats.end() || !ParseU64(it->second, &v)) return "null";
  return std::to_string(v);
}

double Ratio(uint64_t a, uint64_t b) {
  return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

std::string Fixed(double v, int digits = 6) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// Miss ratio of a cache that always holds the c most popular keys.
double TopCMissRatio(uint64_t c, uint64_t n, double alpha) {
  if (c >= n) return 0.0;
  return 1.0 - GeneralizedHarmonic(c, alpha) / GeneralizedHarmonic(n, alpha);
}

int CheckSampler(const Options& o) {
  // Exact probabilities for the first ranks, the rest as one bin per decade.
  const uint64_t exact = std::min<uint64_t>(o.keys, 1000);
  std::vector<uint64_t> bounds;  // upper rank of each bin
  for (uint64_t k = 1; k <= exact; ++k) bounds.push_back(k);
  for (uint64_t b = 10000; bounds.back() < o.keys; b *= 10) bounds.push_back(std::min(b, o.keys));
  std::vector<uint64_t> counts(bounds.size());
  const ZipfSampler zipf(o.keys, o.alpha);
  Random rng(o.seed);
  const Clock::time_point start = Clock::now();
  for (uint64_t i = 0; i < o.check_sampler; ++i) {
    const uint64_t k = zipf(rng);
    if (k < 1 || k > o.keys) {
      std::printf("{\"error\": \"rank %" PRIu64 " out of range\"}\n", k);
      return 1;
    }
    ++counts[std::lower_bound(bounds.begin(), bounds.end(), k) - bounds.begin()];
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double total = GeneralizedHarmonic(o.keys, o.alpha);
  double chi2 = 0, prev = 0;
  int bins = 0;
  std::string top;
  for (size_t b = 0; b < bounds.size(); ++b) {
    const double upto = GeneralizedHarmonic(bounds[b], o.alpha);
    const double expected = (upto - prev) / total * static_cast<double>(o.check_sampler);
    prev = upto;
    if (b < 5) {
      top += (b ? ", " : "") + std::string("[") + std::to_string(bounds[b]) + ", " +
             std::to_string(counts[b]) + ", " + Fixed(expected, 1) + "]";
    }
    if (expected < 5) continue;
    chi2 += (static_cast<double>(counts[b]) - expected) *
            (static_cast<double>(counts[b]) - expected) / expected;
    ++bins;
  }
  std::printf("{\"keys\": %" PRIu64 ", \"alpha\": %g, \"samples\": %" PRIu64
              ", \"chi2\": %.2f, \"bins\": %d, \"df\": %d, \"ns_per_sample\": %.1f, "
              "\"first_bins\": [%s]}\n",
              o.keys, o.alpha, o.check_sampler, chi2, bins, bins - 1,
              seconds * 1e9 / static_cast<double>(o.check_sampler), top.c_str());
  return 0;
}

constexpr char kUsage[] =
    R"(usage: missratio [options]
Read-through client: `get <key>` with Zipf-distributed keys, and on a miss
`set <key> 0 0 <len> noreply` (a 1-8 digit value derived from the key).
Prints the miss ratio after the warmup and the server's curr_items/evictions.

  --host HOST          server address (default 127.0.0.1)
  --port PORT          server port (default 11211)
  --keys N             key space: ranks 1..N, keys are decimal 1..N (default 1000000)
  --alpha A            Zipf exponent, > 0 (default 0.9)
  --warmup W           requests before counting starts (default 0)
  --requests R         requests counted after the warmup (default 1000000)
  --seed S             seed of the request stream (default 1)
  --perm-seed P        seed of the rank -> key bijection (default 1)
  --batch B            gets per pipelined batch, 1..1000 (default 100)
  --key-prefixes K     K >= 1: key number n is the text "p<n mod K>:<n>"
                       (K prefixes p0: .. p<K-1>:), not "<n>" (default 0:
                       plain decimal keys)
  --timeout-ms MS      give up when the server is silent this long (default 30000)
  --json               one JSON line instead of the text report
  --check-sampler S    no server: draw S ranks and compare with the exact
                       Zipf probabilities (chi-square over the first 1000
                       ranks and one bin per decade above)
  --help               this text (then every flag; names take '-' or '_')
)";

}  // namespace

int main(int argc, char** argv) {
  client_io::ParseFlags(argc, argv, kUsage);
  Options o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.keys = absl::GetFlag(FLAGS_keys);
  o.alpha = absl::GetFlag(FLAGS_alpha);
  o.warmup = absl::GetFlag(FLAGS_warmup);
  o.requests = absl::GetFlag(FLAGS_requests);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.perm_seed = absl::GetFlag(FLAGS_perm_seed);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.key_prefixes = absl::GetFlag(FLAGS_key_prefixes);
  o.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  o.json = absl::GetFlag(FLAGS_json);
  o.check_sampler = absl::GetFlag(FLAGS_check_sampler);
  const bool bad = o.key_prefixes > kMaxKeyPrefixes;
  if (bad || o.port < 1 || o.port > 65535 || o.keys < 1 || o.keys > kMaxKeys ||
      !(o.alpha > 0 && o.alpha < 100) || o.batch < 1 || o.batch > kMaxBatch || o.timeout_ms < 1 ||
      (o.requests == 0 && o.check_sampler == 0)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (o.check_sampler) return CheckSampler(o);

  {
    const int fd = client_io::Connect(o.host, o.port);
    if (fd < 0) {
      std::fprintf(stderr, "missratio: cannot connect to %s:%d\n", o.host.c_str(), o.port);
      return 3;
    }
    close(fd);
  }
  Result r;
  Client client(o, &r);
  const bool ran = client.Run();
  uint64_t curr_items = 0;
  if (const auto it = r.stats_end.find("curr_items"); it != r.stats_end.end()) {
    ParseU64(it->second, &curr_items);
  }
  const Counts& m = r.measured;
  const double top_c = TopCMissRatio(curr_items, o.keys, o.alpha);
  if (o.json) {
    std::string s =
        "{\"keys\": " + std::to_string(o.keys) + ", \"alpha\": " + Fixed(o.alpha, 4) +
        ", \"seed\": " + std::to_string(o.seed) +
        ", \"perm_seed\": " + std::to_string(o.perm_seed) +
        ", \"batch\": " + std::to_string(o.batch) +
        (o.key_prefixes > 0 ? ", \"key_prefixes\": " + std::to_string(o.key_prefixes)
                            : std::string()) +
        ", \"warmup\": " + std::to_string(o.warmup) +
        ", \"warmup_misses\": " + std::to_string(r.warmup_misses) +
        ", \"warmup_seconds\": " + Fixed(r.warmup_seconds, 3) +
        ", \"warmup_curr_items\": " + StatNumber(r.stats_warmup, "curr_items") +
        ", \"warmup_evictions\": " + StatNumber(r.stats_warmup, "evictions") +
        ", \"requests\": " + std::to_string(m.requests) + ", \"hits\": " + std::to_string(m.hits) +
        ", \"misses\": " + std::to_string(m.misses) +
        ", \"miss_ratio\": " + Fixed(Ratio(m.misses, m.requests)) +
        ", \"miss_ratio_first_half\": " + Fixed(Ratio(r.halves[0].misses, r.halves[0].requests)) +
        ", \"miss_ratio_second_half\": " + Fixed(Ratio(r.halves[1].misses, r.halves[1].requests)) +
        ", \"repeat_misses\": " + std::to_string(m.repeat_misses) +
        ", \"top_c_miss_ratio\": " + Fixed(top_c) +
        ", \"first_requests\": " + std::to_string(m.first_requests) +
        ", \"infinite_cache_miss_ratio\": " +
        (o.keys <= kMaxSeenKeys ? Fixed(Ratio(m.first_requests, m.requests)) : "null") +
        ", \"seconds\": " + Fixed(r.seconds, 3) +
        ", \"requests_per_second\": " + Fixed(Ratio(m.requests, 1) / std::max(r.seconds, 1e-9), 0) +
        ", \"sets\": " + std::to_string(r.sets) +
        ", \"curr_items\": " + StatNumber(r.stats_end, "curr_items") +
        ", \"evictions\": " + StatNumber(r.stats_end, "evictions") +
        ", \"limit_maxbytes\": " + StatNumber(r.stats_end, "limit_maxbytes") +
        ", \"server_get_hits\": " + StatNumber(r.stats_end, "get_hits") +
        ", \"server_get_misses\": " + StatNumber(r.stats_end, "get_misses") +
        ", \"set_errors\": " + std::to_string(r.set_errors) +
        ", \"first_set_error\": " + JsonString(r.first_set_error) +
        ", \"verify_failures\": " + std::to_string(r.verify_failures) +
        ", \"first_verify_failure\": " + JsonString(r.first_verify) +
        ", \"protocol_errors\": " + std::to_string(r.protocol_errors) +
        ", \"first_protocol_error\": " + JsonString(r.first_protocol) + "}\n";
    std::fputs(s.c_str(), stdout);
  } else {
    std::printf("keys %" PRIu64 ", alpha %g, warmup %" PRIu64
                " requests (%.1f s; then curr_items %s, "
                "evictions %s)\n",
                o.keys, o.alpha, o.warmup, r.warmup_seconds,
                StatNumber(r.stats_warmup, "curr_items").c_str(),
                StatNumber(r.stats_warmup, "evictions").c_str());
    std::printf("counted %" PRIu64 " requests in %.1f s (%.0f/s): %" PRIu64 " hits, %" PRIu64
                " misses; miss ratio %.4f (halves %.4f, %.4f; %" PRIu64 " repeat misses)\n",
                m.requests, r.seconds, Ratio(m.requests, 1) / std::max(r.seconds, 1e-9), m.hits,
                m.misses, Ratio(m.misses, m.requests),
                Ratio(r.halves[0].misses, r.halves[0].requests),
                Ratio(r.halves[1].misses, r.halves[1].requests), m.repeat_misses);
    std::printf(
        "server at the end: curr_items %s, evictions %s; miss ratio of an ideal cache of "
        "the curr_items most popular keys %.4f, of an infinite cache %.4f\n",
        StatNumber(r.stats_end, "curr_items").c_str(), StatNumber(r.stats_end, "evictions").c_str(),
        top_c, Ratio(m.first_requests, m.requests));
    std::printf("set errors %" PRIu64 "%s%s, verify failures %" PRIu64
                "%s%s, protocol errors %" PRIu64 "%s%s\n",
                r.set_errors, r.set_errors ? " (first: " : "",
                r.set_errors ? (r.first_set_error + ")").c_str() : "", r.verify_failures,
                r.verify_failures ? " (first: " : "",
                r.verify_failures ? (r.first_verify + ")").c_str() : "", r.protocol_errors,
                r.protocol_errors ? " (first: " : "",
                r.protocol_errors ? (r.first_protocol + ")").c_str() : "");
  }
  if (!ran || r.protocol_errors > 0 || r.verify_failures > 0) return 1;
  return 0;
}
