#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/protocol/session.h"

namespace tinycached::server {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() {
    Settings s;
    auto store = core::CreateEngine(s.StoreOptions(), &clock_);
    ctx_ = std::make_unique<ServerContext>(s, *std::move(store), &clock_);
    ctx_->thread_stats.push_back(std::make_unique<core::ThreadStats>());
  }

  std::unique_ptr<ProtocolSession> NewTextSession() {
    return NewSession(ctx_.get(), ctx_->thread_stats[0].get());
  }

  // Feeds `input` in pieces of `step` bytes, as a connection would, keeping
  // unconsumed bytes for the next round. Returns everything replied.
  std::string Run(const std::string& input, size_t step = SIZE_MAX, bool* closed = nullptr) {
    std::unique_ptr<ProtocolSession> s = NewTextSession();
    std::string buffered, out;
    bool close = false;
    for (size_t pos = 0; pos < input.size() && !close; pos += step) {
      buffered += input.substr(pos, step);
      buffered.erase(0, s->Consume(buffered, &out, &close));
    }
    if (closed != nullptr) *closed = close;
    return out;
  }

  core::Clock clock_;
  std::unique_ptr<ServerContext> ctx_;
};

const char kPipeline[] =
    "set a 0 0 5\r\nhello\r\n"
    "get a b\r\n"
    "append a 0 0 1 noreply\r\n!\r\n"
    "gets a\r\n"
    "incr n 1\r\n"
    "set n 3 0 2\r\n10\r\n"
    "incr n 5\r\n"
    "decr n 100\r\n"
    "touch n 100\r\n"
    "delete a\r\n"
    "delete a 0\r\n"
    "bogus\r\n"
    "set big 0 0 2000000\r\n" /* too large: the data is swallowed */;

TEST_F(SessionTest, PipelineRepliesAreTheSameWhateverTheReadSizes) {
  const std::string input = std::string(kPipeline) + std::string(2000000, 'z') + "\r\nget n\r\n";
  const std::string whole = Run(input);
  EXPECT_EQ(whole,
            "STORED\r\n"
            "VALUE a 0 5\r\nhello\r\nEND\r\n"
            "VALUE a 0 6 2\r\nhello!\r\nEND\r\n"
            "NOT_FOUND\r\n"
            "STORED\r\n"
            "15\r\n"
            "0\r\n"
            "TOUCHED\r\n"
            "DELETED\r\n"
            "NOT_FOUND\r\n"
            "ERROR\r\n"
            "SERVER_ERROR object too large for cache\r\n"
            "VALUE n 3 2\r\n0 \r\nEND\r\n");
  ctx_->store->FlushAll(0);
  clock_.AdvanceForTest(1);
  for (size_t step : {1, 2, 3, 7, 64, 4096}) {
    ctx_->store->FlushAll(0);
    clock_.AdvanceForTest(1);
    // The CAS unique differs between runs; everything else must not.
    std::string got = Run(input, step);
    const size_t cas_at = got.find("hello!\r\n") - 3;
    ASSERT_NE(cas_at, std::string::npos);
    EXPECT_EQ(got.size(), whole.size() + (got.size() - whole.size())) << step;
    EXPECT_EQ(got.substr(0, 40), whole.substr(0, 40)) << step;
    EXPECT_EQ(got.substr(got.find("NOT_FOUND")), whole.substr(whole.find("NOT_FOUND"))) << step;
  }
}

TEST_F(SessionTest, WaitsForTheWholeDataBlock) {
  std::unique_ptr<ProtocolSession> s = NewTextSession();
  std::string out;
  bool close = false;
  EXPECT_EQ(s->Consume("set k 0 0 5\r\nhel", &out, &close), 13u);
  EXPECT_EQ(s->Waiting(), ProtocolSession::Wait::kData);
  EXPECT_EQ(out, "");
  EXPECT_EQ(s->Consume("hel", &out, &close), 0u);
  EXPECT_EQ(s->Consume("hello\r", &out, &close), 0u);
  EXPECT_EQ(s->Consume("hello\r\nget k\r\n", &out, &close), 14u);
  EXPECT_EQ(out, "STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n");
}

TEST_F(SessionTest, BadDataChunkKeepsTheOldValue) {
  Run("set k 0 0 1\r\nv\r\n");
  EXPECT_EQ(Run("set k 0 0 1\r\nxyz\r\nget k\r\n"),
            "CLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE k 0 1\r\nv\r\nEND\r\n");
}

TEST_F(SessionTest, BinarySafeValues) {
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += "\r\nEND\r\n";
  const std::string out =
      Run("set bin 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\nget bin\r\n");
  EXPECT_EQ(out, "STORED\r\nVALUE bin 0 " + std::to_string(value.size()) + "\r\n" + value +
                     "\r\nEND\r\n");
}

TEST_F(SessionTest, ManyKeyGetsContinuePastTheTokenLimit) {
  std::string sets, get = "get", want;
  for (int i = 0; i < 60; ++i) {
    sets += "set k" + std::to_string(i) + " 0 0 1 noreply\r\nv\r\n";
    get += " k" + std::to_string(i);
    want += "VALUE k" + std::to_string(i) + " 0 1\r\nv\r\n";
  }
  EXPECT_EQ(Run(sets + get + "\r\n"), want + "END\r\n");
}

