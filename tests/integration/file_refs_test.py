"""Every file a comment or document names exists.

Scans the tracked *.h, *.cc, *.py, *.md and CMakeLists.txt files for paths under the tree's
top-level folders (core/foo.h, server/protocol/x.cc, experiments/y, results/z.md, tests/...,
.ci/run) and fails, listing file:line and path, for each one that names nothing. A path counts
as found when it exists from the repository root or from the naming file's folder, when it
names a source pair by stem (core/tiny_store for core/tiny_store.{h,cc}), or when it names an
executable its folder's CMakeLists.txt builds (server/tinycached, experiments/fill). `*` and
{a,b} are expanded.

Run by CTest as: /usr/bin/python3 file_refs_test.py [--root <source dir>] [unittest args]
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOP_DIRS = ("core", "server", "compact", "experiments", "results", "tests", ".ci")
SCANNED_SUFFIXES = (".h", ".cc", ".py", ".md")
# A path starts at one of TOP_DIRS and is not the tail of a longer path (/work/x/server/...).
PATH = re.compile(r"(?<![\w/.$-])((?:%s)/[\w./*{},-]*[\w*}])" % "|".join(map(re.escape, TOP_DIRS)))


def tracked_files(root):
    try:
        out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                             check=True).stdout
        names = out.split("\n")
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, subdirs, files in os.walk(root):
            subdirs[:] = [s for s in subdirs if not s.startswith((".", "build"))]
            names += [os.path.relpath(os.path.join(d, f), root) for f in files]
    own = os.path.basename(__file__)  # this file names missing paths on purpose
    return [n for n in names if os.path.basename(n) != own and
            (n.endswith(SCANNED_SUFFIXES) or os.path.basename(n) == "CMakeLists.txt")]


def expand_braces(path):
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [p for alt in m.group(1).split(",")
            for p in expand_braces(path[:m.start()] + alt + path[m.end():])]


def built_executables(root, folder, cache={}):
    if folder not in cache:
        try:
            with open(os.path.join(root, folder, "CMakeLists.txt")) as f:
                cache[folder] = set(re.findall(r"add_executable\(\s*([\w-]+)", f.read()))
        except OSError:
            cache[folder] = set()
    return cache[folder]


def names_something(root, referrer, path):
    for base in (root, os.path.join(root, os.path.dirname(referrer))):
        full = os.path.join(base, path)
        if "*" in path:
            if glob.glob(full):
                return True
        elif (os.path.exists(full) or os.path.exists(full + ".h")
              or os.path.exists(full + ".cc")):
            return True
    folder, name = os.path.split(path)
    return name in built_executables(root, folder)


def dangling_references(root):
    bad = []
    for name in tracked_files(root):
        try:
            with open(os.path.join(root, name), errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            for m in PATH.finditer(line):
                for path in expand_braces(m.group(1).rstrip(".,")):
                    if not names_something(root, name, path):
                        bad.append("%s:%d: %s" % (name, number, path))
    return bad


class FileReferencesTest(unittest.TestCase):
    def test_every_named_file_exists(self):
        self.assertGreater(len(tracked_files(ROOT)), 50, "found too few files under %s" % ROOT)
        bad = dangling_references(ROOT)
        self.assertEqual(bad, [], "paths named that do not exist:\n" + "\n".join(bad))

    def test_a_missing_file_is_reported(self):
        self.assertFalse(names_something(ROOT, "README.md", "core/no_such_file.h"))
        self.assertTrue(names_something(ROOT, "README.md", "core/item_store"))
        self.assertTrue(names_something(ROOT, "README.md", "server/tinycached"))
        self.assertEqual(expand_braces("results/x.{csv,md}"), ["results/x.csv", "results/x.md"])
        self.assertEqual([m.group(1) for m in PATH.finditer("see core/a.h and /w/server/b.cc.")],
                         ["core/a.h"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--root", default=ROOT)
    args, rest = parser.parse_known_args()
    ROOT = os.path.abspath(args.root)
    unittest.main(argv=[sys.argv[0]] + rest)
