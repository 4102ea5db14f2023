#!/usr/bin/env python3
"""Runs memcached's own perl test suite (the t/ directory of its source tree) against a server.

    python3 tests/integration/memcached_suite.py --memcached-src DIR --server BINARY
            [--baseline /usr/bin/memcached] [--only FILE.t ...] [--timeout S] [-j N]
            [--markdown OUT.md] [--csv OUT.csv]

DIR is an unpacked memcached source tree (`apt-get source memcached`, with a deb-src line);
its t/ is copied to a temporary directory, never written to. The suite starts
"$builddir/memcached-debug" through "$builddir/timedrun" with $builddir = its working
directory, so the copy gets memcached-debug as a symlink to BINARY (or, if BINARY refuses
`-o relaxed_privileges`, which only memcached's debug build takes and the suite adds to every
start, a shell wrapper that drops that option and execs BINARY) and timedrun built from the
tree's timedrun.c (a shell stand-in that execs the server if no C compiler is found). Every .t
runs under `perl` in its own process group, killed after --timeout seconds, and every process
that inherited its MC_SUITE_RUN marker (the servers it started) is killed when it ends.
--strip-udp drops the "-U <port>" the suite adds to every TCP start, for a server without UDP.

With --baseline the same files run against that binary too (Debian's memcached 1.6.18), and a
file the baseline fails is reported as skipped for BINARY ("baseline fails"). Files for
features neither side is built with (TLS, extstore, the proxy) are skipped without running.

Perl modules the suite uses: Test::More, IO::Socket::INET/UNIX, POSIX, Socket, Cwd, Carp,
Data::Dumper, File::Temp, File::Copy, FindBin — all in Debian's perl / perl-base /
perl-modules; nothing else is needed while SSL_TEST is unset (IO::Socket::SSL only for TLS).

Exit status: 0 when BINARY passes every file the baseline passes (or every file run, without
--baseline), 1 otherwise.
"""
import argparse
import csv
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# Files for features neither Debian's memcached nor tinycached is built with.
NOT_BUILT = [
    (re.compile(r"^ssl_.*\.t$"), "TLS is not built"),
    (re.compile(r"extstore"), "extstore is not built"),
    (re.compile(r"^proxy\.t$"), "the proxy is not built"),
    # These two check memcached's source tree, not a server.
    (re.compile(r"^line-lengths\.t$"), "checks memcached's doc/protocol.txt, not a server"),
    (re.compile(r"^whitespace\.t$"), "checks memcached's git checkout, not a server"),
]

# memcached-debug when arguments must be dropped: the binary without them. The suite adds
# "-o relaxed_privileges" (an option of memcached's debug build only) to every start, and
# "-U <port>" to every start on a TCP port; --strip-udp drops the latter.
ARG_FILTER_WRAPPER = """#!/bin/sh
# %(what)s
n=$#
i=0
while [ $i -lt $n ]; do
  a=$1; shift; i=$((i+1))
  if %(test)s; then
    shift; i=$((i+1)); continue
  fi
  set -- "$@" "$a"
done
exec %(server)s "$@"
"""

TIMEDRUN_STANDIN = '#!/bin/sh\n# timedrun SECONDS CMD...: runs CMD (the time limit is the runner\'s)\nshift\nexec "$@"\n'


def not_built_reason(name):
    for pattern, reason in NOT_BUILT:
        if pattern.search(name):
            return reason
    return None


