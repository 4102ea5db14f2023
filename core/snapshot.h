// core/snapshot.h — warm restart: an engine's items written to a file when
// the server stops gracefully (SIGUSR1), and stored back when the next one
// starts with the same file (-e) and the same layout settings.
//
// Room: core/. The file holds items, not memory: each live item as a record
// (key, value, flags, absolute expiry, CAS), class by class and oldest first,
// so that storing the records again rebuilds every LRU in its order, and the
// tiny engine's learned prefixes before them. Nothing is kept in the file
// while the server runs: it costs no memory then and needs no RAM disk, but
// stopping takes time in proportion to the items (results/restart.md).
//
// File layout (integers little-endian):
//
//   offset 0   "tinycached warm\n"          16 bytes, the magic
//          16  format version               u32 (kFormatVersion)
//          20  0                            u32
//          24  blocks, one after another, each:
//                kind      u32   1 settings, 2 prefixes, 3 items, 4 end
//                length    u32   payload bytes
//                checksum  u64   Checksum(kind, length, payload)
//                payload   `length` bytes
//
//   settings  the text of SnapshotSettings(): restored only if it is equal
//   prefixes  per prefix: length u8, text (id order)
//   items     records until the payload ends:
//               varint key length, key, varint value length, value,
//               varint flags, varint exptime (Unix seconds; 0 = never),
//               varint CAS
//   end       u64 items written, u64 Unix time written; nothing follows it
//
// A file is used only whole: every block's checksum, every record and the
// item count are checked before the first item is stored, so a truncated or
// corrupt file gives an empty cache, never a wrong value. The file is
// removed once read (used or not), so a crash later (kill -9: no graceful
// stop) cannot bring back an older state.
#ifndef TINYCACHED_CORE_SNAPSHOT_H_
#define TINYCACHED_CORE_SNAPSHOT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/engine.h"

namespace tinycached::core {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

// The settings an engine's items are laid out by (engine, -m, slab classes,
// item layout, CAS): a restart restores only into equal settings, as
// memcached's does.
std::string SnapshotSettings(const Engine& engine);

// The checksum of a block (exposed for tests): 64 bits over its kind,
// length and payload.
uint64_t SnapshotChecksum(uint32_t kind, std::string_view payload);

struct SaveReport {
  uint64_t items = 0;
  uint64_t bytes = 0;  // file size
  double seconds = 0;
};

// Writes every live item of `engine` to `path` (through `path`.tmp, synced,
// then renamed over it; a `path` that exists and is not a regular file is
// refused). REQUIRES: engine.StopMaintenance() was called and
// nothing else uses the engine.
absl::StatusOr<SaveReport> SaveSnapshot(Engine& engine, const Clock& clock,
                                        const std::string& path);

struct RestoreReport {
  uint64_t items = 0;       // stored again
  uint64_t expired = 0;     // expired while the server was down: dropped
  uint64_t not_stored = 0;  // refused by the engine (no memory, evictions off)
  uint64_t evicted = 0;     // stored, then evicted by later ones (a smaller fit)
  double seconds = 0;
};

// Stores the items of the file at `path` into `engine` (empty; its
// maintenance may run, and should: the hash index grows as items arrive)
// in the file's order, then removes the file. `stats` count the restored
// items as stored (total_items) but no command. NotFound: no
// file; FailedPrecondition: other settings; DataLoss: truncated, corrupt or
// not a snapshot; FailedPrecondition also for a path that is not a regular
// file (left alone). In every error case nothing was stored.
absl::StatusOr<RestoreReport> RestoreSnapshot(Engine& engine, const Clock& clock,
                                              const std::string& path);

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_SNAPSHOT_H_
