// server/splice.h — a value sent in place from its item (zero copy).
//
// Room: server/. The get commands of every protocol create them
// (FramedSession::AppendValue, protocol/framing.h); server.cc sends and
// unpins them.
#ifndef TINYCACHED_SERVER_SPLICE_H_
#define TINYCACHED_SERVER_SPLICE_H_

#include <cstddef>

#include "core/engine.h"

namespace tinycached::server {

// A value spliced into the reply text at `offset`: its bytes are sent in
// place from the pinned item (zero copy), then unpinned.
struct Splice {
  size_t offset;
  core::PinnedValue value;
};

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_SPLICE_H_
