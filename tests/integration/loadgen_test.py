"""experiments/loadgen against a real tinycached: every workload runs clean, and its
verification catches a wrong value and a lost increment.

Run as
    /usr/bin/python3 tests/integration/loadgen_test.py --tinycached build/server/tinycached
The loadgen binary is found next to the server's build (build/experiments/loadgen);
LOADGEN_BINARY overrides that.
"""
import json
import os
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def loadgen_binary():
    if os.environ.get("LOADGEN_BINARY"):
        return os.environ["LOADGEN_BINARY"]
    build = os.path.dirname(os.path.dirname(harness.TINYCACHED))
    return os.path.join(build, "experiments", "loadgen")


CONNECTIONS = 4  # loadgen's connections; each sends a first request whatever the time allows


def run(port, *args):
    done = subprocess.run([loadgen_binary(), "--port", str(port), "--json",
                           "--connections", str(CONNECTIONS)]
                          + list(args), capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, result, done.stderr


def send(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data + b"version\r\n")
        got = b""
        while not got.endswith(b"\r\n") or b"VERSION" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


class LoadgenTest(unittest.TestCase):
    def setUp(self):
        if not os.access(loadgen_binary(), os.X_OK):
            self.skipTest("loadgen not built (TINYCACHED_BUILD_EXPERIMENTS=OFF?)")
        self.server = harness.tinycached(["-m", "16", "-t", "2"]).start()
        self.addCleanup(self.server.stop)

    def test_every_workload_runs_clean(self):
        for workload, extra in (("getset", ["--keys", "2000"]), ("multiget", ["--keys", "2000"]),
                                ("incr", ["--counters", "50"]), ("set", ["--keys", "10000000"])):
            with self.subTest(workload=workload):
                rc, result, err = run(self.server.port, "--workload", workload, "--seconds", "0.5",
                                      *extra)
                self.assertEqual(rc, 0, err)
                # How many ops fit in the 0.5 s depends on the machine's load, not the server:
                # only that each connection's first request was answered (and checked) is sure.
                self.assertGreaterEqual(result["ops"], CONNECTIONS)
                self.assertEqual(result["errors"], 0, result)
                self.assertEqual(result["verify_failures"], 0, result)
                self.assertGreater(result["p99_us"], 0)
                self.assertGreaterEqual(result["p999_us"], result["p99_us"])
                self.assertGreaterEqual(result["p99_us"], result["p50_us"])
        self.assertTrue(self.server.alive())

    def test_a_wrong_value_is_caught(self):
        # Keys 1..5 hold a value loadgen never writes; without its preload the gets see them.
        send(self.server.port, b"".join(b"set %d 0 0 6\r\nwrong!\r\n" % k for k in range(1, 6)))
        rc, result, _ = run(self.server.port, "--workload", "multiget", "--keys", "5",
                            "--seconds", "0.3", "--skip-preload")
        self.assertEqual(rc, 1)
        self.assertGreater(result["verify_failures"], 0)
        self.assertIn("wrong value", result["first_problem"])

    def test_a_lost_increment_is_caught(self):
        # Counters start at 1000 instead of the 0 loadgen's preload would set: the final sum
        # no longer matches the increments acknowledged.
        send(self.server.port, b"".join(b"set c%d 0 0 4\r\n1000\r\n" % k for k in range(1, 4)))
        rc, result, _ = run(self.server.port, "--workload", "incr", "--counters", "3",
                            "--seconds", "0.3", "--skip-preload")
        self.assertEqual(rc, 1)
        self.assertIn("counters sum to", result["first_problem"])

    def test_bad_usage_exits_2(self):
        done = subprocess.run([loadgen_binary(), "--workload", "nope"], capture_output=True)
        self.assertEqual(done.returncode, 2)


if __name__ == "__main__":
    harness.main()
