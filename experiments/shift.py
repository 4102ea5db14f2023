#!/usr/bin/env python3
"""The size-shift experiment: hit ratio after a cache's item sizes change
(slab calcification).

For every configuration, starts a fresh server with -m 64 on a free 127.0.0.1
port and
  phase 1  fills it with tiny items (keys 1, 2, 3, ..., value "x") until the
           first eviction, with build/experiments/fill (skipped for an "empty"
           configuration: the ideal of a server that holds nothing yet);
  phase 2  runs build/experiments/shift.py for --seconds (default 60): a
           read-through client on 150,000 keys k1..k150000 with 300-byte
           values; every request is a multi-get of 100 uniform random keys
           and every miss is then set. 150k x 300 B is about 45 MB: it fits
           in 64 MB, so a cache that gives the memory of the tiny items to the
           300-byte items converges to a hit ratio near 1.
It writes
    results/shift.csv   the per-second series of every run (and the medians)
    results/shift.md    hit ratio at 5, 10, 15, 20, 30, 45 and 60 s, ratio to
                        the empty server at 15 and 30 s, how it was run
    results/shift.png   hit ratio per second over time, one curve per configuration

Configurations (default):
    memcached                            Debian's memcached 1.6.18, defaults (slab_automove=1)
    memcached -o slab_automove=2
    tinycached                           tinycached defaults
    tinycached -o preset=compact
    empty tinycached -o preset=compact   phase 1 skipped
A configuration is "[empty] SERVER [FLAGS...]": SERVER is memcached, tinycached
(the one in --build-dir) or a path; every server also gets
-m <limit> -p <port> -U 0 -l 127.0.0.1. Flags in brackets are optional: passed
only if the binary accepts them, e.g. "tinycached [-o slab_reassign] -o slab_automove=1".
A configuration whose other flags the binary rejects is not run (and listed as
such). --add SPEC appends to the default list, --config SPEC replaces it.

Usage: experiments/shift.py [--repeat N] [--seconds 60] [--add "tinycached -o slab_automove=0"]
Exit status: 0 if every configuration ran with no verify failures or protocol
errors, 1 otherwise (the results are written either way).
"""
import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: servers and provenance)

DEFAULT_CONFIGS = [
    "memcached",
    "memcached -o slab_automove=2",
    "tinycached",
    "tinycached -o preset=compact",
    "empty tinycached -o preset=compact",
]
CHECKPOINTS = [5, 10, 15, 20, 30, 45, 60]  # seconds shown in the table
VS_EMPTY_AT = [15, 30]  # seconds at which the ratio to the empty server is shown
COLOURS = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#0072b2", "#d55e00", "#000000",
           "#cc79a7", "#8c564b", "#7f7f00", "#17becf", "#e41a1c"]


# ---------------------------------------------------------------------------
# Configurations.

class Config:
    def __init__(self, spec, build_dir, memcached):
        self.spec = spec
        words = shlex.split(spec)
        self.empty = bool(words) and words[0] == "empty"
        if self.empty:
            words = words[1:]
        if not words:
            raise ValueError("configuration %r names no server" % spec)
        server = words[0]
        if server == "memcached":
            self.binary = memcached
        elif server == "tinycached":
            self.binary = os.path.join(build_dir, "server", "tinycached")
        else:
            self.binary = os.path.abspath(server)
        self.kind = os.path.basename(server)
        # Required flags, and optional groups written in brackets.
        self.required, self.optional = [], []
        group = None
        for w in words[1:]:
            if group is None and w.startswith("["):
                group, w = [], w[1:]
            closes = group is not None and w.endswith("]")
            if closes:
                w = w[:-1]
            if group is None:
                self.required.append(w)
            else:
                if w:
                    group.append(w)
                if closes:
                    self.optional.append(group)
                    group = None
        if group is not None:
            raise ValueError("configuration %r: unclosed [" % spec)
        self.flags = None  # what is passed, once resolved
        self.skipped = None  # why it is not run
        self.notes = []
        self.runs = []  # one dict per run (see run_once)
        self.errors = []

    @property
    def label(self):
        flags = self.flags if self.flags is not None else self.required
        text = "%s %s" % (self.kind, " ".join(flags) if flags else "defaults")
        return "empty server: " + text if self.empty else text

    def resolve(self, limit_mb):
        """Decides the flags to pass: required ones must be accepted (else the
        configuration is skipped), optional groups are kept only if accepted."""
        base = ("-m", str(limit_mb))
        if not os.access(self.binary, os.X_OK):
            self.skipped = "no binary at `%s`" % self.binary
            return
        ok, error = lab.accepts_flags(self.binary, self.required, base)
        if not ok:
            self.skipped = "`%s` does not start with `%s`: %s" % (
                self.binary, " ".join(self.required), error)
            return
        flags = list(self.required)
        for group in self.optional:
            ok, error = lab.accepts_flags(self.binary, flags + group, base)
            if ok:
                flags += group
            else:
                self.notes.append("optional `%s` not accepted by this build, not passed (%s)"
                                  % (" ".join(group), error))
        self.flags = flags


