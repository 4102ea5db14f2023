"""The server's memory promises: stores are not refused under eviction, memory stays bounded
with slow or stalled clients. (Pages moving between slab classes: page_moves_test.py.)

Run as
    /usr/bin/python3 tests/integration/memory_test.py --tinycached build/server/tinycached \
        [--preset NAME]

Each test starts its own tinycached (with the preset's flags, as every integration test does)
and, where it compares, Debian's memcached 1.6.18 started the same way (harness.reference).
The file also runs with `--tinycached /usr/bin/memcached`; what memcached does is noted at
each test.

1. Refused stores under eviction (-m 64), one connection: (a) 512 values of 1 KB, 3 KB, ...,
   1023 KB; (b) then, on the full cache, 10 items (`key<i>:<j>`) at each of 69 sizes from 2
   bytes, each x1.2 the last. Every set answers STORED (memcached does: asserted, as the
   premise), the server answers `stats` after each sequence, every item of (b) reads back
   right after it is stored, and (with memcached's class table) the newest item of each size
   reads back intact at the end, but for at most 2 more than memcached loses (it loses 2 of
   the 69: key66:9 and key67:9).
2. Full-cache churn (-m 64), on memcached and then on tinycached: small items fill the cache
   until it evicts, then 3 connections set ~2000 values of seeded random sizes 1 B .. 1023 KB
   and read each back at once. Every set answers STORED and every hit is exact; a read-back
   may miss only while another connection's set or a page move (`slabs_moved`) was under way.
   How many fresh items a server does not keep follows how the connections interleave, so it
   is held to memcached's count in the same run (memcached refuses 7-46 with "SERVER_ERROR
   Out of memory" and misses ~150; tinycached refuses none and misses ~100): at most 3x + 100
   of them (a server that keeps nothing loses ~2000), and of the last 50 stored, at most 15
   more misses than memcached's.
3. Slow readers: 1000 connections (-c 2048) each pipeline `get big` (1 MB) 20 times and never
   read. Once the server is idle (waited for up to 15 s): its RSS grew by at most 64 MiB
   (memcached: +6 MiB), another client's 200 sequential gets take at most 20x what memcached
   took in the same scenario (never less than 2 s; memcached: ~0.01 s), `big` reads back
   intact, and after the 1000 close the RSS comes back within 16 MiB of the start.
4. Stalled input (-m 64 -c 2048): 1000 connections each stop after 1000 bytes of a 1000000-byte
   value (a), or after 1000 bytes of a command line without its newline (b). RSS grows by at
   most 64 MiB (the item memory a stalled value may hold) + 16 MiB (memcached: +68 MiB and
   +5.5 MiB), and another client's gets work as in 3.

5. Per-connection memory: 1000 connections (-c 2048) that (a) send nothing, (b) each pipeline
   2000 `get small` (100 bytes), (c) each pipeline 20 gets of the same 100 keys of 100 bytes;
   none reads a reply. Once the server is idle, its RSS grew by no more than memcached's in
   the same scenario and run (memcached: +0.6, +16.2 and +1.1 MiB), but for 64 KB in (a) and
   (c) (the two differ by -40..+30 KiB from run to run; tinycached keeps ~20 bytes a connection
   more: its session object and peer address string) and 1 MiB in (b): there memcached keeps a 16 KB read buffer per
   connection at all times, while tinycached's peak (+16.3..16.6 MiB) is reached while replies
   wait for the kernel to take them, so it follows timing.

No verdict depends on how fast the machine is: where a figure follows timing or how threads
interleave, it is compared with memcached's in the same run; a scenario runs for a count of
operations, not for a time; waits poll for what they wait for, and their limits (LIVENESS)
only tell "never" from "late".
"""
import os
import random
import socket
import sys
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from text_conn import Conn, raise_nofile, rss_bytes  # noqa: E402

IO_TIMEOUT = 20.0
# How long a test waits for something that must happen (a page move to finish, memory to come
# back) before it calls it never happening. Never a speed bound: a correct server on an idle
# machine takes well under a second.
LIVENESS = 60.0
KB = 1024
MiB = 1024 * 1024
STORED = b"STORED\r\n"

