"""The command line, run for real: exit codes, -h/-V/--list-presets, -d/-P, -vv, -U, -c."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness


def run(*args, timeout=10):
    return subprocess.run([harness.TINYCACHED, *args], capture_output=True, text=True,
                          timeout=timeout)


def ask(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


class CommandLineTest(unittest.TestCase):
    def test_help_version_and_presets_exit_zero(self):
        h = run("-h")
        self.assertEqual(h.returncode, 0)
        for flag in ("-p", "-U", "-l", "-m", "-c", "-t", "-n", "-f", "-C", "-I", "-M", "-v",
                     "-d", "-P", "-u", "-h", "-V", "-o"):
            self.assertRegex(h.stdout, r"(?m)^%s[, ]" % re.escape(flag))
        v = run("-V")
        self.assertEqual(v.returncode, 0)
        self.assertRegex(v.stdout, r"^tinycached \S+\n$")
        p = run("--list-presets")
        self.assertEqual(p.returncode, 0)

    def test_bad_flags_exit_two_with_a_message(self):
        for args in (["-x"], ["-p", "99999"], ["-m", "zero"], ["-U", "11211"], ["-t", "0"],
                     ["-f", "0.5"], ["-I", "100"], ["-o", "layout=bogus"], ["-o", "nope=1"],
                     ["extra-arg"], ["-p"], ["-l", "no-such-host.invalid", "-p", "0"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip(), "no message for %s" % args)

    def test_listen_takes_host_names(self):
        port = harness.free_port()
        server = harness.Server(harness.TINYCACHED, port=port)
        server.argv[server.argv.index("-l") + 1] = "localhost"
        with server:
            self.assertEqual(ask(port, b"version\r\n")[:8], b"VERSION ")

    def test_busy_port_fails_cleanly(self):
        with harness.tinycached() as first:
            r = run("-p", str(first.port), "-l", "127.0.0.1")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("failed to listen", r.stderr)

    def test_vv_prints_memcacheds_slab_table(self):
        with harness.tinycached(["-vv", "-n", "5", "-f", "1.05"]) as s:
            ask(s.port, b"version\r\n")
            time.sleep(0.2)
            err = s.stderr_text()
        self.assertIn("slab class   1: chunk size        56 perslab   18724", err)
        self.assertIn("slab class   2: chunk size        64 perslab   16384", err)

    def test_daemon_writes_pid_file_and_serves(self):
        port = harness.free_port()
        with tempfile.TemporaryDirectory() as d:
            pid_file = os.path.join(d, "tc.pid")
            r = run("-d", "-P", pid_file, "-p", str(port), "-l", "127.0.0.1", "-U", "0")
            self.assertEqual(r.returncode, 0, r.stderr)
            deadline = time.time() + 5
            while not os.path.exists(pid_file) and time.time() < deadline:
                time.sleep(0.05)
            with open(pid_file) as f:
                pid = int(f.read())  # complete at once: the server renames it into place
            try:
                self.assertEqual(ask(port, b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n")
            finally:
                os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 5
            while os.path.exists(pid_file) and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(os.path.exists(pid_file), "pid file left behind after SIGTERM")

    def test_settings_reach_stats_settings(self):
        with harness.tinycached(["-m", "100", "-c", "500", "-t", "2", "-n", "5", "-f", "1.05",
                                 "-C", "-I", "2m", "-M", "-o", "layout=stock"]) as s:
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                c.sendall(b"stats settings\r\n")
                data = b""
                while not data.endswith(b"END\r\n"):
                    data += c.recv(65536)
        stats = dict(line.split(" ", 2)[1:] for line in data.decode().split("\r\n")
                     if line.startswith("STAT "))
        self.assertEqual(stats["maxbytes"], str(100 << 20))
        self.assertEqual(stats["maxconns"], "500")
        self.assertEqual(stats["num_threads"], "2")
        self.assertEqual(stats["chunk_size"], "5")
        self.assertEqual(stats["growth_factor"], "1.05")
        self.assertEqual(stats["cas_enabled"], "no")
        self.assertEqual(stats["item_size_max"], str(2 << 20))
        self.assertEqual(stats["evictions"], "off")
        self.assertEqual(stats["item_layout"], "stock")
        self.assertEqual(stats["udpport"], "0")


if __name__ == "__main__":
    harness.main()
