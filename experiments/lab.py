"""Shared by the experiment scripts: servers on free loopback ports, and the
provenance (commit, machine, versions) every file in results/ is stamped with."""
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process (tinycached or memcached) on a free 127.0.0.1 port."""

    def __init__(self, binary, flags):
        self.port = free_port()
        argv = [binary, "-p", str(self.port), "-U", "0", "-l", "127.0.0.1"] + list(flags)
        if os.path.basename(binary) == "memcached" and os.geteuid() == 0:
            argv += ["-u", "root"]
        self.argv = argv
        self.proc = None
        self.stderr = tempfile.TemporaryFile()

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("exited with %d: %s" % (self.proc.returncode, self.error_text()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("did not start listening within 10 s")

    def error_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-500:]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def stats_text(port, command=b"stats"):
    """The whole reply to `command` (a stats command) from the server on 127.0.0.1:port,
    up to its END line. Raises OSError if the server cannot be reached."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(command + b"\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


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
