"""Debian's nutcracker (twemproxy) on free 127.0.0.1 ports, for tests/integration/cluster_test.py
and experiments/cluster_fill.py (through experiments/lab.py).

The pool is configured as README.md's "Running a cluster" shows it: ketama over the md5 of the
key, named servers (the ring follows the names, not the addresses), failed servers ejected.
The README's timings are the defaults; the tests pass shorter failure timings.
"""
import os
import socket
import struct
import subprocess
import tempfile

import harness

NUTCRACKER = "/usr/sbin/nutcracker"


def nutcracker_yml(listen_port, servers, timeout_ms=10000, failure_limit=3,
                   retry_timeout_ms=30000):
    """The pool configuration; servers is [(host, port, name)]."""
    lines = [
        "tinycached:",
        "  listen: 127.0.0.1:%d" % listen_port,
        "  hash: md5",
        "  distribution: ketama",
        "  timeout: %d" % timeout_ms,
        "  auto_eject_hosts: true",
        "  server_failure_limit: %d" % failure_limit,
        "  server_retry_timeout: %d" % retry_timeout_ms,
        "  servers:",
    ]
    lines += ["   - %s:%d:1 %s" % (host, port, name) for host, port, name in servers]
    return "\n".join(lines) + "\n"


class Nutcracker:
    """nutcracker on a free 127.0.0.1 port in front of `servers` ([(host, port, name)]); its
    stats port is a free one too. `options` go to nutcracker_yml(); start() waits up to
    `start_seconds` for it to route a request."""

    def __init__(self, servers, binary=NUTCRACKER, start_seconds=10, **options):
        self.servers = servers
        self.binary = binary
        self.start_seconds = start_seconds
        self.options = options
        self.proc = None
        self.dir = tempfile.TemporaryDirectory()
        self.log_path = os.path.join(self.dir.name, "nutcracker.log")

    def start(self, attempts=3):
        for _ in range(attempts):
            self.port = harness.free_port()
            stats_port = harness.free_port()
            conf = os.path.join(self.dir.name, "nutcracker.yml")
            with open(conf, "w") as f:
                f.write(nutcracker_yml(self.port, self.servers, **self.options))
            check = subprocess.run([self.binary, "-t", "-c", conf], capture_output=True,
                                   text=True)
            if check.returncode != 0:
                raise RuntimeError("nutcracker -t rejects the configuration: %s%s"
                                   % (check.stdout, check.stderr))
            self.proc = subprocess.Popen(
                [self.binary, "-c", conf, "-s", str(stats_port), "-a", "127.0.0.1",
                 "-o", self.log_path, "-v", "5"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if harness.wait_for(self.proc, self._routes, self.start_seconds):
                return self
            self.stop()  # a port was taken meanwhile (it exits), or it never answered
        raise RuntimeError("nutcracker did not start: %s" % self.log_text())

    def _routes(self):
        """A `get` of an unknown key through the proxy gets END, and the socket listening on
        the port is this nutcracker's: proof that it listens and routes. (Another process
        may take the free port before nutcracker binds it; nutcracker then exits, and that
        process, maybe another test's server, would answer the get.)"""
        try:
            if harness.ask(self.port, b"get nutcracker_probe\r\n", b"\r\n", 2) != b"END\r\n":
                return False
        except OSError:
            return False
        return self._listens_itself()

    def _listens_itself(self):
        """Is a socket of this process listening on 127.0.0.1:self.port (/proc/net/tcp)?"""
        fd_dir = "/proc/%d/fd" % self.proc.pid
        inodes = set()
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return False  # it exited
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
        # /proc/net/tcp shows the address as a 32-bit number in the host's byte order
        address = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton("127.0.0.1"))[0],
                                 self.port)
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and local == address and inode in inodes:  # 0A: LISTEN
                    return True
        return False

    def log_text(self):
        """The end of nutcracker's log."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        harness.stop_process(self.proc)

    def cleanup(self):
        self.stop()
        self.dir.cleanup()
