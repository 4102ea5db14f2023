// server/protocol/binary_session.h — one connection's binary protocol session.
//
// Room: like server/process.h, a place where the protocol (binary.h, the
// frames) meets the store (core/); outcome.h gives each store result its
// status. No socket: fed the connection's unconsumed
// input, it appends responses to an output string. A Session (process.h)
// creates one when the connection turns out to speak binary and forwards to
// it from then on.
//
// Behaviour is memcached 1.6.18's (proto_bin.c), including its handling of
// malformed frames: see Dispatch() in binary_session.cc.
//
// Thread safety: a BinarySession belongs to its connection's worker thread.
#ifndef TINYCACHED_SERVER_BINARY_SESSION_H_
#define TINYCACHED_SERVER_BINARY_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "server/context.h"
#include "server/protocol/binary.h"
#include "server/splice.h"

namespace tinycached::server {

class BinarySession {
 public:
  BinarySession(ServerContext* ctx, core::ThreadStats* stats, ConnInfo* info)
      : ctx_(ctx), stats_(stats), info_(info), input_(ctx) {}
  BinarySession(const BinarySession&) = delete;
  BinarySession& operator=(const BinarySession&) = delete;

  // As Session::Consume(): runs the complete requests at the front of `in`,
  // returns the bytes consumed, appends responses to `out`, stops once `out`
  // (plus values spliced in this call) exceeds `out_limit`, sets *close when
  // the connection must close after `out` is sent.
  size_t Consume(std::string_view in, std::string* out, bool* close, size_t out_limit,
                 std::deque<Splice>* splices);
  // A value's length while one is awaited, else 0.
  size_t NeedBytes() const { return state_ == State::kValue ? vlen_ : 0; }
  bool reading_value() const { return state_ == State::kValue; }
  bool swallowing() const { return state_ == State::kSwallow; }
  bool authenticated() const { return authenticated_; }

 private:
  enum class State { kHeader, kValue, kSwallow };
  // What the awaited value is for.
  enum class Pending { kStore, kSaslAuth, kSaslStep };

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
  // Then discards the next `n` input bytes.
  void Swallow(int64_t n);
  // Converts "STAT name value\r\n" ... "END\r\n" into one packet per stat and
  // the empty terminator packet.
  void AppendStatPackets(std::string_view text, std::string* out);

  ServerContext* ctx_;
  core::ThreadStats* stats_;
  ConnInfo* info_;

  State state_ = State::kHeader;
  bool authenticated_ = false;
  // The request being handled.
  protocol::binary::Header req_;
  uint8_t base_ = 0;   // its opcode without the quiet bit
  bool quiet_ = false;
  // The awaited value's request.
  Pending pending_ = Pending::kStore;
  core::StoreMode mode_ = core::StoreMode::kSet;
  std::string key_;
  uint32_t flags_ = 0;
  int64_t exptime_ = 0;
  uint64_t cas_ = 0;
  size_t vlen_ = 0;
  uint64_t swallow_left_ = 0;
  InputReservation input_;  // the awaited value's share of the input budget
  size_t out_limit_ = SIZE_MAX;
  std::deque<Splice>* splices_ = nullptr;
  size_t spliced_ = 0;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_BINARY_SESSION_H_
