#include "server/server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "server/flags.h"
#include "server/protocol/session.h"
#include "server/udp.h"

namespace tinycached::server {
namespace {

// Input read ahead of what the session needs, per read; a data block being
// received is read in reads of up to kMaxReadChunk.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxReadChunk = 1024 * 1024;
// A connection's own buffer above this is shrunk once most of it is used.
constexpr size_t kKeepBuffer = 16 * 1024;
// A worker keeps buffers to lend (Worker::Borrow) up to this size.
constexpr size_t kKeepScratch = 64 * 1024;
// Oldest items per class the once-a-second crawler checks for expiry.
constexpr size_t kCrawlBudget = 1000;

// `udp`: a UDP socket's address, "udp:" or "udp6:" (memcached's names).
std::string AddrString(const sockaddr_storage& ss, bool udp = false) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_UNIX) {
    // What memcached 1.6.18 shows for a client of its unix socket (it keeps
    // no peer address for one); the listener and listen_addr show the path.
    return "?:<AF 0>";
  }
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return absl::StrFormat("%s:%s:%d", udp ? "udp" : "tcp", host, port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  port = ntohs(in6->sin6_port);
  return absl::StrFormat("%s6:[%s]:%d", udp ? "udp" : "tcp", host, port);
}

// The sockets of -l: every address of every -l entry (a host name may stand
// for several, e.g. localhost for 127.0.0.1 and ::1), each IPv6 socket
// IPv6-only, as memcached binds them; TCP ones listening on -p, UDP ones
// bound to -U (a port an -l entry names is used for both, as memcached uses
// it); port -1 (or 0 in an -l entry) lets the kernel pick one per socket,
// read back with getsockname(). An address in use is passed over as
// memcached passes it over; none bound at all is an error. UDP sockets get
// as large a send buffer as the system allows (memcached's
// maximize_sndbuf()), for replies of many datagrams, and no SO_REUSEADDR, so
// a port another process holds is an error rather than shared.
absl::StatusOr<std::vector<Listener>> ListenInet(const Settings& settings, bool udp) {
  const int default_port = udp ? settings.udp_port : settings.port;
  const char* const transport = udp ? "UDP" : "TCP";
  absl::StatusOr<std::vector<ListenAddress>> list = SplitListenList(settings.listen, default_port);
  if (!list.ok()) return list.status();
  std::vector<Listener> out;
  int in_use_errno = 0;
  for (const ListenAddress& a : *list) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(a.port == -1 ? 0 : a.port);
    const char* host = a.host.empty() ? nullptr : a.host.c_str();
    if (const int rc = getaddrinfo(host, port.c_str(), &hints, &found); rc != 0) {
      for (Listener& l : out) close(l.fd);
      return absl::InvalidArgumentError(
          absl::StrFormat("bad listen address \"%s\": %s", a.host, gai_strerror(rc)));
    }
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;  // e.g. no IPv6 on this machine
      const int one = 1;
      if (udp) {
        const int most = 256 << 20;  // the kernel caps it at net.core.wmem_max
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &most, sizeof(most));
      } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      }
      if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
          (!udp && listen(fd, settings.backlog) != 0)) {
        const int err = errno;
        close(fd);
        if (err == EADDRINUSE) {
          in_use_errno = err;
          continue;
        }
        for (Listener& l : out) close(l.fd);
        freeaddrinfo(found);
        return absl::UnavailableError(absl::StrFormat("failed to listen on %s port %d: %s",
                                                      transport, a.port, std::strerror(err)));
      }
      sockaddr_storage bound{};
      socklen_t bound_len = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
      const int bound_port = ntohs(bound.ss_family == AF_INET6
                                       ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                       : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
      out.push_back({fd, AddrString(bound, udp),
                     absl::StrFormat("%s %s: %d", transport,
                                     bound.ss_family == AF_INET6 ? "INET6" : "INET", bound_port)});
    }
    freeaddrinfo(found);
  }
  if (out.empty()) {
    return absl::UnavailableError(
        absl::StrFormat("failed to listen on %s port %d: %s", transport, default_port,
                        std::strerror(in_use_errno != 0 ? in_use_errno : EADDRNOTAVAIL)));
  }
  return out;
}

