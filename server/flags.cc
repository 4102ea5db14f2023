#include "server/flags.h"

#include <getopt.h>

#include <cstdlib>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/presets.h"

namespace tinycached::server {
namespace {

absl::Status Bad(absl::string_view msg) { return absl::InvalidArgumentError(msg); }

template <typename T>
bool ParseInt(absl::string_view s, T* out) {
  return absl::SimpleAtoi(s, out);
}

// A port of -p, -U or an -l entry: 1..65535, 0 (-p, -U: that transport is
// off), or -1, memcached's way to ask for a port the kernel picks (bound as
// port 0). memcached reads any integer and fails at bind on other negatives.
bool ParsePort(absl::string_view s, int* out) {
  int v = 0;
  if (!absl::SimpleAtoi(s, &v) || v < -1 || v > 65535) return false;
  *out = v;
  return true;
}

// "1048576", "1024k", "1m" (memcached's -I and slab_chunk_max syntax).
bool ParseSize(absl::string_view s, size_t* out) {
  size_t mult = 1;
  if (!s.empty()) {
    const char unit = s.back();
    if (unit == 'k' || unit == 'K') mult = size_t{1} << 10;
    if (unit == 'm' || unit == 'M') mult = size_t{1} << 20;
    if (unit == 'g' || unit == 'G') mult = size_t{1} << 30;
    if (mult != 1) s.remove_suffix(1);
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v > (uint64_t{1} << 40)) return false;
  *out = static_cast<size_t>(v * mult);
  return true;
}

// Layout knobs given one by one; applied over the preset after parsing, so
// their order against -o preset= does not matter.
struct Overrides {
  std::optional<core::RefMode> refs;
  std::optional<size_t> align, min_space;
  std::optional<bool> cas, pack_keys;
  std::optional<compact::HeaderStyle> header;
  std::optional<double> factor;
  std::optional<int> max_classes;
};

std::string PresetNames() {
  std::string names;
  for (const Preset& p : Presets()) {
    if (!names.empty()) names += ", ";
    names += p.name;
  }
  return names;
}

// memcached 1.6.18 options that name a mechanism tinycached does not have.
// kIgnored: the option only tunes that mechanism, so it is accepted and does
// nothing (a config written for memcached still starts). kRefused: the option
// asks for a feature that is not built; starting without it would silently
// change what the user gets, so the server refuses with one line saying why.
enum class Foreign { kIgnored, kRefused };

struct ForeignFlag {
  char short_name;
  const char* long_name;
  int has_arg;
  Foreign kind;
  const char* why;
};

constexpr ForeignFlag kForeignFlags[] = {
    {'Y', "auth-file", required_argument, Foreign::kRefused,
     "ASCII authentication is not built yet"},
    {'Z', "enable-ssl", no_argument, Foreign::kRefused, "TLS is not built"},
    {'L', "enable-largepages", no_argument, Foreign::kIgnored,
     "pages are committed as they are used, not preallocated"},
    {'N', "napi_ids", required_argument, Foreign::kIgnored,
     "connections are not steered to threads by NAPI id"},
};

const ForeignFlag* FindForeignFlag(int c) {
  for (const ForeignFlag& f : kForeignFlags) {
    if (f.short_name == c) return &f;
  }
  return nullptr;
}

struct ForeignSuboption {
  const char* name;  // a trailing '*' matches any name with that prefix
  Foreign kind;
  const char* why;
};

constexpr ForeignSuboption kForeignSuboptions[] = {
    {"maxconns_fast", Foreign::kIgnored, "past -c a new connection is always told and closed"},
    {"no_maxconns_fast", Foreign::kRefused,
     "holding new connections back past -c is not built (they are told and closed)"},
    {"tail_repair_time", Foreign::kIgnored, "there is no repair of leaked item references"},
    {"hot_lru_pct", Foreign::kIgnored, "one LRU per class, no hot/warm/cold segments"},
    {"warm_lru_pct", Foreign::kIgnored, "one LRU per class, no hot/warm/cold segments"},
    {"hot_max_factor", Foreign::kIgnored, "one LRU per class, no hot/warm/cold segments"},
    {"warm_max_factor", Foreign::kIgnored, "one LRU per class, no hot/warm/cold segments"},
    {"temporary_ttl", Foreign::kIgnored, "one LRU per class, no temporary LRU"},
    {"watcher_logbuf_size", Foreign::kIgnored, "watch sends no log lines"},
    {"worker_logbuf_size", Foreign::kIgnored, "watch sends no log lines"},
    {"track_sizes", Foreign::kIgnored, "stats sizes is not built"},
    {"modern", Foreign::kIgnored, "memcached 1.6.18's modern set is empty"},
    {"sock_cookie_id", Foreign::kIgnored, "sockets carry no SO_MARK cookie"},
    {"slab_automove_freeratio", Foreign::kIgnored, "it tunes extstore's automover"},
    {"no_hashexpand", Foreign::kRefused, "a hash index that never grows is not built"},
    {"ext_*", Foreign::kRefused, "extstore is not built"},
    {"ssl_*", Foreign::kRefused, "TLS is not built"},
};

const ForeignSuboption* FindForeignSuboption(absl::string_view key) {
  for (const ForeignSuboption& f : kForeignSuboptions) {
    const absl::string_view name = f.name;
    if (name.back() == '*' ? absl::StartsWith(key, name.substr(0, name.size() - 1)) : key == name) {
      return &f;
    }
  }
  return nullptr;
}

absl::Status ParseExtended(absl::string_view arg, Settings* s, Overrides* ov) {
  for (absl::string_view opt : absl::StrSplit(arg, ',', absl::SkipEmpty())) {
    const size_t eq = opt.find('=');
    const absl::string_view key = opt.substr(0, eq);
    const absl::string_view value = eq == absl::string_view::npos ? "" : opt.substr(eq + 1);
    if (key == "preset" || key == "layout") {
      if (FindPreset(std::string_view(value.data(), value.size())) == nullptr) {
        return Bad(
            absl::StrFormat("Unknown item layout preset \"%s\" (known: %s)", value, PresetNames()));
      }
      s->preset = std::string(value);
    } else if (key == "ref" || key == "refs") {
      if (value == "pointer" || value == "ptr64") {
        ov->refs = core::RefMode::kPointer;
      } else if (value == "ref32") {
        ov->refs = core::RefMode::kRef32;
      } else if (value == "page16" || value == "page") {
        ov->refs = core::RefMode::kPage;
      } else {
        return Bad(absl::StrFormat("Bad ref \"%s\" (pointer, ref32 or page16)", value));
      }
    } else if (key == "align") {
      size_t a = 0;
      if (!ParseInt(value, &a) || (a != 1 && a != 2 && a != 4 && a != 8)) {
        return Bad(absl::StrFormat("Bad align \"%s\" (1, 2, 4 or 8)", value));
      }
      ov->align = a;
    } else if (key == "cas") {
      if (value != "on" && value != "off") return Bad("Bad cas (on or off)");
      ov->cas = value == "on";
    } else if (key == "keys") {
      if (value != "text" && value != "base250") return Bad("Bad keys (text or base250)");
      ov->pack_keys = value == "base250";
    } else if (key == "header") {
      if (value != "stock" && value != "lean") return Bad("Bad header (stock or lean)");
      ov->header = value == "lean" ? compact::HeaderStyle::kLean : compact::HeaderStyle::kStock;
    } else if (key == "slab_classes") {
      int n = 0;
      if (!ParseInt(value, &n) || n < 2 || n > core::kMaxClassId) {
        return Bad(absl::StrFormat("Bad slab_classes \"%s\" (2..%d)", value, core::kMaxClassId));
      }
      ov->max_classes = n;
    } else if (key == "hashpower") {
      if (!ParseInt(value, &s->hashpower) || s->hashpower < 12 || s->hashpower > 32) {
        return Bad("Initial hashtable multiplier of hashpower must be between 12 and 32");
      }
    } else if (key == "slab_chunk_max") {
      // In bytes, as memcached 1.6.18 reads it; the slab table checks it
      // against -I and the page size as memcached does (core/slabs.cc).
      if (!ParseSize(value, &s->slab_chunk_max) || s->slab_chunk_max == 0) {
        return Bad(absl::StrFormat("Bad slab_chunk_max \"%s\"", value));
      }
    } else if (key == "read_buf_mem_limit") {
      if (!ParseInt(value, &s->read_buf_mem_limit_mb)) {
        return Bad(absl::StrFormat("Bad read_buf_mem_limit \"%s\" (megabytes)", value));
      }
    } else if (key == "slab_reassign" || key == "no_slab_reassign") {
      s->slab_reassign = key == "slab_reassign";
    } else if (key == "slab_automove" || key == "no_slab_automove") {
      int level = key == "slab_automove" ? 1 : 0;
      if (!value.empty() && (!ParseInt(value, &level) || level < 0 || level > 2)) {
        return Bad(absl::StrFormat("Bad slab_automove \"%s\" (0, 1 or 2)", value));
      }
      s->slab_automove = level;
    } else if (key == "slab_automove_ratio") {
      double r = 0;
      if (!absl::SimpleAtod(value, &r) || !(r > 0.0 && r <= 1.0)) {
        return Bad(absl::StrFormat("Bad slab_automove_ratio \"%s\" (0 < ratio <= 1)", value));
      }
      s->slab_automove_ratio = r;
    } else if (key == "slab_automove_window") {
      if (!ParseInt(value, &s->slab_automove_window) || s->slab_automove_window < 1 ||
          s->slab_automove_window > 64) {
        return Bad(absl::StrFormat("Bad slab_automove_window \"%s\" (1..64 seconds)", value));
      }
    } else if (key == "no_modern") {
      // memcached 1.6.18's step back to 1.4's defaults, where we have them:
      // no page moves, no crawler, and slab chunks up to a whole page (unless
      // slab_chunk_max came first). Its hash and LRU segments are not built.
      s->slab_reassign = false;
      s->slab_automove = 0;
      s->lru_crawler = false;
      s->lru_maintainer = false;
      if (s->slab_chunk_max == 0) s->slab_chunk_max = size_t{1} << 20;
    } else if (key == "lru_maintainer" || key == "no_lru_maintainer") {
      s->lru_maintainer = key == "lru_maintainer";
    } else if (key == "lru_crawler" || key == "no_lru_crawler") {
      s->lru_crawler = key == "lru_crawler";
    } else if (key == "lru_crawler_sleep") {
      if (!ParseInt(value, &s->lru_crawler_sleep) || s->lru_crawler_sleep > 1000000) {
        return Bad(
            absl::StrFormat("Bad lru_crawler_sleep \"%s\" (0..1000000 microseconds)", value));
      }
    } else if (key == "lru_crawler_tocrawl") {
      if (!ParseInt(value, &s->lru_crawler_tocrawl)) {
        return Bad(absl::StrFormat("Bad lru_crawler_tocrawl \"%s\"", value));
      }
    } else if (key == "idle_timeout") {
      if (!ParseInt(value, &s->idle_timeout) || s->idle_timeout < 0) {
        return Bad(absl::StrFormat("Bad idle_timeout \"%s\" (seconds, 0: none)", value));
      }
    } else if (key == "sasl_pwdb") {
      if (value.empty()) return Bad("-o sasl_pwdb= needs a file name");
      s->sasl_pwdb = std::string(value);
    } else if (key == "hash_algorithm") {
      // tinycached hashes keys its own way; memcached's choices are accepted.
      if (value != "jenkins" && value != "murmur3" && value != "xxh3") {
        return Bad(absl::StrFormat("Bad hash_algorithm \"%s\" (jenkins, murmur3 or xxh3)", value));
      }
    } else if (const ForeignSuboption* f = FindForeignSuboption(key)) {
      if (f->kind == Foreign::kRefused) return Bad(absl::StrFormat("-o %s: %s", key, f->why));
    } else {
      return Bad(absl::StrFormat("Illegal suboption \"%s\"", opt));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string UsageText() {
  return absl::StrFormat(
      "tinycached %s — a memcached-compatible cache built for tiny items\n"
      "-p, --port=<num>          TCP port to listen on (default: 11211); 0: no TCP; -1: a\n"
      "                          port the kernel picks, each socket its own. With\n"
      "                          MEMCACHED_PORT_FILENAME=<file> in the environment, the\n"
      "                          ports bound are written to <file>, a line per socket\n"
      "                          (\"TCP INET: 41235\", \"UDP INET6: 41236\"); none with -s\n"
      "-U, --udp-port=<num>      UDP port to listen on, on the -l addresses (default: 0,\n"
      "                          off; -1 as for -p); without -p, TCP listens on it too\n"
      "                          (on a port of its own after -U -1)\n"
      "-l, --listen=<addr>       addresses or host names to listen on, separated by ','\n"
      "                          (host, host:port, [ipv6]:port, * for all); repeatable\n"
      "                          (default: 127.0.0.1)\n"
      "-m, --memory-limit=<num>  item memory in megabytes (default: 64)\n"
      "-c, --conn-limit=<num>    max simultaneous connections (default: 1024)\n"
      "-t, --threads=<num>       number of worker threads (default: 4)\n"
      "-n, --slab-min-size=<bytes> min space for key+value+flags (default: the preset's;\n"
      "                          stock: 48)\n"
      "-f, --slab-growth-factor=<num> chunk size growth factor (default: the preset's;\n"
      "                          stock: 1.25)\n"
      "-C, --disable-cas         disable use of CAS (the same as -o cas=off)\n"
      "-I, --max-item-size=<num> max item size, e.g. 1m, 512k; 1k to 1g and at most\n"
      "                          half of -m (default: 1m)\n"
      "-M, --disable-evictions   return error on memory exhausted instead of evicting\n"
      "-v, --verbose             one start-up line (version, address, preset, -m,\n"
      "                          threads); accept() running out of descriptors; -vv also\n"
      "                          prints the slab class table at start and each\n"
      "                          connection opened and closed, and logs each text\n"
      "                          command and its reply line as memcached does\n"
      "-d, --daemon              run as a daemon\n"
      "-P, --pidfile=<file>      save PID in <file>, with or without -d; removed at exit\n"
      "-u, --user=<user>         assume identity of <user> (only when run as root; root\n"
      "                          must give it, -u root to stay root)\n"
      "-e, --memory-file=<file>  warm restart: on SIGUSR1 the server stops and writes\n"
      "                          every item to <file>; the next start with the same\n"
      "                          file and layout settings serves them all again\n"
      "-h, --help                print this help and exit\n"
      "-V, --version             print version and exit\n"
      "-A, --enable-shutdown     enable the ascii \"shutdown\" command\n"
      "-F, --disable-flush-all   refuse flush_all (and the binary flush)\n"
      "-b, --listen-backlog=<num> the listen queue limit (default: 1024)\n"
      "-k, --lock-memory         lock down all paged memory (mlockall; a warning if refused)\n"
      "-r, --enable-coredumps    maximize the core file limit\n"
      "-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default:\n"
      "                          auto-negotiate: a connection whose first byte is\n"
      "                          0x80 speaks binary)\n"
      "-S, --enable-sasl         binary clients must authenticate (SASL PLAIN against\n"
      "                          the user:password lines of -o sasl_pwdb=<file>, else\n"
      "                          of $MEMCACHED_SASL_PWDB); implies -B binary, and\n"
      "                          -B ascii or auto with -S is refused\n"
      "-i, --license             print the license notes and exit\n"
      "-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)\n"
      "-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: 700)\n"
      "-R, --max-reqs-per-event=<num> commands a connection runs per event before\n"
      "                          yielding to the others (default: 20)\n"
      "-D <char>                 key prefix delimiter of per-prefix stats; turns them\n"
      "                          on (\"stats detail on|off|dump\"; default: ':')\n"
      "-X, --disable-dumping     refuse stats cachedump and lru_crawler metadump\n"
      "-W, --disable-watch       refuse the watch command\n"
      "    --list-presets        print the names of the item-layout presets and exit\n"
      "memcached's other options are accepted where they only tune a mechanism\n"
      "tinycached does not have (-L -N, -o hot_lru_pct= and the like), and\n"
      "refused with the reason where they ask for a feature not built (-Y -e -Z,\n"
      "-o ext_* ssl_* no_hashexpand no_maxconns_fast).\n"
      "-o, --extended            comma separated list of extended options:\n"
      "   - preset=<name>        item layout preset (default: " TINYCACHED_DEFAULT_PRESET
      "; stock is\n"
      "                          memcached 1.6's layout byte for byte); --list-presets shows the "
      "ladder.\n"
      "                          layout=<name> is the same. Single knobs override it:\n"
      "   - ref=pointer|ref32|page16  8-byte pointers, 4-byte references, or page\n"
      "                          references sized to -m (3 bytes up to -m 84)\n"
      "   - align=8|4|2|1        chunk size alignment\n"
      "   - cas=on|off           the 8-byte CAS field (-C is cas=off)\n"
      "   - keys=text|base250    pack decimal integer keys base 250, hex and UUID keys\n"
      "                          to their bytes\n"
      "   - header=stock|lean    memcached's item header, or only the fields used\n"
      "   - slab_classes=<num>   most slab classes (2..255; default: the preset's; stock: 63)\n"
      "   - hashpower=<num>      initial hash table size as a power of two (12..32,\n"
      "                          default: 16); it grows by itself\n"
      "   - slab_chunk_max=<num> largest slab chunk in bytes (1k, 1m also), dividing -I\n"
      "                          and the page (default: half a page, 512k)\n"
      "   - slab_reassign, no_slab_reassign  pages may move between classes (default: on)\n"
      "   - slab_automove=<0|1|2> 0: pages move only on request (or for a store that\n"
      "                          finds no room); 1: keep the classes' LRU tails\n"
      "                          equally old (default); 2: move on any eviction\n"
      "   - slab_automove_ratio=<num> level 1 moves a page when the younger tail is below\n"
      "                          this times the older (default: 0.80)\n"
      "   - slab_automove_window=<num> seconds of age history used (1..64, default: 30)\n"
      "   - idle_timeout=<num>   close connections idle this many seconds (default: 0, never)\n"
      "   - no_modern            memcached 1.4's defaults: no_slab_reassign,\n"
      "                          slab_automove=0, no_lru_crawler, no_lru_maintainer,\n"
      "                          slab_chunk_max=1m\n"
      "   - lru_crawler, no_lru_crawler  lru_crawler crawl|metadump allowed or refused\n"
      "                          (default: allowed)\n"
      "   - lru_maintainer, no_lru_maintainer  expired and flushed items at the LRU\n"
      "                          tails freed once a second, or only when a store needs\n"
      "                          the memory (default: on)\n"
      "   - lru_crawler_sleep=<num>, lru_crawler_tocrawl=<num>  only reported in\n"
      "                          stats settings\n"
      "   - hash_algorithm=jenkins|murmur3|xxh3  accepted, no effect (keys are hashed\n"
      "                          with Abseil's hash)\n"
      "   - read_buf_mem_limit=<num> megabytes of large values being received at once,\n"
      "                          all connections together; past it a set gets\n"
      "                          SERVER_ERROR out of memory storing object (default: 64;\n"
      "                          0: no limit)\n"
      "   - sasl_pwdb=<file>     -S's password file (default: $MEMCACHED_SASL_PWDB)\n",
      kVersion);
}

absl::StatusOr<std::vector<ListenAddress>> SplitListenList(absl::string_view list, int port) {
  std::vector<ListenAddress> out;
  for (absl::string_view item : absl::StrSplit(list, absl::ByAnyChar(",;"), absl::SkipEmpty())) {
    ListenAddress a{std::string(item), port};
    const auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bad listen address \"%s\": %s", item, why));
    };
    absl::string_view host = item;
    absl::string_view port_text;
    if (!item.empty() && item.front() == '[') {  // [ipv6] or [ipv6]:port (RFC 3986)
      const size_t close = item.find(']');
      if (close == absl::string_view::npos) return bad("no closing ]");
      host = item.substr(1, close - 1);
      const absl::string_view rest = item.substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return bad("expected :port after ]");
        port_text = rest.substr(1);
      }
    } else if (const size_t colon = item.find(':');
               colon != absl::string_view::npos &&
               item.find(':', colon + 1) == absl::string_view::npos) {
      host = item.substr(0, colon);  // host:port; more colons make a bare IPv6 address
      port_text = item.substr(colon + 1);
    }
    if (!port_text.empty() || (host != item && item.back() == ':')) {
      if (!ParsePort(port_text, &a.port)) {
        return bad("bad port");
      }
    }
    a.host = host == "*" ? std::string() : std::string(host);
    if (a.host.empty() && host != "*") return bad("empty host");
    out.push_back(std::move(a));
  }
  if (out.empty()) return absl::InvalidArgumentError("-l gives no address to listen on");
  return out;
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv) {
  CommandLine cl;
  Settings& s = cl.settings;
  bool listen_given = false;  // the first -l replaces the default, later ones add
  bool tcp_given = false;     // -p seen
  bool udp_given = false;     // -U seen
  Overrides ov;
  bool protocol_given = false;  // -B seen
  enum { kListPresetsOpt = 1000 };
  static const option kLong[] = {
      {"port", required_argument, nullptr, 'p'},
      {"udp-port", required_argument, nullptr, 'U'},
      {"listen", required_argument, nullptr, 'l'},
      {"memory-limit", required_argument, nullptr, 'm'},
      {"conn-limit", required_argument, nullptr, 'c'},
      {"threads", required_argument, nullptr, 't'},
      {"slab-min-size", required_argument, nullptr, 'n'},
      {"slab-growth-factor", required_argument, nullptr, 'f'},
      {"disable-cas", no_argument, nullptr, 'C'},
      {"max-item-size", required_argument, nullptr, 'I'},
      {"disable-evictions", no_argument, nullptr, 'M'},
      {"verbose", optional_argument, nullptr, 'v'},
      {"daemon", no_argument, nullptr, 'd'},
      {"pidfile", required_argument, nullptr, 'P'},
      {"user", required_argument, nullptr, 'u'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {"extended", required_argument, nullptr, 'o'},
      {"list-presets", no_argument, nullptr, kListPresetsOpt},
      {"enable-shutdown", no_argument, nullptr, 'A'},
      {"disable-flush-all", no_argument, nullptr, 'F'},
      {"listen-backlog", required_argument, nullptr, 'b'},
      {"lock-memory", no_argument, nullptr, 'k'},
      {"enable-coredumps", no_argument, nullptr, 'r'},
      {"license", no_argument, nullptr, 'i'},
      {"protocol", required_argument, nullptr, 'B'},
      {"unix-socket", required_argument, nullptr, 's'},
      {"unix-mask", required_argument, nullptr, 'a'},
      {"max-reqs-per-event", required_argument, nullptr, 'R'},
      {"disable-dumping", no_argument, nullptr, 'X'},
      {"disable-watch", no_argument, nullptr, 'W'},
      {"enable-sasl", no_argument, nullptr, 'S'},
      {"memory-file", required_argument, nullptr, 'e'},
  };
  // The foreign flags' long forms, then getopt's terminator.
  std::vector<option> long_options(std::begin(kLong), std::end(kLong));
  for (const ForeignFlag& f : kForeignFlags) {
    if (f.long_name != nullptr)
      long_options.push_back({f.long_name, f.has_arg, nullptr, f.short_name});
  }
  long_options.push_back({nullptr, 0, nullptr, 0});
  std::string short_options = ":p:U:l:m:c:t:n:f:CI:MvdP:u:hVo:AFb:kriB:s:a:R:D:XWSe:";
  for (const ForeignFlag& f : kForeignFlags) {
    short_options += f.short_name;
    if (f.has_arg == required_argument) short_options += ':';
  }
  optind = 0;  // GNU getopt: 0 re-initialises its state (tests parse many times)
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, short_options.c_str(), long_options.data(), nullptr)) != -1) {
    const absl::string_view arg = optarg != nullptr ? optarg : "";
    switch (c) {
      case 'p':
        if (!ParsePort(arg, &s.port)) {
          return Bad(
              absl::StrFormat("Invalid TCP port \"%s\" (-1: any free port, 0: no TCP)", arg));
        }
        tcp_given = true;
        break;
      case 'U':
        if (!ParsePort(arg, &s.udp_port)) {
          return Bad(
              absl::StrFormat("Invalid UDP port \"%s\" (-1: any free port, 0: no UDP)", arg));
        }
        udp_given = true;
        break;
      case 'l':
        // A list, and repeatable: each -l adds its addresses (memcached's rule).
        if (arg.empty()) return Bad("-l needs an address to listen on");
        if (!listen_given) {
          s.listen = std::string(arg);
        } else if (!absl::StrContains(s.listen, arg)) {
          absl::StrAppend(&s.listen, ",", arg);
        }
        listen_given = true;
        break;
      case 'm':
        if (!ParseInt(arg, &s.memory_mb) || s.memory_mb == 0 || s.memory_mb > (size_t{1} << 20)) {
          return Bad(absl::StrFormat("Invalid memory limit \"%s\" (megabytes, > 0)", arg));
        }
        break;
      case 'c':
        if (!ParseInt(arg, &s.maxconns) || s.maxconns <= 0) {
          return Bad("Maximum connections must be greater than 0");
        }
        break;
      case 't':
        if (!ParseInt(arg, &s.threads) || s.threads <= 0 || s.threads > 256) {
          return Bad("Number of threads must be greater than 0 (and at most 256)");
        }
        break;
      case 'n': {
        size_t n = 0;
        if (!ParseInt(arg, &n) || n == 0 || n > (1 << 20)) {
          return Bad("Chunk size must be greater than 0");
        }
        ov.min_space = n;
        break;
      }
      case 'f': {
        double f = 0;
        if (!absl::SimpleAtod(arg, &f) || !(f > 1.0) || f > 100) {
          return Bad("Factor must be greater than 1");
        }
        ov.factor = f;
        break;
      }
      case 'C':
        ov.cas = false;
        break;
      case 'I':
        if (!ParseSize(arg, &s.item_size_max)) {
          return Bad(absl::StrFormat("Invalid max item size \"%s\"", arg));
        }
        break;
      case 'M':
        s.evict = false;
        break;
      case 'v':
        ++s.verbose;
        break;
      case 'd':
        s.daemonize = true;
        break;
      case 'P':
        s.pid_file = std::string(arg);
        break;
      case 'u':
        s.user = std::string(arg);
        break;
      case 'e':
        if (arg.empty()) return Bad("-e needs a file name");
        s.memory_file = std::string(arg);
        break;
      case 'h':
        cl.action = CommandAction::kHelp;
        break;
      case 'V':
        cl.action = CommandAction::kVersion;
        break;
      case 'o':
        if (absl::Status st = ParseExtended(arg, &s, &ov); !st.ok()) return st;
        break;
      case kListPresetsOpt:
        cl.action = CommandAction::kListPresets;
        break;
      case 'A':
        s.enable_shutdown = true;
        break;
      case 'F':
        s.flush_enabled = false;
        break;
      case 'b':
        if (!ParseInt(arg, &s.backlog) || s.backlog <= 0) {
          return Bad(absl::StrFormat("Invalid listen backlog \"%s\"", arg));
        }
        break;
      case 'k':
        s.lock_memory = true;
        break;
      case 'r':
        s.coredumps = true;
        break;
      case 'i':
        cl.action = CommandAction::kLicense;
        break;
      case 'B':
        if (arg == "ascii") {
          s.protocol = Protocol::kAscii;
        } else if (arg == "binary") {
          s.protocol = Protocol::kBinary;
        } else if (arg == "auto") {
          s.protocol = Protocol::kAuto;
        } else {
          return Bad(absl::StrFormat("Invalid value for binding protocol: %s", arg));
        }
        protocol_given = true;
        break;
      case 'S':
        s.sasl = true;
        break;
      case 's':
        if (arg.empty()) return Bad("-s needs the path of a unix socket");
        s.unix_socket = std::string(arg);
        break;
      case 'a': {
        // Octal, as memcached reads it (strtol base 8).
        int mask = 0;
        if (arg.empty() || arg.size() > 4 ||
            arg.find_first_not_of("01234567") != absl::string_view::npos) {
          return Bad(absl::StrFormat("-a: invalid unix socket mask \"%s\" (octal, e.g. 700)", arg));
        }
        for (char d : arg) mask = mask * 8 + (d - '0');
        if (mask > 0777) return Bad(absl::StrFormat("-a: invalid unix socket mask \"%s\"", arg));
        s.unix_mask = mask;
        break;
      }
      case 'R':
        if (!ParseInt(arg, &s.reqs_per_event) || s.reqs_per_event <= 0) {
          return Bad("-R: Number of requests per event must be greater than 0");
        }
        break;
      case 'D':
        if (arg.empty()) return Bad("-D: No delimiter specified");
        s.prefix_delimiter = arg[0];
        s.detail_enabled = true;
        break;
      case 'X':
        s.dump_enabled = false;
        break;
      case 'W':
        s.watch_enabled = false;
        break;
      case ':':
        return Bad(absl::StrFormat("option requires an argument -- '%c'", optopt));
      default:
        if (const ForeignFlag* f = FindForeignFlag(c)) {
          if (f->kind == Foreign::kIgnored) break;
          return Bad(f->long_name != nullptr
                         ? absl::StrFormat("-%c (--%s): %s", c, f->long_name, f->why)
                         : absl::StrFormat("-%c: %s", c, f->why));
        }
        if (optopt != 0) return Bad(absl::StrFormat("invalid option -- '%c'", optopt));
        return Bad(absl::StrFormat("unrecognized option '%s'", argv[optind - 1]));
    }
  }
  if (optind < argc) return Bad(absl::StrFormat("unexpected argument \"%s\"", argv[optind]));
  // memcached's rule: -U <port> without -p serves TCP on that port too.
  if (udp_given && !tcp_given && s.udp_port != 0) s.port = s.udp_port;
  // memcached's rule: SASL is binary-only, so -S alone means -B binary and
  // any other -B is an error (an ASCII client could not authenticate).
  if (s.sasl) {
    if (protocol_given && s.protocol != Protocol::kBinary) {
      return Bad("ERROR: You cannot allow the ASCII protocol while using SASL.");
    }
    s.protocol = Protocol::kBinary;
  }

  LayoutSettings& l = s.layout;
  l = FindPreset(s.preset)->layout;
  if (ov.refs) l.refs = *ov.refs;
  if (ov.align) l.align = *ov.align;
  if (ov.cas) l.cas = *ov.cas;
  if (ov.pack_keys) l.pack_keys = *ov.pack_keys;
  if (ov.header) l.header = *ov.header;
  if (ov.min_space) l.min_space = *ov.min_space;
  if (ov.factor) l.factor = *ov.factor;
  if (ov.max_classes) l.max_classes = *ov.max_classes;

  if (s.item_size_max < 1024) return Bad("Item max size cannot be less than 1024 bytes.");
  if (s.item_size_max > (size_t{1} << 30))
    return Bad("Cannot set item size limit higher than 1 GB.");
  if (s.item_size_max > (s.memory_mb << 20) / 2) {
    return Bad("Cannot set item size limit higher than 1/2 of memory max.");
  }
  return cl;
}

}  // namespace tinycached::server
