#include "server/flags.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace tinycached::server {
namespace {

absl::StatusOr<CommandLine> Parse(const std::vector<const char*>& args) {
  std::vector<std::string> storage = {"tinycached"};
  for (const char* a : args) storage.emplace_back(a);
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

TEST(FlagsTest, DefaultsAreMemcacheds) {
  auto cl = Parse({});
  ASSERT_TRUE(cl.ok());
  const Settings& s = cl->settings;
  EXPECT_EQ(s.port, 11211);
  EXPECT_EQ(s.memory_mb, 64u);
  EXPECT_EQ(s.maxconns, 1024);
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.layout.min_space, 48u);
  EXPECT_DOUBLE_EQ(s.layout.factor, 1.25);
  EXPECT_TRUE(s.layout.cas);
  EXPECT_TRUE(s.evict);
  EXPECT_EQ(s.item_size_max, 1u << 20);
  EXPECT_EQ(s.preset, "stock");
  EXPECT_EQ(cl->action, CommandAction::kRun);
}

TEST(FlagsTest, EveryMemcachedFlag) {
  auto cl = Parse(
      {"-p",  "12345", "-U",         "0",  "-l",     "127.0.0.1", "-m",
       "128", "-c",    "4096",       "-t", "2",      "-n",        "5",
       "-f",  "1.05",  "-C",         "-I", "2m",     "-M",        "-vv",
       "-d",  "-P",    "/tmp/x.pid", "-u", "nobody", "-o",        "layout=stock,hashpower=20"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  const Settings& s = cl->settings;
  EXPECT_EQ(s.port, 12345);
  EXPECT_EQ(s.memory_mb, 128u);
  EXPECT_EQ(s.maxconns, 4096);
  EXPECT_EQ(s.threads, 2);
  EXPECT_EQ(s.layout.min_space, 5u);
  EXPECT_DOUBLE_EQ(s.layout.factor, 1.05);
  EXPECT_FALSE(s.layout.cas);
  EXPECT_EQ(s.item_size_max, 2u << 20);
  EXPECT_FALSE(s.evict);
  EXPECT_EQ(s.verbose, 2);
  EXPECT_TRUE(s.daemonize);
  EXPECT_EQ(s.pid_file, "/tmp/x.pid");
  EXPECT_EQ(s.user, "nobody");
  EXPECT_EQ(s.hashpower, 20);
  EXPECT_EQ(Parse({"-m64", "-I", "512k", "-vvv"})->settings.item_size_max, 512u << 10);
  EXPECT_EQ(Parse({"--port=7", "--memory-limit=8"})->settings.port, 7);
}

TEST(FlagsTest, UdpPort) {
  EXPECT_EQ(Parse({})->settings.udp_port, 0);  // off, memcached's default
  const Settings s = Parse({"-p", "7", "-U", "8"})->settings;
  EXPECT_EQ(s.port, 7);
  EXPECT_EQ(s.udp_port, 8);
  EXPECT_EQ(Parse({"--udp-port=9"})->settings.udp_port, 9);
  // memcached's rule: -U without -p moves the TCP port too (unless -U is 0).
  EXPECT_EQ(Parse({"-U", "8"})->settings.port, 8);
  EXPECT_EQ(Parse({"-U", "8", "-p", "7"})->settings.port, 7);
  EXPECT_EQ(Parse({"-U", "0"})->settings.port, 11211);
}

// memcached's t/issue_67.t: -1 asks the kernel for a port, 0 turns the
// transport off, and -U without -p carries TCP along (to -1 as well).
TEST(FlagsTest, EphemeralAndDisabledPorts) {
  struct Case {
    std::vector<const char*> args;
    int tcp, udp;
  };
  for (const Case& c : std::vector<Case>{{{}, 11211, 0},
                                         {{"-p", "11212"}, 11212, 0},
                                         {{"-U", "11222"}, 11222, 11222},
                                         {{"-p", "-1"}, -1, 0},
                                         {{"-U", "-1"}, -1, -1},
                                         {{"-p", "0"}, 0, 0},
                                         {{"-U", "0"}, 11211, 0},
                                         {{"-p", "11232", "-U", "11233"}, 11232, 11233},
                                         {{"-p", "11242", "-U", "0"}, 11242, 0},
                                         {{"-p", "0", "-U", "11252"}, 0, 11252},
                                         {{"-p", "11262", "-U", "-1"}, 11262, -1},
                                         {{"-p", "-1", "-U", "11272"}, -1, 11272},
                                         {{"-U", "-1", "-p", "0"}, 0, -1},
                                         {{"--port=-1", "--udp-port=-1"}, -1, -1}}) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    auto cl = Parse(c.args);
    ASSERT_TRUE(cl.ok()) << cl.status();
    EXPECT_EQ(cl->settings.port, c.tcp);
    EXPECT_EQ(cl->settings.udp_port, c.udp);
  }
}

TEST(FlagsTest, ActionsAndBadInput) {
  EXPECT_EQ(Parse({"-h"})->action, CommandAction::kHelp);
  EXPECT_EQ(Parse({"-V"})->action, CommandAction::kVersion);
  EXPECT_EQ(Parse({"--list-presets"})->action, CommandAction::kListPresets);
  for (auto args : std::vector<std::vector<const char*>>{{"-x"},
                                                         {"-p"},
                                                         {"-p", "70000"},
                                                         {"-p", "abc"},
                                                         {"-U", "70000"},
                                                         {"-U", "-2"},
                                                         {"-p", "-2"},
                                                         {"-m", "0"},
                                                         {"-m", "-5"},
                                                         {"-t", "0"},
                                                         {"-c", "0"},
                                                         {"-n", "0"},
                                                         {"-f", "1"},
                                                         {"-f", "x"},
                                                         {"-I", "512"},
                                                         {"-I", "2g"},
                                                         {"-m", "1"},
                                                         {"-o", "layout=nope"},
                                                         {"-o", "foo=1"},
                                                         {"-o", "hashpower=3"},
                                                         {"stray"},
                                                         {"--no-such-flag"},
                                                         {"-o", "preset=nope"},
                                                         {"-o", "ref=ptr16"},
                                                         {"-o", "align=3"},
                                                         {"-o", "cas=maybe"},
                                                         {"-o", "keys=hex"},
                                                         {"-o", "header=tiny"},
                                                         {"-o", "slab_classes=256"},
                                                         {"-o", "slab_classes=1"}}) {
    auto cl = Parse(args);
    EXPECT_FALSE(cl.ok()) << "accepted: " << args[0] << (args.size() > 1 ? args[1] : "");
    if (!cl.ok()) {
      EXPECT_FALSE(cl.status().message().empty());
    }
  }
}

TEST(FlagsTest, MemcachedsOtherFlagsWorkAreIgnoredOrAreRefusedWithAReason) {
  auto cl = Parse({"-A", "-F", "-b", "64", "-k", "-r", "-B", "ascii", "--protocol=auto"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->settings.enable_shutdown);
  EXPECT_FALSE(cl->settings.flush_enabled);
  EXPECT_EQ(cl->settings.backlog, 64);
  EXPECT_TRUE(cl->settings.lock_memory);
  EXPECT_TRUE(cl->settings.coredumps);
  EXPECT_EQ(Parse({"-i"})->action, CommandAction::kLicense);
  EXPECT_TRUE(Parse({})->settings.flush_enabled);
  // Tuning of mechanisms tinycached does not have: accepted, nothing changes.
  for (auto args : std::vector<std::vector<const char*>>{
           {"-L"},
           {"-N", "2"},
           {"--enable-largepages"},
           {"-o", "hash_algorithm=xxh3"},
           {"-o", "no_lru_crawler,lru_crawler_sleep=50"},
           {"-o", "hot_lru_pct=20,warm_lru_pct=40,temporary_ttl=61"},
           {"-o", "modern"},
           {"-o", "maxconns_fast"},
           {"-o", "slab_automove_freeratio=0.01"}}) {
    auto parsed = Parse(args);
    EXPECT_TRUE(parsed.ok()) << args[0] << ": " << parsed.status();
  }
  // Features not built: refused, naming the option.
  for (auto [args, name] : std::vector<std::pair<std::vector<const char*>, const char*>>{
           {{"-a", "800"}, "-a"},
           {{"-a", "x"}, "-a"},
           {{"-R", "0"}, "-R"},
           {{"-R", "x"}, "-R"},
           {{"-D", ""}, "-D"},
           {{"-o", "idle_timeout=-1"}, "idle_timeout"},
           {{"-o", "lru_crawler_sleep=2000000"}, "lru_crawler_sleep"},
           {{"-Z"}, "-Z"},
           {{"-e", ""}, "-e"},
           {{"-Y", "/etc/auth"}, "-Y"},
           {{"-o", "ext_path=/x:1G"}, "ext_path"},
           {{"-o", "ssl_key=/k"}, "ssl_key"},
           {{"-o", "hash_algorithm=md5"}, "hash_algorithm"},
           {{"-B", "udp"}, "udp"},
           {{"-b", "0"}, "backlog"}}) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.ok()) << "accepted: " << args[0];
    EXPECT_NE(parsed.status().message().find(name), std::string::npos)
        << parsed.status().message() << " does not name " << name;
  }
}

TEST(FlagsTest, MemoryFileForWarmRestart) {
  for (auto args : std::vector<std::vector<const char*>>{{"-e", "/var/lib/tc/items"},
                                                         {"--memory-file=/var/lib/tc/items"}}) {
    auto cl = Parse(args);
    ASSERT_TRUE(cl.ok()) << cl.status();
    EXPECT_EQ(cl->settings.memory_file, "/var/lib/tc/items");
  }
  auto cl = Parse({});
  ASSERT_TRUE(cl.ok());
  EXPECT_EQ(cl->settings.memory_file, "");
}

TEST(FlagsTest, UnixSocketRequestCapIdleTimeoutAndDetail) {
  auto cl = Parse({"-s", "/tmp/tc.sock", "-a", "770", "-R", "5", "-o", "idle_timeout=3", "-D", "/",
                   "-X", "-W", "-o", "no_lru_crawler,lru_crawler_sleep=50,lru_crawler_tocrawl=9"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  const Settings& s = cl->settings;
  EXPECT_EQ(s.unix_socket, "/tmp/tc.sock");
  EXPECT_EQ(s.unix_mask, 0770);
  EXPECT_EQ(s.reqs_per_event, 5);
  EXPECT_EQ(s.idle_timeout, 3);
  EXPECT_EQ(s.prefix_delimiter, '/');
  EXPECT_TRUE(s.detail_enabled);
  EXPECT_FALSE(s.dump_enabled);
  EXPECT_FALSE(s.watch_enabled);
  EXPECT_FALSE(s.lru_crawler);
  EXPECT_EQ(s.lru_crawler_sleep, 50u);
  EXPECT_EQ(s.lru_crawler_tocrawl, 9u);
  // memcached's defaults.
  const Settings d = Parse({})->settings;
  EXPECT_TRUE(d.unix_socket.empty());
  EXPECT_EQ(d.unix_mask, 0700);
  EXPECT_EQ(d.reqs_per_event, 20);
  EXPECT_EQ(d.idle_timeout, 0);
  EXPECT_EQ(d.prefix_delimiter, ':');
  EXPECT_FALSE(d.detail_enabled);
  EXPECT_TRUE(d.dump_enabled && d.watch_enabled && d.lru_crawler);
  EXPECT_EQ(
      Parse({"--unix-socket=/x", "--unix-mask=0777", "--max-reqs-per-event=1"})->settings.unix_mask,
      0777);
}

TEST(FlagsTest, ProtocolAndSasl) {
  EXPECT_EQ(Parse({})->settings.protocol, Protocol::kAuto);
  EXPECT_EQ(Parse({"-B", "binary"})->settings.protocol, Protocol::kBinary);
  EXPECT_EQ(Parse({"-B", "ascii"})->settings.protocol, Protocol::kAscii);
  EXPECT_EQ(Parse({"--protocol=auto"})->settings.protocol, Protocol::kAuto);
  EXPECT_FALSE(Parse({})->settings.sasl);
  // -S alone means binary; with another -B it is memcached's error.
  auto sasl = Parse({"-S", "-o", "sasl_pwdb=/etc/pw"});
  ASSERT_TRUE(sasl.ok()) << sasl.status();
  EXPECT_TRUE(sasl->settings.sasl);
  EXPECT_EQ(sasl->settings.protocol, Protocol::kBinary);
  EXPECT_EQ(sasl->settings.sasl_pwdb, "/etc/pw");
  EXPECT_TRUE(Parse({"--enable-sasl", "-B", "binary"}).ok());
  for (auto args :
       std::vector<std::vector<const char*>>{{"-S", "-B", "ascii"}, {"-B", "auto", "-S"}}) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().message(),
              "ERROR: You cannot allow the ASCII protocol while using SASL.");
  }
}

TEST(FlagsTest, PresetsFormALadderOfSingleChanges) {
  const std::vector<Preset>& ladder = Presets();
  ASSERT_GE(ladder.size(), 10u);
  EXPECT_EQ(ladder.front().name, "stock");
  EXPECT_EQ(ladder.front().layout, LayoutSettings{});  // memcached's defaults
  EXPECT_EQ(ladder.back().name, "tiny");
  EXPECT_EQ(ladder.back().layout.engine, core::EngineKind::kTiny);
  for (size_t i = 1; i < ladder.size(); ++i) {
    const LayoutSettings& a = ladder[i - 1].layout;
    const LayoutSettings& b = ladder[i].layout;
    // Each step changes one knob, except the slab-table step (-n, -f and the class limit).
    const int changed =
        (a.refs != b.refs) + (a.align != b.align) + (a.cas != b.cas) +
        (a.pack_keys != b.pack_keys) + (a.header != b.header) +
        (a.min_space != b.min_space || a.factor != b.factor || a.max_classes != b.max_classes) +
        (a.engine != b.engine);
    EXPECT_EQ(changed, 1) << ladder[i].name;
    EXPECT_NE(FindPreset(ladder[i].name), nullptr);
  }
}

TEST(FlagsTest, PresetThenOverridesInAnyOrder) {
  for (auto args : std::vector<std::vector<const char*>>{
           {"-o", "preset=compact", "-n", "9", "-o", "cas=on,align=4"},
           {"-n", "9", "-o", "align=4", "-o", "layout=compact,cas=on"}}) {
    auto cl = Parse(args);
    ASSERT_TRUE(cl.ok()) << cl.status();
    const Settings& s = cl->settings;
    EXPECT_EQ(s.preset, "compact");
    EXPECT_EQ(s.layout.min_space, 9u);
    EXPECT_TRUE(s.layout.cas);
    EXPECT_EQ(s.layout.align, 4u);
    EXPECT_EQ(s.layout.header, compact::HeaderStyle::kLean);  // from the preset
    EXPECT_EQ(s.layout.refs, core::RefMode::kPage);
    const core::StoreOptions o = s.StoreOptions();
    EXPECT_EQ(o.slabs.align, 4u);
    EXPECT_TRUE(o.cas_enabled);
    EXPECT_TRUE(o.layout.pack_keys);
  }
  // -C is cas=off whatever the preset.
  EXPECT_FALSE(Parse({"-C", "-o", "preset=factor"})->settings.layout.cas);
  EXPECT_EQ(Parse({"-o", "ref=ref32"})->settings.layout.refs, core::RefMode::kRef32);
  EXPECT_EQ(Parse({"-o", "keys=base250"})->settings.layout.pack_keys, true);
}

TEST(FlagsTest, ListenTakesListsAndRepeats) {
  // The first -l replaces the default; later ones add (once each), as memcached's.
  EXPECT_EQ(Parse({"-l", "127.0.0.1,::1"})->settings.listen, "127.0.0.1,::1");
  EXPECT_EQ(Parse({"-l", "127.0.0.1", "-l", "::1", "-l", "::1"})->settings.listen, "127.0.0.1,::1");
  EXPECT_FALSE(Parse({"-l", ""}).ok());
}

TEST(FlagsTest, ListenListSplitsLikeMemcached) {
  auto list = SplitListenList("127.0.0.1,localhost:7000;[::1]:7001,::1,*,[fe80::1]", 11211);
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::pair<std::string, int>> got;
  for (const ListenAddress& a : *list) got.emplace_back(a.host, a.port);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{{"127.0.0.1", 11211},
                                                           {"localhost", 7000},
                                                           {"::1", 7001},
                                                           {"::1", 11211},
                                                           {"", 11211},
                                                           {"fe80::1", 11211}}));
  // -1 and 0 in an entry: a port the kernel picks (memcached binds port 0 for both).
  list = SplitListenList("127.0.0.1:-1,[::1]:0", 11211);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)[0].port, -1);
  EXPECT_EQ((*list)[1].port, 0);
  for (const char* bad :
       {"host:port", "[::1", "[::1]7000", "127.0.0.1:70000", "127.0.0.1:-2", ":7000", ",;"}) {
    EXPECT_FALSE(SplitListenList(bad, 11211).ok()) << bad;
  }
}

}  // namespace
}  // namespace tinycached::server
