#!/usr/bin/env python3
"""Does a server's density hold as -m grows? The scale table, from the rows of
results/overhead.csv (experiments/overhead.py runs the servers; this script only
reads its CSV).

For every configuration and limit it shows the items held at the first
eviction, items per MiB of -m, all-in bytes per item (two ways: settled RSS /
items, and RSS growth from the empty server / items), RSS / limit; and for
every configuration the change of items per MiB from its smallest limit to its
largest (-m 64 to -m 4096 by default), in percent. Writes
    results/scale.csv   one row per configuration and limit
    results/scale.md    the tables, with the commit, date and machine of every run
    results/scale.png   items per MiB and all-in bytes per item against -m (gnuplot)

Usage: experiments/scale.py [--in results/overhead.csv] [--configs memcached-C,compact,tiny]
                         [--limits 64,256,1024,4096] [--target 5] [--out-dir results]
Exit status: 0 if every configuration has a row for every limit, 1 otherwise
(the files are written either way).
"""
import argparse
import csv
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: provenance)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
DEFAULT_CONFIGS = ["memcached-C", "compact", "tiny"]
DEFAULT_LIMITS = [64, 256, 1024, 4096]
COLOURS = {"memcached": "#888888", "memcached-C": "#444444", "stock": "#4a7ebb",
           "compact": "#d9822b", "tiny": "#2e8b57"}

COLUMNS = [
    "config", "configuration", "server_flags", "limit_mb", "items_first_eviction", "items_per_mib",
    "items_per_mib_change_pct", "items_end", "rss_empty_kb", "rss_kb", "hwm_kb",
    "allin_bytes_per_item", "growth_bytes_per_item", "rss_over_limit", "hwm_over_limit",
    "rss_minus_limit_mib", "error", "commit", "date", "machine", "cpu", "nproc", "server_version",
    "source",
]


def to_number(text):
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_overhead(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in raw.items() if k is not None} for raw in csv.DictReader(f)]


def scale_row(raw, source):
    """One scale row from one overhead.csv row (figures recomputed from the raw readings)."""
    n = {k: to_number(raw.get(k)) for k in ("limit_mb", "items_first_eviction", "items_end", "past_eviction_sent",
                                             "rss_empty_kb", "rss_kb", "hwm_kb")}
    limit = n["limit_mb"]
    first = n["items_first_eviction"]
    items = n["items_end"] or first
    rss, hwm, empty = n["rss_kb"], n["hwm_kb"], n["rss_empty_kb"]
    row = {k: raw.get(k) for k in ("config", "configuration", "server_flags", "error", "commit", "date",
                                    "machine", "cpu", "nproc", "server_version")}
    row.update(n)
    row["source"] = source
    row["items_per_mib"] = first / limit if first else None
    row["allin_bytes_per_item"] = rss * 1024.0 / items if rss and items else None
    row["growth_bytes_per_item"] = (rss - empty) * 1024.0 / items if rss and items and empty else None
    row["rss_over_limit"] = rss * 1024.0 / (limit * MIB) if rss else None
    row["hwm_over_limit"] = hwm * 1024.0 / (limit * MIB) if hwm else None
    row["rss_minus_limit_mib"] = rss / 1024.0 - limit if rss else None
    return row


def change_pct(rows):
    """Items per MiB at the largest limit against the smallest, in percent."""
    have = [r for r in rows if r.get("items_per_mib")]
    if len(have) < 2:
        return None
    have.sort(key=lambda r: r["limit_mb"])
    return (have[-1]["items_per_mib"] / have[0]["items_per_mib"] - 1) * 100


def fmt(value, spec="%.1f"):
    return "" if value is None else spec % value


def signed(value, spec="%+.1f"):
    return "" if value is None else (spec % value).replace("-", "−")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([lab.csv_value(r.get(c)) for c in COLUMNS])


