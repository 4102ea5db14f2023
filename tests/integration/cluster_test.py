"""Three tinycached behind twemproxy (Debian's `nutcracker`): sharding, ejection, rejoin.

Run as
    /usr/bin/python3 tests/integration/cluster_test.py --tinycached build/server/tinycached

Every test starts its own cluster on free 127.0.0.1 ports: three tinycached (with --preset,
that preset) and one nutcracker (nutcracker.py) in front of them with ketama distribution
(md5), named servers and auto_eject_hosts. The proxy is configured exactly as README.md's
"Running a cluster" shows, except for the ports and the shorter failure timings below.

What a client of the proxy sees when a node dies (checked by test_dead_node_...):
  1. nutcracker counts a node's failures: its connection to the node closing (the kill) is
     one, every refused reconnect is one more. Until the count reaches server_failure_limit,
     a request for a key of the dead node gets `SERVER_ERROR Connection refused` (at most
     server_failure_limit of them; in practice server_failure_limit - 1, because the close
     already counted). Keys of the other nodes are served throughout, without an error.
  2. At the limit the node is ejected from the ketama ring: its keys map to the surviving
     nodes (a get misses, a set stores there) for server_retry_timeout ms. (On a machine so
     loaded that the test's next request comes later than that, step 3 has begun already:
     the test allows server_failure_limit more errors for every server_retry_timeout that
     passed since the kill.)
  3. Then it is put back in the ring and tried again: still dead, step 1 repeats; alive, it
     serves its keys again. A restarted node comes back empty, and what was written to its
     keys while it was ejected stays on the stand-in node, unreachable through the proxy
     (a stale copy) until it is evicted or that key is ejected again.
Nutcracker 0.5.0 speaks only memcached's ASCII protocol, and only its key commands: meta
commands (`mg`, `ms`, `mn`, ...), the binary protocol, `gat`, `stats`, `flush_all` and
`verbosity` make it close the client's connection without forwarding anything
(test_non_key_commands_...).
"""
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from nutcracker import NUTCRACKER, Nutcracker  # noqa: E402

IO_TIMEOUT = 90.0
# Deadlines for things that happen "soon": generous, for a loaded machine and ASan builds.
# Nothing is asserted about how long they take, only that they happen before the deadline.
DEADLINE = 60.0
FAILURE_LIMIT = 2      # server_failure_limit
RETRY_TIMEOUT_MS = 1000  # server_retry_timeout
# nutcracker's `timeout`: a node slower than this (a loaded machine, an ASan build) would count
# as failed and be ejected: far above any reply time, far below the client's IO_TIMEOUT.
NODE_TIMEOUT_MS = 30000
# Nutcracker()'s options for a test's proxy (fill_test.py starts one too).
PROXY_OPTIONS = dict(start_seconds=DEADLINE, timeout_ms=NODE_TIMEOUT_MS,
                     failure_limit=FAILURE_LIMIT, retry_timeout_ms=RETRY_TIMEOUT_MS)


