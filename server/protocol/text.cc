// server/protocol/text.cc — memcached's classic text commands: get gets gat
// gats, set add replace append prepend cas, delete, incr decr, touch,
// flush_all, verbosity, version, quit, shutdown, stats, slabs (and the
// dispatch of the admin commands in server/admin.cc and of the meta commands
// in meta.cc).
//
// Room: the classic half of TextSession (text_session.h); the framing loop
// (framing.cc, with the line rules of text_session.cc) cuts the input into
// command lines and data blocks and calls ProcessCommand() and
// CompleteData() here. Replies are memcached 1.6.18's byte for byte;
// what an engine result is called comes from protocol/outcome.h.
#include <algorithm>
#include <climits>
#include <csignal>
#include <optional>

#include "server/admin.h"
#include "server/protocol/outcome.h"
#include "server/protocol/text_session.h"
#include "server/stats_reply.h"

namespace tinycached::server {
namespace {

using protocol::kMaxKeyLength;
using protocol::OutcomeOf;
using protocol::Tokens;

constexpr std::string_view kError = "ERROR";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool TextSession::SetNoreplyMaybe(const Tokens& t) {
  if (t.count >= 1 && t[t.count - 1] == "noreply") {
    noreply_ = true;
  }
  return noreply_;
}

void TextSession::Reply(std::string* out, std::string_view line) {
  if (noreply_) {
    noreply_ = false;
    if (Logging()) Log('>', "NOREPLY ", line);
    return;
  }
  if (Logging()) Log('>', "", line);
  out->append(line);
  out->append("\r\n");
}

void TextSession::ProcessCommand(std::string_view line, std::string* out, bool* close) {
  Tokens t;
  protocol::Tokenize(line, &t);
  const size_t ntokens = t.ntokens();
  noreply_ = false;
  if (t.count == 0 || t[0].size() < 2) return Reply(out, kError);

  const std::string_view cmd = t[0];
  auto want_or = [&](size_t a, size_t b) { return ntokens == a || ntokens == b; };
  auto want = [&](size_t lo, size_t hi) { return ntokens >= lo && ntokens <= hi; };

  switch (cmd[0]) {
    case 'g':
      if (ntokens < 3) return Reply(out, kError);
      if (cmd == "get") return ProcessGet(t, false, false, out);
      if (cmd == "gets") return ProcessGet(t, true, false, out);
      if (cmd == "gat") return ProcessGet(t, false, true, out);
      if (cmd == "gats") return ProcessGet(t, true, true, out);
      return Reply(out, kError);
    case 'b':
      if (cmd == "bget") {  // a legacy alias memcached still answers
        if (ntokens < 3) return Reply(out, kError);
        return ProcessGet(t, false, false, out);
      }
      return Reply(out, kError);
    case 'm':
      if (cmd.size() != 2) return Reply(out, kError);
      switch (cmd[1]) {
        case 'g':
          return ProcessMetaGet(t, out);
        case 's':
          return ProcessMetaSet(t, out);
        case 'd':
          return ProcessMetaDelete(t, out);
        case 'a':
          return ProcessMetaArithmetic(t, out);
        case 'e':
          return ProcessMetaDebug(t, out);
        case 'n':  // meta no-op: a pipeline marker
          out->append("MN\r\n");
          FlushAfterReply();  // memcached writes out what it holds here
          return;
        default:
          return Reply(out, kError);
      }
    case 's':
      if (cmd == "set") {
        if (!want_or(6, 7)) return Reply(out, kError);
        return ProcessUpdate(t, core::StoreMode::kSet, false, out);
      }
      if (cmd == "stats") return ProcessStats(t, out);
      if (cmd == "slabs") return ProcessSlabs(t, out);
      if (cmd == "shutdown") return ProcessShutdown(t, out, close);
      return Reply(out, kError);
    case 'a':
      if (cmd == "add" || cmd == "append") {
        if (!want_or(6, 7)) return Reply(out, kError);
        return ProcessUpdate(t, cmd == "add" ? core::StoreMode::kAdd : core::StoreMode::kAppend,
                             false, out);
      }
      return Reply(out, kError);
    case 'c':
      if (cmd == "cas") {
        if (!want_or(7, 8)) return Reply(out, kError);
        return ProcessUpdate(t, core::StoreMode::kCas, true, out);
      }
      if (cmd == "cache_memlimit") {
        if (!want_or(3, 4)) return Reply(out, kError);
        return ProcessCacheMemlimit(*ctx_, t, SetNoreplyMaybe(t), out);
      }
      return Reply(out, kError);
    case 'i':
      if (cmd == "incr") {
        if (!want_or(4, 5)) return Reply(out, kError);
        return ProcessArithmetic(t, true, out);
      }
      return Reply(out, kError);
    case 'd':
      if (cmd == "delete") {
        if (!want(3, 5)) return Reply(out, kError);
        return ProcessDelete(t, out);
      }
      if (cmd == "decr") {
        if (!want_or(4, 5)) return Reply(out, kError);
        return ProcessArithmetic(t, false, out);
      }
      return Reply(out, kError);
    case 't':
      if (cmd == "touch") {
        if (!want_or(4, 5)) return Reply(out, kError);
        return ProcessTouch(t, out);
      }
      return Reply(out, kError);
    default:
      break;
  }
  if (cmd == "verbosity") {
    if (!want_or(3, 4)) return Reply(out, kError);
    return ProcessVerbosity(t, out);
  }
  if (cmd == "flush_all") {
    if (!want(2, 4)) return Reply(out, kError);
    return ProcessFlushAll(t, out);
  }
  if (cmd == "version") {
    out->append("VERSION ").append(kVersion).append("\r\n");
    return;
  }
  if (cmd == "quit") {
    SendReplyWhenEmpty();  // memcached writes quit's empty response before closing
    *close = true;
    return;
  }
  if (cmd == "prepend" || cmd == "replace") {
    if (!want_or(6, 7)) return Reply(out, kError);
    return ProcessUpdate(
        t, cmd == "prepend" ? core::StoreMode::kPrepend : core::StoreMode::kReplace, false, out);
  }
  if (cmd == "lru_crawler") return ProcessLruCrawler(*ctx_, t, RepliesHeld(), out);
  if (cmd == "watch") {
    // A watcher's later input is discarded (server/admin.h).
    if (ProcessWatch(*ctx_, t, RepliesHeld(), out)) {
      Discard(SIZE_MAX);
    }
    return;
  }
  // A web browser pointed at the port: hang up, as memcached does.
  if (ntokens >= 2 && StartsWith(t[t.count - 1], "HTTP/")) {
    *close = true;
    return;
  }
  Reply(out, kError);
}

void TextSession::ProcessGet(const Tokens& t, bool return_cas, bool touch, std::string* out) {
  size_t k = 1;
  get_exptime_.reset();
  if (touch) {
    int32_t e = 0;
    if (!protocol::ParseInt32(t[1], &e)) {
      return Reply(out, "CLIENT_ERROR invalid exptime argument");
    }
    get_exptime_ = e;
    k = 2;
  }
  // The keys are the rest of the line (past memcached's token limit too).
  std::string_view keys;
  if (k < t.count) {
    const std::string_view last = t.has_rest ? t.rest : t[t.count - 1];
    keys = std::string_view(t[k].data(), last.data() + last.size() - t[k].data());
  }
  // A key over the limit makes the whole reply one error (memcached drops the
  // values it had found); checking first means no output is ever taken back.
  for (size_t pos = 0; pos < keys.size();) {
    const size_t end = std::min(keys.find(' ', pos), keys.size());
    if (end - pos > kMaxKeyLength) return Reply(out, kBadFormat);
    pos = end + 1;
  }
  get_cas_ = return_cas;
  SendReplyWhenEmpty();  // a missed first key's response (memcached: empty, not skipped)
  get_first_key_ = true;
  size_t pos = 0;
  if (RunGet(keys, &pos, out)) return;
  // The output is full: the keys not yet looked up are kept (only then, and
  // only until they are done) and the get resumes once the output drains.
  get_keys_.assign(keys.substr(pos));
  get_pos_ = 0;
  AwaitOutputRoom();
}

void TextSession::ContinueGet(std::string* out) {
  if (RunGet(get_keys_, &get_pos_, out)) std::string().swap(get_keys_);
}

bool TextSession::RunGet(std::string_view keys, size_t* pos, std::string* out) {
  for (;;) {
    if (OutputFull(*out)) return false;
    while (*pos < keys.size() && keys[*pos] == ' ') ++*pos;
    if (*pos == keys.size()) break;
    const size_t end = std::min(keys.find(' ', *pos), keys.size());
    const std::string_view key = keys.substr(*pos, end - *pos);
    // Each key after the first begins a response of its own (memcached's
    // resp_start() per key); END joins the last key's.
    if (!get_first_key_) MarkReply(*out, true);
    get_first_key_ = false;
    *pos = end;
    const bool hit = ctx_->store->Get(key, get_exptime_, *stats_, [&](const core::ItemView& item) {
      if (Logging()) Log('>', "sending key ", key);
      out->append("VALUE ").append(key).push_back(' ');
      protocol::AppendDecimal(out, item.flags);
      out->push_back(' ');
      protocol::AppendDecimal(out, item.value.size());
      if (get_cas_) {
        out->push_back(' ');
        protocol::AppendDecimal(out, item.cas);
      }
      out->append("\r\n");
      AppendValue(out, item);
      out->append("\r\n");
    });
    if (ctx_->prefix_stats.enabled()) ctx_->prefix_stats.RecordGet(key, hit);
  }
  out->append("END\r\n");
  FlushAfterReply();  // memcached writes a get's replies out once it is answered
  if (Logging()) Log('>', "", "END");
  AwaitCommand();
  return true;
}

void TextSession::ProcessUpdate(const Tokens& t, core::StoreMode mode, bool handle_cas,
                                std::string* out) {
  SetNoreplyMaybe(t);
  const std::string_view key = t[1];
  if (key.size() > kMaxKeyLength) return Reply(out, kBadFormat);
  uint32_t flags = 0;
  int32_t exptime = 0;
  int32_t vlen = 0;
  if (!(protocol::ParseUint32(t[2], &flags) && protocol::ParseInt32(t[3], &exptime) &&
        protocol::ParseInt32(t[4], &vlen))) {
    return Reply(out, kBadFormat);
  }
  uint64_t cas = 0;
  if (handle_cas && !protocol::ParseUint64(t[5], &cas)) return Reply(out, kBadFormat);
  if (vlen < 0 || vlen > INT_MAX - 2) return Reply(out, kBadFormat);
  if (ctx_->prefix_stats.enabled()) ctx_->prefix_stats.RecordSet(key);

  const size_t block = static_cast<size_t>(vlen) + 2;
  if (!ctx_->store->SizeOk(key, flags, exptime, static_cast<size_t>(vlen))) {
    stats_->store_too_large.Add();
    Reply(out, OutcomeOf(core::StoreResult::kTooLarge).text);
    // A failed set must not leave the old value behind (memcached's rule).
    if (mode == core::StoreMode::kSet) ctx_->store->Drop(key);
    return Discard(block);
  }
  if (!input_.Reserve(block)) {
    // Too many large values are arriving at once: memcached's reply when it
    // finds no memory to receive one.
    stats_->store_no_memory.Add();
    Reply(out, OutcomeOf(core::StoreResult::kNoMemory).text);
    if (mode == core::StoreMode::kSet) ctx_->store->Drop(key);
    return Discard(block);
  }
  mode_ = mode;
  key_.assign(key);
  flags_ = flags;
  exptime_ = exptime;
  cas_ = cas;
  AwaitData(block);
}

void TextSession::CompleteData(std::string_view data, std::string* out) {
  input_.Release();
  if (data.substr(data.size() - 2) != "\r\n") {
    if (meta_set_.has_value()) {  // a meta set's errors are never quiet
      meta_set_.reset();
      noreply_ = false;
    }
    return Reply(out, "CLIENT_ERROR bad data chunk");
  }
  if (meta_set_.has_value()) return CompleteMetaSet(data.substr(0, data.size() - 2), out);
  Reply(out, OutcomeOf(ctx_->store->Store(mode_, key_, flags_, exptime_,
                                          data.substr(0, data.size() - 2), cas_, *stats_))
                 .text);
}

void TextSession::ProcessDelete(const Tokens& t, std::string* out) {
  const size_t ntokens = t.ntokens();
  if (ntokens > 3) {
    const bool hold_is_zero = t[2] == "0";
    const bool sets_noreply = SetNoreplyMaybe(t);
    const bool valid = (ntokens == 4 && (hold_is_zero || sets_noreply)) ||
                       (ntokens == 5 && hold_is_zero && sets_noreply);
    if (!valid) {
      return Reply(out, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
    }
  }
  const std::string_view key = t[1];
  if (key.size() > kMaxKeyLength) return Reply(out, kBadFormat);
  if (ctx_->prefix_stats.enabled()) ctx_->prefix_stats.RecordDelete(key);
  const bool deleted = ctx_->store->Delete(key, *stats_);
  Reply(out,
        OutcomeOf(deleted ? core::MetaDeleteResult::kDeleted : core::MetaDeleteResult::kNotFound)
            .text);
}

void TextSession::ProcessArithmetic(const Tokens& t, bool incr, std::string* out) {
  SetNoreplyMaybe(t);
  const std::string_view key = t[1];
  if (key.size() > kMaxKeyLength) return Reply(out, kBadFormat);
  uint64_t delta = 0;
  if (!protocol::ParseUint64(t[2], &delta)) {
    return Reply(out, "CLIENT_ERROR invalid numeric delta argument");
  }
  char digits[core::Engine::kDeltaMaxLength];
  size_t n = 0;
  const core::DeltaResult r = ctx_->store->Delta(key, incr, delta, *stats_, digits, &n);
  Reply(out, r == core::DeltaResult::kOk ? std::string_view(digits, n) : OutcomeOf(r).text);
}

void TextSession::ProcessTouch(const Tokens& t, std::string* out) {
  SetNoreplyMaybe(t);
  const std::string_view key = t[1];
  if (key.size() > kMaxKeyLength) return Reply(out, kBadFormat);
  int32_t exptime = 0;
  if (!protocol::ParseInt32(t[2], &exptime)) {
    return Reply(out, "CLIENT_ERROR invalid exptime argument");
  }
  Reply(out, OutcomeOf(ctx_->store->Touch(key, exptime, *stats_)).text);
}

void TextSession::ProcessFlushAll(const Tokens& t, std::string* out) {
  SetNoreplyMaybe(t);
  // As memcached: counted first, then refused under -F, then parsed.
  stats_->flush_cmds.Add();
  if (!ctx_->settings.flush_enabled) return Reply(out, "CLIENT_ERROR flush_all not allowed");
  int32_t delay = 0;
  if (t.ntokens() != (noreply_ ? 3u : 2u) && !protocol::ParseInt32(t[1], &delay)) {
    return Reply(out, "CLIENT_ERROR invalid exptime argument");
  }
  ctx_->store->FlushAll(delay);
  Reply(out, "OK");
}

// "shutdown [graceful]" under -A: the connection closes and the server stops
// as on SIGINT, or SIGUSR1 for "graceful", as memcached raises them. Both
// stop the same orderly way: replies written, connections closed, the warm
// restart file (-e) written, the pid file removed.
void TextSession::ProcessShutdown(const Tokens& t, std::string* out, bool* close) {
  if (!ctx_->settings.enable_shutdown) return Reply(out, "ERROR: shutdown not enabled");
  if (t.ntokens() > 3 || (t.ntokens() == 3 && t[1] != "graceful")) {
    return Reply(out, "CLIENT_ERROR invalid shutdown mode");
  }
  *close = true;
  std::raise(t.ntokens() == 3 ? SIGUSR1 : SIGINT);
}

void TextSession::ProcessVerbosity(const Tokens& t, std::string* out) {
  SetNoreplyMaybe(t);
  uint32_t level = 0;
  if (!protocol::ParseUint32(t[1], &level)) return Reply(out, kBadFormat);
  ctx_->verbosity.store(level > 2 ? 2 : static_cast<int>(level), std::memory_order_relaxed);
  Reply(out, "OK");
}

void TextSession::ProcessSlabs(const Tokens& t, std::string* out) {
  const size_t ntokens = t.ntokens();
  if (ntokens == 5 && t[1] == "reassign") {
    if (!ctx_->store->options().slab_reassign) {
      return Reply(out, "CLIENT_ERROR slab reassignment disabled");
    }
    int32_t src = 0;
    int32_t dst = 0;
    if (!protocol::ParseInt32(t[2], &src) || !protocol::ParseInt32(t[3], &dst)) {
      return Reply(out, kBadFormat);
    }
    switch (ctx_->store->Reassign(src, dst)) {
      case core::ReassignResult::kOk:
        return Reply(out, "OK");
      case core::ReassignResult::kBusy:
        return Reply(out, "BUSY currently processing reassign request");
      case core::ReassignResult::kBadClass:
        return Reply(out, "BADCLASS invalid src or dst class id");
      case core::ReassignResult::kNoSpare:
        return Reply(out, "NOSPARE source class has no spare pages");
      case core::ReassignResult::kSame:
        return Reply(out, "SAME src and dst class are identical");
    }
  }
  if (ntokens >= 4 && t[1] == "automove") {
    SetNoreplyMaybe(t);
    if (t[2] == "ratio") {
      double ratio = 0;
      if (ntokens < 5 || !protocol::ParseDouble(t[3], &ratio)) return Reply(out, kError);
      ctx_->store->SetAutomoveRatio(ratio);
      return Reply(out, "OK");
    }
    uint32_t level = 0;
    if (!protocol::ParseUint32(t[2], &level)) return Reply(out, kBadFormat);
    if (level > 2) return Reply(out, kError);
    ctx_->store->SetAutomove(static_cast<core::Automove>(level));
    return Reply(out, "OK");
  }
  Reply(out, kError);
}

void TextSession::ProcessStats(const Tokens& t, std::string* out) {
  if (t.count == 1) return AppendGeneralStats(*ctx_, out);
  const std::string_view sub = t[1];
  if (sub == "reset") {
    ResetAllStats(*ctx_);
    return Reply(out, "RESET");
  }
  if (sub == "settings") return AppendSettingsStats(*ctx_, out);
  if (sub == "items") return AppendItemsStats(*ctx_, out);
  if (sub == "slabs") return AppendSlabsStats(*ctx_, out);
  if (sub == "sizes") return AppendSizesStats(*ctx_, out);
  if (sub == "conns") return AppendConnsStats(*ctx_, out);
  if (sub == "detail") return ProcessStatsDetail(*ctx_, t, out);
  if (sub == "cachedump") return ProcessCachedump(*ctx_, t, out);
  Reply(out, kError);
}

}  // namespace tinycached::server
