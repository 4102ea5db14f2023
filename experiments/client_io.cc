// experiments/client_io.cc — the load clients' shared plumbing: flag parsing,
// sockets, the reply reader and the JSON string writer (client_io.h).
#include "experiments/client_io.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"

namespace client_io {

namespace {

// A reply line longer than this means the client is out of step with the server.
constexpr size_t kMaxLineLength = size_t{1} << 20;

// The flag `name` names once '-' is read as '_', or "" if there is none
// (bool flags may also be negated as --noNAME).
std::string KnownFlag(std::string_view name) {
  std::string normal(name);
  std::replace(normal.begin(), normal.end(), '-', '_');
  if (absl::FindCommandLineFlag(normal) != nullptr) return normal;
  if (normal.rfind("no", 0) == 0 && absl::FindCommandLineFlag(normal.substr(2)) != nullptr) {
    return normal;
  }
  return "";
}

}  // namespace

void ParseFlags(int argc, char** argv, const char* usage,
                std::initializer_list<std::string_view> repeatable) {
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> args = {argv[0]};
  std::vector<std::pair<std::string, std::string>> lists;  // repeatable flag, joined values
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      args.insert(args.end(), argv + i, argv + argc);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      args.emplace_back(arg);
      continue;
    }
    std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    const std::string name = KnownFlag(body.substr(0, eq));
    if (name.empty()) {
      args.emplace_back(arg);  // absl reports it
      continue;
    }
    const bool listed = std::find(repeatable.begin(), repeatable.end(), name) != repeatable.end();
    if (!listed) {
      args.push_back("--" + name +
                     (eq == std::string_view::npos ? "" : std::string(body.substr(eq))));
      continue;
    }
    std::string value;
    if (eq != std::string_view::npos) {
      value = std::string(body.substr(eq + 1));
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      args.push_back("--" + name);  // absl reports the missing value
      continue;
    }
    auto it =
        std::find_if(lists.begin(), lists.end(), [&](const auto& l) { return l.first == name; });
    if (it == lists.end()) {
      lists.emplace_back(name, value);
    } else {
      it->second += "," + value;
    }
  }
  for (const auto& [name, values] : lists) args.push_back("--" + name + "=" + values);

  std::vector<char*> pointers;
  for (std::string& a : args) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), pointers.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument: %s (see --help)\n", argv[0], positional[1]);
    std::exit(2);
  }
}

int Connect(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Reader::Line(std::string_view* line) {
  Compact();
  size_t scan_from = pos_;
  size_t eol;
  while ((eol = in_.find("\r\n", scan_from)) == std::string::npos) {
    if (in_.size() - pos_ > kMaxLineLength) return Fail("reply line too long");
    scan_from = std::max(pos_, in_.empty() ? 0 : in_.size() - 1);
    if (!Receive()) return false;
  }
  *line = std::string_view(in_.data() + pos_, eol - pos_);
  pos_ = eol + 2;
  return true;
}

bool Reader::Bytes(size_t n, std::string_view* bytes) {
  Compact();
  while (in_.size() - pos_ < n) {
    if (!Receive()) return false;
  }
  *bytes = std::string_view(in_.data() + pos_, n);
  pos_ += n;
  return true;
}

bool Reader::Data(size_t n, std::string_view* data) {
  std::string_view block;
  if (!Bytes(n + 2, &block)) return false;
  if (block.substr(n) != "\r\n") return Fail("value block not followed by \\r\\n");
  *data = block.substr(0, n);
  return true;
}

bool Reader::ReadAvailable() {
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return Fail("connection closed by the server");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    return Fail(std::string("read: ") + std::strerror(errno));
  }
}

bool Reader::Receive() {
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    const int ready = poll(&p, 1, timeout_ms_);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Fail(std::string("poll: ") + std::strerror(errno));
    if (ready == 0) return Fail("no reply within " + std::to_string(timeout_ms_) + " ms");
    return ReadAvailable();
  }
}

// Drops what has been consumed (the views handed out before are then stale).
void Reader::Compact() {
  if (pos_ == in_.size()) {
    in_.clear();
    pos_ = 0;
  } else if (pos_ > (1 << 16) && pos_ > in_.size() / 2) {
    in_.erase(0, pos_);
    pos_ = 0;
  }
}

bool Reader::Fail(std::string message) {
  error_ = std::move(message);
  return false;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", u);
      out.append(escape);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

}  // namespace client_io
