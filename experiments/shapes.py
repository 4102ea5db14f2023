#!/usr/bin/env python3
"""Item shapes: how densely each server holds items of different key and value
shapes (experiments/README.md, "Item shapes").

For every shape row (ROWS below) and every configuration (CONFIGS), starts the
server fresh on a free 127.0.0.1 port with -m <limit> -U 0 -l 127.0.0.1 and its
flags, fills it with build/experiments/fill and the row's shape options until
the first eviction (fill --pid ... --json --verify), stops it, and writes
    results/shapes.csv   one row per shape and configuration (medians over
                         --repeat), and the miss-ratio rows
    results/shapes.md    items and all-in bytes/item per shape and server, the
                         tiny/compact and tiny/memcached ratios; commit, date,
                         machine, how it was run
    results/shapes.png   items held per shape and server (gnuplot)

Then one miss-ratio row (MISS_RATIO below): build/experiments/missratio with
text keys cycling over several prefixes ("p<n mod K>:<n>"), Zipf 0.9, over a
key space memcached cannot hold, at the same -m, for every configuration.

Runs are interleaved (every shape and configuration once, then again in
reverse order, ...), so a noisy machine hits all alike.

Usage: experiments/shapes.py [--build-dir build] [--out-dir results] [--only REGEX]
                          [--repeat N] [--no-build] [--limit-mb 64] [--list]
Exit status: 0 if every run filled and verified (and every miss-ratio run saw
only right values), 1 otherwise (the results are written either way).
"""
import argparse
import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: servers, builds and provenance)

REPO = lab.REPO

# The shape rows: (label: keys / values, fill options). Add a row here to measure
# another shape; `fill --help` lists the shape options.
ROWS = [
    ("1..N / x", []),
    ("random 15-digit / x", ["--key-shape", "random:15"]),
    ("random 19-digit / x", ["--key-shape", "random:19"]),
    ("1..N / 4-byte text", ["--value-shape", "text:4"]),
    ("1..N / 8-byte text", ["--value-shape", "text:8"]),
    ("1..N / 10-byte text", ["--value-shape", "text:10"]),
    ("1..N / 12-byte text", ["--value-shape", "text:12"]),
    ("1..N / 9-digit numbers", ["--value-shape", "digits:9"]),
    ("1..N / 20-digit numbers", ["--value-shape", "digits:20"]),
    ("1..N / 8-digit numbers", ["--value-shape", "digits:8"]),
    ("user:<n> / x", ["--key-prefix", "user:"]),
    ("user:<n> / 3-digit numbers", ["--key-prefix", "user:", "--value-shape", "digits:3"]),
    ("views:article:<n> / 8-digit numbers",
     ["--key-prefix", "views:article:", "--value-shape", "digits:8"]),
    ("ctr:page:<n> / 8-digit numbers", ["--key-prefix", "ctr:page:", "--value-shape", "digits:8"]),
    ("rl:<k>:<n> (16 prefixes) / 3-digit numbers",
     ["--key-prefix", "rl:", "--key-prefixes", "16", "--value-shape", "digits:3"]),
    ("md5 hex / x", ["--key-shape", "hex:32"]),
    ("uuid / x", ["--key-shape", "uuid"]),
    ("user:<random 15-digit> / x", ["--key-prefix", "user:", "--key-shape", "random:15"]),
    ("user:<n> / 20-digit numbers", ["--key-prefix", "user:", "--value-shape", "digits:20"]),
    ("random 15-digit / 3-digit numbers", ["--key-shape", "random:15", "--value-shape", "digits:3"]),
    ("random 19-digit / 3-digit numbers", ["--key-shape", "random:19", "--value-shape", "digits:3"]),
    ("sha1 hex / x", ["--key-shape", "hex:40"]),
]

