#!/usr/bin/env python3
"""The miss-ratio experiment: how often a read-through client misses when a
server with a fixed memory limit caches a key space several times larger than
it holds, with Zipf-distributed popularity.

For every memory limit (--limits, MiB), every Zipf exponent (--alphas) and
every configuration, starts the server fresh on a free 127.0.0.1 port with
-m <limit> -U 0 -l 127.0.0.1 and its flags, and runs build/experiments/missratio
against it: keys are the decimal integers 1..N, N = --keys-factor x limit
bytes / 8 (default 4: four times what tinycached's tiny preset holds, about
one item per 8.4 bytes), requested with Zipf(alpha) popularity (ranks spread
over the keys by a fixed bijection); every request is `get <key>`, every miss
is followed by `set <key> 0 0 <len> noreply` with a 1-8 digit value. The first
--warmup-factor x N requests fill the cache and are not counted; the miss
ratio is measured over the next --requests-factor x N (both capped by
--max-warmup / --max-requests for shorter runs). It writes
    results/miss-ratio.csv   one row per run
    results/miss-ratio.md    miss ratio per server, limit and alpha; per-run
                             details; commit, date, machine, how it was run
    results/miss-ratio.png   miss ratio against the limit, one panel per alpha

Configurations (--configs, comma-separated, in this order by default):
    memcached     Debian's memcached 1.6.18, defaults
    memcached-C   memcached -C -n 5 -f 1.05
    stock         tinycached, no flags (memcached 1.6's item layout)
    compact       tinycached -o preset=compact
    tiny          tinycached -o preset=tiny
A configuration whose flags the binary rejects (e.g. a build without the tiny
preset) is reported and skipped; the others still run.

Every server of one (limit, alpha, repetition) gets the same request stream
(same seed); with --repeat N the configurations are interleaved (every other
round in reverse order) and the seed of repetition i is --seed + i - 1.

Usage: experiments/miss_ratio.py [--limits 16,64,256] [--alphas 0.9,1.1]
                              [--max-warmup 30000000] [--max-requests 5000000]
                              [--repeat N] [--configs memcached,tiny] [--list]
Exit status: 0 if every run completed with every reply as expected, 1
otherwise (the results are written either way).
"""
import argparse
import csv
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: servers and provenance)

REPO = lab.REPO
MIB = 1 << 20

# name -> (label, server kind, flags)
CONFIGS = {
    "memcached": ("memcached defaults", "memcached", []),
    "memcached-C": ("memcached -C -n 5 -f 1.05", "memcached", ["-C", "-n", "5", "-f", "1.05"]),
    "stock": ("tinycached stock", "tinycached", []),
    "compact": ("tinycached -o preset=compact", "tinycached", ["-o", "preset=compact"]),
    "tiny": ("tinycached -o preset=tiny", "tinycached", ["-o", "preset=tiny"]),
}
COLOURS = {"memcached": "#888888", "memcached-C": "#222222", "stock": "#56b4e9",
           "compact": "#0072b2", "tiny": "#d55e00"}
DEFAULT_LIMITS = [16, 64, 256]
DEFAULT_ALPHAS = [0.9, 1.1]

COLUMNS = [
    "config", "configuration", "server_flags", "limit_mb", "alpha", "keys", "run", "seed",
    "batch", "warmup", "requests", "hits", "misses", "miss_ratio", "miss_ratio_first_half",
    "miss_ratio_second_half", "repeat_misses", "infinite_cache_miss_ratio", "top_c_miss_ratio",
    "warmup_curr_items", "warmup_evictions", "curr_items", "evictions", "sets",
    "server_get_misses", "rss_kb", "warmup_seconds", "seconds", "requests_per_second",
    "run_seconds", "set_errors", "verify_failures", "protocol_errors", "error",
    "commit", "date", "machine", "cpu", "nproc", "load_before", "server_version", "command",
]


def keys_for(limit_mb, factor):
    return int(factor * limit_mb * MIB / 8)


