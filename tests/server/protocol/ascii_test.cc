#include "server/protocol/ascii.h"

#include <string>

#include "gtest/gtest.h"

namespace tinycached::protocol {
namespace {

TEST(TokenizeTest, SplitsOnSpacesOnly) {
  Tokens t;
  Tokenize("  set  a\tb 0 0 1  ", &t);
  ASSERT_EQ(t.count, 5u);
  EXPECT_EQ(t[0], "set");
  EXPECT_EQ(t[1], "a\tb");  // tabs belong to the token, as memcached
  EXPECT_EQ(t[4], "1");
  EXPECT_EQ(t.ntokens(), 6u);
  EXPECT_FALSE(t.has_rest);
  Tokenize("", &t);
  EXPECT_EQ(t.count, 0u);
}

TEST(TokenizeTest, KeepsTheRestAfterTheTokenLimit) {
  std::string line = "get";
  for (int i = 0; i < 30; ++i) line += " k" + std::to_string(i);
  Tokens t;
  Tokenize(line, &t);
  ASSERT_EQ(t.count, kMaxTokens - 1);
  EXPECT_EQ(t[22], "k21");
  ASSERT_TRUE(t.has_rest);
  EXPECT_EQ(t.rest, "k22 k23 k24 k25 k26 k27 k28 k29");
  // Exactly at the limit, with nothing after: no rest.
  line = "get";
  for (int i = 0; i < 22; ++i) line += " k" + std::to_string(i);
  Tokenize(line, &t);
  EXPECT_EQ(t.count, kMaxTokens - 1);
  EXPECT_FALSE(t.has_rest);
}

TEST(ParseTest, Uint32FollowsStrtoulAndMemcached) {
  uint32_t v = 0;
  EXPECT_TRUE(ParseUint32("0", &v));
  EXPECT_TRUE(ParseUint32("4294967295", &v));
  EXPECT_EQ(v, 4294967295u);
  EXPECT_TRUE(ParseUint32("4294967296", &v));  // memcached keeps the low 32 bits
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(ParseUint32("12\t", &v));  // whitespace after the number is fine
  EXPECT_EQ(v, 12u);
  EXPECT_FALSE(ParseUint32("-1", &v));
  EXPECT_FALSE(ParseUint32("1x", &v));
  EXPECT_FALSE(ParseUint32("", &v));
  EXPECT_FALSE(ParseUint32("x", &v));
  EXPECT_FALSE(ParseUint32("99999999999999999999999", &v));  // ERANGE
}

TEST(ParseTest, Int32AndUint64) {
  int32_t i = 0;
  EXPECT_TRUE(ParseInt32("-1", &i));
  EXPECT_EQ(i, -1);
  EXPECT_TRUE(ParseInt32("+5", &i));
  EXPECT_EQ(i, 5);
  EXPECT_FALSE(ParseInt32("5.0", &i));
  uint64_t u = 0;
  EXPECT_TRUE(ParseUint64("18446744073709551615", &u));
  EXPECT_EQ(u, UINT64_MAX);
  EXPECT_FALSE(ParseUint64("18446744073709551616", &u));
  EXPECT_FALSE(ParseUint64("-1", &u));
  EXPECT_TRUE(ParseUint64("-0", &u));
  EXPECT_EQ(u, 0u);
  const std::string long_zeros(100, '0');
  EXPECT_TRUE(ParseUint64(long_zeros + "7", &u));
  EXPECT_EQ(u, 7u);
}

TEST(AppendDecimalTest, Digits) {
  std::string s;
  AppendDecimal(&s, 0);
  s += ' ';
  AppendDecimal(&s, UINT64_MAX);
  EXPECT_EQ(s, "0 18446744073709551615");
}

}  // namespace
}  // namespace tinycached::protocol