def prepare(src, server, workdir, strip_udp=False):
    """Builds $builddir in `workdir`: t/ copied, memcached-debug and timedrun. Returns what
    memcached-debug drops from the arguments (a list of strings)."""
    shutil.copytree(os.path.join(src, "t"), os.path.join(workdir, "t"), symlinks=True)
    server = os.path.abspath(server)
    exe = os.path.join(workdir, "memcached-debug")
    probe = subprocess.run([server, "-o", "relaxed_privileges", "-h"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    dropped, tests = [], []
    if probe.returncode != 0:
        dropped.append("-o relaxed_privileges")
        tests.append('{ [ "$a" = "-o" ] && [ "$1" = "relaxed_privileges" ]; }')
    if strip_udp:
        dropped.append("-U <port>")
        tests.append('[ "$a" = "-U" ]')
    if not dropped:
        os.symlink(server, exe)
    else:
        with open(exe, "w") as f:
            f.write(ARG_FILTER_WRAPPER % {"what": "the server without " + ", ".join(dropped),
                                          "test": " || ".join(tests),
                                          "server": shlex.quote(server)})
        os.chmod(exe, 0o755)
    timedrun = os.path.join(workdir, "timedrun")
    source = os.path.join(src, "timedrun.c")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    built = False
    if cc and os.path.exists(source):
        built = subprocess.run([cc, "-O2", "-o", timedrun, source],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if not built:
        with open(timedrun, "w") as f:
            f.write(TIMEDRUN_STANDIN)
        os.chmod(timedrun, 0o755)
    return dropped


TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*?)\s*$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)(?:\s*#\s*(?:skip|SKIP)\S*\s*(.*))?")


def parse_tap(output):
    """Returns (planned, ran, failed subtest names, skip reason or None)."""
    planned, ran, failed, skip = None, 0, [], None
    for line in output.splitlines():
        m = TAP_PLAN.match(line)
        if m:
            planned = int(m.group(1))
            if planned == 0:
                skip = (m.group(2) or "skipped").strip()
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        ran += 1
        description = m.group(3)
        todo = re.search(r"#\s*TODO", description, re.I)
        if m.group(1) == "not ok" and not todo:
            name = re.sub(r"\s*#.*$", "", description) or "(unnamed)"
            failed.append("%s %s" % (m.group(2) or ran, name))
    return planned, ran, failed, skip


def kill_marked(marker):
    """SIGKILLs every process whose environment holds MC_SUITE_RUN=<marker>: the servers a
    test started, which may have left its process group (timedrun, -d)."""
    needle = ("MC_SUITE_RUN=%s" % marker).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if needle in f.read().split(b"\0"):
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def run_file(workdir, name, timeout):
    """Runs t/<name> with cwd = workdir. Returns a dict: verdict pass|fail|skip, detail, seconds."""
    start = time.time()
    env = dict(os.environ)
    for var in ("T_MEMD_USE_DAEMON", "SSL_TEST", "VALGRIND_TEST"):
        env.pop(var, None)
    marker = "%d-%s-%f" % (os.getpid(), name, start)
    env["MC_SUITE_RUN"] = marker
    # Output goes to a file: a server the test leaves running cannot hold a pipe open.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(["perl", os.path.join("t", name)], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_marked(marker)
        proc.wait()
        log.seek(0)
        out = log.read()
    text = out.decode("utf-8", "replace")
    planned, ran, failed, skip = parse_tap(text)
    result = {"file": name, "seconds": time.time() - start, "output": text}
    if timed_out:
        result.update(verdict="fail", detail="timed out after %ds (%d subtests ran%s)" % (
            timeout, ran, "; failed: " + ", ".join(failed) if failed else ""))
    elif skip is not None:
        result.update(verdict="skip", detail=skip)
    elif failed:
        result.update(verdict="fail", detail="; ".join(failed))
    elif proc.returncode != 0 or planned is None or planned != ran:
        last = [l for l in text.splitlines() if l.strip()][-1:] or ["no output"]
        result.update(verdict="fail", detail="exit %s, %s of %s subtests ran: %s" % (
            proc.returncode, ran, planned if planned is not None else "?", last[0][:200]))
    else:
        result.update(verdict="pass", detail="%d subtests" % ran)
    return result


def run_suite(src, server, files, timeout, jobs, label, log, strip_udp=False):
    with tempfile.TemporaryDirectory(prefix="mc-t-") as workdir:
        dropped = prepare(src, server, workdir, strip_udp)
        if dropped:
            print("%s: memcached-debug drops %s" % (label, ", ".join(dropped)), file=log)
        results = {}

        def one(name):
            reason = not_built_reason(name)
            if reason:
                return {"file": name, "verdict": "skip", "detail": reason, "seconds": 0, "output": ""}
            return run_file(workdir, name, timeout)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for r in pool.map(one, files):
                results[r["file"]] = r
                print("%-12s %-28s %-4s %6.1fs %s" % (label, r["file"], r["verdict"], r["seconds"],
                                                     r["detail"][:100]), file=log, flush=True)
        return results


def machine():
    m = harness.machine()
    return "%s; %s; nproc %d" % (m["uname"], m["cpu"], m["nproc"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memcached-src", required=True, help="unpacked memcached source tree")
    parser.add_argument("--server", required=True, help="the binary under test")
    parser.add_argument("--baseline", help="a reference memcached, e.g. /usr/bin/memcached")
    parser.add_argument("--only", nargs="*", help="run only these .t files")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per file (120)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="files run at once (1)")
    parser.add_argument("--markdown", help="write the table as Markdown here")
    parser.add_argument("--csv", help="write the table as CSV here")
    parser.add_argument("--reasons", help="a CSV of file,reason: why the server fails a file the "
                        "baseline passes, copied into the Markdown table")
    parser.add_argument("--strip-udp", action="store_true",
                        help="drop the -U <port> the suite adds, for a server without UDP (not "
                        "the baseline); files that need UDP then fail on their own")
    parser.add_argument("--show-output", action="store_true", help="print each failing file's TAP")
    args = parser.parse_args()

    tdir = os.path.join(args.memcached_src, "t")
    if not os.path.isdir(tdir):
        parser.error("%s has no t/ directory" % args.memcached_src)
    files = sorted(f for f in os.listdir(tdir) if f.endswith(".t"))
    if args.only:
        wanted = {os.path.basename(f) for f in args.only}
        files = [f for f in files if f in wanted]

    base = None
    if args.baseline:
        base = run_suite(args.memcached_src, args.baseline, files, args.timeout, args.jobs,
                         "baseline", sys.stderr)
    mine = run_suite(args.memcached_src, args.server, files, args.timeout, args.jobs, "server",
                     sys.stderr, args.strip_udp)

    reasons = {}
    if args.reasons:
        with open(args.reasons) as f:
            for row in csv.reader(f):
                if len(row) >= 2 and not row[0].startswith("#"):
                    reasons[row[0]] = row[1]

    rows = []
    regressions = 0
    for name in files:
        m = mine[name]
        b = base[name] if base else None
        verdict = m["verdict"]
        note = m["detail"]
        if b is not None and b["verdict"] != "pass" and verdict != "pass" and \
                not not_built_reason(name):
            verdict, note = "skip", "baseline %ss too (%s)" % (b["verdict"], m["detail"])
        if b is not None and b["verdict"] == "pass" and verdict != "pass":
            regressions += 1
            if name in reasons:
                note = "%s — %s" % (reasons[name], m["detail"])
        elif b is None and verdict == "fail":
            regressions += 1
        rows.append((name, b["verdict"] if b else "", verdict, note))
        if args.show_output and m["verdict"] == "fail":
            print("==== %s\n%s" % (name, m["output"]), file=sys.stderr)

    def count(col):
        c = {"pass": 0, "fail": 0, "skip": 0}
        for r in rows:
            if r[col]:
                c[r[col]] += 1
        return c

    cm, cs = count(1), count(2)
    print("%-28s %-9s %-9s %s" % ("file", "baseline", "server", "detail"))
    for r in rows:
        print("%-28s %-9s %-9s %s" % (r[0], r[1] or "-", r[2], r[3]))
    summary = "server: %(pass)d pass, %(fail)d fail, %(skip)d skip" % cs
    if base:
        summary = ("baseline: %(pass)d pass, %(fail)d fail, %(skip)d skip; " % cm) + summary
    print(summary)

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "memcached", "tinycached", "detail"])
            w.writerows(rows)
    if args.markdown:
        with open(args.markdown, "w") as f:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
            f.write("# memcached 1.6.18's t/ suite\n\n")
            f.write("- commit: `%s`\n" % (commit.stdout.strip() or "unknown"))
            f.write("- machine: %s\n" % machine())
            f.write("- command: `%s`\n" % " ".join(["python3"] + sys.argv))
            f.write("- %s\n\n" % summary)
            f.write("| file | memcached | tinycached | detail |\n|---|---|---|---|\n")
            for r in rows:
                f.write("| %s | %s | %s | %s |\n" % (r[0], r[1] or "-", r[2],
                                                    r[3].replace("|", "\\|")))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
