#!/usr/bin/env python3
"""The 64 MB fill ladder (README.md, "The 64 MB fill experiment"): every configuration, one run.

Starts each server configuration fresh on a free 127.0.0.1 port, fills it with
experiments/fill (keys 1, 2, 3, ..., value "x", until the first eviction),
stops it, and writes
    results/fill-64mb.csv   one row per configuration (medians over --repeat)
    results/fill-64mb.md    the table, with commit, date and machine
    results/fill-64mb.png   bar chart of items held (gnuplot)

Configurations, in this order:
  memcached (Debian, /usr/bin/memcached): defaults, -n 5 -f 1.05, -C -n 5 -f 1.05
  tinycached -o layout=stock: the same three
  tinycached -o preset=<name>: every name `tinycached --list-presets` prints
  --as-built DIR (repeatable): DIR/server/tinycached with no layout flag, i.e. in the
    layout that build starts with (CMakePresets.json's layout presets set it)
all with -m 64 -U 0 -l 127.0.0.1. Runs are interleaved (every configuration
once, then again in reverse order, ...), so a noisy machine hits all alike.

Usage: experiments/fill_ladder.py [--build-dir build] [--repeat N] [--only-reference]
See --help for the rest. Exit status: 0 if every configuration run filled and
verified, 1 otherwise (the results are written either way).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: servers and provenance)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_FLAGS = [
    ("defaults", []),
    ("-n 5 -f 1.05", ["-n", "5", "-f", "1.05"]),
    ("-C -n 5 -f 1.05", ["-C", "-n", "5", "-f", "1.05"]),
]
BASELINE_KIND = "memcached"  # the ratio column divides by memcached defaults
BASELINE_NAME = "defaults"


# ---------------------------------------------------------------------------
# Configurations and servers.

class Config:
    def __init__(self, kind, name, binary, flags):
        self.kind = kind  # "memcached" | "tinycached stock" | "tinycached preset" | "as built"
        self.name = name  # "defaults", "-n 5 -f 1.05", or the preset name
        self.binary = binary
        self.flags = flags
        self.runs = []  # fill JSON objects
        self.errors = []

    @property
    def label(self):
        if self.kind == "tinycached preset":
            return "tinycached preset=" + self.name
        if self.kind == "as built":
            return "tinycached as built in " + self.name
        return "%s %s" % (self.kind, self.name)


def start_server(config, limit_mb):
    return lab.Server(config.binary, ["-m", str(limit_mb)] + config.flags)


def list_presets(tinycached):
    """Preset names from `tinycached --list-presets`; [] if it has none yet."""
    try:
        done = subprocess.run([tinycached, "--list-presets"], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        lab.log("`%s --list-presets` failed (%s): no presets" % (tinycached, e))
        return []
    if done.returncode != 0:
        lab.log("`tinycached --list-presets` exited %d: no presets" % done.returncode)
        return []
    names = []
    for line in done.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.split()[0]  # "name  knobs  # what the step changes"
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", line):
            lab.log("ignoring odd preset name %r" % line)
            continue
        names.append(line)
    if not names:
        lab.log("`tinycached --list-presets` printed nothing: no presets yet")
    return names


def run_once(config, fill, limit_mb, verify):
    """Starts a fresh server, fills it, stops it. Returns the fill JSON or raises."""
    server = start_server(config, limit_mb)
    try:
        server.start()
        argv = [fill, "--port", str(server.port), "--pid", str(server.proc.pid),
                "--label", config.label, "--json"]
        if verify:
            argv.append("--verify")
        result, _ = lab.run_client(argv, server, 600, "the fill", "fill", check_exit=True)
        result["chunk_bytes"] = main_chunk_size(server.port)
        return result
    finally:
        server.stop()


def main_chunk_size(port):
    """chunk_size of the slab class holding the most items (`stats slabs`), or None."""
    try:
        text = lab.stats_text(port, b"stats slabs")
    except OSError as e:
        lab.log("stats slabs failed: %s" % e)
        return None
    stats = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and ":" in parts[1]:
            cls, name = parts[1].split(":", 1)
            stats.setdefault(cls, {})[name] = int(parts[2])
    classes = [c for c in stats.values() if "used_chunks" in c and "chunk_size" in c]
    if not classes:
        return None
    return max(classes, key=lambda c: c["used_chunks"])["chunk_size"]


# ---------------------------------------------------------------------------
# Build.

# ---------------------------------------------------------------------------
# Reports.

def summarise(config):
    runs = config.runs
    items = [r["items"] for r in runs]
    allin = [r["allin_bytes_per_item"] for r in runs]
    return {
        "items": lab.median_low(items),
        "items_min": min(items) if items else None,
        "items_max": max(items) if items else None,
        "bytes_per_item": lab.median_low([r["bytes_per_item"] for r in runs]),
        "allin_bytes_per_item": lab.median_low(allin),
        "allin_min": min([a for a in allin if a is not None], default=None),
        "allin_max": max([a for a in allin if a is not None], default=None),
        "rss_before_kb": lab.median_low([r["rss_before_kb"] for r in runs]),
        "rss_after_kb": lab.median_low([r["rss_after_kb"] for r in runs]),
        "seconds": lab.median_low([r["seconds"] for r in runs]),
        "chunk_bytes": lab.median_low([r.get("chunk_bytes") for r in runs]),
        "evictions": lab.median_low([r["evictions"] for r in runs]),
        "verify_corrupt": max([r["verify_corrupt"] or 0 for r in runs], default=None),
        "runs": len(runs),
    }


def fmt(value, decimals=None):
    if value is None:
        return ""
    if decimals is None:
        return str(value)
    return "%.*f" % (decimals, value)


def csv_field(text):
    text = str(text)
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(path, configs, baseline, meta):
    columns = ["configuration", "kind", "server_flags", "items", "items_min", "items_max",
               "bytes_per_item", "allin_bytes_per_item", "allin_min", "allin_max",
               "vs_memcached_defaults", "chunk_bytes", "rss_before_kb", "rss_after_kb", "seconds", "evictions",
               "verify_corrupt", "runs", "error", "limit_mb", "commit", "date", "machine",
               "cpu", "nproc", "server_version"]
    with open(path, "w") as out:
        out.write(",".join(columns) + "\n")
        for c in configs:
            s = summarise(c)
            ratio = (s["items"] / baseline) if (baseline and s["items"]) else None
            row = {
                "configuration": c.label, "kind": c.kind, "server_flags": " ".join(c.flags),
                "items": fmt(s["items"]), "items_min": fmt(s["items_min"]),
                "items_max": fmt(s["items_max"]), "bytes_per_item": fmt(s["bytes_per_item"], 2),
                "allin_bytes_per_item": fmt(s["allin_bytes_per_item"], 2),
                "allin_min": fmt(s["allin_min"], 2), "allin_max": fmt(s["allin_max"], 2),
                "vs_memcached_defaults": fmt(ratio, 3), "chunk_bytes": fmt(s["chunk_bytes"]),
                "rss_before_kb": fmt(s["rss_before_kb"]),
                "rss_after_kb": fmt(s["rss_after_kb"]), "seconds": fmt(s["seconds"], 3),
                "evictions": fmt(s["evictions"]), "verify_corrupt": fmt(s["verify_corrupt"]),
                "runs": s["runs"], "error": "; ".join(c.errors), "limit_mb": meta["limit_mb"],
                **lab.stamp_columns(meta),
                "server_version": meta["versions"].get(c.binary, ""),
            }
            out.write(",".join(csv_field(row[k]) for k in columns) + "\n")


def write_markdown(path, configs, baseline, meta, notes, png_name):
    limit = meta["limit_mb"]
    lines = [
        "# Fill experiment: items in %d MB" % limit,
        "",
        *lab.stamp_lines(meta),
        "- servers: %s" % "; ".join("`%s`: %s" % (b, v) for b, v in meta["versions"].items()),
        "- command: `%s`" % meta["command"],
        "- runs per configuration: %d (median shown; interleaved)" % meta["repeat"],
        "",
        "Keys `1`, `2`, `3`, ... in order, value `x`, flags 0, no expiry, pipelined "
        "`set ... noreply`; filling stops at the first eviction and the figure is `curr_items` "
        "at that moment. Every server runs with `-m %d -U 0 -l 127.0.0.1` plus the flags "
        "shown. bytes/item = %d MiB / items; all-in bytes/item = server RSS growth from "
        "empty to full / items (index and overheads included); chunk bytes = chunk size of "
        "the slab class holding most items (`stats slabs`)." % (limit, limit),
        "",
        "| configuration | items in %d MB | bytes/item | all-in bytes/item | "
        "vs memcached defaults | chunk bytes |" % limit,
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in configs:
        s = summarise(c)
        if s["items"] is None:
            lines.append("| %s | failed | | | | |" % c.label)
            continue
        items = "%d" % s["items"]
        if s["items_min"] != s["items_max"]:
            items += " (%d–%d)" % (s["items_min"], s["items_max"])
        ratio = "%.2f×" % (s["items"] / baseline) if baseline else "n/a"
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            c.label, items, fmt(s["bytes_per_item"], 1),
            fmt(s["allin_bytes_per_item"], 1) or "n/a", ratio, fmt(s["chunk_bytes"]) or "n/a"))
    lines.append("")
    if png_name:
        lines += ["![items in %d MB](%s)" % (limit, png_name), ""]
    if notes:
        lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def write_plot(path, configs, limit_mb):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    rows = [(c, summarise(c)["items"]) for c in configs]
    rows = [(c, items) for c, items in rows if items]
    if not rows:
        return False
    colours = {"memcached": 1, "tinycached stock": 2, "tinycached preset": 3, "as built": 4}
    legend = [("memcached", "memcached"), ("tinycached stock", "tinycached -o layout=stock"),
              ("tinycached preset", "tinycached presets"),
              ("as built", "tinycached builds, no layout flag")]
    kinds = {c.kind for c, _ in rows}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "fill.dat")
        with open(data, "w") as out:
            for i, (c, items) in enumerate(rows):
                label = c.label.replace('"', "'")
                out.write('%d %.1f %d "%s"\n' % (i, items / 1000.0, colours[c.kind], label))
        top = max(items for _, items in rows) / 1000.0 * 1.15
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        script = "\n".join([
            "set terminal %s size %d,640 %s" % (terminal, max(800, 90 * len(rows) + 200), font),
            "set output '%s'" % path.replace("'", "''"),
            "set title 'Items held in %d MB before the first eviction (keys 1..N, 1-byte value)' offset 0,1"
            % limit_mb,
            "set ylabel 'items (thousands)'",
            "set yrange [0:%f]" % top,
            "set xrange [-0.6:%f]" % (len(rows) - 0.4),
            "set style fill solid 0.8 border -1",
            "set boxwidth 0.7",
            "set xtics rotate by -35 scale 0 nomirror",
            "set bmargin 12",
            "set grid ytics",
            "set tmargin 6",
            "set key horizontal maxrows 1 center at screen 0.5, screen 0.88",
            "set rmargin 16",
            "set linetype 1 lc rgb '#888888'",
            "set linetype 2 lc rgb '#4a7ebb'",
            "set linetype 3 lc rgb '#d9822b'",
            "set linetype 4 lc rgb '#5a9e4b'",
            "plot '%s' using 1:2:3:xtic(4) with boxes lc variable notitle, "
            "'' using 1:2:(sprintf('%%.0fk', $2)) with labels offset 0,0.8 notitle%s" % (
                data, "".join(", NaN with boxes lt %d title '%s'" % (colours[kind], title)
                              for kind, title in legend if kind in kinds)),
        ])
        return lab.run_gnuplot(script)


# ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(
        description="Fill every server configuration to its first eviction and tabulate.")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                        help="CMake build directory holding experiments/fill and "
                             "server/tinycached (default: <repo>/build)")
    parser.add_argument("--out-dir", default=os.path.join(REPO, "results"),
                        help="where the .csv/.md/.png go (default: <repo>/results)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per configuration; the median is reported (default 1)")
    parser.add_argument("--limit-mb", type=int, default=64, help="server -m (default 64)")
    parser.add_argument("--memcached", default="/usr/bin/memcached",
                        help="reference memcached binary (default /usr/bin/memcached)")
    parser.add_argument("--only-reference", action="store_true",
                        help="run only the memcached configurations")
    parser.add_argument("--only-tinycached", action="store_true",
                        help="run only the tinycached configurations")
    parser.add_argument("--only", metavar="REGEX",
                        help="run only configurations whose label matches REGEX")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip re-reading a sample of keys after each fill")
    parser.add_argument("--as-built", action="append", default=[], metavar="DIR",
                        help="also fill DIR/server/tinycached started with no layout flag "
                             "(a build's own default layout, e.g. build/presets/compact); "
                             "repeatable")
    parser.add_argument("--no-build", action="store_true",
                        help="never run cmake, even if a binary is missing")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    build_dir = os.path.abspath(args.build_dir)
    paths = lab.ensure_built(build_dir, ["fill"] + ([] if args.only_reference else ["tinycached"]),
                             not args.no_build)
    fill, tinycached = paths["fill"], paths["tinycached"]
    if not os.access(fill, os.X_OK):
        lab.log("no fill client at %s; build it (cmake --build %s --target fill)" % (fill, build_dir))
        return 1

    notes = []
    configs = []
    versions = {}
    if not args.only_tinycached:
        if os.access(args.memcached, os.X_OK):
            versions[args.memcached] = lab.version_of(args.memcached)
            for name, flags in REFERENCE_FLAGS:
                configs.append(Config("memcached", name, args.memcached, flags))
        else:
            lab.log("no memcached at %s: skipping the reference configurations" % args.memcached)
            notes.append("memcached not found at `%s`: reference skipped." % args.memcached)
    if not args.only_reference:
        if os.access(tinycached, os.X_OK):
            versions[tinycached] = lab.version_of(tinycached)
            for name, flags in REFERENCE_FLAGS:
                configs.append(Config("tinycached stock", name, tinycached,
                                      ["-o", "layout=stock"] + flags))
            for preset in list_presets(tinycached):
                configs.append(Config("tinycached preset", preset, tinycached,
                                      ["-o", "preset=" + preset]))
        else:
            lab.log("no tinycached at %s: skipping the tinycached configurations" % tinycached)
            notes.append("tinycached not built (`%s` missing): its configurations were skipped."
                         % tinycached)
    for build in args.as_built:
        binary = os.path.join(os.path.abspath(build), "server", "tinycached")
        if not os.access(binary, os.X_OK):
            lab.log("no tinycached in %s (cmake --build --preset <name>)" % build)
            return 1
        versions[binary] = lab.version_of(binary)
        configs.append(Config("as built", os.path.relpath(os.path.abspath(build), REPO), binary,
                              []))
    if args.only:
        pattern = re.compile(args.only)
        configs = [c for c in configs if pattern.search(c.label)]
    if not configs:
        lab.log("nothing to run")
        return 1

    started = time.time()
    for rep in range(args.repeat):
        order = configs if rep % 2 == 0 else list(reversed(configs))
        for c in order:
            try:
                result = run_once(c, fill, args.limit_mb, not args.no_verify)
                c.runs.append(result)
                lab.log("run %d/%d  %-36s %9d items  %6.2f B/item  all-in %s  %.1f s" % (
                    rep + 1, args.repeat, c.label, result["items"], result["bytes_per_item"],
                    fmt(result["allin_bytes_per_item"], 2) or "n/a", result["seconds"]))
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                c.errors.append(str(e).replace("\n", " "))
                lab.log("run %d/%d  %s FAILED: %s" % (rep + 1, args.repeat, c.label, e))
    elapsed = time.time() - started

    baseline = None
    for c in configs:
        if c.kind == BASELINE_KIND and c.name == BASELINE_NAME:
            baseline = summarise(c)["items"]
    if baseline is None:
        notes.append("memcached defaults not measured in this run: no ratio column.")
    for c in configs:
        for e in sorted(set(c.errors)):
            notes.append("%s: %s" % (c.label, e))
    notes.append("ladder wall time %.0f s." % elapsed)

    meta = {
        "limit_mb": args.limit_mb,
        **lab.run_stamp(),
        "versions": versions,
        "repeat": args.repeat,
        "command": " ".join(["experiments/fill_ladder.py"] + sys.argv[1:]),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, "fill-%dmb" % args.limit_mb)
    write_csv(stem + ".csv", configs, baseline, meta)
    png = write_plot(stem + ".png", configs, args.limit_mb)
    write_markdown(stem + ".md", configs, baseline, meta, notes,
                   os.path.basename(stem + ".png") if png else None)
    lab.log("wrote %s.{csv,md%s} in %.0f s" % (stem, ",png" if png else "", elapsed))
    failed = any(c.errors for c in configs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
