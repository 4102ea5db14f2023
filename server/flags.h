// server/flags.h — memcached-compatible command line.
#ifndef TINYCACHED_SERVER_FLAGS_H_
#define TINYCACHED_SERVER_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
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

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_FLAGS_H_
