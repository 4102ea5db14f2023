#include "server/protocol/binary.h"

#include <string>

#include "gtest/gtest.h"

namespace tinycached::protocol::binary {
namespace {

TEST(BinaryFrameTest, HeaderRoundTripsBigEndian) {
  Header h;
  h.magic = kRequestMagic;
  h.opcode = kSetQ;
  h.keylen = 0x0102;
  h.extlen = 8;
  h.datatype = 0;
  h.vbucket_or_status = 0xbeef;
  h.bodylen = 0x01020304;
  h.opaque = 0xdeadbeef;
  h.cas = 0x0102030405060708;
  std::string wire;
  AppendHeader(&wire, h);
  ASSERT_EQ(wire.size(), kHeaderSize);
  EXPECT_EQ(wire, std::string("\x80\x11\x01\x02\x08\x00\xbe\xef\x01\x02\x03\x04\xde\xad\xbe\xef"
                              "\x01\x02\x03\x04\x05\x06\x07\x08",
                              24));
  const Header back = ParseHeader(wire.data());
  EXPECT_EQ(back.magic, h.magic);
  EXPECT_EQ(back.opcode, h.opcode);
  EXPECT_EQ(back.keylen, h.keylen);
  EXPECT_EQ(back.extlen, h.extlen);
  EXPECT_EQ(back.vbucket_or_status, h.vbucket_or_status);
  EXPECT_EQ(back.bodylen, h.bodylen);
  EXPECT_EQ(back.opaque, h.opaque);
  EXPECT_EQ(back.cas, h.cas);
}

TEST(BinaryFrameTest, ResponseCarriesExtrasKeyValueAndLengths) {
  std::string out;
  AppendResponse(&out, kGetK, kSuccess, 7, 42, std::string("\0\0\0\5", 4), "key", "value");
  ASSERT_EQ(out.size(), 24u + 4 + 3 + 5);
  const Header h = ParseHeader(out.data());
  EXPECT_EQ(h.magic, kResponseMagic);
  EXPECT_EQ(h.opcode, kGetK);
  EXPECT_EQ(h.keylen, 3);
  EXPECT_EQ(h.extlen, 4);
  EXPECT_EQ(h.vbucket_or_status, kSuccess);
  EXPECT_EQ(h.bodylen, 12u);
  EXPECT_EQ(h.opaque, 7u);
  EXPECT_EQ(h.cas, 42u);
  EXPECT_EQ(out.substr(24), std::string("\0\0\0\5keyvalue", 12));
}

TEST(BinaryFrameTest, ErrorsCarryMemcachedsTexts) {
  std::string out;
  AppendError(&out, kIncrement, kNonNumeric, 1);
  EXPECT_EQ(out.substr(24), "Non-numeric server-side value for incr or decr");
  EXPECT_EQ(ParseHeader(out.data()).vbucket_or_status, kNonNumeric);
  EXPECT_EQ(ParseHeader(out.data()).cas, 0u);
  EXPECT_EQ(StatusText(kKeyNotFound), "Not found");
  EXPECT_EQ(StatusText(kKeyExists), "Data exists for key.");
  EXPECT_EQ(StatusText(kTooLarge), "Too large.");
  EXPECT_EQ(StatusText(kInvalidArguments), "Invalid arguments");
  EXPECT_EQ(StatusText(kNotStored), "Not stored.");
  EXPECT_EQ(StatusText(kAuthError), "Auth failure.");
  EXPECT_EQ(StatusText(kUnknownCommand), "Unknown command");
  EXPECT_EQ(StatusText(kOutOfMemory), "Out of memory");
}

TEST(BinaryFrameTest, QuietOpcodesMapToTheirCommands) {
  bool quiet = false;
  const std::pair<uint8_t, uint8_t> pairs[] = {{kGetQ, kGet},
                                               {kGetKQ, kGetK},
                                               {kSetQ, kSet},
                                               {kAddQ, kAdd},
                                               {kReplaceQ, kReplace},
                                               {kDeleteQ, kDelete},
                                               {kIncrementQ, kIncrement},
                                               {kDecrementQ, kDecrement},
                                               {kQuitQ, kQuit},
                                               {kFlushQ, kFlush},
                                               {kAppendQ, kAppend},
                                               {kPrependQ, kPrepend},
                                               {kGatQ, kGat},
                                               {kGatKQ, kGatK}};
  for (auto [q, base] : pairs) {
    EXPECT_EQ(BaseOpcode(q, &quiet), base);
    EXPECT_TRUE(quiet);
    EXPECT_EQ(BaseOpcode(base, &quiet), base);
    EXPECT_FALSE(quiet);
  }
}

Header Req(uint8_t op, uint16_t keylen, uint8_t extlen, uint32_t bodylen) {
  Header h;
  h.opcode = op;
  h.keylen = keylen;
  h.extlen = extlen;
  h.bodylen = bodylen;
  return h;
}

TEST(BinaryFrameTest, ShapesAreCheckedAsMemcachedDoes) {
  EXPECT_EQ(CheckShape(Req(kGet, 3, 0, 2)), Shape::kBodyMismatch);
  EXPECT_EQ(CheckShape(Req(kSet, 3, 8, 10)), Shape::kBodyMismatch);
  EXPECT_EQ(CheckShape(Req(kGet, 251, 0, 251)), Shape::kKeyTooLong);
  EXPECT_EQ(CheckShape(Req(kGet, 250, 0, 250)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kGet, 0, 0, 0)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kGet, 1, 4, 5)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kGet, 1, 0, 2)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kSet, 1, 8, 9)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kSet, 1, 4, 9)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kSet, 0, 8, 9)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kAppend, 1, 0, 100)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kAppend, 1, 8, 100)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kIncrement, 1, 20, 21)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kIncrement, 1, 20, 22)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kDelete, 1, 0, 1)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kDelete, 1, 4, 5)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kFlush, 0, 4, 4)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kFlush, 0, 0, 0)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kFlush, 0, 2, 2)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kNoop, 0, 0, 1)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kVersion, 0, 0, 0)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kQuitQ, 0, 0, 0)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kStat, 5, 0, 5)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kStat, 0, 4, 4)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kTouch, 1, 4, 5)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kGatKQ, 1, 0, 1)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kSaslAuth, 5, 0, 12)), Shape::kOk);
  EXPECT_EQ(CheckShape(Req(kSaslAuth, 0, 0, 12)), Shape::kInvalid);
  EXPECT_EQ(CheckShape(Req(kVerbosity, 0, 4, 4)), Shape::kUnknownCommand);
  EXPECT_EQ(CheckShape(Req(0x55, 0, 0, 0)), Shape::kUnknownCommand);
  EXPECT_EQ(CheckShape(Req(0x55, 300, 0, 300)), Shape::kKeyTooLong);
}

TEST(BinaryFrameTest, PlainMessages) {
  PlainCredentials c;  // views into the message: the messages must outlive them
  const std::string m1("\0user\0pass", 10);
  ASSERT_TRUE(ParsePlain(m1, &c));
  EXPECT_EQ(c.authzid, "");
  EXPECT_EQ(c.user, "user");
  EXPECT_EQ(c.password, "pass");
  const std::string m2("admin\0user\0", 11);
  ASSERT_TRUE(ParsePlain(m2, &c));
  EXPECT_EQ(c.authzid, "admin");
  EXPECT_EQ(c.password, "");
  EXPECT_FALSE(ParsePlain("userpass", &c));
  EXPECT_FALSE(ParsePlain(std::string("\0user", 5), &c));
  EXPECT_FALSE(ParsePlain(std::string("\0\0pass", 6), &c));
  EXPECT_FALSE(ParsePlain(std::string("\0u\0p\0q", 6), &c));
}

}  // namespace
}  // namespace tinycached::protocol::binary
