// server/server.h — sockets and threads: one listener, -t libevent workers.
//
// Room: moves bytes between sockets and protocol sessions, whichever the
// protocol (server/protocol/session.h). The main thread accepts, enforces -c
// and ticks the clock; each accepted socket is handed to a worker round-robin
// and lives on that worker's event loop for good. -U's UDP sockets are served
// by every worker (server/udp.h). A connection's memory is bounded: values of at
// least Engine::kPinMinValue bytes are sent in place from their items (pinned, never copied); a
// connection runs no command while replies wait for a socket that takes no more, and one whose
// unsent replies pass kOutputHighWater stops being read until the client drains them below
// kOutputLowWater; it reads ahead at most kReadChunk bytes per read beyond what the command in
// hand needs; and between events it holds only the bytes still pending (it borrows its
// worker's buffers while it runs).
#ifndef TINYCACHED_SERVER_SERVER_H_
#define TINYCACHED_SERVER_SERVER_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/context.h"

struct event_base;
struct event;

namespace tinycached::server {

inline constexpr size_t kOutputHighWater = size_t{32} << 10;
inline constexpr size_t kOutputLowWater = size_t{8} << 10;

class Worker;

class Server {
 public:
  // Binds and listens (ctx->settings.listen / port). Does not run yet.
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerContext* ctx);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs until SIGTERM, SIGINT, SIGUSR1 or Stop(). Starts the workers.
  void Run();
  // Thread-safe; makes Run() return.
  void Stop();

 private:
  explicit Server(ServerContext* ctx);
  // What an accept event carries: the server and the listener that is ready.
  struct AcceptSource {
    Server* server;
    const Listener* listener;
  };
  static void OnAccept(int fd, short what, void* arg);
  static void OnTick(int fd, short what, void* arg);
  static void OnSignal(int fd, short what, void* arg);
  void Accept(const Listener& listener);

  ServerContext* ctx_;
  event_base* base_ = nullptr;
  std::vector<std::unique_ptr<AcceptSource>> sources_;  // one per listener
  std::vector<event*> accept_evs_;
  event* tick_ev_ = nullptr;
  std::vector<event*> signal_evs_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_SERVER_H_
