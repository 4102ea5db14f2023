#!/usr/bin/env python3
"""Throughput and latency, tinycached (stock and every preset) vs Debian's memcached 1.6.18.

For every round and workload, starts each server fresh with the same flags
(-t, -m, -c) on a free 127.0.0.1 port, preloads it, waits for its hash table to
finish growing, and drives it with
build/experiments/loadgen (closed loop, one request in flight per connection,
every reply verified), alternating the order of servers from round to round so
machine noise falls on all alike. Writes
    results/throughput.csv   one row per run
    results/throughput.md    per workload: ops/s, ratio to memcached (median of
                             the per-round ratios), p50/p99/p99.9, server CPU per op
    results/throughput.png   the ratios (gnuplot)
Workloads (loadgen --workload): getset (90% get / 10% set, 100k keys, 1-8 byte
values), multiget (10 keys per get), set (100% set after filling to the first
eviction: every set evicts), incr (1000 counters named c1..c1000), incr-int
(the same with counters named 1..1000: integer keys, which -o preset=tiny keeps
in its slot table and increments in place).

Usage: experiments/load_compare.py [--rounds 5] [--seconds 3] [--threads 1] [--no-pin]
                                [--server-cpus 0] [--client-cpus 1] [--loadgen-threads 1]
                                [--presets compact,nocas,...] [--workloads getset,...]
By default the server runs on CPU 0 and loadgen on CPU 1 (taskset), so they do
not preempt each other; the machine is still shared, so the ratios measured in
one alternating run are the figures, not the absolute ops/s.
Exit status: 0 if every run completed with 0 verification failures, else 1.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

WORKLOADS = {
    "getset": ["--keys", "100000"],
    "multiget": ["--keys", "100000"],
    "set": ["--keys", "100000000"],
    "incr": ["--counters", "1000"],
    "incr-int": ["--counters", "1000", "--counter-prefix", ""],
}
# Workloads that are another loadgen workload with other arguments.
LOADGEN_WORKLOAD = {"incr-int": "incr"}


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (None if unreadable)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def wait_until_settled(port, timeout=60):
    """Waits while the server's hash table is still growing after the preload (`stats`
    hash_is_expanding, reported by both servers): the timed phase measures the steady state."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "STAT hash_is_expanding 1\r\n" not in lab.stats_text(port):
            return
        time.sleep(0.1)
    lab.log("hash table still growing after %d s; timing anyway" % timeout)


def run_one(config, workload, args, loadgen):
    server = lab.Server(config["binary"], ["-m", str(args.memory), "-t", str(args.threads),
                                           "-c", "1024"] + config["flags"])
    client = []
    if args.pin:
        # taskset execs the program, so the pid (and its /proc CPU times) stay the server's.
        server.argv = ["taskset", "-c", args.server_cpus] + server.argv
        client = ["taskset", "-c", args.client_cpus]
    try:
        server.start()
        base = client + [loadgen, "--port", str(server.port),
                         "--workload", LOADGEN_WORKLOAD.get(workload, workload),
                         "--connections", str(args.connections),
                         "--threads", str(args.loadgen_threads)] + WORKLOADS[workload]
        pre = subprocess.run(base + ["--preload-only"], capture_output=True, text=True,
                             timeout=300)
        if pre.returncode != 0:
            raise RuntimeError("preload failed: " + pre.stderr.strip()[-300:])
        wait_until_settled(server.port)
        cpu0 = cpu_seconds(server.proc.pid)
        done = subprocess.run(base + ["--skip-preload", "--json", "--seconds", str(args.seconds)],
                              capture_output=True, text=True, timeout=args.seconds + 120)
        cpu1 = cpu_seconds(server.proc.pid)
        if server.proc.poll() is not None:
            raise RuntimeError("server died: " + server.error_text())
        if not done.stdout.strip():
            raise RuntimeError("loadgen exited %d: %s" % (done.returncode, done.stderr[-300:]))
        result = json.loads(done.stdout)
        result["server_cpu_us_per_op"] = (
            (cpu1 - cpu0) * 1e6 / result["ops"] if cpu0 is not None and cpu1 is not None and
            result["ops"] else None)
        return result
    finally:
        server.stop()


def list_presets(tinycached):
    done = subprocess.run([tinycached, "--list-presets"], capture_output=True, text=True)
    return [line.split()[0] for line in done.stdout.splitlines()
            if line.strip() and not line.startswith("#")]


