#include "core/key_prefixes.h"

#include <algorithm>
#include <cstring>

namespace tinycached::core {

// Deterministic (the same prefixes are learned, in the same order, on every
// run of the same traffic): 8 bytes at a time, multiply and fold.
uint64_t KeyPrefixes::Hash(std::string_view prefix) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t h = prefix.size() * kMul;
  for (size_t i = 0; i < prefix.size(); i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, prefix.data() + i, std::min<size_t>(8, prefix.size() - i));
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  return h;
}

std::optional<uint32_t> KeyPrefixes::Find(std::string_view prefix, uint64_t hash) const {
  for (size_t i = 0; i < kTableSize; ++i) {
    const uint16_t v = table_[(hash + i) & (kTableSize - 1)].load(std::memory_order_acquire);
    if (v == 0) return std::nullopt;  // never past an empty slot: nothing is removed
    const Entry& e = entries_[v - 1];
    if (std::string_view(e.text, e.length) == prefix) return v - 1;
  }
  return std::nullopt;
}

std::optional<uint32_t> KeyPrefixes::Learn(std::string_view prefix, uint64_t hash) {
  if (prefix.empty() || prefix.size() > kMaxPrefixLength || full()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  if (std::optional<uint32_t> id = Find(prefix, hash)) return id;  // learned meanwhile
  // The prefix's candidate in its set of kWays, else the set's least counted
  // one starts over for it.
  Candidate* set = &candidates_[((hash >> 32) % (kCandidates / kWays)) * kWays];
  Candidate* c = nullptr;
  Candidate* least = set;
  for (size_t i = 0; i < kWays; ++i) {
    if (set[i].count > 0 && set[i].hash == hash) {
      c = &set[i];
      break;
    }
    if (set[i].count < least->count) least = &set[i];
  }
  if (c == nullptr) {
    c = least;
    *c = {hash, 0};
  }
  if (++c->count < kLearnAfter) return std::nullopt;
  if (size_.load(std::memory_order_relaxed) == kMaxPrefixes) return std::nullopt;
  *c = {};
  return AddLocked(prefix, hash);
}

std::optional<uint32_t> KeyPrefixes::Teach(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > kMaxPrefixLength || full()) return std::nullopt;
  const uint64_t hash = Hash(prefix);
  absl::MutexLock lock(&mu_);
  if (std::optional<uint32_t> id = Find(prefix, hash)) return id;
  if (size_.load(std::memory_order_relaxed) == kMaxPrefixes) return std::nullopt;
  return AddLocked(prefix, hash);
}

uint32_t KeyPrefixes::AddLocked(std::string_view prefix, uint64_t hash) {
  const size_t n = size_.load(std::memory_order_relaxed);
  Entry& e = entries_[n];
  e.length = static_cast<uint8_t>(prefix.size());
  std::memcpy(e.text, prefix.data(), prefix.size());
  // The table is at most half full, so a free slot is always found.
  for (size_t i = 0;; ++i) {
    std::atomic<uint16_t>& slot = table_[(hash + i) & (kTableSize - 1)];
    if (slot.load(std::memory_order_relaxed) == 0) {
      slot.store(static_cast<uint16_t>(n + 1), std::memory_order_release);
      break;
    }
  }
  size_.store(n + 1, std::memory_order_release);
  return static_cast<uint32_t>(n);
}

std::string_view KeyPrefixes::Prefix(uint32_t id) const {
  const Entry& e = entries_[id];
  return {e.text, e.length};
}

}  // namespace tinycached::core
