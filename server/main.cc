// tinycached: parse flags, build the store, serve.
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/engine.h"
#include "core/snapshot.h"
#include "event2/event.h"
#include "server/context.h"
#include "server/flags.h"
#include "server/sasl.h"
#include "server/server.h"

namespace {

using tinycached::server::Settings;

constexpr int kExitUsage = 2;

int Fail(const std::string& msg, int code = kExitUsage) {
  std::fprintf(stderr, "tinycached: %s\n", msg.c_str());
  return code;
}

// Enough descriptors for -c connections plus our own.
bool RaiseFileLimit(int maxconns) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  const rlim_t want = static_cast<rlim_t>(maxconns) + 64;
  if (rl.rlim_cur >= want) return true;
  rl.rlim_cur = want;
  if (rl.rlim_max < want) rl.rlim_max = want;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

bool DropPrivileges(const std::string& user) {
  if (getuid() != 0 && geteuid() != 0) return true;  // -u only matters for root
  if (user.empty()) return true;
  const passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return false;
  return setgroups(0, nullptr) == 0 && setgid(pw->pw_gid) == 0 && setuid(pw->pw_uid) == 0;
}

bool Daemonize() {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid > 0) _exit(0);
  if (setsid() < 0) return false;
  if (chdir("/") != 0) return false;
  const int fd = open("/dev/null", O_RDWR);
  if (fd < 0) return false;
  dup2(fd, STDIN_FILENO);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  if (fd > STDERR_FILENO) close(fd);
  return true;
}

// Written whole, then renamed into place: a reader never sees it half written.
bool WritePidFile(const std::string& path) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fprintf(f, "%ld\n", static_cast<long>(getpid())) > 0;
  if (std::fclose(f) != 0 || !ok) return false;
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// memcached's MEMCACHED_PORT_FILENAME: the ports bound, one line per socket,
// so that a server started with -p -1 or -U -1 can be found. Written to
// <file>.lck and renamed, as memcached does, so that a reader polling for
// <file> finds it whole. A file that cannot be written is reported and the
// server runs on, as memcached's.
void WritePortFile(const std::string& path, const std::vector<std::string>& lines) {
  const std::string tmp = path + ".lck";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "Failed to open \"%s\": %s\n", tmp.c_str(), std::strerror(errno));
    return;
  }
  bool ok = true;
  for (const std::string& line : lines) ok = std::fprintf(f, "%s\n", line.c_str()) > 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "Failed to write \"%s\": %s\n", path.c_str(), std::strerror(errno));
    unlink(tmp.c_str());
  }
}

// -e: the file's absolute name (a daemon leaves its directory), and whether
// the user we run as may create it there — checked at start, not found out
// at the stop that needs it.
absl::StatusOr<std::string> MemoryFilePath(const std::string& file) {
  std::string path = file;
  if (path.front() != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) {
      return absl::UnavailableError(absl::StrCat("-e ", file, ": ", std::strerror(errno)));
    }
    path = absl::StrCat(cwd, "/", path);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("-e ", file, ": not a regular file (the items are written there)"));
  }
  const std::string dir = path.substr(0, path.rfind('/') + 1);
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("-e ", file, ": cannot create files in ", dir, ": ", std::strerror(errno)));
  }
  return path;
}

// Stores back what the last orderly stop wrote (core/snapshot.h), with one
// line saying what happened.
void WarmStart(tinycached::core::Engine& engine, const tinycached::core::Clock& clock,
               const std::string& path) {
  absl::StatusOr<tinycached::core::RestoreReport> r =
      tinycached::core::RestoreSnapshot(engine, clock, path);
  if (r.ok()) {
    std::fprintf(stderr,
                 "warm restart: %llu items restored from %s in %.2f s (%llu expired while "
                 "stopped, %llu not stored, %llu evicted)\n",
                 static_cast<unsigned long long>(r->items), path.c_str(), r->seconds,
                 static_cast<unsigned long long>(r->expired),
                 static_cast<unsigned long long>(r->not_stored),
                 static_cast<unsigned long long>(r->evicted));
  } else if (absl::IsNotFound(r.status())) {
    std::fprintf(stderr, "warm restart: no %s to restore; starting empty\n", path.c_str());
  } else {
    std::fprintf(stderr, "warm restart: %s not used (%s); starting empty\n", path.c_str(),
                 std::string(r.status().message()).c_str());
  }
}

