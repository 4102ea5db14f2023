"""Starts real servers on free loopback ports for the integration tests.

Every integration test is a script run by CTest as
    /usr/bin/python3 <test>.py --tinycached <path to build/server/tinycached> [--preset NAME]
                               [unittest args]
With --preset, every tinycached the test starts runs `-o preset=NAME` (before the test's own
flags, which may override single knobs), and a memcached started for comparison gets -C when
the preset has no CAS, so both sides promise the same protocol.
It starts tinycached (and, for comparisons, Debian's /usr/bin/memcached) itself,
talks to them over 127.0.0.1 only, and stops them when done.

experiments/lab.py imports this module too: its servers use free_port(), wait_for(),
stop_process() and ask().
"""
import argparse
import fcntl
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

REFERENCE_MEMCACHED = "/usr/bin/memcached"
TINYCACHED = None  # set by main()
PRESET = None      # set by main(): the item-layout preset under test, or None (stock)
PRESET_KNOBS = {}  # that preset's knobs, from `tinycached --list-presets`


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(proc, probe, seconds):
    """Calls probe() until it returns something true (then True), `proc` exits or `seconds`
    pass (then False)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if probe():
            return True
        time.sleep(0.02)
    return False


def stop_process(proc):
    """SIGTERM, and SIGKILL if `proc` has not exited 5 s later. Nothing if it is not running."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ask(port, request, end, timeout, host="127.0.0.1"):
    """Sends `request` to host:port (127.0.0.1 unless given, e.g. "::1") on a new connection
    and reads until the reply ends with `end` or the server closes the connection: returns
    what arrived. Raises OSError if it cannot connect, or on a timeout."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request)
        reply = b""
        while not reply.endswith(end):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            reply += chunk
    return reply


def machine():
    """{"uname", "cpu", "nproc"}: what results files name the machine by."""
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


class PortTaken(Exception):
    """Another process bound the port between free_port() and the server's bind()."""