# The servers: (name, label, binary kind, flags after -m <limit>).
CONFIGS = [
    ("memcached", "memcached -C -n 5 -f 1.05", "memcached", ["-C", "-n", "5", "-f", "1.05"]),
    ("compact", "tinycached -o preset=compact", "tinycached", ["-o", "preset=compact"]),
    ("tiny", "tinycached -o preset=tiny", "tinycached", ["-o", "preset=tiny"]),
]
COLOURS = {"memcached": "#888888", "compact": "#0072b2", "tiny": "#d55e00"}

# The miss-ratio row: missratio's read-through client, keys "p<n mod prefixes>:<n>" for
# n in 1..keys, Zipf(alpha) popularity; `warmup` requests uncounted, then `requests` counted.
# 8M keys: memcached -C -n 5 -f 1.05 holds about 0.95M of them in 64 MB, compact about 2.3M;
# 10M warmup requests ask for about 3.3M distinct keys, so every server is full and evicting
# when counting begins (with 4M keys, compact and tiny never fill: 6M requests ask for only
# 1.8M distinct keys).
MISS_RATIO = {
    "label": "p<n mod 16>:<n>, 8M keys, Zipf 0.9 / 1-8 digits",
    "keys": 8000000,
    "prefixes": 16,
    "alpha": 0.9,
    "warmup": 10000000,
    "requests": 4000000,
    "seed": 1,
}

FILL_COLUMNS = [
    "experiment", "row", "shape_options", "config", "configuration", "server_flags",
    "items", "items_min", "items_max", "bytes_per_item", "allin_bytes_per_item", "allin_min",
    "allin_max", "inline_items", "rss_before_kb", "rss_after_kb", "seconds", "sent",
    "evictions", "verify_corrupt",
]
MISS_COLUMNS = [
    "keys", "key_prefixes", "alpha", "warmup", "requests", "miss_ratio",
    "infinite_cache_miss_ratio", "top_c_miss_ratio", "warmup_curr_items", "warmup_evictions",
    "curr_items", "requests_per_second",
]
TAIL_COLUMNS = ["runs", "error", "limit_mb", "commit", "date", "machine", "cpu", "nproc",
                "server_version"]


# ---------------------------------------------------------------------------
# One run of each kind.

class Cell:
    """One (row, configuration): its runs and errors."""

    def __init__(self, row, row_args, config):
        self.row = row
        self.row_args = row_args
        self.config = config  # (name, label, kind, flags)
        self.runs = []
        self.errors = []

    @property
    def name(self):
        return self.config[0]

    @property
    def label(self):
        return self.config[1]


def server_for(config, binaries, limit_mb):
    _, _, kind, flags = config
    return lab.Server(binaries[kind], ["-m", str(limit_mb)] + flags)


def run_fill(cell, binaries, fill, limit_mb, verify):
    """Fills a fresh server with the row's shape; returns fill's JSON plus inline_items."""
    server = server_for(cell.config, binaries, limit_mb)
    try:
        server.start()
        argv = [fill, "--port", str(server.port), "--pid", str(server.proc.pid),
                "--label", "%s | %s" % (cell.row, cell.label), "--json"] + cell.row_args
        if verify:
            argv.append("--verify")
        result, _ = lab.run_client(argv, server, 1800, "the fill", "fill", check_exit=True)
        stats = lab.stats_values(server.port)
        result["inline_items"] = int(stats["inline_items"]) if "inline_items" in stats else None
        return result
    finally:
        server.stop()


def run_miss_ratio(cell, binaries, client, limit_mb, seed):
    """One missratio run against a fresh server; returns its JSON."""
    m = MISS_RATIO
    server = server_for(cell.config, binaries, limit_mb)
    try:
        server.start()
        argv = [client, "--port", str(server.port), "--keys", str(m["keys"]),
                "--alpha", "%g" % m["alpha"], "--warmup", str(m["warmup"]),
                "--requests", str(m["requests"]), "--seed", str(seed),
                "--key-prefixes", str(m["prefixes"]), "--json"]
        result, done = lab.run_client(argv, server, 1800, "the run", "missratio")
        if done.returncode != 0 or result["verify_failures"] or result["protocol_errors"]:
            raise RuntimeError("missratio exited %d: %d wrong values (%s), %d protocol errors (%s)"
                               % (done.returncode, result["verify_failures"],
                                  result["first_verify_failure"], result["protocol_errors"],
                                  result["first_protocol_error"]))
        return result
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# Summaries.

