// server/protocol/text_session.cc — the text protocol's framing: command
// lines with memcached's length limits, and the data block a storage command
// awaits. The commands themselves are in text.cc and meta.cc.
#include "server/protocol/text_session.h"

#include <algorithm>

namespace tinycached::server {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

size_t TextSession::FrameCommand(std::string_view rest, bool* close) {
  const size_t nl = rest.find('\n');
  if (nl != std::string_view::npos) return nl + 1;
  if (rest.size() > protocol::kMaxLineWithoutNewline) {
    // Only a multi-get may be this long (memcached's rule).
    const size_t start = std::min(rest.find_first_not_of(' '), rest.size());
    const std::string_view cmd = rest.substr(start);
    if (start > 100 || !(StartsWith(cmd, "get ") || StartsWith(cmd, "gets ")) ||
        rest.size() > protocol::kMaxGetLine) {
      *close = true;
    }
  }
  return 0;
}

void TextSession::RunCommand(std::string_view frame, std::string* out, bool* close) {
  std::string_view line = frame.substr(0, frame.size() - 1);  // without its '\n'
  if (line.size() > 1 && line.back() == '\r') line.remove_suffix(1);
  line = line.substr(0, line.find('\0'));  // memcached reads the line as a C string
  if (Logging()) Log('<', "", line);
  ProcessCommand(line, out, close);
}

}  // namespace tinycached::server
