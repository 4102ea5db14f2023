// Meta commands through a socketless session, on a clock the test moves:
// the numbers the differential test must hide (TTLs, ages) are checked
// exactly here, under memcached's layout, the lean one and the tiny engine.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/protocol/base64.h"
#include "server/protocol/session.h"

namespace tinycached::server {
namespace {

class MetaTest : public ::testing::TestWithParam<const char*> {
 protected:
  MetaTest() {
    Settings s;
    s.preset = GetParam();
    s.layout = FindPreset(s.preset)->layout;
    auto store = core::CreateEngine(s.StoreOptions(), &clock_);
    EXPECT_TRUE(store.ok());
    ctx_ = std::make_unique<ServerContext>(s, *std::move(store), &clock_);
    ctx_->thread_stats.push_back(std::make_unique<core::ThreadStats>());
  }

  std::string Run(const std::string& input) {
    std::unique_ptr<ProtocolSession> s = NewSession(ctx_.get(), ctx_->thread_stats[0].get());
    std::string buffered = input, out;
    bool close = false;
    buffered.erase(0, s->Consume(buffered, &out, &close));
    EXPECT_TRUE(buffered.empty()) << buffered;
    return out;
  }

  bool cas() const { return ctx_->settings.layout.cas; }
  bool stock() const { return std::string(GetParam()) == "stock"; }

