// server/udp.cc — memcached's UDP framing over a protocol session, and one
// worker's UDP socket (see udp.h).
#include "server/udp.h"

#include <event2/event.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace tinycached::server {
namespace {

uint16_t Load16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

void Store16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v & 0xff);
}

// Most datagrams a worker reads per readiness event before it lets its other
// connections run.
constexpr int kDatagramsPerEvent = 16;

}  // namespace

std::optional<UdpHeader> ParseUdpHeader(std::string_view datagram) {
  if (datagram.size() <= kUdpHeaderSize) return std::nullopt;
  UdpHeader h;
  h.request_id = Load16(datagram.data());
  h.sequence = Load16(datagram.data() + 2);
  h.total = Load16(datagram.data() + 4);
  h.reserved = Load16(datagram.data() + 6);
  return h;
}

void EncodeUdpHeader(const UdpHeader& h, char out[kUdpHeaderSize]) {
  Store16(out, h.request_id);
  Store16(out + 2, h.sequence);
  Store16(out + 4, h.total);
  Store16(out + 6, h.reserved);
}

uint16_t UdpDatagramCount(size_t bytes) {
  const size_t n = bytes / kUdpMaxData + (bytes % kUdpMaxData != 0 ? 1 : 0);
  return static_cast<uint16_t>(std::min<size_t>(n, UINT16_MAX));
}

UdpExchange::UdpExchange(ServerContext* ctx, core::ThreadStats* stats, uint16_t request_id,
                         std::string_view payload)
    : ctx_(ctx),
      stats_(stats),
      request_id_(request_id),
      input_(payload),
      session_(NewSession(ctx, stats)) {
  session_->SetReplyMarks(&marks_);
  // memcached runs one command more in a datagram's first batch than in the
  // later ones (its count starts before the first command, not at it).
  session_->SetCommandBudget(static_cast<size_t>(ctx_->settings.reqs_per_event) + 1);
}

UdpExchange::~UdpExchange() {
  for (const Splice& s : splices_) ctx_->store->Unpin(s.value);
}

UdpExchange::Result UdpExchange::Run(SendFn send) {
  for (;;) {
    for (size_t n = CompleteResponses(); n > 0; --n) {
      switch (SendResponse(send)) {
        case Sent::kOk:
          break;
        case Sent::kWouldBlock:
          return Result::kBlocked;
        case Sent::kFailed:
          return Result::kDone;  // what is left is dropped, as memcached drops it
      }
      ++next_;
      resp_sent_ = 0;
      resp_seq_ = 0;
      resp_total_ = 0;
    }
    Compact();
    if (batch_produced_) {
      if (finished_) return Result::kDone;
      batch_produced_ = false;
      at_head_ = true;
      session_->SetCommandBudget(static_cast<size_t>(ctx_->settings.reqs_per_event));
      ctx_->conn_yields.fetch_add(1, std::memory_order_relaxed);
      return Result::kYielded;
    }
    Produce();
  }
}

void UdpExchange::Produce() {
  bool close = false;
  const size_t limit = out_.size() + kUdpOutputLimit;
  const size_t splices_before = splices_.size();
  pos_ += session_->Consume(input_.substr(pos_), &out_, &close, limit, &splices_);
  size_t spliced = 0;
  for (size_t i = splices_before; i < splices_.size(); ++i) spliced += splices_[i].value.size;
  if (!out_.empty() && (marks_.empty() || marks_.front().offset > 0)) {
    marks_.insert(marks_.begin(), ReplyMark{0, false});  // never expected: output unmarked
  }
  if (close) {
    finished_ = true;  // quit (or input that can never make a command): the rest is dropped
  } else if (session_->yielded()) {
    batch_produced_ = true;  // -R: this batch is all produced; commands are left
    return;
  } else if (out_.size() + spliced > limit) {
    return;  // stopped at the output limit: more of this batch to come
  } else {
    finished_ = true;  // every command that is whole has run; a partial one is dropped
  }
  batch_produced_ = true;
}

