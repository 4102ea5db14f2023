// experiments/client_io.h — what the standalone load clients (fill, loadgen,
// shift, missratio) share: their command-line parsing (Abseil flags), the TCP
// plumbing (connect, write all, a buffered reply reader) and the JSON string
// writer of their reports. Free of the project's own code: the clients talk to
// any memcached-protocol server. Built as the static library tc_client_io.
#ifndef TINYCACHED_EXPERIMENTS_CLIENT_IO_H_
#define TINYCACHED_EXPERIMENTS_CLIENT_IO_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace client_io {

// Parses the command line into the program's ABSL_FLAGs (absl::ParseCommandLine:
// `--name value` and `--name=value`; --help lists the flags after `usage`).
// Flag names may be written with '-' for '_' (`--key-prefix` is the flag
// key_prefix), as the clients always spelt them. A flag named in `repeatable`
// (a std::vector<std::string> flag) may be given more than once: the values
// are joined with commas. A bad flag or value exits (absl: status 1); a
// positional argument exits with status 2.
void ParseFlags(int argc, char** argv, const char* usage,
                std::initializer_list<std::string_view> repeatable = {});

// A blocking TCP connection to host:port (an IPv4 address) with Nagle off, or -1.
int Connect(const std::string& host, int port);

// Writes all of `data` (blocking fd); false on error or a closed socket.
bool WriteAll(int fd, std::string_view data);

// A receive buffer over a connected socket (blocking or not): reply lines and
// value blocks, waiting up to timeout_ms for each read. What Line(), Bytes()
// and Data() return stays valid until the next call to one of them.
class Reader {
 public:
  Reader() = default;
  Reader(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  void Reset(int fd, int timeout_ms) { *this = Reader(fd, timeout_ms); }

  // The next line, without its "\r\n".
  bool Line(std::string_view* line);
  // The next n bytes.
  bool Bytes(size_t n, std::string_view* bytes);
  // A value block: the next n bytes, which must be followed by "\r\n" (consumed).
  bool Data(size_t n, std::string_view* data);
  // Appends what one read returns now, without waiting (a non-blocking socket
  // with nothing to read is no failure). False if the server closed or on error.
  bool ReadAvailable();

  // Why the last call failed.
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string message);
  bool Receive();  // waits up to timeout_ms_, then one read
  void Compact();

  int fd_ = -1;
  int timeout_ms_ = 30000;
  std::string in_;
  size_t pos_ = 0;  // first unread byte of in_
  std::string error_;
};

// splitmix64's step and finaliser: a well-mixed 64-bit hash of x (the
// clients' keys, values and random streams are made from it).
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A plain decimal number (1-19 digits, nothing else) into *out.
bool ParseU64(std::string_view s, uint64_t* out);

// `text` as a JSON string literal, quotes included (\" \\ and \u00XX escapes).
std::string JsonString(std::string_view text);

}  // namespace client_io

#endif  // TINYCACHED_EXPERIMENTS_CLIENT_IO_H_
