// server/process.h — one connection's protocol session: ASCII here, binary
// in a BinarySession (protocol/binary_session.h) this one creates and
// forwards to when the connection speaks it (-B binary, or -B auto and a first
// byte of 0x80).
//
// Room: where the protocol meets the store (core/). Its methods live in
// several files: Consume() and the text framing in process.cc, the classic
// text commands in protocol/text.cc, the meta commands in protocol/meta.cc.
// A Session has no socket: it is fed the connection's unconsumed input and
// appends replies to an output string, so tests can drive it byte by byte.
// What a store result is called in each protocol is protocol/outcome.h's.
//
// Thread safety: a Session belongs to its connection's worker thread.
#ifndef TINYCACHED_SERVER_PROCESS_H_
#define TINYCACHED_SERVER_PROCESS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "server/protocol/binary_session.h"
#include "server/context.h"
#include "server/protocol/ascii.h"
#include "server/splice.h"

namespace tinycached::server {

// A meta set waiting for its data block: how to reply once it is stored.
struct PendingMetaSet {
  bool quiet = false;       // q: no HD
  bool binary = false;      // b: the key came base64-encoded
  bool invalidate = false;  // I (with C)
  std::string echo;         // the O/k/c flags to echo, in order, each + ' '
};

class Session {
 public:
  // kGet: a multi-get whose replies outgrew the output limit, resumed on the
  // next Consume() before any further command.
  enum class Phase { kCommand, kData, kSwallow, kGet };

  Session(ServerContext* ctx, core::ThreadStats* stats, ConnInfo* info = nullptr)
      : ctx_(ctx), stats_(stats), info_(info), input_(ctx) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Processes the complete commands at the front of `in` and returns how many
  // bytes were consumed; the rest must be passed again with more input.
  // Replies are appended to `out`. Stops early once `out` plus the values
  // spliced during this call hold more than `out_limit` bytes (the caller
  // drains it, then calls again). Sets *close when the connection must close
  // once `out` is sent. With `splices`, values of at least
  // Engine::kPinMinValue bytes are not copied into `out` but pinned and
  // appended to `splices` (the caller sends and unpins them); without, every
  // value is copied.
  size_t Consume(std::string_view in, std::string* out, bool* close,
                 size_t out_limit = SIZE_MAX, std::deque<Splice>* splices = nullptr);
  // Bytes the session needs buffered before it can go on: a data block's
  // length while one is awaited, else 0.
  size_t NeedBytes() const {
    if (binary_ != nullptr) return binary_->NeedBytes();
    return phase_ == Phase::kData ? vlen_ : 0;
  }

  Phase phase() const {
    if (binary_ == nullptr) return phase_;
    if (binary_->reading_value()) return Phase::kData;
    return binary_->swallowing() ? Phase::kSwallow : Phase::kCommand;
  }
  bool binary() const { return binary_ != nullptr; }

  // memcached's -R: at most `n` more command lines run before Consume()
  // returns (unlimited until set). yielded(): the last Consume() stopped at
  // that cap with input left over.
  void SetCommandBudget(size_t n) {
    command_budget_ = n;
    yielded_ = false;
  }
  bool yielded() const { return yielded_; }

 private:
  void ProcessCommand(std::string_view line, std::string* out, bool* close);
  void ProcessGet(const protocol::Tokens& t, bool return_cas, bool touch, std::string* out);
  void ContinueGet(std::string* out);
  void ProcessUpdate(const protocol::Tokens& t, core::StoreMode mode, bool handle_cas,
                     std::string* out);
  void CompleteUpdate(std::string_view data, std::string* out);
  void ProcessDelete(const protocol::Tokens& t, std::string* out);
  void ProcessArithmetic(const protocol::Tokens& t, bool incr, std::string* out);
  void ProcessTouch(const protocol::Tokens& t, std::string* out);
  void ProcessFlushAll(const protocol::Tokens& t, std::string* out);
  void ProcessVerbosity(const protocol::Tokens& t, std::string* out);
  void ProcessShutdown(const protocol::Tokens& t, std::string* out, bool* close);
  void ProcessStats(const protocol::Tokens& t, std::string* out);
  void ProcessSlabs(const protocol::Tokens& t, std::string* out);
  // Meta commands (protocol/meta.cc); the ones above are in protocol/text.cc.
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

  ServerContext* ctx_;
  core::ThreadStats* stats_;
  ConnInfo* info_;
  // The connection's protocol is chosen on its first byte.
  bool protocol_chosen_ = false;
  std::unique_ptr<BinarySession> binary_;  // set when it speaks binary

  Phase phase_ = Phase::kCommand;
  bool noreply_ = false;
  // The storage command waiting for its data block.
  core::StoreMode mode_ = core::StoreMode::kSet;
  std::string key_;
  uint32_t flags_ = 0;
  int32_t exptime_ = 0;
  size_t vlen_ = 0;  // data block length incl. "\r\n"
  uint64_t cas_ = 0;
  std::optional<PendingMetaSet> meta_set_;
  size_t swallow_left_ = 0;
  InputReservation input_;  // the awaited data block's share of the input budget
  // The multi-get in progress: its keys, the next one's offset, its options.
  std::string get_keys_;
  size_t get_pos_ = 0;
  bool get_cas_ = false;
  std::optional<int64_t> get_exptime_;
  size_t out_limit_ = SIZE_MAX;
  std::deque<Splice>* splices_ = nullptr;
  size_t spliced_ = 0;  // value bytes spliced during this Consume()
  size_t command_budget_ = SIZE_MAX;  // SetCommandBudget()
  bool yielded_ = false;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_PROCESS_H_