def request_counts(keys, args):
    """(warmup, counted requests) of a run over `keys` keys."""
    warmup = int(args.warmup_factor * keys)
    requests = int(args.requests_factor * keys)
    if args.max_warmup:
        warmup = min(warmup, args.max_warmup)
    if args.max_requests:
        requests = min(requests, args.max_requests)
    return warmup, max(requests, 1)


def vm_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---------------------------------------------------------------------------
# One run.

def run_one(name, limit_mb, alpha, rep, binary, client, args):
    label, _, flags = CONFIGS[name]
    keys = keys_for(limit_mb, args.keys_factor)
    warmup, requests = request_counts(keys, args)
    seed = args.seed + rep
    row = {"config": name, "configuration": label, "server_flags": " ".join(["-m", str(limit_mb)] + flags),
           "limit_mb": limit_mb, "alpha": alpha, "keys": keys, "run": rep + 1, "seed": seed,
           "batch": args.batch, "warmup": warmup, "load_before": lab.load_average()}
    started = time.time()
    server = lab.Server(binary, ["-m", str(limit_mb)] + flags)
    try:
        server.start()
        argv = [client, "--port", str(server.port), "--keys", str(keys), "--alpha", "%g" % alpha,
                "--warmup", str(warmup), "--requests", str(requests), "--seed", str(seed),
                "--batch", str(args.batch), "--json"]
        result, done = lab.run_client(argv, server, args.run_timeout, "the run", "missratio")
        row["rss_kb"] = vm_rss_kb(server.proc.pid)
        for k in COLUMNS:
            if k in result and k not in ("warmup",):
                row[k] = result[k]
        problems = []
        if done.returncode != 0:
            problems.append("missratio exited %d" % done.returncode)
        if result["verify_failures"]:
            problems.append("%d wrong values (first: %s)" % (result["verify_failures"],
                                                             result["first_verify_failure"]))
        if result["protocol_errors"]:
            problems.append("%d protocol errors (first: %s)" % (result["protocol_errors"],
                                                                result["first_protocol_error"]))
        row["error"] = "; ".join(problems)
    finally:
        server.stop()
    row["run_seconds"] = time.time() - started
    return row


# ---------------------------------------------------------------------------
# Summaries, CSV, Markdown, plot.

def fmt(value, spec="%.4f"):
    return "" if value is None else spec % value


def cell_runs(rows, name, limit, alpha):
    return [r for r in rows if r["config"] == name and r["limit_mb"] == limit and r["alpha"] == alpha
            and r.get("miss_ratio") is not None]


def not_full(runs):
    """True if a run of these had not evicted by the end of its warmup."""
    return any((r.get("warmup_evictions") or 0) == 0 for r in runs)


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(["" if r.get(c) is None else ("%.6f" % r[c] if isinstance(r[c], float) else r[c])
                        for c in COLUMNS])


