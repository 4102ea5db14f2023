// core/key_prefixes.h — the tiny store's prefix dictionary: the text
// prefixes (`user:`, `views:article:`) whose keys may live in index slots,
// each under a small number.
//
// Room: core/. A bounded, append-only map between prefix texts and ids
// 0..kMaxPrefixes-1, learned from the store's traffic. The slot encoding
// (compact/tiny_slot.h) holds the id; core/tiny_store decides when to look
// a prefix up and when to teach it one.
//
// Why append-only. A slot names its key by (prefix id, number): if an id
// could be reassigned, an item stored under `user:` would come back as
// another prefix's key. So an id, once given, names its prefix for the life
// of the process; when the dictionary is full, keys of new prefixes go
// where text keys go (the overflow store), as before any prefix was learned.
//
// Learning. A prefix is learned after kLearnAfter stores that would have
// gone into a slot had it been known, counted by its candidate: one of
// kCandidates, in sets of kWays picked by the prefix's hash; a prefix with
// no candidate takes over its set's least counted one, starting from zero.
// So a stream of one-off prefixes (`session:ab12`, `session:cd34`…) churns
// candidates, not the dictionary, while a prefix that many stores share is
// learned within a few of them (up to kWays such prefixes per set at once).
//
// Memory: fixed, allocated once (about 17 KiB), outside -m like the key
// locks: kMaxPrefixes texts of up to kMaxPrefixLength bytes, an open-address
// table of 2 * kMaxPrefixes ids, the candidates.
//
// Thread safety: Find() and Prefix() take no lock and write nothing shared:
// an entry's text is written before its id is published (release) in the
// table, and never changes after. Learn() takes the dictionary's mutex.
#ifndef TINYCACHED_CORE_KEY_PREFIXES_H_
#define TINYCACHED_CORE_KEY_PREFIXES_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tinycached::core {

class KeyPrefixes {
 public:
  static constexpr size_t kMaxPrefixes = 256;     // ids fit compact::tiny::kPrefixIdBits
  static constexpr size_t kMaxPrefixLength = 48;  // longer prefixes are never learned
  static constexpr uint32_t kLearnAfter = 4;
  static constexpr size_t kCandidates = 256;
  static constexpr size_t kWays = 4;

  // The hash every call takes with its prefix (computed once per key).
  static uint64_t Hash(std::string_view prefix);

  // The id of `prefix`, if it was learned.
  std::optional<uint32_t> Find(std::string_view prefix, uint64_t hash) const;
  // Counts one store that would go into a slot under `prefix`; returns its
  // id if that learned it (or it was known already).
  std::optional<uint32_t> Learn(std::string_view prefix, uint64_t hash) ABSL_LOCKS_EXCLUDED(mu_);
  // Learns `prefix` at once (a warm restart teaches back what was learned
  // before, in id order); its id, or none if it cannot be learned.
  std::optional<uint32_t> Teach(std::string_view prefix) ABSL_LOCKS_EXCLUDED(mu_);
  // The text of a learned id.
  std::string_view Prefix(uint32_t id) const;

  size_t size() const { return size_.load(std::memory_order_acquire); }
  bool full() const { return size() == kMaxPrefixes; }

 private:
  static constexpr size_t kTableSize = 2 * kMaxPrefixes;  // a power of two
  struct Entry {
    uint8_t length = 0;
    char text[kMaxPrefixLength] = {};
  };
  struct Candidate {
    uint64_t hash = 0;
    uint32_t count = 0;
  };

  // Appends a prefix not in the table. REQUIRES: mu_, not full.
  uint32_t AddLocked(std::string_view prefix, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::array<Entry, kMaxPrefixes> entries_{};
  // 0: empty; id + 1 otherwise. Published with release after the entry.
  std::array<std::atomic<uint16_t>, kTableSize> table_{};
  std::atomic<size_t> size_{0};
  absl::Mutex mu_;
  std::array<Candidate, kCandidates> candidates_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_KEY_PREFIXES_H_
