#include "server/stats_reply.h"

#include <event2/event.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/str_format.h"

namespace tinycached::server {
namespace {

void Stat(std::string* out, std::string_view name, std::string_view value) {
  out->append("STAT ").append(name).append(" ").append(value).append("\r\n");
}
void Stat(std::string* out, std::string_view name, const char* value) {
  Stat(out, name, std::string_view(value));
}
void Stat(std::string* out, std::string_view name, const std::string& value) {
  Stat(out, name, std::string_view(value));
}
template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
void Stat(std::string* out, std::string_view name, T value) {
  Stat(out, name, std::string_view(std::to_string(value)));
}

void End(std::string* out) { out->append("END\r\n"); }

// -B as memcached's "stats settings" names it.
const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kAscii:
      return "ascii";
    case Protocol::kBinary:
      return "binary";
    case Protocol::kAuto:
      break;
  }
  return "auto-negotiate";
}

using ThreadCounter = core::Counter core::ThreadStats::*;
using ClassCounter = core::Counter core::ClassCounters::*;

// Sums one counter over every worker thread.
uint64_t Sum(const ServerContext& ctx, ThreadCounter counter) {
  uint64_t total = 0;
  for (const auto& s : ctx.thread_stats) total += ((*s).*counter).Get();
  return total;
}

// Sums a per-class counter over threads, for one class or (id < 0) all.
uint64_t Sum(const ServerContext& ctx, ClassCounter counter, int id = -1) {
  uint64_t total = 0;
  for (const auto& s : ctx.thread_stats) {
    if (id >= 0) {
      total += (s->per_class[id].*counter).Get();
      continue;
    }
    for (const core::ClassCounters& c : s->per_class) total += (c.*counter).Get();
  }
  return total;
}

std::string Seconds(const timeval& tv) {
  return absl::StrFormat("%d.%06d", static_cast<int64_t>(tv.tv_sec),
                         static_cast<int64_t>(tv.tv_usec));
}

}  // namespace