// -s: a unix socket instead of TCP (memcached then opens no TCP or UDP port).
// As memcached: an existing socket file at the path is a leftover and is
// removed first; any other file there makes the bind fail. The file is created
// with the permissions of -a (the umask is set around bind()).
absl::StatusOr<int> ListenUnix(const Settings& settings, std::string* addr) {
  const std::string& path = settings.unix_socket;
  sockaddr_un un{};
  if (path.size() >= sizeof(un.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unix socket path too long (at most %d bytes): %s",
                        static_cast<int>(sizeof(un.sun_path)) - 1, path));
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrFormat("socket(): %s", std::strerror(errno)));
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.data(), path.size());
  const mode_t old_mask = umask(static_cast<mode_t>(~settings.unix_mask & 0777));
  const int rc = bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un));
  const int bind_err = errno;
  umask(old_mask);
  if (rc != 0) {
    close(fd);
    return absl::UnavailableError(
        absl::StrFormat("failed to listen on UNIX socket: %s: %s", path, std::strerror(bind_err)));
  }
  if (listen(fd, settings.backlog) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrFormat("listen(): %s", std::strerror(err)));
  }
  *addr = "unix:" + path;
  return fd;
}

// What `stats conns` shows for a connection with no reply left to send.
const char* StateName(ProtocolSession::Wait wait) {
  switch (wait) {
    case ProtocolSession::Wait::kCommand:
      break;
    case ProtocolSession::Wait::kData:
      return "conn_nread";
    case ProtocolSession::Wait::kSwallow:
      return "conn_swallow";
    case ProtocolSession::Wait::kOutput:
      return "conn_mwrite";
  }
  return "conn_waiting";
}

}  // namespace

// One client connection; owned by its worker, touched only on its thread.
struct Connection {
  Connection(ServerContext* ctx, core::ThreadStats* stats)
      : session(NewSession(ctx, stats, &info)) {}

  Worker* worker = nullptr;
  int fd = -1;
  event ev;  // its socket's one event, for reading and/or writing (SetEvents)
  // Input from in_start on is not yet consumed; output from out_start on is
  // not yet sent. Between events a connection holds only those bytes: one
  // with none holds no buffer (it borrows its worker's while it runs).
  std::string in;
  size_t in_start = 0;
  std::string out;
  size_t out_start = 0;
  bool in_borrowed = false;   // `in` is the worker's, lent for this event
  bool out_borrowed = false;  // `out` likewise
  // Values spliced into `out` (sent in place, pinned), and how much of the
  // front one is sent: it is being sent when out_start == its offset.
  std::vector<Splice> splices;
  size_t splice_sent = 0;
  size_t spliced_unsent = 0;
  ConnInfo info;
  std::unique_ptr<ProtocolSession> session;  // its protocol: session.h
  bool reading = true;                       // ev waits for input
  bool writing = false;                      // ev waits for room to write
  bool eof = false;                          // the peer shut down its side
  bool close_after_write = false;
};

class Worker {
 public:
  Worker(ServerContext* ctx, core::ThreadStats* stats) : ctx_(ctx), stats_(stats) {
    base_ = event_base_new();
    if (pipe2(notify_, O_NONBLOCK | O_CLOEXEC) != 0) notify_[0] = notify_[1] = -1;
    notify_ev_ = event_new(base_, notify_[0], EV_READ | EV_PERSIST, &Worker::OnNotify, this);
    event_add(notify_ev_, nullptr);
    if (ctx_->settings.idle_timeout > 0) {
      idle_ev_ = event_new(base_, -1, EV_PERSIST, &Worker::OnIdleCheck, this);
      const timeval second{1, 0};
      event_add(idle_ev_, &second);
    }
  }