// After the last connection closed: every item to the -e file.
int WarmStop(tinycached::core::Engine& engine, const tinycached::core::Clock& clock,
             const std::string& path) {
  engine.StopMaintenance();
  absl::StatusOr<tinycached::core::SaveReport> r =
      tinycached::core::SaveSnapshot(engine, clock, path);
  if (!r.ok()) {
    std::fprintf(stderr, "warm restart: items not saved: %s\n",
                 std::string(r.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "warm restart: %llu items saved to %s (%llu bytes) in %.2f s\n",
               static_cast<unsigned long long>(r->items), path.c_str(),
               static_cast<unsigned long long>(r->bytes), r->seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil with Mutex deadlock detection on, which records a
  // lock graph on every Lock() (~3% of the server's CPU under load). The
  // lock order is fixed (core/item_store.h) and the unit tests, which keep
  // detection on, exercise it; the server does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Buffers of large values come from mmap and go back to the kernel when
  // freed. (glibc otherwise raises this threshold after the first such free
  // and keeps later ones in its heap, where freed memory stays resident.)
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  using namespace tinycached;
  absl::StatusOr<server::CommandLine> cl = server::ParseCommandLine(argc, argv);
  if (!cl.ok()) {
    Fail(std::string(cl.status().message()));
    std::fprintf(stderr, "Try 'tinycached -h' for the list of options.\n");
    return kExitUsage;
  }
  const Settings& settings = cl->settings;
  switch (cl->action) {
    case server::CommandAction::kHelp:
      std::fputs(server::UsageText().c_str(), stdout);
      return 0;
    case server::CommandAction::kVersion:
      std::printf("tinycached %s\n", server::kVersion);
      return 0;
    case server::CommandAction::kLicense:
      std::printf(
          "tinycached %s\n"
          "It links libevent %s (3-clause BSD license) and Abseil (Apache License 2.0);\n"
          "their license texts ship with their packages (Debian: /usr/share/doc/*/copyright).\n",
          server::kVersion, event_get_version());
      return 0;
    case server::CommandAction::kListPresets:
      // One preset per line, ladder order: name, its knobs, what the step changes.
      for (const server::Preset& p : server::Presets()) {
        std::printf("%-8s %s  # %s\n", std::string(p.name).c_str(),
                    server::Describe(p.layout).c_str(), std::string(p.change).c_str());
      }
      return 0;
    case server::CommandAction::kRun:
      break;
  }
  // As memcached: a server started by root must be told whom to run as
  // (`-u root` is an answer too).
  if ((getuid() == 0 || geteuid() == 0) && settings.user.empty()) {
    std::fprintf(stderr, "can't run as root without the -u switch\n");
    return 64;  // EX_USAGE, memcached's status for this refusal
  }

  // -S: the users come from -o sasl_pwdb=, else MEMCACHED_SASL_PWDB (memcached's variable).
  std::optional<server::SaslPasswords> sasl;
  if (settings.sasl) {
    std::string path = settings.sasl_pwdb;
    if (path.empty()) {
      const char* env = std::getenv("MEMCACHED_SASL_PWDB");
      if (env != nullptr) path = env;
    }
    if (path.empty()) {
      Fail(
          "-S needs a password file of user:password lines: set MEMCACHED_SASL_PWDB or "
          "-o sasl_pwdb=<file>");
      return kExitUsage;
    }
    absl::StatusOr<server::SaslPasswords> db = server::SaslPasswords::Load(path);
    if (!db.ok()) return Fail(std::string(db.status().message()));
    sasl = *std::move(db);
  }

  core::Clock clock;
  absl::StatusOr<std::unique_ptr<core::Engine>> store =
      core::CreateEngine(settings.StoreOptions(), &clock);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  if (settings.verbose > 1) {
    const core::LayoutReport layout = (*store)->layout_report();
    for (size_t i = 0; i < layout.classes.size(); ++i) {
      std::fprintf(stderr, "slab class %3zu: chunk size %9zu perslab %7zu\n", i + 1,
                   layout.classes[i].chunk_size, layout.classes[i].per_page);
    }
  }
  if (settings.coredumps) {
    // -r: as large a core file as the hard limit allows.
    rlimit rl{};
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_CORE, &rl);
    }
  }
  if (settings.lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    // memcached goes on without it, and so do we.
    std::fprintf(stderr, "warning: -k invalid, mlockall() failed: %s\n", std::strerror(errno));
  }
  if (!RaiseFileLimit(settings.maxconns)) {
    return Fail(
        "failed to set rlimit for open files. Try starting as root or requesting smaller "
        "maxconns value.",
        1);
  }

  server::ServerContext ctx(settings, *std::move(store), &clock);
  ctx.verbosity.store(settings.verbose);
  if (sasl.has_value()) ctx.sasl = &*sasl;
  for (int i = 0; i < settings.threads; ++i) {
    ctx.thread_stats.push_back(std::make_unique<core::ThreadStats>());
  }
  absl::StatusOr<std::unique_ptr<server::Server>> srv = server::Server::Create(&ctx);
  if (!srv.ok()) {
    // A bad -l value is a usage error; a busy port or a socket failure is not.
    return Fail(std::string(srv.status().message()),
                absl::IsInvalidArgument(srv.status()) ? kExitUsage : 1);
  }
  if (!DropPrivileges(settings.user)) {
    return Fail("failed to assume identity of user " + settings.user, 1);
  }
  // After the privileges are dropped, as memcached writes it (the file is the
  // -u user's), but before -d: a relative name means the directory the server
  // was started in, and the file is there when `tinycached -d` returns.
  if (const char* port_file = std::getenv("MEMCACHED_PORT_FILENAME");
      port_file != nullptr && *port_file != '\0' && settings.unix_socket.empty()) {
    WritePortFile(port_file, ctx.port_lines);
  }
  std::string memory_file;
  if (!settings.memory_file.empty()) {
    absl::StatusOr<std::string> path = MemoryFilePath(settings.memory_file);
    if (!path.ok()) return Fail(std::string(path.status().message()), 1);
    memory_file = *std::move(path);
  }
  if (settings.daemonize && !Daemonize())
    return Fail("failed to daemon() in order to daemonize", 1);
  if (!settings.pid_file.empty() && !WritePidFile(settings.pid_file)) {
    std::fprintf(stderr, "Could not open the pid file %s for writing\n", settings.pid_file.c_str());
  }
  // Maintenance runs while a warm start stores items back, as under clients'
  // stores: the hash index grows as they arrive. Connections wait in the
  // listen queue until it is done.
  ctx.store->StartMaintenance();
  if (!memory_file.empty()) WarmStart(*ctx.store, clock, memory_file);
  if (settings.verbose > 0) {
    // The addresses as bound: the ports the kernel picked for -p -1 or -U -1.
    std::string addrs;
    for (const server::Listener& l : ctx.listeners)
      absl::StrAppend(&addrs, addrs.empty() ? "" : " ", l.addr);
    for (const std::string& a : ctx.udp_addrs) absl::StrAppend(&addrs, addrs.empty() ? "" : " ", a);
    if (addrs.empty()) addrs = "no TCP or UDP port";  // -p 0 -U 0
    std::fprintf(stderr, "tinycached %s: %s, preset %s, -m %zu, %d threads\n", server::kVersion,
                 addrs.c_str(), settings.preset.c_str(), settings.memory_mb, settings.threads);
  }
  (*srv)->Run();
  srv->reset();
  const int status = memory_file.empty() ? 0 : WarmStop(*ctx.store, clock, memory_file);
  if (!settings.pid_file.empty()) unlink(settings.pid_file.c_str());
  return status;
}
