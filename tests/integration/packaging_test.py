"""The install and the Debian package (server/packaging/): the man page, the systemd unit,
the conf wrapper and the .deb.

  ManPageTest   every option and -o suboption `tinycached -h` prints is a tagged paragraph
                of the generated man page, and man renders the page without a warning
  UnitTest      `systemd-analyze verify` accepts tinycached.service as staged by
                `cmake --install` (DESTDIR, prefix /usr), its ExecStart and man page included
  WrapperTest   systemd-tinycached-wrapper turns a conf in memcached.conf's format into the
                argv it would exec (TINYCACHED_WRAPPER_DRY_RUN)
  DebTest       `cpack -G DEB` with the build directory's CPackConfig.cmake builds a package
                whose Depends names the Debian package of every shared library the binary
                loads, with the unit, conf (a conffile), man page and copyright in it

Run by CTest, one class per test, as:
  /usr/bin/python3 packaging_test.py --tinycached <binary> --build-dir <build dir> <Class>
"""
import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

TINYCACHED = None
BUILD_DIR = None


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def help_options(text):
    """(flags, suboptions) of `tinycached -h`: -x and --long names at the start of a line,
    and the names of the "   - name" lines under -o."""
    flags, subs = set(), set()
    for line in text.split("\n")[1:]:
        m = re.match(r"^ {1,4}- ((?:[^\s,]+, )*[^\s,]+)", line)
        if m:
            subs.update(re.split(r"[=<]", name)[0] for name in m.group(1).split(", "))
            continue
        m = re.match(r"^ {0,4}(-[^\s,]+(?:, --[^\s,]+)*)", line)
        if m:
            flags.update(re.split(r"[=<]", name)[0] for name in m.group(1).split(", "))
    return flags, subs


def deroff(line):
    line = re.sub(r"\\f[BIRP]", "", line)
    return line.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def man_tags(page):
    """The deroffed first line of each .TP paragraph."""
    lines = page.split("\n")
    return [deroff(lines[i + 1]) for i, l in enumerate(lines[:-1]) if l.strip() == ".TP"]


class ManPageTest(unittest.TestCase):
    def setUp(self):
        self.page_path = os.path.join(BUILD_DIR, "server", "packaging", "tinycached.1")
        with open(self.page_path) as f:
            self.page = f.read()
        self.help = run([TINYCACHED, "-h"]).stdout

    def test_every_help_option_is_in_the_page(self):
        flags, subs = help_options(self.help)
        self.assertIn("-p", flags)
        self.assertIn("--list-presets", flags)
        self.assertIn("preset", subs)
        self.assertIn("no_slab_reassign", subs)
        tagged = set()
        for tag in man_tags(self.page):
            tagged.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", tag))
            tagged.update(re.split(r"[=<]", name)[0] for name in tag.split(", "))
        self.assertEqual(sorted(flags - tagged), [], "flags of -h missing from the man page")
        self.assertEqual(sorted(subs - tagged), [], "-o suboptions of -h missing from the man page")

    def test_every_preset_is_in_the_page(self):
        presets = [l.split()[0] for l in run([TINYCACHED, "--list-presets"]).stdout.split("\n")
                   if l.strip()]
        self.assertIn("stock", presets)
        tags = man_tags(self.page)
        for p in presets:
            self.assertIn(p, tags)

    def test_the_gzipped_page_is_the_page(self):
        with gzip.open(self.page_path + ".gz", "rt") as f:
            self.assertEqual(f.read(), self.page)

    def test_man_renders_it_without_warnings(self):
        if shutil.which("man") is None:
            self.skipTest("man is not installed")
        r = run(["man", "--warnings", "-E", "UTF-8", "-l", self.page_path],
                env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "")
        self.assertIn("--list-presets", r.stdout)


def staged_install(dest):
    r = run(["cmake", "--install", BUILD_DIR, "--prefix", "/usr"],
            env=dict(os.environ, DESTDIR=dest))
    if r.returncode != 0:
        raise AssertionError("cmake --install failed:\n" + r.stdout + r.stderr)


