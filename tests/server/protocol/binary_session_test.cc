#include "server/protocol/binary_session.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/protocol/session.h"
#include "server/sasl.h"

namespace tinycached::server {
namespace {

namespace bin = protocol::binary;

std::string Be32(uint32_t v) {
  std::string s;
  bin::Append32(&s, v);
  return s;
}
std::string Be64(uint64_t v) {
  std::string s;
  bin::Append64(&s, v);
  return s;
}

struct Req {
  uint8_t op;
  std::string key, extras, value;
  uint32_t opaque = 0;
  uint64_t cas = 0;
};

std::string Frame(const Req& r) {
  bin::Header h;
  h.opcode = r.op;
  h.keylen = static_cast<uint16_t>(r.key.size());
  h.extlen = static_cast<uint8_t>(r.extras.size());
  h.bodylen = static_cast<uint32_t>(r.key.size() + r.extras.size() + r.value.size());
  h.opaque = r.opaque;
  h.cas = r.cas;
  std::string s;
  bin::AppendHeader(&s, h);
  return s + r.extras + r.key + r.value;
}

std::string SetExtras(uint32_t flags, uint32_t exptime) { return Be32(flags) + Be32(exptime); }
std::string IncrExtras(uint64_t delta, uint64_t initial, uint32_t exptime) {
  return Be64(delta) + Be64(initial) + Be32(exptime);
}

struct Resp {
  uint8_t op;
  uint16_t status;
  std::string extras, key, value;
  uint32_t opaque;
  uint64_t cas;
};

// Splits a response stream into packets (all of it must be whole packets).
std::vector<Resp> Packets(const std::string& s) {
  std::vector<Resp> out;
  size_t pos = 0;
  while (pos + bin::kHeaderSize <= s.size()) {
    const bin::Header h = bin::ParseHeader(s.data() + pos);
    EXPECT_EQ(h.magic, bin::kResponseMagic);
    const std::string body = s.substr(pos + bin::kHeaderSize, h.bodylen);
    EXPECT_EQ(body.size(), h.bodylen);
    out.push_back(Resp{h.opcode, h.vbucket_or_status, body.substr(0, h.extlen),
                       body.substr(h.extlen, h.keylen), body.substr(h.extlen + h.keylen), h.opaque,
                       h.cas});
    pos += bin::kHeaderSize + h.bodylen;
  }
  EXPECT_EQ(pos, s.size()) << "a partial packet";
  return out;
}

class BinarySessionTest : public ::testing::Test {
 protected:
  void SetUp() override { Configure(Settings{}); }

  void Configure(const Settings& s) {
    auto store = core::CreateEngine(s.StoreOptions(), &clock_);
    ctx_ = std::make_unique<ServerContext>(s, *std::move(store), &clock_);
    ctx_->thread_stats.push_back(std::make_unique<core::ThreadStats>());
    if (s.sasl) {
      passwords_ = SaslPasswords::FromText("alice:secret\nbob:hunter2\n");
      ctx_->sasl = &passwords_;
    }
  }

  // Feeds `input` in pieces of `step` bytes to one session, keeping the
  // unconsumed bytes, as a connection does.
  std::string Run(const std::string& input, size_t step = SIZE_MAX, bool* closed = nullptr) {
    std::unique_ptr<ProtocolSession> s = NewSession(ctx_.get(), ctx_->thread_stats[0].get());
    std::string buffered, out;
    bool close = false;
    for (size_t pos = 0; pos < input.size() && !close; pos += step) {
      buffered += input.substr(pos, step);
      buffered.erase(0, s->Consume(buffered, &out, &close));
    }
    if (closed != nullptr) *closed = close;
    return out;
  }

  std::vector<Resp> RunPackets(const std::vector<Req>& reqs, bool* closed = nullptr) {
    std::string in;
    for (const Req& r : reqs) in += Frame(r);
    return Packets(Run(in, SIZE_MAX, closed));
  }

  uint64_t Stat(const std::string& name) {
    for (const Resp& r : RunPackets({{bin::kStat, "", "", ""}})) {
      if (r.key == name) return std::stoull(r.value);
    }
    ADD_FAILURE() << "no stat " << name;
    return 0;
  }