  ~Worker() {
    for (Connection* c : conns_) Destroy(c, /*unregister=*/true);
    udp_ports_.clear();
    if (idle_ev_ != nullptr) event_free(idle_ev_);
    event_free(notify_ev_);
    close(notify_[0]);
    close(notify_[1]);
    event_base_free(base_);
  }

  void Start() {
    thread_ = std::thread([this] { event_base_dispatch(base_); });
  }

  void StopAndJoin() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
    if (thread_.joinable()) thread_.join();
  }

  // Serves a UDP socket (its own descriptor of it, which it closes) on this
  // worker's loop; only before Start().
  void AddUdp(int fd, const std::string& addr) {
    udp_ports_.push_back(std::make_unique<UdpPort>(ctx_, stats_, base_, fd, addr));
  }

  // Hands an accepted socket to this worker (any thread).
  // `listen_addr` is the listener's, which outlives every connection.
  void Adopt(int fd, std::string peer, const std::string* listen_addr) {
    {
      absl::MutexLock lock(&mu_);
      pending_.push_back({fd, std::move(peer), listen_addr});
    }
    Wake();
  }

 private:
  struct Pending {
    int fd;
    std::string peer;
    const std::string* listen_addr;
  };

  void Wake() {
    const char b = 1;
    [[maybe_unused]] ssize_t n = write(notify_[1], &b, 1);
  }

  static void OnNotify(int fd, short, void* arg) {
    auto* w = static_cast<Worker*>(arg);
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    std::deque<Pending> pending;
    bool stopping;
    {
      absl::MutexLock lock(&w->mu_);
      pending.swap(w->pending_);
      stopping = w->stopping_;
    }
    for (Pending& p : pending) w->Open(p.fd, std::move(p.peer), *p.listen_addr);
    if (stopping) event_base_loopbreak(w->base_);
  }

  // -o idle_timeout (memcached's conn_timeout thread, run here on each
  // worker's own loop once a second): a connection waiting for a command,
  // with no reply left to send, whose last command is more than idle_timeout
  // seconds old is closed.
  static void OnIdleCheck(int, short, void* arg) { static_cast<Worker*>(arg)->KickIdle(); }

  void KickIdle() {
    const core::RelTime now = ctx_->clock->Now();
    const core::RelTime limit = static_cast<core::RelTime>(ctx_->settings.idle_timeout);
    for (size_t i = 0; i < conns_.size();) {
      Connection* c = conns_[i];
      const core::RelTime last = c->info.last_cmd_time.load(std::memory_order_relaxed);
      if (c->session->Waiting() == ProtocolSession::Wait::kCommand && Unsent(c) == 0 &&
          now > last && now - last > limit) {
        ctx_->idle_kicks.fetch_add(1, std::memory_order_relaxed);
        Close(c);  // moves the last connection into slot i
        continue;
      }
      ++i;
    }
  }

  void Open(int fd, std::string peer, const std::string& listen_addr) {
    auto* c = new Connection(ctx_, stats_);
    c->worker = this;
    c->fd = fd;
    c->info.fd = fd;
    c->info.addr = std::move(peer);
    c->info.listen_addr = &listen_addr;
    c->info.last_cmd_time.store(ctx_->clock->Now());
    event_assign(&c->ev, base_, fd, EV_READ | EV_PERSIST, &Worker::OnEvent, c);
    event_add(&c->ev, nullptr);
    conns_.push_back(c);
    c->info.state.store("conn_waiting");
    {
      absl::MutexLock lock(&ctx_->conns_mu);
      ctx_->conns[fd] = &c->info;
    }
    if (ctx_->verbosity.load(std::memory_order_relaxed) > 1) {
      std::fprintf(stderr, "<%d new auto-negotiating client connection\n", fd);
    }
  }

  // Drops every reply not yet sent.
  void DropOutput(Connection* c) {
    for (const Splice& s : c->splices) ctx_->store->Unpin(s.value);
    c->splices.clear();
    c->splice_sent = 0;
    c->spliced_unsent = 0;
    c->out.clear();
    c->out_start = 0;
  }

  void Destroy(Connection* c, bool unregister) {
    DropOutput(c);
    if (ctx_->verbosity.load(std::memory_order_relaxed) > 1) {
      std::fprintf(stderr, "<%d connection closed.\n", c->fd);
    }
    if (unregister) {
      absl::MutexLock lock(&ctx_->conns_mu);
      ctx_->conns.erase(c->fd);
    }
    event_del(&c->ev);
    close(c->fd);
    ctx_->curr_conns.fetch_sub(1, std::memory_order_relaxed);
    delete c;
  }

  void Close(Connection* c) {
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (conns_[i] == c) {
        conns_[i] = conns_.back();
        conns_.pop_back();
        break;
      }
    }
    Destroy(c, /*unregister=*/true);
  }

  static void OnEvent(int, short what, void* arg) {
    auto* c = static_cast<Connection*>(arg);
    if ((what & EV_READ) != 0) {
      c->worker->Read(c);  // which drives it too
    } else {
      c->worker->Drive(c);
    }
  }

  // Reads what the socket has (bounded: see kReadChunk), then runs the
  // commands it completes.
  void Read(Connection* c) {
    thread_local char buf[kReadChunk];
    Borrow(c);
    for (int i = 0; i < 4; ++i) {
      const size_t have = c->in.size() - c->in_start;
      const size_t need = c->session->NeedBytes();
      ssize_t n;
      size_t asked;
      if (need > have) {
        // A data block: read straight into a buffer of exactly its size.
        asked = std::min(need - have, kMaxReadChunk);
        c->in.reserve(c->in.size() + (need - have));
        const size_t old_size = c->in.size();
        c->in.resize(old_size + asked);
        n = read(c->fd, c->in.data() + old_size, asked);
        c->in.resize(old_size + (n > 0 ? static_cast<size_t>(n) : 0));
      } else {
        // Commands: while a whole command line waits, read ahead no more than
        // kReadChunk bytes the session has not taken, and nothing while
        // replies wait to be sent, so a client that does not read holds at
        // most that much input here. (A line still incomplete, a long
        // multi-get, is always read on.)
        if ((have >= kReadChunk || Unsent(c) > 0) &&
            std::memchr(c->in.data() + c->in_start, '\n', have) != nullptr) {
          break;
        }
        asked = have >= kReadChunk ? sizeof(buf) : kReadChunk - have;
        n = read(c->fd, buf, asked);
        if (n > 0) c->in.append(buf, static_cast<size_t>(n));
      }
      if (n > 0) {
        stats_->bytes_read.Add(static_cast<uint64_t>(n));
        if (static_cast<size_t>(n) < asked) break;
        continue;
      }
      if (n == 0) {
        c->eof = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        break;
      } else {
        c->eof = true;
        c->close_after_write = true;
        DropOutput(c);
      }
      break;
    }
    Drive(c);
  }

  // Runs buffered commands, writes replies, and arms events to match.
  void Drive(Connection* c) {
    Borrow(c);
    // -R: this event runs at most reqs_per_event commands of this connection.
    c->session->SetCommandBudget(static_cast<size_t>(ctx_->settings.reqs_per_event));
    for (;;) {
      bool ran = false;
      bool progressed = false;
      // As memcached: no command runs while replies wait for a socket that
      // takes no more, so a client that does not read leaves at most one
      // batch of them here (what Consume() wrote past what the socket took).
      if (Unsent(c) > 0 && !Flush(c)) return Close(c);
      if (!c->close_after_write && Unsent(c) == 0) {
        bool close = false;
        c->info.state.store("conn_parse_cmd", std::memory_order_relaxed);
        const std::string_view input(c->in.data() + c->in_start, c->in.size() - c->in_start);
        // The limit counts unsent bytes only; `out` still holds the sent prefix.
        const size_t out_before = c->out.size();
        const size_t splices_before = c->splices.size();
        const size_t consumed =
            c->session->Consume(input, &c->out, &close,
                                c->out_start + kOutputHighWater - c->spliced_unsent, &c->splices);
        for (size_t i = splices_before; i < c->splices.size(); ++i) {
          c->spliced_unsent += c->splices[i].value.size;
        }
        c->in_start += consumed;
        progressed =
            consumed > 0 || c->out.size() != out_before || c->splices.size() != splices_before;
        if (close) c->close_after_write = true;
        Compact(c);
        ran = true;
      }
      if (!Flush(c)) return Close(c);
      // Consume() stops at the output high-water mark: while the socket takes
      // all the output, run the commands still waiting behind it.
      const bool more_work =
          c->in_start < c->in.size() || c->session->Waiting() == ProtocolSession::Wait::kOutput;
      if (!c->close_after_write && more_work && Unsent(c) == 0 && (!ran || progressed) &&
          !c->session->yielded()) {
        continue;
      }
      break;
    }
    GiveBack(c);
    const size_t pending = Unsent(c);
    // Yielded with commands left: they run on the next pass of the event loop,
    // after the other ready connections (memcached's trick: wait for
    // writability, which a socket has at once).
    const bool yielded = c->session->yielded() && !c->close_after_write;
    if (yielded) ctx_->conn_yields.fetch_add(1, std::memory_order_relaxed);
    if (pending == 0 && !yielded && (c->close_after_write || c->eof)) return Close(c);
    // Hysteresis: a paused connection resumes only once the client has read
    // its replies down to the low-water mark.
    const size_t resume_below = c->reading ? kOutputHighWater : kOutputLowWater;
    // A yielded connection reads no more until its buffered commands ran, so
    // its input stays bounded however fast it pipelines.
    SetEvents(c, !c->eof && !c->close_after_write && !yielded && pending<resume_below, pending> 0 ||
                     yielded);
    c->info.state.store(pending > 0 ? "conn_mwrite" : StateName(c->session->Waiting()),
                        std::memory_order_relaxed);
  }

  // A connection with no input or no output pending holds no buffer for it:
  // for the event it is handling it borrows its worker's. (1000 idle or
  // never-reading clients whose replies all went to the kernel hold nothing.)
  void Borrow(Connection* c) {
    if (!c->in_borrowed && c->in.empty()) {
      c->in.swap(scratch_in_);
      c->in_borrowed = true;
    }
    if (!c->out_borrowed && c->out.empty() && c->splices.empty()) {
      c->out.swap(scratch_out_);
      c->out_borrowed = true;
    }
  }

  // Ends the event's borrows: each lent buffer goes back to the worker, the
  // connection keeping a copy of just the bytes still pending in it.
  void GiveBack(Connection* c) {
    Settle(&c->in, &c->in_start, &c->in_borrowed, &scratch_in_);
    const size_t dropped = Settle(&c->out, &c->out_start, &c->out_borrowed, &scratch_out_);
    for (Splice& s : c->splices) s.offset -= dropped;
  }

  // For one of a connection's buffers, `*start` bytes of which are used (sent
  // or consumed): if it is all used, the worker keeps the larger of it and
  // `scratch` (up to kKeepScratch) and frees the other; if it was lent and
  // bytes are pending, the connection keeps a copy of just those (or, when
  // they are many and fill most of it, a large value being received, the
  // buffer itself).
  // Returns how many used bytes were dropped from its front.
  static size_t Settle(std::string* buf, size_t* start, bool* borrowed, std::string* scratch) {
    const bool lent = *borrowed;
    *borrowed = false;
    const size_t left = buf->size() - *start;
    if (left == 0) {
      // Every byte is used, but a spliced value may still be on its way,
      // placed by its offset: the offsets move with the dropped front.
      const size_t dropped = *start;
      *start = 0;
      buf->clear();
      if (buf->capacity() > scratch->capacity()) buf->swap(*scratch);
      std::string().swap(*buf);
      if (scratch->capacity() > kKeepScratch) std::string().swap(*scratch);
      return dropped;
    }
    if (!lent) return 0;
    const size_t dropped = *start;
    *start = 0;
    if (left <= kKeepBuffer || 2 * left < buf->capacity()) {
      std::string rest(buf->data() + dropped, left);
      buf->swap(*scratch);
      scratch->clear();
      if (scratch->capacity() > kKeepScratch) std::string().swap(*scratch);
      buf->swap(rest);
    } else {
      buf->erase(0, dropped);
    }
    return dropped;
  }

  static size_t Unsent(const Connection* c) {
    return c->out.size() - c->out_start + c->spliced_unsent;
  }

  // Writes as much output as the socket takes: the text, with each spliced
  // value's bytes sent from its item. False on a broken socket.
  bool Flush(Connection* c) {
    constexpr int kMaxIov = 64;
    while (Unsent(c) > 0) {
      iovec iov[kMaxIov];
      int n = 0;
      size_t pos = c->out_start;
      for (size_t k = 0; k < c->splices.size() && n < kMaxIov - 2; ++k) {
        const Splice& s = c->splices[k];
        if (s.offset > pos) {
          iov[n++] = {c->out.data() + pos, s.offset - pos};
          pos = s.offset;
        }
        const size_t skip = k == 0 && c->out_start == s.offset ? c->splice_sent : 0;
        iov[n++] = {const_cast<char*>(s.value.data) + skip, s.value.size - skip};
      }
      if (pos < c->out.size() && n < kMaxIov) iov[n++] = {c->out.data() + pos, c->out.size() - pos};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(n);
      const ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        return false;
      }
      if (w == 0) break;
      stats_->bytes_written.Add(static_cast<uint64_t>(w));
      Advance(c, static_cast<size_t>(w));
    }
    if (Unsent(c) == 0) {
      c->out_start = 0;
      c->out.clear();  // GiveBack() frees or lends it once the event is done
    } else if (c->out_start >= kOutputLowWater && 2 * c->out_start >= c->out.size()) {
      // A client that reads slowly: keep only the unsent text (at most about
      // kOutputHighWater), not everything the socket took since it last
      // emptied, and give back what the buffer grew to meanwhile.
      c->out.erase(0, c->out_start);
      for (Splice& s : c->splices) s.offset -= c->out_start;
      c->out_start = 0;
      if (c->out.capacity() > kKeepBuffer && 2 * c->out.size() < kKeepBuffer) {
        c->out.shrink_to_fit();
      }
    }
    return true;
  }

  // Marks `n` more bytes as sent; unpins values sent in full.
  void Advance(Connection* c, size_t n) {
    while (n > 0) {
      if (!c->splices.empty() && c->out_start == c->splices.front().offset) {
        const Splice& s = c->splices.front();
        const size_t take = std::min(n, s.value.size - c->splice_sent);
        c->splice_sent += take;
        c->spliced_unsent -= take;
        n -= take;
        if (c->splice_sent == s.value.size) {
          ctx_->store->Unpin(s.value);
          c->splices.erase(c->splices.begin());
          c->splice_sent = 0;
        }
        continue;
      }
      const size_t text_end = c->splices.empty() ? c->out.size() : c->splices.front().offset;
      const size_t take = std::min(n, text_end - c->out_start);
      c->out_start += take;
      n -= take;
    }
  }

  static void Compact(Connection* c) {
    if (c->in_start == c->in.size()) {
      c->in_start = 0;
      c->in.clear();  // GiveBack() frees or lends it once the event is done
    } else if (c->in_start > 0 && (c->in_start > kKeepBuffer || c->in.capacity() > kKeepBuffer)) {
      // Keep only the input not yet taken, in a buffer no larger than it needs.
      c->in.erase(0, c->in_start);
      c->in_start = 0;
      if (c->in.capacity() > kKeepBuffer && 2 * c->in.size() < c->in.capacity()) {
        c->in.shrink_to_fit();
      }
    }
  }

  void SetEvents(Connection* c, bool reading, bool writing) {
    if (reading == c->reading && writing == c->writing) return;
    c->reading = reading;
    c->writing = writing;
    event_del(&c->ev);
    const short what = static_cast<short>((reading ? EV_READ : 0) | (writing ? EV_WRITE : 0));
    if (what == 0) return;
    event_assign(&c->ev, base_, c->fd, static_cast<short>(what | EV_PERSIST), &Worker::OnEvent, c);
    event_add(&c->ev, nullptr);
  }

  ServerContext* ctx_;
  core::ThreadStats* stats_;
  event_base* base_ = nullptr;
  int notify_[2] = {-1, -1};
  event* notify_ev_ = nullptr;
  event* idle_ev_ = nullptr;  // -o idle_timeout's once-a-second check
  std::thread thread_;
  std::vector<Connection*> conns_;                   // this worker's thread only
  std::vector<std::unique_ptr<UdpPort>> udp_ports_;  // -U: its descriptor of each UDP socket
  // Buffers lent to the connection whose event is being handled (Borrow).
  std::string scratch_in_;
  std::string scratch_out_;

  absl::Mutex mu_;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

