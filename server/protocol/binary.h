// server/protocol/binary.h — memcached's binary protocol: frames, opcodes,
// statuses, and the shape rules memcached 1.6.18 checks before it acts.
//
// Room: pure parsing and composing with memcached 1.6.18's exact semantics.
// No storage, no sockets (binary_session.cc joins this with core/).
//
// Every packet starts with a 24-byte header, all numbers big-endian:
//
//   byte     0          1          2          3
//        +----------+----------+----------+----------+
//    0   |  magic   | opcode   |      key length     |
//        +----------+----------+----------+----------+
//    4   | extras   | data     | vbucket (request) / |
//        | length   | type     | status (response)   |
//        +----------+----------+----------+----------+
//    8   |          total body length                |
//        +----------+----------+----------+----------+
//   12   |          opaque (echoed back as sent)     |
//        +----------+----------+----------+----------+
//   16   |          cas                              |
//   20   |          (64 bits)                        |
//        +----------+----------+----------+----------+
//   24   extras (extras length bytes), key (key length bytes),
//        value (body length - extras length - key length bytes)
//
// magic: 0x80 request, 0x81 response. Extras by command (request):
//   set/add/replace   8: flags u32, expiry u32
//   incr/decr        20: delta u64, initial u64, expiry u32
//   flush          0|4: delay u32
//   touch/gat(k)(q)   4: expiry u32
// and in a get/gat hit's response 4: the item's flags u32.
#ifndef TINYCACHED_SERVER_PROTOCOL_BINARY_H_
#define TINYCACHED_SERVER_PROTOCOL_BINARY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tinycached::protocol::binary {

inline constexpr uint8_t kRequestMagic = 0x80;
inline constexpr uint8_t kResponseMagic = 0x81;
inline constexpr size_t kHeaderSize = 24;
// memcached reads a request's header, extras and key into its 16 KiB read
// buffer before acting; a request whose first three parts cannot fit there
// gets the connection closed without a reply.
inline constexpr size_t kMaxRequestStart = 16384;
// memcached's MAX_SASL_MECH_LEN.
inline constexpr size_t kMaxSaslMechLength = 32;
// The expiry of an incr/decr that must not create a missing item.
inline constexpr uint32_t kNoInitialValue = 0xffffffff;

enum Opcode : uint8_t {
  kGet = 0x00,
  kSet = 0x01,
  kAdd = 0x02,
  kReplace = 0x03,
  kDelete = 0x04,
  kIncrement = 0x05,
  kDecrement = 0x06,
  kQuit = 0x07,
  kFlush = 0x08,
  kGetQ = 0x09,
  kNoop = 0x0a,
  kVersion = 0x0b,
  kGetK = 0x0c,
  kGetKQ = 0x0d,
  kAppend = 0x0e,
  kPrepend = 0x0f,
  kStat = 0x10,
  kSetQ = 0x11,
  kAddQ = 0x12,
  kReplaceQ = 0x13,
  kDeleteQ = 0x14,
  kIncrementQ = 0x15,
  kDecrementQ = 0x16,
  kQuitQ = 0x17,
  kFlushQ = 0x18,
  kAppendQ = 0x19,
  kPrependQ = 0x1a,
  kVerbosity = 0x1b,  // in the spec; memcached 1.6.18 answers it "Unknown command"
  kTouch = 0x1c,
  kGat = 0x1d,
  kGatQ = 0x1e,
  kSaslListMechs = 0x20,
  kSaslAuth = 0x21,
  kSaslStep = 0x22,
  kGatK = 0x23,
  kGatKQ = 0x24,
};

enum Status : uint16_t {
  kSuccess = 0x00,
  kKeyNotFound = 0x01,
  kKeyExists = 0x02,
  kTooLarge = 0x03,
  kInvalidArguments = 0x04,
  kNotStored = 0x05,
  kNonNumeric = 0x06,
  kAuthError = 0x20,
  kAuthContinue = 0x21,
  kUnknownCommand = 0x81,
  kOutOfMemory = 0x82,
};

// A header in host byte order. `vbucket_or_status` is the vbucket in a
// request, the status in a response.
struct Header {
  uint8_t magic = kRequestMagic;
  uint8_t opcode = 0;
  uint16_t keylen = 0;
  uint8_t extlen = 0;
  uint8_t datatype = 0;
  uint16_t vbucket_or_status = 0;
  uint32_t bodylen = 0;
  uint32_t opaque = 0;
  uint64_t cas = 0;
};

// Big-endian loads and stores.
uint16_t Load16(const char* p);
uint32_t Load32(const char* p);
uint64_t Load64(const char* p);
void Append16(std::string* out, uint16_t v);
void Append32(std::string* out, uint32_t v);
void Append64(std::string* out, uint64_t v);

// REQUIRES: p holds kHeaderSize bytes.
Header ParseHeader(const char* p);
void AppendHeader(std::string* out, const Header& h);

// A response header for `opcode` (bodylen = extlen + keylen + value length).
void AppendResponseHeader(std::string* out, uint8_t opcode, uint16_t status, uint32_t opaque,
                          uint64_t cas, uint8_t extlen, uint16_t keylen, uint32_t bodylen);
// A whole response packet.
void AppendResponse(std::string* out, uint8_t opcode, uint16_t status, uint32_t opaque,
                    uint64_t cas, std::string_view extras, std::string_view key,
                    std::string_view value);
// memcached's write_bin_error(): the status with its standard text as the body.
void AppendError(std::string* out, uint8_t opcode, uint16_t status, uint32_t opaque);
// The standard text of an error status ("Not found", "Too large.", ...).
std::string_view StatusText(uint16_t status);

// The command a quiet opcode is the quiet form of (kGetQ → kGet, ...);
// *quiet tells whether it was one. Other opcodes map to themselves.
uint8_t BaseOpcode(uint8_t opcode, bool* quiet);

// What memcached does with a request of this header before reading its value.
enum class Shape {
  kOk,              // well-formed: act on it
  kBodyMismatch,    // key or key+extras longer than the body: "Unknown command", close
  kKeyTooLong,      // key over 250 bytes: "Invalid arguments", close
  kInvalid,         // extras/key/body lengths wrong for the command: "Invalid arguments", close
  kUnknownCommand,  // not a command memcached serves: "Unknown command", swallow bodylen
};
// REQUIRES: h.magic == kRequestMagic. Checks in memcached's order (the SASL
// check, between kBodyMismatch and kKeyTooLong, is the caller's).
Shape CheckShape(const Header& h);
// The checks after the SASL one (a body mismatch already excluded).
Shape CheckCommandShape(const Header& h);

// A SASL PLAIN message: [authzid] NUL authcid NUL passwd (RFC 4616).
struct PlainCredentials {
  std::string_view authzid, user, password;
};
bool ParsePlain(std::string_view message, PlainCredentials* out);

}  // namespace tinycached::protocol::binary

#endif  // TINYCACHED_SERVER_PROTOCOL_BINARY_H_