class UnitTest(unittest.TestCase):
    def test_systemd_analyze_verify_accepts_the_staged_unit(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (Debian package systemd): "
                          "the unit is NOT verified")
        with tempfile.TemporaryDirectory() as root:
            staged_install(root)
            unit = os.path.join(root, "usr/lib/systemd/system/tinycached.service")
            self.assertTrue(os.path.isfile(unit))
            with open(unit) as f:
                text = f.read()
            for setting in ("PrivateTmp=true", "ProtectSystem=full", "NoNewPrivileges=true",
                            "CapabilityBoundingSet=CAP_SETGID CAP_SETUID CAP_SYS_RESOURCE",
                            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                            "KillSignal=SIGUSR1", "Restart=always",
                            "WantedBy=multi-user.target"):
                self.assertIn("\n" + setting + "\n", text)
            exec_start = re.search(r"^ExecStart=(\S+) (\S+)$", text, re.M)
            self.assertEqual(exec_start.groups(),
                             ("/usr/libexec/tinycached/systemd-tinycached-wrapper",
                              "/etc/tinycached.conf"))
            # verify --root resolves ExecStart in the staged tree, and needs the units a
            # service depends on (sysinit.target, ...) there too: the host's are copied in.
            shutil.copytree("/lib/systemd/system", os.path.join(root, "lib/systemd/system"),
                            symlinks=True)
            r = run(["systemd-analyze", "verify", "--root=" + root, "tinycached.service"],
                    cwd=root, env=dict(os.environ, MANPATH=os.path.join(root, "usr/share/man")))
            out = (r.stdout + r.stderr).strip()
            self.assertEqual(r.returncode, 0, out)
            # Unknown keys and bad values are only warnings: any line about the unit fails.
            about_unit = [l for l in out.split("\n") if "tinycached" in l]
            self.assertEqual(about_unit, [])


class WrapperTest(unittest.TestCase):
    def setUp(self):
        self.wrapper = os.path.join(BUILD_DIR, "server", "packaging", "systemd-tinycached-wrapper")
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def dry_run(self, conf_text):
        conf = os.path.join(self.tmp.name, "tinycached.conf")
        if conf_text is not None:
            with open(conf, "w") as f:
                f.write(conf_text)
        r = run([self.wrapper, conf], env=dict(os.environ, TINYCACHED_WRAPPER_DRY_RUN="1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        argv = [l[len("argv: "):] for l in r.stdout.split("\n") if l.startswith("argv: ")]
        logs = [l[len("logfile: "):] for l in r.stdout.split("\n") if l.startswith("logfile: ")]
        self.assertTrue(argv[0].endswith("/bin/tinycached"), argv)
        return argv[1:], logs, r.stderr

    def test_sample_conf(self):
        argv, logs, err = self.dry_run(
            "# a comment\n"
            "-d\n"
            "\n"
            "logfile /var/log/tinycached.log\n"
            "-m 128   # trailing comment\n"
            "  -p 11999\n"
            "-u tinycached\n"
            "\t-l 127.0.0.1\n"
            "-vv\n"
            "--threads=2\n"
            "-o preset=tiny,hashpower=20\n"
            "-h\n"
            "not a flag\n"
            "-c 100")  # no newline at the end
        self.assertEqual(argv, ["-m", "128", "-p", "11999", "-u", "tinycached", "-l", "127.0.0.1",
                                "-vv", "--threads=2", "-o", "preset=tiny,hashpower=20",
                                "-c", "100"])
        self.assertEqual(logs, ["/var/log/tinycached.log"])
        self.assertIn('skipping "not a flag"', err)

    def test_installed_default_conf(self):
        with open(os.path.join(BUILD_DIR, "server", "packaging", "tinycached.conf")) as f:
            text = f.read()
        argv, logs, _ = self.dry_run(text)
        self.assertEqual(argv, ["-m", "64", "-p", "11211", "-u", "tinycached",
                                "-e", "/var/lib/tinycached/items", "-l", "127.0.0.1"])
        self.assertEqual(logs, [])
        presets = [l.split()[0] for l in run([TINYCACHED, "--list-presets"]).stdout.split("\n")
                   if l.strip()]
        self.assertIn("# " + " ".join(presets) + "\n", text)
        self.assertIn("# -o preset=", text)

    def test_missing_conf_starts_with_defaults(self):
        argv, logs, err = self.dry_run(None)
        self.assertEqual(argv, [])
        self.assertIn("cannot read", err)


def shlib_packages(binary):
    """The Debian packages of the shared libraries the binary names itself (its NEEDED entries,
    as dpkg-shlibdeps reads them; ldd also lists what those load in turn), found with ldd and
    dpkg -S."""
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            run(["readelf", "-d", binary]).stdout))
    pkgs = set()
    for line in run(["ldd", binary]).stdout.split("\n"):
        m = re.search(r"^\s*(\S+) => (/\S+)", line)
        if not m or m.group(1) not in needed:
            continue
        m = re.search(r"=> (/\S+)", line)
        path = m.group(1)
        r = run(["dpkg", "-S", path])
        if r.returncode != 0:  # /lib/x86_64-linux-gnu/... is listed under /usr/lib/... or not
            alt = path[4:] if path.startswith("/usr/") else "/usr" + path
            r = run(["dpkg", "-S", alt])
        if r.returncode == 0:
            pkgs.add(r.stdout.split(":")[0].strip())
    return pkgs