void AppendGeneralStats(ServerContext& ctx, std::string* out) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const core::StoreTotals totals = ctx.store->Totals();
  using TS = core::ThreadStats;
  using CC = core::ClassCounters;

  Stat(out, "pid", static_cast<int64_t>(getpid()));
  Stat(out, "uptime", ctx.clock->Now() - 60);  // as memcached: the clock starts 62 s back
  Stat(out, "time", ctx.clock->UnixNow());
  Stat(out, "version", kVersion);
  Stat(out, "libevent", event_get_version());
  Stat(out, "pointer_size", static_cast<int>(8 * sizeof(void*)));
  Stat(out, "rusage_user", Seconds(usage.ru_utime));
  Stat(out, "rusage_system", Seconds(usage.ru_stime));
  Stat(out, "max_connections", ctx.settings.maxconns);
  Stat(out, "curr_connections", ctx.curr_conns.load());
  Stat(out, "total_connections", ctx.total_conns.load());
  Stat(out, "rejected_connections", ctx.rejected_conns.load());
  Stat(out, "connection_structures", ctx.conn_structures.load());
  Stat(out, "reserved_fds", ReservedFds(ctx.settings));
  Stat(out, "cmd_get", Sum(ctx, &TS::get_cmds));
  Stat(out, "cmd_set", Sum(ctx, &CC::cmd_set));
  Stat(out, "cmd_flush", Sum(ctx, &TS::flush_cmds));
  Stat(out, "cmd_touch", Sum(ctx, &TS::touch_cmds));
  Stat(out, "cmd_meta", Sum(ctx, &TS::meta_cmds));
  Stat(out, "get_hits", Sum(ctx, &CC::get_hits));
  Stat(out, "get_misses", Sum(ctx, &TS::get_misses));
  Stat(out, "get_expired", Sum(ctx, &TS::get_expired));
  Stat(out, "get_flushed", Sum(ctx, &TS::get_flushed));
  Stat(out, "delete_misses", Sum(ctx, &TS::delete_misses));
  Stat(out, "delete_hits", Sum(ctx, &CC::delete_hits));
  Stat(out, "incr_misses", Sum(ctx, &TS::incr_misses));
  Stat(out, "incr_hits", Sum(ctx, &CC::incr_hits));
  Stat(out, "decr_misses", Sum(ctx, &TS::decr_misses));
  Stat(out, "decr_hits", Sum(ctx, &CC::decr_hits));
  Stat(out, "cas_misses", Sum(ctx, &TS::cas_misses));
  Stat(out, "cas_hits", Sum(ctx, &CC::cas_hits));
  Stat(out, "cas_badval", Sum(ctx, &CC::cas_badval));
  Stat(out, "touch_hits", Sum(ctx, &CC::touch_hits));
  Stat(out, "touch_misses", Sum(ctx, &TS::touch_misses));
  Stat(out, "store_too_large", Sum(ctx, &TS::store_too_large));
  Stat(out, "store_no_memory", Sum(ctx, &TS::store_no_memory));
  Stat(out, "auth_cmds", Sum(ctx, &TS::auth_cmds));
  Stat(out, "auth_errors", Sum(ctx, &TS::auth_errors));
  // memcached lists idle_kicks only when -o idle_timeout is set.
  if (ctx.settings.idle_timeout > 0) Stat(out, "idle_kicks", ctx.idle_kicks.load());
  Stat(out, "bytes_read", Sum(ctx, &TS::bytes_read));
  Stat(out, "bytes_written", Sum(ctx, &TS::bytes_written));
  Stat(out, "limit_maxbytes", ctx.store->memory_limit());
  Stat(out, "accepting_conns", 1);
  // Past -c a new connection is told and closed; the listener is never disabled.
  Stat(out, "listen_disabled_num", 0);
  Stat(out, "time_in_listen_disabled_us", 0);
  Stat(out, "threads", ctx.settings.threads);
  Stat(out, "conn_yields", ctx.conn_yields.load());
  const core::EngineStats engine = ctx.store->engine_stats();
  Stat(out, "hash_power_level", engine.hash_power_level);
  Stat(out, "hash_bytes", engine.hash_bytes);
  Stat(out, "hash_is_expanding", engine.hash_expanding ? 1 : 0);
  // The tiny engine: items held in its index slots, and the slot table's
  // bytes (inside limit_maxbytes); index_bytes is every index byte.
  if (engine.kind == core::EngineKind::kTiny) {
    Stat(out, "inline_items", engine.inline_items);
    Stat(out, "overflow_items", totals.curr_items - engine.inline_items);
    Stat(out, "inline_evictions", engine.inline_evictions);
    Stat(out, "inline_table_bytes", engine.inline_table_bytes);
    Stat(out, "tiny_prefixes", engine.prefixes);
    Stat(out, "tiny_prefix_hits", Sum(ctx, &TS::prefix_hits));
    Stat(out, "tiny_prefix_misses", Sum(ctx, &TS::prefix_misses));
  }
  Stat(out, "index_bytes", engine.hash_bytes + engine.inline_table_bytes);
  const core::MoverStats mover = ctx.store->mover_stats();
  Stat(out, "slab_reassign_rescues", mover.rescues);
  Stat(out, "slab_reassign_chunk_rescues", 0);  // items are never chunked
  Stat(out, "slab_reassign_evictions_nomem", mover.evictions_nomem);
  Stat(out, "slab_reassign_inline_reclaim", 0);
  Stat(out, "slab_reassign_busy_items", mover.busy_items);
  Stat(out, "slab_reassign_busy_deletes", 0);
  Stat(out, "slab_reassign_running", mover.running ? 1 : 0);
  Stat(out, "slabs_moved", mover.slabs_moved);
  // As memcached: only while the crawler is enabled.
  if (ctx.crawler.enabled.load()) {
    Stat(out, "lru_crawler_running", engine.crawl_running ? 1 : 0);
    Stat(out, "lru_crawler_starts", ctx.crawler.starts.load());
  }
  Stat(out, "bytes", totals.bytes);
  Stat(out, "curr_items", totals.curr_items);
  Stat(out, "total_items", totals.total_items);
  Stat(out, "slab_global_page_pool", mover.global_page_pool);
  Stat(out, "expired_unfetched", totals.expired_unfetched);
  Stat(out, "evicted_unfetched", totals.evicted_unfetched);
  Stat(out, "evictions", totals.evictions);
  Stat(out, "reclaimed", totals.reclaimed);
  Stat(out, "crawler_reclaimed", totals.crawler_reclaimed);
  Stat(out, "crawler_items_checked", totals.crawler_items_checked);
  // An eviction skips an item whose stripe is busy; it never waits on an item's refcount.
  Stat(out, "lrutail_reflocked", 0);
  End(out);
}

