#!/usr/bin/env python3
"""bench/cpu_rate.py — single-threaded rows by CPU time instead of wall time.

    bench/cpu_rate.py [--runs N] [--baseline LIB] [ROW ...]

On a shared machine a single-threaded workload's wall-clock rate mostly says
how often it was descheduled; its rate per CPU-second (user + system time of
the child, from getrusage) much less so. Runs bench/run's workloads (quick
arguments) by name, every allocator of bench/run plus hakmem-base (--baseline),
alternating round-robin with the order rotated each round, and prints for each
row the median operations per CPU-second and hakmem's ratio to the best peer.
The count of operations is the RESULT line's (ops_per_sec x elapsed).
Must be run from the repository top, after `make bench-bins lib/libhakmem.so`.
"""
import argparse
import importlib.machinery
import importlib.util
import os
import resource
import statistics
import subprocess

loader = importlib.machinery.SourceFileLoader("bench_run", "bench/run")
spec = importlib.util.spec_from_loader("bench_run", loader)
bench_run = importlib.util.module_from_spec(spec)
loader.exec_module(bench_run)

DEFAULT_ROWS = ["tiny_hot-16", "random_mixed-8-128", "random_mixed-8-1024", "malloc_simple-16-256"]


def one(argv, lib):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if lib:
        env["LD_PRELOAD"] = os.path.abspath(lib)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = bench_run.parse_result(out)
    return float(res["ops_per_sec"]) * float(res["elapsed"]) / cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--baseline")
    ap.add_argument("rows", nargs="*", default=DEFAULT_ROWS)
    args = ap.parse_args()
    libs = dict(bench_run.PRELOAD)
    if args.baseline:
        libs["hakmem-base"] = args.baseline
    names = list(libs)
    work = {w["name"]: w for w in bench_run.WORKLOADS}
    for row in args.rows:
        rates = {a: [] for a in names}
        for r in range(args.runs):
            for a in names[r % len(names):] + names[:r % len(names)]:
                # a full-mode-only row (quick=None) runs its full argv
                rates[a].append(one(work[row]["quick"] or work[row]["full"], libs[a]))
        med = {a: statistics.median(v) for a, v in rates.items()}
        best = max(bench_run.PEERS, key=lambda p: med[p])
        cells = "  ".join(f"{a} {med[a] / 1e6:.1f}M" for a in names)
        print(f"{row}: ops/CPU-s medians of {args.runs}: {cells}; "
              f"hakmem / best ({best}) = {med['hakmem'] / med[best]:.2f}", flush=True)


if __name__ == "__main__":
    main()
