// server/flags.h — memcached-compatible command line.
#ifndef TINYCACHED_SERVER_FLAGS_H_
#define TINYCACHED_SERVER_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/settings.h"

namespace tinycached::server {

enum class CommandAction { kRun, kHelp, kVersion, kLicense, kListPresets };

struct CommandLine {
  Settings settings;
  CommandAction action = CommandAction::kRun;
};

// Parses memcached 1.6.18's flags and their long forms: every one either
// works, is accepted as a no-op because it tunes a mechanism tinycached does
// not have, or is refused with a message naming the feature that is not
// built (flags.cc: kForeignFlags, kForeignSuboptions). Errors carry a message fit for
// the user; the caller exits with status 2.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv);

std::string UsageText();

// One address of -l: a host name or address to bind (empty: every address,
// memcached's "*") and its port.
struct ListenAddress {
  std::string host;
  int port = 0;
};
// memcached's -l list: addresses separated by ',' or ';', each "host",
// "host:port", "[ipv6]:port", a bare IPv6 address, or "*" (every address);
// `port` (-p) where none is given. Errors are InvalidArgument.
absl::StatusOr<std::vector<ListenAddress>> SplitListenList(absl::string_view list, int port);

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_FLAGS_H_