def summarise_fill(cell):
    runs = cell.runs
    items = [r["items"] for r in runs]
    allin = [r["allin_bytes_per_item"] for r in runs if r["allin_bytes_per_item"] is not None]
    return {
        "items": lab.median_low(items),
        "items_min": min(items, default=None),
        "items_max": max(items, default=None),
        "bytes_per_item": lab.median_low([r["bytes_per_item"] for r in runs]),
        "allin_bytes_per_item": lab.median_low(allin),
        "allin_min": min(allin, default=None),
        "allin_max": max(allin, default=None),
        "inline_items": lab.median_low([r.get("inline_items") for r in runs]),
        "rss_before_kb": lab.median_low([r["rss_before_kb"] for r in runs]),
        "rss_after_kb": lab.median_low([r["rss_after_kb"] for r in runs]),
        "seconds": lab.median_low([r["seconds"] for r in runs]),
        "sent": lab.median_low([r["sent"] for r in runs]),
        "evictions": lab.median_low([r["evictions"] for r in runs]),
        "verify_corrupt": max([r["verify_corrupt"] or 0 for r in runs], default=None),
    }


def summarise_miss(cell):
    # The run with the median miss ratio, so its other fields belong with it.
    runs = sorted(cell.runs, key=lambda r: r["miss_ratio"])
    return runs[(len(runs) - 1) // 2] if runs else None


def fmt(value, decimals=None):
    if value is None:
        return ""
    if decimals is None:
        return str(value)
    return "%.*f" % (decimals, value)


def ratio(a, b):
    return a / b if a and b else None


# ---------------------------------------------------------------------------
# Files.

def write_csv(path, fill_cells, miss_cells, meta):
    columns = FILL_COLUMNS + MISS_COLUMNS + TAIL_COLUMNS
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for c in fill_cells + miss_cells:
            name, label, kind, flags = c.config
            row = {"experiment": "fill" if c in fill_cells else "miss_ratio", "row": c.row,
                   "shape_options": " ".join(shlex.quote(a) for a in c.row_args),
                   "config": name, "configuration": label,
                   "server_flags": " ".join(["-m", str(meta["limit_mb"])] + flags),
                   "runs": len(c.runs), "error": "; ".join(c.errors),
                   "limit_mb": meta["limit_mb"], **lab.stamp_columns(meta),
                   "server_version": meta["versions"].get(kind, "")}
            if c in fill_cells:
                s = summarise_fill(c)
                for k, v in s.items():
                    row[k] = fmt(v, 2) if isinstance(v, float) else fmt(v)
            else:
                r = summarise_miss(c) or {}
                m = MISS_RATIO
                row.update({"keys": m["keys"], "key_prefixes": m["prefixes"], "alpha": m["alpha"],
                            "warmup": m["warmup"], "requests": m["requests"]})
                for k in ("miss_ratio", "infinite_cache_miss_ratio", "top_c_miss_ratio",
                          "warmup_curr_items", "warmup_evictions", "curr_items",
                          "requests_per_second"):
                    v = r.get(k)
                    row[k] = fmt(v, 6) if isinstance(v, float) else fmt(v)
            w.writerow([row.get(k, "") for k in columns])


def fill_table(fill_cells, configs):
    """The Markdown table: one line per shape row."""
    by = {(c.row, c.name): c for c in fill_cells}
    rows = [r for r, _ in ROWS if any((r, n) in by for n, _, _, _ in configs)]
    names = [n for n, _, _, _ in configs]
    head = "| shape (keys / values) | fill options |"
    rule = "|---|---|"
    for n, label, _, _ in configs:
        head += " %s items | %s B/item |" % (n, n)
        rule += "---:|---:|"
    if "tiny" in names and "compact" in names:
        head += " tiny / compact |"
        rule += "---:|"
    if "tiny" in names and "memcached" in names:
        head += " tiny / memcached |"
        rule += "---:|"
    if "tiny" in names:
        head += " tiny: in slots |"
        rule += "---:|"
    lines = [head, rule]
    for r in rows:
        args = dict(ROWS)[r]
        line = "| %s | %s |" % (r.replace("|", "\\|"),
                                "`%s`" % " ".join(args) if args else "(defaults)")
        items = {}
        for n in names:
            c = by.get((r, n))
            if c is None:
                line += " not run | |"
                continue
            s = summarise_fill(c)
            if s["items"] is None:
                line += " failed | |"
                continue
            items[n] = s["items"]
            text = "%d" % s["items"]
            if s["items_min"] != s["items_max"]:
                text += " (%d–%d)" % (s["items_min"], s["items_max"])
            line += " %s | %s |" % (text, fmt(s["allin_bytes_per_item"], 1) or "n/a")
        if "tiny" in names and "compact" in names:
            line += " %s |" % fmt(ratio(items.get("tiny"), items.get("compact")), 2)
        if "tiny" in names and "memcached" in names:
            line += " %s |" % fmt(ratio(items.get("tiny"), items.get("memcached")), 2)
        if "tiny" in names:
            c = by.get((r, "tiny"))
            s = summarise_fill(c) if c else None
            share = (s["inline_items"] / s["items"]
                     if s and s["items"] and s["inline_items"] is not None else None)
            line += " %s |" % ("%.0f%%" % (100 * share) if share is not None else "")
        lines.append(line.replace("|  |", "| |"))
    return lines


def write_markdown(path, fill_cells, miss_cells, configs, meta, notes, png_name):
    limit = meta["limit_mb"]
    lines = [
        "# Item shapes: items in %d MB by key and value shape" % limit,
        "",
        *lab.stamp_lines(meta, "; load average %s before, %s after" % (
            meta["load_before"], meta["load_after"])),
        "- servers: %s" % "; ".join("`%s`: %s" % (b, v) for b, v in meta["binaries"].items()),
        "- command: `%s`" % meta["command"],
        "- runs per cell: %d%s" % (meta["repeat"], " (median; interleaved)"
                                   if meta["repeat"] > 1 else ""),
        "- wall time: %.0f s (%.1f min)" % (meta["elapsed"], meta["elapsed"] / 60),
        "",
        "Servers: %s. "
        "Every server starts fresh with `-m %d -U 0 -l 127.0.0.1` plus its flags and is filled "
        "by `build/experiments/fill` with the row's shape options (`fill --help`) until the "
        "first eviction, over one connection, pipelined `set ... noreply`, flags 0, no expiry; "
        "then `--verify` re-reads 100000 of the keys sent and checks every value. "
        "Key number k = 1, 2, 3, … gives the key (`1..N`: k itself; `random D-digit`: a "
        "distinct D-digit number; `md5 hex`: 32 hex digits; `uuid`: a version-4 UUID; a "
        "prefix goes before it) and the value (`x`; `D-digit numbers`: exactly D digits; "
        "`N-byte text`: N letters), all derived from k. *items* is `curr_items` at the first "
        "eviction (*items* columns, in %d MB); *B/item* is the all-in figure: the server's "
        "RSS growth from empty to full / items "
        "(index and every overhead included); *tiny / compact* and *tiny / memcached* divide "
        "the items held (higher: tiny holds more); *tiny: in slots* is the share of tiny's "
        "items held as 8-byte slots of its index (`inline_items` / `curr_items`); the rest "
        "are stored as `compact` items." % (
            "; ".join("*%s* = %s" % (n, "`%s`" % label) for n, label, _, _ in configs),
            limit, limit),
        "",
    ]
    if fill_cells:
        lines += fill_table(fill_cells, configs) + [""]
        if png_name:
            lines += ["![items held per shape](%s)" % png_name, ""]
    if miss_cells:
        m = MISS_RATIO
        lines += [
            "## Miss ratio with prefixed keys",
            "",
            "`build/experiments/missratio --keys %d --key-prefixes %d --alpha %g --warmup %d "
            "--requests %d --seed %d`: a read-through client asks, over one connection, for "
            "the text keys `p<n mod %d>:<n>` (n in 1..%d) with Zipf(%g) popularity (ranks "
            "spread over the keys by a fixed bijection) in pipelined multi-gets of 100, and "
            "sets every miss (`noreply`, a 1–8 digit value derived from n, checked on every "
            "hit). The first %d requests fill the cache and are not counted; the miss ratio "
            "is misses / requests over the next %d. Every server sees the same request stream "
            "and runs with `-m %d`." % (
                m["keys"], m["prefixes"], m["alpha"], m["warmup"], m["requests"], m["seed"],
                m["prefixes"], m["keys"], m["alpha"], m["warmup"], m["requests"], limit),
            "",
            "| configuration | miss ratio | infinite cache | top-C ideal | items at the end | "
            "evictions by the end of the warmup | req/s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        marked = False
        for c in miss_cells:
            r = summarise_miss(c)
            if r is None:
                lines.append("| %s | failed | | | | | |" % c.label)
                continue
            mark = ""
            if not r.get("warmup_evictions"):
                mark, marked = " °", True
            lines.append("| %s | %.4f%s | %.4f | %.4f | %s | %s | %s |" % (
                c.label, r["miss_ratio"], mark, r["infinite_cache_miss_ratio"] or 0,
                r["top_c_miss_ratio"], r.get("curr_items"), r.get("warmup_evictions"),
                fmt(r.get("requests_per_second"), 0)))
        lines += [""]
        if marked:
            lines += ["° no eviction by the end of the warmup: the server still had room when "
                      "counting began, so it misses only first requests (its figure is the "
                      "infinite-cache floor, not its capacity).", ""]
        lines += [
            "*infinite cache*: the share of counted requests that ask for a key for the first "
            "time in the run — what a cache that never evicts would miss; no server can do "
            "better on this request stream. *top-C ideal*: the expected miss ratio of a cache "
            "that always holds the *items at the end* most popular keys.",
            "",
        ]
    lines += ["## How it was run", "", "```",
              "cmake --build build --target tinycached fill missratio", meta["command"], "```",
              ""]
    if notes:
        lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def write_plot(path, fill_cells, configs, limit_mb):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    by = {(c.row, c.name): summarise_fill(c)["items"] for c in fill_cells}
    rows = [r for r, _ in ROWS if any(by.get((r, n)) for n, _, _, _ in configs)]
    names = [n for n, _, _, _ in configs if any(by.get((r, n)) for r in rows)]
    if not rows:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "shapes.dat")
        with open(data, "w") as out:
            for r in rows:
                values = ["%.1f" % (by[(r, n)] / 1000.0) if by.get((r, n)) else "NaN"
                          for n in names]
                out.write('"%s" %s\n' % (r.replace('"', "'"), " ".join(values)))
        top = max(v for v in by.values() if v) / 1000.0 * 1.12
        labels = {n: label for n, label, _, _ in configs}
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        plots = ", ".join(
            "'%s' using %d:xtic(1) title '%s' lc rgb '%s'" % (
                data if i == 0 else "", i + 2, labels[n], COLOURS.get(n, "#000000"))
            for i, n in enumerate(names))
        script = "\n".join([
            "set terminal %s size %d,720 noenhanced %s" % (
                terminal, max(900, 95 * len(rows) + 250), font),
            "set output '%s'" % path.replace("'", "''"),
            "set title 'Items held in %d MB before the first eviction, by key / value shape'"
            % limit_mb,
            "set ylabel 'items (thousands)'",
            "set yrange [0:%f]" % top,
            "set style data histograms",
            "set style histogram clustered gap 1",
            "set style fill solid 0.85 border -1",
            "set boxwidth 0.9",
            "set xtics rotate by -35 scale 0 nomirror",
            "set bmargin 14",
            "set rmargin 24",
            "set grid ytics",
            "set key top right",
            "plot " + plots,
        ])
        return lab.run_gnuplot(script)


# ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(
        description="Items per MB for several key/value shapes, per server, and a miss-ratio "
                    "row with prefixed keys.")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                        help="CMake build directory with server/tinycached, experiments/fill "
                             "and experiments/missratio (default <repo>/build)")
    parser.add_argument("--out-dir", default=os.path.join(REPO, "results"),
                        help="where shapes.{csv,md,png} go (default <repo>/results)")
    parser.add_argument("--only", metavar="REGEX",
                        help="run only the cells whose shape row or configuration (label or "
                             "name: memcached, compact, tiny) matches REGEX; the miss-ratio row's "
                             "label starts with 'miss ratio'")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per cell, interleaved; the median is reported (default 1)")
    parser.add_argument("--limit-mb", type=int, default=64, help="server -m (default 64)")
    parser.add_argument("--memcached", default="/usr/bin/memcached",
                        help="memcached binary (default /usr/bin/memcached)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip fill's re-read of 100000 keys after each fill")
    parser.add_argument("--no-miss-ratio", action="store_true", help="skip the miss-ratio row")
    parser.add_argument("--no-build", action="store_true", help="never run cmake")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args()
    if args.repeat < 1 or args.limit_mb < 2:
        parser.error("--repeat must be >= 1 and --limit-mb >= 2")

    build_dir = os.path.abspath(args.build_dir)
    paths = lab.ensure_built(build_dir, ["tinycached", "fill", "missratio"],
                             not args.no_build and not args.list)
    binaries = {"memcached": args.memcached, "tinycached": paths["tinycached"]}
    pattern = re.compile(args.only) if args.only else None

    def selected(row, config):
        return pattern is None or any(pattern.search(t) for t in (row, config[0], config[1]))

    fill_cells = [Cell(r, a, c) for r, a in ROWS for c in CONFIGS if selected(r, c)]
    miss_row = "miss ratio: " + MISS_RATIO["label"]
    miss_cells = [] if args.no_miss_ratio else [
        Cell(miss_row, ["--key-prefixes", str(MISS_RATIO["prefixes"])], c)
        for c in CONFIGS if selected(miss_row, c)]
    if args.list:
        for c in fill_cells:
            print("fill  %-44s %-30s %s" % (c.row, c.label, " ".join(c.row_args)))
        for c in miss_cells:
            print("miss  %-44s %-30s" % (c.row, c.label))
        print("%d cells x %d repetitions" % (len(fill_cells) + len(miss_cells), args.repeat))
        return 0
    if not fill_cells and not miss_cells:
        lab.log("nothing to run")
        return 1

    # Which configurations start at all (no binary, or a tinycached without a preset).
    notes, skipped, versions = [], {}, {}
    for c in CONFIGS:
        if not any(cell.config == c for cell in fill_cells + miss_cells):
            continue
        binary = binaries[c[2]]
        if not os.access(binary, os.X_OK):
            skipped[c[0]] = "no binary at `%s`" % binary
        else:
            ok, error = lab.accepts_flags(binary, c[3], ("-m", str(args.limit_mb)))
            if ok:
                versions.setdefault(c[2], lab.version_of(binary))
            else:
                skipped[c[0]] = "`%s %s` does not start: %s" % (binary, " ".join(c[3]), error)
        if c[0] in skipped:
            lab.log("%s: not run: %s" % (c[1], skipped[c[0]]))
            notes.append("%s: not run: %s" % (c[1], skipped[c[0]]))
    fill_cells = [c for c in fill_cells if c.name not in skipped]
    miss_cells = [c for c in miss_cells if c.name not in skipped]
    missing = [t for t in ("fill", "missratio") if not os.access(paths[t], os.X_OK)
               and (fill_cells if t == "fill" else miss_cells)]
    if missing:
        lab.log("not built: %s (cmake --build %s --target %s)" % (
            ", ".join(paths[t] for t in missing), build_dir, " ".join(missing)))
        return 1

    load_before = lab.load_average()
    started = time.time()
    cells = fill_cells + miss_cells
    for rep in range(args.repeat):
        for c in (cells if rep % 2 == 0 else list(reversed(cells))):
            t0 = time.time()
            try:
                if c in fill_cells:
                    r = run_fill(c, binaries, paths["fill"], args.limit_mb, not args.no_verify)
                    c.runs.append(r)
                    lab.log("run %d/%d  %-44s %-30s %9d items  all-in %6s B/item  %.0f s" % (
                        rep + 1, args.repeat, c.row, c.label, r["items"],
                        fmt(r["allin_bytes_per_item"], 2) or "n/a", time.time() - t0))
                else:
                    r = run_miss_ratio(c, binaries, paths["missratio"], args.limit_mb,
                                       MISS_RATIO["seed"] + rep)
                    c.runs.append(r)
                    lab.log("run %d/%d  %-44s %-30s miss ratio %.4f (infinite cache %.4f), items %s, "
                        "warmup-end evictions %s, %.0f s" % (
                            rep + 1, args.repeat, "miss ratio", c.label, r["miss_ratio"],
                            r["infinite_cache_miss_ratio"] or 0, r["curr_items"],
                            r["warmup_evictions"], time.time() - t0))
            except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
                c.errors.append(str(e).replace("\n", " "))
                lab.log("run %d/%d  %s | %s FAILED: %s" % (rep + 1, args.repeat, c.row, c.label, e))
    elapsed = time.time() - started

    for c in cells:
        for e in sorted(set(c.errors)):
            notes.append("%s, %s: %s" % (c.row, c.label, e))
        if c in fill_cells and c.runs and summarise_fill(c)["verify_corrupt"]:
            notes.append("%s, %s: --verify found %d corrupt values" % (
                c.row, c.label, summarise_fill(c)["verify_corrupt"]))
    if miss_cells:
        notes.append("miss-ratio row: %.0f s of the wall time." % sum(
            r["seconds"] + r["warmup_seconds"] for c in miss_cells for r in c.runs))
    meta = {
        "limit_mb": args.limit_mb, **lab.run_stamp(),
        "versions": {kind: "%s: %s" % (binaries[kind], v) for kind, v in versions.items()},
        "binaries": {binaries[kind]: v for kind, v in versions.items()},
        "repeat": args.repeat, "elapsed": elapsed,
        "load_before": load_before, "load_after": lab.load_average(),
        "command": " ".join(["experiments/shapes.py"] + [shlex.quote(a) for a in sys.argv[1:]]),
    }
    configs = [c for c in CONFIGS if any(cell.config == c for cell in fill_cells)]
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, "shapes")
    write_csv(stem + ".csv", fill_cells, miss_cells, meta)
    png = bool(fill_cells) and write_plot(stem + ".png", fill_cells, configs, args.limit_mb)
    write_markdown(stem + ".md", fill_cells, miss_cells, configs, meta, notes,
                   os.path.basename(stem + ".png") if png else None)
    lab.log("wrote %s.{csv,md%s} in %.0f s" % (stem, ",png" if png else "", elapsed))
    failed = bool(skipped) or any(c.errors for c in cells) or any(
        c.runs and summarise_fill(c)["verify_corrupt"] for c in fill_cells)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
