#!/usr/bin/env python3
"""Warm restart (-e): how long an orderly stop and the next start take, and whether every item
comes back.

For each configuration: start the server with -e, fill it with N counters (keys 1..N, 3-digit
numbers) and 100,000 text-keyed items (`session:<16 hex digits>`, 16 letters), read curr_items and RSS, send SIGUSR1 and time the stop until the process exits, start
it again with the same flags and time it until it answers `stats`, then re-read every key
(`fill --verify-only`, every key, each value checked) and compare curr_items. memcached 1.6.18's
own -e (its memory file on /dev/shm, as its documentation asks) runs the stock configuration
beside ours.

Writes results/restart.md and results/restart.csv.

Usage: experiments/restart.py [--configs tiny-8m,compact-8m,stock-8m,memcached-8m,tiny-125m]
                              [--keep]   (rows of configs not run now stay, with their commit)
"""
import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

TEXT_ITEMS = 100000
TEXT_FLAGS = ["--key-prefix", "session:", "--key-shape", "hex:16", "--value-shape", "text:16"]
COUNTER_FLAGS = ["--value-shape", "digits:3"]

# name: (server, flags, counters). -m leaves room: nothing is evicted, so every item must return.
CONFIGS = {
    "tiny-8m": ("tinycached", ["-o", "preset=tiny", "-m", "128"], 8000000),
    "compact-8m": ("tinycached", ["-o", "preset=compact", "-m", "256"], 8000000),
    "stock-8m": ("tinycached", ["-m", "1024"], 8000000),
    "memcached-8m": ("memcached", ["-m", "1024"], 8000000),
    # tiny at -m 1024 holds about 128M such counters before its first eviction; the text
    # items take overflow pages, so 125M leave them room.
    "tiny-125m": ("tinycached", ["-o", "preset=tiny", "-m", "1024"], 125000000),
}


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def fill(fill_bin, server, flags, timeout=3600):
    argv = [fill_bin, "--port", str(server.port), "--json"] + flags
    result, done = lab.run_client(argv, server, timeout, "fill", "fill")
    return result, done.returncode


def seconds_in(log, what):
    """The seconds of tinycached's "warm restart: ... items <what> ... in S s" line, or None."""
    m = re.search(r"warm restart: \d+ items %s .* in ([0-9.]+) s" % what, log)
    return float(m.group(1)) if m else None


