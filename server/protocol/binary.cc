#include "server/protocol/binary.h"

#include "server/protocol/ascii.h"

namespace tinycached::protocol::binary {

uint16_t Load16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

uint32_t Load32(const char* p) { return (static_cast<uint32_t>(Load16(p)) << 16) | Load16(p + 2); }

uint64_t Load64(const char* p) { return (static_cast<uint64_t>(Load32(p)) << 32) | Load32(p + 4); }

void Append16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

void Append32(std::string* out, uint32_t v) {
  Append16(out, static_cast<uint16_t>(v >> 16));
  Append16(out, static_cast<uint16_t>(v & 0xffff));
}

void Append64(std::string* out, uint64_t v) {
  Append32(out, static_cast<uint32_t>(v >> 32));
  Append32(out, static_cast<uint32_t>(v & 0xffffffff));
}

Header ParseHeader(const char* p) {
  Header h;
  h.magic = static_cast<uint8_t>(p[0]);
  h.opcode = static_cast<uint8_t>(p[1]);
  h.keylen = Load16(p + 2);
  h.extlen = static_cast<uint8_t>(p[4]);
  h.datatype = static_cast<uint8_t>(p[5]);
  h.vbucket_or_status = Load16(p + 6);
  h.bodylen = Load32(p + 8);
  h.opaque = Load32(p + 12);
  h.cas = Load64(p + 16);
  return h;
}

void AppendHeader(std::string* out, const Header& h) {
  out->push_back(static_cast<char>(h.magic));
  out->push_back(static_cast<char>(h.opcode));
  Append16(out, h.keylen);
  out->push_back(static_cast<char>(h.extlen));
  out->push_back(static_cast<char>(h.datatype));
  Append16(out, h.vbucket_or_status);
  Append32(out, h.bodylen);
  Append32(out, h.opaque);
  Append64(out, h.cas);
}

void AppendResponseHeader(std::string* out, uint8_t opcode, uint16_t status, uint32_t opaque,
                          uint64_t cas, uint8_t extlen, uint16_t keylen, uint32_t bodylen) {
  Header h;
  h.magic = kResponseMagic;
  h.opcode = opcode;
  h.keylen = keylen;
  h.extlen = extlen;
  h.vbucket_or_status = status;
  h.bodylen = bodylen;
  h.opaque = opaque;
  h.cas = cas;
  AppendHeader(out, h);
}

void AppendResponse(std::string* out, uint8_t opcode, uint16_t status, uint32_t opaque,
                    uint64_t cas, std::string_view extras, std::string_view key,
                    std::string_view value) {
  AppendResponseHeader(out, opcode, status, opaque, cas, static_cast<uint8_t>(extras.size()),
                       static_cast<uint16_t>(key.size()),
                       static_cast<uint32_t>(extras.size() + key.size() + value.size()));
  out->append(extras).append(key).append(value);
}

std::string_view StatusText(uint16_t status) {
  switch (status) {
    case kOutOfMemory:
      return "Out of memory";
    case kUnknownCommand:
      return "Unknown command";
    case kKeyNotFound:
      return "Not found";
    case kInvalidArguments:
      return "Invalid arguments";
    case kKeyExists:
      return "Data exists for key.";
    case kTooLarge:
      return "Too large.";
    case kNonNumeric:
      return "Non-numeric server-side value for incr or decr";
    case kNotStored:
      return "Not stored.";
    case kAuthError:
      return "Auth failure.";
    default:
      return "UNHANDLED ERROR";
  }
}

void AppendError(std::string* out, uint8_t opcode, uint16_t status, uint32_t opaque) {
  AppendResponse(out, opcode, status, opaque, 0, {}, {}, StatusText(status));
}

uint8_t BaseOpcode(uint8_t opcode, bool* quiet) {
  *quiet = true;
  switch (opcode) {
    case kSetQ:
      return kSet;
    case kAddQ:
      return kAdd;
    case kReplaceQ:
      return kReplace;
    case kDeleteQ:
      return kDelete;
    case kIncrementQ:
      return kIncrement;
    case kDecrementQ:
      return kDecrement;
    case kQuitQ:
      return kQuit;
    case kFlushQ:
      return kFlush;
    case kAppendQ:
      return kAppend;
    case kPrependQ:
      return kPrepend;
    case kGetQ:
      return kGet;
    case kGetKQ:
      return kGetK;
    case kGatQ:
      return kGat;
    case kGatKQ:
      return kGatK;
    default:
      *quiet = false;
      return opcode;
  }
}

Shape CheckShape(const Header& h) {
  if (h.keylen > h.bodylen || uint64_t{h.keylen} + h.extlen > h.bodylen) {
    return Shape::kBodyMismatch;
  }
  return CheckCommandShape(h);
}

Shape CheckCommandShape(const Header& h) {
  if (h.keylen > kMaxKeyLength) return Shape::kKeyTooLong;
  const uint32_t keylen = h.keylen;
  const uint32_t extlen = h.extlen;
  const uint32_t bodylen = h.bodylen;
  const bool empty = extlen == 0 && keylen == 0 && bodylen == 0;
  auto ok = [](bool good) { return good ? Shape::kOk : Shape::kInvalid; };
  bool quiet = false;
  switch (BaseOpcode(h.opcode, &quiet)) {
    case kVersion:
    case kNoop:
    case kQuit:
    case kSaslListMechs:
      return ok(empty);
    case kFlush:
      return ok(keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4));
    case kSet:
    case kAdd:
    case kReplace:
      return ok(extlen == 8 && keylen != 0 && bodylen >= keylen + 8);
    case kGet:
    case kGetK:
      return ok(extlen == 0 && bodylen == keylen && keylen > 0);
    case kDelete:
      return ok(keylen > 0 && extlen == 0 && bodylen == keylen);
    case kIncrement:
    case kDecrement:
      return ok(keylen > 0 && extlen == 20 && bodylen == keylen + extlen);
    case kAppend:
    case kPrepend:
      return ok(keylen > 0 && extlen == 0);
    case kStat:
      return ok(extlen == 0);
    case kSaslAuth:
    case kSaslStep:
      return ok(extlen == 0 && keylen != 0);
    case kTouch:
    case kGat:
    case kGatK:
      return ok(extlen == 4 && keylen != 0);
    default:
      return Shape::kUnknownCommand;
  }
}

bool ParsePlain(std::string_view message, PlainCredentials* out) {
  const size_t first = message.find('\0');
  if (first == std::string_view::npos) return false;
  const size_t second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return false;
  out->authzid = message.substr(0, first);
  out->user = message.substr(first + 1, second - first - 1);
  out->password = message.substr(second + 1);
  // RFC 4616: no further NUL, and a user name is required.
  return !out->user.empty() && out->password.find('\0') == std::string_view::npos;
}

}  // namespace tinycached::protocol::binary