class Client:
    """A text-protocol connection that reads whole replies."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed by the peer; unread %r" % self.buf[-200:])
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self):
        """One reply: {key: value} for a retrieval (ended by END), else the line."""
        first = self.line()
        if not first.startswith(b"VALUE ") and first != b"END":
            return first
        values = {}
        line = first
        while line != b"END":
            parts = line.split()
            if parts[0] != b"VALUE":
                raise AssertionError("unexpected line in a get reply: %r" % line)
            data = self.exactly(int(parts[3]) + 2)
            assert data.endswith(b"\r\n"), data
            values[parts[1]] = data[:-2]
            line = self.line()
        return values

    def call(self, request):
        self.sock.sendall(request)
        return self.reply()

    def get_many(self, keys, per_get=100):
        """{key: value} of every key found, with pipelined multi-gets."""
        found = {}
        for i in range(0, len(keys), per_get):
            reply = self.call(b"get " + b" ".join(keys[i:i + per_get]) + b"\r\n")
            if not isinstance(reply, dict):
                raise AssertionError("multi-get answered %r" % reply)
            found.update(reply)
        return found


def set_request(key, value, noreply=False):
    return b"set %s 0 0 %d%s\r\n%s\r\n" % (key, len(value), b" noreply" if noreply else b"",
                                         value)


def keys_and_values(n):
    """Integer keys (the tiny engine stores them in its slots) and text keys, half each."""
    pairs = []
    for i in range(n):
        key = b"%d" % (1000 + i) if i % 2 == 0 else b"user:%d:profile" % i
        pairs.append((key, b"v%d" % (i * 7)))
    return pairs


class Cluster:
    NAMES = ("node-a", "node-b", "node-c")

    def __init__(self):
        self.nodes = [harness.tinycached(["-m", "64"]) for _ in self.NAMES]
        self.proxy = None

    def start(self):
        for node in self.nodes:
            node.start()
        self.proxy = Nutcracker([("127.0.0.1", n.port, name)
                                 for n, name in zip(self.nodes, self.NAMES)], **PROXY_OPTIONS)
        self.proxy.start()
        return self

    def stop(self):
        if self.proxy is not None:
            self.proxy.cleanup()
        for node in self.nodes:
            node.stop()

    def client(self):
        return Client(self.proxy.port)

    def owners(self, keys):
        """{key: [indexes of the nodes holding it]}, asking every node directly."""
        where = {k: [] for k in keys}
        for i, node in enumerate(self.nodes):
            if not node.alive():
                continue
            direct = Client(node.port)
            try:
                for k in direct.get_many(keys):
                    where[k].append(i)
            finally:
                direct.close()
        return where

    def load(self, pairs):
        """Stores pairs through the proxy: half with replies, half noreply, pipelined;
        a get through the proxy after the noreply sets orders them before it."""
        c = self.client()
        try:
            replied = pairs[0::2]
            c.sock.sendall(b"".join(set_request(k, v) for k, v in replied))
            for k, _ in replied:
                self_reply = c.reply()
                if self_reply != b"STORED":
                    raise AssertionError("set %r through the proxy: %r" % (k, self_reply))
            c.sock.sendall(b"".join(set_request(k, v, noreply=True) for k, v in pairs[1::2]))
            found = c.get_many([k for k, _ in pairs])
        finally:
            c.close()
        return found


def ejection_rounds(seconds):
    """How many times a dead node can have been put in the ring and ejected again within
    `seconds` of its death: once, and once more per server_retry_timeout."""
    return 1 + int(seconds * 1000 // RETRY_TIMEOUT_MS)


def wait_until(what, probe, deadline=DEADLINE):
    """Calls probe() until it returns something true; fails the test after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError("no %s within %.0f s" % (what, deadline))
        time.sleep(0.02)