def run_config(name, paths, memcached, workdir):
    kind, flags, counters = CONFIGS[name]
    binary = paths["tinycached"] if kind == "tinycached" else memcached
    # memcached maps its items from the file: a RAM disk, as its documentation says.
    memfile = os.path.join("/dev/shm" if kind == "memcached" else workdir, name + ".items")
    for leftover in (memfile, memfile + ".meta"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    server_flags = flags + ["-t", "2", "-e", memfile]
    row = {"config": name, "server": lab.version_of(binary), "flags": " ".join(flags),
           "counters": counters, "text_items": TEXT_ITEMS}

    first = lab.Server(binary, server_flags).start()
    # Text items first: under tiny they take overflow pages, which a full slot table would
    # have to give up (evicting slots) if they came last.
    for what, extra, n in (("text items", TEXT_FLAGS, TEXT_ITEMS),
                           ("counters", COUNTER_FLAGS, counters)):
        lab.log("%s: filling %d %s" % (name, n, what))
        r, code = fill(paths["fill"], first, extra + ["--max-items", str(n)])
        if r["evictions"] or r["sent"] != n:
            raise RuntimeError("%s: %s fill evicted or stopped early: %s" % (name, what, r))
    row["items_before"] = int(lab.stats_values(first.port)["curr_items"])
    row["rss_before_mib"] = round(rss_mib(first.proc.pid), 1)

    lab.log("%s: SIGUSR1" % name)
    t0 = time.monotonic()
    first.proc.send_signal(signal.SIGUSR1)
    first.proc.wait(3600)
    row["stop_s"] = round(time.monotonic() - t0, 2)
    row["save_s"] = seconds_in(first.stderr_text(), "saved")
    first.stop()
    row["file_mib"] = round(os.path.getsize(memfile) / 2**20, 1)

    if kind == "memcached":
        # memcached 1.6.18 refuses a memory file whose stop_time is not in the past ("restart
        # incompatible due to setting for [stop_time]"): a restart within the same second as
        # the stop starts empty. Not counted in the start time.
        time.sleep(2)
    lab.log("%s: starting again" % name)
    t0 = time.monotonic()
    second = lab.Server(binary, server_flags)
    second.start_timeout = 3600  # it answers once every item is back
    second.start()
    row["start_s"] = round(time.monotonic() - t0, 2)
    row["restore_s"] = seconds_in(second.stderr_text(), "restored")
    row["items_after"] = int(lab.stats_values(second.port)["curr_items"])
    row["rss_after_mib"] = round(rss_mib(second.proc.pid), 1)
    lab.log("%s: re-reading every key" % name)
    missing = wrong = 0
    for extra, n in ((COUNTER_FLAGS, counters), (TEXT_FLAGS, TEXT_ITEMS)):
        r, code = fill(paths["fill"], second,
                       extra + ["--verify-only", str(n), "--verify-sample", "0"])
        missing += r["verify_misses"] or 0
        wrong += r["verify_corrupt"] or 0
    row["missing"] = missing
    row["wrong"] = wrong
    second.proc.kill()  # not an orderly stop: nothing more is written
    second.proc.wait()
    second.stop()
    for leftover in (memfile, memfile + ".meta"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    lab.log("%s: %s" % (name, row))
    return row


def kept_rows(out_dir, rerun):
    """The rows of an earlier results/restart.csv for the configs not run now (--keep), each
    with the commit, date and machine it ran on."""
    path = os.path.join(out_dir, "restart.csv")
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["config"] in rerun:
                continue
            for key in ("counters", "text_items", "items_before", "items_after", "missing",
                        "wrong"):
                row[key] = int(row[key])
            for key in ("file_mib", "stop_s", "start_s", "rss_before_mib", "rss_after_mib"):
                row[key] = float(row[key])
            for key in ("save_s", "restore_s"):
                row[key] = float(row[key]) if row[key] else None
            rows.append(row)
    return rows


def write(rows, stamp, out_dir):
    columns = ["config", "server", "flags", "counters", "text_items", "items_before",
               "items_after", "missing", "wrong", "file_mib", "stop_s", "save_s", "start_s",
               "restore_s", "rss_before_mib", "rss_after_mib"]
    with open(os.path.join(out_dir, "restart.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, columns + list(lab.stamp_columns(stamp)))
        w.writeheader()
        for row in rows:
            # A kept row keeps its own stamp.
            own = {k: row[k] for k in lab.stamp_columns(stamp) if k in row}
            w.writerow({**{c: lab.csv_value(row.get(c)) for c in columns},
                        **(own or lab.stamp_columns(stamp))})
    lines = ["# Warm restart (-e): stop, start, and every item back", ""]
    lines += lab.stamp_lines(stamp)
    kept = [r for r in rows if "commit" in r]
    if kept:
        lines += ["- kept from an earlier run (`--keep`): %s" % "; ".join(
            "%s at `%s`, %s" % (r["config"], r["commit"], r["date"]) for r in kept)]
    lines += ["- command: `experiments/restart.py --configs %s`" % ",".join(r["config"] for r in rows),
              "",
              "Each server is filled with N counters (keys 1..N, 3-digit numbers) and %d text-keyed "
              "items (`session:<16 hex>`, 16 letters), stopped with SIGUSR1, started again with "
              "the same flags and file, and every key is re-read and checked (`fill --verify-only`). "
              "*stop*: SIGUSR1 to exit; *start*: exec to the first `stats` answer; *save* and "
              "*restore*: the server's own log line. memcached keeps its items in the file all "
              "along (on /dev/shm); tinycached writes them at the stop (to the local disk)."
              % TEXT_ITEMS, "",
              "| config | flags | items before | after | missing | wrong | file MiB | stop s "
              "(save) | start s (restore) | RSS before → after MiB |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        save = "" if r["save_s"] is None else " (%.2f)" % r["save_s"]
        restore = "" if r["restore_s"] is None else " (%.2f)" % r["restore_s"]
        lines.append("| %s | `%s` | %d | %d | %d | %d | %.1f | %.2f%s | %.2f%s | %.0f → %.0f |" % (
            r["config"], r["flags"], r["items_before"], r["items_after"], r["missing"],
            r["wrong"], r["file_mib"], r["stop_s"], save, r["start_s"], restore,
            r["rss_before_mib"], r["rss_after_mib"]))
    with open(os.path.join(out_dir, "restart.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(lab.REPO, "build"))
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--configs", default=",".join(CONFIGS),
                   type=lambda t: lab.parse_list(t, str, CONFIGS, "config"))
    p.add_argument("--work-dir", default=None,
                   help="where tinycached's -e files go (default: a temporary directory)")
    p.add_argument("--out-dir", default=os.path.join(lab.REPO, "results"))
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--keep", action="store_true",
                   help="keep the rows of results/restart.csv for the configs not run now")
    args = p.parse_args()
    paths = lab.ensure_built(args.build_dir, ["tinycached", "fill"], not args.no_build)
    stamp = lab.run_stamp()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work_dir) as workdir:
        for name in args.configs:
            rows.append(run_config(name, paths, args.memcached, workdir))
    if args.keep:
        rows += kept_rows(args.out_dir, set(args.configs))
        rows.sort(key=lambda r: list(CONFIGS).index(r["config"]))
    write(rows, stamp, args.out_dir)
    bad = [r["config"] for r in rows if r["missing"] or r["wrong"] or
           r["items_after"] != r["items_before"]]
    if bad:
        lab.log("items did not all come back: %s" % ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
