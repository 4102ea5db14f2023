"""memcached's port file and ephemeral ports (its t/issue_67.t), against the real binary.

Run as
    /usr/bin/python3 tests/integration/port_file_test.py --tinycached build/server/tinycached

With MEMCACHED_PORT_FILENAME=<file> in its environment, memcached writes one line per
listening socket once they are bound ("TCP INET: 41235", "UDP INET6: 41236"; TCP first), to
<file>.lck renamed to <file>, and nothing with -s. `-p -1` / `-U -1` ask the kernel for a port;
`-p 0` / `-U 0` turn TCP / UDP off; `-U <port>` without -p moves TCP along (to a port of its
own for -1). Each case starts the server with a file name of its own, waits for the file (a
bounded poll: the limit only tells "never" from "late"), checks the lines, and talks to the
ports they name: a set and get over TCP, a get over UDP, `stats settings` tcpport/udpport.
The same cases run against Debian's memcached (skipped without it), and the two files must
have the same shape: the same lines in the same order, fixed ports equal, picked ones both
picked. Every server listens on 127.0.0.1 (and ::1 for the IPv6 case) only. Run by root, both
get `-u nobody`: the file is written as that user, so it must be that user's.
"""
import os
import pwd
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MEMCACHED = harness.REFERENCE_MEMCACHED
PATIENCE = 30.0  # seconds a server may take to write its file or answer


def fixed_ports(n):
    """n distinct ports free for TCP and UDP on 127.0.0.1 now, all below the kernel's
    ephemeral range, so that no port the kernel picks for -1 can be mistaken for one of them."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    out = []
    while len(out) < n:
        port = random.randrange(max(1025, low - 16384), low)
        if port in out:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        out.append(port)
    return out


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def tcp_ask(port, request, end, family=socket.AF_INET):
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    return harness.ask(port, request, end, PATIENCE, host=host)


def udp_ask(port, request, family=socket.AF_INET):
    """One request in one datagram (memcached's 8-byte frame); the reply's payload."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(PATIENCE)
        s.sendto(struct.pack(">HHHH", 7, 0, 1, 0) + request, (host, port))
        data = s.recv(65536)
    request_id, seq, total, _ = struct.unpack(">HHHH", data[:8])
    assert (request_id, seq, total) == (7, 0, 1), data[:8]
    return data[8:]


def stats(port, what=b""):
    reply = tcp_ask(port, b"stats " + what + b"\r\n", b"END\r\n")
    out = {}
    for line in reply.split(b"\r\n"):
        f = line.split(b" ")
        if len(f) == 3 and f[0] == b"STAT":
            out[f[1].decode()] = f[2].decode()
    return out


class Started:
    """A server started with MEMCACHED_PORT_FILENAME set; stopped on exit."""

    count = 0  # every start gets a file name of its own (memcached leaves a failed start's .lck)

    def __init__(self, binary, args, workdir, port_file=None):
        Started.count += 1
        self.binary = binary
        self.port_file = port_file or os.path.join(workdir, "ports-%d" % Started.count)
        self.log = tempfile.TemporaryFile()
        argv = [binary] + list(args)
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        env = dict(os.environ, MEMCACHED_PORT_FILENAME=self.port_file)
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self.log,
                                     cwd=workdir)

    def stderr_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_for_file(self):
        """The file's lines once it exists; fails if the server exits or never writes it
        (PortTaken if it could not bind a port of this test's choosing)."""
        deadline = time.monotonic() + PATIENCE
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                if "failed to listen" in self.stderr_text():
                    raise harness.PortTaken(self.argv)
                raise AssertionError("%s exited with %d before writing %s: %s" % (
                    self.argv, self.proc.returncode, self.port_file, self.stderr_text()))
            if time.monotonic() > deadline:
                raise AssertionError("%s wrote no %s in %.0f s" % (self.argv, self.port_file,
                                                                   PATIENCE))
            time.sleep(0.01)
        with open(self.port_file) as f:
            return f.read().splitlines()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        harness.stop_process(self.proc)
        self.log.close()


def parse(lines):
    """[("TCP INET", 41235), ...] from the file's lines, which must all be well formed."""
    out = []
    for line in lines:
        kind, sep, port = line.partition(": ")
        assert sep and kind in ("TCP INET", "TCP INET6", "UDP INET", "UDP INET6"), line
        assert port.isdigit() and 0 < int(port) < 65536, line
        out.append((kind, int(port)))
    return out


class PortFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tinycached-port-file-")
        os.chmod(self.dir, 0o777)  # the -u user writes the file here

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_case(self, binary, template):
        """Starts `binary` with the arguments of `template`, where "{tcp}" and "{udp}" stand
        for free ports chosen here (fixed_ports(); chosen again if another process takes one
        first), checks its file and talks to every port in it. Returns the file's shape, each
        line with "{tcp}" or "{udp}" for those ports and "picked" for the kernel's, and
        `stats settings` tcpport and udpport the same way (none without TCP)."""
        for attempt in range(3):
            chosen = dict(zip(("{tcp}", "{udp}"), fixed_ports(2)))
            args = [str(chosen.get(a, a)) for a in template]
            try:
                return self._run_once(binary, args, {v: k for k, v in chosen.items()})
            except harness.PortTaken:
                if attempt == 2:
                    raise

    def _run_once(self, binary, args, names):
        with Started(binary, args, self.dir) as s:
            lines = s.wait_for_file()
            entries = parse(lines)
            self.assertFalse(os.path.exists(s.port_file + ".lck"), "the .lck was left behind")
            if os.geteuid() == 0:
                self.assertEqual(os.stat(s.port_file).st_uid, pwd.getpwnam("nobody").pw_uid)
            tcp = [(k, p) for k, p in entries if k.startswith("TCP")]
            udp = [(k, p) for k, p in entries if k.startswith("UDP")]
            self.assertEqual(entries, tcp + udp, "TCP lines come first")
            for i, (kind, port) in enumerate(entries):
                family = socket.AF_INET6 if kind.endswith("INET6") else socket.AF_INET
                key = b"k%d" % i
                if kind.startswith("TCP"):
                    reply = tcp_ask(port, b"set %s 0 0 5\r\nhello\r\nget %s\r\n" % (key, key),
                                    b"END\r\n", family)
                    self.assertEqual(reply, b"STORED\r\nVALUE %s 0 5\r\nhello\r\nEND\r\n" % key)
                else:
                    # Stored over UDP too, so that a server with no TCP is checked the same way.
                    self.assertEqual(udp_ask(port, b"set %s 0 0 2\r\nhi\r\n" % key, family),
                                     b"STORED\r\n")
                    self.assertEqual(udp_ask(port, b"get %s\r\n" % key, family),
                                     b"VALUE %s 0 2\r\nhi\r\nEND\r\n" % key)
            settings = {}
            if tcp:
                self.assertEqual(stats(tcp[0][1])["pid"], str(s.proc.pid))
                got = stats(tcp[0][1], b"settings")
                settings = {k: names.get(int(got[k]), got[k]) for k in ("tcpport", "udpport")}
            self.assertIsNone(s.proc.poll(), s.stderr_text())
            return [(k, names.get(p, "picked")) for k, p in entries], settings

    def both(self, template):
        """The case on tinycached, then on memcached (if installed): the same shape and
        tcpport/udpport. Returns tinycached's."""
        mine = self.run_case(harness.TINYCACHED, template)
        if os.access(MEMCACHED, os.X_OK):
            theirs = self.run_case(MEMCACHED, template)
            self.assertEqual(mine, theirs, "tinycached %s, memcached %s" % (mine, theirs))
        return mine

    def test_tcp_ephemeral(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "-1"]),
                         ([("TCP INET", "picked")], {"tcpport": "-1", "udpport": "0"}))

    def test_udp_ephemeral_moves_tcp_to_a_port_of_its_own(self):
        shape, settings = self.both(["-l", "127.0.0.1", "-U", "-1"])
        self.assertEqual(shape, [("TCP INET", "picked"), ("UDP INET", "picked")])
        self.assertEqual(settings, {"tcpport": "-1", "udpport": "-1"})

    def test_fixed_udp_port_moves_tcp_to_it(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-U", "{udp}"]),
                         ([("TCP INET", "{udp}"), ("UDP INET", "{udp}")],
                          {"tcpport": "{udp}", "udpport": "{udp}"}))

    def test_fixed_tcp_port(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "{tcp}"]),
                         ([("TCP INET", "{tcp}")], {"tcpport": "{tcp}", "udpport": "0"}))

    def test_fixed_tcp_and_udp_ports(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "{tcp}", "-U", "{udp}"]),
                         ([("TCP INET", "{tcp}"), ("UDP INET", "{udp}")],
                          {"tcpport": "{tcp}", "udpport": "{udp}"}))

    def test_ephemeral_tcp_with_fixed_udp_and_the_reverse(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "-1", "-U", "{udp}"]),
                         ([("TCP INET", "picked"), ("UDP INET", "{udp}")],
                          {"tcpport": "-1", "udpport": "{udp}"}))
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "{tcp}", "-U", "-1"]),
                         ([("TCP INET", "{tcp}"), ("UDP INET", "picked")],
                          {"tcpport": "{tcp}", "udpport": "-1"}))

    def test_both_ephemeral(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "-1", "-U", "-1"]),
                         ([("TCP INET", "picked"), ("UDP INET", "picked")],
                          {"tcpport": "-1", "udpport": "-1"}))

    def test_udp_disabled(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "-1", "-U", "0"]),
                         ([("TCP INET", "picked")], {"tcpport": "-1", "udpport": "0"}))

    def test_tcp_disabled_leaves_udp_alone(self):
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "0", "-U", "-1"]),
                         ([("UDP INET", "picked")], {}))

    def test_nothing_to_listen_on_writes_an_empty_file(self):
        # -p 0 and no UDP: memcached runs on, listening nowhere, and writes an empty file.
        self.assertEqual(self.both(["-l", "127.0.0.1", "-p", "0"]), ([], {}))

    def test_each_listen_address_gets_a_port_of_its_own(self):
        shape, _ = self.both(["-l", "127.0.0.1:-1,127.0.0.1:-1", "-p", "{tcp}"])
        self.assertEqual(shape, [("TCP INET", "picked"), ("TCP INET", "picked")])
        # Two listening sockets on one address cannot share a port: both were picked.
        with Started(harness.TINYCACHED, ["-l", "127.0.0.1:-1,127.0.0.1:0"], self.dir) as s:
            entries = parse(s.wait_for_file())
            self.assertEqual(len(entries), 2)
            self.assertNotEqual(entries[0][1], entries[1][1])

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_lines(self):
        shape, _ = self.both(["-l", "127.0.0.1,[::1]", "-p", "-1", "-U", "-1"])
        self.assertEqual(shape, [("TCP INET", "picked"), ("TCP INET6", "picked"),
                                 ("UDP INET", "picked"), ("UDP INET6", "picked")])

    def test_unix_socket_writes_nothing(self):
        for binary in (harness.TINYCACHED, MEMCACHED):
            if not os.access(binary, os.X_OK):
                continue
            path = os.path.join(self.dir, "sock")
            with Started(binary, ["-s", path, "-p", "-1", "-U", "-1"], self.dir) as s:
                # Once it answers, it is past the point where it would have written the file.
                deadline = time.monotonic() + PATIENCE
                while True:
                    self.assertIsNone(s.proc.poll(), s.stderr_text())
                    try:
                        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                            c.settimeout(PATIENCE)
                            c.connect(path)
                            c.sendall(b"version\r\n")
                            if c.recv(100).startswith(b"VERSION "):
                                break
                    except OSError:
                        pass
                    self.assertLess(time.monotonic(), deadline, "no answer on " + path)
                    time.sleep(0.01)
                self.assertEqual(sorted(os.listdir(self.dir)), ["sock"], binary)

    def test_unwritable_file_is_reported_and_the_server_runs_on(self):
        missing = os.path.join(self.dir, "no-such-dir", "ports")
        errors = {}
        for binary in (harness.TINYCACHED, MEMCACHED):
            if not os.access(binary, os.X_OK):
                continue
            errors[binary] = self.first_error_line(binary, missing)
        self.assertEqual(errors[harness.TINYCACHED],
                         'Failed to open "%s.lck": No such file or directory' % missing)
        if MEMCACHED in errors:
            self.assertEqual(errors[harness.TINYCACHED], errors[MEMCACHED])

    def first_error_line(self, binary, port_file):
        """Starts `binary` on a free port with `port_file`; once it answers, the first line of
        its stderr."""
        for attempt in range(3):
            port = fixed_ports(1)[0]
            with Started(binary, ["-l", "127.0.0.1", "-p", str(port), "-U", "0"], self.dir,
                         port_file=port_file) as s:
                deadline = time.monotonic() + PATIENCE
                while s.proc.poll() is None:
                    try:
                        if stats(port).get("pid") == str(s.proc.pid):
                            return s.stderr_text().splitlines()[0]
                    except OSError:
                        pass
                    self.assertLess(time.monotonic(), deadline, "no answer on %d" % port)
                    time.sleep(0.01)
                if "failed to listen" not in s.stderr_text() or attempt == 2:
                    self.fail("%s exited: %s" % (s.argv, s.stderr_text()))

    def test_v_line_shows_the_picked_ports(self):
        with Started(harness.TINYCACHED, ["-v", "-l", "127.0.0.1", "-p", "-1", "-U", "-1"],
                     self.dir) as s:
            entries = parse(s.wait_for_file())
            self.assertEqual(stats(entries[0][1])["pid"], str(s.proc.pid))  # past the -v line
            self.assertRegex(s.stderr_text(), r": tcp:127\.0\.0\.1:%d udp:127\.0\.0\.1:%d, preset"
                             % (entries[0][1], entries[1][1]))


if __name__ == "__main__":
    harness.main()
