#include "server/admin.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"
#include "server/context.h"

namespace tinycached::server {
namespace {

using protocol::Tokens;

constexpr std::string_view kError = "ERROR";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";
// memcached's MAX_NUMBER_OF_SLAB_CLASSES - 1: the class ids its commands
// accept. Slab tables of more classes (-o slab_classes=) accept theirs too.
constexpr int kMemcachedMaxClass = 63;

void Line(std::string* out, std::string_view line) { out->append(line).append("\r\n"); }

int ClassCount(const ServerContext& ctx) {
  return static_cast<int>(ctx.store->layout_report().classes.size());
}

int MaxClassId(const ServerContext& ctx) { return std::max(kMemcachedMaxClass, ClassCount(ctx)); }

// memcached's uriencode(): unreserved characters as they are, the rest %XX.
void AppendUriEncoded(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

// "all" (or "hash" for metadump), or a comma separated list of class ids
// (empty pieces skipped, as memcached's strtok). False on a bad id.
bool ParseClasses(const ServerContext& ctx, std::string_view arg, bool hash_ok,
                  std::vector<int>* classes) {
  const int max_id = MaxClassId(ctx);
  if (arg == "all" || (hash_ok && arg == "hash")) {
    // The tiny engine's inline items (class 0) first, then every slab class.
    if (ctx.store->kind() == core::EngineKind::kTiny) classes->push_back(0);
    for (int i = 1; i <= ClassCount(ctx); ++i) classes->push_back(i);
    return true;
  }
  size_t pos = 0;
  while (pos <= arg.size()) {
    const size_t comma = std::min(arg.find(',', pos), arg.size());
    const std::string_view piece = arg.substr(pos, comma - pos);
    pos = comma + 1;
    if (piece.empty()) continue;
    uint32_t id = 0;
    if (!protocol::ParseUint32(piece, &id) || id < 1 || static_cast<int>(id) > max_id) {
      return false;
    }
    classes->push_back(static_cast<int>(id));
  }
  return true;
}

}  // namespace

void PrefixStats::Record(std::string_view key, Event e) {
  const size_t end = key.find(delimiter_);
  if (end == std::string_view::npos) return;  // no prefix: not counted (memcached)
  const std::string_view prefix = key.substr(0, end);
  absl::MutexLock lock(&mu_);
  auto found = counts_.find(absl::string_view(prefix.data(), prefix.size()));
  if (found == counts_.end()) {
    if (counts_.size() >= kMaxPrefixes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    found = counts_.emplace(std::string(prefix), Counts{}).first;
  }
  Counts& c = found->second;
  switch (e) {
    case kGetHit:
      ++c.hits;
      ++c.gets;
      break;
    case kGetMiss:
      ++c.gets;
      break;
    case kSet:
      ++c.sets;
      break;
    case kDelete:
      ++c.deletes;
      break;
  }
}

void PrefixStats::Dump(std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [prefix, c] : counts_) {
    out->append("PREFIX ").append(prefix).append(" get ");
    protocol::AppendDecimal(out, c.gets);
    out->append(" hit ");
    protocol::AppendDecimal(out, c.hits);
    out->append(" set ");
    protocol::AppendDecimal(out, c.sets);
    out->append(" del ");
    protocol::AppendDecimal(out, c.deletes);
    out->append("\r\n");
  }
  out->append("END\r\n");
}

void PrefixStats::Reset() {
  absl::MutexLock lock(&mu_);
  counts_.clear();
  dropped_.store(0, std::memory_order_relaxed);
}

size_t PrefixStats::prefixes() const {
  absl::MutexLock lock(&mu_);
  return counts_.size();
}

// stats detail on|off|dump (anything after the subcommand is ignored).
void ProcessStatsDetail(ServerContext& ctx, const Tokens& t, std::string* out) {
  const std::string_view what = t.count >= 3 ? t[2] : std::string_view();
  if (what == "on") {
    ctx.prefix_stats.SetEnabled(true);
    return Line(out, "OK");
  }
  if (what == "off") {
    ctx.prefix_stats.SetEnabled(false);
    return Line(out, "OK");
  }
  if (what == "dump") return ctx.prefix_stats.Dump(out);
  Line(out, "CLIENT_ERROR usage: stats detail on|off|dump");
}

// stats cachedump <class> <limit>: "ITEM <key> [<value bytes> b; <exptime> s]"
// per item, most recently used first, then END; limit 0 lists all (within
// kCachedumpMaxBytes).
void ProcessCachedump(ServerContext& ctx, const Tokens& t, std::string* out) {
  if (!ctx.settings.dump_enabled) return Line(out, "CLIENT_ERROR stats cachedump not allowed");
  if (t.ntokens() < 5) return Line(out, "CLIENT_ERROR bad command line");
  uint32_t id = 0;
  uint32_t limit = 0;
  if (!protocol::ParseUint32(t[2], &id) || !protocol::ParseUint32(t[3], &limit)) {
    return Line(out, kBadFormat);
  }
  if (static_cast<int>(id) > MaxClassId(ctx)) return Line(out, "CLIENT_ERROR Illegal slab id");
  const int64_t started = ctx.clock->UnixNow() - ctx.clock->Now();
  const size_t start = out->size();
  bool full = false;
  ctx.store->VisitItems(
      static_cast<int>(id), limit == 0 ? SIZE_MAX : limit, [&](const core::ItemInfo& item) {
        if (full) return;
        const std::string line =
            absl::StrFormat("ITEM %s [%d b; %d s]\r\n", item.key, item.value_bytes,
                            item.exptime == 0 ? 0 : started + item.exptime);
        // memcached keeps room for "END\r\n" within its 2 MB.
        if (out->size() - start + line.size() + 6 > kCachedumpMaxBytes) {
          full = true;
          return;
        }
        out->append(line);
      });
  out->append("END\r\n");
}

void ProcessLruCrawler(ServerContext& ctx, const Tokens& t, bool replies_held, std::string* out) {
  const size_t ntokens = t.ntokens();
  CrawlerSettings& crawler = ctx.crawler;
  const std::string_view sub = t.count >= 2 ? t[1] : std::string_view();
  if (ntokens == 4 && sub == "crawl") {
    if (!crawler.enabled.load()) return Line(out, "CLIENT_ERROR lru crawler disabled");
    std::vector<int> classes;
    if (!ParseClasses(ctx, t[2], /*hash_ok=*/false, &classes)) {
      return Line(out, "BADCLASS invalid class id");
    }
    // The crawl runs in the background, as memcached's: OK once it started.
    if (ctx.store->StartCrawl(classes) == core::CrawlStart::kBusy) {
      return Line(out, "BUSY currently processing crawler request");
    }
    crawler.starts.fetch_add(1, std::memory_order_relaxed);
    return Line(out, "OK");
  }
  if (ntokens == 4 && sub == "metadump") {
    if (!crawler.enabled.load()) return Line(out, "CLIENT_ERROR lru crawler disabled");
    if (!ctx.settings.dump_enabled) return Line(out, "ERROR metadump not allowed");
    // memcached's crawler thread writes the dump to the socket itself, so it
    // will not start while the connection holds earlier replies.
    if (replies_held) return Line(out, "ERROR cannot pipeline other commands before metadump");
    std::vector<int> classes;
    if (!ParseClasses(ctx, t[2], /*hash_ok=*/true, &classes)) {
      return Line(out, "BADCLASS invalid class id");
    }
    // memcached counts a metadump as a crawler start (its crawler walks the
    // LRUs for it); here the walk is this thread's, done before the reply.
    crawler.starts.fetch_add(1, std::memory_order_relaxed);
    const int64_t started = ctx.clock->UnixNow() - ctx.clock->Now();
    size_t left = kMetadumpMaxItems;
    for (int cls : classes) {
      if (left == 0) break;
      left -= ctx.store->VisitItems(cls, left, [&](const core::ItemInfo& item) {
        out->append("key=");
        AppendUriEncoded(out, item.key);
        // exp=-1: never expires; la=0: the layout keeps no access time.
        out->append(absl::StrFormat(" exp=%d la=%d cas=%d fetch=%s cls=%d size=%d\n",
                                    item.exptime == 0 ? int64_t{-1} : started + item.exptime,
                                    item.last_access == 0 ? int64_t{0} : started + item.last_access,
                                    item.cas, item.fetched ? "yes" : "no", item.cls,
                                    item.total_bytes));
      });
    }
    return Line(out, "END");
  }
  if (ntokens == 3 && sub == "enable") {
    // memcached cannot start a second crawler thread.
    if (crawler.enabled.exchange(true))
      return Line(out, "ERROR failed to start lru crawler thread");
    return Line(out, "OK");
  }
  if (ntokens == 3 && sub == "disable") {
    crawler.enabled.store(false);
    return Line(out, "OK");
  }
  if (ntokens == 4 && sub == "sleep") {
    uint32_t us = 0;
    if (!protocol::ParseUint32(t[2], &us)) return Line(out, kBadFormat);
    if (us > 1000000) return Line(out, "CLIENT_ERROR sleep must be one second or less");
    crawler.sleep_us.store(us);
    return Line(out, "OK");
  }
  if (ntokens == 4 && sub == "tocrawl") {
    uint32_t n = 0;
    if (!protocol::ParseUint32(t[2], &n)) return Line(out, kBadFormat);
    crawler.tocrawl.store(n);
    return Line(out, "OK");
  }
  Line(out, kError);
}

void ProcessCacheMemlimit(ServerContext& ctx, const Tokens& t, bool noreply, std::string* out) {
  std::string reply;
  uint32_t mb = 0;
  if (!protocol::ParseUint32(t[1], &mb)) {
    reply = "ERROR";
  } else if (mb < 8) {
    reply = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m";
  } else if (mb > 1000000000) {
    reply = "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes";
  } else {
    ctx.store->SetMemoryLimit(static_cast<size_t>(mb) << 20);
    reply = "OK";
  }
  if (!noreply) Line(out, reply);
}

bool ProcessWatch(ServerContext& ctx, const Tokens& t, bool replies_held, std::string* out) {
  if (!ctx.settings.watch_enabled) {
    Line(out, "CLIENT_ERROR watch commands not allowed");
    return false;
  }
  if (replies_held) {
    Line(out, "ERROR cannot pipeline other commands before watch");
    return false;
  }
  static constexpr std::string_view kEvents[] = {"rawcmds",   "fetchers",   "mutations",
                                                 "evictions", "connevents", "sysevents"};
  for (size_t i = 1; i < t.count; ++i) {
    if (std::find(std::begin(kEvents), std::end(kEvents), t[i]) == std::end(kEvents)) {
      Line(out, kError);
      return false;
    }
  }
  Line(out, "OK");
  return true;
}

}  // namespace tinycached::server