Server::Server(ServerContext* ctx) : ctx_(ctx) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerContext* ctx) {
  std::unique_ptr<Server> s(new Server(ctx));
  const Settings& settings = ctx->settings;

  std::vector<Listener> udp;
  if (settings.unix_socket.empty()) {
    // -p 0: no TCP, as memcached (its -l ports too); then maybe UDP alone,
    // or nothing at all.
    if (settings.port != 0) {
      absl::StatusOr<std::vector<Listener>> tcp = ListenInet(settings, /*udp=*/false);
      if (!tcp.ok()) return tcp.status();
      ctx->listeners = *std::move(tcp);
    }
    // -U: off at 0 (memcached's default since 1.5.6); with -s there is none.
    if (settings.udp_port != 0) {
      absl::StatusOr<std::vector<Listener>> bound = ListenInet(settings, /*udp=*/true);
      if (!bound.ok()) return bound.status();
      udp = *std::move(bound);
    }
    for (const std::vector<Listener>* sockets : {&ctx->listeners, &udp}) {
      for (const Listener& l : *sockets) ctx->port_lines.push_back(l.port_line);
    }
  } else {
    Listener unix_listener;
    absl::StatusOr<int> fd = ListenUnix(settings, &unix_listener.addr);
    if (!fd.ok()) return fd.status();
    unix_listener.fd = *fd;
    ctx->listeners.push_back(std::move(unix_listener));
  }
  // memcached counts each listening connection among total_connections.
  ctx->total_conns.fetch_add(ctx->listeners.size() - 1, std::memory_order_relaxed);

  {
    // The table `stats conns` reads, sized for -c up front as memcached sizes
    // its connection array: connections then never make it grow.
    absl::MutexLock lock(&ctx->conns_mu);
    ctx->conns.reserve(static_cast<size_t>(std::max(settings.maxconns, 0)));
  }
  s->base_ = event_base_new();
  for (const Listener& l : ctx->listeners) {
    if (ctx->verbosity.load(std::memory_order_relaxed) > 1) {
      static constexpr const char* kNames[] = {"auto-negotiate", "ascii", "binary"};
      std::fprintf(stderr, "<%d server listening (%s)\n", l.fd,
                   kNames[static_cast<int>(settings.protocol)]);
    }
    s->sources_.push_back(std::make_unique<AcceptSource>(AcceptSource{s.get(), &l}));
    event* ev = event_new(s->base_, l.fd, EV_READ | EV_PERSIST, &Server::OnAccept,
                          s->sources_.back().get());
    event_add(ev, nullptr);
    s->accept_evs_.push_back(ev);
  }
  s->tick_ev_ = event_new(s->base_, -1, EV_PERSIST, &Server::OnTick, s.get());
  const timeval second{1, 0};
  event_add(s->tick_ev_, &second);
  // Every orderly stop; main() then writes the warm restart file (-e).
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
    event* ev = evsignal_new(s->base_, sig, &Server::OnSignal, s.get());
    event_add(ev, nullptr);
    s->signal_evs_.push_back(ev);
  }
  for (int i = 0; i < settings.threads; ++i) {
    s->workers_.push_back(std::make_unique<Worker>(ctx, ctx->thread_stats[i].get()));
  }
  // Every worker serves every UDP socket through a descriptor of its own, as
  // memcached's threads do: the first worker the socket's, the others dup()s.
  // memcached counts each as a connection (curr_connections and the rest).
  for (size_t u = 0; u < udp.size(); ++u) {
    ctx->udp_addrs.push_back(udp[u].addr);
    for (size_t i = 0; i < s->workers_.size(); ++i) {
      const int fd = i == 0 ? udp[u].fd : fcntl(udp[u].fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        const int err = errno;
        for (size_t rest = u + 1; rest < udp.size(); ++rest) close(udp[rest].fd);
        return absl::InternalError(absl::StrFormat("dup(): %s", std::strerror(err)));
      }
      s->workers_[i]->AddUdp(fd, udp[u].addr);
    }
    const uint64_t n = s->workers_.size();
    ctx->curr_conns.fetch_add(n, std::memory_order_relaxed);
    ctx->total_conns.fetch_add(n, std::memory_order_relaxed);
    ctx->conn_structures.fetch_add(n, std::memory_order_relaxed);
  }
  return s;
}

