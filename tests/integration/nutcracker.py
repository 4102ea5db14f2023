"""Debian's nutcracker (twemproxy) on free 127.0.0.1 ports, for tests/integration/cluster_test.py
and experiments/cluster_fill (through experiments/lab.py).

The pool is configured as README.md's "Running a cluster" shows it: ketama over the md5 of the
key, named servers (the ring follows the names, not the addresses), failed servers ejected.
The README's timings are the defaults; the tests pass shorter failure timings.
"""
import os
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
        """A `get` of an unknown key through the proxy gets END (or an error, if the node
        it maps to is not up): proof that this nutcracker listens and routes."""
        try:
            return harness.ask(self.port, b"get nutcracker_probe\r\n", b"\r\n", 2) == b"END\r\n"
        except OSError:
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
