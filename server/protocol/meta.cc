// server/protocol/meta.cc — memcached's meta commands: mg ms md ma mn me.
//
// Room: the meta half of TextSession (text_session.h); the text commands are
// in text.cc, and outcome.h names the engine's results. What an item is and
// how it changes is the engine's (core/engine.h, MetaGet and friends); this
// file reads the flags, asks the engine, and writes memcached 1.6.18's replies byte for byte —
// including the order in which it reads flags (a `t` before a `T` shows the old TTL).
//
// A meta command line:  <cm> <key> [<datalen>] <flag>*   (flags: one
// character, maybe followed by a token, e.g. `T30`, `Oabc`)
// A reply:              <RC> [<size>] <flag>*            (RC: VA HD EN NF NS EX ME MN)
// Errors are never suppressed by `q`; only the "nominal" code is (HD, and
// EN for mg).
#include <cstring>
#include <string>

#include "server/protocol/base64.h"
#include "server/protocol/outcome.h"
#include "server/protocol/text_session.h"

namespace tinycached::server {
namespace {

using protocol::kMaxKeyLength;
using protocol::OutcomeOf;
using protocol::Tokens;

// memcached's limits: a command of more than this many tokens (counting its
// terminal one), and opaque tokens (with their 'O') longer than this.
constexpr size_t kMetaMaxTokens = 20;
constexpr size_t kMetaMaxOpaque = 32;

constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";
constexpr std::string_view kBadToken = "CLIENT_ERROR bad token in command line format";

// The flags of one meta command, as memcached's preparse reads them.
struct MetaFlags {
  bool value = false, no_update = false, no_reply = false, vivify = false, touch = false;
  bool recache = false, has_cas = false, stale = false, binary = false;
  char mode = 0;
  int32_t ttl = 0, vivify_ttl = 0, recache_ttl = 0;  // client exptimes (T, N, R)
  uint32_t client_flags = 0;                         // F
  uint64_t cas = 0;                                  // C
  uint64_t delta = 1, initial = 0;                   // D, J
  std::string key;                                   // the decoded key, when `b`
};

// Reads flags t[start..]. Returns the error reply, or empty. Like memcached
// it stops at once on a duplicate or unknown flag, and otherwise goes on
// through all flags, the last error's text winning (an F error has none of
// its own, so it leaves the previous one).
std::string_view ParseMetaFlags(const Tokens& t, size_t start, MetaFlags* f) {
  bool seen[128] = {};
  bool failed = false;
  std::string_view err = kBadFormat;
  auto number32 = [&](std::string_view tok, int32_t* v) {
    if (!protocol::ParseInt32(tok.substr(1), v)) {
      err = kBadToken;
      failed = true;
    }
  };
  for (size_t i = start; i < t.count; ++i) {
    const std::string_view tok = t[i];
    const auto o = static_cast<unsigned char>(tok[0]);
    if (o >= 127 || seen[o]) return "CLIENT_ERROR duplicate flag";
    seen[o] = true;
    switch (o) {
      case 'b':
        if (!protocol::DecodeBase64(t[1], &f->key)) {
          err = "CLIENT_ERROR error decoding key";
          failed = true;
        }
        f->binary = true;
        break;
      case 'N':
        f->vivify = true;
        number32(tok, &f->vivify_ttl);
        break;
      case 'T':
        number32(tok, &f->ttl);
        f->touch = true;
        break;
      case 'R':
        f->recache = true;
        number32(tok, &f->recache_ttl);
        break;
      case 'O':
      case 'P':
      case 'L':
      case 'k':
      case 's':
      case 't':
      case 'c':
      case 'f':
      case 'l':
      case 'h':
        break;
      case 'v':
        f->value = true;
        break;
      case 'u':
        f->no_update = true;
        break;
      case 'q':
        f->no_reply = true;
        break;
      case 'F':
        if (!protocol::ParseUint32(tok.substr(1), &f->client_flags)) failed = true;
        break;
      case 'C':
        if (!protocol::ParseUint64(tok.substr(1), &f->cas)) {
          err = kBadToken;
          failed = true;
        } else {
          f->has_cas = true;
        }
        break;
      case 'M':
        if (tok.size() != 2) {
          err = "CLIENT_ERROR incorrect length for M token";
          failed = true;
        } else {
          f->mode = tok[1];
        }
        break;
      case 'J':
        if (!protocol::ParseUint64(tok.substr(1), &f->initial)) {
          err = "CLIENT_ERROR invalid numeric initial value";
          failed = true;
        }
        break;
      case 'D':
        if (!protocol::ParseUint64(tok.substr(1), &f->delta)) {
          err = "CLIENT_ERROR invalid numeric delta value";
          failed = true;
        }
        break;
      case 'I':
        f->stale = true;
        break;
      default:
        return "CLIENT_ERROR invalid flag";
    }
  }
  return failed ? err : std::string_view();
}

// What md and ma check before their mode and opaque, in memcached's order:
// token count, key length, option count, flags (whose own error texts these
// two commands do not show). Returns the error line, or empty.
std::string_view ParseDeleteOrDeltaFlags(const Tokens& t, MetaFlags* f) {
  if (t.ntokens() < 3) return "ERROR";
  if (t[1].size() > kMaxKeyLength) return kBadFormat;
  if (t.ntokens() > kMetaMaxTokens) return "CLIENT_ERROR options flags too long";
  if (!ParseMetaFlags(t, 2, f).empty()) return "CLIENT_ERROR invalid or duplicate flag";
  return {};
}

bool OpaqueTooLong(const Tokens& t, size_t start) {
  for (size_t i = start; i < t.count; ++i) {
    if (t[i][0] == 'O' && t[i].size() > kMetaMaxOpaque) return true;
  }
  return false;
}

void AppendLine(std::string* out, std::string_view line) { out->append(line).append("\r\n"); }

// " k<key>", base64 and followed by " b" for a binary key.
void AppendKey(std::string* out, std::string_view key, bool binary) {
  out->append(" k");
  if (!binary) {
    out->append(key);
    return;
  }
  protocol::AppendBase64(out, key);
  out->append(" b");
}

// memcached prints the TTL left as an unsigned difference: -1 for none.
void AppendTtl(std::string* out, core::RelTime exptime, core::RelTime now) {
  if (exptime == 0) {
    out->append("-1");
  } else {
    protocol::AppendDecimal(out, static_cast<uint32_t>(exptime - now));
  }
}

// What a reply's return flags show: the key (base64 again, if it came so),
// and, when there is an item, its cas and its TTL as the flags walked so far
// left it.
struct Shown {
  std::string_view key;
  bool binary = false;
  uint64_t cas = 0;
  core::RelTime exptime = 0;
  core::RelTime now = 0;
};

// The return flags every meta command writes alike: O (the opaque, as sent),
// k (the key), c (the cas) and t (the TTL left). False, writing nothing, for
// any other flag.
bool AppendSharedFlag(std::string* out, std::string_view tok, const Shown& s) {
  switch (tok[0]) {
    case 'O':
      out->push_back(' ');
      out->append(tok);
      return true;
    case 'k':
      AppendKey(out, s.key, s.binary);
      return true;
    case 'c':
      out->append(" c");
      protocol::AppendDecimal(out, s.cas);
      return true;
    case 't':
      out->append(" t");
      AppendTtl(out, s.exptime, s.now);
      return true;
    default:
      return false;
  }
}

// The flags a reply without an item echoes: " O<opaque>" and " k<key>", in
// their order.
void AppendEcho(std::string* out, const Tokens& t, size_t start, std::string_view key,
                bool binary) {
  const Shown shown{key, binary};
  for (size_t i = start; i < t.count; ++i) {
    if (t[i][0] == 'O' || t[i][0] == 'k') AppendSharedFlag(out, t[i], shown);
  }
}

// A reply without an item: the outcome's code and the echoed flags, or its
// text line for an error meta has no code for; nothing for a quiet success.
void AppendOutcome(std::string* out, const protocol::Outcome& o, bool quiet, const Tokens& t,
                   std::string_view key, bool binary) {
  if (o.meta.empty()) return AppendLine(out, o.text);
  if (o.ok && quiet) return;
  out->append(o.meta);
  AppendEcho(out, t, 2, key, binary);
  out->append("\r\n");
}

// T and N, met as a hit's flags are walked: T sets the TTL; N sets it only
// on the item the command just created, and returns true (the client won).
// A later t shows the new TTL.
bool WalkTtlFlag(char flag, const MetaFlags& f, const core::MetaItem& it, const core::Clock& clock,
                 core::RelTime* exptime, core::MetaChange* change) {
  if (flag == 'T') {
    *exptime = clock.ToRelative(f.ttl);
  } else if (it.created) {
    *exptime = clock.ToRelative(f.vivify_ttl);
  } else {
    return false;
  }
  change->exptime = *exptime;
  return flag == 'N';
}

}  // namespace

void TextSession::ProcessMetaGet(const Tokens& t, std::string* out) {
  if (t.ntokens() < 3) return AppendLine(out, "ERROR");
  if (t[1].size() > kMaxKeyLength) return AppendLine(out, kBadFormat);
  if (t.ntokens() > kMetaMaxTokens)
    return AppendLine(out, "CLIENT_ERROR options flags are too long");
  MetaFlags f;
  if (std::string_view err = ParseMetaFlags(t, 2, &f); !err.empty()) return AppendLine(out, err);
  if (OpaqueTooLong(t, 2)) return AppendLine(out, "CLIENT_ERROR opaque token too long");
  const std::string_view key = f.binary ? std::string_view(f.key) : t[1];
  const core::Clock& clock = *ctx_->clock;

  core::MetaGetOptions options;
  options.bump = !f.no_update;
  options.touch = f.touch;
  options.vivify = f.vivify;
  const core::MetaGetResult r =
      ctx_->store->MetaGet(key, options, *stats_, [&](const core::MetaItem& it) {
        core::MetaChange change;
        Shown shown{key, (it.state & compact::kMetaBinaryKey) != 0, it.cas, it.exptime,
                    clock.Now()};
        bool won = false;
        if (f.value) {
          out->append("VA ");
          protocol::AppendDecimal(out, it.value.size());
        } else {
          out->append("HD");
        }
        // memcached walks the flags in order, changing the item as it goes.
        for (size_t i = 2; i < t.count; ++i) {
          switch (t[i][0]) {
            case 'T':
            case 'N':
              if (WalkTtlFlag(t[i][0], f, it, clock, &shown.exptime, &change)) won = true;
              break;
            case 'R':
              if ((it.state & compact::kMetaWinSent) == 0 && !it.created && shown.exptime != 0 &&
                  shown.exptime < clock.ToRelative(f.recache_ttl)) {
                won = true;
              }
              break;
            case 's':
              out->append(" s");
              protocol::AppendDecimal(out, it.value.size());
              break;
            case 'f':
              out->append(" f");
              protocol::AppendDecimal(out, it.flags);
              break;
            case 'l':
              out->append(" l");
              protocol::AppendDecimal(
                  out, it.has_access_time ? static_cast<uint32_t>(shown.now - it.last_access) : 0);
              break;
            case 'h':
              out->append(it.fetched ? " h1" : " h0");
              break;
            default:  // O k c t
              AppendSharedFlag(out, t[i], shown);
              break;
          }
        }
        // Z before W: a client is never told both.
        if ((it.state & compact::kMetaWinSent) != 0) out->append(" Z");
        if ((it.state & compact::kMetaStale) != 0) {
          out->append(" X");
          if ((it.state & compact::kMetaWinSent) == 0) won = true;
        }
        if (won) {
          out->append(" W");
          change.state = static_cast<uint8_t>(it.state | compact::kMetaWinSent);
        }
        out->append("\r\n");
        if (f.value) {
          AppendValue(out, core::ItemView{it.flags, it.value, it.cas, it.pin});
          out->append("\r\n");
        }
        return change;
      });
  if (r != core::MetaGetResult::kMiss || f.no_reply) return;
  out->append("EN");
  AppendEcho(out, t, 2, key, f.binary);
  out->append("\r\n");
}

void TextSession::ProcessMetaSet(const Tokens& t, std::string* out) {
  if (t.ntokens() < 3) return AppendLine(out, "ERROR");
  if (t[1].size() > kMaxKeyLength || t.ntokens() == 3) return AppendLine(out, kBadFormat);
  if (t.ntokens() > kMetaMaxTokens) return AppendLine(out, "CLIENT_ERROR options flags too long");
  int32_t vlen = 0;
  if (!protocol::ParseInt32(t[2], &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
    return AppendLine(out, kBadFormat);
  }
  const size_t block = static_cast<size_t>(vlen) + 2;
  // From here on an error swallows the data block.
  auto fail = [&](std::string_view err) {
    AppendLine(out, err);
    Discard(block);
  };
  MetaFlags f;
  if (std::string_view err = ParseMetaFlags(t, 3, &f); !err.empty()) return fail(err);
  core::StoreMode mode = core::StoreMode::kSet;
  switch (f.mode) {
    case 0:
    case 'S':
      mode = core::StoreMode::kSet;
      break;
    case 'E':
      mode = core::StoreMode::kAdd;
      break;
    case 'A':
      mode = core::StoreMode::kAppend;
      break;
    case 'P':
      mode = core::StoreMode::kPrepend;
      break;
    case 'R':
      mode = core::StoreMode::kReplace;
      break;
    default:
      return fail("CLIENT_ERROR invalid mode for ms M token");
  }
  if (OpaqueTooLong(t, 3)) return fail("CLIENT_ERROR opaque token too long");
  // A CAS turns set and replace into cas (add ignores it; append and
  // prepend check it themselves).
  if (f.has_cas && (mode == core::StoreMode::kSet || mode == core::StoreMode::kReplace)) {
    mode = core::StoreMode::kCas;
  }
  const std::string_view key = f.binary ? std::string_view(f.key) : t[1];
  const int64_t exptime = f.touch ? f.ttl : 0;
  if (!ctx_->store->SizeOk(key, f.client_flags, exptime, static_cast<size_t>(vlen))) {
    stats_->store_too_large.Add();
    ctx_->store->Drop(key);  // no stale value survives a failed store (any mode)
    return fail(OutcomeOf(core::StoreResult::kTooLarge).text);
  }
  if (!input_.Reserve(block)) {
    stats_->store_no_memory.Add();
    ctx_->store->Drop(key);
    return fail(OutcomeOf(core::StoreResult::kNoMemory).text);
  }
  // The reply's flags, in order, wait for the data block.
  meta_set_.emplace();
  meta_set_->quiet = f.no_reply;
  meta_set_->binary = f.binary;
  meta_set_->invalidate = f.stale && mode == core::StoreMode::kCas;
  for (size_t i = 3; i < t.count; ++i) {
    const char c = t[i][0];
    if (c == 'O' || c == 'k' || c == 'c') meta_set_->echo.append(t[i]).push_back(' ');
  }
  mode_ = mode;
  key_.assign(key);
  flags_ = f.client_flags;
  exptime_ = static_cast<int32_t>(exptime);
  cas_ = f.cas;
  AwaitData(block);
}

void TextSession::CompleteMetaSet(std::string_view value, std::string* out) {
  const PendingMetaSet ms = std::move(*meta_set_);
  meta_set_.reset();
  core::MetaStoreOptions options;
  options.invalidate = ms.invalidate;
  options.binary_key = ms.binary;
  uint64_t cas = 0;
  const protocol::Outcome o = OutcomeOf(
      ctx_->store->MetaStore(mode_, key_, flags_, exptime_, value, cas_, options, *stats_, &cas));
  if (o.meta.empty()) return AppendLine(out, o.text);
  if (o.ok && ms.quiet) return;
  out->append(o.meta);
  const Shown shown{key_, ms.binary, cas};
  for (size_t pos = 0; pos < ms.echo.size();) {
    const size_t end = ms.echo.find(' ', pos);
    AppendSharedFlag(out, std::string_view(ms.echo).substr(pos, end - pos), shown);
    pos = end + 1;
  }
  out->append("\r\n");
}

void TextSession::ProcessMetaDelete(const Tokens& t, std::string* out) {
  MetaFlags f;
  if (std::string_view err = ParseDeleteOrDeltaFlags(t, &f); !err.empty()) {
    return AppendLine(out, err);
  }
  if (OpaqueTooLong(t, 2)) return AppendLine(out, "CLIENT_ERROR opaque token too long");
  const std::string_view key = f.binary ? std::string_view(f.key) : t[1];
  core::MetaDeleteOptions options;
  if (f.has_cas) options.cas = f.cas;
  options.invalidate = f.stale;
  if (f.stale && f.touch) options.exptime = ctx_->clock->ToRelative(f.ttl);
  AppendOutcome(out, OutcomeOf(ctx_->store->MetaDelete(key, options, *stats_)), f.no_reply, t, key,
                f.binary);
}

void TextSession::ProcessMetaArithmetic(const Tokens& t, std::string* out) {
  MetaFlags f;
  if (std::string_view err = ParseDeleteOrDeltaFlags(t, &f); !err.empty()) {
    return AppendLine(out, err);
  }
  bool incr = true;
  switch (f.mode) {
    case 0:
    case 'I':
    case '+':
      incr = true;
      break;
    case 'D':
    case '-':
      incr = false;
      break;
    default:
      return AppendLine(out, "CLIENT_ERROR invalid mode for ma M token");
  }
  if (OpaqueTooLong(t, 2)) return AppendLine(out, "CLIENT_ERROR opaque token too long");
  const std::string_view key = f.binary ? std::string_view(f.key) : t[1];
  const core::Clock& clock = *ctx_->clock;
  core::MetaDeltaOptions options;
  if (f.has_cas) options.cas = f.cas;
  options.vivify = f.vivify;
  options.initial = f.initial;
  char digits[core::Engine::kDeltaMaxLength];
  size_t n = 0;
  std::string line;
  bool created = false;
  const core::DeltaResult r = ctx_->store->MetaDelta(
      key, incr, f.delta, options, *stats_, digits, &n, [&](const core::MetaItem& it) {
        core::MetaChange change;
        Shown shown{key, f.binary, it.cas, it.exptime, clock.Now()};
        created = it.created;
        if (f.value) {
          line.append("VA ");
          protocol::AppendDecimal(&line, n);
        } else {
          line.append("HD");
        }
        for (size_t i = 2; i < t.count; ++i) {
          const char flag = t[i][0];
          if (flag == 'T' || flag == 'N') {
            WalkTtlFlag(flag, f, it, clock, &shown.exptime, &change);
          } else {
            AppendSharedFlag(&line, t[i], shown);  // O k c t; the rest show nothing here
          }
        }
        return change;
      });
  if (r == core::DeltaResult::kOk) {
    // memcached drops the nominal reply, but not for an item it created.
    if (f.no_reply && !created) return;
    out->append(line);
    if (f.value) out->append("\r\n").append(digits, n);
    out->append("\r\n");
    return;
  }
  if (r == core::DeltaResult::kNoMemory && f.vivify) {
    return AppendLine(out, "SERVER_ERROR Out of memory allocating new item");
  }
  AppendOutcome(out, OutcomeOf(r), f.no_reply, t, key, f.binary);
}

void TextSession::ProcessMetaDebug(const Tokens& t, std::string* out) {
  if (t.ntokens() < 3 || t[1].size() > kMaxKeyLength) return AppendLine(out, kBadFormat);
  std::string decoded;
  std::string_view key = t[1];
  if (t.ntokens() >= 4 && t[2] == "b") {
    if (!protocol::DecodeBase64(key, &decoded)) return AppendLine(out, kBadFormat);
    key = decoded;
  }
  const core::RelTime now = ctx_->clock->Now();
  core::MetaGetOptions options;
  options.debug = true;
  const core::MetaGetResult r =
      ctx_->store->MetaGet(key, options, *stats_, [&](const core::MetaItem& it) {
        out->append("ME ");
        if ((it.state & compact::kMetaBinaryKey) != 0) {
          protocol::AppendBase64(out, key);
        } else {
          out->append(key);
        }
        // exp: memcached prints now - expiry, so a future expiry is negative.
        out->append(" exp=");
        if (it.exptime == 0) {
          out->append("-1");
        } else {
          out->append(std::to_string(static_cast<int32_t>(now - it.exptime)));
        }
        out->append(" la=");
        protocol::AppendDecimal(out, it.has_access_time ? now - it.last_access : 0);
        out->append(" cas=");
        protocol::AppendDecimal(out, it.cas);
        out->append(it.fetched ? " fetch=yes" : " fetch=no");
        out->append(" cls=");
        protocol::AppendDecimal(out, static_cast<uint64_t>(it.class_id));
        out->append(" size=");
        protocol::AppendDecimal(out, it.size);
        out->append("\r\n");
        return core::MetaChange{};
      });
  if (r == core::MetaGetResult::kMiss) AppendLine(out, "EN");
  // memcached 1.6.18's cmd_meta counts this command only, hit or miss.
  stats_->meta_cmds.Add();
}

}  // namespace tinycached::server