Server::~Server() {
  for (auto& w : workers_) w->StopAndJoin();
  workers_.clear();
  for (event* ev : signal_evs_) event_free(ev);
  if (tick_ev_ != nullptr) event_free(tick_ev_);
  for (event* ev : accept_evs_) event_free(ev);
  if (base_ != nullptr) event_base_free(base_);
  for (const Listener& l : ctx_->listeners) close(l.fd);
}

void Server::Run() {
  signal(SIGPIPE, SIG_IGN);
  for (auto& w : workers_) w->Start();
  event_base_dispatch(base_);
  for (auto& w : workers_) w->StopAndJoin();
}

void Server::Stop() { event_base_loopbreak(base_); }

void Server::OnAccept(int, short, void* arg) {
  const auto* source = static_cast<const AcceptSource*>(arg);
  source->server->Accept(*source->listener);
}

void Server::OnTick(int, short, void* arg) {
  auto* s = static_cast<Server*>(arg);
  s->ctx_->clock->Tick();
  s->ctx_->store->ReclaimDead(s->ctx_->settings.lru_maintainer ? kCrawlBudget : 0);
}

void Server::OnSignal(int, short, void* arg) { static_cast<Server*>(arg)->Stop(); }

void Server::Accept(const Listener& listener) {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    const int fd = accept4(listener.fd, reinterpret_cast<sockaddr*>(&peer), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && ctx_->verbosity.load() > 0) {
        std::perror("accept()");
      }
      return;  // EAGAIN, or out of descriptors: the next readiness event retries
    }
    ctx_->total_conns.fetch_add(1, std::memory_order_relaxed);
    // memcached's -c rule: its listener and reserved descriptors count too.
    const uint64_t in_use =
        ctx_->curr_conns.load(std::memory_order_relaxed) + 1 + ReservedFds(ctx_->settings);
    if (in_use >= static_cast<uint64_t>(ctx_->settings.maxconns) - 1) {
      static constexpr char kTooMany[] = "ERROR Too many open connections\r\n";
      [[maybe_unused]] ssize_t n = send(fd, kTooMany, sizeof(kTooMany) - 1, MSG_NOSIGNAL);
      close(fd);
      ctx_->rejected_conns.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (peer.ss_family != AF_UNIX) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    ctx_->curr_conns.fetch_add(1, std::memory_order_relaxed);
    ctx_->conn_structures.fetch_add(1, std::memory_order_relaxed);
    workers_[next_worker_]->Adopt(fd, AddrString(peer), &listener.addr);
    next_worker_ = (next_worker_ + 1) % workers_.size();
  }
}

}  // namespace tinycached::server
