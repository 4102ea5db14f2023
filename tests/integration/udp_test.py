"""UDP (-U) against the real binary: memcached 1.6.18's frame, datagram by datagram.

Run as
    /usr/bin/python3 tests/integration/udp_test.py --tinycached build/server/tinycached

Every datagram carries an 8-byte header: request id, sequence number, datagram count, reserved
(16 bits each, network order). The tests talk to 127.0.0.1 only, where UDP loses nothing but
what overflows a receive buffer, so the client's is made large (SO_RCVBUFFORCE as root) and
every expectation is exact: a reply is read datagram by datagram, each with a timeout that only
tells "never" from "late", and where the number of datagrams is not known in advance a sentinel
request (`mn`, with its own id) follows: a server with one worker (-t 1) answers datagrams in the
order they come, so everything before the sentinel's MN is the reply to the request before it,
and nothing there means the request was answered with nothing.

The differential test plays the same datagrams to Debian's memcached (skipped without it) and
compares every reply datagram, header and payload, and the stats counters they move.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PATIENCE = 10.0  # seconds a datagram may take to arrive before the test calls it lost
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SENTINEL_ID = 0xBEEF
MAX_DATA = 1400 - 8  # memcached's UDP_MAX_PAYLOAD_SIZE less the header


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def header(request_id, seq=0, total=1, reserved=0):
    return struct.pack(">HHHH", request_id, seq, total, reserved)


def bin_request(opcode, key=b"", extras=b"", value=b"", opaque=0xabcd):
    return struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0,
                       len(key) + len(extras) + len(value), opaque, 0) + extras + key + value


class UdpServer(harness.Server):
    """A harness.Server that also serves UDP (-U) on a free port; `args` may not name -U."""

    def __init__(self, binary, args=()):
        super().__init__(binary, list(args))
        self.udp_port = free_udp_port()
        self.argv += ["-U", str(self.udp_port)]

    def start(self, attempts=3):
        for attempt in range(attempts):
            try:
                return self._start_once()
            except harness.PortTaken:  # the TCP or the UDP port
                if attempt == attempts - 1:
                    raise
                self.port, self.udp_port = harness.free_port(), free_udp_port()
                self.argv[self.argv.index("-p") + 1] = str(self.port)
                self.argv[len(self.argv) - 1] = str(self.udp_port)
        return self


class Client:
    """A UDP socket talking to one server's -U port."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        except OSError:  # not root: as much as net.core.rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.settimeout(PATIENCE)

    def close(self):
        self.sock.close()

    def send(self, datagram):
        self.sock.sendto(datagram, ("127.0.0.1", self.port))

    def receive(self):
        """The next datagram: ((id, seq, total, reserved), payload)."""
        data = self.sock.recv(1 << 16)
        assert len(data) >= 8, "a datagram without a header: %r" % data
        return struct.unpack(">HHHH", data[:8]), data[8:]

    def receive_n(self, n):
        return [self.receive() for _ in range(n)]

    def until_sentinel(self):
        """Sends the sentinel and returns every datagram that arrives before its reply."""
        self.send(header(SENTINEL_ID) + b"mn\r\n")
        got = []
        while True:
            h, payload = self.receive()
            if h == (SENTINEL_ID, 0, 1, 0) and payload == b"MN\r\n":
                return got
            got.append((h, payload))

    def exchange(self, datagram):
        """Sends `datagram`; returns its whole reply (needs a server with one worker)."""
        self.send(datagram)
        return self.until_sentinel()

    def request(self, request_id, payload, datagrams):
        """Sends one request and returns the `datagrams` datagrams it is answered with."""
        self.send(header(request_id) + payload)
        return self.receive_n(datagrams)


def reassemble(datagrams, request_id):
    """One response's payload from its datagrams, in any order: checks the id, that the
    sequence numbers are 0..total-1 once each and that every datagram states the same total."""
    total = datagrams[0][0][2]
    assert all(h[0] == request_id and h[2] == total and h[3] == 0 for h, _ in datagrams), \
        [h for h, _ in datagrams]
    by_seq = {h[1]: payload for h, payload in datagrams}
    assert sorted(by_seq) == list(range(total)), sorted(by_seq)
    assert all(len(by_seq[s]) == MAX_DATA for s in range(total - 1))
    return b"".join(by_seq[s] for s in range(total))


