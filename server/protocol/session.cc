// server/protocol/session.cc — NewSession(): the protocol -B names, or under
// -B auto the one the connection's first byte picks.
#include "server/protocol/session.h"

#include <cstdio>

#include "server/protocol/binary.h"
#include "server/protocol/binary_session.h"
#include "server/protocol/text_session.h"

namespace tinycached::server {
namespace {

// -B auto: no protocol until the first byte arrives, then that byte's.
class AutoSession final : public ProtocolSession {
 public:
  AutoSession(ServerContext* ctx, core::ThreadStats* stats, ConnInfo* info)
      : ctx_(ctx), stats_(stats), info_(info) {}

  size_t Consume(std::string_view in, std::string* out, bool* close, size_t out_limit,
                 std::vector<Splice>* splices) override {
    if (chosen_ == nullptr) {
      if (in.empty()) return 0;
      const bool binary = static_cast<uint8_t>(in[0]) == protocol::binary::kRequestMagic;
      if (binary) {
        chosen_ = std::make_unique<BinarySession>(ctx_, stats_, info_);
      } else {
        chosen_ = std::make_unique<TextSession>(ctx_, stats_, info_);
      }
      if (info_ != nullptr && ctx_->verbosity.load(std::memory_order_relaxed) > 1) {
        std::fprintf(stderr, "%d: Client using the %s protocol\n", info_->fd,
                     binary ? "binary" : "ascii");
      }
      chosen_->SetCommandBudget(command_budget_);
      chosen_->SetReplyMarks(marks_);
    }
    return chosen_->Consume(in, out, close, out_limit, splices);
  }
  size_t NeedBytes() const override { return chosen_ != nullptr ? chosen_->NeedBytes() : 0; }
  Wait Waiting() const override { return chosen_ != nullptr ? chosen_->Waiting() : Wait::kCommand; }
  void SetCommandBudget(size_t n) override {
    if (chosen_ != nullptr) return chosen_->SetCommandBudget(n);
    command_budget_ = n;
  }
  bool yielded() const override { return chosen_ != nullptr && chosen_->yielded(); }
  void SetReplyMarks(std::vector<ReplyMark>* marks) override {
    if (chosen_ != nullptr) return chosen_->SetReplyMarks(marks);
    marks_ = marks;
  }

 private:
  ServerContext* const ctx_;
  core::ThreadStats* const stats_;
  ConnInfo* const info_;
  std::unique_ptr<ProtocolSession> chosen_;
  size_t command_budget_ = SIZE_MAX;         // handed on to the chosen session
  std::vector<ReplyMark>* marks_ = nullptr;  // likewise
};

}  // namespace

std::unique_ptr<ProtocolSession> NewSession(ServerContext* ctx, core::ThreadStats* stats,
                                            ConnInfo* info) {
  switch (ctx->settings.protocol) {
    case Protocol::kAscii:
      return std::make_unique<TextSession>(ctx, stats, info);
    case Protocol::kBinary:
      return std::make_unique<BinarySession>(ctx, stats, info);
    case Protocol::kAuto:
      break;
  }
  return std::make_unique<AutoSession>(ctx, stats, info);
}

}  // namespace tinycached::server
