"""Bad clients never crash tinycached, corrupt an item, lose a stored one or hold up other
clients: thousands of idle connections, connections past -c, clients that never read or read
very slowly, half-closed connections.

Run as
    /usr/bin/python3 tests/integration/robustness_clients_test.py --tinycached build/server/tinycached

Every test starts its own server with 200 known items and checks them at the end
(robustness_fixture.py says how, and how other clients' latencies are compared with
memcached's). Bad input is robustness_test.py.
"""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from robustness_fixture import (IO_TIMEOUT, LATENCY_ROUNDS, MB, SETTLE_LIMIT,  # noqa: E402
                               TOO_MANY_CONNS, Conn, RobustnessFixture, hard_close,
                               recv_exactly, recv_to_close, recv_until,
                               send_ignoring_reset, value_reply, wait_connections,
                               wait_idle)
from text_conn import raise_nofile, rss_bytes  # noqa: E402


class RobustnessClientsTest(RobustnessFixture):
    # --------------------------------------------------- connection limits
    def test_4000_idle_connections_with_c_4096(self):
        raise_nofile(self, 4000 + 200)
        self.start(["-c", "4096"])
        idle = []
        try:
            # in batches far below the listen backlog (1024), each accepted by the server
            # before the next: a full accept queue drops SYNs, which the kernel retries
            # only after 1, 3, 7 s
            for _ in range(4000):
                idle.append(self.server.connect(timeout=IO_TIMEOUT))
                if len(idle) % 250 == 0:
                    wait_connections(self.server, len(idle))
            # a normal client is served while they are open
            c = Conn(self.server)
            try:
                for i in range(200):
                    value = b"busy-%d" % i * (i % 7 + 1)
                    self.assertEqual(c.store(b"busy:%d" % (i % 20), i, value), b"STORED\r\n")
                    self.assertEqual(c.get_many([b"busy:%d" % (i % 20)]),
                                     {b"busy:%d" % (i % 20): (i, value)})
            finally:
                c.close()
            # and every one of the 4000 was really accepted and is served
            for s in idle:
                s.sendall(b"version\r\n")
            for s in idle:
                line, _ = recv_until(s, b"", b"\r\n")
                self.assertTrue(line.startswith(b"VERSION "), line)
        finally:
            for s in idle:
                s.close()
        self.assert_healthy()

    def test_too_many_connections(self):
        # memcached 1.6 accepts a connection beyond its limit, writes
        # "ERROR Too many open connections\r\n", closes it, and counts it in
        # "STAT rejected_connections".  (memcached cannot even start with -c 10: it
        # lowers its own RLIMIT_NOFILE to -c and then fails creating its worker
        # threads' eventfds.  With -c 64 it serves 40 clients: 24 fds are its own.)
        limit = 64
        attempts = 100
        self.start(["-c", str(limit)])
        # the server has noticed that start()'s own connections closed (and, best effort,
        # the probe's that asked)
        wait_connections(self.server, 0)
        wait_idle(self.server)
        results = []
        socks = []
        try:
            for _ in range(attempts):
                s = self.server.connect(timeout=IO_TIMEOUT)
                socks.append(s)
                send_ignoring_reset(s, b"version\r\n")
                data = b""
                try:
                    data, _ = recv_until(s, b"", b"\r\n")
                except (ConnectionResetError, AssertionError) as e:
                    data = repr(e).encode()
                if data.startswith(b"VERSION "):
                    results.append("ok")
                else:
                    self.assertEqual(data, TOO_MANY_CONNS)
                    rest, closed = recv_to_close(s)
                    self.assertEqual((rest, closed), (b"", True),
                                     "rejected connection not closed after the error")
                    results.append("rejected")
            accepted = results.count("ok")
            rejected = results.count("rejected")
            self.assertGreaterEqual(accepted, 1)
            self.assertLessEqual(accepted, limit)
            self.assertEqual(results, ["ok"] * accepted + ["rejected"] * rejected,
                             "once the limit is reached every new connection is refused")
            # the accepted ones still work
            for s in socks[:accepted]:
                s.sendall(b"version\r\n")
                line, _ = recv_until(s, b"", b"\r\n")
                self.assertTrue(line.startswith(b"VERSION "), line)
        finally:
            for s in socks:
                s.close()
        # after they are gone, new clients get in again: try once the server is idle (it
        # has acted on the closes), and again until one gets in (an attempt made before
        # the server has seen the closes is rejected, and counted, too)
        deadline = time.monotonic() + SETTLE_LIMIT
        late_attempts = 0
        while True:
            wait_idle(self.server)
            c = None
            try:
                c = Conn(self.server)
                if c.call(b"version\r\n").startswith(b"VERSION "):
                    break
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
            if c is not None:
                c.close()
            late_attempts += 1
            self.assertLess(time.monotonic(), deadline, "no new client got in after the closes")
            time.sleep(0.01)
        try:
            c.send(b"stats\r\n")
            stats = {}
            while True:
                line = c.line()
                if line == b"END\r\n":
                    break
                _, name, value = line.split(b" ", 2)
                stats[name] = value.strip()
            self.assertGreaterEqual(int(stats[b"rejected_connections"]), rejected)
            self.assertLessEqual(int(stats[b"rejected_connections"]), rejected + late_attempts)
            self.assertEqual(int(stats[b"max_connections"]), limit)
        finally:
            c.close()
        self.assert_healthy()

    # ------------------------------------------------------- slow clients
    HOG_VALUE = bytes(range(256)) * 400  # 100 KB

    def never_reading_round(self, server, rng, iterations=100):
        """A client asks for 1 GB of replies ("get hog" 10000 times, sent as fast as the
        server takes them) and never reads, while another client makes `iterations` store
        and get pairs. Returns the other client's latencies and the server's peak RSS."""
        c = Conn(server)
        hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        try:
            self.assertEqual(c.store(b"hog", 0, self.HOG_VALUE), b"STORED\r\n")
            hog.connect(("127.0.0.1", server.port))
            hog.setblocking(False)
            requests = b"get hog\r\n" * 10000
            sent = 0
            peak = 0
            latencies = []
            for _ in range(iterations):
                if sent < len(requests):
                    try:
                        sent += hog.send(requests[sent:sent + 65536])
                    except BlockingIOError:
                        pass
                key = b"other:%d" % rng.randrange(50)
                v = rng.randbytes(rng.randint(1, 3000))
                t0 = time.perf_counter()
                self.assertEqual(c.store(key, 1, v), b"STORED\r\n")
                self.assertEqual(c.get_many([key]), {key: (1, v)})
                latencies.append(time.perf_counter() - t0)
                peak = max(peak, rss_bytes(server.proc.pid))
                time.sleep(0.005)  # pacing: the hog's requests keep arriving meanwhile
            self.assertTrue(server.alive())
            self.assertGreater(sent, 0)
            # the hog's replies are intact once it does read
            hog.setblocking(True)
            reply = value_reply(b"hog", 0, self.HOG_VALUE) + b"END\r\n"
            self.assertEqual(recv_exactly(hog, 5 * len(reply)), reply * 5)
        finally:
            hard_close(hog)
            c.close()
        wait_connections(server, 0)  # the next round starts without this hog
        return latencies, peak

    def test_never_reading_client(self):
        # memcached 1.6 stops reading from a client whose replies it cannot send, so
        # its RSS stays flat (measured: ~6 MB before and after 1 GB of replies requested).
        # We require < 300 MB of growth.  The other client must not be slowed down: its
        # latencies are compared with memcached's on the same scenario (a client starved
        # outright never gets its reply and fails on the socket timeout).
        self.start()
        reference = self.start_reference()
        baseline = rss_bytes(self.server.proc.pid)
        peak = baseline
        ours, theirs = [], []
        rng = random.Random(7)
        for _ in range(LATENCY_ROUNDS):
            latencies, round_peak = self.never_reading_round(self.server, rng)
            ours.append(latencies)
            peak = max(peak, round_peak)
            theirs.append(self.never_reading_round(reference, rng)[0])
        self.assertLess(peak - baseline, 300 * MB,
                        "RSS grew from %d to %d MB" % (baseline // MB, peak // MB))
        self.compare_latencies("beside a never-reading client", ours, theirs)
        self.assert_healthy()

    def test_never_reading_client_with_one_huge_multiget(self):
        # One 4 KB command line asking for 1000 copies of a 900 KB value (900 MB of
        # replies) from a client that never reads: the server must stay bounded
        # (memcached sends references to the item; tinycached resumes the get as
        # the client drains it) and go on serving others.  RSS is sampled once the
        # server has done all it can with the get (it is idle), then while another
        # client reads the value 40 times.
        self.start()
        value = bytes(range(256)) * 3600  # 900 KB
        c = Conn(self.server)
        self.assertEqual(c.store(b"huge", 0, value), b"STORED\r\n")
        baseline = rss_bytes(self.server.proc.pid)
        hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        hog.connect(("127.0.0.1", self.server.port))
        try:
            hog.settimeout(IO_TIMEOUT)
            hog.sendall(b"get" + b" huge" * 1000 + b"\r\n")
            wait_idle(self.server)
            peak = rss_bytes(self.server.proc.pid)
            for _ in range(40):
                self.assertEqual(c.get_many([b"huge"]), {b"huge": (0, value)})
                peak = max(peak, rss_bytes(self.server.proc.pid))
            # Unbounded, this would be ~900 MB; 300 MB leaves room for ASan's
            # quarantine of freed output buffers in the sanitizer build.
            self.assertLess(peak - baseline, 300 * MB,
                            "RSS grew from %d to %d MB" % (baseline // MB, peak // MB))
            reply = value_reply(b"huge", 0, value)
            self.assertEqual(recv_exactly(hog, 3 * len(reply)), reply * 3)
        finally:
            hard_close(hog)
            c.close()
        self.assert_healthy()

    def slow_reader_round(self, server, keys):
        """A client with a 4 KB receive buffer pipelines a get of each of `keys` and reads
        the replies 16 KB at a time, with pauses; every 10th read, another client gets a
        known item. Checks the slow reader's stream byte for byte; returns the other
        client's latencies."""
        expected = b"".join(value_reply(k, *self.known[k]) + b"END\r\n" for k in keys)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        other = Conn(server)
        got = b""
        latencies = []
        try:
            slow.connect(("127.0.0.1", server.port))
            slow.sendall(b"".join(b"get %s\r\n" % k for k in keys))
            slow.settimeout(IO_TIMEOUT)
            deadline = time.monotonic() + 60  # liveness only: ~1 s on a quiet machine
            i = 0
            while len(got) < len(expected):
                self.assertLess(time.monotonic(), deadline, "slow reader's stream stuck")
                chunk = slow.recv(min(16384, len(expected) - len(got)))
                self.assertTrue(chunk, "server closed the slow reader after %d of %d bytes"
                                % (len(got), len(expected)))
                got += chunk
                time.sleep(0.003)  # pacing: the slow reader's slowness
                if i % 10 == 0:
                    key = b"robust:%04d" % (i % 200)
                    t0 = time.perf_counter()
                    self.assertEqual(other.get_many([key]), {key: self.known[key]})
                    latencies.append(time.perf_counter() - t0)
                i += 1
            self.assertEqual(len(got), len(expected))
            self.assertTrue(got == expected, "slow reader's reply stream corrupted")
        finally:
            slow.close()
            other.close()
        wait_connections(server, 0)  # the next round starts without them
        return latencies

    def test_very_slow_reader(self):
        # The slow reader's stream is exact, and the other client is not starved by it:
        # while it waits for its reply the slow reader reads nothing, so a server that
        # served the slow reader's stream first would never answer (socket timeout); a
        # server that merely slowed the other client down is caught by comparing its
        # latencies with memcached's on the same scenario.
        self.start()
        reference = self.start_reference()
        keys = sorted(k for k, (f, v) in self.known.items() if len(v) > 5000)[:8]
        self.assertTrue(keys)
        ours, theirs = [], []
        # round r asks for the 8 keys rotated by r: over 3 rounds, each server streams the
        # 24 replies (3.4 MB) the test always did, in a different order each round
        for r in range(LATENCY_ROUNDS):
            rotated = keys[r % len(keys):] + keys[:r % len(keys)]
            ours.append(self.slow_reader_round(self.server, rotated))
            theirs.append(self.slow_reader_round(reference, rotated))
        self.compare_latencies("beside a very slow reader", ours, theirs)
        self.assert_healthy()

    def test_half_closed_connection_still_gets_replies(self):
        # shutdown(SHUT_WR) right after the commands: every reply is still sent,
        # including ~5 MB of values that cannot fit in the socket buffers, then the
        # server closes the connection.
        self.start()
        big = sorted(self.known, key=lambda k: -len(self.known[k][1]))[:5]
        cmds = []
        expected = []
        cmds.append(b"set half:1 9 0 5\r\nhello\r\n")
        expected.append(b"STORED\r\n")
        cmds.append(b"set half:2 0 0 1 noreply\r\nx\r\n")
        for rep in range(4):
            for k in big:
                cmds.append(b"get %s\r\n" % k)
                expected.append(value_reply(k, *self.known[k]) + b"END\r\n")
        cmds.append(b"get half:1 half:2\r\n")
        expected.append(value_reply(b"half:1", 9, b"hello") + value_reply(b"half:2", 0, b"x")
                        + b"END\r\n")
        cmds.append(b"delete robust:0199 noreply\r\n")
        cmds.append(b"incr nothing 1\r\n")
        expected.append(b"NOT_FOUND\r\n")
        expected = b"".join(expected)
        self.assertGreater(len(expected), 1 * MB)
        s = self.server.connect(timeout=IO_TIMEOUT)
        try:
            s.sendall(b"".join(cmds))
            s.shutdown(socket.SHUT_WR)
            data, closed = recv_to_close(s, timeout=IO_TIMEOUT)
            self.assertEqual(len(data), len(expected))
            self.assertTrue(data == expected, "reply stream differs")
            self.assertTrue(closed, "server did not close the half-closed connection")
        finally:
            s.close()
        del self.known[b"robust:0199"]
        self.assert_healthy()
        c = Conn(self.server)
        try:
            self.assertEqual(c.get_many([b"half:1", b"half:2", b"robust:0199"]),
                             {b"half:1": (9, b"hello"), b"half:2": (0, b"x")})
        finally:
            c.close()


if __name__ == "__main__":
    harness.main()