  core::Clock clock_;
  std::unique_ptr<ServerContext> ctx_;
  SaslPasswords passwords_;
};

TEST_F(BinarySessionTest, SetThenGetReturnsFlagsValueAndTheSameCas) {
  auto r = RunPackets({{bin::kSet, "k", SetExtras(0xdeadbeef, 0), "hello", 11},
                       {bin::kGet, "k", "", "", 12},
                       {bin::kGetK, "k", "", "", 13}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status, bin::kSuccess);
  EXPECT_EQ(r[0].opaque, 11u);
  EXPECT_NE(r[0].cas, 0u);
  EXPECT_EQ(r[0].value, "");
  EXPECT_EQ(r[1].extras, Be32(0xdeadbeef));
  EXPECT_EQ(r[1].key, "");
  EXPECT_EQ(r[1].value, "hello");
  EXPECT_EQ(r[1].cas, r[0].cas);
  EXPECT_EQ(r[1].opaque, 12u);
  EXPECT_EQ(r[2].key, "k");
  EXPECT_EQ(r[2].value, "hello");
}

TEST_F(BinarySessionTest, QuietCommandsSuppressSuccessesAndMissesButNotErrors) {
  auto r = RunPackets({{bin::kSetQ, "a", SetExtras(0, 0), "1"},
                       {bin::kGetQ, "missing", "", ""},
                       {bin::kGetKQ, "missing", "", ""},
                       {bin::kGetQ, "a", "", "", 5},
                       {bin::kAddQ, "a", SetExtras(0, 0), "2", 6},
                       {bin::kDeleteQ, "missing", "", "", 7},
                       {bin::kIncrementQ, "n", IncrExtras(1, 10, 0), ""},
                       {bin::kAppendQ, "a", "", "x"},
                       {bin::kFlushQ, "", "", ""},
                       {bin::kNoop, "", "", "", 9}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].op, bin::kGetQ);  // a hit is sent even when quiet
  EXPECT_EQ(r[0].value, "1");
  EXPECT_EQ(r[1].op, bin::kAddQ);
  EXPECT_EQ(r[1].status, bin::kKeyExists);
  EXPECT_EQ(r[1].value, "Data exists for key.");
  EXPECT_EQ(r[2].op, bin::kDeleteQ);
  EXPECT_EQ(r[2].status, bin::kKeyNotFound);
  EXPECT_EQ(r[3].op, bin::kNoop);
  EXPECT_EQ(r[3].opaque, 9u);
}

TEST_F(BinarySessionTest, MissesOfGetAndGetK) {
  auto r = RunPackets({{bin::kGet, "nope", "", ""}, {bin::kGetK, "nope", "", ""}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].status, bin::kKeyNotFound);
  EXPECT_EQ(r[0].value, "Not found");
  EXPECT_EQ(r[1].status, bin::kKeyNotFound);
  EXPECT_EQ(r[1].key, "nope");  // getk's miss: the key, no text
  EXPECT_EQ(r[1].value, "");
}

TEST_F(BinarySessionTest, AddReplaceAppendPrepend) {
  auto r = RunPackets({{bin::kReplace, "k", SetExtras(0, 0), "r"},
                       {bin::kAppend, "k", "", "x"},
                       {bin::kAdd, "k", SetExtras(3, 0), "mid"},
                       {bin::kAdd, "k", SetExtras(0, 0), "again"},
                       {bin::kAppend, "k", "", ">"},
                       {bin::kPrepend, "k", "", "<"},
                       {bin::kReplace, "k", SetExtras(4, 0), "new"},
                       {bin::kGet, "k", "", ""}});
  ASSERT_EQ(r.size(), 8u);
  EXPECT_EQ(r[0].status, bin::kKeyNotFound);
  EXPECT_EQ(r[1].status, bin::kNotStored);
  EXPECT_EQ(r[1].value, "Not stored.");
  EXPECT_EQ(r[2].status, bin::kSuccess);
  EXPECT_EQ(r[3].status, bin::kKeyExists);
  EXPECT_EQ(r[4].status, bin::kSuccess);
  EXPECT_EQ(r[5].status, bin::kSuccess);
  EXPECT_GT(r[5].cas, r[4].cas);
  EXPECT_EQ(r[6].status, bin::kSuccess);
  EXPECT_EQ(r[7].extras, Be32(4));
  EXPECT_EQ(r[7].value, "new");
}

TEST_F(BinarySessionTest, AppendKeepsFlagsAndChecksAGivenCas) {
  auto set = RunPackets({{bin::kSet, "k", SetExtras(9, 0), "a"}});
  const uint64_t cas = set[0].cas;
  auto r = RunPackets({{bin::kAppend, "k", "", "b", 0, cas + 100},
                       {bin::kAppend, "k", "", "c", 0, cas},
                       {bin::kGet, "k", "", ""}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status, bin::kKeyExists);
  EXPECT_EQ(r[1].status, bin::kSuccess);
  EXPECT_EQ(r[2].value, "ac");
  EXPECT_EQ(r[2].extras, Be32(9));
}

TEST_F(BinarySessionTest, CasInTheHeaderMakesAStoreACompareAndSwap) {
  auto r = RunPackets({{bin::kSet, "missing", SetExtras(0, 0), "v", 0, 5},
                       {bin::kAdd, "missing", SetExtras(0, 0), "v", 0, 5},
                       {bin::kSet, "k", SetExtras(0, 0), "v1"}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status, bin::kKeyNotFound);
  EXPECT_EQ(r[1].status, bin::kKeyNotFound);
  const uint64_t cas = r[2].cas;
  r = RunPackets({{bin::kSet, "k", SetExtras(0, 0), "v2", 0, cas + 1},
                  {bin::kSet, "k", SetExtras(0, 0), "v3", 0, cas},
                  {bin::kSet, "k", SetExtras(0, 0), "v4", 0, cas},
                  {bin::kGet, "k", "", ""}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].status, bin::kKeyExists);
  EXPECT_EQ(r[1].status, bin::kSuccess);
  EXPECT_NE(r[1].cas, cas);
  EXPECT_EQ(r[2].status, bin::kKeyExists);
  EXPECT_EQ(r[3].value, "v3");
  EXPECT_EQ(r[3].cas, r[1].cas);
}

TEST_F(BinarySessionTest, WithoutCasTheRequestsUniqueIsIgnoredForStores) {
  Settings s;
  s.layout.cas = false;
  Configure(s);
  auto r = RunPackets({{bin::kSet, "k", SetExtras(0, 0), "v", 0, 77},
                       {bin::kGet, "k", "", ""},
                       {bin::kDelete, "k", "", "", 0, 77},
                       {bin::kIncrement, "k", IncrExtras(1, 0, 0), "", 0, 77}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].status, bin::kSuccess);  // memcached -C: a plain set
  EXPECT_EQ(r[0].cas, 0u);
  EXPECT_EQ(r[1].cas, 0u);
  EXPECT_EQ(r[2].status, bin::kKeyExists);  // the item's unique is 0
  EXPECT_EQ(r[3].status, bin::kKeyExists);  // compared before the value is parsed
}

TEST_F(BinarySessionTest, DeleteHitMissAndCasMismatch) {
  const uint64_t cas = RunPackets({{bin::kSet, "k", SetExtras(0, 0), "v"}})[0].cas;
  auto r = RunPackets({{bin::kDelete, "k", "", "", 0, cas + 1},
                       {bin::kDelete, "k", "", "", 0, cas},
                       {bin::kDelete, "k", "", ""}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status, bin::kKeyExists);
  EXPECT_EQ(r[1].status, bin::kSuccess);
  EXPECT_EQ(r[1].cas, 0u);
  EXPECT_EQ(r[2].status, bin::kKeyNotFound);
}

TEST_F(BinarySessionTest, IncrementAndDecrement) {
  auto r = RunPackets({{bin::kIncrement, "n", IncrExtras(1, 5, 0xffffffff), ""},
                       {bin::kIncrement, "n", IncrExtras(1, 5, 0), ""},
                       {bin::kIncrement, "n", IncrExtras(10, 5, 0), ""},
                       {bin::kDecrement, "n", IncrExtras(100, 5, 0), ""},
                       {bin::kGet, "n", "", ""},
                       {bin::kSet, "s", SetExtras(0, 0), "text"},
                       {bin::kIncrement, "s", IncrExtras(1, 0, 0), ""},
                       {bin::kIncrement, "n", IncrExtras(1, 0, 0), "", 0, 12345}});
  ASSERT_EQ(r.size(), 8u);
  EXPECT_EQ(r[0].status, bin::kKeyNotFound);
  EXPECT_EQ(r[1].value, Be64(5));  // created with the initial value
  EXPECT_NE(r[1].cas, 0u);
  EXPECT_EQ(r[2].value, Be64(15));
  EXPECT_GT(r[2].cas, r[1].cas);
  EXPECT_EQ(r[3].value, Be64(0));
  EXPECT_EQ(r[4].value, "0 ");  // decremented in place, as memcached
  EXPECT_EQ(r[4].extras, Be32(0));
  EXPECT_EQ(r[6].status, bin::kNonNumeric);
  EXPECT_EQ(r[7].status, bin::kKeyExists);
}

TEST_F(BinarySessionTest, TouchAndGetAndTouch) {
  auto r = RunPackets({{bin::kSet, "k", SetExtras(7, 0), "v"},
                       {bin::kTouch, "k", Be32(100), ""},
                       {bin::kGat, "k", Be32(100), ""},
                       {bin::kGatK, "k", Be32(100), ""},
                       {bin::kGatQ, "missing", Be32(100), ""},
                       {bin::kTouch, "missing", Be32(100), ""}});
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[1].extras, Be32(7));
  EXPECT_EQ(r[1].value, "");
  EXPECT_EQ(r[1].cas, r[0].cas);
  EXPECT_EQ(r[2].value, "v");
  EXPECT_EQ(r[3].key, "k");
  EXPECT_EQ(r[3].value, "v");
  EXPECT_EQ(r[4].status, bin::kKeyNotFound);
  EXPECT_EQ(Stat("cmd_touch"), 5u);
  EXPECT_EQ(Stat("touch_hits"), 3u);
}

TEST_F(BinarySessionTest, FlushVersionNoopQuit) {
  bool closed = false;
  auto r = RunPackets({{bin::kSet, "k", SetExtras(0, 0), "v"},
                       {bin::kFlush, "", "", ""},
                       {bin::kGet, "k", "", ""},
                       {bin::kVersion, "", "", ""},
                       {bin::kNoop, "", "", ""},
                       {bin::kQuit, "", "", "", 3},
                       {bin::kNoop, "", "", ""}},
                      &closed);
  ASSERT_EQ(r.size(), 6u);  // nothing after the quit
  EXPECT_EQ(r[1].status, bin::kSuccess);
  EXPECT_EQ(r[2].status, bin::kKeyNotFound);
  EXPECT_EQ(r[3].value, kVersion);
  EXPECT_EQ(r[4].op, bin::kNoop);
  EXPECT_EQ(r[5].op, bin::kQuit);
  EXPECT_EQ(r[5].opaque, 3u);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(RunPackets({{bin::kQuitQ, "", "", ""}}, &closed).empty());
  EXPECT_TRUE(closed);
}

TEST_F(BinarySessionTest, FlushRefusedUnderDashF) {
  Settings s;
  s.flush_enabled = false;
  Configure(s);
  auto r = RunPackets({{bin::kFlush, "", "", ""}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, bin::kAuthError);
}

TEST_F(BinarySessionTest, StatGroups) {
  auto r = RunPackets({{bin::kGet, "a", "", ""}, {bin::kStat, "", "", "", 4}});
  ASSERT_GT(r.size(), 10u);
  EXPECT_EQ(r[1].key, "pid");
  EXPECT_EQ(r[1].opaque, 4u);
  EXPECT_EQ(r.back().key, "");
  EXPECT_EQ(r.back().value, "");
  EXPECT_EQ(Stat("cmd_get"), 1u);
  EXPECT_EQ(Stat("get_misses"), 1u);
  r = RunPackets({{bin::kStat, "reset", "", ""}});
  ASSERT_EQ(r.size(), 1u);  // only the terminator
  EXPECT_EQ(Stat("cmd_get"), 0u);
  r = RunPackets({{bin::kStat, "settings", "", ""}});
  EXPECT_EQ(r[0].key, "maxbytes");
  for (const char* group : {"conns", "bogus", "detail x"}) {
    r = RunPackets({{bin::kStat, group, "", ""}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, bin::kKeyNotFound);
  }
}

TEST_F(BinarySessionTest, BadFramesGetMemcachedsAnswers) {
  bool closed = false;
  // Bad magic after the first packet: closed without a word.
  std::string in = Frame({bin::kNoop, "", "", ""});
  in += std::string("\x81\x0a", 2) + std::string(22, '\0');
  EXPECT_EQ(Packets(Run(in, SIZE_MAX, &closed)).size(), 1u);
  EXPECT_TRUE(closed);
  // Unknown opcode: an error, then a body's worth of bytes swallowed.
  auto r = RunPackets({{0x55, "", "", "", 7}, {bin::kNoop, "", "", "", 8}}, &closed);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].status, bin::kUnknownCommand);
  EXPECT_EQ(r[0].op, 0x55);
  EXPECT_EQ(r[0].opaque, 7u);
  EXPECT_FALSE(closed);
  // Key or key+extras over the body: unknown command, closed.
  std::string bad = Frame({bin::kGet, "abc", "", ""});
  bad[11] = 2;  // bodylen 2 < keylen 3
  r = Packets(Run(bad, SIZE_MAX, &closed));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, bin::kUnknownCommand);
  EXPECT_TRUE(closed);
  // Key over 250 bytes, or extras wrong for the command: invalid arguments, closed.
  for (const Req& q : {Req{bin::kGet, std::string(251, 'k'), "", ""},
                       Req{bin::kGet, "k", Be32(1), ""}, Req{bin::kSet, "k", Be32(1), "v"},
                       Req{bin::kNoop, "", "", "x"}, Req{bin::kDelete, "k", Be32(0), ""}}) {
    r = RunPackets({q, {bin::kNoop, "", "", ""}}, &closed);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, bin::kInvalidArguments);
    EXPECT_EQ(r[0].value, "Invalid arguments");
    EXPECT_TRUE(closed);
  }
  // Header, extras and key that do not fit memcached's 16 KiB read buffer: closed.
  std::string huge = Frame({bin::kGet, std::string(16361, 'k'), "", ""});
  EXPECT_EQ(Run(huge.substr(0, 24), SIZE_MAX, &closed), "");
  EXPECT_TRUE(closed);
}

TEST_F(BinarySessionTest, TooLargeValuesAreSwallowedNotBuffered) {
  const std::string value(2 << 20, 'x');
  bool closed = false;
  auto r = RunPackets({{bin::kSet, "k", SetExtras(0, 0), "old"},
                       {bin::kSet, "k", SetExtras(0, 0), value},
                       {bin::kGet, "k", "", ""},
                       {bin::kAppend, "k", "", value},
                       {bin::kNoop, "", "", ""}},
                      &closed);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[1].status, bin::kTooLarge);
  EXPECT_EQ(r[1].value, "Too large.");
  EXPECT_EQ(r[2].status, bin::kKeyNotFound);  // a failed set drops the old value
  EXPECT_EQ(r[3].status, bin::kTooLarge);
  EXPECT_EQ(r[4].op, bin::kNoop);
  // The swallow needs no buffer: a session given the input in small pieces
  // never holds more than a piece.
  std::unique_ptr<ProtocolSession> s = NewSession(ctx_.get(), ctx_->thread_stats[0].get());
  std::string out;
  bool close = false;
  std::string head = Frame({bin::kSet, "k", SetExtras(0, 0), ""});
  head[8] = 0x10;  // bodylen 256 MiB + 9
  EXPECT_EQ(s->Consume(head, &out, &close), head.size());
  EXPECT_EQ(s->Waiting(), ProtocolSession::Wait::kSwallow);
  EXPECT_EQ(s->NeedBytes(), 0u);
  const std::string chunk(4096, 'z');
  EXPECT_EQ(s->Consume(chunk, &out, &close), chunk.size());
  // A body length that wraps memcached's int: too large, nothing swallowed.
  std::string wrap = Frame({bin::kSet, "k", SetExtras(0, 0), ""});
  wrap[8] = wrap[9] = wrap[10] = wrap[11] = '\xff';
  r = Packets(Run(wrap + Frame({bin::kNoop, "", "", ""})));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].status, bin::kTooLarge);
  EXPECT_EQ(r[1].op, bin::kNoop);
}