# ---------------------------------------------------------------------------
# One run.

def snapshot(port, value_size):
    """A few server figures: items, evictions, page moves, and the pages held
    by slab classes whose chunks fit a phase-2 item (chunk >= value size)."""
    stats = lab.stats_values(port)
    slabs = {}
    for name, value in lab.stats_values(port, b"stats slabs").items():
        if ":" in name:
            cls, field = name.split(":", 1)
            try:
                slabs.setdefault(cls, {})[field] = int(value)
            except ValueError:
                pass
    big = [c for c in slabs.values() if c.get("chunk_size", 0) >= value_size]
    small = [c for c in slabs.values() if c.get("chunk_size", 0) < value_size]

    def num(name):
        try:
            return int(stats[name])
        except (KeyError, ValueError):
            return None
    return {
        "curr_items": num("curr_items"),
        "evictions": num("evictions"),
        "slabs_moved": num("slabs_moved"),
        "big_pages": sum(c.get("total_pages", 0) for c in big),
        "small_pages": sum(c.get("total_pages", 0) for c in small),
    }


def run_once(config, args, fill, shift):
    """Starts a fresh server, runs phase 1 (unless empty) and phase 2, stops it."""
    server = lab.Server(config.binary, ["-m", str(args.limit_mb)] + config.flags)
    server.start()
    try:
        run = {"fill": None}
        if not config.empty:
            done = subprocess.run([fill, "--port", str(server.port), "--pid", str(server.proc.pid),
                                   "--label", config.label, "--json"],
                                  capture_output=True, text=True, timeout=600)
            result = json.loads(done.stdout) if done.stdout.strip() else None
            if done.returncode != 0 or result is None:
                raise RuntimeError("fill exited %d: %s" % (done.returncode, done.stderr.strip()))
            run["fill"] = result
        run["before"] = snapshot(server.port, args.value_size)
        argv = [shift, "--port", str(server.port), "--seconds", str(args.seconds),
                "--keys", str(args.keys), "--value-size", str(args.value_size),
                "--keys-per-get", str(args.keys_per_get), "--connections", str(args.connections),
                "--seed", str(args.seed + len(config.runs)), "--rate", str(args.rate), "--json"]
        run["shift"], _ = lab.run_client(argv, server, args.seconds + 120, "phase 2",
                                         "shift client")
        run["after"] = snapshot(server.port, args.value_size)
        return run
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# Series and summaries.

def series(run):
    """[(second, hit ratio, cumulative hit ratio, keys asked)] of one run."""
    out, hits, keys = [], 0, 0
    for s in run["shift"]["per_second"]:
        hits += s["hits"]
        keys += s["keys"]
        out.append((s["second"], s["hit_ratio"], hits / keys if keys else 0.0, s["keys"]))
    return out


