"""tinycached driven by a real client library: Debian's python3-pymemcache.

Run as
    /usr/bin/python3 tests/integration/pymemcache_test.py --tinycached build/server/tinycached
Every test starts its own server (the --tinycached binary) with `-I 1m` and talks to
it only through pymemcache.  The expected results are memcached 1.6's; the file passes
unchanged with `--tinycached /usr/bin/memcached`.
"""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from pymemcache.client.base import Client  # noqa: E402
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError  # noqa: E402

ITEM_SIZE_MAX = 1024 * 1024  # -I 1m
CLOCK_ATTEMPTS = 5  # test_expiry: tries for its first commands to fit in one clock second
U64_MAX = 2 ** 64 - 1


def cas_on():
    """Whether the item-layout preset under test keeps CAS (memcached -C semantics if not)."""
    return harness.PRESET_KNOBS.get("cas") != "off"


def max_value_len(key, flags, settings):
    """Largest value the server (-I 1m) accepts for this text key and flags, from the item
    layout `stats settings` reports (compact/item_layout.h). memcached 1.6 (stock): 48-byte
    header + 8-byte CAS + key + NUL + 4-byte flags (only if non-zero) + value + "\\r\\n".
    Lean header: header + value-length varint (3 bytes near 1 MB) + CAS + flags + key + value."""
    header = int(settings[b"item_header_bytes"])
    cas = 8 if settings[b"cas_enabled"] == b"yes" else 0
    flag_bytes = 4 if flags else 0
    if settings[b"item_header"] == b"lean":
        return ITEM_SIZE_MAX - (header + 3 + cas + flag_bytes + len(key))
    return ITEM_SIZE_MAX - (header + cas + len(key) + 1 + flag_bytes + 2)


class RawFlagsSerde:
    """No serialisation at all: values go out as the bytes given (flags are passed
    explicitly to every store call) and come back as (bytes, flags)."""

    def serialize(self, key, value):
        assert isinstance(value, bytes), value
        return value, 0

    def deserialize(self, key, value, flags):
        return value, flags


