#include "server/admin.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/context.h"
#include "server/protocol/session.h"

namespace tinycached::server {
namespace {

class AdminTest : public ::testing::Test {
 protected:
  void Make(Settings s = {}) {
    auto store = core::CreateEngine(s.StoreOptions(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    ctx_ = std::make_unique<ServerContext>(s, *std::move(store), &clock_);
    ctx_->thread_stats.push_back(std::make_unique<core::ThreadStats>());
    session_ = NewSession(ctx_.get(), ctx_->thread_stats[0].get());
  }

  // Every reply to `input`, fed at once.
  std::string Run(const std::string& input) {
    std::string out;
    bool close = false;
    buffered_ += input;
    buffered_.erase(0, session_->Consume(buffered_, &out, &close));
    return out;
  }

  core::Clock clock_;
  std::unique_ptr<ServerContext> ctx_;
  std::unique_ptr<ProtocolSession> session_;
  std::string buffered_;
};

TEST_F(AdminTest, PrefixStatsCountOnlyWhileOnAndStayBounded) {
  PrefixStats p(':', false);
  EXPECT_FALSE(p.enabled());
  p.SetEnabled(true);
  p.RecordGet("a:1", true);
  p.RecordGet("a:2", false);
  p.RecordSet("b:1");
  p.RecordDelete("a:3");
  p.RecordSet("nodelimiter");  // not counted, as memcached
  p.RecordSet(":empty");       // the empty prefix
  std::string out;
  p.Dump(&out);
  EXPECT_NE(out.find("PREFIX a get 2 hit 1 set 0 del 1\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("PREFIX b get 0 hit 0 set 1 del 0\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("PREFIX  get 0 hit 0 set 1 del 0\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 5), "END\r\n");
  EXPECT_EQ(p.prefixes(), 3u);
  for (size_t i = 0; i < PrefixStats::kMaxPrefixes + 10; ++i)
    p.RecordSet("p" + std::to_string(i) + ":");
  EXPECT_EQ(p.prefixes(), PrefixStats::kMaxPrefixes);
  EXPECT_EQ(p.dropped(), 13u);
  p.Reset();
  out.clear();
  p.Dump(&out);
  EXPECT_EQ(out, "END\r\n");
}

TEST_F(AdminTest, StatsDetailThroughTheSession) {
  Make();
  EXPECT_EQ(Run("stats detail\r\n"), "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
  EXPECT_EQ(Run("set u:1 0 0 1\r\nx\r\nstats detail dump\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(Run("stats detail on\r\n"), "OK\r\n");
  Run("set u:1 0 0 1\r\nx\r\nget u:1 u:2\r\ndelete u:9\r\n");
  EXPECT_EQ(Run("stats detail dump\r\n"), "PREFIX u get 2 hit 1 set 1 del 1\r\nEND\r\n");
  EXPECT_EQ(Run("stats detail off\r\nget u:1\r\nstats detail dump\r\n"),
            "OK\r\nVALUE u:1 0 1\r\nx\r\nEND\r\nPREFIX u get 2 hit 1 set 1 del 1\r\nEND\r\n");
  EXPECT_EQ(Run("stats reset\r\nstats detail dump\r\n"), "RESET\r\nEND\r\n");
}

TEST_F(AdminTest, CachedumpAndMetadump) {
  Make();
  clock_.SetForTest(100);
  Run("set k:1 0 0 3\r\nabc\r\nset k%2 0 1000 1\r\nx\r\n");
  const int64_t started = clock_.UnixNow() - clock_.Now();
  EXPECT_EQ(Run("stats cachedump 1 0\r\n"), "ITEM k%2 [1 b; " + std::to_string(started + 1100) +
                                                " s]\r\nITEM k:1 [3 b; 0 s]\r\nEND\r\n");
  EXPECT_EQ(Run("stats cachedump 1 1\r\n"),
            "ITEM k%2 [1 b; " + std::to_string(started + 1100) + " s]\r\nEND\r\n");
  EXPECT_EQ(Run("stats cachedump 1\r\n"), "CLIENT_ERROR bad command line\r\n");
  EXPECT_EQ(Run("stats cachedump a 1\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("stats cachedump 64 1\r\n"), "CLIENT_ERROR Illegal slab id\r\n");
  const std::string meta = Run("lru_crawler metadump all\r\n");
  EXPECT_NE(meta.find("key=k%3A1 exp=-1 la=" + std::to_string(started + 100) +
                      " cas=1 fetch=no cls=1 size="),
            std::string::npos)
      << meta;
  EXPECT_NE(meta.find("key=k%252 exp=" + std::to_string(started + 1100)), std::string::npos)
      << meta;
  EXPECT_EQ(meta.substr(meta.size() - 5), "END\r\n");
  EXPECT_EQ(Run("lru_crawler metadump 0\r\n"), "BADCLASS invalid class id\r\n");
  EXPECT_EQ(Run("lru_crawler metadump\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("lru_crawler crawl 1,,2\r\nlru_crawler crawl 1,x\r\n"),
            "OK\r\nBADCLASS invalid class id\r\n");
  EXPECT_EQ(Run("lru_crawler disable\r\nlru_crawler metadump all\r\nlru_crawler enable\r\n"
                "lru_crawler enable\r\n"),
            "OK\r\nCLIENT_ERROR lru crawler disabled\r\nOK\r\n"
            "ERROR failed to start lru crawler thread\r\n");
  EXPECT_EQ(Run("lru_crawler sleep 1000001\r\nlru_crawler sleep x\r\nlru_crawler tocrawl 3\r\n"),
            "CLIENT_ERROR sleep must be one second or less\r\n"
            "CLIENT_ERROR bad command line format\r\nOK\r\n");
}

// memcached refuses a metadump (and a watch) while the connection holds
// replies of earlier commands it has not written out yet: those read in the
// same batch of input since it last wrote. A get, gat and mn write out what
// is held; a noreply or quiet command's skipped reply is held too.
TEST_F(AdminTest, MetadumpAndWatchRefuseToFollowHeldReplies) {
  Make();
  const std::string kRefused = "ERROR cannot pipeline other commands before metadump\r\n";
  Run("set k 0 0 1\r\nx\r\n");
  const std::string dump = Run("lru_crawler metadump all\r\n");
  ASSERT_EQ(dump.substr(0, 6), "key=k ") << dump;
  const auto dump_lines = [](const std::string& out) { return out.find("key=k ") != out.npos; };
  EXPECT_EQ(Run("mg foo v\r\nlru_crawler metadump all\r\n"), "EN\r\n" + kRefused);
  EXPECT_EQ(Run("version\r\nlru_crawler metadump 99\r\n"),  // refused before the class is read
            std::string("VERSION ") + kVersion + "\r\n" + kRefused);
  EXPECT_EQ(Run("set a 0 0 1 noreply\r\nx\r\nlru_crawler metadump all\r\n"), kRefused);
  EXPECT_EQ(Run("mg foo v q\r\nlru_crawler metadump all\r\n"), kRefused);
  EXPECT_EQ(Run("bogus\r\nlru_crawler metadump all\r\n"), "ERROR\r\n" + kRefused);
  EXPECT_EQ(Run("mn\r\nversion\r\nlru_crawler metadump all\r\n"),
            std::string("MN\r\nVERSION ") + kVersion + "\r\n" + kRefused);
  // A dump's own reply is held like any other.
  std::string out = Run("lru_crawler metadump all\r\nlru_crawler metadump all\r\n");
  EXPECT_TRUE(dump_lines(out)) << out;
  EXPECT_EQ(out.substr(out.size() - kRefused.size()), kRefused);
  // Written out: after a get or gat, after mn, and between batches of input.
  for (const char* before : {"get foo\r\n", "gat 10 foo\r\n", "mn\r\n"}) {
    out = Run(std::string(before) + "lru_crawler metadump all\r\n");
    EXPECT_TRUE(dump_lines(out)) << before << out;
    EXPECT_EQ(out.find("ERROR"), std::string::npos) << before << out;
  }
  EXPECT_EQ(Run("mg foo v\r\n"), "EN\r\n");
  EXPECT_TRUE(dump_lines(Run("lru_crawler metadump all\r\n")));
  // A data block that arrives after its command line ends a batch: memcached
  // reads it straight from the socket and writes out what it holds after it.
  EXPECT_EQ(Run("set b 0 0 5\r\nhel"), "");
  out = Run("lo\r\nlru_crawler metadump all\r\n");
  EXPECT_EQ(out.substr(0, 8), "STORED\r\n");
  EXPECT_TRUE(dump_lines(out)) << out;
  // The checks memcached makes first still come first.
  EXPECT_EQ(Run("mg foo v\r\nlru_crawler disable\r\nlru_crawler metadump all\r\n"),
            "EN\r\nOK\r\nCLIENT_ERROR lru crawler disabled\r\n");
  EXPECT_EQ(Run("lru_crawler enable\r\n"), "OK\r\n");
  EXPECT_EQ(Run("mg foo v\r\nwatch\r\n"),
            "EN\r\nERROR cannot pipeline other commands before watch\r\n");
  EXPECT_EQ(Run("watch\r\nversion\r\n"), "OK\r\n");  // alone in its batch: a watcher
}

// `lru_crawler crawl` runs a crawl (before the reply here: the engine's
// maintenance thread is not started) and `stats` shows memcached's crawler
// lines: the starts (crawls and metadumps) while the crawler is enabled, the
// items it freed and looked at, in general and per class.
TEST_F(AdminTest, CrawlFreesExpiredItemsAndStatsCountIt) {
  Make();
  clock_.SetForTest(100);
  Run("set a 0 1 1\r\nx\r\nset b 0 1 1\r\nx\r\nset c 0 0 1\r\nx\r\n");
  clock_.SetForTest(102);
  const auto stat = [&](const std::string& what, const std::string& name) {
    const std::string out = Run("stats" + what + "\r\n");
    const size_t at = out.find("STAT " + name + " ");
    if (at == std::string::npos) return std::string("absent");
    const size_t from = at + 6 + name.size();
    return out.substr(from, out.find("\r\n", from) - from);
  };
  EXPECT_EQ(stat("", "lru_crawler_starts"), "0");
  EXPECT_EQ(stat("", "lru_crawler_running"), "0");
  EXPECT_EQ(Run("lru_crawler crawl 1\r\n"), "OK\r\n");
  EXPECT_EQ(stat("", "lru_crawler_starts"), "1");
  EXPECT_EQ(stat("", "lru_crawler_running"), "0");
  EXPECT_EQ(stat("", "crawler_reclaimed"), "2");
  EXPECT_EQ(stat("", "crawler_items_checked"), "3");
  EXPECT_EQ(stat("", "reclaimed"), "0");
  EXPECT_EQ(stat("", "curr_items"), "1");
  EXPECT_EQ(stat(" items", "items:1:crawler_reclaimed"), "2");
  EXPECT_EQ(stat(" items", "items:1:crawler_items_checked"), "3");
  EXPECT_EQ(stat(" items", "items:1:reclaimed"), "0");
  Run("lru_crawler metadump all\r\n");
  EXPECT_EQ(stat("", "lru_crawler_starts"), "2");
  Run("lru_crawler metadump 99\r\n");  // BADCLASS: nothing started
  EXPECT_EQ(stat("", "lru_crawler_starts"), "2");
  Run("lru_crawler disable\r\n");
  EXPECT_EQ(stat("", "lru_crawler_starts"), "absent");
  EXPECT_EQ(stat("", "lru_crawler_running"), "absent");
  EXPECT_EQ(stat("", "crawler_reclaimed"), "2");
  Run("lru_crawler enable\r\n");
  EXPECT_EQ(Run("stats reset\r\n"), "RESET\r\n");
  EXPECT_EQ(stat("", "lru_crawler_starts"), "0");
  EXPECT_EQ(stat("", "crawler_reclaimed"), "0");
  EXPECT_EQ(stat("", "crawler_items_checked"), "0");
}

// memcached 1.6.18 counts cmd_meta for `me` alone (a hit or a miss, not a
// malformed one); the other meta commands count as gets, sets and so on.
TEST_F(AdminTest, CmdMetaCountsMetaDebugAsMemcached) {
  Make();
  Run("ms k 1\r\nx\r\nmg k v\r\nmg nokey v\r\nmd k q\r\nma n N0\r\nmn\r\nme\r\n");
  const auto cmd_meta = [&] {
    const std::string out = Run("stats\r\n");
    const size_t at = out.find("STAT cmd_meta ");
    return at == std::string::npos ? std::string("absent")
                                   : out.substr(at + 14, out.find("\r\n", at) - at - 14);
  };
  EXPECT_EQ(cmd_meta(), "0");
  Run("me n\r\nme nokey\r\n");
  EXPECT_EQ(cmd_meta(), "2");
}

TEST_F(AdminTest, DumpsCanBeTurnedOff) {
  Settings s;
  s.dump_enabled = false;
  s.watch_enabled = false;
  Make(s);
  EXPECT_EQ(Run("stats cachedump 1 0\r\nlru_crawler metadump all\r\nwatch\r\n"),
            "CLIENT_ERROR stats cachedump not allowed\r\nERROR metadump not allowed\r\n"
            "CLIENT_ERROR watch commands not allowed\r\n");
}

TEST_F(AdminTest, CacheMemlimit) {
  Make();
  EXPECT_EQ(Run("cache_memlimit 100\r\n"), "OK\r\n");
  EXPECT_EQ(ctx_->store->memory_limit(), size_t{100} << 20);
  EXPECT_EQ(Run("cache_memlimit 7\r\ncache_memlimit x\r\ncache_memlimit\r\n"
                "cache_memlimit 1000000001\r\ncache_memlimit 9 noreply\r\nmn\r\n"),
            "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\nERROR\r\nERROR\r\n"
            "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\nMN\r\n");
  EXPECT_EQ(ctx_->store->memory_limit(), size_t{9} << 20);
}

TEST_F(AdminTest, WatchAnswersOkThenDiscardsInput) {
  Make();
  EXPECT_EQ(Run("watch bogus\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("watch fetchers\r\nget a\r\nversion\r\n"), "OK\r\n");
  EXPECT_EQ(Run("get a\r\n"), "");
  EXPECT_TRUE(buffered_.empty());  // nothing piles up
}

TEST_F(AdminTest, CommandBudgetStopsConsumeAndSaysSo) {
  Make();
  session_->SetCommandBudget(2);
  EXPECT_EQ(Run("mn\r\nmn\r\nmn\r\n"), "MN\r\nMN\r\n");
  EXPECT_TRUE(session_->yielded());
  session_->SetCommandBudget(2);
  EXPECT_FALSE(session_->yielded());
  EXPECT_EQ(Run(""), "MN\r\n");
  EXPECT_FALSE(session_->yielded());  // input ran out before the budget
}

}  // namespace
}  // namespace tinycached::server
