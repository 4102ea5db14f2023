"""SASL PLAIN authentication (-S) over the binary protocol, against the real binary.

Run as
    /usr/bin/python3 tests/integration/sasl_test.py --tinycached build/server/tinycached
tinycached -S checks PLAIN credentials against a file of user:password lines named by
MEMCACHED_SASL_PWDB (or -o sasl_pwdb=). The same exchanges are also played against Debian's
memcached -S (built with Cyrus SASL: a SASL_CONF_PATH config allowing PLAIN and a sasldb made by
saslpasswd2, package sasl2-bin) and the replies compared byte for byte.
"""
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
USER, PASSWORD = b"alice", b"s3cret:pw"


def frame(op, key=b"", ext=b"", val=b"", opaque=0, cas=0):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0,
                       len(key) + len(ext) + len(val), opaque, cas) + ext + key + val


def plain(user, password, authzid=b""):
    return frame(0x21, b"PLAIN", val=authzid + b"\0" + user + b"\0" + password)


SET_K = frame(0x01, b"k", struct.pack(">II", 5, 0), b"value")
GET_K = frame(0x00, b"k", opaque=7)
NOOP = frame(0x0a, opaque=0xabcd)


def exchange(server, data, idle=0.3):
    """Sends `data`, reads until the server closes, or until it has received everything sent
    and gone idle (no thread running) with nothing more to read: its whole answer is there then.
    (A silence alone proves nothing on a loaded machine: the server may not have run yet.)
    `idle` is only how long one read waits before looking at the server."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(data)
        reply, closed = b"", False
        s.settimeout(idle)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                if not settled(server, s):
                    continue
                chunk = read_now(s)  # written just before the server went idle
                if chunk is None:
                    break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            reply += chunk
        return reply, closed


def read_now(sock):
    """What is there to read without waiting: None if nothing, b"" if the server closed."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1 << 16)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""
    finally:
        sock.settimeout(timeout)


def settled(server, sock):
    """Has `server` received all that was sent on `sock` and gone idle?"""
    try:
        unacked = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                 b"\0" * 4))[0]  # SIOCOUTQ
    except OSError:
        return True
    return unacked == 0 and not server.busy()


def packets(reply):
    """[(opcode, status, body)] of a binary reply."""
    out = []
    while len(reply) >= 24:
        op, status, bodylen = reply[1], struct.unpack(">H", reply[6:8])[0], struct.unpack(
            ">I", reply[8:12])[0]
        out.append((op, status, reply[24 + reply[4] + struct.unpack(">H", reply[2:4])[0]:24 + bodylen]))
        reply = reply[24 + bodylen:]
    return out


def binary_stats(server):
    """{name: value} of a binary STAT on a connection that authenticates first (under -S the
    text protocol is refused). That authentication is counted too."""
    reply, _ = exchange(server, plain(USER, PASSWORD) + frame(0x10, opaque=9))
    stats = {}
    while len(reply) >= 24:
        keylen, extlen = struct.unpack(">H", reply[2:4])[0], reply[4]
        bodylen = struct.unpack(">I", reply[8:12])[0]
        if reply[1] == 0x10 and keylen > 0:
            key = reply[24 + extlen:24 + extlen + keylen]
            stats[key.decode()] = reply[24 + extlen + keylen:24 + bodylen].decode()
        reply = reply[24 + bodylen:]
    return stats


# name -> bytes sent on one fresh connection
EXCHANGES = {
    "unauthenticated_get": GET_K + NOOP,
    "unauthenticated_noop": NOOP,
    "version_before_auth": frame(0x0b) + frame(0x0b),
    "list_mechs": frame(0x20, opaque=3),
    "wrong_password": plain(USER, b"wrong") + SET_K,
    "unknown_user": plain(b"mallory", PASSWORD) + SET_K,
    "right_password": plain(USER, PASSWORD) + SET_K + GET_K + NOOP,
    "authzid_is_ignored": plain(USER, PASSWORD, authzid=USER) + NOOP,
    "sasl_step_fails": frame(0x22, b"PLAIN", val=b"\0alice\0" + PASSWORD) + NOOP,
    "unknown_mechanism": frame(0x21, b"FOO-BAR", val=b"x") + NOOP,
    "mechanism_over_32_bytes": frame(0x21, b"P" * 33, val=b"x") + NOOP,
    "failed_reauth_drops_auth": plain(USER, PASSWORD) + plain(USER, b"bad") + GET_K,
    "bad_frame_before_auth": struct.pack(">BBHBBHIIQ", 0x80, 0, 3, 0, 0, 0, 2, 0, 0) + b"abc",
    "ascii_is_refused": b"version\r\nversion\r\nversion\r\n",
}


class SaslTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tinycached-sasl-")
        cls.pwdb = os.path.join(cls.dir, "pwdb")
        with open(cls.pwdb, "wb") as f:
            f.write(b"bob:other\n" + USER + b":" + PASSWORD + b"\n")
        os.environ["MEMCACHED_SASL_PWDB"] = cls.pwdb

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_exchanges(self):
        with harness.tinycached(["-S"]) as server:
            r = {name: exchange(server, data) for name, data in EXCHANGES.items()}
            self.assertTrue(server.alive())
        self.assertEqual(packets(r["unauthenticated_get"][0]), [(0x00, 0x20, b"Auth failure.")])
        self.assertTrue(r["unauthenticated_get"][1], "closed after the auth error")
        self.assertEqual(packets(r["list_mechs"][0]), [(0x20, 0, b"PLAIN")])
        self.assertEqual(packets(r["wrong_password"][0])[0], (0x21, 0x20, b"Auth failure."))
        self.assertEqual(packets(r["wrong_password"][0])[1][1], 0x20)  # the set is refused
        self.assertTrue(r["wrong_password"][1])
        self.assertEqual(packets(r["unknown_user"][0])[0][1], 0x20)
        self.assertEqual(packets(r["right_password"][0]),
                         [(0x21, 0, b"Authenticated"), (0x01, 0, b""), (0x00, 0, b"value"),
                          (0x0a, 0, b"")])
        self.assertFalse(r["right_password"][1])
        self.assertEqual(packets(r["sasl_step_fails"][0])[0][1], 0x20)
        self.assertEqual(packets(r["failed_reauth_drops_auth"][0])[2], (0x00, 0x20, b"Auth failure."))
        self.assertEqual(r["ascii_is_refused"], (b"", True))

    def test_password_file_from_extended_option(self):
        with harness.tinycached(["-S", "-o", "sasl_pwdb=" + self.pwdb]) as server:
            reply, closed = exchange(server, plain(b"bob", b"other") + NOOP)
        self.assertEqual(packets(reply), [(0x21, 0, b"Authenticated"), (0x0a, 0, b"")])
        self.assertFalse(closed)

    def test_start_refusals(self):
        env = dict(os.environ)
        del env["MEMCACHED_SASL_PWDB"]
        for args, expect in (([], b"MEMCACHED_SASL_PWDB"),
                             (["-o", "sasl_pwdb=/nonexistent/pwdb"], b"/nonexistent/pwdb"),
                             (["-B", "ascii", "-o", "sasl_pwdb=" + self.pwdb],
                              b"You cannot allow the ASCII protocol while using SASL")):
            as_root = ["-u", "root"] if os.geteuid() == 0 else []
            proc = subprocess.run([harness.TINYCACHED, "-S", "-p", "0"] + as_root + args, env=env,
                                  capture_output=True, timeout=10)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(expect, proc.stderr, args)

    def test_same_replies_as_memcached_S(self):
        if not os.access(SASLPASSWD2, os.X_OK):
            self.skipTest("saslpasswd2 not installed (Debian package sasl2-bin)")
        sasldb = os.path.join(self.dir, "sasldb2")
        with open(os.path.join(self.dir, "memcached.conf"), "w") as f:
            f.write("mech_list: plain\nsasldb_path: %s\n" % sasldb)
        subprocess.run([SASLPASSWD2, "-p", "-a", "memcached", "-c", "-f", sasldb, USER.decode()],
                       input=PASSWORD, check=True, timeout=10)
        os.environ["SASL_CONF_PATH"] = self.dir
        try:
            with harness.reference(["-S"]) as ref:
                theirs = {name: exchange(ref, data) for name, data in EXCHANGES.items()}
                their_stats = binary_stats(ref)
        finally:
            del os.environ["SASL_CONF_PATH"]
        with harness.tinycached(["-S"]) as server:
            mine = {name: exchange(server, data) for name, data in EXCHANGES.items()}
            my_stats = binary_stats(server)
        # Every authentication that ended counts in auth_cmds, each failed one in auth_errors
        # too (a refused frame, as a mechanism name over 32 bytes, in neither).
        counts = [(st.get("auth_cmds"), st.get("auth_errors")) for st in (their_stats, my_stats)]
        self.assertEqual(counts[1], counts[0])
        self.assertGreater(int(counts[0][1]), 0)
        self.assertGreater(int(counts[0][0]), int(counts[0][1]))
        for name in EXCHANGES:
            with self.subTest(exchange=name):
                ref_reply, ref_closed = theirs[name]
                reply, closed = mine[name]
                if name == "version_before_auth":  # tinycached's own version string
                    self.assertEqual([(op, st) for op, st, _ in packets(reply)],
                                     [(op, st) for op, st, _ in packets(ref_reply)])
                    continue
                self.assertEqual((reply, closed), (ref_reply, ref_closed))


if __name__ == "__main__":
    harness.main()