void AppendSettingsStats(ServerContext& ctx, std::string* out) {
  const Settings& s = ctx.settings;
  const core::StoreOptions& o = ctx.store->options();
  const core::LayoutReport layout = ctx.store->layout_report();
  Stat(out, "maxbytes", ctx.store->memory_limit());
  Stat(out, "maxconns", s.maxconns);
  Stat(out, "tcpport", s.port);
  Stat(out, "udpport", s.udp_port);
  Stat(out, "inter", s.listen.empty() ? std::string("NULL") : s.listen);
  Stat(out, "verbosity", ctx.verbosity.load());
  Stat(out, "oldest", ctx.store->oldest_live());
  Stat(out, "evictions", o.evict ? "on" : "off");
  Stat(out, "domain_socket", s.unix_socket.empty() ? std::string("NULL") : s.unix_socket);
  Stat(out, "umask", absl::StrFormat("%o", s.unix_mask));
  Stat(out, "shutdown_command", s.enable_shutdown ? "yes" : "no");
  Stat(out, "growth_factor", absl::StrFormat("%.2f", s.layout.factor));
  Stat(out, "chunk_size", s.layout.min_space);
  Stat(out, "num_threads", s.threads);
  Stat(out, "num_threads_per_udp", s.threads);  // each worker serves every UDP socket
  Stat(out, "stat_key_prefix", std::string(1, s.prefix_delimiter));
  Stat(out, "detail_enabled", ctx.prefix_stats.enabled() ? "yes" : "no");
  Stat(out, "reqs_per_event", s.reqs_per_event);
  Stat(out, "cas_enabled", o.cas_enabled ? "yes" : "no");
  Stat(out, "tcp_backlog", s.backlog);
  Stat(out, "binding_protocol", ProtocolName(s.protocol));
  Stat(out, "auth_enabled_sasl", s.sasl ? "yes" : "no");
  Stat(out, "auth_enabled_ascii", "no");  // -Y is refused at start
  Stat(out, "item_size_max", o.slabs.item_size_max);
  Stat(out, "maxconns_fast", "yes");  // past -c a new connection is told and closed
  Stat(out, "hashpower_init", s.hashpower);
  Stat(out, "slab_reassign", o.slab_reassign ? "yes" : "no");
  Stat(out, "slab_automove", static_cast<int>(ctx.store->automove()));
  Stat(out, "slab_automove_ratio", absl::StrFormat("%.2f", ctx.store->automove_ratio()));
  Stat(out, "slab_automove_window", o.automove_window);
  Stat(out, "slab_chunk_max", layout.chunk_max);
  Stat(out, "lru_crawler", ctx.crawler.enabled.load() ? "yes" : "no");
  Stat(out, "lru_crawler_sleep", ctx.crawler.sleep_us.load());
  Stat(out, "lru_crawler_tocrawl", ctx.crawler.tocrawl.load());
  Stat(out, "flush_enabled", s.flush_enabled ? "yes" : "no");
  Stat(out, "dump_enabled", s.dump_enabled ? "yes" : "no");
  Stat(out, "hash_algorithm", "absl");
  // The once-a-second reclaim of dead items at the LRU tails.
  Stat(out, "lru_maintainer_thread", s.lru_maintainer ? "yes" : "no");
  Stat(out, "idle_timeout", s.idle_timeout);
  Stat(out, "read_buf_mem_limit", s.read_buf_mem_limit_mb);
  // -e, memcached's last setting; "(null)" without one, as memcached prints it.
  Stat(out, "memory_file", s.memory_file.empty() ? std::string("(null)") : s.memory_file);
  // tinycached's own knobs.
  // The preset named, then every knob as it is after -n -f -C and overrides.
  Stat(out, "item_layout", s.preset);
  Stat(out, "item_refs", std::string(RefModeName(s.layout.refs)));
  Stat(out, "item_ref_bytes", layout.ref_bytes);
  Stat(out, "item_header", std::string(HeaderName(s.layout.header)));
  Stat(out, "item_header_bytes", layout.header_bytes);
  Stat(out, "item_key_packing", s.layout.pack_keys ? "base250" : "text");
  Stat(out, "item_store", std::string(core::EngineKindName(ctx.store->kind())));
  Stat(out, "chunk_align", s.layout.align);
  Stat(out, "slab_page_size", layout.page_size);
  Stat(out, "slab_classes", layout.classes.size());
  End(out);
}

