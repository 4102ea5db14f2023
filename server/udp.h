// server/udp.h — memcached's UDP transport (-U): each request is one datagram
// behind an 8-byte frame header, and each reply goes out in datagrams of at
// most 1400 bytes behind the same header.
//
// Room: server/, between a UDP socket and a protocol session (protocol/session.h).
// server.cc binds the sockets (one per -l address, as it binds TCP) and gives
// every worker its own descriptor of each, as memcached does (the first
// worker the socket's own, the others dup()s of it): a datagram wakes every
// worker, one of them reads it, and that worker answers it whole on its own
// event loop. A UdpPort is one worker's descriptor of one socket.
//
// The frame, as memcached 1.6.18 reads and writes it (doc/protocol.txt there,
// "UDP protocol"): request id, sequence number, datagram count, reserved, each
// 16 bits in network order.
//  - A datagram of 8 bytes or fewer is dropped. One whose count is not 1 is a
//    multi-datagram request, which memcached does not take: dropped unanswered
//    (memcached 1.6.18 builds a SERVER_ERROR for it but never sends it). The
//    sequence number and the reserved field are not looked at.
//  - The payload runs in a fresh session (NewSession(): text, or binary when
//    it begins with 0x80, as -B allows), so nothing carries over from one
//    datagram to the next; what is left of it at the end (a command without
//    its newline, half a data block) is dropped.
//  - Replies are framed per memcached response object (ReplyMark in
//    protocol/session.h: each command's reply, each key of a multi-get): each
//    gets the request id, its own sequence numbers from 0, and its own count,
//    ceil(bytes / 1392) capped at 65535; 1392 = 1400 less the header. An empty
//    response that leads what memcached writes out next (ReplyMark says when)
//    and is not a skipped noreply is sent as a bare header counting 0
//    datagrams; every other empty one sends nothing.
//  - -R: the first reqs_per_event + 1 commands of a datagram are one batch,
//    then reqs_per_event each; the worker sends a batch's replies and turns to
//    its other work before it runs the next (`stats`: conn_yields, counted
//    only where commands are left, as over TCP).
//
// Memory: a UdpPort reads into one fixed buffer of kUdpReadBuffer bytes and
// stops reading while a reply is unsent; the reply is produced a bounded
// stretch at a time (kUdpOutputLimit of text ahead of what is sent), and large
// values are sent in place from their items (pinned), never copied, so a
// reply of any size holds about one stretch.
//
// Thread safety: a UdpPort and its UdpExchange belong to one worker thread.
#ifndef TINYCACHED_SERVER_UDP_H_
#define TINYCACHED_SERVER_UDP_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "core/engine.h"
#include "server/context.h"
#include "server/protocol/session.h"
#include "server/splice.h"

struct event_base;
struct event;

namespace tinycached::server {

inline constexpr size_t kUdpHeaderSize = 8;
// memcached's UDP_MAX_PAYLOAD_SIZE: a reply datagram, header included.
inline constexpr size_t kUdpMaxDatagram = 1400;
inline constexpr size_t kUdpMaxData = kUdpMaxDatagram - kUdpHeaderSize;
// Every datagram fits (IPv4 and IPv6 carry at most 65535 bytes less headers).
inline constexpr size_t kUdpReadBuffer = 64 * 1024;
// Reply text produced ahead of what is sent.
inline constexpr size_t kUdpOutputLimit = 32 * 1024;

struct UdpHeader {
  uint16_t request_id = 0;
  uint16_t sequence = 0;
  uint16_t total = 0;
  uint16_t reserved = 0;
};

// The header of a request datagram, or nothing for one memcached drops
// unread (8 bytes or fewer).
std::optional<UdpHeader> ParseUdpHeader(std::string_view datagram);
void EncodeUdpHeader(const UdpHeader& h, char out[kUdpHeaderSize]);
// The datagrams a response of `bytes` bytes is sent in: memcached's count.
uint16_t UdpDatagramCount(size_t bytes);

// One request datagram being answered: its commands run in a fresh session,
// and its replies are framed and handed to `send` one datagram at a time.
// The payload must outlive the exchange.
class UdpExchange {
 public:
  enum class Sent { kOk, kWouldBlock, kFailed };
  using SendFn = absl::FunctionRef<Sent(const iovec* iov, size_t iovcnt)>;
  enum class Result {
    kDone,     // answered (or abandoned on a send that failed)
    kBlocked,  // `send` would block: Run() again once the socket is writable
    kYielded,  // a -R batch is out and commands are left: Run() again soon
  };

  UdpExchange(ServerContext* ctx, core::ThreadStats* stats, uint16_t request_id,
              std::string_view payload);
  ~UdpExchange();
  UdpExchange(const UdpExchange&) = delete;
  UdpExchange& operator=(const UdpExchange&) = delete;

  Result Run(SendFn send);

 private:
  // Runs commands until the output limit, the -R cap or the end of the input.
  void Produce();
  // Responses whose bytes are all produced and not yet sent.
  size_t CompleteResponses() const;
  // Sends the response marks_[next_], resuming where a blocked send stopped.
  Sent SendResponse(SendFn send);
  // Forgets what was sent: text, marks and (unpinned) values.
  void Compact();

  ServerContext* const ctx_;
  core::ThreadStats* const stats_;
  const uint16_t request_id_;
  const std::string_view input_;
  size_t pos_ = 0;  // of input_, consumed
  std::unique_ptr<ProtocolSession> session_;

  std::string out_;
  std::vector<Splice> splices_;
  std::vector<ReplyMark> marks_;
  size_t next_ = 0;         // marks_[next_] is the next response to send
  size_t next_splice_ = 0;  // splices_[next_splice_] is the first not sent
  // The response being sent: bytes sent, next sequence number, its count.
  size_t resp_sent_ = 0;
  uint16_t resp_seq_ = 0;
  uint16_t resp_total_ = 0;

  bool at_head_ = true;          // nothing of this batch sent yet
  bool batch_produced_ = false;  // every reply of this batch is produced
  bool finished_ = false;        // and no command is left after it
};

// One worker's descriptor of one UDP socket, on the worker's event loop.
// Owns the descriptor; listed in `stats conns` as memcached lists its UDP
// connections (curr_connections counts each).
class UdpPort {
 public:
  UdpPort(ServerContext* ctx, core::ThreadStats* stats, event_base* base, int fd, std::string addr);
  ~UdpPort();
  UdpPort(const UdpPort&) = delete;
  UdpPort& operator=(const UdpPort&) = delete;

 private:
  static void OnReadable(int fd, short what, void* arg);
  static void OnWritable(int fd, short what, void* arg);
  void Read();
  // Runs the exchange in hand; false while it waits for the socket or its turn.
  bool Serve();
  UdpExchange::Sent Send(const iovec* iov, size_t iovcnt);

  ServerContext* const ctx_;
  core::ThreadStats* const stats_;
  const int fd_;
  event* read_ev_ = nullptr;
  event* write_ev_ = nullptr;
  std::unique_ptr<char[]> buf_;  // kUdpReadBuffer bytes: the datagram in hand
  sockaddr_storage peer_{};      // its sender, whom the reply goes to
  socklen_t peer_len_ = 0;
  std::optional<UdpExchange> exchange_;
  ConnInfo info_;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_UDP_H_
