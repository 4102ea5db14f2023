"""Warm restart (-e <file>, core/snapshot.h), with the real binary.

A server filled with counters and text-keyed items is stopped in an orderly way (SIGUSR1,
SIGTERM, `shutdown graceful`); the next one started with the same file and flags serves every
item with its value, flags, CAS and expiry. A damaged file, a file from other settings and a
crash (kill -9: nothing written) each give an empty, working server and one log line.
Run for the stock, compact and tiny presets.
"""
import os
import signal
import socket
import stat as stat_module
import tempfile
import unittest

import harness

COUNTERS = 100000  # decimal keys: the tiny engine's inline items
TEXT_KEYS = 3000   # user:session:<hex> keys with flags, some with an expiry


def read_until(sock, end):
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("connection closed after %r" % data[-200:])
        data += chunk
    return data


def multiget(sock, keys, command=b"gets"):
    """{key: (flags, value, cas or None)} for the keys that were hits."""
    sock.sendall(command + b" " + b" ".join(keys) + b"\r\n")
    data = read_until(sock, b"END\r\n")
    out = {}
    pos = 0
    while not data.startswith(b"END\r\n", pos):
        eol = data.index(b"\r\n", pos)
        head = data[pos:eol].split()
        assert head[0] == b"VALUE", head
        n = int(head[3])
        value = data[eol + 2:eol + 2 + n]
        out[head[1]] = (int(head[2]), value, int(head[4]) if len(head) > 4 else None)
        pos = eol + 2 + n + 2
    return out


def stat(server, name):
    reply = harness.ask(server.port, b"stats\r\n", b"END\r\n", 10.0)
    for line in reply.split(b"\r\n"):
        if line.startswith(b"STAT %s " % name):
            return int(line.split()[2])
    raise AssertionError("no STAT %s" % name)