size_t UdpExchange::CompleteResponses() const {
  // Until the batch is all produced, the last response may still grow (a
  // multi-get's END joins its last key).
  size_t complete = marks_.size();
  if (!batch_produced_ && complete > 0) --complete;
  return complete > next_ ? complete - next_ : 0;
}

UdpExchange::Sent UdpExchange::SendResponse(SendFn send) {
  const ReplyMark& mark = marks_[next_];
  const size_t text_end = next_ + 1 < marks_.size() ? marks_[next_ + 1].offset : out_.size();
  // Its values: a value spliced where the next response begins is the end of
  // this one (a binary GET's value closes its response).
  size_t splice_end = next_splice_;
  size_t size = text_end - mark.offset;
  while (splice_end < splices_.size() &&
         (next_ + 1 == marks_.size() || splices_[splice_end].offset <= text_end)) {
    size += splices_[splice_end].value.size;
    ++splice_end;
  }
  if (size == 0) {
    // memcached sends an empty response only when it leads and is not a
    // skipped one: a bare header, counting 0 datagrams.
    if (at_head_ && mark.sent_when_empty) {
      char header[kUdpHeaderSize];
      EncodeUdpHeader({request_id_, 0, 0, 0}, header);
      const iovec iov{header, sizeof(header)};
      const Sent sent = send(&iov, 1);
      if (sent != Sent::kOk) return sent;
      stats_->bytes_written.Add(kUdpHeaderSize);
      at_head_ = false;
    }
    next_splice_ = splice_end;
    if (mark.flush) at_head_ = true;
    return Sent::kOk;
  }
  if (resp_sent_ == 0) resp_total_ = UdpDatagramCount(size);
  while (resp_sent_ < size) {
    const size_t chunk = std::min(kUdpMaxData, size - resp_sent_);
    char header[kUdpHeaderSize];
    EncodeUdpHeader({request_id_, resp_seq_, resp_total_, 0}, header);
    // The response's bytes [resp_sent_, resp_sent_ + chunk): its text, with
    // each value spliced in at its offset. 1392 bytes span at most two values
    // (each at least Engine::kPinMinValue) and the text around them.
    constexpr size_t kMaxIov = 8;
    iovec iov[kMaxIov];
    size_t n = 0;
    iov[n++] = {header, sizeof(header)};
    size_t skip = resp_sent_;
    size_t want = chunk;
    auto take = [&](const char* data, size_t len) {
      if (want == 0 || n == kMaxIov) return;
      if (skip >= len) {
        skip -= len;
        return;
      }
      const size_t m = std::min(len - skip, want);
      iov[n++] = {const_cast<char*>(data + skip), m};
      skip = 0;
      want -= m;
    };
    size_t text = mark.offset;
    for (size_t k = next_splice_; k < splice_end; ++k) {
      const Splice& s = splices_[k];
      const size_t at = std::max(s.offset, text);
      take(out_.data() + text, at - text);
      take(s.value.data, s.value.size);
      text = at;
    }
    take(out_.data() + text, text_end - text);
    const Sent sent = send(iov, n);
    if (sent != Sent::kOk) return sent;
    stats_->bytes_written.Add(kUdpHeaderSize + chunk);
    resp_sent_ += chunk;
    ++resp_seq_;  // 16 bits, as memcached's: past 65535 it wraps
    at_head_ = false;
  }
  next_splice_ = splice_end;
  if (mark.flush) at_head_ = true;  // what follows leads what memcached writes next
  return Sent::kOk;
}

void UdpExchange::Compact() {
  if (next_ == 0) return;
  const size_t cut = next_ < marks_.size() ? marks_[next_].offset : out_.size();
  out_.erase(0, cut);
  marks_.erase(marks_.begin(), marks_.begin() + static_cast<std::ptrdiff_t>(next_));
  for (ReplyMark& m : marks_) m.offset -= cut;
  for (size_t k = 0; k < next_splice_; ++k) ctx_->store->Unpin(splices_[k].value);
  splices_.erase(splices_.begin(), splices_.begin() + static_cast<std::ptrdiff_t>(next_splice_));
  for (Splice& s : splices_) s.offset -= std::min(s.offset, cut);
  next_ = 0;
  next_splice_ = 0;
}