def stats(server, sub=b""):
    reply = harness.ask(server.port, b"stats%s\r\n" % (b" " + sub if sub else b""), b"END\r\n",
                        PATIENCE)
    out = {}
    for line in reply.decode().split("\r\n"):
        if line.startswith("STAT "):
            name, value = line[5:].split(" ", 1)
            out[name] = value
    return out


def tcp_set(server, key, value):
    reply = harness.ask(server.port, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value),
                        b"\r\n", PATIENCE)
    assert reply == b"STORED\r\n", reply


def udp_sockets_of(pid):
    """The UDP sockets process `pid` holds, from /proc (the socket inodes of its descriptors
    that /proc/net/udp and udp6 list)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    found.append(fields[1])  # local address:port, hex
    return found


class UdpTest(unittest.TestCase):
    maxDiff = None

    def serve(self, args=()):
        s = UdpServer(harness.TINYCACHED, harness.preset_args() + list(args)).start()
        self.addCleanup(s.stop)
        c = Client(s.udp_port)
        self.addCleanup(c.close)
        return s, c

    def test_commands_answer_with_the_request_id_in_one_datagram_each(self):
        s, c = self.serve()
        before = stats(s)
        self.assertEqual(c.request(1, b"set k 5 0 3\r\nabc\r\n", 1), [((1, 0, 1, 0), b"STORED\r\n")])
        self.assertEqual(c.request(0xFFFF, b"get k\r\n", 1),
                         [((0xFFFF, 0, 1, 0), b"VALUE k 5 3\r\nabc\r\nEND\r\n")])
        self.assertEqual(c.request(0, b"set n 0 0 2\r\n41\r\n", 1), [((0, 0, 1, 0), b"STORED\r\n")])
        self.assertEqual(c.request(2, b"incr n 1\r\n", 1), [((2, 0, 1, 0), b"42\r\n")])
        # Each key of a multi-get is a response of its own (sequence 0 of 1), END joins the last.
        self.assertEqual(c.request(3, b"get k nope n\r\n", 2),
                         [((3, 0, 1, 0), b"VALUE k 5 3\r\nabc\r\n"),
                          ((3, 0, 1, 0), b"VALUE n 0 2\r\n42\r\nEND\r\n")])
        # So is each command of a datagram.
        self.assertEqual(c.request(4, b"delete k\r\ndelete k\r\nmn\r\n", 3),
                         [((4, 0, 1, 0), b"DELETED\r\n"), ((4, 0, 1, 0), b"NOT_FOUND\r\n"),
                          ((4, 0, 1, 0), b"MN\r\n")])
        self.assertEqual(c.request(5, b"mg n v k\r\n", 1), [((5, 0, 1, 0), b"VA 2 kn\r\n42\r\n")])
        self.assertEqual(c.request(6, b"get k\r\n", 1), [((6, 0, 1, 0), b"END\r\n")])
        # -R (20): a datagram's first 21 commands are a batch, then 20 each; the worker turns
        # to its other work between them (conn_yields), and every reply comes.
        self.assertEqual(c.request(7, b"mg k\r\n" * 50, 50), [((7, 0, 1, 0), b"EN\r\n")] * 50)
        # What UDP did shows in `stats` as it would over TCP.
        after = stats(s)
        for name, delta in (("cmd_get", 56), ("get_hits", 4), ("get_misses", 52), ("cmd_set", 2),
                            ("delete_hits", 1), ("delete_misses", 1), ("incr_hits", 1),
                            ("conn_yields", 2)):
            self.assertEqual(int(after[name]) - int(before[name]), delta, name)
        # And TCP is served beside it.
        self.assertEqual(harness.ask(s.port, b"get n\r\n", b"END\r\n", PATIENCE),
                         b"VALUE n 0 2\r\n42\r\nEND\r\n")

    def test_a_large_value_comes_in_datagrams_of_1400_bytes_in_sequence(self):
        s, c = self.serve()
        value = bytes(range(256)) * 400  # 102400 bytes
        tcp_set(s, b"big", value)
        reply = b"VALUE big 0 %d\r\n%s\r\nEND\r\n" % (len(value), value)
        total = (len(reply) + MAX_DATA - 1) // MAX_DATA
        datagrams = c.request(77, b"get big\r\n", total)
        self.assertEqual(total, 74)
        self.assertTrue(all(len(p) + 8 <= 1400 for _, p in datagrams))
        self.assertEqual(reassemble(datagrams, 77), reply)
        # Two of them: a response each, each with its own sequence numbers and count, END with
        # the last; a small value between them stays in a datagram of its own.
        tcp_set(s, b"small", b"x")
        one = b"VALUE big 0 %d\r\n%s\r\n" % (len(value), value)
        n1 = (len(one) + MAX_DATA - 1) // MAX_DATA
        datagrams = c.request(78, b"get big small big\r\n", n1 + 1 + total)
        self.assertEqual(reassemble(datagrams[:n1], 78), one)
        self.assertEqual(datagrams[n1], ((78, 0, 1, 0), b"VALUE small 0 1\r\nx\r\n"))
        self.assertEqual(reassemble(datagrams[n1 + 1:], 78), reply)

    def test_bad_datagrams_are_dropped_and_the_server_goes_on(self):
        s, c = self.serve(["-t", "1"])
        tcp_set(s, b"k", b"v")
        get = b"get k\r\n"
        value = ((9, 0, 1, 0), b"VALUE k 0 1\r\nv\r\nEND\r\n")
        for bad in (b"", b"\x00", b"\x00\x01\x00\x00\x00\x01\x00",  # shorter than the header
                    header(9),                                      # a header alone
                    header(9, total=2) + get,                       # one of two datagrams
                    header(9, seq=1, total=2) + get,
                    header(9, total=0) + get,
                    header(9, total=0x101) + get,
                    header(9) + b"get k",                           # no newline
                    header(9) + b"set k 0 0 10\r\nabc",             # half a data block
                    header(9) + b"set j 0 0 2000000\r\n" + b"x" * 100,  # too large
                    header(9) + b"\x80\x00\x00\x05",                # half a binary header
                    header(9) + b"\xff" * 3000,                     # a line too long
                    header(9) + b"x" * 65000):
            with self.subTest(bad=bad[:24]):
                got = c.exchange(bad)
                if b"2000000" in bad:  # refused with memcached's error, the rest discarded
                    self.assertEqual(got, [((9, 0, 1, 0),
                                            b"SERVER_ERROR object too large for cache\r\n")])
                else:
                    self.assertEqual(got, [])
                # Nothing carries over to the next datagram.
                self.assertEqual(c.exchange(header(9) + get), [value])
        # The header's sequence number and reserved field are not looked at (memcached's rule).
        self.assertEqual(c.exchange(header(9, seq=5) + get), [value])
        self.assertEqual(c.exchange(header(9, reserved=1) + get), [value])
        self.assertTrue(s.alive())
        self.assertEqual(harness.ask(s.port, get, b"END\r\n", PATIENCE), value[1])

    def test_every_worker_serves_the_socket(self):
        s, c = self.serve(["-t", "4"])
        tcp_set(s, b"k", b"v")
        for i in range(200):
            self.assertEqual(c.request(i, b"get k\r\n", 1),
                             [((i, 0, 1, 0), b"VALUE k 0 1\r\nv\r\nEND\r\n")])
        # Four descriptors of the one socket, one per worker, listed as memcached lists them.
        conns = stats(s, b"conns")
        udp_fds = sorted(int(k.split(":")[0]) for k, v in conns.items() if k.endswith(":UDP"))
        self.assertEqual(len(udp_fds), 4)
        for fd in udp_fds:
            self.assertEqual(conns["%d:addr" % fd], "udp:127.0.0.1:%d" % s.udp_port)
            self.assertEqual(conns["%d:state" % fd], "conn_read")
            self.assertNotIn("%d:listen_addr" % fd, conns)
        self.assertEqual(len(udp_sockets_of(s.proc.pid)), 1)  # dup()s: one socket
        settings = stats(s, b"settings")
        self.assertEqual(settings["udpport"], str(s.udp_port))
        self.assertEqual(settings["num_threads_per_udp"], "4")
        # curr_connections counts each (memcached's rule): the UDP four and the one asking.
        # Earlier connections may still be closing: wait for the count to settle.
        deadline = time.monotonic() + 30
        while stats(s)["curr_connections"] != "5":
            self.assertLess(time.monotonic(), deadline, stats(s)["curr_connections"])
            time.sleep(0.05)

    def test_a_huge_reply_is_sent_in_bounded_memory(self):
        # 100 values of 1 MB in one multi-get: a 100 MB reply. It goes out a stretch at a time
        # with the values sent from their items, so the server's peak memory (VmHWM) grows by
        # far less than the reply. Nobody reads it: loopback drops what overflows the client's
        # buffer, which the server cannot tell. A second client's sentinel, answered only once
        # the multi-get is (one worker), says when it is over.
        s, c = self.serve(["-t", "1"])
        tcp_set(s, b"big", b"v" * 1000000)
        peak_before = vm_hwm_kb(s.proc.pid)
        c.send(header(5) + b"get " + b" ".join([b"big"] * 100) + b"\r\n")
        other = Client(s.udp_port)
        self.addCleanup(other.close)
        self.assertEqual(other.until_sentinel(), [])
        grown = vm_hwm_kb(s.proc.pid) - peak_before
        self.assertLess(grown, 16 << 10, "peak memory grew by %d KiB" % grown)
        self.assertTrue(s.alive())


def vm_hwm_kb(pid):
    """The peak resident memory of process `pid`, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


