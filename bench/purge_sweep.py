#!/usr/bin/env python3
"""bench/purge_sweep.py — what the purge policy trades: peak RSS against
page faults and madvise calls, for one workload under several allocators or
knob settings (the figures of docs/allocator.md, "When freed memory goes
back").

Usage: bench/purge_sweep.py [--runs N] [--pin] CONFIG... -- CMD ARGS...
  CONFIG  LIB[:VAR=VAL[,VAR=VAL...]]   LIB: a path to a malloc .so, or glibc
          e.g. lib/libhakmem.so:HAKMEM_SEG_CACHE=0
For each config, N runs (interleaved with the other configs): median
wall-clock ops/s (the workload's ops_per_sec), ops per CPU-second (ops_per_sec
x elapsed / the run's user+system time), median peak RSS (ru_maxrss of
the run, from bench/bin/rss_wrap) and minor page faults (ru_minflt), and the madvise/munmap/mmap
calls of one extra run under `strace -f -c`. --pin runs on CPU 0 only.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

WRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "rss_wrap")


def parse_config(text):
    lib, _, env = text.partition(":")
    extra = dict(kv.split("=", 1) for kv in env.split(",") if "=" in kv)
    return lib, extra


def environment(lib, extra):
    env = dict(os.environ, **extra)
    env.pop("LD_PRELOAD", None)
    if lib != "glibc":
        env["LD_PRELOAD"] = os.path.abspath(lib)
    return env


def one_run(cmd, lib, extra, pin):
    """Through bench/bin/rss_wrap, which sets LD_PRELOAD itself: ru_maxrss
    survives exec, so a child forked from this Python process would report
    at least Python's own RSS (~15 MiB) as its peak."""
    env = environment("glibc", extra)
    preload = "" if lib == "glibc" else os.path.abspath(lib)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        p = subprocess.Popen((["taskset", "-c", "0"] if pin else []) +
                             [WRAP, f.name, preload, "--"] + cmd, env=env,
                             stdout=subprocess.PIPE, text=True)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)  # the wrapper's usage and its child's
        if status != 0:
            sys.exit(f"{cmd[0]} failed (status {status})")
        wrap = dict(t.split("=", 1) for t in f.read().split())
    cpu = (ru.ru_utime + ru.ru_stime) or 1e-9
    m = re.search(r"\bops_per_sec=([\d.]+)", out)
    ops = float(m.group(1)) if m else 0.0
    e = re.search(r"\belapsed=([\d.]+)", out)
    return (ops, int(wrap["maxrss_kb"]) / 1024.0, int(wrap["minflt"]),
            ops * float(e.group(1)) / cpu if e else 0.0)


def syscalls(cmd, env):
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as f:
        subprocess.run(["strace", "-f", "-c", "-e", "trace=madvise,munmap,mmap", "-o", f.name]
                       + cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        calls = {}
        for line in f:
            w = line.split()
            if len(w) >= 5 and w[-1] in ("madvise", "munmap", "mmap"):
                calls[w[-1]] = int(w[3])
    return calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pin", action="store_true")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if "--" not in a.rest:
        ap.error("configs, then -- and the command")
    i = a.rest.index("--")
    configs, cmd = [parse_config(c) for c in a.rest[:i]], a.rest[i + 1:]
    results = [[] for _ in configs]
    for _ in range(a.runs):
        for k, (lib, extra) in enumerate(configs):
            results[k].append(one_run(cmd, lib, extra, a.pin))
    print(f"command: {' '.join(cmd)} (medians of {a.runs}{', CPU 0' if a.pin else ''})")
    print(f"{'config':44s} {'ops/s':>9s} {'ops/CPU-s':>9s} {'peak RSS':>10s} {'faults':>8s} "
          f"{'madvise':>8s} {'munmap':>7s} {'mmap':>6s}")
    for (lib, extra), res in zip(configs, results):
        ops, rss, flt, cpu_ops = (statistics.median(r[j] for r in res) for j in range(4))
        c = syscalls(cmd, environment(lib, extra))
        name = lib + " " + " ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{name.strip():44s} {ops / 1e6:8.2f}M {cpu_ops / 1e6:8.2f}M {rss:8.1f}Mi {flt:8.0f} "
              f"{c.get('madvise', 0):8d} {c.get('munmap', 0):7d} {c.get('mmap', 0):6d}")


if __name__ == "__main__":
    main()
