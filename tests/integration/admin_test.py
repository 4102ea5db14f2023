"""memcached's connection and administration options, run for real against tinycached and, where
the two can be compared, Debian's memcached: unix sockets (-s, -a), the per-event request cap (-R,
conn_yields), idle connections closed (-o idle_timeout, idle_kicks), per-prefix stats (-D, stats
detail), stats cachedump, lru_crawler, cache_memlimit and watch."""
import fcntl
import os
import re
import socket
import stat
import struct
import subprocess
import tempfile
import termios
import time
import unittest

from pymemcache.client.base import Client

import harness

MEMCACHED = harness.REFERENCE_MEMCACHED
# How long a reply, a start or an idle server may take before the test gives up: only a server
# that never answers waits this long, so it is generous (a loaded machine, an ASan build).
PATIENCE = 60.0


def read_while(sock, incomplete, deadline=PATIENCE):
    """Reads from `sock` while incomplete(what arrived) holds and the server sends."""
    data = b""
    end = time.monotonic() + deadline
    while incomplete(data):
        if time.monotonic() > end:
            raise AssertionError("no complete reply, got %r" % data[-200:])
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return data


def read_until(sock, ends, deadline=PATIENCE):
    return read_while(sock, lambda data: not any(data.endswith(e) for e in ends), deadline)


def ask(sock, request, ends=(b"\r\n",)):
    sock.sendall(request)
    return read_until(sock, ends)


def stats(sock, what=b""):
    reply = ask(sock, b"stats" + (b" " + what if what else b"") + b"\r\n", (b"END\r\n",))
    return dict(l.split(" ", 2)[1:] for l in reply.decode().split("\r\n") if l.startswith("STAT "))