def median_series(config):
    """Per second: medians over the runs of the ratio, the cumulative ratio and keys/s."""
    all_series = [series(r) for r in config.runs]
    if not all_series:
        return []
    n = min(len(s) for s in all_series)
    return [(all_series[0][i][0],
             statistics.median(s[i][1] for s in all_series),
             statistics.median(s[i][2] for s in all_series),
             statistics.median(s[i][3] for s in all_series)) for i in range(n)]


def at_second(med, second):
    for s, ratio, _, _ in med:
        if s == second:
            return ratio
    return None


def fmt(value, pattern):
    return "" if value is None else pattern % value


def csv_field(text):
    text = str(text)
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(path, configs, meta):
    columns = ["configuration", "server_flags", "phase1", "run", "second", "gets", "keys", "hits",
               "sets", "hit_ratio", "cumulative_hit_ratio", "limit_mb", "commit", "date",
               "machine", "cpu", "nproc", "server_version"]
    with open(path, "w") as out:
        out.write(",".join(columns) + "\n")

        def row(c, run, second, gets, keys, hits, sets, ratio, cumulative):
            values = [c.label, " ".join(c.flags), "no" if c.empty else "fill", run, second, gets,
                      keys, hits, sets, "%.6f" % ratio, "%.6f" % cumulative, meta["limit_mb"],
                      *lab.stamp_columns(meta).values(),
                      meta["versions"].get(c.binary, "")]
            out.write(",".join(csv_field(v) for v in values) + "\n")

        for c in configs:
            for i, r in enumerate(c.runs):
                cum_hits = cum_keys = 0
                for s in r["shift"]["per_second"]:
                    cum_hits += s["hits"]
                    cum_keys += s["keys"]
                    row(c, i + 1, s["second"], s["gets"], s["keys"], s["hits"], s["sets"],
                        s["hit_ratio"], cum_hits / cum_keys if cum_keys else 0.0)
            if len(c.runs) > 1:
                for second, ratio, cumulative, keys in median_series(c):
                    row(c, "median", second, "", "%.0f" % keys, "", "", ratio, cumulative)


