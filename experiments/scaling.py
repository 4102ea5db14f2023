#!/usr/bin/env python3
"""Scaling with server threads: memcached 1.6.18, stock, compact and tiny at -t 1, 2, 4, 8, 16.

For each thread count T that the machine can hold, runs experiments/load_compare.py
(alternating rounds, fresh servers, every reply verified) with the servers at
-t T pinned to CPUs 0..T-1 and loadgen pinned to the CPUs left, then gathers
the runs into
    results/scaling.csv   one row per run (load_compare's columns, T added)
    results/scaling.md    per workload and T: ops/s ratio to memcached at the
                          same T (median of per-round ratios), server CPU µs/op
    results/scaling.png   the ratios against T, one panel per workload (gnuplot)
A T that leaves no CPU for loadgen (T >= CPUs) runs unpinned and is marked so:
server and load generator then share every CPU, and the figure says more
about the scheduler than about the server. Default workloads: getset,
multiget (10 keys a request), incr-int (integer counters: tiny's slot
increments), set (every set evicts).

Usage: experiments/scaling.py [--threads-list 1,2,4,8,16] [--rounds 3] [--seconds 3]
                           [--presets compact,tiny] [--workloads getset,...]
                           [--loadgen-threads N] [--connections 64]
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_list(first, count):
    return ",".join(str(c) for c in range(first, first + count))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(lab.REPO, "build"))
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--threads-list", default="1,2,4,8,16")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--presets", default="compact,tiny")
    p.add_argument("--workloads", default="getset,multiget,incr-int,set")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--loadgen-threads", type=int, default=0,
                   help="loadgen threads (default: one per CPU it is pinned to)")
    p.add_argument("--out-dir", default=os.path.join(lab.REPO, "results"))
    p.add_argument("--name", default="scaling")
    args = p.parse_args()
    ncpu = os.cpu_count() or 1
    wanted = [int(t) for t in args.threads_list.split(",") if t]
    # Every T that leaves a CPU for loadgen, and the machine's own count once
    # (unpinned), so a 2-CPU machine still shows T = 1 and T = 2.
    plan = [t for t in wanted if t < ncpu] + ([ncpu] if ncpu in wanted or ncpu < max(wanted) else [])
    plan = sorted(set(plan))
    workloads = args.workloads.split(",")
    runs = []
    notes = {}
    for t in plan:
        pinned = t < ncpu
        client_cpus = ncpu - t if pinned else ncpu
        lg_threads = args.loadgen_threads or max(1, client_cpus)
        cmd = [os.path.join(HERE, "load_compare"), "--build-dir", args.build_dir,
               "--memcached", args.memcached, "--threads", str(t), "--rounds", str(args.rounds),
               "--seconds", str(args.seconds), "--presets", args.presets,
               "--workloads", args.workloads, "--connections", str(args.connections),
               "--loadgen-threads", str(min(lg_threads, args.connections))]
        if pinned:
            cmd += ["--server-cpus", cpu_list(0, t), "--client-cpus", cpu_list(t, client_cpus)]
            notes[t] = "server on CPUs %s, loadgen (%d threads) on %s" % (
                cpu_list(0, t), min(lg_threads, args.connections), cpu_list(t, client_cpus))
        else:
            cmd += ["--no-pin"]
            notes[t] = "unpinned: server and loadgen (%d threads) share all %d CPUs" % (
                min(lg_threads, args.connections), ncpu)
        with tempfile.TemporaryDirectory() as tmp:
            cmd += ["--out-dir", tmp, "--name", "t%d" % t]
            lab.log("T=%d: %s" % (t, notes[t]))
            done = subprocess.run(cmd)
            if done.returncode not in (0, 1):
                sys.exit("scaling: load_compare failed at T=%d" % t)
            with open(os.path.join(tmp, "t%d.csv" % t)) as f:
                for row in csv.DictReader(f):
                    row["T"] = t
                    row["pinned"] = int(pinned)
                    runs.append(row)

    configs = ["memcached", "stock"] + [n for n in args.presets.split(",") if n]

    def ratio(config, w, t):
        per_round = []
        for r in sorted({x["round"] for x in runs}):
            def ops(c):
                return [float(x["ops_per_sec"]) for x in runs
                        if x["T"] == t and x["round"] == r and x["config"] == c and x["workload"] == w]
            mine, ref = ops(config), ops("memcached")
            if mine and ref and ref[0] > 0:
                per_round.append(mine[0] / ref[0])
        return (statistics.median(per_round), min(per_round), max(per_round)) if per_round else None

    def median_of(config, w, t, field):
        vals = [float(x[field]) for x in runs
                if x["T"] == t and x["config"] == config and x["workload"] == w and x[field]]
        return statistics.median(vals) if vals else None

    os.makedirs(args.out_dir, exist_ok=True)
    fields = list(runs[0].keys()) if runs else []
    with open(os.path.join(args.out_dir, args.name + ".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(runs)

    lines = [
        "# Scaling with server threads: tinycached vs memcached 1.6.18",
        "",
        *lab.stamp_lines(lab.run_stamp()),
        "- command: `experiments/scaling.py %s`" % " ".join(sys.argv[1:]),
        "- each T: `experiments/load_compare.py --threads T` (every server `-t T -m 64 -c 1024`, "
        "%d connections, %d rounds of %g s, server order reversed every round)" % (
            args.connections, args.rounds, args.seconds),
    ]
    for t in plan:
        lines.append("- T=%d: %s" % (t, notes[t]))
    lines += [
        "",
        "Each cell: ops/s as a ratio to memcached at the same T (median of the per-round "
        "ratios, range in brackets), then the server's CPU µs per operation. Every reply was "
        "verified by loadgen.",
        "",
    ]
    for w in workloads:
        lines += ["## %s" % w, "",
                  "| server | " + " | ".join("T=%d%s" % (t, "" if t < ncpu else " (unpinned)")
                                             for t in plan) + " |",
                  "|---|" + "---:|" * len(plan)]
        for c in configs:
            cells = []
            for t in plan:
                rr = ratio(c, w, t)
                ops = median_of(c, w, t, "ops_per_sec")
                cpu = median_of(c, w, t, "server_cpu_us_per_op")
                if c == "memcached":
                    cells.append("%s ops/s, %s µs" % ("%.0f" % ops if ops else "n/a",
                                                      "%.1f" % cpu if cpu else "?"))
                else:
                    cells.append("%s, %s µs" % ("%.2f× (%.2f–%.2f)" % rr if rr else "n/a",
                                                "%.1f" % cpu if cpu else "?"))
            label = "memcached 1.6.18" if c == "memcached" else "tinycached " + c
            lines.append("| %s | %s |" % (label, " | ".join(cells)))
        lines.append("")

    if shutil.which("gnuplot") and runs:
        with tempfile.TemporaryDirectory() as tmp:
            plots = []
            for i, w in enumerate(workloads):
                data = os.path.join(tmp, "%d.dat" % i)
                with open(data, "w") as out:
                    for t in plan:
                        vals = []
                        for c in configs[1:]:
                            rr = ratio(c, w, t)
                            vals.append("%.3f" % rr[0] if rr else "NaN")
                        out.write("%d %s\n" % (t, " ".join(vals)))
                plots.append((w, data))
            script = [
                "set terminal %s size 1000,%d" % (lab.gnuplot_terminal(), 300 * ((len(plots) + 1) // 2)),
                "set output '%s'" % os.path.join(args.out_dir, args.name + ".png").replace("'", "''"),
                "set multiplot layout %d,2 title 'ops/s vs memcached 1.6.18 at the same -t'" % (
                    (len(plots) + 1) // 2),
                "set logscale x 2", "set xtics (%s)" % ", ".join(str(t) for t in plan),
                "set yrange [0:*]", "set grid",
            ]
            for w, data in plots:
                script.append("set title '%s'" % w)
                script.append("plot 1 notitle dt 2 lc rgb '#444444', " + ", ".join(
                    "'%s' using 1:%d with linespoints title '%s'" % (data, k + 2, c)
                    for k, c in enumerate(configs[1:])))
            script.append("unset multiplot")
            if lab.run_gnuplot("\n".join(script)):
                lines += ["![ratios](%s.png)" % args.name, ""]
    with open(os.path.join(args.out_dir, args.name + ".md"), "w") as f:
        f.write("\n".join(lines))
    lab.log("wrote %s/%s.{csv,md,png}" % (args.out_dir, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
