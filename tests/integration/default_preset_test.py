"""A binary's built-in item layout (CMake's TINYCACHED_DEFAULT_PRESET) and the flag over it.

Run as
    /usr/bin/python3 tests/integration/default_preset_test.py --tinycached <binary> \\
        --expect-default <preset>
CTest runs it on the main build (--expect-default stock); .ci/run builds the `compact`
configure preset of CMakePresets.json and runs it on that binary (--expect-default compact).

Started with no layout flag, the server must report the expected preset as `item_layout`
in `stats settings`, with every layout knob exactly as an explicit `-o preset=<it>` gives;
an explicit `-o preset=` must still win over the built-in default.
"""
import argparse
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXPECTED = None  # set from --expect-default
# The `stats settings` lines that describe the item layout (README "Item layouts").
LAYOUT_STATS = ("item_layout", "item_refs", "item_ref_bytes", "item_header",
                "item_header_bytes", "item_key_packing", "item_store", "chunk_align",
                "slab_classes", "cas_enabled", "chunk_size", "growth_factor")


def settings(args):
    with harness.Server(harness.TINYCACHED, args) as server:
        sock = server.connect()
        sock.sendall(b"stats settings\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise AssertionError("connection closed: %r" % reply)
            reply += chunk
        sock.close()
    values = {}
    for line in reply.decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            values[parts[1]] = parts[2]
    return {name: values.get(name) for name in LAYOUT_STATS}


class DefaultPresetTest(unittest.TestCase):
    def test_no_flag_gives_the_built_in_preset(self):
        plain = settings([])
        explicit = settings(["-o", "preset=" + EXPECTED])
        self.assertEqual(plain["item_layout"], EXPECTED)
        self.assertEqual(plain, explicit)

    def test_the_flag_overrides_the_built_in_preset(self):
        other = "tiny" if EXPECTED != "tiny" else "stock"
        chosen = settings(["-o", "preset=" + other])
        self.assertEqual(chosen["item_layout"], other)
        self.assertNotEqual(chosen, settings([]))
        # So does a single knob, over the built-in preset's value.
        align = settings(["-o", "align=4"])
        self.assertEqual(align["item_layout"], EXPECTED)
        self.assertEqual(align["chunk_align"], "4")

    def test_help_names_the_built_in_preset(self):
        text = subprocess.run([harness.TINYCACHED, "-h"], capture_output=True,
                              text=True).stdout
        self.assertIn("(default: %s;" % EXPECTED, text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--expect-default", required=True)
    args, rest = parser.parse_known_args()
    EXPECTED = args.expect_default
    sys.argv = [sys.argv[0]] + rest
    harness.main()