# A value's bytes depend on its key: a misplaced or torn value cannot pass as another's.
_POOL = random.Random(20240611).randbytes(2 * MiB + 4096)


def value_for(key, n):
    prefix = (key + b"#%d|" % n)[:n]
    off = zlib.crc32(key) % (MiB + 4096)
    return prefix + _POOL[off:off + n - len(prefix)]


def mib(n):
    return "%.1f MiB" % (n / MiB)


def is_stock():
    return harness.PRESET in (None, "stock")


def fill_key(prefix, i):
    return b"%s%07d" % (prefix, i)   # one length: every fill item is in one slab class


def fill_until_evicting(conn, prefix, vlen, batch=20000, limit=6000000):
    """Stores fill_key(prefix, i) = value_for(...) with noreply until the server has evicted, and
    one more batch after that. Returns how many were stored."""
    n = 0
    extra = 1
    while n < limit:
        conn.send(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n"
                           % (fill_key(prefix, i), vlen, value_for(fill_key(prefix, i), vlen))
                           for i in range(n, n + batch)))
        n += batch
        bad = conn.sync()
        if bad:
            raise AssertionError("noreply fill answered %r" % bad[:3])
        if int(conn.stats()["evictions"]) > 0:
            if extra == 0:
                return n
            extra -= 1
    raise AssertionError("no eviction after %d items" % n)


