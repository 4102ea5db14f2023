// server/udp.h without sockets: the frame header, memcached's datagram count,
// and UdpExchange's framing of a session's replies, including a send that
// would block halfway and one that fails.
#include "server/udp.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tinycached::server {
namespace {

struct Datagram {
  UdpHeader h;
  std::string payload;
};

class UdpExchangeTest : public ::testing::Test {
 protected:
  UdpExchangeTest() {
    Settings s;
    auto store = core::CreateEngine(s.StoreOptions(), &clock_);
    EXPECT_TRUE(store.ok()) << store.status();
    ctx_ = std::make_unique<ServerContext>(s, *std::move(store), &clock_);
    ctx_->thread_stats.push_back(std::make_unique<core::ThreadStats>());
  }

  core::ThreadStats* stats() { return ctx_->thread_stats[0].get(); }

  void Set(const std::string& key, const std::string& value) {
    ASSERT_EQ(ctx_->store->Store(core::StoreMode::kSet, key, 0, 0, value, 0, *stats()),
              core::StoreResult::kStored);
  }

  // Runs `payload` to the end, sending into `sent`; `refuse` says, per send
  // (counted from 0), whether that one would block.
  std::vector<Datagram> Answer(std::string_view payload, uint16_t id = 7,
                               const std::vector<bool>& refuse = {}) {
    std::vector<Datagram> sent;
    size_t calls = 0;
    UdpExchange x(ctx_.get(), stats(), id, payload);
    auto send = [&](const iovec* iov, size_t n) {
      if (calls < refuse.size() && refuse[calls++]) return UdpExchange::Sent::kWouldBlock;
      std::string bytes;
      for (size_t i = 0; i < n; ++i)
        bytes.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      EXPECT_LE(bytes.size(), kUdpMaxDatagram);
      std::optional<UdpHeader> h = ParseUdpHeader(bytes + "x");  // a bare header parses too
      EXPECT_TRUE(h.has_value());
      sent.push_back({*h, bytes.substr(kUdpHeaderSize)});
      return UdpExchange::Sent::kOk;
    };
    for (int rounds = 0; rounds < 1000; ++rounds) {
      if (x.Run(send) == UdpExchange::Result::kDone) return sent;
    }
    ADD_FAILURE() << "never done";
    return sent;
  }

  core::Clock clock_;
  std::unique_ptr<ServerContext> ctx_;
};

TEST(UdpHeaderTest, ParsesAndEncodes) {
  EXPECT_FALSE(ParseUdpHeader("").has_value());
  EXPECT_FALSE(ParseUdpHeader(std::string(8, '\0')).has_value());  // a header alone
  char h[kUdpHeaderSize];
  EncodeUdpHeader({0x0102, 0x0304, 0x0506, 0x0708}, h);
  EXPECT_EQ(std::string(h, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  std::optional<UdpHeader> p = ParseUdpHeader(std::string(h, 8) + "x");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->request_id, 0x0102);
  EXPECT_EQ(p->sequence, 0x0304);
  EXPECT_EQ(p->total, 0x0506);
  EXPECT_EQ(p->reserved, 0x0708);
}

TEST(UdpHeaderTest, CountsDatagramsAsMemcachedDoes) {
  EXPECT_EQ(kUdpMaxData, 1392u);
  EXPECT_EQ(UdpDatagramCount(0), 0);
  EXPECT_EQ(UdpDatagramCount(1), 1);
  EXPECT_EQ(UdpDatagramCount(1392), 1);
  EXPECT_EQ(UdpDatagramCount(1393), 2);
  EXPECT_EQ(UdpDatagramCount(size_t{1392} * 65535), 65535);
  EXPECT_EQ(UdpDatagramCount(size_t{1392} * 70000), 65535);  // capped
}

TEST_F(UdpExchangeTest, EachResponseIsFramedApart) {
  Set("a", "abc");
  const std::vector<Datagram> d = Answer("get a zz a\r\nmn\r\nset q 0 0 1 noreply\r\nx\r\n");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].payload, "VALUE a 0 3\r\nabc\r\n");
  EXPECT_EQ(d[1].payload, "VALUE a 0 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(d[2].payload, "MN\r\n");
  for (const Datagram& g : d) {
    EXPECT_EQ(g.h.request_id, 7);
    EXPECT_EQ(g.h.sequence, 0);
    EXPECT_EQ(g.h.total, 1);
    EXPECT_EQ(g.h.reserved, 0);
  }
}

TEST_F(UdpExchangeTest, AnEmptyResponseThatLeadsIsABareHeader) {
  Set("a", "abc");
  // The missed first key leads: a bare header counting 0; after a get's
  // reply (written out at once) the next missed first key leads again.
  std::vector<Datagram> d = Answer("get zz a\r\nget zz a\r\n");
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].payload, "");
  EXPECT_EQ(d[0].h.total, 0);
  EXPECT_EQ(d[2].payload, "");
  EXPECT_EQ(d[3].payload, "VALUE a 0 3\r\nabc\r\nEND\r\n");
  // A skipped (noreply) response never is, and what follows it still leads.
  d = Answer("set q 0 0 1 noreply\r\nx\r\nget zz a\r\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].payload, "");
  // One that does not lead sends nothing; quit's, after a get, leads.
  d = Answer("mg a\r\nget zz a\r\nquit\r\nmn\r\n");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].payload, "HD\r\n");
  EXPECT_EQ(d[1].payload, "VALUE a 0 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(d[2].payload, "");
  EXPECT_EQ(d[2].h.total, 0);
}

