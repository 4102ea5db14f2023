// server/protocol/text_session.h — one connection's text protocol session:
// memcached's classic text commands and its meta commands.
//
// Room: where the text protocol meets the store (core/). Framed by
// FramedSession (framing.h); its methods live in several files: the command
// line framing in text_session.cc, the classic text commands in text.cc, the
// meta commands in meta.cc. What a store result is called is outcome.h's.
//
// Thread safety: a TextSession belongs to its connection's worker thread.
#ifndef TINYCACHED_SERVER_PROTOCOL_TEXT_SESSION_H_
#define TINYCACHED_SERVER_PROTOCOL_TEXT_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "server/context.h"
#include "server/protocol/ascii.h"
#include "server/protocol/framing.h"

namespace tinycached::server {

// A meta set waiting for its data block: how to reply once it is stored.
struct PendingMetaSet {
  bool quiet = false;       // q: no HD
  bool binary = false;      // b: the key came base64-encoded
  bool invalidate = false;  // I (with C)
  std::string echo;         // the O/k/c flags to echo, in order, each + ' '
};

class TextSession final : public FramedSession {
 public:
  TextSession(ServerContext* ctx, core::ThreadStats* stats, ConnInfo* info)
      : FramedSession(ctx, stats, info) {}

 private:
  // FramedSession: command lines, data blocks, and a multi-get resumed once
  // the output drains.
  size_t FrameCommand(std::string_view rest, bool* close) override;
  void RunCommand(std::string_view frame, std::string* out, bool* close) override;
  // The value and its "\r\n" (text.cc).
  void CompleteData(std::string_view block, std::string* out) override;
  void ResumeOutput(std::string* out) override { ContinueGet(out); }

  void ProcessCommand(std::string_view line, std::string* out, bool* close);
  void ProcessGet(const protocol::Tokens& t, bool return_cas, bool touch, std::string* out);
  void ContinueGet(std::string* out);
  // Looks up keys[*pos...] in turn, advancing *pos. True once all are done
  // (and the END sent), false when the output filled first.
  bool RunGet(std::string_view keys, size_t* pos, std::string* out);
  void ProcessUpdate(const protocol::Tokens& t, core::StoreMode mode, bool handle_cas,
                     std::string* out);
  void ProcessDelete(const protocol::Tokens& t, std::string* out);
  void ProcessArithmetic(const protocol::Tokens& t, bool incr, std::string* out);
  void ProcessTouch(const protocol::Tokens& t, std::string* out);
  void ProcessFlushAll(const protocol::Tokens& t, std::string* out);
  void ProcessVerbosity(const protocol::Tokens& t, std::string* out);
  void ProcessShutdown(const protocol::Tokens& t, std::string* out, bool* close);
  void ProcessStats(const protocol::Tokens& t, std::string* out);
  void ProcessSlabs(const protocol::Tokens& t, std::string* out);
  // Meta commands (meta.cc); the ones above are in text.cc.
  void ProcessMetaGet(const protocol::Tokens& t, std::string* out);
  void ProcessMetaSet(const protocol::Tokens& t, std::string* out);
  void CompleteMetaSet(std::string_view value, std::string* out);
  void ProcessMetaDelete(const protocol::Tokens& t, std::string* out);
  void ProcessMetaArithmetic(const protocol::Tokens& t, std::string* out);
  void ProcessMetaDebug(const protocol::Tokens& t, std::string* out);

  // memcached's set_noreply_maybe(): the last real token is "noreply".
  bool SetNoreplyMaybe(const protocol::Tokens& t);
  // memcached's out_string(): one reply line, suppressed under noreply.
  void Reply(std::string* out, std::string_view line);

  bool noreply_ = false;
  // The storage command waiting for its data block.
  core::StoreMode mode_ = core::StoreMode::kSet;
  std::string key_;
  uint32_t flags_ = 0;
  int32_t exptime_ = 0;
  uint64_t cas_ = 0;
  std::optional<PendingMetaSet> meta_set_;
  // The multi-get in progress: its keys, the next one's offset, its options.
  std::string get_keys_;  // a get's keys not yet looked up, while the output is full
  size_t get_pos_ = 0;
  bool get_first_key_ = true;  // the next key looked up is the get's first (no reply mark)
  bool get_cas_ = false;
  std::optional<int64_t> get_exptime_;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_PROTOCOL_TEXT_SESSION_H_