UdpPort::UdpPort(ServerContext* ctx, core::ThreadStats* stats, event_base* base, int fd,
                 std::string addr)
    : ctx_(ctx), stats_(stats), fd_(fd), buf_(new char[kUdpReadBuffer]) {
  read_ev_ = event_new(base, fd, EV_READ | EV_PERSIST, &UdpPort::OnReadable, this);
  write_ev_ = event_new(base, fd, EV_WRITE | EV_PERSIST, &UdpPort::OnWritable, this);
  event_add(read_ev_, nullptr);
  info_.fd = fd;
  info_.udp = true;
  info_.addr = std::move(addr);
  info_.state.store("conn_read");
  info_.last_cmd_time.store(ctx_->clock->Now());
  {
    absl::MutexLock lock(&ctx_->conns_mu);
    ctx_->conns[fd] = &info_;
  }
  if (ctx_->verbosity.load(std::memory_order_relaxed) > 1) {
    std::fprintf(stderr, "<%d server listening (udp)\n", fd);
  }
}

UdpPort::~UdpPort() {
  {
    absl::MutexLock lock(&ctx_->conns_mu);
    ctx_->conns.erase(fd_);
  }
  exchange_.reset();
  event_free(read_ev_);
  event_free(write_ev_);
  close(fd_);
}

void UdpPort::OnReadable(int, short, void* arg) { static_cast<UdpPort*>(arg)->Read(); }

void UdpPort::OnWritable(int, short, void* arg) {
  auto* p = static_cast<UdpPort*>(arg);
  if (p->Serve()) {
    event_del(p->write_ev_);
    event_add(p->read_ev_, nullptr);
  }
}

void UdpPort::Read() {
  for (int i = 0; i < kDatagramsPerEvent; ++i) {
    peer_len_ = sizeof(peer_);
    const ssize_t n = recvfrom(fd_, buf_.get(), kUdpReadBuffer, 0,
                               reinterpret_cast<sockaddr*>(&peer_), &peer_len_);
    if (n < 0) return;  // EAGAIN: another worker took it, or none is left
    const std::string_view datagram(buf_.get(), static_cast<size_t>(n));
    const std::optional<UdpHeader> h = ParseUdpHeader(datagram);
    if (!h.has_value()) continue;
    stats_->bytes_read.Add(static_cast<uint64_t>(n));
    if (h->total != 1) continue;  // a request of several datagrams: not taken
    info_.last_cmd_time.store(ctx_->clock->Now(), std::memory_order_relaxed);
    exchange_.emplace(ctx_, stats_, h->request_id, datagram.substr(kUdpHeaderSize));
    if (!Serve()) {
      // Blocked or yielded: no reading (the buffer holds the request) until
      // the reply is out.
      event_del(read_ev_);
      event_add(write_ev_, nullptr);
      return;
    }
  }
}

bool UdpPort::Serve() {
  const UdpExchange::Result r =
      exchange_->Run([this](const iovec* iov, size_t n) { return Send(iov, n); });
  if (r != UdpExchange::Result::kDone) return false;
  exchange_.reset();
  return true;
}

UdpExchange::Sent UdpPort::Send(const iovec* iov, size_t iovcnt) {
  msghdr msg{};
  msg.msg_name = &peer_;
  msg.msg_namelen = peer_len_;
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = iovcnt;
  for (;;) {
    if (sendmsg(fd_, &msg, MSG_NOSIGNAL) >= 0) return UdpExchange::Sent::kOk;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return UdpExchange::Sent::kWouldBlock;
    return UdpExchange::Sent::kFailed;  // memcached drops the rest of the reply too
  }
}

}  // namespace tinycached::server
