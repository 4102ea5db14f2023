// server/protocol/session.h — the one interface the connection layer
// (server/server.cc) drives a connection's protocol through, whichever it is,
// and NewSession(), the one place a connection's protocol is chosen.
//
// Room: between the sockets (server.cc) and the protocols. A session has no
// socket: it is fed the connection's unconsumed input and appends replies to
// an output string, so tests can drive it byte by byte. What the connection
// layer needs to know besides that is asked here in protocol-neutral terms:
// how many bytes to buffer (NeedBytes), what the session is waiting for
// (Waiting: for `stats conns`, the idle timeout, and whether it owes output
// without more input), memcached's -R cap (SetCommandBudget, yielded), and,
// for the UDP transport (server/udp.h), where memcached's response objects
// begin in the output (SetReplyMarks).
//
// The protocols: TextSession (text_session.h: the classic text and meta
// commands) and BinarySession (binary_session.h), both framed by
// FramedSession (framing.h).
//
// Thread safety: a session belongs to its connection's worker thread.
#ifndef TINYCACHED_SERVER_PROTOCOL_SESSION_H_
#define TINYCACHED_SERVER_PROTOCOL_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.h"
#include "server/context.h"
#include "server/splice.h"

namespace tinycached::server {

// Where each of memcached's response objects begins in a session's output.
// memcached's UDP transport frames each response object apart (its own
// datagrams, sequence numbers and count), so server/udp.cc needs the seams a
// byte stream hides: one at each command, and in a text multi-get one at each
// key after the first (its END joins the last key's). An empty response is
// sent as a datagram of the bare header when it leads what is sent
// (`sent_when_empty`: a text get's missed key, quit, and every binary
// response, which memcached 1.6.18 leaves empty rather than skipped); a text
// noreply or quiet reply never is. What leads: the first response of a
// datagram, of each -R batch, and the first after one memcached writes out
// at once (`flush`: a text get's last, mn, binary noop and errors), and one
// after a skipped response that led.
struct ReplyMark {
  size_t offset;         // in the output string passed to Consume()
  bool sent_when_empty;  // see above
  bool flush = false;    // see above
};

class ProtocolSession {
 public:
  // What the session waits for before it can go on (memcached's connection
  // states conn_new_cmd, conn_nread, conn_swallow and conn_mwrite).
  enum class Wait {
    kCommand,  // the next command
    kData,     // the rest of a data block of NeedBytes() bytes
    kSwallow,  // the rest of a refused data block, to be discarded
    kOutput,   // room in the output: it owes replies that need no more input
  };

  ProtocolSession() = default;
  ProtocolSession(const ProtocolSession&) = delete;
  ProtocolSession& operator=(const ProtocolSession&) = delete;
  virtual ~ProtocolSession() = default;

  // Processes the complete commands at the front of `in` and returns how many
  // bytes were consumed; the rest must be passed again with more input.
  // Replies are appended to `out`. Stops early once `out` plus the values
  // spliced during this call hold more than `out_limit` bytes (the caller
  // drains it, then calls again). Sets *close when the connection must close
  // once `out` is sent. With `splices`, values of at least
  // Engine::kPinMinValue bytes are not copied into `out` but pinned and
  // appended to `splices` (the caller sends and unpins them); without, every
  // value is copied.
  virtual size_t Consume(std::string_view in, std::string* out, bool* close,
                         size_t out_limit = SIZE_MAX, std::vector<Splice>* splices = nullptr) = 0;
  // Bytes the session needs buffered before it can go on: a data block's
  // length while one is awaited, else 0.
  virtual size_t NeedBytes() const = 0;
  virtual Wait Waiting() const = 0;

  // memcached's -R: at most `n` more commands run before Consume() returns
  // (unlimited until set). yielded(): the last Consume() stopped at that cap
  // with input left over.
  virtual void SetCommandBudget(size_t n) = 0;
  virtual bool yielded() const = 0;

  // While set, every response begun is noted in `marks` (ReplyMark above);
  // unset (null), the default, nothing is noted.
  virtual void SetReplyMarks(std::vector<ReplyMark>* marks) = 0;
};

// A session for a new connection, of the protocol -B names; under -B auto the
// connection's first byte picks it (0x80, the binary request magic: binary;
// anything else: text).
std::unique_ptr<ProtocolSession> NewSession(ServerContext* ctx, core::ThreadStats* stats,
                                            ConnInfo* info = nullptr);

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_PROTOCOL_SESSION_H_
