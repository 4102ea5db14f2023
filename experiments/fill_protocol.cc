// experiments/fill_protocol.cc — the fill client's connection, `stats`
// polls and process readings (fill_protocol.h).
#include "experiments/fill_protocol.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

namespace tinycached::fill {
namespace {

// WaitForHashTable: poll interval, and how long the hash table may stay below
// memcached's growth threshold without growing before we assume the server
// follows another policy.
constexpr int kHashPollMs = 50;
constexpr int kHashGrowWindowMs = 3000;

// Counts a reply line that answers an earlier command (a noreply set's error).
void CountReplyLine(const std::string& line, StatsReply* reply) {
  const bool is_error = line == "ERROR" || StartsWith(line, "ERROR ") ||
                        StartsWith(line, "CLIENT_ERROR") || StartsWith(line, "SERVER_ERROR");
  if (StartsWith(line, "SERVER_ERROR") && line.find("out of memory") != std::string::npos) {
    ++reply->out_of_memory;
  } else if (is_error) {
    ++reply->errors;
  } else {
    ++reply->other;
  }
  if (is_error && reply->first_error.empty()) reply->first_error = line;
}

}  // namespace

Connection::~Connection() {
  if (fd_ >= 0) close(fd_);
}

bool Connection::Connect(const std::string& host, uint16_t port, int timeout_ms) {
  timeout_ms_ = timeout_ms;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return Fail("cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    last_error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  if (fd_ < 0) return Fail("cannot connect to " + host + ":" + service + ": " + last_error);
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const int flags = fcntl(fd_, F_GETFL, 0);
  if (flags < 0 || fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) return Fail("fcntl failed");
  in_.Reset(fd_, timeout_ms_);
  return true;
}

bool Connection::SendAll(std::string_view data) {
  size_t sent = 0;
  while (sent < data.size()) {
    pollfd p{fd_, POLLIN | POLLOUT, 0};
    const int ready = poll(&p, 1, timeout_ms_);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(std::string("poll: ") + std::strerror(errno));
    }
    if (ready == 0) return Fail("timed out writing to the server");
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !in_.ReadAvailable())
      return Fail(in_.error());
    if ((p.revents & POLLOUT) != 0) {
      const ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return Fail(std::string("send: ") + std::strerror(errno));
      }
      sent += static_cast<size_t>(n);
    }
  }
  return true;
}

bool Connection::ReadLine(std::string* line) {
  std::string_view view;
  if (!in_.Line(&view)) return Fail(in_.error());
  line->assign(view);
  return true;
}

bool Connection::ReadBytes(size_t n, std::string* out) {
  std::string_view view;
  if (!in_.Bytes(n, &view)) return Fail(in_.error());
  out->assign(view);
  return true;
}

bool QueryStats(Connection& conn, StatsReply* reply) {
  *reply = StatsReply();
  if (!conn.SendAll("stats\r\n")) return false;
  std::string line;
  while (true) {
    if (!conn.ReadLine(&line)) return false;
    if (line == "END") return true;
    if (StartsWith(line, "STAT ")) {
      const std::string_view rest = std::string_view(line).substr(5);
      const size_t space = rest.find(' ');
      if (space == std::string_view::npos) continue;
      reply->values.emplace(std::string(rest.substr(0, space)),
                            std::string(rest.substr(space + 1)));
      continue;
    }
    CountReplyLine(line, reply);
  }
}

// Sends `request` (a multi-get) and reads its reply up to END, skipping the
// values; lines before it are counted into *reply as QueryStats does.
bool QueryBarrier(Connection& conn, const std::string& request, StatsReply* reply) {
  if (!conn.SendAll(request)) return false;
  std::string line;
  std::string data;
  while (true) {
    if (!conn.ReadLine(&line)) return false;
    if (line == "END") return true;
    if (StartsWith(line, "VALUE ")) {
      // "VALUE <key> <flags> <bytes>": skip <bytes> and its \r\n.
      const size_t last = line.rfind(' ');
      uint64_t bytes = 0;
      if (!ParseU64(std::string_view(line).substr(last + 1), &bytes) || bytes > kMaxValueLength)
        return false;
      if (!conn.ReadBytes(bytes + 2, &data)) return false;
      continue;
    }
    // Through a proxy an error is the whole reply (a node it could not reach).
    CountReplyLine(line, reply);
    if (reply->errors + reply->out_of_memory > 0) return true;
  }
}

// VmRSS of a process in kB, from /proc/<pid>/status.
std::optional<uint64_t> ReadRssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!StartsWith(line, "VmRSS:")) continue;
    std::string_view rest = std::string_view(line).substr(6);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    const size_t end = rest.find(' ');
    uint64_t kb = 0;
    if (ParseU64(rest.substr(0, end), &kb)) return kb;
  }
  return std::nullopt;
}

void WaitForHashTable(Connection& conn, uint64_t max_ms) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(max_ms);
  auto last_growth = start;
  std::optional<uint64_t> last_power;
  while (Clock::now() < deadline) {
    StatsReply stats;
    if (!QueryStats(conn, &stats)) return;
    const std::optional<uint64_t> power = stats.Get("hash_power_level");
    if (!power.has_value() || *power >= 62) return;
    if (power != last_power) {
      last_power = power;
      last_growth = Clock::now();
    }
    const uint64_t items = stats.Get("curr_items").value_or(0);
    const bool expanding = stats.Get("hash_is_expanding").value_or(0) != 0;
    const bool below_threshold = 2 * items > (uint64_t{3} << *power);
    if (!expanding && !below_threshold) return;
    if (!expanding && Clock::now() - last_growth > std::chrono::milliseconds(kHashGrowWindowMs)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kHashPollMs));
  }
}

// Parses "VALUE <key> <flags> <bytes> [<cas>]".
bool ParseValueLine(std::string_view line, std::string_view* key, uint64_t* flags,
                    uint64_t* bytes) {
  std::vector<std::string_view> tokens;
  while (!line.empty()) {
    const size_t space = line.find(' ');
    tokens.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  if (tokens.size() < 4 || tokens.size() > 5 || tokens[0] != "VALUE") return false;
  *key = tokens[1];
  return ParseU64(tokens[2], flags) && ParseU64(tokens[3], bytes);
}

}  // namespace tinycached::fill