class UdpOffTest(unittest.TestCase):
    """-U 0, the default, and -s leave UDP off; -U's port is checked as -p's is."""

    def assert_no_udp(self, pid, udp_port):
        self.assertEqual(udp_sockets_of(pid), [])
        # Nothing bound there: the kernel answers a datagram with "port unreachable".
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(PATIENCE)
            s.connect(("127.0.0.1", udp_port))
            s.send(header(1) + b"version\r\n")
            with self.assertRaises(ConnectionRefusedError):
                s.recv(100)

    def test_off_by_default(self):
        s = harness.tinycached()
        i = s.argv.index("-U")
        del s.argv[i:i + 2]  # the harness passes -U 0; here no -U at all
        with s:
            self.assertEqual(stats(s, b"settings")["udpport"], "0")
            self.assert_no_udp(s.proc.pid, s.port)

    def test_a_unix_socket_means_no_udp(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            udp_port = free_udp_port()
            argv = [harness.TINYCACHED, "-s", path, "-U", str(udp_port)]
            if os.geteuid() == 0:
                argv += ["-u", "root"]
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self.assertTrue(harness.wait_for(proc, lambda: os.path.exists(path), PATIENCE))
                self.assert_no_udp(proc.pid, udp_port)
            finally:
                harness.stop_process(proc)

    def test_udp_port_without_p_serves_tcp_there_too(self):
        # memcached's rule, for both: -U <port> without -p listens on TCP <port> as well.
        for binary in (harness.TINYCACHED, harness.REFERENCE_MEMCACHED):
            if not os.path.exists(binary):
                continue
            with self.subTest(binary=binary):
                port = free_udp_port()
                argv = [binary, "-U", str(port), "-l", "127.0.0.1"]
                if os.geteuid() == 0:
                    argv += ["-u", "root"]
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    def answers():
                        try:
                            return harness.ask(port, b"version\r\n", b"\r\n", 1.0)
                        except OSError:
                            return False
                    if not harness.wait_for(proc, answers, PATIENCE):
                        self.skipTest("port %d was taken" % port)  # by another process
                    c = Client(port)
                    self.addCleanup(c.close)
                    self.assertEqual(c.request(3, b"mn\r\n", 1), [((3, 0, 1, 0), b"MN\r\n")])
                finally:
                    harness.stop_process(proc)

    def test_bad_ports_are_refused(self):
        for port in ("70000", "-2", "x", ""):
            with self.subTest(port=port):
                r = subprocess.run([harness.TINYCACHED, "-U", port], capture_output=True,
                                   text=True, timeout=PATIENCE)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip())


