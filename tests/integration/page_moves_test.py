"""Pages move between slab classes without corrupting items, and the slabs commands answer
as memcached's do.

Run as
    /usr/bin/python3 tests/integration/page_moves_test.py --tinycached build/server/tinycached \
        [--preset NAME]

Each test starts its own tinycached and Debian's memcached 1.6.18 (memory_test.MemoryFixture),
with the preset's flags as every integration test does.

1. `slabs reassign` / `slabs automove` replies, byte for byte as memcached's, at default flags
   and with `-o slab_reassign,slab_automove=0` (stock only: class ids depend on the layout).
2. Page moves under verified load (-m 16), on memcached and then on tinycached: small items
   fill class A until it evicts; 4 connections store and read back values of a larger class B
   and read A items (a hit must be exact, a miss is allowed), while `slabs reassign A B` is
   sent every 50 ms, until each writer made 2500 sets and 5 pages moved. No wrong value, only
   memcached's replies, no B item missed by one get and found by the next, and at most
   memcached's count of B misses + 1 in 1000 sets.

Where a figure follows timing or how threads interleave it is compared with memcached's in the
same run; waits poll, and their limits (LIVENESS) only tell "never" from "late".
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from memory_test import (LIVENESS, STORED, Conn, MemoryFixture, fill_key,  # noqa: E402
                         fill_until_evicting, is_stock, value_for)


class PageMovesTest(MemoryFixture):
    # ------------------------------------------------------ 5. slabs command replies
    # Every case runs on one connection per server, in this order; each is followed by
    # `version`, so a case that answers nothing (noreply) is seen as answering nothing. After
    # a case answered OK, both servers finish any page move it started.
    SLABS_CASES = [
        b"slabs reassign 1 1",
        b"slabs reassign 0 1",
        b"slabs reassign 1 999",
        b"slabs reassign -2 1",
        b"slabs reassign 1 2",
        b"slabs reassign 2 1",
        b"slabs reassign 1 0",
        b"slabs reassign -1 2",
        b"slabs reassign 1 -1",
        b"slabs reassign -1 -1",
        b"slabs reassign 1 39",      # memcached's largest class at -n 48 -f 1.25
        b"slabs reassign 1 40",
        b"slabs reassign 40 1",
        b"slabs reassign 1 63",
        b"slabs reassign 2147483648 1",
        b"slabs reassign 01 +2",
        b"slabs reassign x y",
        b"slabs reassign 1 1x",
        b"slabs reassign",
        b"slabs reassign 1",
        b"slabs reassign 1 2 3",
        b"slabs reassign 1 1 noreply",
        b"slabs  reassign  1  1 ",
        b"slabs automove 0",
        b"slabs automove 1",
        b"slabs automove 2",
        b"slabs automove 3",
        b"slabs automove x",
        b"slabs automove -1",
        b"slabs automove 01",
        b"slabs automove 4294967296",
        b"slabs automove 1 2",
        b"slabs automove 1 2 3 4 5",
        b"slabs automove 2 noreply",
        b"slabs automove 3 noreply",
        b"slabs automove x noreply",
        b"slabs automove",
        b"slabs automove ratio 0.5",
        b"slabs automove ratio x",
        b"slabs automove ratio",
        b"slabs automove 0",
        b"slabs",
        b"slabs foo",
        b"slabs foo 1 2",
        b"SLABS reassign 1 1",
        b"slabs REASSIGN 1 1",
    ]

    def compare_slabs_replies(self, args):
        if not is_stock():
            self.skipTest("slab class ids depend on the layout; compared in the stock layout")
        conns = [Conn(self.start_reference(args)), Conn(self.start(args))]
        for c in conns:
            self.addCleanup(c.close)
        for cmd in self.SLABS_CASES:
            replies = []
            for c in conns:
                c.send(cmd + b"\r\n")
                replies.append(b"".join(c.sync()))
            with self.subTest(cmd=cmd.decode()):
                self.assertEqual(replies[1], replies[0])
            # A move one server started must not leave the next case answering BUSY: wait
            # until `slabs reassign 1 1` answers SAME again (memcached checks BUSY first).
            if b"OK\r\n" in replies:
                for c in conns:
                    deadline = time.monotonic() + LIVENESS
                    while (c.call(b"slabs reassign 1 1\r\n").startswith(b"BUSY")
                           and time.monotonic() < deadline):
                        time.sleep(0.02)
        self.assert_alive(self.tiny_server)

    def test_5a_slabs_replies_default_flags(self):
        self.compare_slabs_replies(["-m", "64"])

    def test_5b_slabs_replies_reassign_automove_0(self):
        self.compare_slabs_replies(["-m", "64", "-o", "slab_reassign,slab_automove=0"])

    def test_5c_slabs_reassign_with_a_spare_page(self):
        # Class 1 given 3 pages (no eviction at -m 64): a reassign is accepted, and in time
        # `stats` counts the page moved. Then with automove off, the same again.
        if not is_stock():
            self.skipTest("slab class ids depend on the layout; compared in the stock layout")
        args = ["-m", "64", "-o", "slab_reassign,slab_automove=0"]
        fill = b"".join(b"set s%05d 0 0 10 noreply\r\n0123456789\r\n" % i for i in range(30000))

        def run(server):
            c = Conn(server)
            try:
                c.send(fill)
                c.sync()
                before = c.stats(b"slabs").get("1:total_pages")
                c.send(b"slabs reassign 1 5\r\n")
                first = b"".join(c.sync())
                deadline = time.monotonic() + LIVENESS
                while c.stats()["slabs_moved"] == "0" and time.monotonic() < deadline:
                    time.sleep(0.05)
                return before, first, c.stats()["slabs_moved"]
            finally:
                c.close()

        want = run(self.start_reference(args))
        print("\n  memcached: class 1 had %s pages; `slabs reassign 1 5` -> %r; slabs_moved %s"
              % want, file=sys.stderr)
        server = self.start(args)
        self.assertEqual(run(server), want)
        self.assert_alive(server)

    def test_5d_page_in_the_global_pool_stays_in_total_malloced(self):
        # `slabs reassign 1 0` puts a page of class 1 in the global pool; memcached keeps
        # counting it in total_malloced (memcached's t/slabs-reassign2.t checks this).
        if not is_stock():
            self.skipTest("slab class ids depend on the layout; compared in the stock layout")
        args = ["-m", "64", "-o", "slab_reassign,slab_automove=0"]
        fill = b"".join(b"set s%05d 0 0 10 noreply\r\n0123456789\r\n" % i for i in range(30000))

        def run(server):
            c = Conn(server)
            try:
                c.send(fill)
                c.sync()
                before = c.stats(b"slabs")["total_malloced"]
                c.send(b"slabs reassign 1 0\r\n")
                reply = b"".join(c.sync())
                deadline = time.monotonic() + LIVENESS
                while c.stats()["slab_global_page_pool"] == "0" and time.monotonic() < deadline:
                    time.sleep(0.05)
                return (reply, before, c.stats()["slab_global_page_pool"],
                        c.stats(b"slabs")["total_malloced"])
            finally:
                c.close()

        want = run(self.start_reference(args))
        self.assertEqual(want[0], b"OK\r\n")
        self.assertEqual(want[2], "1")
        server = self.start(args)
        self.assertEqual(run(server), want)
        self.assert_alive(server)

    # ------------------------------------------------------ 6. page moves under load
    A_VALUE = 50
    B_VALUE = 12000
    MOVE_SETS = 2500     # B sets each of the 4 writers makes at least
    MIN_MOVES = 5        # pages moved (`slabs_moved`) before the writers stop
    # B items tinycached may lose more than memcached in the same run, per B set. A page of B
    # holds ~75 items and B owns ~15 pages, so an LRU never reaches an item before it is read
    # back; memcached loses none (its items:B:evicted_unfetched counts only the probe).
    # tinycached loses 0-2 in ~11000, and 7 once with both cores loaded, every one counted in
    # B's evicted_unfetched while no page left B: an eviction that reached a fresh item, which
    # the margin tolerates and a second get shows is not a lookup that missed a stored item.
    B_MISS_MARGIN = 1 / 1000

    def page_move_load(self, server):
        """Fills class A of `server` (-m 16) until it evicts; then 4 connections store and read
        back B items and read A items while `slabs reassign A B` is sent every 50 ms, until each
        writer made MOVE_SETS sets and MIN_MOVES pages moved (or LIVENESS passed). Asserts
        only what tells the classes apart; returns the counts and the problems found."""
        c = Conn(server, timeout=60)
        self.addCleanup(c.close)
        a_count = fill_until_evicting(c, b"a:", self.A_VALUE, batch=10000)
        slabs = c.stats(b"slabs")
        pages = {int(k.split(":")[0]): int(v) for k, v in slabs.items()
                 if k.endswith(":total_pages")}
        a_class = max(pages, key=pages.get)

        def sets_per_class():
            return {int(k.split(":")[0]): int(v) for k, v in c.stats(b"slabs").items()
                    if k.endswith(":cmd_set")}

        before = sets_per_class()
        self.assertEqual(c.set(b"b:probe", value_for(b"b:probe", self.B_VALUE)), STORED)
        after = sets_per_class()
        b_classes = [k for k, v in after.items() if v > before.get(k, 0)]
        self.assertEqual(len(b_classes), 1, "cannot tell class B from %r" % after)
        b_class = b_classes[0]
        self.assertNotEqual(a_class, b_class)

        problems = []
        counts = {"b_sets": 0, "b_hits": 0, "b_misses": 0, "a_hits": 0, "a_misses": 0}
        sets_by = [0] * 4
        newest_b = {}
        lock = threading.Lock()
        stop = threading.Event()

        def worker(w):
            rng = random.Random(w)
            conn = Conn(server, timeout=60)
            n = 0
            try:
                while not stop.is_set():
                    key = b"b:%d:%d" % (w, n)
                    value = value_for(key, self.B_VALUE)
                    reply = conn.set(key, value)
                    if reply != STORED:
                        problems.append(("B set refused", key, reply))
                    else:
                        got = conn.get(key)
                        if got is None:
                            with lock:
                                counts["b_misses"] += 1
                            # evicted stays gone; a miss that a second get finds was a
                            # lookup that did not see a stored item
                            if conn.get(key) is not None:
                                problems.append(("B item missed, then found", key))
                        elif got != value:
                            problems.append(("WRONG B VALUE", key, len(got)))
                        else:
                            with lock:
                                counts["b_hits"] += 1
                        newest_b[w] = n
                    with lock:
                        counts["b_sets"] += 1
                        sets_by[w] += 1
                    n += 1
                    keys = [fill_key(b"a:", i) for i in rng.sample(range(a_count), 10)]
                    got = conn.get_values(keys)
                    for k in keys:
                        if k in got and got[k] != value_for(k, self.A_VALUE):
                            problems.append(("WRONG A VALUE", k, got[k][:60]))
                    with lock:
                        counts["a_hits"] += len(got)
                        counts["a_misses"] += len(keys) - len(got)
            except Exception as e:
                problems.append(("exception", w, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        replies = {}
        moved = 0
        deadline = time.monotonic() + LIVENESS
        try:
            # Stops on counts, not on time: however the machine schedules the threads, the
            # writers have done their sets and pages have moved under them.
            while time.monotonic() < deadline:
                reply = c.call(b"slabs reassign %d %d\r\n" % (a_class, b_class))
                replies[reply] = replies.get(reply, 0) + 1
                moved = int(c.stats().get("slabs_moved", "0"))
                with lock:
                    writers_done = all(n >= self.MOVE_SETS or not t.is_alive()
                                       for n, t in zip(sets_by, threads))
                if writers_done and moved >= self.MIN_MOVES:
                    break
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join()
        # the newest B item of every writer, and a sample of A, once more
        for w, n in newest_b.items():
            key = b"b:%d:%d" % (w, n)
            got = c.get(key)
            if got is not None and got != value_for(key, self.B_VALUE):
                problems.append(("WRONG B VALUE at the end", key))
        sample = [fill_key(b"a:", i) for i in range(0, a_count, max(1, a_count // 500))]
        for i in range(0, len(sample), 50):
            for k, v in c.get_values(sample[i:i + 50]).items():
                if v != value_for(k, self.A_VALUE):
                    problems.append(("WRONG A VALUE at the end", k))
        stats = c.stats()
        moved = int(stats.get("slabs_moved", "0"))
        items = c.stats(b"items")
        print("  B: " + " ".join("%s=%s" % (f, items.get("items:%d:%s" % (b_class, f)))
                                for f in ("number", "evicted", "evicted_unfetched", "outofmemory")),
              file=sys.stderr)
        print("  %s: classes A=%d (%d items) B=%d; reassign replies %r; %r; slabs_moved %d, "
              "slab_reassign_rescues %s, slab_reassign_evictions_nomem %s, evictions %s"
              % (os.path.basename(server.binary), a_class, a_count, b_class, replies, counts,
                 moved, stats.get("slab_reassign_rescues"),
                 stats.get("slab_reassign_evictions_nomem"), stats.get("evictions")),
              file=sys.stderr)
        return {"problems": problems, "replies": replies, "counts": counts, "moved": moved,
                "sets_by": sets_by}

    def test_6_page_moves_under_verified_load(self):
        print("", file=sys.stderr)
        ref = self.page_move_load(self.start_reference(["-m", "16"]))
        server = self.start(["-m", "16"])
        got = self.page_move_load(server)
        problems, counts = got["problems"], got["counts"]
        with self.subTest("no wrong value, every B set STORED"):
            self.assertEqual(problems[:10], [], "%d problems, first shown" % len(problems))
        with self.subTest("`slabs reassign` answers as memcached does"):
            allowed = {b"OK\r\n", b"BUSY currently processing reassign request\r\n",
                       b"NOSPARE source class has no spare pages\r\n"}
            self.assertEqual(set(got["replies"]) - allowed, set(),
                             "unexpected `slabs reassign` replies")
        with self.subTest("pages moved under the writers"):
            self.assertGreaterEqual(got["moved"], self.MIN_MOVES,
                                    "%d pages moved in %.0f s" % (got["moved"], LIVENESS))
            self.assertGreaterEqual(min(got["sets_by"]), self.MOVE_SETS,
                                    "B sets per writer: %r" % got["sets_by"])
        with self.subTest("B items kept (against memcached in the same run)"):
            allowed = ref["counts"]["b_misses"] + counts["b_sets"] * self.B_MISS_MARGIN
            self.assertLessEqual(counts["b_misses"], allowed,
                                 "B items missing right after their STORED: %d of %d "
                                 "(memcached: %d of %d)"
                                 % (counts["b_misses"], counts["b_sets"],
                                    ref["counts"]["b_misses"], ref["counts"]["b_sets"]))
        self.assert_alive(server)


if __name__ == "__main__":
    harness.main()
