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


NUTCRACKER = "/usr/sbin/nutcracker"


def nutcracker_yml(listen_port, servers, failure_limit=3, retry_timeout_ms=30000):
    """A twemproxy pool as README.md's "Running a cluster" shows it: ketama over the md5
    of the key, named servers (the ring follows the names, not the addresses), failed
    servers ejected. servers is [(host, port, name)]."""
    lines = [
        "tinycached:",
        "  listen: 127.0.0.1:%d" % listen_port,
        "  hash: md5",
        "  distribution: ketama",
        "  timeout: 10000",
        "  auto_eject_hosts: true",
        "  server_failure_limit: %d" % failure_limit,
        "  server_retry_timeout: %d" % retry_timeout_ms,
        "  servers:",
    ]
    lines += ["   - %s:%d:1 %s" % (host, port, name) for host, port, name in servers]
    return "\n".join(lines) + "\n"


class Nutcracker:
    """Debian's nutcracker (twemproxy) on a free 127.0.0.1 port in front of `servers`
    ([(host, port, name)]); its stats port is a free one too."""

    def __init__(self, servers, binary=NUTCRACKER):
        self.servers = servers
        self.binary = binary
        self.proc = None
        self.dir = tempfile.TemporaryDirectory()
        self.log_path = os.path.join(self.dir.name, "nutcracker.log")

    def start(self, attempts=3):
        for _ in range(attempts):
            self.port = free_port()
            conf = os.path.join(self.dir.name, "nutcracker.yml")
            with open(conf, "w") as f:
                f.write(nutcracker_yml(self.port, self.servers))
            self.proc = subprocess.Popen(
                [self.binary, "-c", conf, "-s", str(free_port()), "-a", "127.0.0.1",
                 "-o", self.log_path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            deadline = time.time() + 10
            while time.time() < deadline and self.proc.poll() is None:
                if self._routes():
                    return self
                time.sleep(0.02)
            self.stop()
        raise RuntimeError("nutcracker did not start: " + self.log_text())

    def _routes(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"get lab_probe\r\n")
                reply = b""
                while not reply.endswith(b"\r\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    reply += chunk
                return reply == b"END\r\n"
        except OSError:
            return False

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        self.dir.cleanup()