# The differential cases: (name, datagram), played in order to one server of each kind. Their
# replies are compared datagram for datagram with memcached's. A case must leave memcached in no
# half-read state (it carries one over to the next datagram, and would swallow the sentinel).
def cases():
    big = b"x" * 5000
    return [
        ("set", header(1) + b"set a 5 0 3\r\nabc\r\n"),
        ("get", header(2) + b"get a\r\n"),
        ("get miss", header(3) + b"get zz\r\n"),
        ("multi-get hit miss hit", header(4) + b"get a zz a\r\n"),
        ("multi-get hit miss", header(5) + b"get a zz\r\n"),
        ("multi-get miss hit", header(6) + b"get zz a\r\n"),
        ("multi-get misses", header(7) + b"get zz yy\r\n"),
        ("gets", header(8) + b"gets a\r\n"),
        ("gat", header(9) + b"gat 100 a zz\r\n"),
        ("touch", header(10) + b"touch a 100\r\ntouch zz 100\r\n"),
        ("commands", header(11) + b"set b 0 0 1\r\nx\r\nget b\r\nappend b 0 0 1\r\ny\r\n"
                                  b"prepend b 0 0 1\r\nw\r\nget b\r\nadd b 0 0 1\r\nz\r\n"
                                  b"replace zz 0 0 1\r\nz\r\n"),
        ("incr decr", header(12) + b"set n 0 0 1\r\n5\r\nincr n 3\r\ndecr n 100\r\nincr zz 1\r\n"),
        ("delete", header(13) + b"delete n\r\ndelete n\r\n"),
        ("cas", header(14) + b"cas a 0 0 1 999999\r\nz\r\ncas zz 0 0 1 1\r\nz\r\n"),
        ("noreply", header(15) + b"set q 0 0 1 noreply\r\nx\r\ndelete q noreply\r\n"),
        ("noreply, then a missed first key", header(16) + b"set q 0 0 1 noreply\r\nx\r\n"
                                                          b"get zz a\r\n"),
        ("errors", header(17) + b"bogus\r\nget\r\nset a b c d\r\nincr a\r\n"),
        ("meta", header(18) + b"ms m 2 T0 F3\r\nhi\r\nmg m v k f t\r\nmg zz v\r\n"
                              b"ma zz N0 J7\r\nma zz v\r\nmd m\r\nmd m\r\nmn\r\n"),
        ("meta quiet", header(19) + b"mg a v q\r\nmg zz v q\r\nms m 1 q\r\nx\r\nmd zz q\r\nmn\r\n"),
        ("meta quiet, then a missed first key", header(20) + b"mg zz v q\r\nget zz a\r\n"),
        # A get's reply and mn's are written out at once: what follows them leads again.
        ("gets back to back", header(46) + b"get zz a\r\nget zz a\r\ngets zz\r\n"),
        ("mn, then a missed first key", header(47) + b"mn\r\nget zz a\r\n"),
        ("meta, then a missed first key", header(48) + b"mg a v\r\nget zz a\r\n"),
        ("-R: 21 commands, one batch", header(21) + b"mg a\r\n" * 20 + b"get zz a\r\n"),
        ("-R: 22 commands, two batches", header(22) + b"mg a\r\n" * 21 + b"get zz a\r\n"),
        ("-R: 42 commands, three batches", header(23) + b"mg a\r\n" * 41 + b"get zz a\r\n"),
        ("flush_all", header(27) + b"flush_all\r\nget a\r\nset a 5 0 3\r\nabc\r\n"),
        ("binary getk, getkq miss, noop",
         header(28) + bin_request(0x0c, b"a") + bin_request(0x0d, b"zz") + bin_request(0x0a)),
        ("binary getq miss first", header(29) + bin_request(0x09, b"zz") + bin_request(0x09, b"a")),
        ("binary setq", header(30) + bin_request(0x11, b"b", struct.pack(">II", 0, 0), b"val")),
        ("binary get", header(31) + bin_request(0x00, b"b")),
        # Binary errors and noop are written out at once, unless a body is swallowed first.
        ("binary get miss, then a quiet miss first",
         header(49) + bin_request(0x00, b"zz") + bin_request(0x09, b"zz") + bin_request(0x09, b"a")),
        ("binary getk miss, then a quiet miss first",
         header(50) + bin_request(0x0c, b"zz") + bin_request(0x09, b"zz") + bin_request(0x09, b"a")),
        ("binary noop, then a quiet miss first",
         header(51) + bin_request(0x0a) + bin_request(0x09, b"zz") + bin_request(0x09, b"a")),
        ("binary unknown command with a body, then a quiet miss first",
         header(52) + struct.pack(">BBHBBHIIQ", 0x80, 0x50, 0, 0, 0, 0, 3, 0, 0) + b"xyz"
         + bin_request(0x09, b"zz") + bin_request(0x09, b"a")),
        ("binary incrq, deleteq miss",
         header(53) + bin_request(0x15, b"zz", struct.pack(">QQI", 1, 5, 0))
         + bin_request(0x14, b"nope") + bin_request(0x09, b"zz") + bin_request(0x09, b"a")),
        ("text after binary", header(34) + b"get b\r\n"),
        ("set a value of 5000 bytes", header(35) + b"set big 0 0 5000\r\n" + big + b"\r\n"),
        ("its reply: 4 datagrams", header(36) + b"get big\r\n"),
        ("three responses of several datagrams", header(37) + b"get big a big\r\n"),
        ("request id 0", header(0) + b"mn\r\n"),
        ("request id 65535", header(0xFFFF) + b"mn\r\n"),
        ("sequence number ignored", header(38, seq=3) + b"mn\r\n"),
        ("reserved field ignored", header(39, reserved=0x1234) + b"mn\r\n"),
        ("two datagrams announced: dropped", header(40, total=2) + b"get a\r\n"),
        ("no datagrams announced: dropped", header(41, total=0) + b"get a\r\n"),
        ("a header alone: dropped", header(42)),
        ("shorter than a header: dropped", b"\x00\x2b\x00"),
        ("newline alone", header(44) + b"\n"),
        ("a long multi-get", header(45) + b" ".join([b"get"] + [b"k%d" % i for i in range(300)])
         + b" a\r\n"),
    ]


