#!/usr/bin/env python3
"""Memory beyond the limit: what a full server's RSS is, -m 64 to -m 4096.

For every configuration and every limit, starts the server fresh on a free
127.0.0.1 port, fills it with experiments/fill (keys 1, 2, 3, ..., value "x")
until the first eviction and then --past-eviction percent further (steady-state
eviction: each new item evicts an old one), waits until the hash table has
finished growing, and reads
    /proc/<pid>/status   VmRSS (resident now), VmHWM (peak), RssAnon, RssFile,
                         VmPTE (page tables: kernel memory, not in the RSS)
    /proc/<pid>/smaps    the biggest anonymous mappings (what the RSS is)
    stats                curr_items, evictions, hash_power_level, hash_bytes,
                         hash_is_expanding, limit_maxbytes
    stats slabs          total_malloced (item memory the server has taken)
then stops it and writes
    results/overhead.csv   one row per configuration and limit
    results/overhead.md    the table, how to read it, how it was run
    results/overhead.png   RSS / limit against the limit (gnuplot)

Configurations (--configs, comma-separated, in this order by default):
    memcached     Debian's memcached 1.6.18, defaults
    memcached-C   memcached -C -n 5 -f 1.05
    stock         tinycached, no flags (memcached 1.6's item layout)
    compact       tinycached -o preset=compact
    tiny          tinycached -o preset=tiny (integer-key tiny items in 8-byte
                  index slots; its -m covers that slot table too)
Limits: --limits 64,256,1024,4096 (MiB). -m 4096 takes long (compact holds
about 270M items); run subsets and combine them with --merge, which keeps the
rows of configurations and limits not run now from the existing CSV.

Usage: experiments/overhead.py [--limits 64,256,1024] [--configs stock,compact]
                            [--merge] [--build-dir build] [--out-dir results]
Exit status: 0 if every run filled, settled and verified, 1 otherwise (the
results are written either way).
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: servers and provenance)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20

# name -> (label, server kind, flags)
CONFIGS = {
    "memcached": ("memcached 1.6.18 defaults", "memcached", []),
    "memcached-C": ("memcached 1.6.18 -C -n 5 -f 1.05", "memcached", ["-C", "-n", "5", "-f", "1.05"]),
    "stock": ("tinycached stock (no flags)", "tinycached", []),
    "compact": ("tinycached -o preset=compact", "tinycached", ["-o", "preset=compact"]),
    "tiny": ("tinycached -o preset=tiny", "tinycached", ["-o", "preset=tiny"]),
}
DEFAULT_LIMITS = [64, 256, 1024, 4096]
# memcached 1.6 (and tinycached) grow the hash table when items > 1.5 x buckets.
HASH_GROWTH_SLACK_S = 3.0   # a table below that threshold that has not grown for this long is done
HASH_POLL_S = 0.25

COLUMNS = [
    "config", "configuration", "server_flags", "limit_mb",
    "items_first_eviction", "items_per_mib", "past_eviction_sent", "items_end", "evictions_end",
    "rss_empty_kb", "rss_first_eviction_kb", "rss_fill_end_kb", "rss_kb", "hwm_kb",
    "rss_anon_kb", "rss_file_kb", "pte_kb", "rss_over_limit", "hwm_over_limit",
    "allin_bytes_per_item", "growth_bytes_per_item",
    "hash_power_level", "hash_bytes", "hash_is_expanding", "total_malloced", "limit_maxbytes",
    "inline_items", "inline_table_bytes", "index_bytes",
    "other_kb", "big_mappings_mib", "index_growths", "fill_seconds", "past_eviction_seconds",
    "hash_wait_seconds", "run_seconds", "verify_misses", "verify_corrupt", "error",
    "commit", "date", "machine", "cpu", "nproc", "load_before", "server_version", "command",
]


# ---------------------------------------------------------------------------
# /proc readings.

def proc_status(pid):
    """VmRSS, VmHWM, RssAnon, RssFile, VmPTE of `pid` in kB (missing ones absent)."""
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmPTE"):
                values[name] = int(rest.split()[0])
    return values


def big_mappings(pid, top=4, min_kb=1024):
    """RSS (MiB) of the `top` most resident anonymous mappings of `pid`, largest
    first, as "1024.0;256.0;...". The kernel merges adjacent anonymous mappings
    with the same protection, so two tables allocated back to back show as one."""
    found = []
    current = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    parts = line.split()
                    current = len(parts) < 6 or parts[5].startswith("[heap")
                elif line.startswith("Rss:") and current:
                    kb = int(line.split()[1])
                    if kb >= min_kb:
                        found.append(kb)
    except OSError:
        return ""
    found.sort(reverse=True)
    return ";".join("%.1f" % (kb / 1024.0) for kb in found[:top])


def number(values, name):
    try:
        return int(values[name])
    except (KeyError, ValueError):
        return None


# ---------------------------------------------------------------------------
# One run.

class GrowthWatch(threading.Thread):
    """Polls `stats` every POLL_S during a run and notes each hash table
    doubling: the new power, the items when it was first seen growing, and how
    long hash_is_expanding stayed 1 (a doubling shorter than a poll shows as
    seen only by its new power, without a duration)."""
    POLL_S = 0.5

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_event = threading.Event()
        self.growths = []  # [power, items when seen, seconds or None]
        self.last_power = None
        self.growing = None  # (time seen, index in growths)

    def poll(self):
        """One `stats` reading; False when the server cannot be read."""
        try:
            s = lab.stats_values(self.port)
        except OSError:
            return False
        power, items = number(s, "hash_power_level"), number(s, "curr_items")
        expanding = number(s, "hash_is_expanding") or 0
        now = time.time()
        if power is None:
            return False
        if self.last_power is not None and power > self.last_power:
            if self.growing is not None:  # it ended between two polls, and the next began
                self.growths[self.growing[1]][2] = now - self.growing[0]
                self.growing = None
            for skipped in range(self.last_power + 1, power):  # begun and ended between polls
                self.growths.append([skipped, None, None])
            self.growths.append([power, items, None])
            if expanding:
                self.growing = (now, len(self.growths) - 1)
        elif self.growing is not None and not expanding:
            self.growths[self.growing[1]][2] = now - self.growing[0]
            self.growing = None
        self.last_power = power
        return True

    def run(self):
        while not self.stop_event.is_set() and self.poll():
            self.stop_event.wait(self.POLL_S)

    def finish(self):
        self.stop_event.set()
        self.join(10)
        self.poll()  # closes a doubling that ended since the last poll
        return ";".join("2^%d%s: %s" % (p, " at %s items" % items if items is not None else "",
                                        "%.1f s" % sec if sec is not None else "< poll")
                        for p, items, sec in self.growths)


def wait_for_hash_table(port, max_seconds):
    """Waits until the hash table is not growing and has caught up with the
    items (memcached's rule: buckets x 1.5 >= items; with the tiny engine only
    the items not held inline, curr_items - inline_items, are in it; its slot
    table grows a page at a time, in step with the sets), or has not grown for
    HASH_GROWTH_SLACK_S while below that (a server with another rule), or
    max_seconds pass. Returns (seconds waited, last `stats`)."""
    start = time.time()
    last_power, last_change = None, start
    while True:
        s = lab.stats_values(port)
        power = number(s, "hash_power_level")
        if power is None:
            return time.time() - start, s
        if power != last_power:
            last_power, last_change = power, time.time()
        items = (number(s, "curr_items") or 0) - (number(s, "inline_items") or 0)
        expanding = number(s, "hash_is_expanding") or 0
        behind = 2 * items > (3 << power) and power < 32
        now = time.time()
        if not expanding and (not behind or now - last_change > HASH_GROWTH_SLACK_S):
            return now - start, s
        if now - start > max_seconds:
            return now - start, s
        time.sleep(HASH_POLL_S)


def run_one(name, limit_mb, binary, fill, args):
    label, _, flags = CONFIGS[name]
    row = {"config": name, "configuration": label, "server_flags": " ".join(["-m", str(limit_mb)] + flags),
           "limit_mb": limit_mb, "load_before": lab.load_average()}
    started = time.time()
    server = lab.Server(binary, ["-m", str(limit_mb)] + flags)
    try:
        server.start()
        pid = server.proc.pid
        watch = GrowthWatch(server.port)
        watch.start()
        argv = [fill, "--port", str(server.port), "--pid", str(pid), "--label", label,
                "--past-eviction", "%g%%" % args.past_eviction, "--hash-wait-ms", "0",
                "--timeout-ms", "600000", "--json"]
        if not args.no_verify:
            argv.append("--verify")
        result, done = lab.run_client(argv, server, args.fill_timeout, "the fill", "fill")
        problems = []
        if done.returncode != 0:
            problems.append("fill exited %d: %s" % (done.returncode, done.stderr.strip()))
        if result.get("stop_reason") != "eviction":
            problems.append("fill stopped by %s, not an eviction" % result.get("stop_reason"))
        row.update({
            "items_first_eviction": result["items"],
            "items_per_mib": result["items"] / limit_mb,
            "past_eviction_sent": result.get("past_eviction_sent"),
            "items_end": result.get("items_end", result["items"]),
            "evictions_end": result.get("evictions_end", result["evictions"]),
            "rss_empty_kb": result.get("rss_before_kb"),
            "rss_first_eviction_kb": result.get("rss_first_eviction_kb"),
            "rss_fill_end_kb": result.get("rss_after_kb"),
            "fill_seconds": result.get("seconds"),
            "past_eviction_seconds": result.get("past_eviction_seconds"),
            "verify_misses": result.get("verify_misses"),
            "verify_corrupt": result.get("verify_corrupt"),
        })
        waited, s = wait_for_hash_table(server.port, args.hash_wait)
        row["index_growths"] = watch.finish()
        status = proc_status(pid)
        slabs = lab.stats_values(server.port, b"stats slabs")
        row.update({
            "hash_wait_seconds": waited,
            "rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM"),
            "rss_anon_kb": status.get("RssAnon"), "rss_file_kb": status.get("RssFile"),
            "pte_kb": status.get("VmPTE"),
            "big_mappings_mib": big_mappings(pid),
            "hash_power_level": number(s, "hash_power_level"),
            "hash_bytes": number(s, "hash_bytes"),
            "hash_is_expanding": number(s, "hash_is_expanding"),
            "limit_maxbytes": number(s, "limit_maxbytes"),
            "total_malloced": number(slabs, "total_malloced"),
            "items_end": number(s, "curr_items"),
            "inline_items": number(s, "inline_items"),
            "inline_table_bytes": number(s, "inline_table_bytes"),
            "index_bytes": number(s, "index_bytes"),
        })
        if row["hash_is_expanding"]:
            problems.append("hash table still growing after %.0f s (--hash-wait)" % waited)
        if row["verify_corrupt"]:
            problems.append("%s corrupt values" % row["verify_corrupt"])
        row["error"] = "; ".join(problems)
        derive(row)
    finally:
        server.stop()
    row["run_seconds"] = time.time() - started
    return row


def derive(row):
    """Ratios and per-item figures from the raw readings (also for merged rows)."""
    limit = row["limit_mb"] * MIB
    rss = row.get("rss_kb")
    items = row.get("items_end") or row.get("items_first_eviction")
    if rss is not None:
        row["rss_over_limit"] = rss * 1024.0 / limit
        if items:
            row["allin_bytes_per_item"] = rss * 1024.0 / items
            if row.get("rss_empty_kb") is not None:
                row["growth_bytes_per_item"] = (rss - row["rss_empty_kb"]) * 1024.0 / items
        if row.get("total_malloced") is not None and row.get("hash_bytes") is not None:
            row["other_kb"] = rss - (row["total_malloced"] + row["hash_bytes"]) / 1024.0
    if row.get("hwm_kb") is not None:
        row["hwm_over_limit"] = row["hwm_kb"] * 1024.0 / limit


# ---------------------------------------------------------------------------
# CSV in and out.

INT_COLUMNS = {"limit_mb", "items_first_eviction", "past_eviction_sent", "items_end", "evictions_end",
               "rss_empty_kb", "rss_first_eviction_kb", "rss_fill_end_kb", "rss_kb", "hwm_kb",
               "rss_anon_kb", "rss_file_kb", "pte_kb", "hash_power_level", "hash_bytes", "hash_is_expanding",
               "total_malloced", "limit_maxbytes", "inline_items", "inline_table_bytes", "index_bytes",
               "verify_misses", "verify_corrupt", "nproc"}
FLOAT_COLUMNS = {"items_per_mib", "rss_over_limit", "hwm_over_limit", "allin_bytes_per_item",
                 "growth_bytes_per_item", "other_kb", "fill_seconds", "past_eviction_seconds",
                 "hash_wait_seconds", "run_seconds"}


def read_csv(path):
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for k, v in raw.items():
                if k is None:
                    continue
                if v == "":
                    row[k] = None
                elif k in INT_COLUMNS:
                    row[k] = int(float(v))
                elif k in FLOAT_COLUMNS:
                    row[k] = float(v)
                else:
                    row[k] = v
            rows.append(row)
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([lab.csv_value(r.get(c)) for c in COLUMNS])


def sort_rows(rows):
    order = list(CONFIGS)
    return sorted(rows, key=lambda r: (order.index(r["config"]) if r["config"] in order else 99,
                                       r["limit_mb"]))


# ---------------------------------------------------------------------------
# Markdown and plot.

def fmt(value, spec="%.1f"):
    return "" if value is None else spec % value


def mib(kb_or_none, from_bytes=False):
    if kb_or_none is None:
        return None
    return kb_or_none / (MIB if from_bytes else 1024.0)


def write_markdown(path, rows, meta, notes, png_name):
    runs = sorted({(r.get("commit") or "", r.get("date") or "") for r in rows}, key=lambda x: x[1])
    machines = sorted({"%s, %s, %s CPUs" % (r.get("machine"), r.get("cpu"), r.get("nproc")) for r in rows})
    versions = sorted({r.get("server_version") or "" for r in rows} - {""})
    commands = []
    for r in sorted(rows, key=lambda r: r.get("date") or ""):
        if r.get("command") and r["command"] not in commands:
            commands.append(r["command"])
    lines = [
        "# Memory beyond the limit: RSS of a full server, -m 64 to -m %d" % max(r["limit_mb"] for r in rows),
        "",
        "- commit: %s" % ", ".join("`%s` (%s)" % run for run in runs),
        "- machine: %s" % "; ".join(machines),
        "- servers: %s" % "; ".join(versions),
        "- command: %s" % "; ".join("`%s`" % c for c in commands),
        "",
        "Each server starts fresh with `-m <limit> -U 0 -l 127.0.0.1` plus its flags and is filled "
        "by `build/experiments/fill` with keys `1`, `2`, `3`, ... and the value `x` (flags 0, no "
        "expiry, pipelined `set ... noreply`) until the first eviction, then with %s%% more items "
        "past it (each of which evicts one), and is read once its hash table has finished growing."
        % meta["past_eviction"],
        "",
        "| configuration | -m MiB | items at first eviction | items / MiB | RSS MiB | peak (VmHWM) MiB "
        "| RSS / limit | all-in B/item | hash power | hash MiB | total_malloced MiB | other MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.get("rss_kb") is None:
            lines.append("| %s | %d | failed | | | | | | | | | |" % (r["configuration"], r["limit_mb"]))
            continue
        flag = " *" if r.get("hash_is_expanding") else ""
        lines.append("| %s | %d | %s | %s | %s | %s | %s× | %s | %s | %s | %s | %s |" % (
            r["configuration"], r["limit_mb"], fmt(r.get("items_first_eviction"), "%d"),
            fmt(r.get("items_per_mib"), "%.0f"), fmt(mib(r.get("rss_kb")), "%.0f") + flag,
            fmt(mib(r.get("hwm_kb")), "%.0f"), fmt(r.get("rss_over_limit"), "%.3f"),
            fmt(r.get("allin_bytes_per_item"), "%.1f"), fmt(r.get("hash_power_level"), "%d"),
            fmt(mib(r.get("hash_bytes"), True), "%.0f"), fmt(mib(r.get("total_malloced"), True), "%.0f"),
            fmt(mib(r.get("other_kb")), "%.1f")))
    lines.append("")
    if any(r.get("hash_is_expanding") for r in rows):
        lines += ["\\* the hash table was still growing when the RSS was read (both tables resident).", ""]
    if png_name:
        lines += ["![RSS / limit against the limit](%s)" % png_name, ""]
    lines += [
        "## How to read it",
        "",
        "- *items at first eviction*: `curr_items` at the first `stats` showing an eviction; "
        "*items / MiB* divides it by the limit.",
        "- *RSS*: `VmRSS` of the server after the fill (and the %s%% past the first eviction), once "
        "`hash_is_expanding` is 0 and the table has caught up with the items; *peak*: `VmHWM`, the "
        "most the process was ever resident, which includes the moment the hash table is doubled "
        "(old and new table both held)." % meta["past_eviction"],
        "- *RSS / limit*: how far beyond `-m` the process really goes; *all-in B/item*: RSS / "
        "`curr_items` (everything the process holds, divided by the items it holds).",
        "- *hash power*, *hash MiB*: `stats` `hash_power_level` and `hash_bytes` (the index: 2^power "
        "buckets of 8 bytes, or of the page-reference width in tinycached's compact layouts: 3 bytes "
        "up to -m 84, 4 bytes above). Both servers double the table when items > 1.5 × buckets, so "
        "after a fill the index costs between 0.67 and 1.33 buckets per item.",
        "- *total_malloced*: `stats slabs` `total_malloced`, the item memory the server has taken "
        "(1 MiB slab pages; it may pass the limit by the first page of a class).",
        "- *other*: RSS − total_malloced − hash bytes: the binary and its libraries (file-backed, "
        "`RssFile`), thread stacks, allocator and connection buffers, per-thread statistics, "
        "per-page arrays; fixed per process, not per item.",
    ]
    if any(r.get("inline_items") is not None for r in rows):
        lines += [
            "- `-o preset=tiny`: a tiny item is one 8-byte slot of the engine's own table, whose "
            "pages come out of `-m` like slab pages: *total_malloced* includes that table "
            "(`inline_table_bytes`), and *hash power* / *hash MiB* are only the index of the items "
            "not held inline (see the last table).",
        ]
    lines.append("")
    # Fixed overheads: the empty server and the unexplained remainder.
    lines += [
        "## Fixed overheads",
        "",
        "| configuration | -m MiB | RSS empty MiB | of which file-backed MiB | other at full MiB | "
        "page tables MiB | RSS at first eviction MiB | RSS at end of fill MiB | waited for the index s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.get("rss_kb") is None:
            continue
        lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            r["configuration"], r["limit_mb"], fmt(mib(r.get("rss_empty_kb"))),
            fmt(mib(r.get("rss_file_kb"))), fmt(mib(r.get("other_kb"))), fmt(mib(r.get("pte_kb"))),
            fmt(mib(r.get("rss_first_eviction_kb")), "%.0f"), fmt(mib(r.get("rss_fill_end_kb")), "%.0f"),
            fmt(r.get("hash_wait_seconds"), "%.0f")))
    lines += [
        "",
        "*RSS empty*: `VmRSS` right after start-up; *file-backed*: `RssFile` at full (the binary and "
        "shared libraries); *page tables*: `VmPTE` at full, kernel memory for the process's page "
        "tables (about 2 MiB per GiB resident in 4 KiB pages), not counted in the RSS; "
        "*RSS at first eviction* and *at end of fill* are read by `fill` without "
        "waiting for the index, so a table being doubled shows there; *waited for the index*: how "
        "long after the fill the hash table took to settle.",
        "",
    ]
    tiny_rows = [r for r in rows if r.get("inline_items") is not None and r.get("rss_kb") is not None]
    if tiny_rows:
        lines += [
            "## The tiny engine's table",
            "",
            "| configuration | -m MiB | items at end | of which inline | slot table MiB | "
            "B/slot-table item | index_bytes MiB | total_malloced MiB | RSS − limit MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in tiny_rows:
            inline = r.get("inline_items")
            table = r.get("inline_table_bytes")
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                r["configuration"], r["limit_mb"], fmt(r.get("items_end"), "%d"), fmt(inline, "%d"),
                fmt(mib(table, True)), fmt(table / inline if table and inline else None, "%.2f"),
                fmt(mib(r.get("index_bytes"), True)), fmt(mib(r.get("total_malloced"), True)),
                fmt(r["rss_kb"] / 1024.0 - r["limit_mb"])))
        lines += [
            "",
            "`stats` `inline_items` (items held in a slot), `inline_table_bytes` (the slot table, "
            "inside `-m`), `index_bytes` (slot table + the index of the other items), read with the "
            "RSS. *RSS − limit*: what the process holds beyond `-m`.",
            "",
        ]
    lines += [
        "## How it was run",
        "",
        "```",
        "cmake --build build --target tinycached fill",
        "experiments/overhead.py                                   # every configuration and limit",
        "experiments/overhead.py --limits 64,256,1024              # a subset ...",
        "experiments/overhead.py --limits 4096 --configs compact --merge   # ... and more rows added",
        "```",
        "",
        "Runs: configuration, limit, fill seconds (to the first eviction / past it), seconds waited "
        "for the index after the fill, whole run seconds, load average at the start, and the hash "
        "table doublings seen (`stats` polled every %.1f s during the run: the new size, the "
        "items at the first poll that saw it, how long `hash_is_expanding` stayed 1, to a poll; "
        "`< poll` if it began and ended between two polls):" % GrowthWatch.POLL_S,
        "",
    ]
    for r in rows:
        lines.append("- %s -m %d: %s / %s s, %s s, %s s, load %s; doublings: %s%s" % (
            r["configuration"], r["limit_mb"], fmt(r.get("fill_seconds")),
            fmt(r.get("past_eviction_seconds")), fmt(r.get("hash_wait_seconds")),
            fmt(r.get("run_seconds"), "%.0f"), r.get("load_before") or "?",
            (r.get("index_growths") or "none").replace(";", ", "),
            "; " + r["error"] if r.get("error") else ""))
    lines.append("")
    if notes:
        lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def write_plot(path, rows):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    rows = [r for r in rows if r.get("rss_over_limit") is not None]
    names = [n for n in CONFIGS if any(r["config"] == n for r in rows)]
    if not names:
        return False
    colours = ["#888888", "#444444", "#4a7ebb", "#d9822b", "#2e8b57"]
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, name in enumerate(names):
            data = os.path.join(tmp, "%d.dat" % i)
            with open(data, "w") as out:
                for r in sorted((r for r in rows if r["config"] == name), key=lambda r: r["limit_mb"]):
                    out.write("%d %.4f %.4f\n" % (r["limit_mb"], r["rss_over_limit"],
                                                  r.get("hwm_over_limit") or float("nan")))
            colour = colours[list(CONFIGS).index(name) % len(colours)]
            title = CONFIGS[name][0].replace("'", "")
            plots.append("'%s' using 1:2 with linespoints lw 2 pt 7 lc rgb '%s' title '%s'"
                         % (data, colour, title))
            plots.append("'%s' using 1:3 with linespoints lw 1 dt 2 pt 6 lc rgb '%s' notitle"
                         % (data, colour))
        limits = sorted({r["limit_mb"] for r in rows})
        top = max(max(r["rss_over_limit"], r.get("hwm_over_limit") or 0) for r in rows)
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        script = "\n".join([
            "set terminal %s size 900,600 %s" % (terminal, font),
            "set output '%s'" % path.replace("'", "''"),
            "set title 'RSS of a full server / its -m limit (solid: VmRSS settled; dashed: VmHWM peak)'",
            "set xlabel '-m limit (MiB)'",
            "set ylabel 'RSS / limit'",
            "set logscale x 2",
            "set xtics (%s)" % ", ".join("'%d' %d" % (l, l) for l in limits),
            "set xrange [%f:%f]" % (limits[0] / 1.4, limits[-1] * 1.4),
            "set yrange [1:%f]" % max(1.2, top * 1.05),
            "set grid",
            "set key top right",
            "plot " + ", ".join(plots),
        ])
        return lab.run_gnuplot(script)


# ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(
        description="RSS of a full server beyond its -m limit, per configuration and limit.")
    parser.add_argument("--limits", default=",".join(map(str, DEFAULT_LIMITS)),
                        type=lambda t: lab.parse_list(t, int, what="limit"),
                        help="comma-separated -m values in MiB (default 64,256,1024,4096)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        type=lambda t: lab.parse_list(t, str, CONFIGS, "configuration"),
                        help="comma-separated configurations (default %s)" % ",".join(CONFIGS))
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of configurations/limits not run now from the existing CSV")
    parser.add_argument("--past-eviction", type=float, default=5.0, metavar="PERCENT",
                        help="keep filling this percentage of the items past the first eviction "
                             "(default 5)")
    parser.add_argument("--hash-wait", type=float, default=1800, metavar="SECONDS",
                        help="longest wait for the hash table to finish growing (default 1800)")
    parser.add_argument("--fill-timeout", type=float, default=4 * 3600, metavar="SECONDS",
                        help="longest a fill may take (default 4 h)")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                        help="CMake build directory with experiments/fill and server/tinycached "
                             "(default <repo>/build)")
    parser.add_argument("--out-dir", default=os.path.join(REPO, "results"),
                        help="where overhead.{csv,md,png} go (default <repo>/results)")
    parser.add_argument("--name", default="overhead", help="output file stem (default overhead)")
    parser.add_argument("--tinycached", metavar="PATH",
                        help="tinycached binary (default <build-dir>/server/tinycached)")
    parser.add_argument("--commit", metavar="TEXT",
                        help="commit to record for the binaries (default: the working tree's, "
                             "`git rev-parse --short HEAD`, -dirty if tracked files changed); for "
                             "a tinycached built from another tree, e.g. an export of one commit")
    parser.add_argument("--memcached", default="/usr/bin/memcached",
                        help="memcached binary (default /usr/bin/memcached)")
    parser.add_argument("--no-verify", action="store_true", help="skip fill's re-read of 100000 keys")
    parser.add_argument("--no-build", action="store_true", help="never run cmake")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the notes of the .md (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args()
    if args.past_eviction <= 0:
        parser.error("--past-eviction must be positive")

    runs = [(name, limit) for limit in args.limits for name in args.configs]
    build_dir = os.path.abspath(args.build_dir)
    need_tc = not args.tinycached and any(CONFIGS[n][1] == "tinycached" for n in args.configs)
    paths = lab.ensure_built(build_dir, ["fill"] + (["tinycached"] if need_tc else []),
                             not args.no_build and not args.list)
    fill, tinycached = paths["fill"], paths["tinycached"]
    if args.tinycached:
        tinycached = os.path.abspath(args.tinycached)
    binaries = {"memcached": args.memcached, "tinycached": tinycached}
    if args.list:
        for name, limit in runs:
            kind = CONFIGS[name][1]
            print("%-12s -m %-5d %s %s" % (name, limit, binaries[kind], " ".join(CONFIGS[name][2])))
        return 0
    if not os.access(fill, os.X_OK):
        lab.log("no fill client at %s (cmake --build %s --target fill)" % (fill, build_dir))
        return 1

    run_stamp = lab.run_stamp(args.commit)
    versions = {}
    command = " ".join(["experiments/overhead.py"] + sys.argv[1:])
    rows = []
    failed = False
    started = time.time()
    for name, limit in runs:
        kind = CONFIGS[name][1]
        binary = binaries[kind]
        if binary not in versions:
            versions[binary] = lab.version_of(binary) if os.access(binary, os.X_OK) else None
        stamp = dict(lab.stamp_columns(run_stamp),
                     server_version="%s: %s" % (binary, versions[binary]))
        if versions[binary] is None:
            lab.log("%s -m %d: no binary at %s, skipped" % (name, limit, binary))
            failed = True
            continue
        lab.log("%s -m %d: starting (load %s)" % (name, limit, lab.load_average()))
        try:
            row = run_one(name, limit, binary, fill, args)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            row = {"config": name, "configuration": CONFIGS[name][0], "limit_mb": limit,
                   "server_flags": " ".join(["-m", str(limit)] + CONFIGS[name][2]),
                   "error": str(e).replace("\n", " ")}
        row.update(stamp)
        row["command"] = command
        if row.get("error"):
            failed = True
            lab.log("%s -m %d: PROBLEM: %s" % (name, limit, row["error"]))
        if row.get("rss_kb") is not None:
            lab.log("%s -m %d: %d items, RSS %.0f MiB (%.3fx), peak %.0f MiB, %.1f B/item, hash 2^%s, "
                "fill %.0f s, index wait %.0f s, run %.0f s" % (
                    name, limit, row["items_first_eviction"], row["rss_kb"] / 1024.0,
                    row["rss_over_limit"], row["hwm_kb"] / 1024.0, row["allin_bytes_per_item"],
                    row["hash_power_level"], row["fill_seconds"], row["hash_wait_seconds"],
                    row["run_seconds"]))
        rows.append(row)
    elapsed = time.time() - started

    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, args.name)
    if args.merge and os.path.exists(stem + ".csv"):
        done_now = {(r["config"], r["limit_mb"]) for r in rows}
        kept = [r for r in read_csv(stem + ".csv") if (r.get("config"), r.get("limit_mb")) not in done_now]
        for r in kept:
            derive(r)
        lab.log("merged %d rows from %s.csv" % (len(kept), stem))
        rows = kept + rows
    rows = sort_rows(rows)
    notes = list(args.note)
    notes.append("this invocation: %d runs in %.0f s (%.1f min)." % (len(runs), elapsed, elapsed / 60))
    total = sum(r.get("run_seconds") or 0 for r in rows)
    if len(rows) > len(runs):
        notes.append("all %d rows: %.0f s (%.1f min) of runs in all." % (len(rows), total, total / 60))
    write_csv(stem + ".csv", rows)
    png = write_plot(stem + ".png", rows)
    write_markdown(stem + ".md", rows, {"past_eviction": "%g" % args.past_eviction},
                   notes, os.path.basename(stem + ".png") if png else None)
    lab.log("wrote %s.{csv,md%s}; %d runs in %.0f s" % (stem, ",png" if png else "", len(runs), elapsed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
