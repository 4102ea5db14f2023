// server/protocol/binary_session.cc — the binary protocol's framing (a
// request's header, extras and key; its value as a data block) and its
// commands, as memcached 1.6.18's proto_bin.c answers them.
#include "server/protocol/binary_session.h"

#include <algorithm>

#include "server/protocol/outcome.h"
#include "server/sasl.h"
#include "server/stats_reply.h"

namespace tinycached::server {
namespace {

namespace bin = protocol::binary;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Be64(uint64_t v) {
  std::string s;
  bin::Append64(&s, v);
  return s;
}

}  // namespace

size_t BinarySession::FrameCommand(std::string_view rest, bool* close) {
  if (rest.size() < bin::kHeaderSize) return 0;
  const bin::Header h = bin::ParseHeader(rest.data());
  // memcached closes on a bad magic without a word.
  if (h.magic != bin::kRequestMagic) {
    *close = true;
    return 0;
  }
  const size_t start = bin::kHeaderSize + h.extlen + h.keylen;
  // memcached cannot buffer this much before acting: it closes.
  if (start > bin::kMaxRequestStart) {
    *close = true;
    return 0;
  }
  if (rest.size() < start) return 0;
  req_ = h;
  return start;
}

void BinarySession::RunCommand(std::string_view frame, std::string* out, bool* close) {
  Dispatch(req_, frame.substr(bin::kHeaderSize, req_.extlen),
           frame.substr(bin::kHeaderSize + req_.extlen, req_.keylen), out, close);
}

void BinarySession::CompleteData(std::string_view value, std::string* out) {
  if (pending_ == Pending::kStore) return CompleteUpdate(value, out);
  CompleteSaslAuth(value, out);
}

// memcached's dispatch_bin_command(), check by check. Header, extras and key
// are consumed; the value (if any) follows in the input.
void BinarySession::Dispatch(const bin::Header& h, std::string_view extras, std::string_view key,
                             std::string* out, bool* close) {
  quiet_ = false;
  bool quiet = false;
  base_ = bin::BaseOpcode(h.opcode, &quiet);
  if (h.keylen > h.bodylen || uint64_t{h.keylen} + h.extlen > h.bodylen) {
    Error(out, bin::kUnknownCommand);
    *close = true;
    return;
  }
  if (ctx_->settings.sasl && !authenticated_) {
    const uint8_t op = h.opcode;
    if (op != bin::kSaslListMechs && op != bin::kSaslAuth && op != bin::kSaslStep &&
        op != bin::kVersion) {
      Error(out, bin::kAuthError);
      *close = true;
      return;
    }
  }
  switch (bin::CheckCommandShape(h)) {
    case bin::Shape::kOk:
      break;
    case bin::Shape::kBodyMismatch:  // handled above
    case bin::Shape::kKeyTooLong:
    case bin::Shape::kInvalid:
      Error(out, bin::kInvalidArguments);
      *close = true;
      return;
    case bin::Shape::kUnknownCommand:
      // memcached swallows a whole body more after the extras and key it has
      // already consumed; the bytes following belong to the next request,
      // but it does so, and a client sees it.
      Error(out, bin::kUnknownCommand);
      Swallow(h.bodylen);
      return;
  }
  quiet_ = quiet;
  switch (base_) {
    case bin::kVersion:
      return Respond(out, {}, {}, kVersion, 0);
    case bin::kNoop:
      Respond(out, {}, {}, {}, 0);
      return FlushAfterReply();  // memcached's noop writes out what it holds
    case bin::kQuit:
      Respond(out, {}, {}, {}, 0);
      *close = true;
      return;
    case bin::kFlush:
      return ProcessFlush(extras, out);
    case bin::kSet:
    case bin::kAdd:
    case bin::kReplace:
    case bin::kAppend:
    case bin::kPrepend:
      return ProcessUpdate(extras, key, out);
    case bin::kGet:
    case bin::kGetK:
    case bin::kTouch:
    case bin::kGat:
    case bin::kGatK:
      return ProcessGet(extras, key, out);
    case bin::kDelete:
      return ProcessDelete(key, out);
    case bin::kIncrement:
    case bin::kDecrement:
      return ProcessArithmetic(extras, key, out);
    case bin::kStat:
      return ProcessStat(key, out);
    case bin::kSaslListMechs:
      if (!ctx_->settings.sasl) {
        Error(out, bin::kUnknownCommand);
        return Swallow(int64_t{h.bodylen} - h.keylen);
      }
      return Respond(out, {}, {}, SaslPasswords::kMechanisms, 0);
    case bin::kSaslAuth:
    case bin::kSaslStep:
      return ProcessSaslAuth(key, out);
    default:
      return;  // CheckCommandShape() knows no other command
  }
}

void BinarySession::Respond(std::string* out, std::string_view extras, std::string_view key,
                            std::string_view value, uint64_t cas) {
  if (quiet_) return;
  bin::AppendResponse(out, req_.opcode, bin::kSuccess, req_.opaque, cas, extras, key, value);
}

void BinarySession::Error(std::string* out, uint16_t status) {
  bin::AppendError(out, req_.opcode, status, req_.opaque);
  FlushAfterReply();  // memcached writes out what it holds after an error...
}

void BinarySession::Swallow(int64_t n) {
  if (n <= 0) return;
  Discard(static_cast<uint64_t>(n));
  FlushAfterReply(false);  // ...unless it has a body to swallow first
}

// get, getk, touch, gat, gatk (and their quiet forms).
void BinarySession::ProcessGet(std::string_view extras, std::string_view key, std::string* out) {
  const bool touch = base_ == bin::kTouch || base_ == bin::kGat || base_ == bin::kGatK;
  const bool return_key = base_ == bin::kGetK || base_ == bin::kGatK;
  const bool return_value = base_ != bin::kTouch;
  std::optional<int64_t> exptime;
  if (touch) exptime = bin::Load32(extras.data());  // unsigned on the wire: never negative
  const bool hit = ctx_->store->Get(key, exptime, *stats_, [&](const core::ItemView& item) {
    const uint16_t keylen = return_key ? static_cast<uint16_t>(key.size()) : 0;
    const size_t vlen = return_value ? item.value.size() : 0;
    // A hit is sent even for a quiet command.
    bin::AppendResponseHeader(out, req_.opcode, bin::kSuccess, req_.opaque, item.cas, 4, keylen,
                              static_cast<uint32_t>(4 + keylen + vlen));
    bin::Append32(out, item.flags);
    if (return_key) out->append(key);
    if (return_value) AppendValue(out, item);
  });
  if (hit || quiet_) return;
  if (return_key) {
    // memcached's miss for getk/gatk: the key as key and body, no text.
    bin::AppendResponse(out, req_.opcode, bin::kKeyNotFound, req_.opaque, 0, {}, key, {});
    return;
  }
  Error(out, bin::kKeyNotFound);
}

// set, add, replace (a non-zero cas makes any of them a cas), append, prepend.
void BinarySession::ProcessUpdate(std::string_view extras, std::string_view key, std::string* out) {
  const bool concat = base_ == bin::kAppend || base_ == bin::kPrepend;
  const uint32_t flags = concat ? 0 : bin::Load32(extras.data());
  const uint32_t exptime = concat ? 0 : bin::Load32(extras.data() + 4);
  // memcached holds the value length in an int: a body over 2 GiB wraps negative.
  const auto vlen = static_cast<int32_t>(req_.bodylen - req_.keylen - req_.extlen);
  // Without CAS (-C) memcached's items keep no unique, so the request's is
  // dropped: a set with one is a plain set.
  const uint64_t cas = ctx_->settings.layout.cas ? req_.cas : 0;

  if (vlen < 0 || !ctx_->store->SizeOk(key, flags, exptime, static_cast<size_t>(vlen))) {
    Error(out, bin::kTooLarge);
    // A failed set must not leave the old value behind (memcached's rule).
    if (base_ == bin::kSet) ctx_->store->Drop(key);
    return Swallow(vlen);
  }
  if (!input_.Reserve(static_cast<size_t>(vlen))) {
    stats_->store_no_memory.Add();
    Error(out, bin::kOutOfMemory);
    if (base_ == bin::kSet) ctx_->store->Drop(key);
    return Swallow(vlen);
  }
  switch (base_) {
    case bin::kAdd:
      mode_ = core::StoreMode::kAdd;
      break;
    case bin::kReplace:
      mode_ = core::StoreMode::kReplace;
      break;
    case bin::kAppend:
      mode_ = core::StoreMode::kAppend;
      break;
    case bin::kPrepend:
      mode_ = core::StoreMode::kPrepend;
      break;
    default:
      mode_ = core::StoreMode::kSet;
      break;
  }
  if (cas != 0 && !concat) mode_ = core::StoreMode::kCas;
  pending_ = Pending::kStore;
  key_.assign(key);
  flags_ = flags;
  exptime_ = exptime;
  cas_ = cas;
  AwaitData(static_cast<size_t>(vlen));
}

void BinarySession::CompleteUpdate(std::string_view value, std::string* out) {
  input_.Release();
  uint64_t new_cas = 0;
  const core::StoreResult r = ctx_->store->MetaStore(mode_, key_, flags_, exptime_, value, cas_,
                                                     core::MetaStoreOptions{}, *stats_, &new_cas);
  if (key_.capacity() > 4096) std::string().swap(key_);
  const protocol::Outcome o = protocol::OutcomeOf(r);
  if (o.ok) return Respond(out, {}, {}, {}, new_cas);
  // memcached's binary store finds a plain store's memory before it reads the
  // value ("Out of memory" above); a store that did not happen after that is
  // named by its mode: an add "exists", a replace "not found".
  const bool concat = mode_ == core::StoreMode::kAppend || mode_ == core::StoreMode::kPrepend;
  if (r == core::StoreResult::kNotStored || r == core::StoreResult::kTooLarge ||
      (r == core::StoreResult::kNoMemory && concat)) {
    if (mode_ == core::StoreMode::kAdd) return Error(out, bin::kKeyExists);
    if (mode_ == core::StoreMode::kReplace) return Error(out, bin::kKeyNotFound);
    return Error(out, bin::kNotStored);
  }
  Error(out, o.binary);
}

void BinarySession::ProcessDelete(std::string_view key, std::string* out) {
  core::MetaDeleteOptions options;
  if (req_.cas != 0) options.cas = req_.cas;  // 0: any
  const core::MetaDeleteResult r = ctx_->store->MetaDelete(key, options, *stats_);
  // memcached counts a binary delete refused on its cas as nothing.
  if (r == core::MetaDeleteResult::kExists) stats_->delete_misses.Sub();
  const protocol::Outcome o = protocol::OutcomeOf(r);
  if (o.ok) return Respond(out, {}, {}, {}, 0);
  Error(out, o.binary);
}

void BinarySession::ProcessArithmetic(std::string_view extras, std::string_view key,
                                      std::string* out) {
  const uint64_t delta = bin::Load64(extras.data());
  const uint32_t expiration = bin::Load32(extras.data() + 16);
  core::MetaDeltaOptions options;
  options.cas = req_.cas;  // 0 matches anything
  // A missing counter is created with the initial value (flags 0) unless the
  // expiry says not to; memcached counts that as neither a miss nor a set.
  options.vivify = expiration != bin::kNoInitialValue;
  options.initial = bin::Load64(extras.data() + 8);
  char digits[core::Engine::kDeltaMaxLength];
  size_t n = 0;
  uint64_t cas = 0;
  const core::DeltaResult r =
      ctx_->store->MetaDelta(key, base_ == bin::kIncrement, delta, options, *stats_, digits, &n,
                             [&](const core::MetaItem& item) {
                               cas = item.cas;
                               core::MetaChange change;
                               if (item.created && expiration != 0)
                                 change.exptime = ctx_->clock->ToRelative(expiration);
                               return change;
                             });
  if (r != core::DeltaResult::kOk) return Error(out, protocol::OutcomeOf(r).binary);
  uint64_t value = 0;
  for (size_t i = 0; i < n; ++i) value = value * 10 + static_cast<uint64_t>(digits[i] - '0');
  Respond(out, {}, {}, Be64(value), cas);
}

void BinarySession::ProcessFlush(std::string_view extras, std::string* out) {
  // Under -F memcached answers a binary flush with an auth error, uncounted.
  if (!ctx_->settings.flush_enabled) return Error(out, bin::kAuthError);
  const int64_t delay = extras.size() == 4 ? bin::Load32(extras.data()) : 0;
  ctx_->store->FlushAll(delay);
  stats_->flush_cmds.Add();
  Respond(out, {}, {}, {}, 0);
}

// memcached's process_bin_stat(): the general stats, "reset", "settings",
// "detail ..." by prefix, and "items", "slabs", "sizes" by name; any other
// group is "Not found" ("conns" included: memcached serves it in ASCII only).
void BinarySession::ProcessStat(std::string_view key, std::string* out) {
  std::string text;
  if (key.empty()) {
    AppendGeneralStats(*ctx_, &text);
  } else if (StartsWith(key, "reset")) {
    ResetAllStats(*ctx_);
    text = "END\r\n";
  } else if (StartsWith(key, "settings")) {
    AppendSettingsStats(*ctx_, &text);
  } else if (StartsWith(key, "detail")) {
    // Per-prefix statistics are not kept: the dump is empty, on/off do nothing.
    const std::string_view sub = key.substr(6);
    if (StartsWith(sub, " dump")) {
      bin::AppendResponse(out, bin::kStat, bin::kSuccess, req_.opaque, 0, {}, "detailed",
                          "END\r\n");
    } else if (!StartsWith(sub, " on") && !StartsWith(sub, " off")) {
      return Error(out, bin::kKeyNotFound);
    }
    text = "END\r\n";
  } else if (key == "items") {
    AppendItemsStats(*ctx_, &text);
  } else if (key == "slabs") {
    AppendSlabsStats(*ctx_, &text);
  } else if (key == "sizes") {
    AppendSizesStats(*ctx_, &text);
  } else {
    return Error(out, bin::kKeyNotFound);
  }
  AppendStatPackets(text, out);
}

void BinarySession::AppendStatPackets(std::string_view text, std::string* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 2;
    if (!StartsWith(line, "STAT ")) continue;  // "END": the terminator follows
    const std::string_view stat = line.substr(5);
    const size_t space = std::min(stat.find(' '), stat.size());
    const std::string_view name = stat.substr(0, space);
    const std::string_view value =
        space < stat.size() ? stat.substr(space + 1) : std::string_view();
    bin::AppendResponse(out, bin::kStat, bin::kSuccess, req_.opaque, 0, {}, name, value);
  }
  bin::AppendResponse(out, bin::kStat, bin::kSuccess, req_.opaque, 0, {}, {}, {});
}