def write_plot(path, configs, workloads, ratio):
    if not shutil.which("gnuplot"):
        lab.log("gnuplot not found: no plot")
        return False
    names = [c["name"] for c in configs if c["name"] != "memcached"]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "ratios.dat")
        with open(data, "w") as out:
            out.write("config " + " ".join(workloads) + "\n")
            for n in names:
                out.write('"%s" %s\n' % (n, " ".join(
                    "%.3f" % ratio[(n, w)] if ratio.get((n, w)) else "NaN" for w in workloads)))
        script = "\n".join([
            "set terminal png size %d,560" % max(900, 70 * len(names) * len(workloads) // 2),
            "set output '%s'" % path.replace("'", "''"),
            "set title 'tinycached ops/s / memcached 1.6.18 ops/s (median of per-round ratios)'",
            "set style data histograms",
            "set style histogram clustered gap 1",
            "set style fill solid 0.8 border -1",
            "set key outside right top",
            "set yrange [0:*]",
            "set grid ytics",
            "set xtics rotate by -30 scale 0",
            "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#444444'",
            "plot " + ", ".join("'%s' using %d:xtic(1) title columnheader(%d)" % (data, i + 2, i + 2)
                                for i in range(len(workloads))),
        ])
        return lab.run_gnuplot(script)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(lab.REPO, "build"))
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--threads", type=int, default=1, help="server -t (both servers)")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin server and load generator to separate CPUs")
    p.add_argument("--server-cpus", default="0", help="taskset CPU list of the server")
    p.add_argument("--client-cpus", default="1", help="taskset CPU list of loadgen")
    p.add_argument("--memory", type=int, default=64, help="server -m (both servers)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--loadgen-threads", type=int, default=1,
                   help="loadgen --threads (its connections are spread over them)")
    p.add_argument("--presets", default=None,
                   help="comma-separated presets besides stock (default: all but stock)")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--out-dir", default=os.path.join(lab.REPO, "results"))
    p.add_argument("--name", default="throughput",
                   help="base name of the files written in --out-dir (default: throughput)")
    args = p.parse_args()
    tinycached = os.path.join(args.build_dir, "server", "tinycached")
    loadgen = os.path.join(args.build_dir, "experiments", "loadgen")
    for binary in (tinycached, loadgen, args.memcached):
        if not os.access(binary, os.X_OK):
            sys.exit("load_compare: %s not found (build first: cmake --build build)" % binary)
    presets = ([n for n in args.presets.split(",") if n] if args.presets is not None else
               [n for n in list_presets(tinycached) if n != "stock"])
    workloads = args.workloads.split(",")
    configs = ([{"name": "memcached", "binary": args.memcached, "flags": []},
                {"name": "stock", "binary": tinycached, "flags": []}] +
               [{"name": n, "binary": tinycached, "flags": ["-o", "preset=" + n]} for n in presets])

    runs = []  # dicts: round, config, workload + loadgen JSON
    failures = 0
    for r in range(1, args.rounds + 1):
        for w in workloads:
            order = configs if r % 2 else list(reversed(configs))
            for c in order:
                try:
                    res = run_one(c, w, args, loadgen)
                except Exception as e:  # noqa: BLE001 - recorded and reported
                    lab.log("round %d %-8s %-9s FAILED: %s" % (r, w, c["name"], e))
                    failures += 1
                    continue
                res.update({"round": r, "config": c["name"], "workload": w})
                runs.append(res)
                bad = res["errors"] + res["verify_failures"]
                failures += 1 if bad else 0
                lab.log("round %d/%d %-8s %-9s %9.0f ops/s  p99 %7.1f us  cpu %s us/op%s" % (
                    r, args.rounds, w, c["name"], res["ops_per_sec"], res["p99_us"],
                    "%.2f" % res["server_cpu_us_per_op"] if res["server_cpu_us_per_op"] else "?",
                    "  PROBLEM: " + res["first_problem"] if bad else ""))

    def pick(config, workload, field):
        return [x[field] for x in runs if x["config"] == config and x["workload"] == workload
                and x[field] is not None]

    ratio = {}
    for c in configs:
        for w in workloads:
            per_round = []
            for r in range(1, args.rounds + 1):
                mine = [x["ops_per_sec"] for x in runs
                        if x["round"] == r and x["config"] == c["name"] and x["workload"] == w]
                ref = [x["ops_per_sec"] for x in runs
                       if x["round"] == r and x["config"] == "memcached" and x["workload"] == w]
                if mine and ref:
                    per_round.append(mine[0] / ref[0])
            ratio[(c["name"], w)] = statistics.median(per_round) if per_round else None
            ratio[(c["name"], w, "range")] = (min(per_round), max(per_round)) if per_round else None

    meta = lab.run_stamp()
    os.makedirs(args.out_dir, exist_ok=True)
    fields = ["round", "config", "workload", "ops", "seconds", "ops_per_sec", "keys_per_sec",
              "p50_us", "p99_us", "p999_us", "server_cpu_us_per_op", "hits", "misses", "stored",
              "incr_ok", "errors", "verify_failures"]
    with open(os.path.join(args.out_dir, args.name + ".csv"), "w") as f:
        f.write(",".join(fields + ["threads", "memory_mb", "connections", "commit", "date",
                                   "machine", "cpu", "nproc"]) + "\n")
        for x in runs:
            f.write(",".join(str(x[k]) if x[k] is not None else "" for k in fields) + ",%d,%d,%d,%s,%s,%s,\"%s\",%d\n" % (
                args.threads, args.memory, args.connections, meta["commit"], meta["date"],
                meta["uname"], meta["cpu"], meta["nproc"]))

    def med(values, fmt):
        return fmt % statistics.median(values) if values else "n/a"

    lines = [
        "# Throughput and latency: tinycached vs memcached 1.6.18",
        "",
        *lab.stamp_lines(meta),
        "- servers: %s; %s" % (lab.version_of(tinycached), lab.version_of(args.memcached)),
        "- command: `experiments/load_compare.py %s`" % " ".join(sys.argv[1:]),
        "- every server: `-t %d -m %d -c 1024`%s; load: `loadgen`, %d connections, one request "
        "in flight each%s, %g s per run, %d rounds, server order reversed every round"
        % (args.threads, args.memory,
           " on CPU %s" % args.server_cpus if args.pin else "", args.connections,
           ", on CPU %s" % args.client_cpus if args.pin else "", args.seconds, args.rounds),
        "",
        "ops/s and latencies are medians over the rounds; *vs memcached* is the median of the "
        "per-round ratios (range in brackets); server CPU is the server's user+system time "
        "during the timed phase per operation. The machine (%d CPUs) is shared and noisy, "
        "so absolute figures mean little here; the ratios are the result. Every reply was "
        "checked: values against the key's only possible value, incr replies for growth per "
        "counter, and counters summed at the end." % meta["nproc"],
        "",
    ]
    total_bad = sum(x["errors"] + x["verify_failures"] for x in runs)
    for w in workloads:
        lines += ["## %s" % w, "",
                  "| server | ops/s | vs memcached | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | verify failures |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in configs:
            n = c["name"]
            rr = ratio.get((n, w, "range"))
            ratio_text = ("%.2f× (%.2f–%.2f)" % (ratio[(n, w)], rr[0], rr[1])) if rr else "n/a"
            label = "memcached 1.6.18" if n == "memcached" else "tinycached %s" % n
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %d |" % (
                label, med(pick(n, w, "ops_per_sec"), "%.0f"), ratio_text,
                med(pick(n, w, "p50_us"), "%.0f"), med(pick(n, w, "p99_us"), "%.0f"),
                med(pick(n, w, "p999_us"), "%.0f"), med(pick(n, w, "server_cpu_us_per_op"), "%.2f"),
                sum(pick(n, w, "errors")) + sum(pick(n, w, "verify_failures"))))
        lines.append("")
    if write_plot(os.path.join(args.out_dir, args.name + ".png"), configs, workloads, ratio):
        lines += ["![ratios](%s.png)" % args.name, ""]
    lines += ["Runs: %d; failed runs or runs with errors: %d; replies failing verification in "
              "all runs: %d." % (len(runs), failures, total_bad), ""]
    with open(os.path.join(args.out_dir, args.name + ".md"), "w") as f:
        f.write("\n".join(lines))
    lab.log("wrote %s/%s.{csv,md,png}" % (args.out_dir, args.name))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
