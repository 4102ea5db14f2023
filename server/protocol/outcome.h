// server/protocol/outcome.h — what each protocol calls an engine result.
//
// Room: the one table from the engine's result enums (core/engine.h) to the
// replies of all three protocols: the classic text line, the meta return code
// and the binary status. The commands (text.cc, meta.cc, binary_session.cc)
// read their column here and add only what memcached does differently in one
// protocol, next to the command that does it (meta's vivify error text, the
// binary add/replace statuses for a store that did not happen).
//
// An error has no meta code: meta replies with the text line itself, as
// memcached does. Header only, so the text hot path keeps a plain switch.
#ifndef TINYCACHED_SERVER_PROTOCOL_OUTCOME_H_
#define TINYCACHED_SERVER_PROTOCOL_OUTCOME_H_

#include <cstdint>
#include <string_view>

#include "core/engine.h"
#include "server/protocol/binary.h"

namespace tinycached::protocol {

struct Outcome {
  bool ok;                // the nominal result: meta's q hides it, binary answers success
  std::string_view text;  // the text reply line (empty for a counter's new value)
  std::string_view meta;  // the meta code; empty: an error, the text line is the reply
  uint16_t binary;        // the binary status
};

inline constexpr std::string_view kOutOfMemory = "SERVER_ERROR out of memory";

constexpr Outcome OutcomeOf(core::StoreResult r) {
  switch (r) {
    case core::StoreResult::kStored:
      return {true, "STORED", "HD", binary::kSuccess};
    case core::StoreResult::kNotStored:
      return {false, "NOT_STORED", "NS", binary::kNotStored};
    case core::StoreResult::kExists:
      return {false, "EXISTS", "EX", binary::kKeyExists};
    case core::StoreResult::kNotFound:
      return {false, "NOT_FOUND", "NF", binary::kKeyNotFound};
    case core::StoreResult::kTooLarge:
      return {false, "SERVER_ERROR object too large for cache", {}, binary::kTooLarge};
    case core::StoreResult::kNoMemory:
      break;
  }
  return {false, "SERVER_ERROR out of memory storing object", {}, binary::kOutOfMemory};
}

// kExists (a CAS mismatch) and kNotStored (a vivify lost to another
// connection) come only from meta and binary arithmetic.
constexpr Outcome OutcomeOf(core::DeltaResult r) {
  switch (r) {
    case core::DeltaResult::kOk:
      return {true, {}, "HD", binary::kSuccess};
    case core::DeltaResult::kNotFound:
      return {false, "NOT_FOUND", "NF", binary::kKeyNotFound};
    case core::DeltaResult::kNonNumeric:
      return {false,
              "CLIENT_ERROR cannot increment or decrement non-numeric value",
              {},
              binary::kNonNumeric};
    case core::DeltaResult::kExists:
      return {false, "EXISTS", "EX", binary::kKeyExists};
    case core::DeltaResult::kNotStored:
      return {false, "NOT_STORED", "NS", binary::kNotStored};
    case core::DeltaResult::kNoMemory:
      break;
  }
  return {false, kOutOfMemory, {}, binary::kOutOfMemory};
}

constexpr Outcome OutcomeOf(core::MetaDeleteResult r) {
  switch (r) {
    case core::MetaDeleteResult::kDeleted:
      return {true, "DELETED", "HD", binary::kSuccess};
    case core::MetaDeleteResult::kNotFound:
      return {false, "NOT_FOUND", "NF", binary::kKeyNotFound};
    case core::MetaDeleteResult::kExists:
      return {false, "EXISTS", "EX", binary::kKeyExists};
    case core::MetaDeleteResult::kNoMemory:
      break;
  }
  return {false, kOutOfMemory, {}, binary::kOutOfMemory};
}

constexpr Outcome OutcomeOf(core::TouchResult r) {
  switch (r) {
    case core::TouchResult::kTouched:
      return {true, "TOUCHED", "HD", binary::kSuccess};
    case core::TouchResult::kNotFound:
      return {false, "NOT_FOUND", "NF", binary::kKeyNotFound};
    case core::TouchResult::kNoMemory:
      break;
  }
  return {false, kOutOfMemory, {}, binary::kOutOfMemory};
}

}  // namespace tinycached::protocol

#endif  // TINYCACHED_SERVER_PROTOCOL_OUTCOME_H_