def write_plot(path, configs, args):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    ran = [c for c in configs if c.runs]
    if not ran:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, c in enumerate(ran):
            data = os.path.join(tmp, "c%d.dat" % i)
            with open(data, "w") as out:
                for second, ratio, _, _ in median_series(c):
                    out.write("%d %.6f\n" % (second, ratio))
            if c.empty:
                style = "dt 2 lc rgb '#444444'"
            else:  # distinct colours; past the palette, dashes tell curves apart
                k = sum(1 for d in ran[:i] if not d.empty)
                style = "lc rgb '%s' dt %d" % (COLOURS[k % len(COLOURS)], 1 + k // len(COLOURS) * 2)
            plots.append("'%s' using 1:2 with lines lw 2 %s title '%s'" % (
                data, style, c.label.replace("'", "''")))
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        script = "\n".join([
            "set terminal %s size 1000,600 noenhanced %s" % (terminal, font),
            "set output '%s'" % path.replace("'", "''"),
            "set title \"Hit ratio after the size shift (-m %d): tiny items to the first eviction, "
            "then %dk keys x %d B, multi-gets of %d\"" % (
                args.limit_mb, args.keys // 1000, args.value_size, args.keys_per_get),
            "set xlabel 'seconds since the shift (each point: the second ending there)'",
            "set ylabel 'hit ratio in that second%s'" % (
                " (median of %d runs)" % args.repeat if args.repeat > 1 else ""),
            "set xrange [0:%g]" % args.seconds,
            "set yrange [0:1.05]",
            "set grid",
            "set key at graph 0.1, graph 0.9 left top Left reverse opaque box",
            "plot " + ", ".join(plots),
        ])
        return lab.run_gnuplot(script)


def write_markdown(path, configs, ideal, meta, args, notes, png_name):
    checkpoints = [t for t in CHECKPOINTS if t <= args.seconds]
    vs_at = [t for t in VS_EMPTY_AT if t <= args.seconds]
    ideal_med = median_series(ideal) if ideal is not None and ideal.runs else []
    rate = ("at most %g multi-gets/s in all (`--rate`)" % args.rate if args.rate > 0 else
            "as fast as the server answers")
    lines = [
        "# Size shift: hit ratio after the item sizes change (-m %d)" % args.limit_mb,
        "",
        *lab.stamp_lines(meta, "; load average %s before, %s after" % (
            meta["load_before"], meta["load_after"])),
        "- servers: %s" % "; ".join("`%s`: %s" % (b, v) for b, v in meta["versions"].items()),
        "- command: `%s`" % meta["command"],
        "- runs per configuration: %d%s" % (
            args.repeat, " (median per second; interleaved)" if args.repeat > 1 else ""),
        "",
        "Every server starts fresh with `-m %d -U 0 -l 127.0.0.1` plus the flags shown. "
        "Phase 1: keys `1`, `2`, `3`, ... with the value `x` until the first eviction "
        "(`build/experiments/fill`); the *empty server* skips it. Phase 2, the shift, right after: "
        "`build/experiments/shift.py` for %g s, %d connections, each with one multi-get of %d "
        "uniform random keys out of `k1`..`k%d` in flight, %s; every miss is then set "
        "(`noreply`, sent with the connection's next get) with a %d-byte value derived from "
        "the key, and every hit is checked against it. %d × %d B = %.0f MB fits in %d MB, so a "
        "cache that hands the tiny items' memory to the new items converges to a hit ratio "
        "near 1. *t s* is the hit ratio (hits / keys asked) of the gets answered in second t "
        "after the shift started; *whole run* is over all %g s; *vs empty* divides by the empty "
        "server's ratio in the same second." % (
            args.limit_mb, args.seconds, args.connections, args.keys_per_get, args.keys, rate,
            args.value_size, args.keys, args.value_size, args.keys * args.value_size / 1e6,
            args.limit_mb, args.seconds),
        "",
        "| " + " | ".join(["configuration"] + ["%d s" % t for t in checkpoints] + ["whole run"] +
                          ["vs empty at %d s" % t for t in vs_at]) + " |",
        "|---|" + "---:|" * (len(checkpoints) + 1 + len(vs_at)),
    ]
    for c in configs:
        if not c.runs:
            lines.append("| " + " | ".join([c.label, "not run" if c.skipped else "failed"] +
                                           [""] * (len(checkpoints) + len(vs_at))) + " |")
            continue
        med = median_series(c)
        whole = lab.median([series(r)[-1][2] for r in c.runs if series(r)])
        cells = [fmt(at_second(med, t), "%.3f") for t in checkpoints]
        vs = []
        for t in vs_at:
            mine, ref = at_second(med, t), at_second(ideal_med, t)
            vs.append("%.2f" % (mine / ref) if mine is not None and ref else "")
        lines.append("| " + " | ".join([c.label] + cells + [fmt(whole, "%.3f")] + vs) + " |")
    lines.append("")
    if png_name:
        lines += ["![hit ratio over time](%s)" % png_name, ""]
    lines += [
        "Per run (medians over the runs): *items after phase 1* is `curr_items` at the first "
        "eviction; *pages ≥ %d B* are the 1 MiB pages of the slab classes whose chunks can hold "
        "a phase-2 item (`stats slabs`), at the shift and at the end; *slabs moved* is "
        "`stats` `slabs_moved` at the end (pages moved between classes, if the server reports it); *keys/s* is the "
        "client's rate over the run; *set errors* are error replies to the `noreply` sets "
        "(e.g. `SERVER_ERROR out of memory`)." % args.value_size,
        "",
        "| configuration | items after phase 1 | phase 1 s | keys/s | pages ≥ %d B at shift → end "
        "| evictions in phase 2 | slabs moved | set errors | verify failures |" % args.value_size,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in configs:
        if not c.runs:
            continue
        runs = c.runs

        def med(get):
            return lab.median([get(r) for r in runs])
        items = med(lambda r: r["fill"]["items"] if r["fill"] else 0)
        fill_s = med(lambda r: r["fill"]["seconds"] if r["fill"] else None)
        keys_s = med(lambda r: r["shift"]["keys_asked"] / r["shift"]["seconds"])
        pages0, pages1 = med(lambda r: r["before"]["big_pages"]), med(lambda r: r["after"]["big_pages"])
        ev = med(lambda r: (r["after"]["evictions"] or 0) - (r["before"]["evictions"] or 0))
        moved = med(lambda r: r["after"]["slabs_moved"])
        set_err = med(lambda r: r["shift"]["set_errors"])
        bad = sum(r["shift"]["verify_failures"] for r in runs)
        lines.append("| %s | %s | %s | %s | %s → %s | %s | %s | %s | %d |" % (
            c.label, fmt(items, "%.0f"), fmt(fill_s, "%.1f") or "–", fmt(keys_s, "%.0f"),
            fmt(pages0, "%.0f"), fmt(pages1, "%.0f"), fmt(ev, "%.0f"),
            fmt(moved, "%.0f") or "n/a", fmt(set_err, "%.0f"), bad))
    lines.append("")
    if notes:
        lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    with open(path, "w") as out:
        out.write("\n".join(lines))


# ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(
        description="Hit ratio over time after a shift from tiny to 300-byte items.",
        epilog="Configurations: " + "; ".join(DEFAULT_CONFIGS) +
               ". SPEC is \"[empty] memcached|tinycached|PATH [FLAGS...]\"; [FLAGS] in brackets "
               "are passed only if the binary accepts them.")
    parser.add_argument("--build-dir", default=os.path.join(lab.REPO, "build"),
                        help="CMake build directory with experiments/{fill,shift} and "
                             "server/tinycached (default: <repo>/build)")
    parser.add_argument("--memcached", default="/usr/bin/memcached",
                        help="memcached binary (default /usr/bin/memcached)")
    parser.add_argument("--out-dir", default=os.path.join(lab.REPO, "results"))
    parser.add_argument("--name", default="shift",
                        help="base name of the files written in --out-dir (default: shift)")
    parser.add_argument("--config", action="append", metavar="SPEC",
                        help="run this configuration (repeatable; replaces the default list)")
    parser.add_argument("--add", action="append", metavar="SPEC",
                        help="run this configuration too (repeatable; after the others)")
    parser.add_argument("--only", metavar="REGEX",
                        help="run only configurations whose label matches REGEX")
    parser.add_argument("--list", action="store_true",
                        help="print the configurations and the flags they would pass, and exit")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per configuration; medians per second (default 1)")
    parser.add_argument("--seconds", type=int, default=60, help="phase 2 length (default 60)")
    parser.add_argument("--limit-mb", type=int, default=64, help="server -m (default 64)")
    parser.add_argument("--keys", type=int, default=150000, help="phase 2 key space (150000)")
    parser.add_argument("--value-size", type=int, default=300, help="phase 2 value bytes (300)")
    parser.add_argument("--keys-per-get", type=int, default=100, help="keys per multi-get (100)")
    parser.add_argument("--connections", type=int, default=4, help="client connections (4)")
    parser.add_argument("--rate", type=float, default=0,
                        help="cap on multi-gets per second, all connections together "
                             "(default 0: no cap)")
    parser.add_argument("--seed", type=int, default=1, help="client seed of the first run")
    parser.add_argument("--no-build", action="store_true",
                        help="never run cmake, even if a binary is missing")
    args = parser.parse_args()
    if args.repeat < 1 or args.seconds < 1:
        parser.error("--repeat and --seconds must be at least 1")

    build_dir = os.path.abspath(args.build_dir)
    specs = (args.config or DEFAULT_CONFIGS) + (args.add or [])
    try:
        configs = [Config(s, build_dir, args.memcached) for s in specs]
    except ValueError as e:
        parser.error(str(e))
    if args.only:
        pattern = re.compile(args.only)
        configs = [c for c in configs if pattern.search(c.label) or pattern.search(c.spec)]
    if not configs:
        lab.log("nothing to run")
        return 1
    targets = ["shift"] + (["fill"] if any(not c.empty for c in configs) else []) + (
        ["tinycached"] if any(c.kind == "tinycached" for c in configs) else [])
    paths = lab.ensure_built(build_dir, targets, not args.no_build)
    for t in ("fill", "shift"):
        if t in targets and not os.access(paths[t], os.X_OK):
            lab.log("no %s client at %s; build it (cmake --build %s --target %s)" %
                (t, paths[t], build_dir, t))
            return 1

    notes, versions = [], {}
    for c in configs:
        c.resolve(args.limit_mb)
        if c.skipped:
            lab.log("%s: not run: %s" % (c.label, c.skipped))
            notes.append("%s: not run: %s" % (c.label, c.skipped))
        else:
            versions.setdefault(c.binary, lab.version_of(c.binary))
        for n in c.notes:
            lab.log("%s: %s" % (c.label, n))
            notes.append("%s: %s" % (c.label, n))
    if args.list:
        for c in configs:
            print("%-45s %s" % (c.label, "NOT RUN: " + c.skipped if c.skipped else
                                " ".join(["-m", str(args.limit_mb)] + c.flags)))
        return 0
    runnable = [c for c in configs if not c.skipped]
    ideal = next((c for c in runnable if c.empty), None)
    if ideal is None:
        notes.append("no empty-server configuration ran: no *vs empty* figures.")

    load_before = lab.load_average()
    started = time.time()
    for rep in range(args.repeat):
        order = runnable if rep % 2 == 0 else list(reversed(runnable))
        for c in order:
            try:
                run = run_once(c, args, paths["fill"], paths["shift"])
                c.runs.append(run)
                s = run["shift"]
                bad = s["verify_failures"] + s["protocol_errors"]
                if bad:
                    c.errors.append("%d verify failures (first: %s), %d protocol errors (first: %s)"
                                    % (s["verify_failures"], s["first_verify_failure"],
                                       s["protocol_errors"], s["first_protocol_error"]))
                med = {t: r for t, r, _, _ in series(run)}
                lab.log("run %d/%d  %-42s %s  whole %.3f  %.0f keys/s%s" % (
                    rep + 1, args.repeat, c.label,
                    " ".join("%ds %.3f" % (t, med[t]) for t in (5, 15, 30, 60) if t in med),
                    series(run)[-1][2] if series(run) else 0,
                    s["keys_asked"] / s["seconds"],
                    "  PROBLEMS: " + c.errors[-1] if bad else ""))
            except (RuntimeError, OSError, ValueError, KeyError,
                    subprocess.TimeoutExpired) as e:
                c.errors.append(str(e).replace("\n", " "))
                lab.log("run %d/%d  %s FAILED: %s" % (rep + 1, args.repeat, c.label, e))
    elapsed = time.time() - started

    for c in runnable:
        set_errors = [r["shift"] for r in c.runs if r["shift"]["set_errors"]]
        if set_errors:
            notes.append("%s: %d error replies to `noreply` sets in %d of %d runs (first: `%s`)" % (
                c.label, sum(s["set_errors"] for s in set_errors), len(set_errors), len(c.runs),
                set_errors[0]["first_set_error"]))
        for e in sorted(set(c.errors)):
            notes.append("%s: %s" % (c.label, e))
    notes.append("wall time %.0f s." % elapsed)

    meta = {
        "limit_mb": args.limit_mb,
        **lab.run_stamp(),
        "versions": versions,
        "load_before": load_before, "load_after": lab.load_average(),
        "command": " ".join(["experiments/shift.py"] + [shlex.quote(a) for a in sys.argv[1:]]),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, args.name)
    write_csv(stem + ".csv", configs, meta)
    png = write_plot(stem + ".png", configs, args)
    write_markdown(stem + ".md", configs, ideal, meta, args, notes,
                   os.path.basename(stem + ".png") if png else None)
    lab.log("wrote %s.{csv,md%s} in %.0f s" % (stem, ",png" if png else "", elapsed))
    return 1 if any(c.errors for c in runnable) or not any(c.runs for c in runnable) else 0


if __name__ == "__main__":
    sys.exit(main())