TEST_F(BinarySessionTest, RepliesDoNotDependOnReadSizes) {
  std::string in;
  for (const Req& q :
       {Req{bin::kSet, "a", SetExtras(1, 0), std::string(100, 'v')}, Req{bin::kGetK, "a", "", ""},
        Req{bin::kIncrement, "c", IncrExtras(2, 7, 0), ""}, Req{bin::kGetQ, "zz", "", ""},
        Req{0x60, "k", "", "abc"}, Req{bin::kNoop, "", "", ""}, Req{bin::kAppendQ, "a", "", "w"},
        Req{bin::kGet, "a", "", ""}}) {
    in += Frame(q);
  }
  const std::string whole = Run(in);
  for (size_t step : {1, 2, 5, 24, 25, 100}) {
    ctx_->store->FlushAll(0);
    clock_.AdvanceForTest(1);
    std::string got = Run(in, step);
    auto a = Packets(whole);
    auto b = Packets(got);
    ASSERT_EQ(a.size(), b.size()) << step;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].op, b[i].op);
      EXPECT_EQ(a[i].status, b[i].status);
      EXPECT_EQ(a[i].key, b[i].key);
      EXPECT_EQ(a[i].value, b[i].value);
    }
  }
}

TEST_F(BinarySessionTest, ProtocolChoice) {
  // auto (the default): ASCII unless the first byte is 0x80.
  EXPECT_EQ(Run("version\r\n"), std::string("VERSION ") + kVersion + "\r\n");
  EXPECT_EQ(Packets(Run(Frame({bin::kVersion, "", "", ""})))[0].value, kVersion);
  Settings s;
  s.protocol = Protocol::kAscii;
  Configure(s);
  // -B ascii: a binary request is a line of text like any other (cut at its first NUL).
  EXPECT_EQ(Run(Frame({bin::kGet, "k", "", ""}) + "\r\n"), "ERROR\r\n");
  s.protocol = Protocol::kBinary;
  Configure(s);
  bool closed = false;
  EXPECT_EQ(Run("version\r\nversion\r\nversion\r\n", SIZE_MAX, &closed), "");  // a bad magic
  EXPECT_TRUE(closed);
}

