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

# How long a server may take to start, answer or exit before the test gives up on it: only
# a hung server ever waits this long, so it is generous (a loaded machine, an ASan build).
PATIENCE = 60.0


def run(*args, timeout=PATIENCE, binary=None, as_root=True):
    """Runs the binary (tinycached unless given) to its exit. Run by root it gets `-u root`,
    without which both servers refuse to start, unless as_root=False."""
    argv = [binary or harness.TINYCACHED, *args]
    if os.geteuid() == 0 and as_root:
        argv += ["-u", "root"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def ask(port, request, until=b"\r\n"):
    """The reply to `request`, read until it ends with `until` (or the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while not data.endswith(until):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


MEMCACHED = "/usr/bin/memcached"

# A value for every memcached flag or -o option that takes one.
FLAG_VALUES = {
    "p": None, "U": "0", "s": os.path.join(tempfile.gettempdir(), "tinycached-cli-test-%d.sock" % os.getpid()), "a": "700", "l": "127.0.0.1",
    "m": "64", "c": "1024", "P": None, "f": "1.25", "n": "48", "D": ":", "t": "2", "R": "20",
    "b": "512", "B": "ascii", "I": "1m", "Y": "/dev/null", "u": "root",
    "e": os.path.join(tempfile.gettempdir(), "tinycached-cli-test-%d.items" % os.getpid()),
    "o": "modern", "N": "1",
}
SUBOPTION_VALUES = {
    "hashpower": "16", "tail_repair_time": "0", "hash_algorithm": "murmur3",
    "lru_crawler_sleep": "100", "lru_crawler_tocrawl": "0", "read_buf_mem_limit": "0",
    "hot_lru_pct": "20", "warm_lru_pct": "40", "hot_max_factor": "0.20",
    "warm_max_factor": "2.00", "temporary_ttl": "61", "idle_timeout": "10",
    "slab_chunk_max": "524288", "watcher_logbuf_size": "256", "worker_logbuf_size": "64",
    "sock_cookie_id": "1", "ext_path": "/tmp/ext:64m", "ext_page_size": "64",
    "ext_wbuf_size": "4", "ext_threads": "1", "ext_item_size": "512", "ext_item_age": "0",
    "ext_low_ttl": "0", "ext_recache_rate": "2000", "ext_compact_under": "1",
    "ext_drop_under": "1", "ext_max_frag": "0.8", "ext_max_sleep": "1000000",
    "slab_automove_freeratio": "0.01", "ssl_chain_cert": "/dev/null", "ssl_key": "/dev/null",
    "ssl_keyformat": "PEM", "ssl_verify_mode": "0", "ssl_ciphers": "HIGH",
    "ssl_ca_cert": "/dev/null", "ssl_wbuf_size": "16", "ssl_min_version": "2",
}


def memcached_help():
    """memcached 1.6.18's -h: its flags (letter, takes a value) and -o option names."""
    text = subprocess.run([MEMCACHED, "-h"], capture_output=True, text=True).stdout
    flags, suboptions = {}, []
    for line in text.splitlines():
        m = re.match(r"^-(\w)(?:,|\s)\s*(?:-*([\w-]+))?(=<[^>]*>)?", line)
        if m and line[2:3] != "v":
            flags[m.group(1)] = bool(m.group(3)) or m.group(1) in ("D", "R", "N", "o")
        m = re.match(r"^   - (\w+):", line)
        if m:
            suboptions.append(m.group(1))
    return flags, suboptions


def start_or_refusal(args, timeout=PATIENCE, attempts=3):
    """Starts tinycached with args on a free port: ("serves", None) once it answers,
    or ("exit", (returncode, stdout, stderr)) if it exits first.

    Another process may take the free port before the server binds it: the server then exits
    with "failed to listen" (started again on another port), or the test would be answered by
    that other process. So on TCP the server must answer `stats` with its own pid."""
    for attempt in range(attempts):
        outcome, detail = start_once(args, timeout)
        if (outcome == "exit" and "failed to listen" in detail[2] and "-s" not in args
                and attempt < attempts - 1):
            continue
        return outcome, detail


def start_once(args, timeout):
    port = harness.free_port()
    argv = [harness.TINYCACHED, "-p", str(port), "-l", "127.0.0.1", "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    proc = subprocess.Popen(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    unix_path = args[args.index("-s") + 1] if "-s" in args else None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                return "exit", (proc.returncode, out, err)
            try:
                if unix_path:  # -s: the unix socket instead of TCP (a path of this test's own)
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.settimeout(5)
                        s.connect(unix_path)
                        s.sendall(b"version\r\n")
                        if s.recv(100).startswith(b"VERSION "):
                            return "serves", None
                elif b"\r\nSTAT pid %d\r\n" % proc.pid in b"\r\n" + ask(
                        port, b"stats\r\n", until=b"END\r\n"):
                    return "serves", None
            except OSError:
                pass
            time.sleep(0.05)
        return "hangs", None
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=PATIENCE)
        if unix_path and os.path.exists(unix_path):
            os.unlink(unix_path)


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
        for args in (["-x"], ["-p", "99999"], ["-m", "zero"], ["-U", "70000"], ["-t", "0"],
                     ["-f", "0.5"], ["-I", "100"], ["-o", "layout=bogus"], ["-o", "nope=1"],
                     ["extra-arg"], ["-p"], ["-l", "no-such-host.invalid", "-p", "-1"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip(), "no message for %s" % args)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_root_without_u_is_refused_as_memcached_refuses_it(self):
        outcomes = []
        for binary in (MEMCACHED, harness.TINYCACHED):
            r = run("-p", str(harness.free_port()), "-l", "127.0.0.1", "-U", "0", binary=binary,
                    as_root=False)
            outcomes.append((r.returncode, r.stderr.strip()))
        self.assertEqual(outcomes[0], (64, "can't run as root without the -u switch"))
        self.assertEqual(outcomes[1], outcomes[0])

    def test_v_prints_one_start_up_line(self):
        # Printed before the server accepts: it is there once the server answers.
        with harness.tinycached(["-v"]) as s:
            port = s.port
            err = s.stderr_text()
        self.assertRegex(err, r"tinycached \S+: tcp:127\.0\.0\.1:%d, preset \w+, -m 64, 4 threads"
                         % port)

    def test_vv_logs_commands_and_replies_as_memcached_does(self):
        session = (b"set a 0 0 1\r\nx\r\nget a\r\nget nope\r\ndelete a noreply\r\nincr n 1\r\n"
                   b"bogus\r\nmg a v\r\nquit\r\n")
        logs = {}
        for binary in (MEMCACHED, harness.TINYCACHED):
            with harness.Server(binary, ["-vv"]) as server:
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                    s.sendall(session)
                    while s.recv(4096):  # until quit closes it
                        pass
                # The close is logged once the server has handled it: wait for that line.
                deadline = time.monotonic() + PATIENCE
                while (not re.search(r"^<(\d+) quit\n(?:.*\n)*<\1 connection closed\.$",
                                     server.stderr_text(), re.M)
                       and time.monotonic() < deadline):
                    time.sleep(0.05)
                text = server.stderr_text()
            # The lines of this test's connection only (the harness's readiness probe opens and
            # closes one of its own, logged in any order), each fd written as N.
            # A closed probe's fd may be reused: start at this connection's own opening line.
            lines = text.splitlines()
            fd = re.search(r"^<(\d+) set a 0 0 1$", text, re.M).group(1)
            first = max(i for i, line in enumerate(lines[:lines.index("<%s set a 0 0 1" % fd)])
                        if line == "<%s new auto-negotiating client connection" % fd)
            logs[binary] = [re.sub(r"^([<>]?)\d+", r"\1N", line) for line in lines[first:]
                            if re.match(r"^[<>]?%s[ :]" % fd, line)]
        self.assertIn("<N set a 0 0 1", logs[MEMCACHED])
        self.assertEqual(logs[harness.TINYCACHED], logs[MEMCACHED])

    def test_no_modern_gives_memcacheds_slab_table_and_settings(self):
        seen = {}
        for binary in (MEMCACHED, harness.TINYCACHED):
            with harness.Server(binary, ["-vv", "-o", "no_modern"]) as server:
                settings = ask(server.port, b"stats settings\r\n", until=b"END\r\n").decode()
                classes = [l for l in server.stderr_text().splitlines() if l.startswith("slab class")]
            seen[binary] = (classes, sorted(re.findall(
                r"STAT (slab_reassign|slab_automove|lru_crawler|lru_maintainer_thread|slab_chunk_max) "
                r"(\S+)", settings)))
        self.assertIn(("slab_chunk_max", "1048576"), seen[MEMCACHED][1])
        self.assertEqual(seen[harness.TINYCACHED], seen[MEMCACHED])

    def test_lru_maintainer_switches_as_memcacheds(self):
        for args in ([], ["-o", "no_lru_maintainer"], ["-o", "no_lru_maintainer,lru_maintainer"]):
            with self.subTest(args=args):
                seen = []
                for binary in (MEMCACHED, harness.TINYCACHED):
                    with harness.Server(binary, args) as server:
                        settings = ask(server.port, b"stats settings\r\n", until=b"END\r\n")
                    seen.append(re.findall(rb"STAT lru_maintainer_thread (\S+)", settings))
                self.assertEqual(len(seen[0]), 1)
                self.assertEqual(seen[1], seen[0])

    def test_slab_chunk_max_in_bytes_gives_memcacheds_slab_table(self):
        # memcached's own tests start it with these (t/item_size_max.t and others).
        for args in (["-I", "1024", "-o", "slab_chunk_max=1024"], ["-o", "slab_chunk_max=4096"],
                     ["-o", "slab_chunk_max=16384"], ["-o", "slab_chunk_max=64"]):
            with self.subTest(args=args):
                tables = []
                for binary in (MEMCACHED, harness.TINYCACHED):
                    with harness.Server(binary, ["-vv"] + args) as server:
                        tables.append([l for l in server.stderr_text().splitlines()
                                       if l.startswith("slab class")])
                self.assertTrue(tables[0])
                self.assertEqual(tables[1], tables[0])

    def test_listen_takes_host_names(self):
        port = harness.free_port()
        server = harness.Server(harness.TINYCACHED, port=port)
        server.argv[server.argv.index("-l") + 1] = "localhost"
        with server:
            self.assertEqual(ask(port, b"version\r\n")[:8], b"VERSION ")

    def test_listen_list_binds_every_address_as_memcached_does(self):
        # A comma list and a repeated -l: both servers listen on IPv4 and IPv6 loopback, show
        # the same listeners in `stats conns` and the same `inter` in `stats settings`.
        seen = {}
        for binary in (MEMCACHED, harness.TINYCACHED):
            port = harness.free_port()
            server = harness.Server(binary, ["-l", "::1"], port=port)
            server.argv[server.argv.index("-l") + 1] = "127.0.0.1,::1"
            with server:
                replies = []
                for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                    with socket.socket(family, socket.SOCK_STREAM) as s:
                        s.settimeout(5)
                        s.connect((host, port))
                        s.sendall(b"version\r\n")
                        replies.append(s.recv(100)[:8])
                conns = ask(port, b"stats conns\r\n", until=b"END\r\n").decode()
                inter = re.search(r"STAT inter (\S+)",
                                  ask(port, b"stats settings\r\n", until=b"END\r\n").decode())
            listening = sorted(
                re.search(r"STAT %s:addr (\S+)" % fd, conns).group(1).replace(str(port), "P")
                for fd in re.findall(r"STAT (\d+):state conn_listening", conns))
            seen[binary] = (replies, listening, inter.group(1))
        self.assertEqual(seen[MEMCACHED][0], [b"VERSION "] * 2)
        self.assertEqual(seen[MEMCACHED][1], ["tcp6:[::1]:P", "tcp:127.0.0.1:P"])
        self.assertEqual(seen[harness.TINYCACHED], seen[MEMCACHED])

    def test_busy_port_fails_cleanly(self):
        with harness.tinycached() as first:
            r = run("-p", str(first.port), "-l", "127.0.0.1")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("failed to listen", r.stderr)

    def test_vv_prints_memcacheds_slab_table(self):
        # The table is printed before the server listens: it is all there once it answers.
        with harness.tinycached(["-vv", "-n", "5", "-f", "1.05"]) as s:
            err = s.stderr_text()
        self.assertIn("slab class   1: chunk size        56 perslab   18724", err)
        self.assertIn("slab class   2: chunk size        64 perslab   16384", err)

    def test_daemon_writes_pid_file_and_serves(self):
        with tempfile.TemporaryDirectory() as d:
            pid_file = os.path.join(d, "tc.pid")
            # The server listens before it forks: a port taken meanwhile by another process
            # fails the start itself, and the test tries another.
            for attempt in range(3):
                port = harness.free_port()
                r = run("-d", "-P", pid_file, "-p", str(port), "-l", "127.0.0.1", "-U", "0")
                if "failed to listen" not in r.stderr:
                    break
            self.assertEqual(r.returncode, 0, r.stderr)
            # The daemon writes its pid file after the fork, listening already.
            deadline = time.monotonic() + PATIENCE
            while not os.path.exists(pid_file) and time.monotonic() < deadline:
                time.sleep(0.05)
            with open(pid_file) as f:
                pid = int(f.read())  # complete at once: the server renames it into place
            try:
                stats = ask(port, b"stats\r\n", until=b"END\r\n")
                self.assertIn(b"\r\nSTAT pid %d\r\n" % pid, b"\r\n" + stats)  # the daemon answers
                self.assertEqual(ask(port, b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n")
            finally:
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + PATIENCE
            while os.path.exists(pid_file) and time.monotonic() < deadline:
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

    def check_starts_or_is_refused(self, args, name):
        outcome, detail = start_or_refusal(args)
        if outcome == "serves":
            return "serves"
        self.assertEqual(outcome, "exit", "%s neither served nor exited" % (args,))
        rc, out, err = detail
        if rc == 0:  # -h, -V, -i: print and exit
            self.assertTrue(out.strip(), "%s exited 0 printing nothing" % (args,))
            return "prints"
        self.assertEqual(rc, 2, "%s: exit %d: %s" % (args, rc, err))
        lines = [l for l in err.splitlines() if l and not l.startswith("Try ")]
        self.assertEqual(len(lines), 1, "%s: want one line saying why, got %r" % (args, err))
        self.assertIn(name, lines[0], "%s: the message does not name the option" % (args,))
        return "refused"

    @unittest.skipUnless(os.path.exists(MEMCACHED), "needs Debian's memcached for its -h")
    def test_every_memcached_flag_starts_or_is_refused_with_a_reason(self):
        flags, suboptions = memcached_help()
        self.assertGreater(len(flags), 30, "memcached -h parsed badly: %s" % flags)
        self.assertGreater(len(suboptions), 40, "memcached -h parsed badly: %s" % suboptions)
        outcomes = {}
        for letter, takes_value in sorted(flags.items()):
            if letter in ("d", "p"):  # -d: its own test; -p: every start has one
                continue
            args = ["-" + letter]
            if takes_value:
                value = FLAG_VALUES.get(letter)
                if letter == "P":
                    value = os.path.join(tempfile.gettempdir(), "tinycached-cli-test.pid")
                self.assertIsNotNone(value, "no test value for -%s" % letter)
                args.append(value)
            with self.subTest(flag=args):
                outcomes["-" + letter] = self.check_starts_or_is_refused(args, "-" + letter)
        for name in suboptions:
            value = SUBOPTION_VALUES.get(name)
            opt = name if value is None else "%s=%s" % (name, value)
            with self.subTest(suboption=opt):
                outcomes[name] = self.check_starts_or_is_refused(["-o", opt], name)
        if os.path.exists(FLAG_VALUES["e"]):  # -e's items, written when that server stopped
            os.unlink(FLAG_VALUES["e"])
        # What works is known; a flag moving between classes is a decision.
        for flag in ("-A", "-F", "-b", "-k", "-r", "-B", "-L", "-X", "-W", "-c", "-t", "-m",
                     "-s", "-a", "-R", "-D", "-e", "idle_timeout", "no_lru_crawler",
                     "lru_crawler_sleep", "lru_crawler_tocrawl"):
            self.assertEqual(outcomes.get(flag), "serves", flag)
        for flag in ("-h", "-V", "-i"):
            self.assertEqual(outcomes.get(flag), "prints", flag)
        # -S works given a password file (sasl_test.py); without one it is refused.
        for flag in ("-Z", "-S", "ssl_chain_cert", "ext_path"):
            self.assertEqual(outcomes.get(flag), "refused", flag)

    def test_shutdown_needs_A(self):
        with harness.tinycached() as s:
            self.assertEqual(ask(s.port, b"shutdown\r\n"), b"ERROR: shutdown not enabled\r\n")
        with harness.tinycached(["-A"]) as s:
            self.assertEqual(ask(s.port, b"shutdown now\r\n"),
                             b"CLIENT_ERROR invalid shutdown mode\r\n")
            self.assertEqual(ask(s.port, b"shutdown\r\n"), b"")  # closed, no reply
            s.proc.wait(timeout=PATIENCE)
            self.assertEqual(s.proc.returncode, 0)

    def test_F_refuses_flush_all(self):
        with harness.tinycached(["-F"]) as s:
            self.assertEqual(ask(s.port, b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n")
            self.assertEqual(ask(s.port, b"flush_all\r\n"),
                             b"CLIENT_ERROR flush_all not allowed\r\n")
            # Nothing for the noreply flush_all, and k is still there.
            self.assertEqual(ask(s.port, b"flush_all noreply\r\nget k\r\n", until=b"END\r\n"),
                             b"VALUE k 0 1\r\nv\r\nEND\r\n")


if __name__ == "__main__":
    harness.main()
