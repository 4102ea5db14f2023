// server/settings.h — everything the command line sets.
#ifndef TINYCACHED_SERVER_SETTINGS_H_
#define TINYCACHED_SERVER_SETTINGS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/engine.h"
#include "server/presets.h"

// The preset a server starts with when no -o preset= is given: CMake's
// TINYCACHED_DEFAULT_PRESET (checked there against server/presets.cc).
#ifndef TINYCACHED_DEFAULT_PRESET
#define TINYCACHED_DEFAULT_PRESET "stock"
#endif

namespace tinycached::server {

// The version the protocol reports: the memcached release whose replies we
// reproduce, then ours.
inline constexpr char kVersion[] = "1.6.18-tinycached-0.1.0";

// -B: the protocol a connection speaks. kAuto picks per connection from its
// first byte (0x80, the binary request magic, means binary).
enum class Protocol { kAuto, kAscii, kBinary };

struct Settings {
  int port = 11211;                                // -p
  int udp_port = 0;                                // -U (0: no UDP, memcached's default)
  std::string listen = "127.0.0.1";                // -l
  size_t memory_mb = 64;                           // -m
  int maxconns = 1024;                             // -c
  int threads = 4;                                 // -t
  std::string preset = TINYCACHED_DEFAULT_PRESET;  // -o preset= (or layout=)
  LayoutSettings layout;              // the preset's knobs after -n -f -C and -o overrides
  size_t item_size_max = 1 << 20;     // -I
  bool evict = true;                  // -M turns off
  int verbose = 0;                    // -v, -vv, -vvv
  bool daemonize = false;             // -d
  std::string pid_file;               // -P
  std::string user;                   // -u
  std::string memory_file;            // -e: warm restart file (core/snapshot.h)
  int hashpower = 0;                  // -o hashpower= (0: default 16)
  size_t slab_chunk_max = 0;          // -o slab_chunk_max= (0: page size / 2)
  bool slab_reassign = true;          // -o slab_reassign / no_slab_reassign
  int slab_automove = 1;              // -o slab_automove=0|1|2
  double slab_automove_ratio = 0.8;   // -o slab_automove_ratio=
  int slab_automove_window = 30;      // -o slab_automove_window=
  size_t read_buf_mem_limit_mb = 64;  // -o read_buf_mem_limit= (0: unlimited)
  bool enable_shutdown = false;       // -A: the "shutdown" command stops the server
  bool flush_enabled = true;          // -F turns off: flush_all is refused
  int backlog = 1024;                 // -b: the listen() queue
  bool lock_memory = false;           // -k: mlockall() at start
  bool coredumps = false;             // -r: raise the core file limit to its maximum
  std::string unix_socket;            // -s: listen on this unix socket instead of TCP
  int unix_mask = 0700;               // -a: the socket file's permissions
  int reqs_per_event = 20;            // -R: commands a connection runs per event before yielding
  int idle_timeout = 0;               // -o idle_timeout=: close connections idle longer (0: never)
  char prefix_delimiter = ':';        // -D: key prefix delimiter of "stats detail"
  bool detail_enabled = false;        // -D turns on "stats detail" collection at start
  bool dump_enabled = true;           // -X turns off: stats cachedump, lru_crawler metadump
  bool watch_enabled = true;          // -W turns off: watch
  bool lru_crawler = true;            // -o lru_crawler / no_lru_crawler
  bool lru_maintainer = true;  // -o lru_maintainer / no_lru_maintainer: the tick's tail reclaim
  uint32_t lru_crawler_sleep = 100;     // -o lru_crawler_sleep= (microseconds; reported only)
  uint32_t lru_crawler_tocrawl = 0;     // -o lru_crawler_tocrawl= (reported only)
  Protocol protocol = Protocol::kAuto;  // -B ascii|binary|auto (-S alone: binary)
  bool sasl = false;                    // -S: binary connections must authenticate (SASL PLAIN)
  // -S's password file of "user:password" lines: -o sasl_pwdb=<file>, else
  // the environment's MEMCACHED_SASL_PWDB (main.cc reads it at start).
  std::string sasl_pwdb;

  core::StoreOptions StoreOptions() const {
    core::StoreOptions o;
    o.memory_limit = memory_mb << 20;
    o.slabs.min_space = layout.min_space;
    o.slabs.factor = layout.factor;
    o.slabs.align = layout.align;
    o.slabs.max_classes = layout.max_classes;
    o.slabs.item_size_max = item_size_max;
    o.slabs.chunk_max = slab_chunk_max;
    o.cas_enabled = layout.cas;
    o.layout.refs = layout.refs;
    o.layout.pack_keys = layout.pack_keys;
    o.layout.header = layout.header;
    o.evict = evict;
    o.hashpower_init = hashpower > 0 ? hashpower : 16;
    o.slab_reassign = slab_reassign;
    o.automove = static_cast<core::Automove>(slab_automove);
    o.automove_ratio = slab_automove_ratio;
    o.automove_window = slab_automove_window;
    o.engine = layout.engine;
    return o;
  }
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_SETTINGS_H_
