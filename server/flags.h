// server/flags.h — memcached-compatible command line.
#ifndef TINYCACHED_SERVER_FLAGS_H_
#define TINYCACHED_SERVER_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/settings.h"

namespace tinycached::server {

enum class CommandAction { kRun, kHelp, kVersion, kListPresets };

struct CommandLine {
  Settings settings;
  CommandAction action = CommandAction::kRun;
};

// Parses memcached's flags (-p -U -l -m -c -t -n -f -C -I -M -v -d -P -u -h
// -V -o key=value,...) and their long forms. Errors carry a message fit for
// the user; the caller exits with status 2.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv);

std::string UsageText();

}  // namespace tinycached::server

#endif  // TINYCACHED_SERVER_FLAGS_H_