class DebTest(unittest.TestCase):
    def test_cpack_builds_the_package(self):
        for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
            if shutil.which(tool) is None:
                self.skipTest(tool + " is not installed: the package is NOT built")
        with tempfile.TemporaryDirectory() as out:
            r = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"),
                     "-B", out], cwd=BUILD_DIR)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            arch = run(["dpkg", "--print-architecture"]).stdout.strip()
            debs = [f for f in os.listdir(out) if f.endswith(".deb")]
            self.assertEqual(len(debs), 1, debs)
            self.assertRegex(debs[0], r"^tinycached_\d+\.\d+\.\d+_%s\.deb$" % re.escape(arch))
            deb = os.path.join(out, debs[0])

            info = run(["dpkg-deb", "-I", deb]).stdout
            fields = dict(re.findall(r"^ (\w[\w-]*): (.*)$", info, re.M))
            self.assertEqual(fields.get("Package"), "tinycached")
            self.assertEqual(fields.get("Architecture"), arch)
            self.assertIn("@", fields.get("Maintainer", ""))
            self.assertTrue(fields.get("Description"))
            depends = {d.strip().split()[0] for d in fields.get("Depends", "").split(",")}
            needed = shlib_packages(TINYCACHED)
            self.assertTrue(any(p.startswith("libevent") for p in needed), needed)
            self.assertTrue(any(p.startswith("libabsl") for p in needed), needed)
            self.assertEqual(sorted(needed - depends), [], "Depends: " + fields.get("Depends", ""))
            self.assertIn("adduser", depends)
            for script in ("postinst", "prerm", "postrm", "conffiles"):
                self.assertRegex(info, r"\b%s\b" % script)
            r = run(["dpkg-deb", "-f", deb, "Package"])
            self.assertEqual(r.stdout.strip(), "tinycached")
            with tempfile.TemporaryDirectory() as ctrl:
                run(["dpkg-deb", "-e", deb, ctrl])
                with open(os.path.join(ctrl, "conffiles")) as f:
                    self.assertEqual(f.read().split(), ["/etc/tinycached.conf"])
                for script in ("postinst", "prerm", "postrm"):
                    self.assertTrue(os.access(os.path.join(ctrl, script), os.X_OK), script)
                    self.assertEqual(run(["sh", "-n", os.path.join(ctrl, script)]).returncode, 0)

            listing = run(["dpkg-deb", "-c", deb]).stdout
            paths = {l.split()[-1] for l in listing.split("\n") if l.strip()}
            for path in ("./usr/bin/tinycached",
                         "./usr/lib/systemd/system/tinycached.service",
                         "./usr/libexec/tinycached/systemd-tinycached-wrapper",
                         "./etc/tinycached.conf",
                         "./usr/share/man/man1/tinycached.1.gz",
                         "./usr/share/doc/tinycached/copyright"):
                self.assertIn(path, paths)
            # Nothing from the build machine's paths leaks into the files that name paths.
            with tempfile.TemporaryDirectory() as tree:
                run(["dpkg-deb", "-x", deb, tree])
                for rel in ("usr/lib/systemd/system/tinycached.service", "etc/tinycached.conf",
                            "usr/libexec/tinycached/systemd-tinycached-wrapper"):
                    with open(os.path.join(tree, rel)) as f:
                        text = f.read()
                    self.assertNotIn(BUILD_DIR, text, rel)
                    self.assertNotIn("@TC_", text, rel)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--tinycached", required=True)
    parser.add_argument("--build-dir", required=True)
    args, rest = parser.parse_known_args()
    TINYCACHED = os.path.abspath(args.tinycached)
    BUILD_DIR = os.path.abspath(args.build_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
