"""Bad input never crashes tinycached, corrupts an item or loses a stored one: random text and
binary garbage, oversize lines and values, invalid lengths, truncated data, keys over 250 bytes.

Run as
    /usr/bin/python3 tests/integration/robustness_test.py --tinycached build/server/tinycached

Every test starts its own server with 200 known items and checks them at the end
(robustness_fixture.py says how, and why no verdict depends on this machine's speed). Bad
clients (connection limits, slow and never-reading clients) are robustness_clients_test.py.
"""
import os
import random
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from robustness_fixture import (BAD_FORMAT, IO_TIMEOUT, MB, TOO_LARGE, Conn,  # noqa: E402
                               RobustnessFixture, close_with, only_error_lines,
                               recv_to_close, send_ignoring_reset, value_reply,
                               wait_connections, wait_idle)


class RobustnessTest(RobustnessFixture):
    # ------------------------------------------------------ random garbage
    # No flush_all/shutdown/cache_memlimit (would lose items legitimately) and no
    # verbosity (the harness never drains the server's stderr pipe).
    SAFE_TOKENS = [
        b"get ", b"gets ", b"set ", b"add ", b"replace ", b"append ", b"prepend ", b"cas ",
        b"incr ", b"decr ", b"touch ", b"gat ", b"gats ", b"delete ", b"version",
        b"stats", b"stats items", b"stats slabs", b"stats sizes", b"stats conns",
        b"mg ", b"ms ", b"ma ", b"mn", b"me ", b"md ", b"noreply", b" ", b"  ", b"\t",
        b"\r\n", b"\n", b"\r", b"\x00", b"\x00\r\n", b"\r\r\n", b"0", b"1", b"-1", b"250",
        b"4294967295", b"4294967296", b"18446744073709551615", b"18446744073709551616",
        b"99999999999999999999999", b"2097152", b"1048576", b"-9", b"v", b"T", b"q", b"k",
        b"b", b"O", b"N30", b"S10", b"F5", b"MS", b"ME",
    ]

    def garbage(self, rng, size):
        out = [bytes([rng.choice(b"abcdefghijklmnopqrstuvwxyz\r\n ")])]  # never 0x80 first
        n = 1
        while n < size:
            r = rng.random()
            if r < 0.35:
                piece = rng.randbytes(rng.randint(1, 64))
            elif r < 0.8:
                piece = rng.choice(self.SAFE_TOKENS)
            elif r < 0.95:
                # a random key in a namespace disjoint from the known items
                piece = b"g:" + bytes(rng.choice(b"abcxyz0189:_") for _ in range(rng.randint(0, 12)))
            else:
                piece = b"x" * rng.randint(200, 3000)
            out.append(piece)
            n += len(piece)
        return b"".join(out)

    def binary_garbage(self, rng, size):
        """Packets with the binary-protocol magic byte, random opcodes (never the
        flush opcodes 0x08/0x18), random lengths and bodies."""
        out = []
        n = 0
        while n < size:
            opcode = rng.choice([o for o in range(256) if o not in (0x08, 0x18)])
            keylen = rng.choice([0, 1, 5, 250, 251, rng.getrandbits(16)])
            extlen = rng.choice([0, 4, 8, 20, rng.getrandbits(8)])
            bodylen = rng.choice([keylen + extlen, rng.randint(0, 100),
                                  rng.getrandbits(32), 0])
            header = bytes([0x80, opcode]) + keylen.to_bytes(2, "big") + bytes([extlen, 0]) \
                + b"\x00\x00" + bodylen.to_bytes(4, "big") + rng.randbytes(4) + rng.randbytes(8)
            body = b"g:" + rng.randbytes(rng.randint(0, 80))
            out.append(header + body)
            n += len(header) + len(body)
        return b"".join(out)

    def spray(self, payloads):
        """Sends each payload on its own connection (all open at once), half-closes
        them, then drains replies until the server closes them or 10 s pass (whichever
        garbage kept one open, it is closed here then). Returns once the server has
        dropped them all: it has done all it will do with the garbage."""
        socks = []
        try:
            for _ in payloads:
                socks.append(self.server.connect(timeout=IO_TIMEOUT))
            for s, data in zip(socks, payloads):
                if send_ignoring_reset(s, data):
                    try:
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            sel = selectors.DefaultSelector()
            for s in socks:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            open_count = len(socks)
            deadline = time.monotonic() + 10
            while open_count and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.5):
                    try:
                        chunk = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_count -= 1
            sel.close()
        finally:
            for s in socks:
                s.close()
        wait_connections(self.server, 0)

    def test_random_garbage_on_many_connections(self):
        self.start()
        rng = random.Random(1)
        self.spray([self.garbage(rng, rng.randint(2000, 8000)) for _ in range(64)])
        self.assert_healthy()
        # pure random bytes, NULs included, with CRLF sprinkled in
        self.spray([bytes([rng.choice(b"abcdefgh")]) + rng.randbytes(rng.randint(1000, 6000))
                    .replace(b"\x80", b"\r\n") for _ in range(32)])
        self.assert_healthy()

    def test_binary_protocol_garbage(self):
        self.start()
        rng = random.Random(2)
        self.spray([self.binary_garbage(rng, rng.randint(500, 5000)) for _ in range(32)])
        self.assert_healthy()

    def test_garbage_between_valid_commands(self):
        """A connection that interleaves garbage lines with real commands stays in sync."""
        self.start()
        rng = random.Random(3)
        c = Conn(self.server)
        try:
            for i in range(100):
                junk = rng.randbytes(rng.randint(1, 200)).replace(b"\n", b"").replace(b"\r", b"")
                junk = b"j" + junk.replace(b"\x80", b"")
                c.send(junk + b"\r\n")
                reply = c.line()
                self.assertTrue(reply.startswith((b"ERROR", b"CLIENT_ERROR")), reply)
                key = b"robust:%04d" % rng.randrange(200)
                self.assertEqual(c.get_many([key]), {key: self.known[key]})
        finally:
            c.close()
        self.assert_healthy()

    # ------------------------------------------------------ oversize lines
    def test_oversize_line_without_newline_is_closed(self):
        # memcached 1.6: once more than 2048 bytes are buffered without a newline and
        # the line does not start with "get " / "gets ", the connection is closed
        # (no reply).  We accept error lines before the close, nothing else.
        self.start()
        for payload in (b"x" * 100 * 1024, b"set " + b"k" * 100 * 1024,
                        b"\x00" * 100 * 1024, b" " * 4000 + b"version"):
            s = self.server.connect(timeout=IO_TIMEOUT)
            try:
                send_ignoring_reset(s, payload)
                data, closed = recv_to_close(s, timeout=IO_TIMEOUT)
                self.assertTrue(closed, "server kept a %d-byte line without newline open"
                                % len(payload))
                self.assertTrue(only_error_lines(data), data[:200])
            finally:
                s.close()
        self.assert_healthy()

    def test_oversize_line_with_newline(self):
        # memcached answers a 10 KB garbage line that arrives in one read with
        # "ERROR" and keeps the connection; if the line is split across reads it may
        # close instead.  Either is fine; anything else (or a crash) is not.
        self.start()
        for payload in (b"y" * 10 * 1024, b"set " + b"k" * 10 * 1024 + b" 0 0 1",
                        b"get " + b"k" * 10 * 1024):
            s = self.server.connect(timeout=IO_TIMEOUT)
            try:
                send_ignoring_reset(s, payload + b"\r\nversion\r\n")
                buf = b""
                closed = False
                deadline = time.monotonic() + IO_TIMEOUT
                while not closed and time.monotonic() < deadline and not (
                        b"VERSION " in buf and buf.endswith(b"\r\n")):
                    more, closed = recv_to_close(s, timeout=0.2)
                    buf += more
                if closed:
                    self.assertTrue(only_error_lines(buf), buf[:200])
                else:
                    head, _, tail = buf.partition(b"VERSION ")
                    self.assertTrue(head and only_error_lines(head), buf[:200])
                    self.assertTrue(tail.endswith(b"\r\n") and b"\r\n" not in tail[:-2], buf)
            finally:
                s.close()
        self.assert_healthy()

    def test_huge_multiget_line_in_pieces(self):
        # memcached keeps buffering a line without newline if it is a get: multi-gets
        # are unbounded.  ~130 KB of keys, sent in 4 pieces; the server has read each
        # piece (and gone idle, waiting for more) before the next is sent.
        self.start()
        rng = random.Random(5)
        keys = []
        for i in range(12000):
            keys.append(b"robust:%04d" % rng.randrange(200) if i % 40 == 0
                        else b"miss:%07d" % i)
        line = b"get " + b" ".join(keys) + b"\r\n"
        expected = b"".join(value_reply(k, *self.known[k]) for k in keys if k in self.known) \
            + b"END\r\n"
        c = Conn(self.server)
        try:
            step = len(line) // 4 + 1
            for i in range(0, len(line), step):
                c.send(line[i:i + step])
                wait_idle(self.server)
            self.assertEqual(c.exactly(len(expected)), expected)
            c.version()
        finally:
            c.close()
        self.assert_healthy()

    # ----------------------------------------------------- oversize values
    def test_oversize_value_is_refused_and_swallowed(self):
        # memcached 1.6 with -I 1m: "set k 0 0 2097152" -> after reading (and
        # discarding) the 2 MB + CRLF it answers SERVER_ERROR object too large for
        # cache; the next command is processed normally.  The data block here is
        # made of "delete <known key> noreply" lines: a server that parsed it as
        # commands would lose known items.
        self.start()
        pattern = b"".join(b"delete robust:%04d noreply\r\n" % i for i in range(200))
        data = (pattern * (2 * MB // len(pattern) + 1))[:2 * MB]
        c = Conn(self.server)
        try:
            c.send(b"set toolarge 0 0 %d\r\n" % len(data))
            for i in range(0, len(data), 64 * 1024):
                c.send(data[i:i + 64 * 1024])
            c.send(b"\r\nversion\r\n")
            self.assertEqual(c.line(), TOO_LARGE)
            self.assertTrue(c.line().startswith(b"VERSION "))
            self.assertEqual(c.get_many([b"toolarge"]), {})
            # noreply variant: silent, still swallowed
            c.send(b"set toolarge 0 0 %d noreply\r\n" % len(data) + data + b"\r\n")
            c.version()
            self.assertEqual(c.get_many([b"toolarge"]), {})
            # a failed set of an oversize value removes the old item (memcached: "avoid
            # stale data persisting in cache because we failed alloc")
            self.assertEqual(c.store(b"stale", 1, b"old"), b"STORED\r\n")
            self.assertEqual(c.call(b"set stale 0 0 %d\r\n" % len(data) + data + b"\r\n"),
                             TOO_LARGE)
            self.assertEqual(c.get_many([b"stale"]), {})
            # ... but a failed add/append leaves it alone
            self.assertEqual(c.store(b"stale", 1, b"old"), b"STORED\r\n")
            for cmd in (b"add", b"append", b"prepend"):
                self.assertEqual(c.call(b"%s stale 0 0 %d\r\n" % (cmd, len(data)) + data
                                        + b"\r\n"), TOO_LARGE, cmd)
            self.assertEqual(c.get_many([b"stale"]), {b"stale": (1, b"old")})
        finally:
            c.close()
        self.assert_healthy()

    def test_invalid_lengths_are_not_swallowed(self):
        # negative, non-numeric or > INT_MAX-2 lengths: CLIENT_ERROR bad command line
        # format, and the next line is read as a command (nothing is swallowed).
        # (Not tested: 4294967296, which memcached 1.6.18 truncates to a 32-bit 0.)
        self.start()
        c = Conn(self.server)
        try:
            for n in (b"-1", b"2147483647", b"99999999999999999999", b"abc", b"1x"):
                self.assertEqual(c.call(b"set robust:0001 0 0 %s\r\n" % n), BAD_FORMAT, n)
                c.version()
        finally:
            c.close()
        self.assert_healthy()

    # ---------------------------------------------------- truncated input
    def test_truncated_data_then_close(self):
        # A set whose data block never completes must not touch the stored item.  Each
        # connection is closed (FIN or RST) once the server has read what was sent (it is
        # idle, waiting for the rest of the block); the items are checked once it has
        # noticed every close.
        self.start()
        rng = random.Random(6)
        cases = []
        for i in range(40):
            key = b"robust:%04d" % (i * 5)
            n = rng.randint(1, 200000)
            cut = rng.choice([0, 1, n // 2, n - 1, n, n + 1])  # n, n+1: CRLF missing/partial
            body = (rng.randbytes(n) + b"\r\n")[:cut]
            cases.append((b"set %s 7 0 %d\r\n" % (key, n) + body, i % 2 == 0))
        for i in range(10):
            n = rng.randint(1, 5000)
            cases.append((b"set trunc:%d 0 0 %d\r\n" % (i, n) + rng.randbytes(n // 2), False))
        for payload, rst in cases:
            s = self.server.connect(timeout=IO_TIMEOUT)
            s.sendall(payload)
            wait_idle(self.server)
            close_with(s, rst)
        wait_connections(self.server, 0)
        self.assert_healthy()
        c = Conn(self.server)
        try:
            self.assertEqual(c.get_many([b"trunc:%d" % i for i in range(10)]), {})
        finally:
            c.close()

    def test_bad_data_chunk_keeps_old_item(self):
        # memcached: "set k 0 0 3\r\nabcXY\r\n" -> CLIENT_ERROR bad data chunk; the
        # existing item is unchanged.
        self.start()
        c = Conn(self.server)
        try:
            for i, junk in enumerate((b"abcXY\r\n", b"abc\n\r\n", b"abcdefgh\r\n")):
                key = b"robust:%04d" % (i + 10)
                c.send(b"set %s 0 0 3\r\n" % key + junk)
                self.assertEqual(c.line(), b"CLIENT_ERROR bad data chunk\r\n")
                # resynchronise: whatever else the junk produced, a marker get follows
                c.send(b"get sync:%d\r\n" % i)
                while c.line() != b"END\r\n":
                    pass
                self.assertEqual(c.get_many([key]), {key: self.known[key]})
        finally:
            c.close()
        self.assert_healthy()

    def test_huge_announced_length_then_disconnect(self):
        self.start()
        payloads = []
        for i in range(20):
            key = b"robust:%04d" % (i * 7)
            # within the item limit, so the server may allocate for it: 900 KB announced,
            # 1 KB sent
            payloads.append((b"set %s 0 0 900000\r\n" % key + b"z" * 1000, i % 2 == 0))
            # beyond the item limit (swallowed by memcached), 100 KB sent
            payloads.append((b"set huge:%d 0 0 1000000000\r\n" % i + b"z" * 100000, i % 2 == 1))
            payloads.append((b"append %s 0 0 2000000000\r\n" % key + b"z" * 10, False))
        # All are sent first; they are closed (FIN or RST) once the server has read what
        # it will of them (it is idle), and the items are checked once it has noticed
        # every close.
        socks = []
        for data, rst in payloads:
            s = self.server.connect(timeout=IO_TIMEOUT)
            send_ignoring_reset(s, data)
            socks.append((s, rst))
        wait_idle(self.server)
        for s, rst in socks:
            close_with(s, rst)
        wait_connections(self.server, 0)
        self.assert_healthy()

    # ---------------------------------------------------------- long keys
    def test_key_of_251_bytes(self):
        self.start()
        k251 = b"k" * 251
        k250 = b"k" * 250
        c = Conn(self.server)
        try:
            for cmd in (b"get %s\r\n", b"gets %s\r\n", b"delete %s\r\n", b"incr %s 1\r\n",
                        b"decr %s 1\r\n", b"touch %s 10\r\n", b"get robust:0001 %s\r\n"):
                self.assertEqual(c.call(cmd % k251), BAD_FORMAT, cmd)
            # storage commands: the key is refused and the data line is then read as a
            # command of its own (memcached does not swallow it): "x" -> ERROR
            for cmd in (b"set", b"add", b"replace", b"append", b"prepend"):
                c.send(b"%s %s 0 0 1\r\nx\r\n" % (cmd, k251))
                self.assertEqual(c.line(), BAD_FORMAT, cmd)
                self.assertEqual(c.line(), b"ERROR\r\n", cmd)
            c.send(b"cas %s 0 0 1 1\r\nx\r\n" % k251)
            self.assertEqual(c.line(), BAD_FORMAT)
            self.assertEqual(c.line(), b"ERROR\r\n")
            c.version()
            self.assertEqual(c.store(k250, 5, b"longest key"), b"STORED\r\n")
            self.assertEqual(c.get_many([k250]), {k250: (5, b"longest key")})
        finally:
            c.close()
        self.assert_healthy()


class LargeValuesSentInPiecesTest(unittest.TestCase):
    """A value sent from its item (zero copy) that the socket takes in several events — a
    reader slower than the server, a unix socket's small buffer — arrives whole, and the
    next reply is framed right after it. Text and binary gets, TCP and a unix socket."""

    VALUE = bytes(random.Random(7).getrandbits(8) for _ in range(700 * 1024))

    def read(self, sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(min(n - len(data), 4096))  # a little at a time: many events
            if not chunk:
                raise AssertionError("closed after %d of %d bytes" % (len(data), n))
            data += chunk
        return data

    def check(self, connect):
        import struct
        with connect() as s:
            s.sendall(b"set big 7 0 %d\r\n%s\r\n" % (len(self.VALUE), self.VALUE))
            self.assertEqual(self.read(s, 8), b"STORED\r\n")
            for _ in range(3):
                s.sendall(b"get big\r\nget big\r\n")
                head = b"VALUE big 7 %d\r\n" % len(self.VALUE)
                for _ in range(2):
                    self.assertEqual(self.read(s, len(head)), head)
                    self.assertEqual(self.read(s, len(self.VALUE)) == self.VALUE, True)
                    self.assertEqual(self.read(s, 7), b"\r\nEND\r\n")
        # A connection speaks the protocol of its first byte: binary gets on one of their own.
        with connect() as s:
            get = struct.pack(">BBHBBHIIQ", 0x80, 0, 3, 0, 0, 0, 3, 0, 0) + b"big"
            for _ in range(3):
                s.sendall(get + get)
                for _ in range(2):
                    header = self.read(s, 24)
                    self.assertEqual(header[0], 0x81, header)
                    body = self.read(s, struct.unpack(">I", header[8:12])[0])
                    self.assertEqual(body[:4], struct.pack(">I", 7))
                    self.assertEqual(body[4:] == self.VALUE, True)

    def test_over_tcp_with_a_small_receive_buffer(self):
        with harness.tinycached() as server:
            def connect():
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(IO_TIMEOUT)
                s.connect(("127.0.0.1", server.port))
                return s
            self.check(connect)

    def test_over_a_unix_socket(self):
        path = os.path.join(tempfile.mkdtemp(prefix="tc_unix_"), "sock")
        argv = [harness.TINYCACHED, "-s", path] + harness.preset_args()
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        # A unix socket server answers no TCP probe (harness.Server): wait for its socket file.
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while not os.path.exists(path) and time.time() < deadline:
                time.sleep(0.02)

            def connect():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(IO_TIMEOUT)
                s.connect(path)
                return s
            self.check(connect)
        finally:
            harness.stop_process(proc)
            if os.path.exists(path):
                os.unlink(path)
            os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    harness.main()