def write_markdown(path, by_config, limits, args, provenance, missing):
    rows = [r for rs in by_config.values() for r in rs]
    runs = sorted({(r.get("commit") or "", r.get("date") or "") for r in rows}, key=lambda x: x[1])
    machines = sorted({"%s, %s, %s CPUs" % (r.get("machine"), r.get("cpu"), r.get("nproc")) for r in rows})
    versions = sorted({r.get("server_version") or "" for r in rows} - {""})
    first, last = limits[0], limits[-1]
    past = "/".join(sorted({"%.0f" % (100.0 * r["past_eviction_sent"] / r["items_first_eviction"])
                            for r in rows if r.get("past_eviction_sent") and r.get("items_first_eviction")}))
    lines = [
        "# Scale: items per MiB from -m %d to -m %d" % (first, last),
        "",
        "- commit: %s (the runs, from `%s`); table made at `%s`, %s"
        % (", ".join("`%s` (%s)" % run for run in runs), args.source, provenance["commit"],
           provenance["date"]),
        "- machine: %s" % "; ".join(machines),
        "- servers: %s" % "; ".join(versions),
        "- command: `%s`" % provenance["command"],
        "",
        "Every server started fresh with `-m <limit> -U 0 -l 127.0.0.1` plus its flags and was filled "
        "by `experiments/overhead.py` (`build/experiments/fill`: keys `1`, `2`, `3`, ... and the value "
        "`x`, flags 0, no expiry) until the first eviction and %s%% past it; the RSS was read once the "
        "index had finished growing. Every run is in `%s`." % (past, args.source),
        "",
        "## Items per MiB of -m",
        "",
        "| configuration | " + " | ".join("-m %d" % l for l in limits)
        + " | change -m %d → %d |" % (first, last),
        "|---|" + "---:|" * (len(limits) + 1),
    ]
    for name, rs in by_config.items():
        at = {r["limit_mb"]: r for r in rs}
        change = change_pct(rs) if first in at else None
        upto = max(at) if at else None
        lines.append("| %s | %s | %s |" % (
            rs[0]["configuration"] if rs else name,
            " | ".join(fmt(at[l].get("items_per_mib"), "%.0f") if l in at else "not run" for l in limits),
            "n/a" if change is None else signed(change) + " %" + ("" if upto == last else " (to -m %d)" % upto)))
    lines.append("")
    for name, rs in by_config.items():
        at = {r["limit_mb"]: r for r in rs}
        if name == "tiny":
            change = change_pct(rs) if first in at else None
            if change is None:
                lines.append("Target (tiny's items per MiB within %g %% from -m %d to -m %d): not measured."
                             % (args.target, first, last))
            elif max(at) != last:
                lines.append("Target (tiny's items per MiB within %g %% from -m %d to -m %d): not measured, "
                             "-m %d was not run; from -m %d to -m %d the change is %s %%."
                             % (args.target, first, last, last, first, max(at), signed(change)))
            else:
                lines.append("Target: tiny's items per MiB within %g %% from -m %d to -m %d: %s "
                             "(%s %%)." % (args.target, first, last,
                                           "met" if abs(change) <= args.target else "not met",
                                           signed(change)))
            lines.append("")
    lines += [
        "## Per configuration and limit",
        "",
        "| configuration | -m MiB | items at first eviction | items / MiB | vs -m %d | RSS MiB | "
        "RSS / limit | RSS − limit MiB | all-in B/item (RSS / items) | B/item of RSS growth |" % first,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rs in by_config.items():
        for r in rs:
            flag = " †" if r.get("error") else ""
            lines.append("| %s | %d | %s%s | %s | %s | %s | %s× | %s | %s | %s |" % (
                r["configuration"], r["limit_mb"], fmt(r.get("items_first_eviction"), "%d"), flag,
                fmt(r.get("items_per_mib"), "%.0f"),
                (signed(r.get("items_per_mib_change_pct")) + " %")
                if r.get("items_per_mib_change_pct") is not None else "",
                fmt(r["rss_kb"] / 1024.0 if r.get("rss_kb") else None, "%.0f"),
                fmt(r.get("rss_over_limit"), "%.3f"), fmt(r.get("rss_minus_limit_mib")),
                fmt(r.get("allin_bytes_per_item"), "%.2f"), fmt(r.get("growth_bytes_per_item"), "%.2f")))
    lines.append("")
    errors = [r for r in rows if r.get("error")]
    if errors:
        lines += ["† the run reported a problem: " + "; ".join(
            "%s -m %d: %s" % (r["config"], r["limit_mb"], r["error"]) for r in errors), ""]
    if missing:
        lines += ["Not run: " + ", ".join("%s -m %d" % m for m in missing)
                  + " (no row in `%s`)." % args.source, ""]
    if args.note:
        lines += ["Notes:", ""] + ["- " + n for n in args.note] + [""]
    if args.png:
        lines += ["![items per MiB and all-in bytes per item against -m](%s)" % args.png, ""]
    lines += [
        "## How to read it",
        "",
        "- *items at first eviction*: `curr_items` at the first `stats` that shows an eviction; "
        "*items / MiB*: that / the `-m` limit; *vs -m %d*: items / MiB against the same "
        "configuration's at -m %d; *change -m %d → %d*: the same at -m %d." % (first, first, first, last, last),
        "- *RSS*: `VmRSS` of the full server (after the fill and the sets past the first eviction, the index "
        "settled); *RSS / limit* and *RSS − limit*: how far the process goes beyond `-m`.",
        "- *all-in B/item (RSS / items)*: the settled RSS / `curr_items` at the same moment: every byte "
        "the process holds — items, index, binary, libraries, buffers — per item held (the "
        "`all-in B/item` of `overhead.md`). *B/item of RSS growth*: (settled RSS − RSS of the "
        "empty server just started) / `curr_items`, which leaves out the fixed cost of the process "
        "(the 5–8 MiB an empty server holds), as `fill-64mb.md`'s all-in column does.",
        "- Items / MiB count what fits in `-m`: the hash index of memcached and of `compact` is "
        "outside `-m` (it shows in RSS / limit), `tiny`'s slot table is inside it. Besides the limit, "
        "a bigger fill changes the keys: they run to 67M (memcached `-C`), 215M (`compact`) or over "
        "500M (`tiny`) and get longer; `compact` packs a key base 250, 3 digits up to 250^3 = 15.6M "
        "and 4 above, and its links are 3-byte page references up to -m 84 and 4-byte ones above. "
        "A tiny item's key, below 2^43, always fits its 8-byte slot.",
        "",
        "",
    ]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def write_plot(path, by_config, limits):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    with tempfile.TemporaryDirectory() as tmp:
        left, right = [], []
        for name, rs in by_config.items():
            rs = [r for r in rs if r.get("items_per_mib")]
            if not rs:
                continue
            data = os.path.join(tmp, "%s.dat" % re.sub(r"\W", "_", name))
            with open(data, "w") as out:
                for r in rs:
                    out.write("%d %.4f %s\n" % (r["limit_mb"], r["items_per_mib"] / 1000.0,
                                                fmt(r.get("allin_bytes_per_item"), "%.4f") or "nan"))
            colour = COLOURS.get(name, "#000000")
            title = rs[0]["configuration"].replace("'", "")
            left.append("'%s' using 1:2 with linespoints lw 2 pt 7 lc rgb '%s' title '%s'"
                        % (data, colour, title))
            right.append("'%s' using 1:3 with linespoints lw 2 pt 7 lc rgb '%s' title '%s'"
                         % (data, colour, title))
        if not left:
            return False
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        common = [
            "set xlabel '-m limit (MiB)'",
            "set logscale x 2",
            "set xtics (%s)" % ", ".join("'%d' %d" % (l, l) for l in limits),
            "set xrange [%f:%f]" % (limits[0] / 1.4, limits[-1] * 1.4),
            "set grid",
        ]
        script = "\n".join([
            "set terminal %s size 1200,500 %s" % (terminal, font),
            "set output '%s'" % path.replace("'", "''"),
            "set multiplot layout 1,2",
        ] + common + [
            "set title 'items held at the first eviction per MiB of -m'",
            "set ylabel 'thousand items / MiB'",
            "set yrange [0:*]",
            "set key at graph 0.98, graph 0.7",
            "plot " + ", ".join(left),
            "set title 'all-in bytes per item (RSS / items)'",
            "set ylabel 'bytes / item'",
            "set logscale y 2",
            "set yrange [4:*]",
            "set key top right",
            "plot " + ", ".join(right),
            "unset multiplot",
        ])
        return lab.run_gnuplot(script)


def main():
    parser = argparse.ArgumentParser(description="The scale table: items per MiB against -m, "
                                                 "from experiments/overhead.py's CSV.")
    parser.add_argument("--in", dest="source", default=os.path.join("results", "overhead.csv"),
                        help="overhead CSV to read (default results/overhead.csv)")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), type=lambda t: lab.parse_list(t, str),
                        help="configurations, as experiments/overhead.py names them (default %s)"
                             % ",".join(DEFAULT_CONFIGS))
    parser.add_argument("--limits", default=",".join(map(str, DEFAULT_LIMITS)),
                        type=lambda t: lab.parse_list(t, int), help="limits in MiB (default 64,256,1024,4096)")
    parser.add_argument("--target", type=float, default=5.0, metavar="PERCENT",
                        help="tiny's items per MiB should change by at most this from the first limit "
                             "to the last (default 5)")
    parser.add_argument("--out-dir", default=os.path.join(REPO, "results"), help="default <repo>/results")
    parser.add_argument("--name", default="scale", help="output file stem (default scale)")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the notes of the .md (repeatable)")
    args = parser.parse_args()
    limits = sorted(args.limits)
    source_path = args.source if os.path.isabs(args.source) else os.path.join(os.getcwd(), args.source)
    if not os.path.exists(source_path):
        source_path = os.path.join(REPO, args.source)
    rel = os.path.relpath(source_path, args.out_dir)
    args.source = os.path.relpath(source_path, REPO) if source_path.startswith(REPO + os.sep) else source_path

    raw = read_overhead(source_path)
    by_config, missing = {}, []
    for name in args.configs:
        rs = []
        for limit in limits:
            found = [r for r in raw if r.get("config") == name and to_number(r.get("limit_mb")) == limit]
            if not found or not found[-1].get("items_first_eviction"):
                missing.append((name, limit))
                continue
            rs.append(scale_row(found[-1], rel))
        base = rs[0]["items_per_mib"] if rs and rs[0]["limit_mb"] == limits[0] else None
        for r in rs:
            if base and r.get("items_per_mib"):
                r["items_per_mib_change_pct"] = (r["items_per_mib"] / base - 1) * 100
        by_config[name] = rs

    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, args.name)
    write_csv(stem + ".csv", [r for rs in by_config.values() for r in rs])
    args.png = os.path.basename(stem + ".png") if write_plot(stem + ".png", by_config, limits) else None
    provenance = dict(lab.run_stamp(), command=" ".join(["experiments/scale.py"] + sys.argv[1:]))
    write_markdown(stem + ".md", by_config, limits, args, provenance, missing)
    for name, rs in by_config.items():
        change = change_pct(rs) if rs and rs[0]["limit_mb"] == limits[0] else None
        lab.log("%-12s %s; change %s" % (name, ", ".join("-m %d %.0f/MiB" % (r["limit_mb"], r["items_per_mib"])
                                                     for r in rs),
                                     "%+.1f%%" % change if change is not None else "n/a"))
    if missing:
        lab.log("no row for: %s" % ", ".join("%s -m %d" % m for m in missing))
    lab.log("wrote %s.{csv,md%s}" % (stem, ",png" if args.png else ""))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