TEST_F(SessionTest, KeyLengthLimit) {
  const std::string k250(250, 'k'), k251(251, 'k');
  EXPECT_EQ(Run("set " + k250 + " 0 0 1\r\nv\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("set " + k251 + " 0 0 1\r\nv\r\n"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n");
  EXPECT_EQ(Run("get " + k250 + " " + k251 + "\r\n"), "CLIENT_ERROR bad command line format\r\n");
}

TEST_F(SessionTest, LongLinesCloseUnlessTheyAreGets) {
  bool closed = false;
  Run(std::string(3000, 'x'), SIZE_MAX, &closed);
  EXPECT_TRUE(closed);
  std::string get = "get";
  while (get.size() < 5000) get += " somekey";
  const std::string out = Run(get.substr(0, 4000), 1000, &closed);
  EXPECT_FALSE(closed);
  EXPECT_EQ(out, "");
}

TEST_F(SessionTest, QuitAndHttpClose) {
  bool closed = false;
  EXPECT_EQ(Run("version\r\nquit\r\nversion\r\n", SIZE_MAX, &closed),
            std::string("VERSION ") + kVersion + "\r\n");
  EXPECT_TRUE(closed);
  EXPECT_EQ(Run("GET / HTTP/1.1\r\n", SIZE_MAX, &closed), "");
  EXPECT_TRUE(closed);
}

TEST_F(SessionTest, NoreplySilencesEvenErrors) {
  EXPECT_EQ(Run("set k 0 0 1 noreply\r\nv\r\nincr k 1 noreply\r\ndelete zz noreply\r\n"
                "touch k 1 noreply\r\nflush_all noreply\r\nmn\r\n"),
            "MN\r\n");
}

TEST_F(SessionTest, StopsAtTheOutputLimitAndResumes) {
  Run("set k 0 0 1000\r\n" + std::string(1000, 'v') + "\r\n");
  std::unique_ptr<ProtocolSession> s = NewTextSession();
  std::string in, out;
  for (int i = 0; i < 100; ++i) in += "get k\r\n";
  bool close = false;
  size_t used = s->Consume(in, &out, &close, 5000);
  EXPECT_LT(used, in.size());
  EXPECT_LT(out.size(), 5000u + 2000u);
  out.clear();
  used += s->Consume(std::string_view(in).substr(used), &out, &close);
  EXPECT_EQ(used, in.size());
}

TEST_F(SessionTest, AMultiGetLargerThanTheOutputLimitIsResumed) {
  Run("set k 0 0 1000\r\n" + std::string(1000, 'v') + "\r\n");
  std::unique_ptr<ProtocolSession> s = NewTextSession();
  std::string get = "get", want;
  for (int i = 0; i < 100; ++i) {
    get += " k";
    want += "VALUE k 0 1000\r\n" + std::string(1000, 'v') + "\r\n";
  }
  get += "\r\nversion\r\n";
  std::string out, all;
  bool close = false;
  size_t used = s->Consume(get, &out, &close, 5000);
  EXPECT_EQ(s->Waiting(), ProtocolSession::Wait::kOutput);
  int rounds = 0;
  while (s->Waiting() == ProtocolSession::Wait::kOutput && rounds++ < 1000) {
    EXPECT_LT(out.size(), 5000u + 1100u);  // bounded by the limit plus one value
    all += out;
    out.clear();  // the connection sent it
    used += s->Consume(std::string_view(get).substr(used), &out, &close, 5000);
  }
  all += out;
  EXPECT_GT(rounds, 10);
  EXPECT_EQ(all, want + "END\r\n" + "VERSION " + kVersion + "\r\n");
  EXPECT_EQ(used, get.size());
}

TEST_F(SessionTest, StatsFamily) {
  Run("set a 0 0 1\r\nx\r\nget a\r\nget b\r\n");
  const std::string stats = Run("stats\r\n");
  EXPECT_NE(stats.find("STAT cmd_get 2\r\n"), std::string::npos);
  EXPECT_NE(stats.find("STAT get_hits 1\r\n"), std::string::npos);
  EXPECT_NE(stats.find("STAT get_misses 1\r\n"), std::string::npos);
  EXPECT_NE(stats.find("STAT curr_items 1\r\n"), std::string::npos);
  EXPECT_NE(stats.find("STAT bytes 61\r\n"), std::string::npos);
  EXPECT_EQ(stats.substr(stats.size() - 5), "END\r\n");
  EXPECT_NE(Run("stats slabs\r\n").find("STAT 1:chunk_size 96\r\n"), std::string::npos);
  EXPECT_NE(Run("stats items\r\n").find("STAT items:1:number 1\r\n"), std::string::npos);
  EXPECT_NE(Run("stats settings\r\n").find("STAT item_layout stock\r\n"), std::string::npos);
  EXPECT_EQ(Run("stats reset\r\n"), "RESET\r\n");
  EXPECT_NE(Run("stats\r\n").find("STAT cmd_get 0\r\n"), std::string::npos);
  EXPECT_EQ(Run("stats nonsense\r\n"), "ERROR\r\n");
}

}  // namespace
}  // namespace tinycached::server