class Server:
    """A server process on 127.0.0.1:<free port>. Use as a context manager."""

    def __init__(self, binary, args=(), port=None):
        self.binary = binary
        self.port = port or free_port()
        argv = [binary, "-p", str(self.port), "-U", "0", "-l", "127.0.0.1"]
        if os.geteuid() == 0:  # both refuse root without -u
            argv += ["-u", "root"]
        self.args = list(args)  # the caller's own, without the ones above
        self.argv = argv + self.args
        self.proc = None
        self.start_timeout = 10  # seconds until it must answer (a warm restart takes longer)

    def start(self, attempts=3):
        """Starts the server; if its free port was taken meanwhile, retries on another."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
                self.argv[self.argv.index("-p") + 1] = str(self.port)
        return self

    def _start_once(self):
        # stderr goes to a file: a pipe nobody reads would block a chatty server. The server
        # and this process share one file offset, so the server appends (O_APPEND) and this
        # process reads with pread: a seek here must never move where the server writes next
        # (with -vv, memcached logs a closed connection at any moment, and would overwrite
        # the start of its own log).
        self.log = tempfile.TemporaryFile()
        flags = fcntl.fcntl(self.log.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self.log.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.log)
        if wait_for(self.proc, self._answers_itself, self.start_timeout):
            return self
        if self.proc.poll() is not None:
            text = self._log_bytes()
            if b"failed to listen" in text:
                raise PortTaken(self.port)
            raise RuntimeError("%s exited with %d: %s" % (self.argv, self.proc.returncode,
                                                        text.decode(errors="replace")))
        raise RuntimeError("server did not start: %s" % self.argv)

    def _answers_itself(self):
        """Is it this server's own process that answers on self.port?

        A connection alone proves nothing: another process (a parallel test's server) may have
        taken the port between free_port() and this server's bind(). The test would then talk
        to that server while this one exits with "failed to listen". So ask for the pid."""
        if self.binary_only():
            return self._answers_itself_binary()
        try:
            reply = ask(self.port, b"stats\r\n", b"END\r\n", 1.0)
        except OSError:
            return False
        return (reply.endswith(b"END\r\n")
                and b"\r\nSTAT pid %d\r\n" % self.proc.pid in b"\r\n" + reply)

    def binary_only(self):
        """-B binary (or -S, SASL) servers close on ASCII: ask them in the binary protocol."""
        args = self.argv
        return "-S" in args or any(a == "-B" and args[i + 1:i + 2] == ["binary"]
                                   for i, a in enumerate(args)) or "--protocol=binary" in args

    def _answers_itself_binary(self):
        """As _answers_itself(), with a binary STAT request (VERSION only under -S: any other
        command before authentication closes the connection, so the pid cannot be asked)."""
        sasl = "-S" in self.argv
        opcode = 0x0b if sasl else 0x10
        request = struct.pack(">BBHBBHIIQ", 0x80, opcode, 0, 0, 0, 0, 0, 0, 0)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(request)
                reply = b""
                stats = {}
                while True:
                    while len(reply) < 24 or len(reply) < 24 + struct.unpack(">I", reply[8:12])[0]:
                        data = s.recv(1 << 16)
                        if not data:
                            return False
                        reply += data
                    keylen = struct.unpack(">H", reply[2:4])[0]
                    bodylen = struct.unpack(">I", reply[8:12])[0]
                    key, value = reply[24:24 + keylen], reply[24 + keylen:24 + bodylen]
                    reply = reply[24 + bodylen:]
                    if sasl:
                        return self.proc.poll() is None  # it answers; nothing says whose it is
                    if not key:
                        break
                    stats[key] = value
        except OSError:
            return False
        return stats.get(b"pid") == b"%d" % self.proc.pid

    def stderr_text(self):
        """Everything the server wrote to stderr so far."""
        return self._log_bytes().decode(errors="replace")

    def _log_bytes(self):
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def busy(self):
        """True while one of the server's threads is running or waiting for a CPU.

        A server that has been handed bytes is busy until it has read them, acted on them and
        written its reply: its threads sleep (in epoll_wait, or on a lock whose holder sleeps too)
        only once it has nothing left to do. Tests use this to wait for a reply on a loaded
        machine instead of guessing how long a silence means "done"."""
        if not self.alive():
            return False
        try:
            tids = os.listdir("/proc/%d/task" % self.proc.pid)
        except OSError:
            return False
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (self.proc.pid, tid)) as f:
                    stat = f.read()
            except OSError:
                continue  # the thread just exited
            # "<tid> (<comm>) <state> ...": comm may contain spaces and parentheses.
            if stat[stat.rindex(")") + 2:][:1] in ("R", "D"):
                return True
        return False

    def clock(self):
        """The server's own clock, in Unix seconds (`stats` time): what its expiry sees."""
        reply = ask(self.port, b"stats\r\n", b"END\r\n", 10.0)
        for line in reply.split(b"\r\n"):
            if line.startswith(b"STAT time "):
                return int(line.split()[2])
        raise AssertionError("no STAT time in %r" % reply[-200:])

    def wait_clock(self, until, limit=30.0):
        """Waits until the server's clock reads at least `until` (Unix seconds).

        Both memcached and tinycached tick their clock once a second from a timer, which a
        loaded machine may run late: a test that needs time to have passed for the server waits
        for the server's clock, never for a guessed number of seconds. Fails after `limit`
        seconds (a clock that stopped)."""
        deadline = time.monotonic() + limit
        while True:
            now = self.clock()
            if now >= until:
                return now
            if time.monotonic() > deadline:
                raise AssertionError("server clock stuck at %d, waiting for %d" % (now, until))
            time.sleep(0.05)

    def stop(self):
        stop_process(self.proc)
        if self.proc:
            self.log.close()

    def connect(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def preset_args():
    """Flags that select the preset under test (none for the default)."""
    return ["-o", "preset=" + PRESET] if PRESET else []


def reference_args():
    """Flags that make memcached promise what the preset does."""
    return ["-C"] if PRESET_KNOBS.get("cas") == "off" else []


def tinycached(args=()):
    return Server(TINYCACHED, preset_args() + list(args))


def reference(args=()):
    return Server(REFERENCE_MEMCACHED, reference_args() + list(args))


def read_preset_knobs(binary, name):
    out = subprocess.run([binary, "--list-presets"], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        fields = line.split("#")[0].split()
        if fields and fields[0] == name:
            return dict(f.split("=", 1) for f in fields[1:])
    raise SystemExit("unknown preset %r; --list-presets says:\n%s" % (name, out))


def main():
    """Parses --tinycached PATH [--preset NAME], then runs the calling module's unittest tests."""
    global TINYCACHED, PRESET, PRESET_KNOBS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--tinycached", required=True)
    parser.add_argument("--preset", default=None)
    args, rest = parser.parse_known_args()
    TINYCACHED = os.path.abspath(args.tinycached)
    if args.preset:
        PRESET = args.preset
        PRESET_KNOBS = read_preset_knobs(TINYCACHED, PRESET)
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)