def write_markdown(path, rows, names, skipped, meta, args, notes, png_name):
    limits = sorted({r["limit_mb"] for r in rows})
    alphas = sorted({r["alpha"] for r in rows})
    ran = [n for n in names if n not in skipped]
    lines = [
        "# Miss ratio with Zipf popularity, -m %s MiB" % ", ".join(str(l) for l in limits),
        "",
        *lab.stamp_lines(meta, "; load average %s before, %s after" % (
            meta["load_before"], meta["load_after"])),
        "- servers: %s" % "; ".join("`%s`: %s" % (b, v) for b, v in meta["versions"].items()),
        "- command: `%s`" % meta["command"],
        "- runs per cell: %d%s" % (args.repeat, " (median; interleaved)" if args.repeat > 1 else ""),
        "- wall time: %.0f s (%.1f min)" % (meta["elapsed"], meta["elapsed"] / 60),
        "",
        "Every server starts fresh with `-m <limit> -U 0 -l 127.0.0.1` plus its flags. "
        "`build/experiments/missratio` then asks, over one connection, "
        "for the decimal keys 1..N, N = %g × limit bytes / 8 (about %g times what "
        "`-o preset=tiny` holds), with Zipf(α) popularity (rank r asked with probability "
        "∝ r^−α; ranks spread over the keys by a fixed bijection), in pipelined batches of %d "
        "keys sent as multi-key gets of 100 keys each; after each batch it sets every key that missed (`set <key> 0 0 <len> noreply`, a 1–8 "
        "digit value derived from the key, checked on every hit). The first requests (warmup) "
        "fill the cache and are not counted; the miss ratio is misses / requests over the "
        "counted ones. Every server of one limit and α sees the same request stream." % (
            args.keys_factor, args.keys_factor * 8.4 / 8, args.batch),
        "",
    ]
    capped = [(l, request_counts(keys_for(l, args.keys_factor), args)) for l in limits]
    lines.append("Requests per run: " + "; ".join(
        "-m %d: N = %s keys, warmup %s, counted %s" % (
            l, "{:,}".format(keys_for(l, args.keys_factor)), "{:,}".format(w), "{:,}".format(q))
        for l, (w, q) in capped) + ".")
    reduced = [l for l, (w, q) in capped
               if w < int(args.warmup_factor * keys_for(l, args.keys_factor)) or
               q < int(args.requests_factor * keys_for(l, args.keys_factor))]
    if reduced:
        lines += ["", "**Reduced runs**: the design is a warmup of %g × N and %g × N counted "
                  "requests; to keep the whole grid within the time available, -m %s were run with "
                  "fewer (`--max-warmup %s --max-requests %s`, the counts above). A cache that "
                  "had not evicted by the end of its warmup is marked ° : it was still filling "
                  "when counting began, so its misses are mostly first requests (the *infinite "
                  "cache* column) and its figure says more about the warmup than about its "
                  "capacity; it is roughly an upper bound on its steady-state miss ratio. With the "
                  "warmup capped, first requests are a larger share as N grows, which is why the "
                  "infinite-cache floor rises with the limit." % (args.warmup_factor, args.requests_factor,
                              ", ".join(str(l) for l in reduced), args.max_warmup or "none",
                              args.max_requests or "none")]
    lines += [
        "",
        "## Miss ratio (lower is better)",
        "",
        "| -m MiB | α | keys N | " + " | ".join(CONFIGS[n][0] for n in ran) +
        " | infinite cache |",
        "|---:|---:|---:|" + "---:|" * (len(ran) + 1),
    ]
    marked = False
    for l in limits:
        for a in alphas:
            cells = []
            inf = []
            for n in ran:
                runs = cell_runs(rows, n, l, a)
                value = lab.median([r["miss_ratio"] for r in runs])
                mark = ""
                if runs and not_full(runs):
                    mark, marked = " °", True
                cells.append(fmt(value) + mark if runs else "failed")
                inf += [r.get("infinite_cache_miss_ratio") for r in runs]
            lines.append("| %d | %g | %s | %s | %s |" % (
                l, a, "{:,}".format(keys_for(l, args.keys_factor)), " | ".join(cells),
                fmt(lab.median(inf))))
    lines.append("")
    if marked:
        lines += ["° no eviction by the end of the warmup: the cache was still filling when "
                  "counting began.", ""]
    lines += [
        "*infinite cache*: the share of counted requests that ask for a key for the first time "
        "in the run — what a cache that never evicts would miss; no server can do better on "
        "this request stream.",
        "",
    ]
    if png_name:
        lines += ["![miss ratio against the memory limit](%s)" % png_name, ""]
    lines += [
        "## Per run",
        "",
        "*items* is `curr_items` at the end; *at warmup end* `curr_items` / `evictions` when "
        "counting began; *halves*: the miss ratio of the first and second half of the counted "
        "requests (equal: a steady state); *top-C ideal*: the expected miss ratio of a cache "
        "that always holds the *items* most popular keys, 1 − H(C, α) / H(N, α); *req/s*: "
        "counted requests per second; *repeat misses*: misses of a key already missed earlier "
        "in the same batch (a strictly sequential client would have set it in between).",
        "",
        "| configuration | -m | α | run | miss ratio | halves | items | at warmup end | "
        "top-C ideal | RSS MiB | req/s | repeat misses | run s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for l in limits:
        for a in alphas:
            for n in ran:
                for r in sorted((r for r in rows if r["config"] == n and r["limit_mb"] == l
                                 and r["alpha"] == a), key=lambda r: r["run"]):
                    if r.get("miss_ratio") is None:
                        lines.append("| %s | %d | %g | %d | failed: %s | | | | | | | | |" % (
                            CONFIGS[n][0], l, a, r["run"], r.get("error", "")))
                        continue
                    lines.append("| %s | %d | %g | %d | %.4f | %.4f / %.4f | %s | %s / %s | "
                                 "%.4f | %s | %s | %s | %.0f |" % (
                                     CONFIGS[n][0], l, a, r["run"], r["miss_ratio"],
                                     r["miss_ratio_first_half"], r["miss_ratio_second_half"],
                                     r.get("curr_items"), r.get("warmup_curr_items"),
                                     r.get("warmup_evictions"), r["top_c_miss_ratio"],
                                     fmt(r["rss_kb"] / 1024.0 if r.get("rss_kb") else None, "%.0f"),
                                     fmt(r.get("requests_per_second"), "%.0f"),
                                     r.get("repeat_misses"), r["run_seconds"]))
    lines += [
        "",
        "## How it was run",
        "",
        "```",
        "cmake --build build --target tinycached missratio",
        meta["command"],
        "```",
        "",
    ]
    if notes:
        lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def write_plot(path, rows, names):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    rows = [r for r in rows if r.get("miss_ratio") is not None]
    if not rows:
        return False
    limits = sorted({r["limit_mb"] for r in rows})
    alphas = sorted({r["alpha"] for r in rows})
    top = max(max(r["miss_ratio"] for r in rows), 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        panels = []
        for a in alphas:
            plots = []
            for n in names:
                data = os.path.join(tmp, "%s-%g.dat" % (n, a))
                points = []
                for l in limits:
                    v = lab.median([r["miss_ratio"] for r in cell_runs(rows, n, l, a)])
                    if v is not None:
                        points.append("%d %.6f" % (l, v))
                if not points:
                    continue
                with open(data, "w") as out:
                    out.write("\n".join(points) + "\n")
                plots.append("'%s' using 1:2 with linespoints lw 2 pt 7 lc rgb '%s' title '%s'" % (
                    data, COLOURS.get(n, "#000000"), CONFIGS[n][0].replace("'", "")))
            data = os.path.join(tmp, "inf-%g.dat" % a)
            points = []
            for l in limits:
                v = lab.median([r.get("infinite_cache_miss_ratio") for r in rows
                                    if r["limit_mb"] == l and r["alpha"] == a])
                if v is not None:
                    points.append("%d %.6f" % (l, v))
            if points:
                with open(data, "w") as out:
                    out.write("\n".join(points) + "\n")
                plots.append("'%s' using 1:2 with linespoints lw 1 dt 2 pt 6 lc rgb '#000000' "
                             "title 'infinite cache (first requests)'" % data)
            # One legend, in the panel of the largest alpha (its curves are the lowest).
            key = "set key top right" if a == alphas[-1] else "unset key"
            panels.append("%s\nset title 'Zipf alpha = %g, keys = %g x limit / 8 B'\nplot %s" % (
                key, a, args_keys_factor(rows), ", ".join(plots)))
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        script = "\n".join([
            "set terminal %s size %d,600 noenhanced %s" % (terminal, 600 * len(alphas), font),
            "set output '%s'" % path.replace("'", "''"),
            "set multiplot layout 1,%d" % len(alphas),
            "set xlabel '-m limit (MiB)'",
            "set ylabel 'miss ratio (misses / requests after the warmup)'",
            "set logscale x 2",
            "set xtics (%s)" % ", ".join("'%d' %d" % (l, l) for l in limits),
            "set xrange [%f:%f]" % (limits[0] / 1.4, limits[-1] * 1.4),
            "set yrange [0:%f]" % min(1.0, top * 1.1),
            "set grid",
        ] + panels + ["unset multiplot"])
        return lab.run_gnuplot(script)


def args_keys_factor(rows):
    r = rows[0]
    return r["keys"] * 8.0 / (r["limit_mb"] * MIB)


# ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(
        description="Miss ratio of a read-through client with Zipf keys, per server, limit and alpha.")
    parser.add_argument("--limits", default=",".join(map(str, DEFAULT_LIMITS)),
                        type=lambda t: lab.parse_list(t, int, what="limit"),
                        help="comma-separated -m values in MiB (default 16,64,256)")
    parser.add_argument("--alphas", default=",".join(map(str, DEFAULT_ALPHAS)),
                        type=lambda t: lab.parse_list(t, float, what="alpha"),
                        help="comma-separated Zipf exponents (default 0.9,1.1)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        type=lambda t: lab.parse_list(t, str, CONFIGS, "configuration"),
                        help="comma-separated configurations (default %s)" % ",".join(CONFIGS))
    parser.add_argument("--keys-factor", type=float, default=4.0,
                        help="key space N = this x limit bytes / 8 (default 4)")
    parser.add_argument("--warmup-factor", type=float, default=2.0,
                        help="uncounted requests = this x N (default 2)")
    parser.add_argument("--requests-factor", type=float, default=2.0,
                        help="counted requests = this x N (default 2)")
    parser.add_argument("--max-warmup", type=int, default=0, metavar="R",
                        help="at most R warmup requests per run (default 0: no cap)")
    parser.add_argument("--max-requests", type=int, default=0, metavar="R",
                        help="at most R counted requests per run (default 0: no cap)")
    parser.add_argument("--batch", type=int, default=100, help="gets per pipelined batch (default 100)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per cell, interleaved; the table shows medians (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="request-stream seed of the first run")
    parser.add_argument("--run-timeout", type=float, default=4 * 3600, metavar="SECONDS",
                        help="longest a run may take (default 4 h)")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                        help="CMake build directory with experiments/missratio and "
                             "server/tinycached (default <repo>/build)")
    parser.add_argument("--tinycached", metavar="PATH",
                        help="tinycached binary (default <build-dir>/server/tinycached)")
    parser.add_argument("--commit", metavar="TEXT",
                        help="commit to record for the binaries (default: the working tree's, "
                             "-dirty if tracked files changed); for a tinycached built from "
                             "another tree, e.g. an export of one commit")
    parser.add_argument("--memcached", default="/usr/bin/memcached",
                        help="memcached binary (default /usr/bin/memcached)")
    parser.add_argument("--out-dir", default=os.path.join(REPO, "results"),
                        help="where miss-ratio.{csv,md,png} go (default <repo>/results)")
    parser.add_argument("--name", default="miss-ratio", help="output file stem (default miss-ratio)")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the notes of the .md (repeatable)")
    parser.add_argument("--no-build", action="store_true", help="never run cmake")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args()
    if args.repeat < 1 or not 1 <= args.batch <= 1000 or args.keys_factor <= 0:
        parser.error("--repeat must be >= 1, --batch 1..1000, --keys-factor > 0")

    build_dir = os.path.abspath(args.build_dir)
    need_tc = not args.tinycached and any(CONFIGS[n][1] == "tinycached" for n in args.configs)
    paths = lab.ensure_built(build_dir, ["missratio"] + (["tinycached"] if need_tc else []),
                             not args.no_build and not args.list)
    binaries = {"memcached": args.memcached,
                "tinycached": os.path.abspath(args.tinycached) if args.tinycached else paths["tinycached"]}
    names = list(args.configs)
    runs = [(rep, limit, alpha) for rep in range(args.repeat) for limit in args.limits
            for alpha in args.alphas]
    if args.list:
        for rep, limit, alpha in runs:
            keys = keys_for(limit, args.keys_factor)
            warmup, requests = request_counts(keys, args)
            for n in (names if rep % 2 == 0 else list(reversed(names))):
                print("run %d -m %-4d alpha %-4g keys %-10d warmup %-10d counted %-10d %s %s" % (
                    rep + 1, limit, alpha, keys, warmup, requests, binaries[CONFIGS[n][1]],
                    " ".join(CONFIGS[n][2])))
        total = sum(sum(request_counts(keys_for(l, args.keys_factor), args)) * len(names)
                    for _, l, _ in runs)
        print("%d runs, %d requests in all" % (len(runs) * len(names), total))
        return 0
    if not os.access(paths["missratio"], os.X_OK):
        lab.log("no missratio client at %s (cmake --build %s --target missratio)" %
            (paths["missratio"], build_dir))
        return 1

    # Which configurations start at all (e.g. a build without the tiny preset).
    skipped, notes, versions = {}, list(args.note), {}
    for n in names:
        binary = binaries[CONFIGS[n][1]]
        if not os.access(binary, os.X_OK):
            skipped[n] = "no binary at `%s`" % binary
        else:
            ok, error = lab.accepts_flags(binary, CONFIGS[n][2], ("-m", str(min(args.limits))))
            if not ok:
                skipped[n] = "`%s %s` does not start: %s" % (binary, " ".join(CONFIGS[n][2]), error)
            else:
                versions.setdefault(binary, lab.version_of(binary))
        if n in skipped:
            lab.log("%s: not run: %s" % (CONFIGS[n][0], skipped[n]))
            notes.append("%s: not run: %s" % (CONFIGS[n][0], skipped[n]))

    run_stamp = lab.run_stamp(args.commit)
    command = " ".join(["experiments/miss_ratio.py"] + [shlex.quote(a) for a in sys.argv[1:]])
    load_before = lab.load_average()
    rows, failed = [], bool(skipped)
    started = time.time()
    for rep, limit, alpha in runs:
        order = names if rep % 2 == 0 else list(reversed(names))
        for n in order:
            if n in skipped:
                continue
            binary = binaries[CONFIGS[n][1]]
            stamp = dict(lab.stamp_columns(run_stamp),
                         server_version="%s: %s" % (binary, versions[binary]), command=command)
            try:
                row = run_one(n, limit, alpha, rep, binary, paths["missratio"], args)
            except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
                row = {"config": n, "configuration": CONFIGS[n][0], "limit_mb": limit, "alpha": alpha,
                       "keys": keys_for(limit, args.keys_factor), "run": rep + 1,
                       "server_flags": " ".join(["-m", str(limit)] + CONFIGS[n][2]),
                       "error": str(e).replace("\n", " ")}
            row.update(stamp)
            rows.append(row)
            if row.get("error"):
                failed = True
                lab.log("run %d -m %d alpha %g %s: PROBLEM: %s" % (rep + 1, limit, alpha, CONFIGS[n][0],
                                                               row["error"]))
            if row.get("miss_ratio") is not None:
                lab.log("run %d -m %d alpha %g %-30s miss ratio %.4f (halves %.4f %.4f; infinite "
                    "cache %.4f), items %s, warmup-end evictions %s, %.0f req/s, %.0f s" % (
                        rep + 1, limit, alpha, CONFIGS[n][0], row["miss_ratio"],
                        row["miss_ratio_first_half"], row["miss_ratio_second_half"],
                        row["infinite_cache_miss_ratio"] or 0, row["curr_items"],
                        row["warmup_evictions"], row["requests_per_second"], row["run_seconds"]))
    elapsed = time.time() - started

    for n in names:
        errors = sorted({r["error"] for r in rows if r["config"] == n and r.get("error")})
        for e in errors:
            notes.append("%s: %s" % (CONFIGS[n][0], e))
        set_errors = [r for r in rows if r["config"] == n and r.get("set_errors")]
        if set_errors:
            notes.append("%s: %d error replies to `noreply` sets in %d runs" % (
                CONFIGS[n][0], sum(r["set_errors"] for r in set_errors), len(set_errors)))
    meta = {**run_stamp, "versions": versions, "load_before": load_before,
            "load_after": lab.load_average(), "command": command, "elapsed": elapsed}
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, args.name)
    write_csv(stem + ".csv", rows)
    png = write_plot(stem + ".png", rows, [n for n in names if n not in skipped])
    write_markdown(stem + ".md", rows, names, skipped, meta, args, notes,
                   os.path.basename(stem + ".png") if png else None)
    lab.log("wrote %s.{csv,md%s}; %d runs in %.0f s" % (stem, ",png" if png else "", len(rows), elapsed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