def open_idle_clients(port, n, rcvbuf=None):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.settimeout(IO_TIMEOUT)
            s.connect(("127.0.0.1", port))
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def cpu_seconds(pid):
    """User + system CPU time the process has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssWatch:
    """Samples a server's RSS and CPU time every 50 ms from a thread of its own. If the RSS grows
    past `hard_cap`, it kills the server at once, to spare the machine."""

    def __init__(self, server, hard_cap):
        self.server, self.hard_cap = server, hard_cap
        self.pid = server.proc.pid
        self.baseline = rss_bytes(self.pid)
        self.peak = self.baseline
        self.killed = None   # when it was killed
        self.samples = []   # (time, rss, cpu seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                r, cpu = rss_bytes(self.pid), cpu_seconds(self.pid)
            except (OSError, AssertionError, IndexError, ValueError):
                return   # the process is gone
            self.peak = max(self.peak, r)
            self.samples.append((time.time(), r, cpu))
            if r - self.baseline > self.hard_cap:
                self.killed = time.time()
                self.server.proc.kill()
                return
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()

    def settle(self, max_seconds=10.0, window=1.0, max_cpu=0.05, tolerance=2 * MiB):
        """Waits until, for `window` seconds, the server used at most `max_cpu` seconds of CPU
        and its RSS moved less than `tolerance`. Returns the seconds waited, or None if that did
        not happen within max_seconds (or the server was killed)."""
        t_start = time.time()
        while time.time() - t_start < max_seconds and self.killed is None:
            time.sleep(0.1)
            now = time.time()
            if now - t_start < window:
                continue
            recent = [x for x in self.samples if x[0] >= now - window]
            if (len(recent) >= 2 and recent[-1][2] - recent[0][2] <= max_cpu
                    and max(x[1] for x in recent) - min(x[1] for x in recent) < tolerance):
                return now - t_start
        return None

    def growth(self):
        return self.peak - self.baseline


def timed_gets(server, key, value, count=200, give_up=10.0):
    """`count` sequential gets of key on a fresh connection, for at most give_up seconds.
    Returns (seconds, gets done, wrong replies)."""
    t0 = time.time()
    done = wrong = 0
    c = Conn(server, timeout=give_up)
    try:
        while done < count and time.time() - t0 < give_up:
            if c.get(key) != value:
                wrong += 1
            done += 1
    except AssertionError:   # timed out
        pass
    finally:
        c.close()
    return time.time() - t0, done, wrong


class PageMoves:
    """Polls `stats` slabs_moved every 20 ms on a connection of its own, to tell whether a page
    moved between two moments (a server without the stat never moves a page)."""

    def __init__(self, server):
        self.conn = Conn(server, timeout=60)
        self.samples = []   # (time asked, time answered, slabs_moved)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            t0 = time.time()
            try:
                v = self.conn.stats().get("slabs_moved", "0")
            except (AssertionError, OSError):
                return
            self.samples.append((t0, time.time(), v))
            self._stop.wait(0.02)

    def stop(self):
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.conn.close()

    def changed_between(self, t0, t1):
        """True unless a sample answered before t0 and one asked after t1 show the same count
        (no sample on either side counts as a change). Waits for a sample after t1."""
        deadline = time.time() + 2
        while not self._stop.is_set() and time.time() < deadline and not any(
                asked >= t1 for asked, _, _ in self.samples[-5:]):
            time.sleep(0.01)
        samples = list(self.samples)
        before = [v for asked, answered, v in samples if answered <= t0]
        after = [v for asked, answered, v in samples if asked >= t1]
        return not before or not after or before[-1] != after[0]


class MemoryFixture(unittest.TestCase):
    """Starts the servers a memory test compares and checks they still answer."""
    maxDiff = None

    def start(self, args):
        server = harness.tinycached(list(args)).start()
        self.addCleanup(server.stop)
        self.tiny_server = server
        return server

    def start_reference(self, args):
        server = harness.reference(list(args)).start()
        self.addCleanup(server.stop)
        return server

    def assert_alive(self, server):
        self.assertTrue(server.alive(), "server died (exit code %r): %s"
                        % (server.proc.returncode, server.stderr_text()[-2000:]))
        c = Conn(server)
        try:
            self.assertIn("pid", c.stats())
        finally:
            c.close()


def sanitized(binary):
    """Whether `binary` is built with AddressSanitizer (its runtime's entry point is in it)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


class MemoryTest(MemoryFixture):
    # ------------------------------------------------------------- 1. refused stores
    SEQ_A = [(b"large:%03d" % i, (2 * i + 1) * KB) for i in range(512)]

    @staticmethod
    def seq_b_sizes():
        # 69 sizes from 2 bytes, each x1.2 the one before (rounded, and at least one more).
        sizes = [2]
        while len(sizes) < 69:
            sizes.append(max(sizes[-1] + 1, round(sizes[-1] * 1.2)))
        return sizes

    def run_sequences(self, server):
        """Sequence (a), then (b) on the cache (a) filled, on one connection. Returns what was
        refused, whether the server answered `stats` after each, and which newest items did not
        read back intact."""
        c = Conn(server)
        out = {}
        try:
            refused = []
            for key, n in self.SEQ_A:
                reply = c.set(key, value_for(key, n))
                if reply != STORED:
                    refused.append((key.decode(), n, reply))
            out["refused_a"] = refused
            out["alive_a"] = server.alive() and "pid" in c.stats()
            last = self.SEQ_A[-1]
            out["unreadable_a"] = [] if c.get(last[0]) == value_for(*last) else [last[0]]

            refused = []
            newest = []
            lost = []   # stored, then not read back right after
            for i, n in enumerate(self.seq_b_sizes()):
                for j in range(10):
                    key = b"key%d:%d" % (i, j)
                    reply = c.set(key, value_for(key, n))
                    if reply != STORED:
                        refused.append((key.decode(), n, reply))
                    elif c.get(key) != value_for(key, n):
                        lost.append((key.decode(), n))
                newest.append((key, n))
            out["refused_b"] = refused
            out["lost_b"] = lost
            out["alive_b"] = server.alive() and "pid" in c.stats()
            got = {}
            for i in range(0, len(newest), 10):
                got.update(c.get_values([k for k, _ in newest[i:i + 10]]))
            out["unreadable_b"] = [(k.decode(), n) for k, n in newest
                                   if got.get(k) != value_for(k, n)]
        finally:
            c.close()
        return out

    def test_1_no_refused_stores_under_eviction(self):
        args = ["-m", "64"]
        ref = self.run_sequences(self.start_reference(args))
        print("\n  memcached 1.6.18 %s: refused %d of %d (a), %d of %d (b); newest of a size "
              "lost: %r"
              % (" ".join(harness.reference_args() + args), len(ref["refused_a"]),
                 len(self.SEQ_A), len(ref["refused_b"]), 690,
                 ref["unreadable_a"] + ref["unreadable_b"]), file=sys.stderr)
        # The premise: memcached stores every one of them. (It does lose the newest items of
        # 454826 and 545791 bytes, evicted by the ten 654949-byte sets after them.)
        self.assertEqual(ref["refused_a"] + ref["refused_b"], [], "memcached refused")

        server = self.start(args)
        got = self.run_sequences(server)
        print("  tinycached: refused %d of %d (a), %d of %d (b)"
              % (len(got["refused_a"]), len(self.SEQ_A), len(got["refused_b"]), 690),
              file=sys.stderr)
        with self.subTest("a: 512 sets of 1 KB .. 1023 KB"):
            self.assertEqual(got["refused_a"][:5], [], "%d of %d sets refused, first shown"
                             % (len(got["refused_a"]), len(self.SEQ_A)))
        with self.subTest("a: alive, stats, newest item intact"):
            self.assertTrue(got["alive_a"])
            self.assertEqual(got["unreadable_a"], [])
        with self.subTest("b: 10 items at each of 69 sizes"):
            self.assertEqual(got["refused_b"][:5], [], "%d of 690 sets refused, first shown"
                             % len(got["refused_b"]))
        with self.subTest("b: every item reads back right after it is stored"):
            self.assertEqual(got["lost_b"], [])
        with self.subTest("b: alive, stats, newest item of each size intact (as memcached)"):
            self.assertTrue(got["alive_b"])
            print("  newest of a size lost: %r" % got["unreadable_b"], file=sys.stderr)
            # Later sets evict some of them, in memcached too. Asserted with memcached's own
            # class table only: a finer one (224 classes in compact) needs more pages than
            # -m holds for (b) alone (one 1 MiB page per size, most holding a few bytes),
            # and as memcached grants no page past the limit here, the stalest pages go.
            if not harness.PRESET:
                self.assertLessEqual(len(got["unreadable_b"]), len(ref["unreadable_b"]) + 2,
                                     "newest items lost: tinycached %r, memcached %r"
                                     % (got["unreadable_b"], ref["unreadable_b"]))
        self.assert_alive(server)

    # --------------------------------------------------------- 2. large-item churn
    CHURN_SETS = 2000
    CHURN_CONNS = 3
    CHURN_MAX = 1023 * KB   # within the 1 MB item limit in every layout

    def churn(self, server):
        """Fills `server` until it evicts, then runs the churn. Asserts nothing; returns the
        counts (refused sets, read-backs that missed with and without an excuse, misses among
        the last 50 stored) and the problems found."""
        c = Conn(server, timeout=60)
        self.addCleanup(c.close)
        filled = fill_until_evicting(c, b"tiny:", 40)
        moves = PageMoves(server)
        self.addCleanup(moves.stop)
        log = []        # (key, size, set start, set end) in completion order
        stored = []     # the same, for the sets answered STORED
        inflight = {}   # key: start, of the sets sent and not answered yet
        problems = []   # (what, key, ...)
        excused = []    # read-backs that missed while another set or a page move was under way
        lock = threading.Lock()
        t_begin = time.time()

        def evictable(key, t0, t1):
            """Could anything but a bug have removed `key`, stored from t0, between t0 and t1?
            Another connection's set under way then, or a page moved then (memcached's and
            tinycached's page movers evict what they cannot relocate)."""
            with lock:
                if any(e[0] != key and e[3] > t0 and e[2] < t1 for e in log):
                    return True
                if any(k != key and start < t1 for k, start in inflight.items()):
                    return True
            return moves.changed_between(t0, t1)

        def worker(w):
            rng = random.Random(1000 + w)
            conn = Conn(server, timeout=60)
            try:
                for n in range(self.CHURN_SETS // self.CHURN_CONNS):
                    r = rng.random()
                    if r < 0.35:
                        size = rng.randint(1, self.CHURN_MAX)
                    elif r < 0.5:
                        size = rng.randint(512 * KB, self.CHURN_MAX)
                    else:   # log-uniform: every size class gets its share
                        size = min(self.CHURN_MAX, int(2 ** rng.uniform(0, 20)))
                    key = b"churn:%d:%d" % (w, n)
                    value = value_for(key, size)
                    with lock:
                        t0 = inflight[key] = time.time()
                    reply = conn.set(key, value)
                    t1 = time.time()
                    with lock:
                        del inflight[key]
                        log.append((key, size, t0, t1))
                        if reply == STORED:
                            stored.append((key, size, t0, t1))
                    if reply != STORED:
                        problems.append(("refused", key, size, reply))
                        continue
                    got = conn.get(key)
                    t2 = time.time()
                    if got is None:
                        entry = ("miss", key, size)
                        (excused if evictable(key, t0, t2) else problems).append(entry)
                    elif got != value:
                        problems.append(("WRONG VALUE", key, size, len(got)))
            except Exception as e:  # reported below, with the rest
                problems.append(("exception", w, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(self.CHURN_CONNS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.time() - t_begin
        # the last 50 stored: a hit must be exact; a miss only if something could evict it
        last = stored[-50:]
        got = {}
        for i in range(0, len(last), 10):
            got.update(c.get_values([e[0] for e in last[i:i + 10]]))
        t_end = time.time()
        final_misses = []
        for key, size, t0, t1 in last:
            if key not in got:
                if not evictable(key, t0, t_end):
                    problems.append(("final miss, nothing could evict it", key, size))
                final_misses.append(key)
            elif got[key] != value_for(key, size):
                problems.append(("WRONG VALUE at the end", key, size, len(got[key])))
        moves.stop()
        stats = c.stats()
        r = {"sets": len(log), "refused": len(log) - len(stored), "excused": len(excused),
             "unexcused": len([p for p in problems if p[0] == "miss"]),
             "final_misses": len(final_misses), "problems": problems}
        # every fresh item the server did not keep: refused, or gone when read back at once
        r["not_kept"] = r["refused"] + r["excused"] + r["unexcused"]
        print("  %s: %d tiny items filled the cache; %d sets of 1 B..1023 KB on %d connections "
              "in %.1f s; evictions %s, slabs_moved %s; refused %d; read-backs that missed: %d "
              "excused, %d not; last 50: %d missed"
              % (os.path.basename(server.binary), filled, r["sets"], self.CHURN_CONNS, seconds,
                 stats.get("evictions"), stats.get("slabs_moved"), r["refused"], r["excused"],
                 r["unexcused"], r["final_misses"]), file=sys.stderr)
        return r

    # How many more fresh items tinycached may fail to keep than memcached in the same run.
    # Both counts follow how the three connections interleave, and the two runs are moments
    # apart on a machine whose load changes: on an idle one memcached 1.6.18 loses ~150 of the
    # 2000 and refuses 20-60, tinycached (stock, compact, tiny) loses 80-150 and refuses none;
    # on a loaded one a run of compact lost 292 beside memcached's 146. A server that does not
    # keep what it stores loses most of the 2000, far past the margin.
    CHURN_MARGIN = 3, 100       # tinycached <= 3 x memcached + 100
    FINAL_MARGIN = 15           # of the last 50: tinycached <= memcached + 15

    def test_2_large_item_churn_in_full_cache(self):
        print("", file=sys.stderr)
        ref = self.churn(self.start_reference(["-m", "64"]))
        server = self.start(["-m", "64"])
        got = self.churn(server)
        problems = got["problems"]

        def of_kind(*kinds):
            found = [p for p in problems if p[0] in kinds]
            return "%d, first shown: %r" % (len(found), found[:5]) if found else ""

        with self.subTest("every set STORED"):
            self.assertEqual(of_kind("refused"), "")
        with self.subTest("every hit exact"):
            self.assertEqual(of_kind("WRONG VALUE", "WRONG VALUE at the end"), "")
        with self.subTest("items kept"):
            self.assertEqual(of_kind("miss", "final miss, nothing could evict it"), "",
                             "misses that no other set and no page move can explain")
            # A server that keeps what it stored loses a just-stored item only to a concurrent
            # set in the same small class or to a page move; losing many more than memcached
            # does in the same scenario means it does not keep them.
            factor, extra = self.CHURN_MARGIN
            self.assertLessEqual(got["not_kept"], factor * ref["not_kept"] + extra,
                                 "fresh items not kept: tinycached %d, memcached %d (%d refused)"
                                 % (got["not_kept"], ref["not_kept"], ref["refused"]))
            self.assertLessEqual(got["final_misses"], ref["final_misses"] + self.FINAL_MARGIN,
                                 "of the last 50 items, tinycached lost %d, memcached %d"
                                 % (got["final_misses"], ref["final_misses"]))
        self.assertEqual(of_kind("exception"), "")
        self.assert_alive(server)

    # ------------------------------------------------- 3 and 4. many bad clients at once
    HOGS = 1000
    BIG = 1000 * 1000
    HARD_CAP = 1024 * MiB   # past this the server is killed, to spare the machine

    def hog_scenario(self, server, payload, rcvbuf=None, gets_bound=None):
        """Sets `small` and `big`, opens HOGS connections that each send payload(i) and then
        neither send nor read, waits until the server is idle, and measures. If the other
        client's gets take longer than gets_bound(m) (a function of these measurements), they
        are timed once more, in case the machine rather than the server was busy. Asserts
        nothing; returns the measurements."""
        big = value_for(b"big", self.BIG)
        small = value_for(b"small", 100)
        c = Conn(server)
        try:
            self.assertEqual(c.set(b"big", big), STORED)
            self.assertEqual(c.set(b"small", small), STORED)
        finally:
            c.close()
        m = {"name": os.path.basename(server.binary), "gets_seconds": None, "gets_done": 0,
             "gets_tries": [],
             "gets_wrong": 0, "big_intact": None, "after_close": None, "error": None}
        m["quiet_gets_seconds"] = timed_gets(server, b"small", small)[0]
        time.sleep(0.2)
        watch = RssWatch(server, self.HARD_CAP)
        self.addCleanup(watch.stop)
        m["baseline"] = watch.baseline
        socks = open_idle_clients(server.port, self.HOGS, rcvbuf=rcvbuf)
        try:
            for i, s in enumerate(socks):
                s.sendall(payload(i))
            t0 = m["hogs_sent"] = time.time()
            m["settled_after"] = watch.settle(max_seconds=15)
            m["waited"] = time.time() - t0
            m["gets_seconds"], m["gets_done"], m["gets_wrong"] = timed_gets(
                server, b"small", small)
            m["gets_tries"] = [m["gets_seconds"]]
            if (gets_bound and m["gets_done"] == 200
                    and m["gets_seconds"] > gets_bound(m)):
                # once more, in case the machine was busy rather than the server unfair
                time.sleep(1)
                m["gets_seconds"], m["gets_done"], wrong = timed_gets(server, b"small", small)
                m["gets_wrong"] += wrong
                m["gets_tries"].append(m["gets_seconds"])
            c = Conn(server, timeout=60)
            try:
                m["big_intact"] = c.get(b"big") == big
            finally:
                c.close()
        except (AssertionError, OSError) as e:
            m["error"] = repr(e)
        finally:
            m["alive_during"] = server.alive()
            m["growth"] = watch.growth()
            close_all(socks)
        # memory comes back once the server has handled the closes: poll until it has, for as
        # long as a server that never gives it back needs to be caught (not a speed bound)
        deadline = time.monotonic() + self.GIVE_BACK_LIMIT
        while server.alive():
            after = rss_bytes(server.proc.pid) - watch.baseline
            m["after_close"] = after
            if after <= self.GIVEN_BACK or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        watch.stop()
        m["killed"] = watch.killed is not None and watch.killed - m["hogs_sent"]
        return m

    GIVEN_BACK = 16 * MiB      # RSS over the start once the hogs have closed
    GIVE_BACK_LIMIT = 30.0     # seconds: only a server that keeps the memory waits this long

    @staticmethod
    def gets_bound(ref):
        """How long the other client's 200 gets may take, from memcached's figures in the same
        run: 20x the slowest of what memcached took with the hogs connected and what either
        server took before they came (~0.01 s each on an idle machine), and never under 2 s, the
        stall a loaded 2-core machine can add to any one of them. A server that serves the hogs
        before the other client takes 30 s and more. The tries of memcached and tinycached are
        separate moments; a second try is allowed, for a machine busy at one of them."""
        return lambda m: max(2.0, 20 * max(ref["gets_seconds"] or 0, ref["quiet_gets_seconds"],
                                          m["quiet_gets_seconds"]))

    @staticmethod
    def describe(m):
        if m["killed"]:
            return "%s: RSS grew past +%s (peak seen +%s): killed %.1f s after the hogs sent" % (
                m["name"], mib(MemoryTest.HARD_CAP), mib(m["growth"]), m["killed"])
        if m["error"]:
            return "%s: %s; RSS peak +%s" % (m["name"], m["error"], mib(m["growth"]))
        gets = ("200 gets of another client took %s s" % ", then ".join(
                    "%.3f" % t for t in m["gets_tries"])
                if m["gets_done"] == 200 else
                "another client's gets: %d of 200 in %.1f s" % (m["gets_done"], m["gets_seconds"]))
        return ("%s: RSS %s at start, peak +%s, +%s after they closed; %s; %s (%.3f s before)"
                % (m["name"], mib(m["baseline"]), mib(m["growth"]), mib(m["after_close"] or 0),
                   "idle after %.1f s" % m["settled_after"] if m["settled_after"] is not None
                   else "still busy after %.1f s" % m["waited"],
                   gets, m["quiet_gets_seconds"]))

    def check_hogs(self, args, payload, what, rss_bound, rcvbuf=None, after_close_bound=None,
                   big_kept=True):
        raise_nofile(self, self.HOGS * 2 + 200)
        print("\n  %s:" % what, file=sys.stderr)
        ref = self.hog_scenario(self.start_reference(args), payload, rcvbuf)
        print("    " + self.describe(ref), file=sys.stderr)
        server = self.start(args)
        bound = self.gets_bound(ref)
        m = self.hog_scenario(server, payload, rcvbuf, gets_bound=bound)
        print("    " + self.describe(m), file=sys.stderr)
        self.assertIs(m["killed"], False, "RSS grew past +%s: server killed" % mib(self.HARD_CAP))
        self.assertTrue(m["alive_during"], "server died")
        self.assertIsNone(m["error"])
        with self.subTest("RSS growth at most %s" % mib(rss_bound)):
            self.assertLessEqual(m["growth"], rss_bound, "RSS grew by %s" % mib(m["growth"]))
        with self.subTest("another client is served"):
            self.assertEqual(m["gets_done"], 200, "another client's gets: %d of 200 in %.1f s"
                             % (m["gets_done"], m["gets_seconds"]))
            self.assertEqual(m["gets_wrong"], 0, "wrong replies to the other client's gets")
            self.assertLess(m["gets_seconds"], bound(m),
                            "200 gets of another client took %s s (memcached: %.3f s)"
                            % (", then ".join("%.1f" % t for t in m["gets_tries"]),
                               ref["gets_seconds"] or 0))
        if big_kept:
            with self.subTest("big intact"):
                self.assertTrue(m["big_intact"], "big no longer reads back intact")
        if after_close_bound is not None:
            with self.subTest("memory given back"):
                self.assertLessEqual(m["after_close"], after_close_bound,
                                     "RSS still +%s %.0f s after they closed"
                                     % (mib(m["after_close"]), self.GIVE_BACK_LIMIT))
        self.assert_alive(server)

    def test_3_slow_readers(self):
        # Kernel buffers are not the server's RSS; a small receive buffer keeps them small.
        self.check_hogs(["-c", "2048"], lambda i: b"get big\r\n" * 20,
                        "1000 connections each pipeline 20 gets of a 1 MB value, never read",
                        rss_bound=64 * MiB, rcvbuf=4096, after_close_bound=self.GIVEN_BACK)

    # A stalled value may hold its item's memory: up to the item memory limit (-m 64), plus
    # 16 MiB for 1000 connections' own state (memcached: +68..70 MiB here). memcached evicts
    # `big` for the stalled values' memory, so only `small` must survive there.
    STALLED_BOUND = 64 * MiB + 16 * MiB

    def test_4a_stalled_values(self):
        self.check_hogs(["-m", "64", "-c", "2048"],
                        lambda i: b"set k%d 0 0 1000000\r\n" % i + b"v" * 1000,
                        "1000 sets stalled after 1000 of 1000000 value bytes",
                        rss_bound=self.STALLED_BOUND, big_kept=False)

    def test_4b_stalled_command_lines(self):
        self.check_hogs(["-m", "64", "-c", "2048"], lambda i: b"get " + b"a" * 996,
                        "1000 command lines stalled after 1000 bytes, no newline",
                        rss_bound=self.STALLED_BOUND)


class ConnectionMemoryTest(MemoryTest):
    """5. What a connection that never reads its replies costs, against memcached."""
    MULTI_KEYS = [b"m%02d" % i for i in range(100)]

    def check_conn_memory(self, payload, what, margin=0):
        raise_nofile(self, self.HOGS * 2 + 200)
        print("\n  %s:" % what, file=sys.stderr)
        growth = {}
        for name, start in (("memcached", self.start_reference), ("tinycached", self.start)):
            server = start(["-c", "2048"])
            c = Conn(server)
            try:
                for k in self.MULTI_KEYS:
                    self.assertEqual(c.set(k, value_for(k, 100)), STORED)
            finally:
                c.close()
            m = self.hog_scenario(server, payload)
            print("    " + self.describe(m), file=sys.stderr)
            self.assertIs(m["killed"], False)
            self.assertIsNone(m["error"], name)
            self.assertIsNotNone(m["settled_after"], "%s never went idle" % name)
            self.assertEqual(m["gets_done"], 200, name)
            self.assertEqual(m["gets_wrong"], 0, name)
            growth[name] = m["growth"]
        if sanitized(harness.TINYCACHED):
            # ASan's allocator (redzones, a quarantine of freed blocks) sets the RSS, not the
            # server's own buffers: the scenario ran, its replies were checked, and that is all.
            print("    growth not compared: a sanitizer build (tinycached %d KiB, memcached %d KiB)"
                  % (growth["tinycached"] // KB, growth["memcached"] // KB), file=sys.stderr)
            self.assert_alive(self.tiny_server)
            return
        self.assertLessEqual(growth["tinycached"], growth["memcached"] + margin,
                             "RSS grew by %d KiB, memcached's by %d KiB"
                             % (growth["tinycached"] // KB, growth["memcached"] // KB))
        print("    growth: tinycached %d KiB, memcached %d KiB" % (
            growth["tinycached"] // KB, growth["memcached"] // KB), file=sys.stderr)
        self.assert_alive(self.tiny_server)

    def test_5a_idle_connections(self):
        # tinycached: 0..30 KiB over memcached's ~600 KiB (~20 bytes a connection): its session
        # object and peer address string, which memcached keeps inside its connection structure.
        self.check_conn_memory(lambda i: b"", "1000 idle connections", margin=64 * KB)

    def test_5b_pipelined_small_gets(self):
        self.check_conn_memory(lambda i: b"get small\r\n" * 2000,
                               "1000 connections each pipeline 2000 gets of 100 bytes, never read",
                               margin=1 * MiB)

    def test_5c_pipelined_multigets(self):
        line = b"get " + b" ".join(self.MULTI_KEYS) + b"\r\n"
        self.check_conn_memory(lambda i: line * 20,
                               "1000 connections each pipeline 20 gets of 100 keys of 100 bytes, "
                               "never read", margin=64 * KB)


if __name__ == "__main__":
    harness.main()
