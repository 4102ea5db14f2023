"""Shared by the experiment scripts: servers on free loopback ports, and the
provenance (commit, machine, versions) every file in results/ is stamped with.

The process plumbing (free ports, waiting for a server, stopping it, one request on a fresh
connection) and the nutcracker wrapper come from tests/integration (harness.py,
nutcracker.py), which the integration tests use too."""
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402
import nutcracker  # noqa: E402

# The proxy of experiments/cluster_fill.
NUTCRACKER = nutcracker.NUTCRACKER
Nutcracker = nutcracker.Nutcracker


class Server:
    """One server process (tinycached or memcached) on a free 127.0.0.1 port."""

    def __init__(self, binary, flags):
        self.port = harness.free_port()
        argv = [binary, "-p", str(self.port), "-U", "0", "-l", "127.0.0.1"] + list(flags)
        if os.path.basename(binary) == "memcached" and os.geteuid() == 0:
            argv += ["-u", "root"]
        self.argv = argv
        self.proc = None
        self.stderr = tempfile.TemporaryFile()

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        if harness.wait_for(self.proc, self._accepts, 10):
            return self
        if self.proc.poll() is not None:
            raise RuntimeError("exited with %d: %s" % (self.proc.returncode, self.error_text()))
        raise RuntimeError("did not start listening within 10 s")

    def _accepts(self):
        """Whether the port accepts a connection (no request is sent)."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def error_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-500:]

    def stop(self):
        harness.stop_process(self.proc)
        self.stderr.close()


def stats_text(port, command=b"stats"):
    """The whole reply to `command` (a stats command) from the server on 127.0.0.1:port,
    up to its END line. Raises OSError if the server cannot be reached."""
    return harness.ask(port, command + b"\r\n", b"END\r\n", 10).decode(errors="replace")


def run_text(argv, cwd=None):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd)
        return done.stdout.strip() if done.returncode == 0 else None
    except OSError:
        return None


def git_commit():
    commit = run_text(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    if commit is None:
        return "no-commit"
    # Read-only status (no index refresh); untracked files do not count, as
    # with `git describe --dirty`.
    status = run_text(["git", "--no-optional-locks", "-C", REPO, "status", "--porcelain",
                       "--untracked-files=no"])
    return commit + ("-dirty" if status else "")


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    uname = " ".join([platform.system(), platform.release(), platform.machine()])
    return {"uname": uname, "cpu": cpu, "nproc": len(os.sched_getaffinity(0))}


def version_of(binary, flag="-V"):
    text = run_text([binary, flag])
    return text.splitlines()[0] if text else "unknown version"


def stats_values(port, command=b"stats"):
    """`STAT name value` lines of a stats reply as {name: value-text}."""
    values = {}
    for line in stats_text(port, command).splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            values[parts[1]] = parts[2].strip()
    return values


def accepts_flags(binary, flags, base_flags=("-m", "64")):
    """Whether `binary` starts with `flags` (after base_flags): (True, "") or
    (False, its error text). Starts it on a free port and stops it again, so
    a driver can pass only options a given build knows."""
    server = Server(binary, list(base_flags) + list(flags))
    try:
        server.start()
        return True, ""
    except RuntimeError as e:
        return False, str(e).replace("\n", " ")
    finally:
        server.stop()


def load_average():
    """The 1-minute load average as text ("?" if unreadable)."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


# The binaries the experiment drivers run, by CMake target, under a build directory.
BUILD_PATHS = {
    "tinycached": os.path.join("server", "tinycached"),
    "fill": os.path.join("experiments", "fill"),
    "missratio": os.path.join("experiments", "missratio"),
    "loadgen": os.path.join("experiments", "loadgen"),
    "shift": os.path.join("experiments", "shift"),
}


def ensure_built(build_dir, targets, allow_build, log=None):
    """{target: path} for `targets` (names in BUILD_PATHS) under build_dir. Builds the missing
    ones with CMake (configuring build_dir first if it has no cache) when allow_build; the
    caller checks what is still missing."""
    paths = {t: os.path.join(build_dir, BUILD_PATHS[t]) for t in targets}
    missing = [t for t in targets if not os.access(paths[t], os.X_OK)]
    if missing and allow_build:
        if log:
            log("building %s in %s" % (" ".join(missing), build_dir))
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.run(["cmake", "-S", REPO, "-B", build_dir] + generator, check=False)
        subprocess.run(["cmake", "--build", build_dir, "--target"] + missing, check=False)
    return paths


def gnuplot_terminal():
    """'pngcairo' if this gnuplot has it (anti-aliased, fonts), else 'png'."""
    done = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    text = done.stdout + done.stderr
    return "pngcairo" if re.search(r"^\s*pngcairo\b", text, re.M) else "png"
