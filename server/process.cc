// server/process.cc — Session::Consume(): the connection's protocol, chosen
// on its first byte, and the text protocol's framing (command lines, data
// blocks, swallowed blocks, a multi-get resumed once the output drains).
// The commands themselves are in server/protocol/: text.cc, meta.cc and, for
// a binary connection, binary_session.cc.
#include "server/process.h"

#include <algorithm>

namespace tinycached::server {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

size_t Session::Consume(std::string_view in, std::string* out, bool* close, size_t out_limit,
                        std::deque<Splice>* splices) {
  if (!protocol_chosen_ && !in.empty()) {
    protocol_chosen_ = true;
    const Protocol p = ctx_->settings.protocol;
    if (p == Protocol::kBinary ||
        (p == Protocol::kAuto &&
         static_cast<uint8_t>(in[0]) == protocol::binary::kRequestMagic)) {
      binary_ = std::make_unique<BinarySession>(ctx_, stats_, info_);
    }
  }
  if (binary_ != nullptr) return binary_->Consume(in, out, close, out_limit, splices);
  size_t pos = 0;
  out_limit_ = out_limit;
  splices_ = splices;
  spliced_ = 0;
  while (!*close && out->size() + spliced_ <= out_limit) {
    const std::string_view rest = in.substr(pos);
    switch (phase_) {
      case Phase::kGet:
        ContinueGet(out);
        break;
      case Phase::kSwallow: {
        const size_t n = std::min(rest.size(), swallow_left_);
        pos += n;
        swallow_left_ -= n;
        if (swallow_left_ > 0) return pos;
        phase_ = Phase::kCommand;
        break;
      }
      case Phase::kData: {
        if (rest.size() < vlen_) return pos;
        pos += vlen_;
        phase_ = Phase::kCommand;
        CompleteUpdate(rest.substr(0, vlen_), out);
        break;
      }
      case Phase::kCommand: {
        if (command_budget_ == 0) {
          yielded_ = !rest.empty();
          return pos;
        }
        const size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
          if (rest.size() > protocol::kMaxLineWithoutNewline) {
            // Only a multi-get may be this long (memcached's rule).
            const size_t start = std::min(rest.find_first_not_of(' '), rest.size());
            const std::string_view cmd = rest.substr(start);
            if (start > 100 || !(StartsWith(cmd, "get ") || StartsWith(cmd, "gets ")) ||
                rest.size() > protocol::kMaxGetLine) {
              *close = true;
            }
          }
          return pos;
        }
        std::string_view line = rest.substr(0, nl);
        pos += nl + 1;
        if (line.size() > 1 && line.back() == '\r') line.remove_suffix(1);
        line = line.substr(0, line.find('\0'));  // memcached reads the line as a C string
        if (info_ != nullptr) info_->last_cmd_time.store(ctx_->clock->Now(), std::memory_order_relaxed);
        --command_budget_;
        ProcessCommand(line, out, close);
        break;
      }
    }
  }
  return pos;
}

}  // namespace tinycached::server
