// server/protocol/framing.h — FramedSession: the framing loop every protocol
// session shares, written once.
//
// Room: the half of a session that is the same for every protocol. Consume()
// walks the input: it finds each complete command (the protocol says where
// one ends: FrameCommand), runs it (RunCommand), waits for a data block of N
// bytes and hands it over whole (CompleteData), discards a refused block
// without buffering it, resumes replies it still owes once the output has
// room (ResumeOutput), stops at the output limit and at memcached's -R cap,
// and stamps the connection's last command time. It also keeps the state
// both protocols read while they run: the awaited block's share of the input
// budget, and the output limit and splices of the Consume() in progress
// (AppendValue, OutputFull).
//
// Thread safety: as ProtocolSession.
#ifndef TINYCACHED_SERVER_PROTOCOL_FRAMING_H_
#define TINYCACHED_SERVER_PROTOCOL_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.h"
#include "server/context.h"
#include "server/protocol/session.h"
#include "server/splice.h"

namespace tinycached::server {

class FramedSession : public ProtocolSession {
 public:
  size_t Consume(std::string_view in, std::string* out, bool* close, size_t out_limit,
                 std::vector<Splice>* splices) final;
  size_t NeedBytes() const final { return wait_ == Wait::kData ? data_len_ : 0; }
  Wait Waiting() const final { return wait_; }
  void SetCommandBudget(size_t n) override {
    command_budget_ = n;
    yielded_ = false;
  }
  bool yielded() const final { return yielded_; }
  void SetReplyMarks(std::vector<ReplyMark>* marks) final { marks_ = marks; }

 protected:
  FramedSession(ServerContext* ctx, core::ThreadStats* stats, ConnInfo* info)
      : ctx_(ctx), stats_(stats), info_(info), input_(ctx) {}

  // The length of the complete command at the front of `rest` (never 0 for
  // one), or 0 while it is incomplete. Input that can never make a command
  // sets *close (and returns 0).
  virtual size_t FrameCommand(std::string_view rest, bool* close) = 0;
  // Runs the command FrameCommand() just measured: `frame` is its bytes.
  virtual void RunCommand(std::string_view frame, std::string* out, bool* close) = 0;
  // The data block AwaitData() asked for, whole.
  virtual void CompleteData(std::string_view block, std::string* out) = 0;
  // Called while Waiting() is kOutput, before any further input is read; a
  // session that never calls AwaitOutputRoom() need not override it.
  virtual void ResumeOutput(std::string* out);

  // The next `n` input bytes are a data block for CompleteData().
  void AwaitData(size_t n) {
    data_len_ = n;
    wait_ = Wait::kData;
  }
  // The next `n` input bytes are discarded as they arrive (0: none).
  void Discard(uint64_t n) {
    discard_left_ = n;
    wait_ = Wait::kSwallow;
  }
  // Replies are owed: ResumeOutput() runs again once the output has room.
  void AwaitOutputRoom() { wait_ = Wait::kOutput; }
  // The owed replies are all out; the next command may run.
  void AwaitCommand() { wait_ = Wait::kCommand; }

  // A response object begins here (SetReplyMarks); Consume() marks one before
  // each command, with EmptyRepliesSent().
  void MarkReply(const std::string& out, bool sent_when_empty) {
    if (marks_ != nullptr) marks_->push_back({out.size(), sent_when_empty});
  }
  // The current response is sent even when empty (memcached's quit).
  void SendReplyWhenEmpty() {
    if (marks_ != nullptr && !marks_->empty()) marks_->back().sent_when_empty = true;
  }
  // memcached writes out every response so far once the current one is
  // complete (`on`; false takes it back).
  void FlushAfterReply(bool on = true) {
    flushed_ = on;
    if (marks_ != nullptr && !marks_->empty()) marks_->back().flush = on;
  }
  // Whether memcached would still hold unsent the response of an earlier
  // command when this one runs: it writes out what it holds once it has
  // processed all the input it read (so a Consume() begins with nothing held:
  // the caller sends everything before it calls again), once a data block
  // read past that input is complete, at -R's cap, and after the commands
  // that FlushAfterReply() (a get's END, mn, binary errors). memcached
  // refuses `lru_crawler metadump` and `watch` while it holds any.
  bool RepliesHeld() const { return held_ > 0; }
  // Whether this protocol's commands that answer nothing leave an empty
  // response (binary) or a skipped one (text: noreply, quiet meta).
  virtual bool EmptyRepliesSent() const { return false; }

  // Whether the output of this Consume() has passed its limit.
  bool OutputFull(const std::string& out) const { return out.size() + spliced_ > out_limit_; }
  // An item's value, into `out` or, if large enough and the caller takes
  // splices, spliced after it (pinned, sent in place).
  void AppendValue(std::string* out, const core::ItemView& item);

  // -vv (or `verbosity 2`): memcached's per-command log on stderr, one
  // line each, "<fd ..." for what came in and ">fd ..." for what went out.
  bool Logging() const {
    return info_ != nullptr && ctx_->verbosity.load(std::memory_order_relaxed) > 1;
  }
  void Log(char dir, std::string_view what, std::string_view text) const {
    std::fprintf(stderr, "%c%d %.*s%.*s\n", dir, info_->fd, static_cast<int>(what.size()),
                 what.data(), static_cast<int>(text.size()), text.data());
  }

  ServerContext* const ctx_;
  core::ThreadStats* const stats_;
  ConnInfo* const info_;
  InputReservation input_;  // the awaited data block's share of the input budget

 private:
  Wait wait_ = Wait::kCommand;
  size_t data_len_ = 0;        // AwaitData()
  uint64_t discard_left_ = 0;  // Discard()
  size_t out_limit_ = SIZE_MAX;
  std::vector<Splice>* splices_ = nullptr;
  size_t spliced_ = 0;                // value bytes spliced during this Consume()
  size_t command_budget_ = SIZE_MAX;  // SetCommandBudget()
  bool yielded_ = false;
  std::vector<ReplyMark>* marks_ = nullptr;  // SetReplyMarks()
  size_t held_ = 0;                          // responses RepliesHeld() counts
  bool flushed_ = false;                     // FlushAfterReply() during the current step
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_PROTOCOL_FRAMING_H_
