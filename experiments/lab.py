"""Shared by the experiment drivers (experiments/*.py): servers on free loopback ports,
building the clients, progress lines, list options, the gnuplot terminal and running gnuplot,
and the provenance (commit, date, machine, versions) every file in results/ is stamped with.

Servers are tests/integration/harness.py's Server (Server below only adds error_text()), and
the nutcracker wrapper is tests/integration/nutcracker.py: the integration tests use both."""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402
import nutcracker  # noqa: E402

# The proxy of experiments/cluster_fill.py.
NUTCRACKER = nutcracker.NUTCRACKER
Nutcracker = nutcracker.Nutcracker


class Server(harness.Server):
    """One server process (tinycached or memcached) on a free 127.0.0.1 port:
    Server(binary, flags).start() ... .stop(); .port, .proc."""

    def __init__(self, binary, flags):
        super().__init__(binary, list(flags))

    def error_text(self):
        """The end of what the server wrote to stderr."""
        return self.stderr_text().strip()[-500:]


def log(message):
    """A progress line on stderr, named after the running driver ("fill_ladder: ...")."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    print("%s: %s" % (name, message), file=sys.stderr, flush=True)


def parse_list(text, convert, allowed=None, what="value"):
    """An argparse type: comma-separated values through `convert`, each in `allowed` if
    given; an empty list is an error."""
    items = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = convert(part)
        except ValueError:
            raise argparse.ArgumentTypeError("bad %s: %s" % (what, part))
        if allowed is not None and value not in allowed:
            raise argparse.ArgumentTypeError("unknown %s %s (known: %s)" % (what, part, ", ".join(allowed)))
        items.append(value)
    if not items:
        raise argparse.ArgumentTypeError("empty %s list" % what)
    return items


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
    """{"uname", "cpu", "nproc"} of this machine (harness.machine(), shared with the tests)."""
    return harness.machine()


def run_stamp(commit=None):
    """What a run is stamped with: {"commit", "date", "uname", "cpu", "nproc"}: `commit` or
    the checkout's (git_commit()), the time now (UTC, to the minute) and machine()."""
    stamp = {"commit": commit or git_commit(),
             "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    stamp.update(machine())
    return stamp


def stamp_columns(stamp):
    """A run_stamp() as the CSV columns commit, date, machine, cpu and nproc."""
    return {"commit": stamp["commit"], "date": stamp["date"], "machine": stamp["uname"],
            "cpu": stamp["cpu"], "nproc": stamp["nproc"]}


def stamp_lines(stamp, machine_note=""):
    """A run_stamp() as the commit, date and machine lines of a results .md; machine_note
    ends the machine line."""
    return ["- commit: `%s`" % stamp["commit"],
            "- date: %s" % stamp["date"],
            "- machine: %s, %s, %d CPUs%s" % (stamp["uname"], stamp["cpu"], stamp["nproc"],
                                             machine_note)]


def version_of(binary, flag="-V"):
    text = run_text([binary, flag])
    return text.splitlines()[0] if text else "unknown version"


def run_client(argv, server, timeout, during, client, check_exit=False):
    """Runs a client's --json command line `argv` against `server` (a Server):
    (its JSON report, the finished subprocess). RuntimeError if the server died meanwhile
    ("server died during <during>"), if the client wrote no report ("<client> exited ..."),
    or, with check_exit, if it exited non-zero."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if server.proc.poll() is not None:
        raise RuntimeError("server died during %s (exit %d): %s" %
                           (during, server.proc.returncode, server.error_text()))
    result = json.loads(done.stdout) if done.stdout.strip() else None
    if result is None or (check_exit and done.returncode != 0):
        raise RuntimeError("%s exited %d: %s" % (client, done.returncode, done.stderr.strip()))
    return result, done


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


def ensure_built(build_dir, targets, allow_build):
    """{target: path} for every name in BUILD_PATHS under build_dir. Builds those of `targets`
    that are missing with CMake (configuring build_dir first if it has no cache) when
    allow_build; the caller checks what is still missing."""
    paths = {t: os.path.join(build_dir, path) for t, path in BUILD_PATHS.items()}
    missing = [t for t in targets if not os.access(paths[t], os.X_OK)]
    if missing and allow_build:
        log("building %s in %s" % (" ".join(missing), build_dir))
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.run(["cmake", "-S", REPO, "-B", build_dir] + generator, check=False)
        subprocess.run(["cmake", "--build", build_dir, "--target"] + missing, check=False)
    return paths


def median(values):
    """The median of the values that are not None, or None if there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def median_low(values):
    """As median(), but always one of the values (the lower middle one for an even count)."""
    values = [v for v in values if v is not None]
    return statistics.median_low(values) if values else None


def csv_value(value):
    """A CSV cell: empty for None, floats with 4 decimals."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "%.4f" % value
    return str(value)


def gnuplot_terminal():
    """'pngcairo' if this gnuplot has it (anti-aliased, fonts), else 'png'."""
    done = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    text = done.stdout + done.stderr
    return "pngcairo" if re.search(r"^\s*pngcairo\b", text, re.M) else "png"


def run_gnuplot(script):
    """Runs gnuplot on `script` (text): True if it succeeded, else logs its error and
    returns False."""
    done = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if done.returncode != 0:
        log("gnuplot failed: %s" % done.stderr.strip())
        return False
    return True