void AppendItemsStats(ServerContext& ctx, std::string* out) {
  for (const core::ClassSnapshot& c : ctx.store->SnapshotClasses()) {
    if (c.items == 0 && c.evicted == 0 && c.outofmemory == 0) continue;
    auto item = [&](std::string_view name, uint64_t v) {
      Stat(out, "items:" + std::to_string(c.id) + ":" + std::string(name), v);
    };
    item("number", c.items);
    item("age", c.age);
    item("mem_requested", c.bytes);
    item("evicted", c.evicted);
    item("evicted_nonzero", c.evicted_nonzero);
    item("evicted_time", c.evicted_time);
    item("outofmemory", c.outofmemory);
    item("tailrepairs", 0);
    item("reclaimed", c.reclaimed);
    item("expired_unfetched", c.expired_unfetched);
    item("evicted_unfetched", c.evicted_unfetched);
    item("crawler_reclaimed", c.crawler_reclaimed);
    item("crawler_items_checked", c.crawler_items_checked);
  }
  End(out);
}

void AppendSlabsStats(ServerContext& ctx, std::string* out) {
  int active = 0;
  for (const core::ClassSnapshot& c : ctx.store->SnapshotClasses()) {
    if (c.pages == 0) continue;
    ++active;
    auto slab = [&](std::string_view name, uint64_t v) {
      Stat(out, std::to_string(c.id) + ":" + std::string(name), v);
    };
    auto per_class = [&](ClassCounter counter) { return Sum(ctx, counter, c.id); };
    using CC = core::ClassCounters;
    slab("chunk_size", c.chunk_size);
    slab("chunks_per_page", c.per_page);
    slab("total_pages", c.pages);
    slab("total_chunks", c.pages * c.per_page);
    slab("used_chunks", c.pages * c.per_page - c.free_chunks);
    slab("free_chunks", c.free_chunks);
    slab("free_chunks_end", 0);
    slab("get_hits", per_class(&CC::get_hits));
    slab("cmd_set", per_class(&CC::cmd_set));
    slab("delete_hits", per_class(&CC::delete_hits));
    slab("incr_hits", per_class(&CC::incr_hits));
    slab("decr_hits", per_class(&CC::decr_hits));
    slab("cas_hits", per_class(&CC::cas_hits));
    slab("cas_badval", per_class(&CC::cas_badval));
    slab("touch_hits", per_class(&CC::touch_hits));
  }
  Stat(out, "active_slabs", active);
  // memcached counts the pages in its global pool as malloced (they stay
  // charged to -m there); ours are handed back but still reserved for classes.
  const size_t pool_bytes =
      ctx.store->mover_stats().global_page_pool * ctx.store->layout_report().page_size;
  Stat(out, "total_malloced", ctx.store->Totals().malloced + pool_bytes);
  End(out);
}

void AppendSizesStats(ServerContext&, std::string* out) {
  Stat(out, "sizes_status", "disabled");
  End(out);
}

void AppendConnsStats(ServerContext& ctx, std::string* out) {
  const core::RelTime now = ctx.clock->Now();
  struct Row {
    int fd;
    bool udp;
    std::string addr, listen_addr;
    const char* state;
    core::RelTime idle;
  };
  std::vector<Row> rows;
  for (const Listener& l : ctx.listeners) {
    rows.push_back({l.fd, false, l.addr, "", "conn_listening", 0});
  }
  {
    absl::MutexLock lock(&ctx.conns_mu);
    for (const auto& [fd, info] : ctx.conns) {
      const core::RelTime last = info->last_cmd_time.load(std::memory_order_relaxed);
      rows.push_back({fd, info->udp, info->addr,
                      info->listen_addr != nullptr ? *info->listen_addr : std::string(),
                      info->state.load(), now > last ? now - last : 0});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.fd < b.fd; });
  for (const Row& r : rows) {
    const std::string prefix = std::to_string(r.fd) + ":";
    // memcached 1.6.18 heads a UDP socket's lines so (and, while it waits for
    // a datagram, shows its own address and no listen_addr).
    if (r.udp) Stat(out, prefix + "UDP", "UDP");
    Stat(out, prefix + "addr", r.addr);
    if (!r.listen_addr.empty()) Stat(out, prefix + "listen_addr", r.listen_addr);
    Stat(out, prefix + "state", r.state);
    Stat(out, prefix + "secs_since_last_cmd", r.idle);
  }
  End(out);
}

void ResetAllStats(ServerContext& ctx) {
  for (const auto& s : ctx.thread_stats) s->Reset();
  ctx.store->ResetStats();
  ctx.total_conns.store(0);
  ctx.rejected_conns.store(0);
  ctx.conn_yields.store(0);
  ctx.idle_kicks.store(0);
  ctx.crawler.starts.store(0);
  ctx.prefix_stats.Reset();
}

}  // namespace tinycached::server
