#!/usr/bin/env python3
"""The fill experiment through twemproxy: three servers behind Debian's nutcracker.

For each configuration — Debian's memcached 1.6.18 at its defaults, then tinycached with
every preset `tinycached --list-presets` prints — starts three servers with -m 64 on free
127.0.0.1 ports and one nutcracker in front of them, configured as README.md's "Running a
cluster" shows (ketama over md5, servers named node-a, node-b, node-c). Then
experiments/fill sends keys 1, 2, 3, ... with value "x" through the proxy (pipelined
`set ... noreply`) and polls each server's `stats` directly (`fill --stats-port`, which
orders the polls after the sets with a multi-get through the proxy), on until every server
has evicted (`--every-node`), and re-reads 100000 keys through the proxy. Writes
    results/cluster.csv   one row per configuration
    results/cluster.md    the tables, with commit, date and machine, and the fleet sizes
    results/cluster.png   items held per node and in total (gnuplot)

Two figures per configuration:
  at the first eviction  the three servers' curr_items when the first of them evicts:
                         what the cluster holds before it loses anything; ketama does not
                         split keys evenly, so the server with the largest share fills first
  every node full        each server's curr_items at its own first eviction, summed: what
                         the cluster holds when full (its capacity as sharded)

Usage: experiments/cluster_fill.py [--build-dir build] [--only REGEX] [--nodes 3]
Exit status: 0 if every configuration filled and verified, 1 otherwise.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (experiments/lab.py: servers, nutcracker and provenance)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import fill_ladder as ladder  # noqa: E402  (its preset listing and CSV quoting)

NODE_NAMES = ["node-a", "node-b", "node-c", "node-d", "node-e", "node-f", "node-g", "node-h"]
FLEET_SIZES = [100_000_000, 1_000_000_000]
FLEET_CONFIGS = ["memcached defaults", "tinycached preset=stock", "tinycached preset=compact",
                 "tinycached preset=tiny"]


class Config:
    def __init__(self, label, binary, flags):
        self.label = label
        self.binary = binary
        self.flags = flags
        self.result = None
        self.error = ""


def run_once(config, fill, nodes, limit_mb):
    servers = [lab.Server(config.binary, ["-m", str(limit_mb)] + config.flags)
               for _ in range(nodes)]
    proxy = None
    try:
        for s in servers:
            s.start()
        proxy = lab.Nutcracker([("127.0.0.1", s.port, NODE_NAMES[i])
                                for i, s in enumerate(servers)]).start()
        argv = [fill, "--port", str(proxy.port), "--every-node", "--verify", "--json",
                "--label", config.label]
        for s in servers:
            argv += ["--stats-port", str(s.port)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        for s in servers:
            if s.proc.poll() is not None:
                raise RuntimeError("a server died (exit %d): %s" %
                                   (s.proc.returncode, s.error_text()))
        if proxy.proc.poll() is not None:
            raise RuntimeError("nutcracker died: " + proxy.log_text())
        result = json.loads(done.stdout) if done.stdout.strip() else None
        if done.returncode != 0 or result is None:
            raise RuntimeError("fill exited %d: %s" % (done.returncode, done.stderr.strip()))
        if result.get("items_every_node_full") is None:
            raise RuntimeError("not every server evicted: %s" % done.stdout.strip())
        return result
    finally:
        if proxy is not None:
            proxy.cleanup()
        for s in servers:
            s.stop()


def nodes_needed(items, per_node):
    return math.ceil(items / per_node) if per_node else None


def fmt_m(n):
    return "%.2fM" % (n / 1e6)


def write_csv(path, configs, meta):
    columns = ["configuration", "server_flags", "nodes", "limit_mb", "items_first_eviction",
               "node_items_first_eviction", "items_every_node_full", "node_items_full",
               "seconds", "verify_sampled", "verify_hits", "verify_corrupt", "error", "commit",
               "date", "machine", "cpu", "nproc", "server_version", "proxy_version"]
    with open(path, "w") as out:
        out.write(",".join(columns) + "\n")
        for c in configs:
            r = c.result or {}
            row = {
                "configuration": c.label, "server_flags": " ".join(c.flags),
                "nodes": meta["nodes"], "limit_mb": meta["limit_mb"],
                "items_first_eviction": r.get("items", ""),
                "node_items_first_eviction": " ".join(map(str, r.get("node_items", []))),
                "items_every_node_full": r.get("items_every_node_full", ""),
                "node_items_full": " ".join(map(str, r.get("node_items_full", []))),
                "seconds": r.get("seconds", ""), "verify_sampled": r.get("verify_sampled", ""),
                "verify_hits": r.get("verify_hits", ""),
                "verify_corrupt": r.get("verify_corrupt", ""), "error": c.error,
                **lab.stamp_columns(meta),
                "server_version": meta["versions"].get(c.binary, ""),
                "proxy_version": meta["proxy_version"],
            }
            out.write(",".join(ladder.csv_field(row[k]) for k in columns) + "\n")


def write_markdown(path, configs, meta, png_name):
    n, limit = meta["nodes"], meta["limit_mb"]
    baseline = next((c.result for c in configs
                     if c.label == "memcached defaults" and c.result), None)
    lines = [
        "# Fill through twemproxy: %d × -m %d behind nutcracker" % (n, limit),
        "",
        *lab.stamp_lines(meta),
        "- servers: %s" % "; ".join("`%s`: %s" % (b, v) for b, v in meta["versions"].items()),
        "- proxy: `%s` (%s), ketama over md5, servers named %s, weight 1 each" % (
            lab.NUTCRACKER, meta["proxy_version"], ", ".join(NODE_NAMES[:n])),
        "- command: `%s`" % meta["command"],
        "",
        "Keys `1`, `2`, `3`, ... in order, value `x`, flags 0, no expiry, pipelined "
        "`set ... noreply` through the proxy; each server's `stats` read directly after every "
        "batch (`fill --stats-port`). *At the first eviction*: the servers' `curr_items` when "
        "the first of them evicts, the most the cluster holds without losing an item. "
        "*Every node full*: each server's `curr_items` at its own first eviction, summed. "
        "*Balance* = first eviction / every node full: ketama gives the servers unequal "
        "shares, and the one with the largest share fills first. A sample of 100000 keys is "
        "re-read through the proxy at the end (misses are keys evicted by then; corrupt must "
        "be 0).",
        "",
        "| configuration | at the first eviction | per node then | every node full | "
        "per node full | balance | vs memcached | verify hits / corrupt |",
        "|---|---:|---|---:|---|---:|---:|---:|",
    ]
    for c in configs:
        r = c.result
        if not r:
            lines.append("| %s | failed | | | | | | |" % c.label)
            continue
        full = r["items_every_node_full"]
        ratio = "%.2f×" % (full / baseline["items_every_node_full"]) if baseline else "n/a"
        lines.append("| %s | %d | %s | %d | %s | %.3f | %s | %s / %s |" % (
            c.label, r["items"], " / ".join(fmt_m(x) for x in r["node_items"]), full,
            " / ".join(fmt_m(x) for x in r["node_items_full"]), r["items"] / full, ratio,
            r["verify_hits"], r["verify_corrupt"]))
    lines.append("")
    if png_name:
        lines += ["![items per node and in total](%s)" % png_name, ""]

    fleet = [c for c in configs if c.label in FLEET_CONFIGS and c.result]
    if fleet:
        lines += [
            "## What it means for a fleet",
            "",
            "Servers of `-m %d` needed to hold N such items: *even* divides by the mean "
            "capacity of one server (every node full / %d), as if the ring split keys "
            "evenly (many virtual nodes, or weights tuned to the shares); *this ring* divides "
            "by the cluster's items at the first eviction / %d, i.e. with the imbalance "
            "this 3-node ring showed (the largest share decides when the first item is lost; "
            "with more servers the shares even out somewhat). Nodes of `-m %d` are small: "
            "what carries over to real node sizes is the ratio between the rows, and it "
            "changes little with -m ([scale.md](scale.md): from -m 64 to -m 4096 items per "
            "MiB change by +0.6%% for memcached -C, +1.5%% for tiny and −20%% for compact, "
            "whose page references grow past -m 84)." % (limit, n, n, limit),
            "",
            "| configuration | items per node | " + " | ".join(
                "nodes for %s (even / this ring)" % ("%dM" % (s // 10**6) if s < 10**9
                                                      else "%dB" % (s // 10**9))
                for s in FLEET_SIZES) + " |",
            "|---|---:|" + "---:|" * len(FLEET_SIZES),
        ]
        for c in fleet:
            r = c.result
            even = r["items_every_node_full"] / n
            ring = r["items"] / n
            lines.append("| %s | %s | %s |" % (c.label, fmt_m(even), " | ".join(
                "%d / %d" % (nodes_needed(s, even), nodes_needed(s, ring))
                for s in FLEET_SIZES)))
        lines.append("")
    notes = ["%s: %s" % (c.label, c.error) for c in configs if c.error]
    notes.append("A node's capacity here can differ from one server filled alone "
                 "(fill-64mb.md): the cluster's keys run %d times as far, so more of them "
                 "are longer, and with some layouts their items take another chunk size." % n)
    notes.append("wall time %.0f s." % meta["elapsed"])
    lines += ["Notes:", ""] + ["- " + x for x in notes] + [""]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def write_plot(path, configs, nodes):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    rows = [c for c in configs if c.result]
    if not rows:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "cluster.dat")
        with open(data, "w") as out:
            for i, c in enumerate(rows):
                r = c.result
                per_node = " ".join("%.1f" % (x / 1000.0) for x in r["node_items_full"])
                out.write('%d %s %.1f %.1f "%s"\n' % (
                    i, per_node, r["items"] / 1000.0, r["items_every_node_full"] / 1000.0,
                    c.label.replace("tinycached preset=", "").replace('"', "'")))
        top = max(c.result["items_every_node_full"] for c in rows) / 1000.0 * 1.15
        terminal = lab.gnuplot_terminal()
        font = "font 'sans,10'" if terminal == "pngcairo" else ""
        width = 0.8 / (nodes + 2)
        plots = []
        colours = ["#4a7ebb", "#6b9bd1", "#9dbde3", "#c6d9ef"]
        for k in range(nodes):
            plots.append("'%s' using ($1+%f):%d:(%f) with boxes lc rgb '%s' title '%s'" % (
                data, (k - (nodes + 1) / 2.0) * width, k + 2, width, colours[k % 4],
                "%s full" % NODE_NAMES[k]))
        plots.append("'' using ($1+%f):%d:(%f) with boxes lc rgb '#d9822b' "
                     "title 'cluster at the first eviction'" % (
                         (nodes - (nodes + 1) / 2.0) * width, nodes + 2, width))
        plots.append("'' using ($1+%f):%d:(%f) with boxes lc rgb '#a94f12' "
                     "title 'cluster, every node full'" % (
                         (nodes + 1 - (nodes + 1) / 2.0) * width, nodes + 3, width))
        plots.append("'' using ($1+%f):%d:(sprintf('%%.0fk', $%d)) with labels offset 0,0.7 "
                     "font ',8' notitle" % ((nodes + 1 - (nodes + 1) / 2.0) * width,
                                            nodes + 3, nodes + 3))
        plots.append("'' using 1:(0):xtic(%d) with points ps 0 notitle" % (nodes + 4))
        script = "\n".join([
            "set terminal %s size %d,640 %s" % (terminal, max(900, 110 * len(rows) + 200), font),
            "set output '%s'" % path.replace("'", "''"),
            "set title 'Items held by %d × -m 64 behind nutcracker (keys 1..N, 1-byte value)'"
            " offset 0,1" % nodes,
            "set ylabel 'items (thousands)'",
            "set yrange [0:%f]" % top,
            "set xrange [-0.6:%f]" % (len(rows) - 0.4),
            "set style fill solid 0.85 border -1",
            "set xtics rotate by -35 scale 0 nomirror",
            "set bmargin 10",
            "set grid ytics",
            "set key top left",
            "plot " + ", ".join(plots),
        ])
        return lab.run_gnuplot(script)


def main():
    parser = argparse.ArgumentParser(
        description="Fill clusters of servers behind nutcracker until every node evicts.")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    parser.add_argument("--out-dir", default=os.path.join(REPO, "results"))
    parser.add_argument("--memcached", default="/usr/bin/memcached")
    parser.add_argument("--nodes", type=int, default=3, help="servers behind the proxy (1..8)")
    parser.add_argument("--limit-mb", type=int, default=64, help="each server's -m")
    parser.add_argument("--only", metavar="REGEX",
                        help="run only configurations whose label matches REGEX")
    args = parser.parse_args()
    if not 1 <= args.nodes <= len(NODE_NAMES):
        parser.error("--nodes must be 1..%d" % len(NODE_NAMES))
    if not os.access(lab.NUTCRACKER, os.X_OK):
        lab.log("no %s: install Debian's nutcracker (.ci/install-deps.sh)" % lab.NUTCRACKER)
        return 1
    build_dir = os.path.abspath(args.build_dir)
    paths = lab.ensure_built(build_dir, ["fill", "tinycached"], True)
    fill, tinycached = paths["fill"], paths["tinycached"]

    configs = []
    versions = {}
    if os.access(args.memcached, os.X_OK):
        versions[args.memcached] = lab.version_of(args.memcached)
        configs.append(Config("memcached defaults", args.memcached, []))
    for preset in ladder.list_presets(tinycached):
        versions[tinycached] = lab.version_of(tinycached)
        configs.append(Config("tinycached preset=" + preset, tinycached,
                              ["-o", "preset=" + preset]))
    if args.only:
        configs = [c for c in configs if re.search(args.only, c.label)]
    if not configs:
        lab.log("nothing to run")
        return 1

    started = time.time()
    for c in configs:
        try:
            c.result = run_once(c, fill, args.nodes, args.limit_mb)
            lab.log("%-32s %9d at the first eviction, %9d every node full, %.0f s" % (
                c.label, c.result["items"], c.result["items_every_node_full"],
                c.result["seconds"]))
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            c.error = str(e).replace("\n", " ")
            lab.log("%s FAILED: %s" % (c.label, c.error))

    proxy_version = subprocess.run([lab.NUTCRACKER, "-V"], capture_output=True,
                                   text=True).stderr.strip()
    meta = {
        "nodes": args.nodes, "limit_mb": args.limit_mb, **lab.run_stamp(),
        "versions": versions, "proxy_version": proxy_version.splitlines()[0]
        if proxy_version else "unknown version",
        "command": " ".join(["experiments/cluster_fill.py"] + sys.argv[1:]),
        "elapsed": time.time() - started,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, "cluster")
    write_csv(stem + ".csv", configs, meta)
    png = write_plot(stem + ".png", configs, args.nodes)
    write_markdown(stem + ".md", configs, meta, os.path.basename(stem + ".png") if png else None)
    lab.log("wrote %s.{csv,md%s} in %.0f s" % (stem, ",png" if png else "", meta["elapsed"]))
    bad = any(c.error or (c.result and c.result.get("verify_corrupt")) for c in configs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
