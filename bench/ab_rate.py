#!/usr/bin/env python3
"""bench/ab_rate.py — A/B of allocator builds on one command, alternating.

    bench/ab_rate.py [--runs N] [--count KEY] NAME=LIB[:VAR=VAL,...] ... -- COMMAND ...

Runs COMMAND under bench/bin/rss_wrap with each LIB preloaded (empty: none;
VAR=VAL pairs go to its environment, e.g. a knob), N rounds, the order
reversed every other round so that a drift of the machine's load hits all
alike. Per NAME it prints medians and the spread ((max - min) / median) of
operations per CPU-second (--count KEY of the RESULT line, default
ops_per_sec x elapsed, over the user + system time of the whole run; or
--rate KEY: the workload's own CPU rate, e.g. cpu_ops_per_sec), the wall
rate (ops_per_sec), peak RSS and minor page faults, then every run's CPU
rate. Run from the repository top after `make bench-bins`.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile


def parse(out):
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit("no RESULT line in:\n" + out)
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def one(cmd, lib, env, wrap_out, key, rate):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["bench/bin/rss_wrap", wrap_out, lib, "--"] + cmd, env=env,
                         capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = parse(out)
    if rate:  # the workload's own CPU rate (its loop only, no start-up or exit)
        cpu, ops = 1.0, float(res[rate])
    else:
        ops = float(res[key]) if key else float(res["ops_per_sec"]) * float(res["elapsed"])
    with open(wrap_out) as f:
        w = f.read()
    rss = int(re.search(r"maxrss_kb=(\d+)", w).group(1))
    flt = int(re.search(r"minflt=(\d+)", w).group(1))
    return ops / cpu, float(res.get("ops_per_sec", "nan")), rss, flt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--count", help="RESULT key counting the operations")
    ap.add_argument("--rate", help="RESULT key that is the CPU rate itself (cpu_ops_per_sec)")
    ap.add_argument("specs", nargs="+", help="NAME=LIB[:VAR=VAL,...] ... -- COMMAND")
    a = ap.parse_args()
    if "--" in a.specs:
        i = a.specs.index("--")
        specs, cmd = a.specs[:i], a.specs[i + 1:]
    else:
        i = next(k for k, s in enumerate(a.specs) if "=" not in s)
        specs, cmd = a.specs[:i], a.specs[i:]
    if not specs or not cmd:
        ap.error("need NAME=LIB ... -- COMMAND")
    libs = []
    for s in specs:
        name, rest = s.split("=", 1)
        lib, _, extra = rest.partition(":")
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        for kv in filter(None, extra.split(",")):
            k, v = kv.split("=", 1)
            env[k] = v
        libs.append((name, os.path.abspath(lib) if lib else "", env))
    res = {name: [] for name, _, _ in libs}
    with tempfile.TemporaryDirectory() as tmp:
        wrap_out = os.path.join(tmp, "rss")
        for r in range(a.runs):
            for name, lib, env in (libs if r % 2 == 0 else libs[::-1]):
                res[name].append(one(cmd, lib, env, wrap_out, a.count, a.rate))
    for name, v in res.items():
        cpu = [x[0] for x in v]
        med = statistics.median(cpu)
        print(f"{name}: per CPU-s {med:.4g} (spread {(max(cpu) - min(cpu)) / med * 100:.0f} %), "
              f"wall {statistics.median(x[1] for x in v):.4g}/s, "
              f"peak RSS {statistics.median(x[2] for x in v):.0f} KiB (max {max(x[2] for x in v)}), "
              f"faults {statistics.median(x[3] for x in v):.0f}; runs: "
              + " ".join(f"{c:.4g}" for c in cpu))


if __name__ == "__main__":
    main()