class WarmRestartTest(unittest.TestCase):
    preset = "stock"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="warm_restart_")
        self.file = os.path.join(self.dir, "items")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def start(self, extra=()):
        server = harness.Server(harness.TINYCACHED,
                                ["-o", "preset=" + self.preset, "-e", self.file, "-A"]
                                + list(extra))
        self.servers.append(server)
        return server.start()

    def stop(self, server, how=signal.SIGUSR1):
        """An orderly stop; returns the server's stderr."""
        if how == "shutdown":
            with server.connect() as s:
                s.sendall(b"shutdown graceful\r\n")
        else:
            server.proc.send_signal(how)
        self.assertEqual(server.proc.wait(60), 0, server.stderr_text())
        return server.stderr_text()

    def fill(self, server):
        """Counters 1..COUNTERS (some moved by incr) and text keys; returns what `gets`
        shows of the text keys and a few counters."""
        with server.connect(timeout=30) as s:
            batch = []
            for i in range(1, COUNTERS + 1):
                v = b"%d" % (i * 3)
                batch.append(b"set %d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
                if len(batch) == 4096:
                    s.sendall(b"".join(batch))
                    batch = []
            for i in range(TEXT_KEYS):
                key = b"user:session:%x" % (i * 7919)
                v = b"payload-%d-" % i + b"z" * (i % 40)
                exptime = 3000 if i % 4 == 0 else 0
                batch.append(b"set %s %d %d %d noreply\r\n%s\r\n" % (key, i, exptime, len(v), v))
            s.sendall(b"".join(batch))
            s.sendall(b"".join(b"incr %d 1000000\r\n" % i for i in range(1, 51)))
            read_until(s, b"%d\r\n" % (50 * 3 + 1000000))
            big = b"B" * (300 * 1024)
            s.sendall(b"set big 77 0 %d\r\n%s\r\n" % (len(big), big))
            self.assertEqual(read_until(s, b"\r\n"), b"STORED\r\n")
            return self.snapshot(s)

    def snapshot(self, s):
        seen = {}
        keys = [b"user:session:%x" % (i * 7919) for i in range(TEXT_KEYS)]
        keys += [b"%d" % i for i in range(1, 201)] + [b"big"]
        for i in range(0, len(keys), 100):
            seen.update(multiget(s, keys[i:i + 100]))
        return seen

    def check_counters(self, server):
        with server.connect(timeout=30) as s:
            for first in range(1, COUNTERS + 1, 500):
                keys = [b"%d" % i for i in range(first, min(first + 500, COUNTERS + 1))]
                got = multiget(s, keys, b"get")
                self.assertEqual(len(got), len(keys), "counters missing from %d" % first)
                for key in keys:
                    i = int(key)
                    want = i * 3 + (1000000 if i <= 50 else 0)
                    self.assertEqual(got[key][1], b"%d" % want, key)

    def test_every_item_returns_after_sigusr1(self):
        first = self.start()
        before = self.fill(first)
        items = stat(first, b"curr_items")
        self.assertEqual(items, COUNTERS + TEXT_KEYS + 1)
        log = self.stop(first)
        self.assertIn("warm restart: %d items saved" % items, log)
        self.assertTrue(os.path.exists(self.file))

        second = self.start()
        self.assertIn("warm restart: %d items restored" % items, second.stderr_text())
        settings = harness.ask(second.port, b"stats settings\r\n", b"END\r\n", 10.0)
        self.assertIn(b"\r\nSTAT memory_file %s\r\n" % self.file.encode(), settings)
        self.assertEqual(stat(second, b"curr_items"), items)
        self.check_counters(second)
        with second.connect() as s:
            self.assertEqual(self.snapshot(s), before)  # values, flags and CAS
            # The expiry is the same moment: 3000 s from the first fill, less the seconds
            # that passed.
            s.sendall(b"mg user:session:0 t\r\nmg user:session:1eef t\r\n")
            reply = read_until(s, b"HD t-1\r\n")
            ttl = int(reply.split(b"\r\n")[0].split(b" t")[1])
            self.assertTrue(2900 < ttl <= 3000, reply)
            # New CAS uniques are above every restored one (memcached's CAS keeps growing).
            s.sendall(b"set fresh 0 0 1\r\nx\r\n")
            self.assertEqual(read_until(s, b"\r\n"), b"STORED\r\n")
            fresh = multiget(s, [b"fresh"])
            if before[b"big"][2]:
                self.assertGreater(fresh[b"fresh"][2], max(v[2] for v in before.values()))
        # The file was read: a crash from here on starts empty.
        self.assertFalse(os.path.exists(self.file))

    def test_sigterm_and_shutdown_graceful_save_too(self):
        first = self.start()
        with first.connect() as s:
            s.sendall(b"set a 1 0 1\r\nx\r\n")
            read_until(s, b"\r\n")
        self.assertIn("1 items saved", self.stop(first, signal.SIGTERM))
        second = self.start()
        self.assertIn("1 items restored", second.stderr_text())
        with second.connect() as s:
            s.sendall(b"set b 2 0 1\r\ny\r\n")
            read_until(s, b"\r\n")
        self.assertIn("2 items saved", self.stop(second, "shutdown"))
        third = self.start()
        with third.connect() as s:
            got = multiget(s, [b"a", b"b"], b"get")
        self.assertEqual(got, {b"a": (1, b"x", None), b"b": (2, b"y", None)})

    def test_a_crash_starts_empty(self):
        first = self.start()
        self.fill(first)
        self.stop(first)
        second = self.start()
        self.assertGreater(stat(second, b"curr_items"), COUNTERS)
        second.proc.send_signal(signal.SIGKILL)
        second.proc.wait()
        third = self.start()
        self.assertIn("no %s to restore; starting empty" % self.file, third.stderr_text())
        self.assertEqual(stat(third, b"curr_items"), 0)

    def test_a_damaged_file_starts_empty(self):
        first = self.start()
        self.fill(first)
        self.stop(first)
        size = os.path.getsize(self.file)
        with open(self.file, "r+b") as f:
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0x01]))
        second = self.start()
        log = second.stderr_text()
        self.assertIn("not used (block checksum mismatch); starting empty", log)
        self.assertEqual(log.count("warm restart:"), 1, log)
        self.assertEqual(stat(second, b"curr_items"), 0)
        with second.connect() as s:  # and it serves
            s.sendall(b"set k 0 0 1\r\nv\r\nget k\r\n")
            self.assertEqual(read_until(s, b"END\r\n"), b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n")
        # A truncated file too.
        self.stop(second)
        with open(self.file, "r+b") as f:
            f.truncate(os.path.getsize(self.file) - 3)
        third = self.start()
        self.assertIn("not used (truncated block); starting empty", third.stderr_text())
        self.assertEqual(stat(third, b"curr_items"), 0)

    def test_other_layout_settings_start_empty(self):
        first = self.start()
        self.fill(first)
        self.stop(first)
        second = self.start(["-m", "128"])
        self.assertIn("not used (written with memory_limit=67108864, now "
                      "memory_limit=134217728); starting empty", second.stderr_text())
        self.assertEqual(stat(second, b"curr_items"), 0)

    def test_a_file_that_cannot_be_written_is_refused_at_start(self):
        server = harness.Server(harness.TINYCACHED, ["-e", "/nonexistent-dir/items"])
        self.servers.append(server)
        with self.assertRaises(RuntimeError) as cm:
            server.start()
        self.assertIn("cannot create files in /nonexistent-dir/", str(cm.exception))


    def test_a_path_that_is_not_a_regular_file_is_refused_and_left_alone(self):
        for path in ("/dev/null", self.dir):
            server = harness.Server(harness.TINYCACHED, ["-e", path])
            self.servers.append(server)
            with self.assertRaises(RuntimeError) as cm:
                server.start()
            self.assertIn("not a regular file", str(cm.exception))
        self.assertTrue(stat_module.S_ISCHR(os.stat("/dev/null").st_mode))
        self.assertTrue(os.path.isdir(self.dir))


class CompactWarmRestartTest(WarmRestartTest):
    preset = "compact"


class TinyWarmRestartTest(WarmRestartTest):
    preset = "tiny"


if __name__ == "__main__":
    harness.main()
