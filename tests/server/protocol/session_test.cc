// NewSession(): which protocol -B and the first byte pick, and what the
// connection layer reads of a session (Waiting, NeedBytes, the -R budget)
// whatever the protocol.
#include "server/protocol/session.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/protocol/binary.h"

namespace tinycached::server {
namespace {

namespace bin = protocol::binary;

// A request's header, extras and key; its body counts `vlen` value bytes more.
std::string Request(uint8_t opcode, size_t extlen = 0, std::string_view key = {},
                    uint32_t vlen = 0) {
  std::string r(bin::kHeaderSize, '\0');
  r[0] = static_cast<char>(bin::kRequestMagic);
  r[1] = static_cast<char>(opcode);
  r[3] = static_cast<char>(key.size());
  r[4] = static_cast<char>(extlen);
  const auto bodylen = static_cast<uint32_t>(extlen + key.size() + vlen);
  for (int i = 0; i < 4; ++i) r[8 + i] = static_cast<char>(bodylen >> (24 - 8 * i));
  r.append(extlen, '\0');
  r.append(key);
  return r;
}

class NewSessionTest : public ::testing::Test {
 protected:
  void Make(Protocol p) {
    Settings s;
    s.protocol = p;
    auto store = core::CreateEngine(s.StoreOptions(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    ctx_ = std::make_unique<ServerContext>(s, *std::move(store), &clock_);
    ctx_->thread_stats.push_back(std::make_unique<core::ThreadStats>());
    session_ = NewSession(ctx_.get(), ctx_->thread_stats[0].get());
  }

  // The replies to `in`, all of which must be consumed unless it closes.
  std::string Run(const std::string& in, bool* close = nullptr) {
    std::string out;
    bool closed = false;
    const size_t used = session_->Consume(in, &out, &closed);
    if (!closed) {
      EXPECT_EQ(used, in.size());
    }
    if (close != nullptr) *close = closed;
    return out;
  }

  core::Clock clock_;
  std::unique_ptr<ServerContext> ctx_;
  std::unique_ptr<ProtocolSession> session_;
};

TEST_F(NewSessionTest, AutoPicksOnTheFirstByte) {
  Make(Protocol::kAuto);
  EXPECT_EQ(session_->Waiting(), ProtocolSession::Wait::kCommand);
  EXPECT_EQ(Run(""), "");
  EXPECT_EQ(Run("mn\r\n"), "MN\r\n");
  Make(Protocol::kAuto);
  const std::string reply = Run(Request(bin::kNoop));
  ASSERT_EQ(reply.size(), bin::kHeaderSize);
  EXPECT_EQ(static_cast<uint8_t>(reply[0]), 0x81);  // a binary response
}

TEST_F(NewSessionTest, FixedProtocolsIgnoreTheFirstByte) {
  Make(Protocol::kBinary);
  bool close = false;
  EXPECT_EQ(Run("get a_key_long_enough_for_a_header\r\n", &close), "");  // bad magic
  EXPECT_TRUE(close);
  Make(Protocol::kAscii);
  EXPECT_EQ(Run("\x80 x\r\n"), "ERROR\r\n");
}

TEST_F(NewSessionTest, WaitingSaysWhatTheSessionAwaits) {
  for (Protocol p : {Protocol::kAscii, Protocol::kBinary}) {
    Make(p);
    std::string out;
    bool close = false;
    // A value of 5 bytes (text: and its "\r\n") awaited.
    const std::string set =
        p == Protocol::kAscii ? "set k 0 0 5\r\n" : Request(bin::kSet, 8, "k", 5);
    EXPECT_EQ(session_->Consume(set, &out, &close), set.size());
    EXPECT_EQ(session_->Waiting(), ProtocolSession::Wait::kData);
    EXPECT_EQ(session_->NeedBytes(), p == Protocol::kAscii ? 7u : 5u);
  }
  // A refused value is swallowed, not buffered.
  Make(Protocol::kAscii);
  std::string out;
  bool close = false;
  const std::string big = "set k 0 0 " + std::to_string(2 << 20) + "\r\n";
  EXPECT_EQ(session_->Consume(big, &out, &close), big.size());
  EXPECT_EQ(out, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_EQ(session_->Waiting(), ProtocolSession::Wait::kSwallow);
  EXPECT_EQ(session_->NeedBytes(), 0u);
}

TEST_F(NewSessionTest, TheBudgetSetBeforeTheFirstByteHolds) {
  Make(Protocol::kAuto);
  session_->SetCommandBudget(1);
  std::string out;
  bool close = false;
  EXPECT_EQ(session_->Consume("mn\r\nmn\r\n", &out, &close), 4u);
  EXPECT_EQ(out, "MN\r\n");
  EXPECT_TRUE(session_->yielded());
}

TEST_F(NewSessionTest, BinaryRequestsAreNotCappedByTheBudget) {
  Make(Protocol::kAuto);
  session_->SetCommandBudget(1);
  const std::string two = Request(bin::kNoop) + Request(bin::kNoop);
  EXPECT_EQ(Run(two).size(), 2 * bin::kHeaderSize);
  EXPECT_FALSE(session_->yielded());
}

}  // namespace
}  // namespace tinycached::server
