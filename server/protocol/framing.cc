// server/protocol/framing.cc — FramedSession::Consume(), the framing loop.
#include "server/protocol/framing.h"

#include <algorithm>

namespace tinycached::server {

size_t FramedSession::Consume(std::string_view in, std::string* out, bool* close, size_t out_limit,
                              std::vector<Splice>* splices) {
  size_t pos = 0;
  out_limit_ = out_limit;
  splices_ = splices;
  spliced_ = 0;
  held_ = 0;  // everything replied before this call has been sent
  while (!*close && !OutputFull(*out)) {
    const std::string_view rest = in.substr(pos);
    flushed_ = false;
    switch (wait_) {
      case Wait::kOutput:
        ResumeOutput(out);
        if (flushed_) held_ = 0;
        break;
      case Wait::kSwallow: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(rest.size(), discard_left_));
        pos += n;
        discard_left_ -= n;
        if (discard_left_ > 0) return pos;
        wait_ = Wait::kCommand;
        break;
      }
      case Wait::kData: {
        if (rest.size() < data_len_) return pos;
        pos += data_len_;
        wait_ = Wait::kCommand;
        CompleteData(rest.substr(0, data_len_), out);
        if (flushed_) held_ = 0;
        break;
      }
      case Wait::kCommand: {
        if (command_budget_ == 0) {
          yielded_ = !rest.empty();
          return pos;
        }
        const size_t n = FrameCommand(rest, close);
        if (n == 0) return pos;
        pos += n;
        if (info_ != nullptr) {
          info_->last_cmd_time.store(ctx_->clock->Now(), std::memory_order_relaxed);
        }
        --command_budget_;
        MarkReply(*out, EmptyRepliesSent());
        RunCommand(rest.substr(0, n), out, close);
        // Its response is held from here (even an empty one: memcached's
        // skipped noreply and quiet responses wait with the others).
        held_ = flushed_ ? 0 : held_ + 1;
        break;
      }
    }
  }
  return pos;
}

void FramedSession::ResumeOutput(std::string*) { wait_ = Wait::kCommand; }

void FramedSession::AppendValue(std::string* out, const core::ItemView& item) {
  if (splices_ != nullptr && item.value.size() >= core::Engine::kPinMinValue) {
    splices_->push_back(Splice{out->size(), ctx_->store->PinVisited(item)});
    spliced_ += item.value.size();
  } else {
    out->append(item.value);
  }
}

}  // namespace tinycached::server