void BinarySession::ProcessSaslAuth(std::string_view key, std::string* out) {
  const auto vlen = static_cast<int32_t>(req_.bodylen - req_.keylen);
  if (!ctx_->settings.sasl) {
    Error(out, bin::kUnknownCommand);
    return Swallow(vlen);
  }
  if (key.size() > bin::kMaxSaslMechLength) {
    Error(out, bin::kInvalidArguments);
    return Swallow(vlen);
  }
  // memcached reads the message into an item: past the item size it has no memory for it.
  if (vlen < 0 || static_cast<size_t>(vlen) > ctx_->settings.item_size_max ||
      !input_.Reserve(static_cast<size_t>(vlen))) {
    Error(out, bin::kOutOfMemory);
    return Swallow(vlen);
  }
  pending_ = base_ == bin::kSaslAuth ? Pending::kSaslAuth : Pending::kSaslStep;
  key_.assign(key);
  AwaitData(static_cast<size_t>(vlen));
}

// PLAIN is done in one step: SASL_AUTH succeeds or fails, SASL_STEP always
// fails. Any attempt first drops an earlier authentication (as memcached).
void BinarySession::CompleteSaslAuth(std::string_view value, std::string* out) {
  input_.Release();
  authenticated_ = false;
  bool ok = false;
  if (pending_ == Pending::kSaslAuth && key_ == "PLAIN" && ctx_->sasl != nullptr) {
    bin::PlainCredentials creds;
    ok = bin::ParsePlain(value, &creds) && ctx_->sasl->Check(creds.user, creds.password);
  }
  // memcached counts every authentication that ends, and those that fail.
  stats_->auth_cmds.Add();
  if (!ok) {
    stats_->auth_errors.Add();
    return Error(out, bin::kAuthError);
  }
  authenticated_ = true;
  Respond(out, {}, {}, "Authenticated", 0);
}

}  // namespace tinycached::server