  core::Clock clock_;
  std::unique_ptr<ServerContext> ctx_;
};

TEST_P(MetaTest, TtlCountsDownWithTheClock) {
  EXPECT_EQ(Run("ms 7 1 T100\r\nx\r\nmg 7 t v\r\n"), "HD\r\nVA 1 t100\r\nx\r\n");
  clock_.AdvanceForTest(30);
  EXPECT_EQ(Run("mg 7 t\r\n"), "HD t70\r\n");
  // A `t` before `T` shows the TTL the item had; after it, the new one.
  EXPECT_EQ(Run("mg 7 t T10 t\r\n"), "CLIENT_ERROR duplicate flag\r\n");
  EXPECT_EQ(Run("mg 7 t T10\r\nmg 7 t\r\n"), "HD t70\r\nHD t10\r\n");
  clock_.AdvanceForTest(10);
  EXPECT_EQ(Run("mg 7 v\r\n"), "EN\r\n");
}

TEST_P(MetaTest, TouchOfAnInlineItemMovesItAndKeepsTheValue) {
  // Under tiny, "12"/"34" live in a slot until the TTL needs a field.
  EXPECT_EQ(Run("ms 12 2\r\n34\r\nmg 12 T50 v t\r\nmg 12 v t f\r\n"),
            "HD\r\nVA 2 t50\r\n34\r\nVA 2 t50 f0\r\n34\r\n");
  clock_.AdvanceForTest(51);
  EXPECT_EQ(Run("mg 12 v\r\n"), "EN\r\n");
}

TEST_P(MetaTest, LastAccessAndMetaDebugFollowTheClock) {
  Run("set 5 0 1000 1\r\nx\r\n");
  clock_.AdvanceForTest(7);
  // Lean items and tiny slots keep no access time: l and la read 0.
  const std::string la = stock() ? "7" : "0";
  EXPECT_EQ(Run("mg 5 l h\r\n"), "HD l" + la + " h0\r\n");
  EXPECT_EQ(Run("mg 5 l h\r\n"), "HD l0 h1\r\n");
  const std::string me = Run("me 5\r\n");
  EXPECT_EQ(me.substr(0, me.find(" cas=")), "ME 5 exp=-993 la=0");
  EXPECT_NE(me.find(" fetch=yes cls="), std::string::npos) << me;
}

TEST_P(MetaTest, StaleWhileRevalidate) {
  // md I: the item stays, stale, with a new CAS; one client wins the recache.
  EXPECT_EQ(Run("set s 0 0 1\r\nv\r\nmd s I T30\r\n"), "STORED\r\nHD\r\n");
  EXPECT_EQ(Run("mg s v t\r\n"), "VA 1 t30 X W\r\nv\r\n");
  EXPECT_EQ(Run("mg s v\r\n"), "VA 1 Z X\r\nv\r\n");
  // A fresh set clears it all.
  EXPECT_EQ(Run("ms s 1\r\nw\r\nmg s v\r\n"), "HD\r\nVA 1\r\nw\r\n");
  // Vivify: the first client gets an empty item and the win, the next a Z.
  EXPECT_EQ(Run("mg n N30 v t\r\nmg n N30 v\r\n"), "VA 0 t30 W\r\n\r\nVA 0 Z\r\n\r\n");
  // Recache: a TTL below R's wins once.
  EXPECT_EQ(Run("ms r 1 T100\r\nx\r\nmg r R200\r\nmg r R200\r\n"), "HD\r\nHD W\r\nHD Z\r\n");
}

TEST_P(MetaTest, InvalidatingALeanItemWithoutAnExpiryRewritesIt) {
  // The state lives in the expiry word, which a lean item stored without an
  // expiry does not have: md I must rewrite it, keeping value and flags.
  EXPECT_EQ(Run("set 99 7 0 3\r\nabc\r\nmd 99 I\r\nmg 99 v f t\r\n"),
            "STORED\r\nHD\r\nVA 3 f7 t-1 X W\r\nabc\r\n");
  EXPECT_EQ(Run("mg 99 v\r\n"), "VA 3 Z X\r\nabc\r\n");
}

TEST_P(MetaTest, ArithmeticVivifiesAndKeepsCountersWhereTheyWere) {
  EXPECT_EQ(Run("ma c N0 J41 v\r\nma c v\r\nma c MD D50 v\r\n"),
            "VA 2\r\n41\r\nVA 2\r\n42\r\nVA 1\r\n0\r\n");
  EXPECT_EQ(Run("set 8 0 0 1\r\n5\r\nma 8 v t\r\n"), "STORED\r\nVA 1 t-1\r\n6\r\n");
  if (std::string(GetParam()) == "tiny") {
    // The integer counter stayed in its slot.
    EXPECT_EQ(ctx_->store->engine_stats().inline_items, 1u);
  }
  EXPECT_EQ(Run("ma 8 T100 t v\r\nmg 8 t v\r\n"), "VA 1 t100\r\n7\r\nVA 1 t100\r\n7\r\n");
  if (std::string(GetParam()) == "tiny") {
    EXPECT_EQ(ctx_->store->engine_stats().inline_items, 0u);  // an expiry moved it
  }
}

TEST_P(MetaTest, CasValuesRoundTrip) {
  const std::string a = Run("ms a 1 c\r\nx\r\n");
  if (!cas()) {
    EXPECT_EQ(a, "HD c0\r\n");
    EXPECT_EQ(Run("ms a 1 C0\r\ny\r\n"), "EX\r\n");
    return;
  }
  ASSERT_EQ(a.substr(0, 4), "HD c");
  const std::string unique = a.substr(4, a.size() - 6);
  EXPECT_EQ(Run("mg a c\r\n"), "HD c" + unique + "\r\n");
  EXPECT_EQ(Run("md a C" + unique + "1\r\n"), "EX\r\n");
  EXPECT_EQ(Run("md a C" + unique + " q\r\nmn\r\n"), "MN\r\n");
}

TEST_P(MetaTest, Base64KeysComeBackEncoded) {
  // The key bytes need not be text at all.
  EXPECT_EQ(Run("ms AAEC/w== 1 b k\r\nx\r\nmg AAEC/w== b k v\r\n"),
            "HD kAAEC/w== b\r\nVA 1 kAAEC/w== b\r\nx\r\n");
  std::string k;
  ASSERT_TRUE(protocol::DecodeBase64("AAEC/w==", &k));
  EXPECT_EQ(k, std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(Run("me AAEC/w== b\r\n").substr(0, 16), "ME AAEC/w== exp=");
}

INSTANTIATE_TEST_SUITE_P(Layouts, MetaTest, ::testing::Values("stock", "compact", "tiny"));

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    std::string enc, dec;
    protocol::AppendBase64(&enc, bytes);
    EXPECT_EQ(enc.size() % 4, 0u);
    if (n == 0) {
      EXPECT_FALSE(protocol::DecodeBase64(enc, &dec));  // nothing decodes to nothing
    } else {
      ASSERT_TRUE(protocol::DecodeBase64(enc, &dec)) << enc;
      EXPECT_EQ(dec, bytes);
    }
    bytes.push_back(static_cast<char>(n * 37 + 200));
  }
}

TEST(Base64, MemcachedsRules) {
  std::string out;
  EXPECT_TRUE(protocol::DecodeBase64("Zm9v", &out));
  EXPECT_EQ(out, "foo");
  EXPECT_TRUE(protocol::DecodeBase64("Zm9v@!", &out));  // stray characters are skipped
  EXPECT_EQ(out, "foo");
  EXPECT_TRUE(protocol::DecodeBase64("Zg==Zm9v", &out));  // stops after padding
  EXPECT_EQ(out, "f");
  EXPECT_FALSE(protocol::DecodeBase64("Zm9", &out));       // not whole groups
  EXPECT_FALSE(protocol::DecodeBase64("@@@", &out));       // nothing to decode
  EXPECT_FALSE(protocol::DecodeBase64("Zm9v====", &out));  // a group of padding
}

}  // namespace
}  // namespace tinycached::server
