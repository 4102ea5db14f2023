"""tinycached's binary protocol driven by a real client library: Debian's python3-pylibmc
(libmemcached) with binary=True.

Run as
    /usr/bin/python3 tests/integration/pylibmc_test.py --tinycached build/server/tinycached
Every test starts its own server and talks to it only through pylibmc over the binary protocol.
The expected results are memcached 1.6's; the file passes unchanged with
`--tinycached /usr/bin/memcached` (with -C for a preset without CAS).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pylibmc  # noqa: E402


def cas_on():
    return harness.PRESET_KNOBS.get("cas") != "off"


class PylibmcBinaryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.tinycached().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.mc = pylibmc.Client(["127.0.0.1:%d" % self.server.port], binary=True,
                                 behaviors={"cas": True, "tcp_nodelay": True})
        self.mc.flush_all()

    def tearDown(self):
        self.mc.disconnect_all()

    def test_binary_connection_is_binary(self):
        """The server saw binary requests: cmd_get counts them as ASCII ones would be."""
        self.mc.set("k", "v")
        self.assertEqual(self.mc.get("k"), "v")
        stats = dict(self.mc.get_stats()[0][1])
        self.assertGreaterEqual(int(stats["cmd_get"]), 1)
        self.assertGreaterEqual(int(stats["get_hits"]), 1)

    def test_set_get_delete(self):
        self.assertTrue(self.mc.set("a", "hello"))
        self.assertEqual(self.mc.get("a"), "hello")
        self.assertTrue(self.mc.set("b", b"\x00\x01binary\r\n\xff"))
        self.assertEqual(self.mc.get("b"), b"\x00\x01binary\r\n\xff")
        self.assertTrue(self.mc.set("n", 42))  # pylibmc marks ints in the flags
        self.assertEqual(self.mc.get("n"), 42)
        self.assertTrue(self.mc.delete("a"))
        self.assertIsNone(self.mc.get("a"))
        self.assertFalse(self.mc.delete("a"))

    def test_large_value(self):
        value = b"x" * 500000
        self.assertTrue(self.mc.set("big", value))
        self.assertEqual(self.mc.get("big"), value)
        with self.assertRaises(pylibmc.Error):
            self.mc.set("huge", b"y" * (2 << 20))  # over -I: E2BIG

    def test_add_replace(self):
        self.assertTrue(self.mc.add("k", "1"))
        self.assertFalse(self.mc.add("k", "2"))
        self.assertEqual(self.mc.get("k"), "1")
        self.assertTrue(self.mc.replace("k", "3"))
        with self.assertRaises(pylibmc.NotFound):  # binary: KEY_ENOENT
            self.mc.replace("missing", "4")
        self.assertEqual(self.mc.get("k"), "3")
        self.assertIsNone(self.mc.get("missing"))

    def test_append_prepend(self):
        self.mc.set("k", "mid")
        self.assertTrue(self.mc.append("k", ">"))
        self.assertTrue(self.mc.prepend("k", "<"))
        self.assertEqual(self.mc.get("k"), "<mid>")
        self.assertFalse(self.mc.append("missing", "x"))

    def test_incr_decr(self):
        self.mc.set("c", "10")
        self.assertEqual(self.mc.incr("c"), 11)
        self.assertEqual(self.mc.incr("c", 9), 20)
        self.assertEqual(self.mc.decr("c", 5), 15)
        self.assertEqual(self.mc.decr("c", 100), 0)
        self.assertEqual(self.mc.incr("c", 2 ** 31 - 1), 2 ** 31 - 1)  # the client takes an int
        with self.assertRaises(pylibmc.NotFound):
            self.mc.incr("missing")
        self.mc.set("text", "abc")
        with self.assertRaises(pylibmc.Error):
            self.mc.incr("text")

    def test_get_multi(self):
        self.mc.set_multi({"m1": "a", "m2": "b", "m3": "c"})
        got = self.mc.get_multi(["m1", "m2", "m3", "nope"])
        self.assertEqual(got, {"m1": "a", "m2": "b", "m3": "c"})
        self.assertEqual(self.mc.get_multi(["x1", "x2"]), {})
        self.mc.delete_multi(["m1", "m2"])
        self.assertEqual(self.mc.get_multi(["m1", "m2", "m3"]), {"m3": "c"})

    def test_touch(self):
        self.mc.set("t", "v")
        self.assertTrue(self.mc.touch("t", 1000))
        self.assertEqual(self.mc.get("t"), "v")
        self.assertFalse(self.mc.touch("missing", 1000))

    def test_gets_and_cas(self):
        self.mc.set("k", "v1")
        value, unique = self.mc.gets("k")
        self.assertEqual(value, "v1")
        if not cas_on():
            self.assertEqual(unique, 0)
            return
        self.assertNotEqual(unique, 0)
        self.assertTrue(self.mc.cas("k", "v2", unique))
        self.assertFalse(self.mc.cas("k", "v3", unique))  # the unique changed
        self.assertEqual(self.mc.get("k"), "v2")
        value, unique2 = self.mc.gets("k")
        self.assertNotEqual(unique2, unique)
        with self.assertRaises(pylibmc.NotFound):
            self.mc.cas("missing", "x", unique2)


if __name__ == "__main__":
    harness.main()