class ClusterTest(unittest.TestCase):
    def setUp(self):
        if not os.access(NUTCRACKER, os.X_OK):
            self.fail("%s not found: install Debian's nutcracker (.ci/install-deps.sh)"
                      % NUTCRACKER)
        self.cluster = Cluster()
        self.addCleanup(self.cluster.stop)
        self.cluster.start()

    def log(self, text):
        print("  " + text, file=sys.stderr, flush=True)

    def test_every_key_lands_on_exactly_one_node(self):
        pairs = keys_and_values(1500)
        keys = [k for k, _ in pairs]
        expected = dict(pairs)
        self.assertEqual(self.cluster.load(pairs), expected)

        owners = self.cluster.owners(keys)
        per_node = [0, 0, 0]
        for k in keys:
            self.assertEqual(len(owners[k]), 1, "key %r is on nodes %r" % (k, owners[k]))
            per_node[owners[k][0]] += 1
        self.log("keys per node: %s" % per_node)
        for i, n in enumerate(per_node):
            # ketama with 3 equal weights gives each node roughly a third; a node with
            # under a sixth would mean the proxy is not sharding as configured.
            self.assertGreater(n, len(keys) // 6, "node %d holds %d of %d" % (i, n, len(keys)))
        # Each node holds exactly its keys' values, as stored through the proxy.
        for i, node in enumerate(self.cluster.nodes):
            direct = Client(node.port)
            mine = [k for k in keys if owners[k] == [i]]
            self.assertEqual(direct.get_many(mine), {k: expected[k] for k in mine})
            direct.close()

        # Key commands through the proxy reach the key's node: check there directly.
        c = self.cluster.client()
        counter, text = keys[0], keys[1]
        node_of = {k: self.cluster.nodes[owners[k][0]] for k in (counter, text)}
        self.assertEqual(c.call(set_request(counter, b"41")), b"STORED")
        self.assertEqual(c.call(b"incr %s 5\r\n" % counter), b"46")
        self.assertEqual(c.call(b"decr %s 1\r\n" % counter), b"45")
        self.assertEqual(c.call(b"append %s 0 0 1\r\nx\r\n" % text), b"STORED")
        self.assertEqual(c.call(b"prepend %s 0 0 1\r\n<\r\n" % text), b"STORED")
        self.assertEqual(c.call(b"touch %s 0\r\n" % text), b"TOUCHED")
        self.assertEqual(c.call(b"add %s 0 0 1\r\nz\r\n" % text), b"NOT_STORED")
        self.assertEqual(c.call(b"replace %s 0 0 1\r\nz\r\n" % b"missing:key"), b"NOT_STORED")
        for k, want in ((counter, b"45"), (text, b"<" + expected[text] + b"x")):
            direct = Client(node_of[k].port)
            self.assertEqual(direct.call(b"get %s\r\n" % k), {k: want})
            direct.close()
        # gets through the proxy returns the node's CAS unique (0 for presets without CAS,
        # whose `cas` then answers EXISTS, as memcached -C does).
        gets = c.call(b"gets %s\r\n" % text)
        self.assertEqual(gets, {text: b"<" + expected[text] + b"x"})
        self.assertEqual(c.call(b"delete %s\r\n" % counter), b"DELETED")
        self.assertEqual(c.call(b"get %s\r\n" % counter), {})
        direct = Client(node_of[counter].port)
        self.assertEqual(direct.call(b"get %s\r\n" % counter), {})
        direct.close()
        c.close()

    def test_non_key_commands_close_the_proxy_connection(self):
        pairs = keys_and_values(30)
        self.assertEqual(self.cluster.load(pairs), dict(pairs))
        binary_get = bytes([0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 12) + b"a"
        for request in (b"mg 1000 v\r\n", b"ms 1000 1\r\nz\r\n", b"mn\r\n", b"md 1000\r\n",
                        binary_get, b"gat 0 1000\r\n", b"stats\r\n", b"flush_all\r\n",
                        b"verbosity 1\r\n"):
            c = self.cluster.client()
            c.sock.sendall(request)
            received = b""
            try:
                while True:
                    chunk = c.sock.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except ConnectionResetError:
                pass
            c.close()
            self.assertEqual(received, b"", "nutcracker answered %r with %r" % (request, received))
        # Nothing was forwarded: no flush, no meta set; every item is where it was, and the
        # proxy serves new connections as before.
        c = self.cluster.client()
        self.assertEqual(c.get_many([k for k, _ in pairs]), dict(pairs))
        c.close()
        found = {}
        for node in self.cluster.nodes:
            direct = Client(node.port)
            found.update(direct.get_many([k for k, _ in pairs]))
            direct.close()
        self.assertEqual(found, dict(pairs))

    def test_dead_node_is_ejected_and_a_restarted_node_rejoins(self):
        pairs = keys_and_values(300)
        expected = dict(pairs)
        self.assertEqual(self.cluster.load(pairs), expected)
        owners = self.cluster.owners(list(expected))
        victim_index = 1
        victim = self.cluster.nodes[victim_index]
        victim_keys = [k for k, where in owners.items() if where == [victim_index]]
        other_keys = [k for k, where in owners.items() if where != [victim_index]]
        self.assertTrue(victim_keys and other_keys)

        c = self.cluster.client()
        # The proxy holds a connection to every node now (the load used them all).
        killed = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        victim.stop()

        # 1. Until the node is ejected: errors for its keys, the others served throughout.
        seen = []
        i = 0
        while True:
            key = victim_keys[i % len(victim_keys)]
            reply = c.call(b"get %s\r\n" % key)
            seen.append(reply)
            other = other_keys[i % len(other_keys)]
            self.assertEqual(c.call(b"get %s\r\n" % other), {other: expected[other]},
                             "a live node's key during the switch")
            i += 1
            if isinstance(reply, dict):
                break
            self.assertTrue(reply.startswith(b"SERVER_ERROR "), reply)
            # Ejected, the node is tried again after server_retry_timeout, and may then be
            # ejected again after as many errors: the test's own pace must not decide.
            rounds = ejection_rounds(time.monotonic() - killed)
            self.assertLessEqual(len(seen), FAILURE_LIMIT * rounds,
                                 "more errors than server_failure_limit in %d ejection "
                                 "round(s): %r" % (rounds, seen))
            if time.monotonic() - killed > DEADLINE:
                self.fail("no get of the dead node's keys missed within %.0f s: %d errors"
                          % (DEADLINE, len(seen)))
        self.log("after the kill, gets of the dead node's keys got: %r" % seen)
        # The first reply that is not an error comes from the ring without the node: a miss.
        self.assertEqual(seen[-1], {})

        # 2. Ejected: its keys are stored on the surviving nodes.
        stand_in_key = victim_keys[0]

        def stored_elsewhere():
            if c.call(set_request(stand_in_key, b"while-ejected")) != b"STORED":
                return None  # the retry timeout passed and the node is being tried again
            where = self.cluster.owners([stand_in_key])[stand_in_key]
            return where or None
        where = wait_until("set of a dead node's key stored elsewhere", stored_elsewhere)
        self.assertEqual(len(where), 1)
        self.assertNotEqual(where[0], victim_index)
        stand_in = self.cluster.nodes[where[0]]

        # 3. Restarted (same port, empty): back in the ring after server_retry_timeout.
        restarted = harness.Server(victim.binary, victim.args, port=victim.port)
        self.assertEqual(restarted.argv, victim.argv)
        restarted.start(attempts=1)
        self.cluster.nodes[victim_index] = restarted
        probe_key = victim_keys[-1]

        def rejoined():
            reply = c.call(set_request(probe_key, b"after-rejoin"))
            if reply != b"STORED":
                return False
            direct = Client(restarted.port)
            found = direct.call(b"get %s\r\n" % probe_key)
            direct.close()
            return found == {probe_key: b"after-rejoin"}
        wait_until("rejoin of the restarted node", rejoined)

        # Every key of the node maps to it again; every other key was never disturbed.
        for k in victim_keys:
            self.assertEqual(c.call(set_request(k, b"again")), b"STORED")
        direct = Client(restarted.port)
        self.assertEqual(direct.get_many(victim_keys), {k: b"again" for k in victim_keys})
        direct.close()
        self.assertEqual(c.get_many(other_keys), {k: expected[k] for k in other_keys})
        # The value written while the node was ejected is a stale copy on the stand-in,
        # out of reach of the proxy.
        direct = Client(stand_in.port)
        self.assertEqual(direct.call(b"get %s\r\n" % stand_in_key),
                         {stand_in_key: b"while-ejected"})
        direct.close()
        self.assertEqual(c.call(b"get %s\r\n" % stand_in_key), {stand_in_key: b"again"})
        c.close()


if __name__ == "__main__":
    harness.main()
