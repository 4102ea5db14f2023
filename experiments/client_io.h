// experiments/client_io.h — the socket plumbing the standalone load clients
// (loadgen.cc, shift.cc) share. Header-only and free of the project's own
// code: the clients talk to any memcached-protocol server.
#ifndef TINYCACHED_EXPERIMENTS_CLIENT_IO_H_
#define TINYCACHED_EXPERIMENTS_CLIENT_IO_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

namespace client_io {

// A blocking TCP connection to host:port with Nagle off, or -1.
inline int Connect(const std::string& host, int port) {
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

// Writes all of `data` (blocking fd); false on error or a closed socket.
inline bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace client_io

#endif  // TINYCACHED_EXPERIMENTS_CLIENT_IO_H_