class PymemcacheTest(unittest.TestCase):
    def setUp(self):
        self.server = harness.tinycached(["-I", "1m"]).start()
        self.addCleanup(self.server.stop)
        self.mc = self.client()

    def client(self, serde=None):
        c = Client(("127.0.0.1", self.server.port), serde=serde, connect_timeout=5,
                   timeout=15, no_delay=True, default_noreply=False)
        self.addCleanup(c.close)
        return c

    def tearDown(self):
        self.assertTrue(self.server.alive(), "server died during the test")

    # ---------------------------------------------------------------- basics
    def test_set_get(self):
        mc = self.mc
        self.assertIsNone(mc.get(b"nokey"))
        self.assertEqual(mc.get(b"nokey", default=b"dflt"), b"dflt")
        self.assertTrue(mc.set(b"k1", b"hello"))
        self.assertEqual(mc.get(b"k1"), b"hello")
        self.assertTrue(mc.set(b"k1", b"world, longer than before"))
        self.assertEqual(mc.get(b"k1"), b"world, longer than before")
        self.assertTrue(mc.set(b"k1", b""))
        self.assertEqual(mc.get(b"k1"), b"")
        self.assertTrue(mc.set("strkey", "strvalue"))
        self.assertEqual(mc.get(b"strkey"), b"strvalue")
        key250 = b"K" * 250
        self.assertTrue(mc.set(key250, b"longkey"))
        self.assertEqual(mc.get(key250), b"longkey")
        version = mc.version()
        self.assertTrue(version and b" " not in version and b"\r" not in version, version)

    def test_get_many_with_missing_keys(self):
        mc = self.mc
        for i in range(0, 10, 2):
            self.assertTrue(mc.set(b"m%d" % i, b"value-%d" % i))
        keys = [b"m%d" % i for i in range(10)]
        got = mc.get_many(keys)
        self.assertEqual(got, {b"m%d" % i: b"value-%d" % i for i in range(0, 10, 2)})
        self.assertEqual(mc.get_many([b"x1", b"x2", b"x3"]), {})
        # the same key twice in one get: memcached returns it twice, pymemcache folds it
        self.assertEqual(mc.get_many([b"m0", b"m0", b"m1"]), {b"m0": b"value-0"})
        got = mc.gets_many(keys)
        self.assertEqual(sorted(got), [b"m%d" % i for i in range(0, 10, 2)])
        for i in range(0, 10, 2):
            value, cas = got[b"m%d" % i]
            self.assertEqual(value, b"value-%d" % i)
            self.assertTrue(cas.isdigit(), cas)
        # distinct items have distinct CAS values (all 0 without CAS, as memcached -C)
        self.assertEqual({cas for _, cas in got.values()} == {b"0"}, not cas_on())
        if cas_on():
            self.assertEqual(len({cas for _, cas in got.values()}), 5)

    def test_add_replace(self):
        mc = self.mc
        self.assertFalse(mc.replace(b"ar", b"r0"))           # NOT_STORED: missing
        self.assertIsNone(mc.get(b"ar"))
        self.assertTrue(mc.add(b"ar", b"a1"))                # STORED: missing
        self.assertEqual(mc.get(b"ar"), b"a1")
        self.assertFalse(mc.add(b"ar", b"a2"))               # NOT_STORED: exists
        self.assertEqual(mc.get(b"ar"), b"a1")
        self.assertTrue(mc.replace(b"ar", b"r1"))            # STORED: exists
        self.assertEqual(mc.get(b"ar"), b"r1")
        self.assertTrue(mc.delete(b"ar"))
        self.assertFalse(mc.replace(b"ar", b"r2"))
        self.assertTrue(mc.add(b"ar", b"a3"))
        self.assertEqual(mc.get(b"ar"), b"a3")

    def test_append_prepend(self):
        mc = self.mc
        self.assertFalse(mc.append(b"ap", b"tail"))          # NOT_STORED on a miss
        self.assertFalse(mc.prepend(b"ap", b"head"))
        self.assertIsNone(mc.get(b"ap"))
        self.assertTrue(mc.set(b"ap", b"middle"))
        self.assertTrue(mc.append(b"ap", b"-tail"))
        self.assertTrue(mc.prepend(b"ap", b"head-"))
        self.assertEqual(mc.get(b"ap"), b"head-middle-tail")
        self.assertTrue(mc.append(b"ap", b""))
        self.assertEqual(mc.get(b"ap"), b"head-middle-tail")
        # growing well past the original allocation
        for i in range(50):
            self.assertTrue(mc.append(b"ap", b"%04d" % i))
        self.assertEqual(mc.get(b"ap"),
                         b"head-middle-tail" + b"".join(b"%04d" % i for i in range(50)))
        # append keeps the item's own flags, ignores the command's
        raw = self.client(RawFlagsSerde())
        self.assertTrue(raw.set(b"apf", b"x", flags=77))
        self.assertTrue(raw.append(b"apf", b"y", flags=5))
        self.assertTrue(raw.prepend(b"apf", b"w", flags=6))
        self.assertEqual(raw.get(b"apf"), (b"wxy", 77))

    def test_incr_decr(self):
        mc = self.mc
        self.assertIsNone(mc.incr(b"n", 1))                  # NOT_FOUND
        self.assertIsNone(mc.decr(b"n", 1))
        self.assertTrue(mc.set(b"n", b"10"))
        self.assertEqual(mc.incr(b"n", 5), 15)
        self.assertEqual(mc.get(b"n"), b"15")
        self.assertEqual(mc.decr(b"n", 3), 12)
        self.assertEqual(mc.incr(b"n", 0), 12)
        self.assertEqual(mc.decr(b"n", 100), 0)              # decr floors at 0
        self.assertEqual(mc.get(b"n"), b"0 ")                # memcached pads in place
        self.assertEqual(mc.decr(b"n", 1), 0)
        # incr wraps around at 2**64
        self.assertTrue(mc.set(b"w", str(U64_MAX).encode()))
        self.assertEqual(mc.incr(b"w", 1), 0)
        self.assertTrue(mc.set(b"w", str(U64_MAX - 1).encode()))
        self.assertEqual(mc.incr(b"w", 3), 1)
        self.assertEqual(mc.get(b"w"), b"1" + b" " * 19)
        self.assertTrue(mc.set(b"w", b"0"))
        self.assertEqual(mc.incr(b"w", U64_MAX), U64_MAX)
        self.assertEqual(mc.get(b"w"), str(U64_MAX).encode())
        # growing number of digits, shrinking number of digits
        self.assertTrue(mc.set(b"g", b"99"))
        self.assertEqual(mc.incr(b"g", 1), 100)
        self.assertEqual(mc.get(b"g"), b"100")
        self.assertEqual(mc.decr(b"g", 1), 99)
        self.assertEqual(mc.get(b"g"), b"99 ")
        self.assertEqual(mc.incr(b"g", 1), 100)
        self.assertEqual(mc.get(b"g"), b"100")
        # errors
        self.assertTrue(mc.set(b"s", b"abc"))
        with self.assertRaises(MemcacheClientError) as cm:
            mc.incr(b"s", 1)
        self.assertIn(b"cannot increment or decrement non-numeric value", cm.exception.args[0])
        self.assertEqual(mc.get(b"s"), b"abc")
        with self.assertRaises(MemcacheClientError) as cm:
            mc.incr(b"n", 2 ** 64)
        self.assertIn(b"invalid numeric delta argument", cm.exception.args[0])
        # incr keeps flags
        raw = self.client(RawFlagsSerde())
        self.assertTrue(raw.set(b"nf", b"41", flags=9))
        self.assertEqual(raw.incr(b"nf", 1), 42)
        self.assertEqual(raw.get(b"nf"), (b"42", 9))

    def test_gets_without_cas(self):
        """Presets without CAS answer as memcached -C: gets reports 0, no cas can succeed."""
        if cas_on():
            self.skipTest("the layout under test has CAS")
        mc = self.mc
        self.assertIsNone(mc.cas(b"c", b"v", b"12345"))      # NOT_FOUND
        self.assertTrue(mc.set(b"c", b"v1"))
        self.assertEqual(mc.gets(b"c"), (b"v1", b"0"))
        self.assertFalse(mc.cas(b"c", b"v2", b"0"))          # EXISTS
        self.assertFalse(mc.cas(b"c", b"v2", b"1"))
        self.assertEqual(mc.get(b"c"), b"v1")

    def test_gets_cas(self):
        if not cas_on():
            self.skipTest("the layout under test has no CAS (test_gets_without_cas)")
        mc = self.mc
        self.assertEqual(mc.gets(b"c"), (None, None))
        self.assertIsNone(mc.cas(b"c", b"v", b"12345"))      # NOT_FOUND
        self.assertIsNone(mc.get(b"c"))
        self.assertTrue(mc.set(b"c", b"v1"))
        v, cas1 = mc.gets(b"c")
        self.assertEqual(v, b"v1")
        self.assertTrue(mc.cas(b"c", b"v2", cas1))           # STORED
        v, cas2 = mc.gets(b"c")
        self.assertEqual(v, b"v2")
        self.assertNotEqual(cas1, cas2)
        self.assertFalse(mc.cas(b"c", b"v3", cas1))          # EXISTS: stale cas
        self.assertEqual(mc.get(b"c"), b"v2")
        # any modification changes the cas
        self.assertTrue(mc.append(b"c", b"+"))
        v, cas3 = mc.gets(b"c")
        self.assertEqual(v, b"v2+")
        self.assertNotEqual(cas3, cas2)
        self.assertFalse(mc.cas(b"c", b"v4", cas2))
        self.assertTrue(mc.cas(b"c", b"v4", cas3))
        self.assertEqual(mc.get(b"c"), b"v4")
        # a second client races: only one cas wins
        other = self.client()
        v, cas = mc.gets(b"c")
        v2, cas_other = other.gets(b"c")
        self.assertEqual(cas, cas_other)
        self.assertTrue(other.cas(b"c", b"other", cas_other))
        self.assertFalse(mc.cas(b"c", b"mine", cas))
        self.assertEqual(mc.get(b"c"), b"other")
        # cas on a deleted item: NOT_FOUND
        v, cas = mc.gets(b"c")
        self.assertTrue(mc.delete(b"c"))
        self.assertIsNone(mc.cas(b"c", b"gone", cas))
        self.assertIsNone(mc.get(b"c"))

    def test_delete(self):
        mc = self.mc
        self.assertFalse(mc.delete(b"d"))                    # NOT_FOUND
        self.assertTrue(mc.set(b"d", b"x"))
        self.assertTrue(mc.set(b"d2", b"y"))
        self.assertTrue(mc.delete(b"d"))                     # DELETED
        self.assertIsNone(mc.get(b"d"))
        self.assertFalse(mc.delete(b"d"))
        self.assertEqual(mc.get(b"d2"), b"y")
        self.assertTrue(mc.delete_many([b"d2", b"d3"]))
        self.assertIsNone(mc.get(b"d2"))

    def test_touch(self):
        mc = self.mc
        self.assertFalse(mc.touch(b"t", 100))                # NOT_FOUND
        self.assertTrue(mc.set(b"t", b"x", expire=100))
        self.assertTrue(mc.touch(b"t", 0))                   # TOUCHED
        self.assertTrue(mc.touch(b"t", 1000))
        self.assertEqual(mc.get(b"t"), b"x")
        # touch with a negative time expires the item at once
        self.assertTrue(mc.touch(b"t", -1))
        self.assertIsNone(mc.get(b"t"))
        self.assertFalse(mc.touch(b"t", 10))

    # ----------------------------------------------------------- values, flags
    def test_binary_safe_values(self):
        mc = self.mc
        all_bytes = bytes(range(256))
        values = {
            b"b0": all_bytes,
            b"b1": all_bytes[::-1] * 4,
            b"b2": b"\r\n",
            b"b3": b"END\r\n",
            b"b4": b"\r\nVALUE b4 0 5\r\nEND\r\n",
            b"b5": b"\x00" * 1000,
            b"b6": b"\n\r\n\r\r\n\x00",
        }
        for k, v in values.items():
            self.assertTrue(mc.set(k, v))
        for k, v in values.items():
            self.assertEqual(mc.get(k), v)
        self.assertEqual(mc.get_many(list(values)), values)
        rng = random.Random(1234)
        blob = bytes(rng.getrandbits(8) for _ in range(70000))
        self.assertTrue(mc.set(b"blob", blob))
        self.assertEqual(mc.get(b"blob"), blob)

    def test_large_value_limit(self):
        mc = self.mc
        raw = self.client(RawFlagsSerde())
        settings = mc.stats("settings")
        # The longest key, not hex (a hex key is stored packed, in half its length).
        for key, flags in ((b"bigkey", 0), (b"bigkey-flagged", 3), (b"k" * 250, 0xFFFFFFFF)):
            limit = max_value_len(key, flags, settings)
            rng = random.Random(limit)
            for n in (limit - 1, limit):
                value = rng.randbytes(n)
                self.assertTrue(raw.set(key, value, flags=flags), (key, n))
                self.assertEqual(raw.get(key), (value, flags), (key, n))
            # just above: refused, and (memcached semantics for set) the old item is gone
            with self.assertRaises(MemcacheServerError) as cm:
                raw.set(key, b"z" * (limit + 1), flags=flags)
            self.assertEqual(cm.exception.args[0], b"object too large for cache")
            self.assertIsNone(raw.get(key))
            # far above
            with self.assertRaises(MemcacheServerError) as cm:
                raw.set(key, b"z" * (2 * ITEM_SIZE_MAX), flags=flags)
            self.assertEqual(cm.exception.args[0], b"object too large for cache")
            self.assertIsNone(raw.get(key))
        # the connection and server are still fine
        self.assertTrue(mc.set(b"after", b"ok"))
        self.assertEqual(mc.get(b"after"), b"ok")

    def test_flags_round_trip(self):
        raw = self.client(RawFlagsSerde())
        flag_values = [0, 1, 2, 255, 256, 12345, 65535, 65536, 2 ** 31 - 1, 2 ** 31,
                       2 ** 32 - 1]
        for i, f in enumerate(flag_values):
            self.assertTrue(raw.set(b"f%d" % i, b"val%d" % i, flags=f))
        for i, f in enumerate(flag_values):
            self.assertEqual(raw.get(b"f%d" % i), (b"val%d" % i, f))
        got = raw.get_many([b"f%d" % i for i in range(len(flag_values))])
        self.assertEqual(got, {b"f%d" % i: (b"val%d" % i, f) for i, f in enumerate(flag_values)})
        (value, flags), cas = raw.gets(b"f3")
        self.assertEqual((value, flags), (b"val3", 255))
        # add / replace / cas store the flags they are given
        self.assertTrue(raw.replace(b"f3", b"r", flags=4242))
        self.assertEqual(raw.get(b"f3"), (b"r", 4242))
        self.assertTrue(raw.add(b"fa", b"a", flags=7))
        self.assertEqual(raw.get(b"fa"), (b"a", 7))
        _, cas = raw.gets(b"fa")
        if cas_on():
            self.assertTrue(raw.cas(b"fa", b"c", cas, flags=8))
        else:
            self.assertTrue(raw.set(b"fa", b"c", flags=8))
        self.assertEqual(raw.get(b"fa"), (b"c", 8))
        # touch keeps the flags
        self.assertTrue(raw.touch(b"fa", 1000))
        self.assertEqual(raw.get(b"fa"), (b"c", 8))
        # the plain client (no serde) sees the raw bytes
        self.assertEqual(self.mc.get(b"f10"), b"val10")

    # --------------------------------------------------------------- noreply
    def test_noreply_variants(self):
        mc = self.mc
        self.assertTrue(mc.set(b"nr", b"1", noreply=True))
        self.assertTrue(mc.add(b"nr", b"ignored", noreply=True))      # NOT_STORED, silent
        self.assertTrue(mc.add(b"nr2", b"two", noreply=True))
        self.assertTrue(mc.replace(b"nr3", b"ignored", noreply=True))  # NOT_STORED, silent
        self.assertTrue(mc.append(b"nr", b"2", noreply=True))
        self.assertTrue(mc.prepend(b"nr", b"0", noreply=True))
        self.assertIsNone(mc.incr(b"cnt", 1, noreply=True))          # NOT_FOUND, silent
        self.assertTrue(mc.set(b"cnt", b"10", noreply=True))
        self.assertIsNone(mc.incr(b"cnt", 5, noreply=True))
        self.assertIsNone(mc.decr(b"cnt", 2, noreply=True))
        self.assertTrue(mc.touch(b"nr2", 1000, noreply=True))
        self.assertTrue(mc.delete(b"nope", noreply=True))             # NOT_FOUND, silent
        self.assertTrue(mc.set(b"del", b"x", noreply=True))
        self.assertTrue(mc.delete(b"del", noreply=True))
        # errors are silent too, and do not desynchronise the stream
        self.assertTrue(mc.set(b"nan", b"abc", noreply=True))
        self.assertIsNone(mc.incr(b"nan", 1, noreply=True))
        # everything above was pipelined on the same connection: the replies to these
        # gets must be the first bytes the server sends back
        self.assertEqual(mc.get_many([b"nr", b"nr2", b"nr3", b"cnt", b"del", b"nan"]),
                         {b"nr": b"012", b"nr2": b"two", b"cnt": b"13", b"nan": b"abc"})
        _, cas = mc.gets(b"nr")
        mc.cas(b"nr", b"bad", b"1" + cas, noreply=True)               # EXISTS, silent
        self.assertEqual(mc.get(b"nr"), b"012")
        mc.cas(b"nr", b"good", cas, noreply=True)
        self.assertEqual(mc.get(b"nr"), b"good" if cas_on() else b"012")
        mc.cas(b"nocas", b"x", cas, noreply=True)                      # NOT_FOUND, silent
        self.assertIsNone(mc.get(b"nocas"))
        self.assertTrue(mc.set_many({b"a%d" % i: b"%d" % i for i in range(100)},
                                    noreply=True) == [])
        self.assertEqual(len(mc.get_many([b"a%d" % i for i in range(100)])), 100)
        self.assertTrue(mc.flush_all(noreply=True))
        self.assertEqual(mc.get_many([b"nr", b"nr2", b"cnt", b"a1"]), {})

    # ------------------------------------------------------------- many keys
    def test_many_keys(self):
        mc = self.mc
        rng = random.Random(20000)
        items = {}
        for i in range(20000):
            items[b"many:%05d" % i] = rng.randbytes(rng.randint(0, 120))
        self.assertEqual(mc.set_many(items), [])
        got = mc.get_many(list(items))
        self.assertEqual(len(got), len(items))
        self.assertEqual(got, items)
        # a multi-get mixing hits and misses, in one command line
        keys = [b"many:%05d" % i for i in range(0, 40000, 3)]
        got = mc.get_many(keys)
        self.assertEqual(got, {k: items[k] for k in keys if k in items})
        st = mc.stats()
        self.assertEqual(st[b"curr_items"], 20000)
        # noreply bulk store of 20k, then verify through a second connection
        items2 = {k: v + b"!" for k, v in items.items()}
        self.assertEqual(mc.set_many(items2, noreply=True), [])
        self.assertEqual(mc.get(b"many:19999"), items2[b"many:19999"])
        self.assertEqual(self.client().get_many(list(items2)), items2)

    # ---------------------------------------------------------------- expiry
    def test_expiry(self):
        """Items given 1 s are gone once the server's own clock has moved a second on.

        The server ticks a whole-second clock from a timer that a loaded machine may run late,
        so the test waits for that clock, never for a guessed number of seconds. An item given
        1 s expires at the clock's next tick, which could also come between its set and the
        first get: the commands before the wait start just after a tick and must all run in
        that one second, else they are played again with fresh keys (CLOCK_ATTEMPTS times)."""
        mc, server = self.mc, self.server
        for attempt in range(CLOCK_ATTEMPTS):
            def k(name, attempt=attempt):  # fresh keys for each try
                return b"%s.%d" % (name, attempt)
            start = server.wait_clock(server.clock() + 1)  # just after a tick
            self.assertTrue(mc.set(k(b"e1"), b"short", expire=1))
            self.assertTrue(mc.set(k(b"e2"), b"long", expire=100))
            self.assertTrue(mc.set(k(b"e3"), b"forever"))
            self.assertTrue(mc.set(k(b"e4"), b"touched-short", expire=100))
            touched_e4 = mc.touch(k(b"e4"), 1)
            self.assertTrue(mc.set(k(b"e5"), b"touched-long", expire=1))
            touched_e5 = mc.touch(k(b"e5"), 100)
            self.assertTrue(mc.add(k(b"e6"), b"added-short", expire=1))
            # absolute times, on the server's clock
            self.assertTrue(mc.set(k(b"abs-future"), b"f", expire=start + 1000))
            self.assertTrue(mc.set(k(b"abs-past"), b"p", expire=start - 1000))
            self.assertTrue(mc.set(k(b"neg"), b"n", expire=-1))
            past, neg = mc.get(k(b"abs-past")), mc.get(k(b"neg"))
            before = mc.get_many([k(b"e%d" % i) for i in range(1, 7)])
            if server.clock() == start:
                break  # every command above ran in the second `start`
        else:
            self.fail("the server's clock ticked during a few commands in each of %d tries"
                      % CLOCK_ATTEMPTS)
        self.assertTrue(touched_e4)
        self.assertTrue(touched_e5)
        self.assertIsNone(past)
        self.assertIsNone(neg)
        self.assertEqual(before, {k(b"e1"): b"short", k(b"e2"): b"long", k(b"e3"): b"forever",
                                  k(b"e4"): b"touched-short", k(b"e5"): b"touched-long",
                                  k(b"e6"): b"added-short"})
        # e1, e4 and e6 expire at start + 1 (expired once exptime <= now)
        server.wait_clock(start + 1)
        got = mc.get_many([k(b"e1"), k(b"e2"), k(b"e3"), k(b"e4"), k(b"e5"), k(b"e6"),
                           k(b"abs-future")])
        self.assertEqual(got, {k(b"e2"): b"long", k(b"e3"): b"forever", k(b"e5"): b"touched-long",
                               k(b"abs-future"): b"f"})
        # expired keys can be added again, and incr/append/touch/delete see a miss
        self.assertIsNone(mc.incr(k(b"e1"), 1))
        self.assertFalse(mc.append(k(b"e4"), b"x"))
        self.assertFalse(mc.touch(k(b"e6"), 0))
        self.assertFalse(mc.delete(k(b"e1")))
        self.assertTrue(mc.add(k(b"e1"), b"again"))
        self.assertEqual(mc.get(k(b"e1")), b"again")

    def test_flush_all(self):
        mc = self.mc
        self.assertEqual(mc.set_many({b"fl%d" % i: b"v" for i in range(500)}), [])
        self.assertEqual(len(mc.get_many([b"fl%d" % i for i in range(500)])), 500)
        self.assertTrue(mc.flush_all())
        self.assertEqual(mc.get_many([b"fl%d" % i for i in range(500)]), {})
        self.assertFalse(mc.replace(b"fl1", b"x"))
        self.assertTrue(mc.add(b"fl1", b"after"))
        self.assertEqual(mc.get(b"fl1"), b"after")
        self.assertTrue(mc.set(b"fl2", b"after"))
        self.assertEqual(mc.get_many([b"fl1", b"fl2", b"fl3"]),
                         {b"fl1": b"after", b"fl2": b"after"})


if __name__ == "__main__":
    harness.main()
