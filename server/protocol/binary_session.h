// server/protocol/binary_session.h — one connection's binary protocol session.
//
// Room: like text_session.h, a place where the protocol (binary.h, the
// frames) meets the store (core/); outcome.h gives each store result its
// status. Framed by FramedSession (framing.h): no socket, fed the
// connection's unconsumed input, it appends responses to an output string.
// NewSession() (session.h) makes one for a connection that speaks binary.
//
// Behaviour is memcached 1.6.18's (proto_bin.c), including its handling of
// malformed frames: see Dispatch() in binary_session.cc.
//
// Thread safety: a BinarySession belongs to its connection's worker thread.
#ifndef TINYCACHED_SERVER_BINARY_SESSION_H_
#define TINYCACHED_SERVER_BINARY_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "server/context.h"
#include "server/protocol/binary.h"
#include "server/protocol/framing.h"

namespace tinycached::server {

class BinarySession final : public FramedSession {
 public:
  BinarySession(ServerContext* ctx, core::ThreadStats* stats, ConnInfo* info)
      : FramedSession(ctx, stats, info) {}

  // -R does not cap binary requests here: the budget is ignored.
  void SetCommandBudget(size_t) override {}
  bool authenticated() const { return authenticated_; }

 private:
  // What the awaited value is for.
  enum class Pending { kStore, kSaslAuth, kSaslStep };

  // FramedSession: a request is its header, extras and key; a value follows
  // as a data block.
  size_t FrameCommand(std::string_view rest, bool* close) override;
  void RunCommand(std::string_view frame, std::string* out, bool* close) override;
  void CompleteData(std::string_view value, std::string* out) override;
  // memcached 1.6.18 leaves a quiet binary command's response empty, not
  // skipped: over UDP one that leads is sent as a bare header.
  bool EmptyRepliesSent() const override { return true; }

  void Dispatch(const protocol::binary::Header& h, std::string_view extras, std::string_view key,
                std::string* out, bool* close);
  void ProcessGet(std::string_view extras, std::string_view key, std::string* out);
  void ProcessUpdate(std::string_view extras, std::string_view key, std::string* out);
  void CompleteUpdate(std::string_view value, std::string* out);
  void ProcessDelete(std::string_view key, std::string* out);
  void ProcessArithmetic(std::string_view extras, std::string_view key, std::string* out);
  void ProcessFlush(std::string_view extras, std::string* out);
  void ProcessStat(std::string_view key, std::string* out);
  void ProcessSaslAuth(std::string_view key, std::string* out);
  void CompleteSaslAuth(std::string_view value, std::string* out);

  // memcached's write_bin_response(): a success response, left out for a
  // quiet command.
  void Respond(std::string* out, std::string_view extras, std::string_view key,
               std::string_view value, uint64_t cas);
  // memcached's write_bin_error(): always sent, quiet or not.
  void Error(std::string* out, uint16_t status);
  // Then discards the next `n` input bytes (none for n <= 0).
  void Swallow(int64_t n);
  // Converts "STAT name value\r\n" ... "END\r\n" into one packet per stat and
  // the empty terminator packet.
  void AppendStatPackets(std::string_view text, std::string* out);

  bool authenticated_ = false;
  // The request being handled (FrameCommand() parses its header).
  protocol::binary::Header req_;
  uint8_t base_ = 0;  // its opcode without the quiet bit
  bool quiet_ = false;
  // The awaited value's request.
  Pending pending_ = Pending::kStore;
  core::StoreMode mode_ = core::StoreMode::kSet;
  std::string key_;
  uint32_t flags_ = 0;
  int64_t exptime_ = 0;
  uint64_t cas_ = 0;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_BINARY_SESSION_H_