# Cases that each need a fresh server: after a quit memcached's UDP socket keeps closing, and
# from then on drops the rest of every datagram after its first write.
QUIT_CASES = [
    ("quit after a reply", header(24) + b"mn\r\nquit\r\nmn\r\n"),
    ("quit first", header(25) + b"quit\r\nmn\r\n"),
    ("quit after missed keys", header(26) + b"get zz yy\r\nquit\r\n"),
    ("quit after a reply that is not written out", header(54) + b"mg a\r\nquit\r\n"),
    ("binary quit", header(32) + bin_request(0x07)),
    ("binary quitq", header(33) + bin_request(0x17)),
]


# (Not conn_yields: memcached counts one also where a batch ends with nothing left to run, as
# tinycached over TCP does not either.)
COMPARED_STATS = """cmd_get cmd_set cmd_touch get_hits get_misses delete_hits delete_misses incr_hits
incr_misses decr_hits decr_misses cas_hits cas_misses cas_badval touch_hits touch_misses
bytes_read""".split()


@unittest.skipUnless(os.path.exists(harness.REFERENCE_MEMCACHED),
                     "needs Debian's memcached (%s)" % harness.REFERENCE_MEMCACHED)
class UdpDifferentialTest(unittest.TestCase):
    """The same datagrams to memcached and tinycached (each -t 1): the same reply datagrams."""
    maxDiff = None

    def play(self, binary, args, datagrams):
        s = UdpServer(binary, list(args) + ["-t", "1"]).start()
        self.addCleanup(s.stop)
        c = Client(s.udp_port)
        self.addCleanup(c.close)
        before = stats(s)
        replies = [c.exchange(datagram) for datagram in datagrams]
        after = stats(s)
        counters = {name: int(after[name]) - int(before[name]) for name in COMPARED_STATS}
        rows = {}
        for key, value in stats(s, b"conns").items():
            fd, field = key.split(":", 1)
            rows.setdefault(fd, {})[field] = value.replace(str(s.udp_port), "PORT")
        udp_rows = [sorted((k, v) for k, v in row.items() if k != "secs_since_last_cmd")
                    for row in rows.values() if "UDP" in row]
        return replies, counters, udp_rows

    def both(self, named_datagrams):
        datagrams = [d for _, d in named_datagrams]
        return (self.play(harness.REFERENCE_MEMCACHED, harness.reference_args(), datagrams),
                self.play(harness.TINYCACHED, harness.preset_args(), datagrams))

    def test_reply_datagrams_match_memcached(self):
        ref, mine = self.both(cases())
        for (name, _), theirs, ours in zip(cases(), ref[0], mine[0]):
            with self.subTest(case=name):
                self.assertEqual(ours, theirs)
        self.assertEqual(mine[1], ref[1])  # the stats counters the datagrams moved
        self.assertEqual(mine[2], ref[2])  # stats conns' lines for the UDP socket

    def test_quit_matches_memcached(self):
        for name, datagram in QUIT_CASES:
            with self.subTest(case=name):
                ref, mine = self.both([(name, datagram)])
                self.assertEqual(mine[0], ref[0])


if __name__ == "__main__":
    harness.main()