TEST_F(UdpExchangeTest, ALargeValueIsSplitAndSurvivesABlockedSend) {
  std::string value(100000, 'x');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
  Set("big", value);
  const std::string reply = "VALUE big 0 100000\r\n" + value + "\r\nEND\r\n";
  // Every third send would block first: the exchange resumes where it stopped.
  std::vector<bool> refuse;
  for (int i = 0; i < 300; ++i) refuse.push_back(i % 3 == 1);
  for (const std::vector<bool>& r : {std::vector<bool>{}, refuse}) {
    const std::vector<Datagram> d = Answer("get big\r\n", 9, r);
    ASSERT_EQ(d.size(), UdpDatagramCount(reply.size()));
    std::string joined;
    for (size_t i = 0; i < d.size(); ++i) {
      EXPECT_EQ(d[i].h.sequence, i);
      EXPECT_EQ(d[i].h.total, d.size());
      if (i + 1 < d.size()) {
        EXPECT_EQ(d[i].payload.size(), kUdpMaxData);
      }
      joined += d[i].payload;
    }
    EXPECT_EQ(joined, reply);
  }
}

TEST_F(UdpExchangeTest, AFailedSendEndsTheExchange) {
  Set("big", std::string(50000, 'v'));
  UdpExchange x(ctx_.get(), stats(), 1, "get big big\r\n");
  int calls = 0;
  EXPECT_EQ(x.Run([&](const iovec*, size_t) {
    return ++calls == 5 ? UdpExchange::Sent::kFailed : UdpExchange::Sent::kOk;
  }),
            UdpExchange::Result::kDone);
  EXPECT_EQ(calls, 5);
}

TEST_F(UdpExchangeTest, BatchesFollowR) {
  // -R 20: 21 commands, then 20 each, the exchange yielding between them.
  std::string payload;
  for (int i = 0; i < 50; ++i) payload += "mg k\r\n";
  UdpExchange x(ctx_.get(), stats(), 1, payload);
  size_t sent = 0;
  std::vector<size_t> per_run;
  auto send = [&](const iovec*, size_t) {
    ++sent;
    return UdpExchange::Sent::kOk;
  };
  EXPECT_EQ(x.Run(send), UdpExchange::Result::kYielded);
  per_run.push_back(sent);
  EXPECT_EQ(x.Run(send), UdpExchange::Result::kYielded);
  per_run.push_back(sent);
  EXPECT_EQ(x.Run(send), UdpExchange::Result::kDone);
  per_run.push_back(sent);
  EXPECT_EQ(per_run, (std::vector<size_t>{21, 41, 50}));
  EXPECT_EQ(ctx_->conn_yields.load(), 2u);
}

TEST_F(UdpExchangeTest, LeftoversAreDropped) {
  EXPECT_TRUE(Answer("get a").empty());
  EXPECT_TRUE(Answer("set k 0 0 10\r\nabc").empty());
  EXPECT_TRUE(Answer(std::string(3000, 'x')).empty());
  const std::vector<Datagram> d = Answer("mn\r\nset k 0 0 10\r\nabc");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].payload, "MN\r\n");
}

TEST_F(UdpExchangeTest, BinaryIsServedToo) {
  std::string noop(24, '\0');
  noop[0] = static_cast<char>(0x80);
  noop[1] = 0x0a;
  const std::vector<Datagram> d = Answer(noop);
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d[0].payload.size(), 24u);
  EXPECT_EQ(static_cast<uint8_t>(d[0].payload[0]), 0x81);
}

}  // namespace
}  // namespace tinycached::server