TEST_F(BinarySessionTest, SaslPlain) {
  Settings s;
  s.sasl = true;
  s.protocol = Protocol::kBinary;
  Configure(s);
  bool closed = false;
  auto r = RunPackets({{bin::kGet, "k", "", ""}, {bin::kNoop, "", "", ""}}, &closed);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, bin::kAuthError);
  EXPECT_EQ(r[0].value, "Auth failure.");
  EXPECT_TRUE(closed);
  r = RunPackets({{bin::kVersion, "", "", ""},
                  {bin::kSaslListMechs, "", "", ""},
                  {bin::kSaslAuth, "PLAIN", "", std::string("\0alice\0wrong", 12)},
                  {bin::kSaslAuth, "CRAM-MD5", "", "x"},
                  {bin::kSaslStep, "PLAIN", "", std::string("\0alice\0secret", 13)},
                  {bin::kSaslAuth, "PLAIN", "", std::string("\0alice\0secret", 13)},
                  {bin::kSet, "k", SetExtras(0, 0), "v"},
                  {bin::kGet, "k", "", ""}},
                 &closed);
  ASSERT_EQ(r.size(), 8u);
  EXPECT_EQ(r[0].value, kVersion);
  EXPECT_EQ(r[1].value, "PLAIN");
  EXPECT_EQ(r[2].status, bin::kAuthError);
  EXPECT_EQ(r[3].status, bin::kAuthError);
  EXPECT_EQ(r[4].status, bin::kAuthError);
  EXPECT_EQ(r[5].status, bin::kSuccess);
  EXPECT_EQ(r[5].value, "Authenticated");
  EXPECT_EQ(r[6].status, bin::kSuccess);
  EXPECT_EQ(r[7].value, "v");
  EXPECT_FALSE(closed);
  // A failed attempt drops an earlier authentication.
  r = RunPackets({{bin::kSaslAuth, "PLAIN", "", std::string("\0bob\0hunter2", 12)},
                  {bin::kSaslAuth, "PLAIN", "", std::string("\0bob\0hunter", 11)},
                  {bin::kGet, "k", "", ""}},
                 &closed);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status, bin::kSuccess);
  EXPECT_EQ(r[1].status, bin::kAuthError);
  EXPECT_EQ(r[2].status, bin::kAuthError);
  EXPECT_TRUE(closed);
}

