// experiments/fill_shape.h — what the fill client sends: the order of key
// numbers (KeySequence: 1, 2, 3, ... or a seeded shuffle) and the bytes of the
// key and value of each number (ItemShape: --key-shape, --key-prefixes,
// --value-shape, --key-prefix, --value-size). Every byte is a function of the
// key number and --seed, so --verify can rebuild any item.
#ifndef TINYCACHED_EXPERIMENTS_FILL_SHAPE_H_
#define TINYCACHED_EXPERIMENTS_FILL_SHAPE_H_

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "experiments/fill_options.h"

namespace tinycached::fill {

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
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * bound) >> 64);
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
    for (uint64_t i = 0; i < key_space; ++i) keys.permutation_[i] = static_cast<uint32_t>(i + 1);
    SplitMix64 rng(seed);
    for (uint64_t i = key_space; i > 1; --i) {  // Fisher-Yates
      std::swap(keys.permutation_[i - 1], keys.permutation_[rng.Below(i)]);
    }
    return keys;
  }

  uint64_t KeyAt(uint64_t n) const { return permutation_.empty() ? n + 1 : permutation_[n]; }
  // How many distinct keys the sequence has (unbounded when sequential).
  uint64_t Size() const { return permutation_.empty() ? UINT64_MAX : permutation_.size(); }

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
inline uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

inline uint64_t LowMask(int bits) { return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1; }

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

inline void AppendDecimal(uint64_t number, std::string* out) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), number);
  out->append(digits, result.ptr);
}

inline void AppendDecimal128(U128 number, std::string* out) {
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
inline void AppendHex(uint64_t v, int count, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = count - 1; i >= 0; --i) out->push_back(kHex[(v >> (4 * i)) & 0xf]);
}

inline U128 Pow10(int exponent) {
  U128 v = 1;
  for (int i = 0; i < exponent; ++i) v *= 10;
  return v;
}

inline std::string ShapeName(std::string_view name, uint64_t size) {
  return size == 0 ? std::string(name) : std::string(name) + ":" + std::to_string(size);
}

class ItemShape {
 public:
  explicit ItemShape(const Options& o)
      : o_(o),
        key_seed_(Mix64(o.seed ^ 0x6b65792d73686170)),     // "key-shap"
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
  size_t ExtraKeyBytes() const { return max_shape_length_ > 20 ? max_shape_length_ - 20 : 0; }
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
      AppendDecimal(digits_low_ + static_cast<uint64_t>((U128{state} * digits_span_) >> 64), out);
      return;
    }
    static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
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
    AppendHex(h >> 16, 12, &hex);          // digits 0-11
    hex.push_back('4');                    // 12: version
    AppendHex((h >> 4) & 0xfff, 3, &hex);  // 13-15
    AppendHex(8 | (r & 3), 1, &hex);       // 16: variant
    AppendHex(h & 0xf, 1, &hex);           // 17
    AppendHex(r >> 8, 14, &hex);           // 18-31
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

// Keys per ordering multi-get behind a proxy (--stats-port).
constexpr uint64_t kBarrierKeys = 64;

// Replaces *request with the pipelined sets of keys first .. first + n - 1.
inline void AppendSets(const ItemShape& shape, const KeySequence& keys, uint64_t first, uint64_t n,
                       std::string* request) {
  request->clear();
  for (uint64_t i = 0; i < n; ++i) shape.AppendSet(keys.KeyAt(first + i), request);
}

// Replaces *request with "get" of the last kBarrierKeys of keys first ..
// first + n - 1: the multi-get that orders a poll behind a proxy.
inline void AppendBarrier(const ItemShape& shape, const KeySequence& keys, uint64_t first,
                          uint64_t n, std::string* request) {
  request->assign("get");
  for (uint64_t i = n - std::min(n, kBarrierKeys); i < n; ++i) {
    request->push_back(' ');
    shape.AppendKey(keys.KeyAt(first + i), request);
  }
  request->append("\r\n");
}

}  // namespace tinycached::fill

#endif  // TINYCACHED_EXPERIMENTS_FILL_SHAPE_H_