class UnixServer:
    """A server on a unix socket (-s): started with its own Popen, as the harness waits on TCP."""

    def __init__(self, binary, path, args=()):
        self.path = path
        self.tcp_port = harness.free_port()
        argv = [binary, "-s", path, "-p", str(self.tcp_port), "-U", "0"]
        if os.geteuid() == 0:  # both refuse root without -u
            argv += ["-u", "root"]
        self.argv = argv + list(args)
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.argv, self.proc.stderr.read()))
            try:
                with self.connect() as s:
                    if ask(s, b"version\r\n").startswith(b"VERSION "):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("no answer on %s" % self.path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        return s

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stderr.close()


def servers():
    """(name, binary) of each server to run a check on: tinycached, and memcached if present."""
    out = [("tinycached", harness.TINYCACHED)]
    if os.path.exists(MEMCACHED):
        out.append(("memcached", MEMCACHED))
    return out


class UnixSocketTest(unittest.TestCase):
    def test_serves_on_the_socket_only_with_its_mask(self):
        for name, binary in servers():
            for mask, want in ((None, 0o700), ("770", 0o770)):
                with self.subTest(server=name, mask=mask), tempfile.TemporaryDirectory() as d:
                    path = os.path.join(d, "mc.sock")
                    args = harness.preset_args() if binary != MEMCACHED else []
                    if mask:
                        args += ["-a", mask]
                    with UnixServer(binary, path, args) as srv:
                        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
                        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), want)
                        client = Client(path, connect_timeout=5, timeout=5)
                        client.set("k", b"v" * 100)
                        self.assertEqual(client.get("k"), b"v" * 100)
                        self.assertEqual(client.incr("n", 1), None)
                        client.close()
                        # -s turns TCP off: nothing listens on the -p port.
                        with self.assertRaises(ConnectionRefusedError):
                            socket.create_connection(("127.0.0.1", srv.tcp_port), timeout=2)

    def test_stats_conns_and_settings_show_the_path(self):
        replies = {}
        for name, binary in servers():
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "mc.sock")
                with UnixServer(binary, path) as srv, srv.connect() as s:
                    conns = ask(s, b"stats conns\r\n", (b"END\r\n",)).decode()
                    settings = stats(s, b"settings")
                # fd numbers and ages differ; the addresses and states must not. (The
                # connection that saw the server start may not be gone yet.)
                replies[name] = sorted(set(re.sub(r"STAT \d+:", "STAT fd:", l).replace(d, "<dir>")
                                       for l in conns.split("\r\n")
                                       if "addr" in l or "state conn_listening" in l))
                self.assertEqual(settings["domain_socket"], path)
                self.assertEqual(settings["umask"], "700")
        self.assertIn("STAT fd:addr unix:<dir>/mc.sock", replies["tinycached"])
        self.assertIn("STAT fd:listen_addr unix:<dir>/mc.sock", replies["tinycached"])
        if "memcached" in replies:
            self.assertEqual(replies["tinycached"], replies["memcached"])

    def test_a_leftover_socket_is_replaced_but_not_a_file(self):
        for name, binary in servers():
            with self.subTest(server=name), tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "mc.sock")
                old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                old.bind(path)  # a socket file nobody listens on, as a crashed server leaves
                old.close()
                with UnixServer(binary, path) as srv, srv.connect() as s:
                    self.assertEqual(ask(s, b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")
                os.unlink(path)
                with open(path, "w") as f:
                    f.write("not a socket")
                argv = UnixServer(binary, path).argv
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("failed to listen on UNIX socket", r.stderr)
                with open(path) as f:
                    self.assertEqual(f.read(), "not a socket")


class RequestsPerEventTest(unittest.TestCase):
    def test_a_long_pipeline_is_answered_whole_and_yields(self):
        n = 500
        batch = b"".join(b"set k%d 0 0 2\r\nv%d\r\n" % (i, i % 10) for i in range(n))
        batch += b"".join(b"get k%d\r\n" % i for i in range(n)) + b"version\r\n"
        for name, server in (("tinycached", harness.tinycached(["-R", "5"])),
                             ("memcached", harness.reference(["-R", "5"]))):
            if name == "memcached" and not os.path.exists(MEMCACHED):
                continue
            with self.subTest(server=name), server, server.connect() as s:
                s.settimeout(10)
                self.assertEqual(stats(s)["conn_yields"], "0")
                reply = ask(s, batch)
                while b"VERSION " not in reply:
                    reply += read_until(s, (b"\r\n",))
                self.assertEqual(reply.count(b"STORED\r\n"), n)
                self.assertEqual(reply.count(b"VALUE "), n)
                self.assertEqual(reply.count(b"END\r\n"), n)
                self.assertGreaterEqual(int(stats(s)["conn_yields"]), 1)
                self.assertEqual(stats(s, b"settings")["reqs_per_event"], "5")

    def test_other_connections_are_served_between_a_pipelines_slices(self):
        # A client that never reads while it pipelines cannot keep the others waiting.
        with harness.tinycached(["-R", "1", "-t", "1"]) as srv, srv.connect() as busy, \
                srv.connect() as other:
            busy.sendall(b"get nothing\r\n" * 2000)
            self.assertEqual(ask(other, b"set x 0 0 1\r\ny\r\n"), b"STORED\r\n")
            reply = read_until(busy, (b"END\r\n" * 1,))
            while reply.count(b"END\r\n") < 2000:
                reply += read_until(busy, (b"END\r\n",))
            self.assertEqual(reply, b"END\r\n" * 2000)


class IdleTimeoutTest(unittest.TestCase):
    def test_idle_connections_are_closed_and_counted(self):
        for name, server in (("tinycached", harness.tinycached(["-o", "idle_timeout=1"])),
                             ("memcached", harness.reference(["-o", "idle_timeout=1"]))):
            if name == "memcached" and not os.path.exists(MEMCACHED):
                continue
            with self.subTest(server=name), server, server.connect(timeout=PATIENCE) as idle:
                self.assertEqual(ask(idle, b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")
                # Closed once idle past the timeout (the kick is counted before the close);
                # the socket's timeout only bounds the wait for a server that never closes.
                self.assertEqual(idle.recv(100), b"")
                with server.connect() as s:
                    st = stats(s)
                    self.assertGreaterEqual(int(st["idle_kicks"]), 1)
                    self.assertEqual(stats(s, b"settings")["idle_timeout"], "1")

    def test_no_idle_kicks_stat_without_the_option(self):
        with harness.tinycached() as srv, srv.connect() as s:
            self.assertNotIn("idle_kicks", stats(s))
            self.assertEqual(stats(s, b"settings")["idle_timeout"], "0")


def normalize(reply):
    """Times (absolute expiry, last access) vary between runs; lines of a dump come in each
    server's own order."""
    reply = re.sub(rb"(exp|la)=\d{6,}", rb"\1=T", reply)
    reply = re.sub(rb"; \d{6,} s\]", rb"; T s]", reply)
    reply = re.sub(rb"cas=\d+", rb"cas=C", reply)
    lines = re.split(rb"(?<=\n)", reply)
    return sorted(lines)


# Requests and replies that must be memcached's, byte for byte (dumps: as sets of lines).
ADMIN_SCRIPT = [
    b"set foo:1 0 0 3\r\nabc\r\n", b"set bar:2 0 100 5\r\nabcde\r\n", b"get foo:1\r\n",
    b"stats cachedump 1 0\r\n", b"stats cachedump 1 1\r\n", b"stats cachedump 1\r\n",
    b"stats cachedump x 0\r\n", b"stats cachedump 1 x\r\n", b"stats cachedump -1 0\r\n",
    b"stats cachedump 64 0\r\n", b"stats cachedump 63 0\r\n", b"stats cachedump 0 0\r\n",
    b"lru_crawler metadump all\r\n", b"lru_crawler metadump 1\r\n",
    b"lru_crawler metadump 1,2\r\n", b"lru_crawler metadump 99\r\n",
    b"lru_crawler metadump\r\n", b"lru_crawler metadump x\r\n", b"lru_crawler metadump 0\r\n",
    b"lru_crawler metadump all x\r\n", b"lru_crawler metadump hash\r\n",
    b"lru_crawler crawl 99\r\n", b"lru_crawler crawl x\r\n", b"lru_crawler crawl 0\r\n",
    b"lru_crawler crawl 64\r\n", b"lru_crawler crawl 1,x\r\n", b"lru_crawler crawl\r\n",
    b"lru_crawler crawl all extra\r\n",
    b"lru_crawler disable\r\n", b"lru_crawler disable\r\n", b"lru_crawler metadump all\r\n",
    b"lru_crawler crawl all\r\n", b"lru_crawler enable\r\n", b"lru_crawler enable\r\n",
    b"lru_crawler enable x\r\n", b"lru_crawler disable x\r\n",
    b"lru_crawler sleep 100\r\n", b"lru_crawler sleep x\r\n", b"lru_crawler sleep 2000000\r\n",
    b"lru_crawler sleep 1000000\r\n", b"lru_crawler sleep -1\r\n", b"lru_crawler sleep\r\n",
    b"lru_crawler tocrawl 10\r\n", b"lru_crawler tocrawl x\r\n", b"lru_crawler tocrawl -1\r\n",
    b"lru_crawler tocrawl 5 x\r\n", b"lru_crawler\r\n", b"lru_crawler bogus\r\n",
    b"lru_crawler bogus x\r\n", b"lru_crawler sleep 100 noreply\r\n",
    b"cache_memlimit 100\r\n", b"cache_memlimit 5\r\n", b"cache_memlimit x\r\n",
    b"cache_memlimit\r\n", b"cache_memlimit 0\r\n", b"cache_memlimit 8\r\n",
    b"cache_memlimit 100 x\r\n", b"cache_memlimit -1\r\n", b"cache_memlimit 1000000001\r\n",
    b"cache_memlimit 100 noreply x\r\n", b"cache_memlimit 64 noreply\r\nmn\r\n",
    b"stats detail dump\r\n", b"stats detail\r\n", b"stats detail x\r\n",
    b"stats detail on\r\n", b"get foo:1 foo:2 bar:2 nodelim\r\n",
    b"set xx:1 0 0 1 noreply\r\nx\r\n", b"delete foo:1\r\n", b"delete zz:1\r\n",
    b"incr foo:3 1\r\n", b"touch foo:2 1\r\n", b"gets bar:2\r\n", b"set :x 0 0 1\r\nx\r\n",
    b"set a:b:c 0 0 1\r\nx\r\n", b"stats detail dump\r\n", b"stats detail off\r\n",
    b"get bar:2\r\n", b"stats detail dump\r\n", b"stats detail on x\r\n",
    b"stats detail dump x\r\n", b"stats reset\r\n", b"stats detail dump\r\n",
    b"watch bogus\r\n", b"watch fetchers mutations bogus\r\n",
]


SENTINEL, SENTINEL_REPLY = b"mn\r\n", b"MN\r\n"  # the meta no-op: no key, no counter


def run_script(sock, script):
    """Each request's whole reply, however the server spreads its writes over time.

    After each request `mn` is sent and the reply read up to its MN: a server answers a
    connection's commands in order, so what comes before that MN is the request's reply. `mn`
    goes once the reply has begun (a metadump hands the connection to the crawler until its
    END: `mn` must not be read before), or at once after a noreply request, which may get no
    reply at all."""
    replies = []
    for req in script:
        sock.settimeout(PATIENCE)
        sock.sendall(req)
        quiet = req.endswith(b"noreply\r\nx\r\n") or b" noreply\r\n" in req
        data = b""
        try:
            while not quiet and not data:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
            sock.sendall(SENTINEL)
            # the request's own mn (if any) is answered first
            while data.count(SENTINEL_REPLY) <= req.count(SENTINEL) or \
                    not data.endswith(SENTINEL_REPLY):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass  # no MN (the connection closed, or stopped answering): what came is compared
        if data.endswith(SENTINEL_REPLY) and data.count(SENTINEL_REPLY) > req.count(SENTINEL):
            data = data[:-len(SENTINEL_REPLY)]
        replies.append(data)
        if req == b"lru_crawler disable\r\n" and data == b"OK\r\n":
            wait_crawler_stopped(sock)
    return replies


def wait_crawler_stopped(sock):
    """Waits until `stats settings` says lru_crawler no. memcached answers `lru_crawler
    disable` before its crawler thread has stopped (it does not wait for it), and until the
    thread has gone, the next crawler commands race it (`lru_crawler enable` then fails, a
    metadump gets "ERROR an unknown error happened")."""
    deadline = time.monotonic() + PATIENCE
    while b"STAT lru_crawler no\r\n" not in ask(sock, b"stats settings\r\n", (b"END\r\n",)):
        if time.monotonic() > deadline:
            raise AssertionError("the crawler was still running %.0f s after lru_crawler "
                                 "disable" % PATIENCE)
        time.sleep(0.01)


def nothing_more(server, sock):
    """What `server` sent on `sock` once it has received everything sent there and gone idle
    (no thread running): b"" if it answered nothing. Silence for a while would prove nothing
    on a loaded machine, where the server may not have run yet."""
    deadline = time.monotonic() + PATIENCE
    while True:
        unacked = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                 b"\0" * 4))[0]  # SIOCOUTQ
        if unacked == 0 and not server.busy():
            break
        if time.monotonic() > deadline:
            raise AssertionError("the server never went idle")
        time.sleep(0.01)
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1 << 16)
    except BlockingIOError:
        return b""
    finally:
        sock.settimeout(timeout)


def read_dump_or_refusal(sock):
    """A reply that ends in a refusal to pipeline, or in a dump's END (a dump of at least one
    item: the servers hold one)."""
    return read_while(sock, lambda data: not (
        re.search(rb"ERROR cannot pipeline other commands before \w+\r\n$", data) or
        (b"key=" in data and data.endswith(b"END\r\n"))))


class AdminCommandsTest(unittest.TestCase):
    def pair(self, args=()):
        tiny = harness.tinycached(args)
        ref = harness.Server(MEMCACHED, ["-o", "no_lru_maintainer"] + list(args))
        return tiny, ref

    @unittest.skipUnless(os.path.exists(MEMCACHED), "needs Debian's memcached")
    def test_replies_are_memcacheds(self):
        if harness.PRESET not in (None, "stock"):
            self.skipTest("item sizes and cas values are the stock layout's")
        tiny, ref = self.pair()
        with tiny, ref, tiny.connect() as a, ref.connect() as b:
            mine = run_script(a, ADMIN_SCRIPT)
            theirs = run_script(b, ADMIN_SCRIPT)
        for req, m, t in zip(ADMIN_SCRIPT, mine, theirs):
            with self.subTest(request=req):
                self.assertEqual(normalize(m), normalize(t))

    @unittest.skipUnless(os.path.exists(MEMCACHED), "needs Debian's memcached")
    def test_X_W_and_D_as_memcached(self):
        script = [b"set a/b 0 0 1\r\nx\r\n", b"set a:b 0 0 1\r\nx\r\n", b"stats detail dump\r\n",
                  b"stats cachedump 1 0\r\n", b"lru_crawler metadump all\r\n",
                  b"lru_crawler crawl all\r\n", b"watch\r\n"]
        tiny, ref = self.pair(["-X", "-W", "-D", "/"])
        with tiny, ref, tiny.connect() as a, ref.connect() as b:
            self.assertEqual(run_script(a, script), run_script(b, script))
            self.assertEqual(stats(a, b"settings")["dump_enabled"], "no")
            self.assertEqual(stats(a, b"settings")["stat_key_prefix"], "/")
            self.assertEqual(stats(a, b"settings")["detail_enabled"], "yes")

    @unittest.skipUnless(os.path.exists(MEMCACHED), "needs Debian's memcached")
    def test_metadump_after_held_replies_as_memcached(self):
        """memcached refuses `lru_crawler metadump` (and `watch`) while replies of earlier
        commands read with it are still unsent: its crawler thread writes the dump to the socket
        itself. A get, gat or mn writes out what was held; a noreply reply is held too. Each
        request goes on a fresh connection in one send (so it arrives in one read); replies
        without a dump must be memcached's byte for byte, dumps are checked for their keys."""
        refused = b"ERROR cannot pipeline other commands before metadump\r\n"
        requests = [
            b"mg foo v\r\nlru_crawler metadump all\r\n",
            b"mg foo v q\r\nlru_crawler metadump all\r\n",
            b"set quiet 0 0 1 noreply\r\nx\r\nlru_crawler metadump all\r\n",
            b"bogus\r\nlru_crawler metadump hash\r\n",
            b"mg foo v\r\nlru_crawler metadump 99\r\n",
            b"mn\r\nmg foo v\r\nlru_crawler metadump all\r\n",
            b"get foo bar\r\nmn\r\nmg foo v\r\nlru_crawler metadump all\r\n",
            b"mg foo v\r\nwatch\r\n",
            b"get foo\r\nlru_crawler metadump all\r\n",
            b"gat 100 foo\r\nlru_crawler metadump all\r\n",
            b"mn\r\nlru_crawler metadump all\r\n",
        ]
        tiny, ref = self.pair()
        replies = {}
        with tiny, ref:
            for name, srv in (("tinycached", tiny), ("memcached", ref)):
                with srv.connect() as s:
                    self.assertEqual(ask(s, b"set dumped 0 0 1\r\nx\r\n"), b"STORED\r\n")
                replies[name] = []
                for req in requests:
                    with srv.connect() as s:
                        s.sendall(req)
                        replies[name].append(read_dump_or_refusal(s))
        for req, mine, theirs in zip(requests, replies["tinycached"], replies["memcached"]):
            with self.subTest(request=req):
                if b"key=" in theirs:
                    self.assertNotIn(b"ERROR", theirs)
                    self.assertNotIn(b"ERROR", mine)
                    keys = [sorted(re.findall(rb"^key=(\S+) ", r, re.M)) for r in (mine, theirs)]
                    self.assertEqual(keys[0], keys[1])
                    self.assertIn(b"dumped", keys[0])
                    self.assertEqual(mine.split(b"key=")[0], theirs.split(b"key=")[0])
                else:
                    self.assertEqual(mine, theirs)
        self.assertEqual(replies["memcached"][0], b"EN\r\n" + refused)  # what lru-crawler.t expects

    def test_watch_answers_ok_then_nothing(self):
        with harness.tinycached() as srv, srv.connect() as s:
            self.assertEqual(ask(s, b"watch\r\n"), b"OK\r\n")
            s.sendall(b"get a\r\nversion\r\n")
            self.assertEqual(nothing_more(srv, s), b"")
            with srv.connect() as other:  # the server goes on serving the others
                self.assertEqual(ask(other, b"version\r\n")[:8], b"VERSION ")

    def test_prefixes_are_bounded(self):
        with harness.tinycached(["-D", ":"]) as srv, srv.connect() as s:
            batch = b"".join(b"get p%d:x\r\n" % i for i in range(5000))
            reply = ask(s, batch + b"version\r\n", (b"\r\n",))
            while b"VERSION" not in reply:
                reply += read_until(s, (b"\r\n",))
            dump = ask(s, b"stats detail dump\r\n", (b"END\r\n",))
            self.assertEqual(dump.count(b"PREFIX "), 4096)
            self.assertIn(b"PREFIX p0 get 1 hit 0 set 0 del 0\r\n", dump)

    def test_cache_memlimit_moves_the_limit(self):
        with harness.tinycached(["-m", "64"]) as srv, srv.connect() as s:
            self.assertEqual(ask(s, b"cache_memlimit 16\r\n"), b"OK\r\n")
            self.assertEqual(stats(s)["limit_maxbytes"], str(16 << 20))
            self.assertEqual(stats(s, b"settings")["maxbytes"], str(16 << 20))
            value = b"v" * 1000
            batch = b"".join(b"set k%d 0 0 1000 noreply\r\n%s\r\n" % (i, value)
                             for i in range(40000))
            s.sendall(batch)
            self.assertEqual(ask(s, b"version\r\n")[:8], b"VERSION ")
            st = stats(s)
            self.assertGreater(int(st["evictions"]), 0)
            # Pages are charged against the new limit (a class's first page may go past it).
            self.assertLess(int(st["bytes"]), 17 << 20)
            self.assertEqual(ask(s, b"cache_memlimit 64\r\n"), b"OK\r\n")
            evictions = int(stats(s)["evictions"])
            s.sendall(b"".join(b"set j%d 0 0 1000 noreply\r\n%s\r\n" % (i, value)
                               for i in range(20000)))
            self.assertEqual(ask(s, b"version\r\n")[:8], b"VERSION ")
            self.assertEqual(int(stats(s)["evictions"]), evictions)  # room again: none evicted

    def test_dumps_list_every_item_once(self):
        with harness.tinycached() as srv, srv.connect() as s:
            keys = [b"%d" % i for i in range(1, 301)] + [b"text:%d" % i for i in range(300)]
            s.sendall(b"".join(b"set %s 0 0 1 noreply\r\nx\r\n" % k for k in keys))
            self.assertEqual(ask(s, b"version\r\n")[:8], b"VERSION ")
            meta = ask(s, b"lru_crawler metadump all\r\n", (b"END\r\n",))
            found = re.findall(rb"^key=(\S+) exp=-1 la=\d+ cas=\d+ fetch=no cls=\d+ size=\d+$",
                               meta, re.M)
            decoded = sorted(k.replace(b"%3A", b":") for k in found)
            self.assertEqual(decoded, sorted(keys))
            dumped = []
            for cls in range(0, 64):
                reply = ask(s, b"stats cachedump %d 0\r\n" % cls, (b"END\r\n",))
                dumped += re.findall(rb"^ITEM (\S+) \[1 b; 0 s\]\r$", reply, re.M)
            self.assertEqual(sorted(dumped), sorted(keys))


if __name__ == "__main__":
    harness.main()
