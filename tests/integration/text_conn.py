"""What the memory and robustness tests share: a strict blocking client of the text protocol,
and the probes of the server process and of this one's descriptor limit.
"""
import resource
import socket

IO_TIMEOUT = 20.0


class Conn:
    """A blocking text-protocol client with its own read buffer. Every read waits at most
    `timeout` seconds for more bytes; a timeout or a close fails with the bytes read last.
    Usable as a context manager (the connection is closed on leaving)."""

    def __init__(self, server, timeout=IO_TIMEOUT):
        self.sock = server.connect(timeout=timeout)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self):
        self.sock.settimeout(self.timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("timed out; have %r" % self.buf[-200:])
        if not chunk:
            raise AssertionError("connection closed; have %r" % self.buf[-200:])
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return line
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def call(self, data):
        self.send(data)
        return self.line()

    def store(self, key, flags, value, cmd=b"set"):
        return self.call(b"%s %s %d 0 %d\r\n%s\r\n" % (cmd, key, flags, len(value), value))

    def set(self, key, value, flags=0):
        return self.store(key, flags, value)

    def get_many(self, keys):
        """{key: (flags, value)} from one multi-get, parsed strictly."""
        self.send(b"get " + b" ".join(keys) + b"\r\n")
        found = {}
        while True:
            line = self.line()
            if line == b"END\r\n":
                return found
            parts = line.split()
            if len(parts) != 4 or parts[0] != b"VALUE":
                raise AssertionError("unexpected line %r" % line[:200])
            key, flags, n = parts[1], int(parts[2]), int(parts[3])
            data = self.exactly(n + 2)
            if data[-2:] != b"\r\n":
                raise AssertionError("value of %r not followed by CRLF" % key)
            if key in found:
                raise AssertionError("key %r returned twice" % key)
            found[key] = (flags, data[:-2])

    def get_values(self, keys):
        """{key: value} from one multi-get, parsed strictly."""
        return {key: value for key, (_, value) in self.get_many(keys).items()}

    def get(self, key):
        return self.get_values([key]).get(key)

    def stats(self, sub=b""):
        self.send(b"stats" + (b" " + sub if sub else b"") + b"\r\n")
        out = {}
        while True:
            line = self.line()
            if line == b"END\r\n":
                return out
            parts = line.split(b" ", 2)
            if len(parts) != 3 or parts[0] != b"STAT":
                raise AssertionError("unexpected stats line %r" % line)
            out[parts[1].decode()] = parts[2].strip().decode()

    def sync(self):
        """Waits until everything sent so far was processed; returns the lines before."""
        self.send(b"version\r\n")
        lines = []
        while True:
            line = self.line()
            if line.startswith(b"VERSION "):
                return lines
            lines.append(line)

    def version(self):
        line = self.call(b"version\r\n")
        if not line.startswith(b"VERSION "):
            raise AssertionError("bad version reply %r" % line)
        return line


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def raise_nofile(test, need):
    """Raises this process's descriptor limit to `need` for the rest of `test` (skips the
    test if the hard limit is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        test.skipTest("RLIMIT_NOFILE hard limit %d < %d needed" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        test.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