TEST_F(BinarySessionTest, SaslCommandsWithoutDashSAreUnknown) {
  auto r = RunPackets({{bin::kSaslListMechs, "", "", ""},
                       {bin::kSaslAuth, "PLAIN", "", std::string("\0a\0b", 4)},
                       {bin::kNoop, "", "", ""}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status, bin::kUnknownCommand);
  EXPECT_EQ(r[1].status, bin::kUnknownCommand);
  EXPECT_EQ(r[2].op, bin::kNoop);
}

// Mutated frames (seeded, so a failure repeats): whatever the bytes, the
// session answers or closes, never reads past its input, and a fresh
// connection afterwards still works. Run under ASan/UBSan by CI.
TEST_F(BinarySessionTest, MutatedFramesNeverBreakTheServer) {
  const std::vector<std::string> frames = {
      Frame({bin::kSet, "k", SetExtras(1, 0), "value"}),
      Frame({bin::kGetK, "k", "", ""}),
      Frame({bin::kIncrement, "c", IncrExtras(1, 5, 0), ""}),
      Frame({bin::kAppendQ, "k", "", "xyz"}),
      Frame({bin::kGat, "k", Be32(5), ""}),
      Frame({bin::kStat, "settings", "", ""}),
      Frame({bin::kFlush, "", Be32(0), ""}),
      Frame({bin::kDelete, "k", "", ""}),
      Frame({bin::kSaslAuth, "PLAIN", "", std::string("\0u\0p", 4)}),
  };
  uint64_t rng = 0x9e3779b97f4a7c15;
  auto next = [&rng]() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string in;
    const int n = 1 + static_cast<int>(next() % 4);
    for (int i = 0; i < n; ++i) in += frames[next() % frames.size()];
    const int flips = static_cast<int>(next() % 4);
    for (int i = 0; i < flips; ++i) {
      // Mostly the header's lengths and opcode, sometimes anywhere.
      const size_t at = next() % 2 == 0 ? next() % 12 : next() % in.size();
      in[at] = static_cast<char>(next());
    }
    if (next() % 3 == 0) in.resize(next() % (in.size() + 1));
    in[0] = static_cast<char>(bin::kRequestMagic);  // stays a binary connection
    Run(in, 1 + next() % 64);
  }
  auto r = RunPackets({{bin::kSet, "ok", SetExtras(0, 0), "1"}, {bin::kGet, "ok", "", ""}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].value, "1");
}

TEST(SaslPasswordsTest, FileFormatAndChecks) {
  SaslPasswords db =
      SaslPasswords::FromText("alice:secret\r\n\nnocolon\n:nouser\nbob:a:b\ncarol:\n");
  EXPECT_EQ(db.size(), 3u);
  EXPECT_TRUE(db.Check("alice", "secret"));
  EXPECT_FALSE(db.Check("alice", "secret\r"));
  EXPECT_FALSE(db.Check("alice", "secre"));
  EXPECT_FALSE(db.Check("alice", "secrets"));
  EXPECT_TRUE(db.Check("bob", "a:b"));
  EXPECT_TRUE(db.Check("carol", ""));
  EXPECT_FALSE(db.Check("dave", ""));
  EXPECT_FALSE(db.Check("", "secret"));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace tinycached::server
