#!/usr/bin/env python3
"""bench/remote_cost.py — what one cross-thread free costs, counted.

    bench/remote_cost.py [--workload xthread|xbatch] [--blocks N] [--lib NAME=PATH ...] [--peers]

Runs `bench/bin/xthread 1 N 1024 16 256 1` (a producer mallocs, a consumer
frees: every free is remote; N = --blocks) or `bench/bin/xbatch 2 2 0 1`
(two producers, two consumers, batches of 4,096 mixed-size blocks) under
valgrind's callgrind, once per allocator, collecting only inside the
producer and consumer threads
(--toggle-collect), with a cost per instruction address (--dump-instr).
Each executed instruction is then looked up in `objdump -d` of its object:
a `lock`-prefixed instruction or an `xchg` with memory (locked implicitly)
is an atomic read-modify-write. Printed per block passed (one malloc in the
producer + one remote free in the consumer; the blocks= of the RESULT line): instructions in the whole
process and in the allocator's object, and atomic instructions.
Deterministic: callgrind runs the threads one at a time, so the numbers do
not depend on the machine's load (the interleaving is valgrind's, though,
so batches are larger than on two free-running CPUs).

--pinned R: instead of callgrind, R alternating timed runs per allocator with
every thread pinned to one CPU (taskset -c 1): the threads take turns, so the
rate does not depend on whether the scheduler ran them at the same time (the
bimodal wall-clock rate of a shared 2-CPU machine); the median of
cpu_ops_per_sec (blocks per CPU-second of the process) is printed. xthread
runs with 5,000,000 blocks there unless --blocks says otherwise.

--lib hakmem=lib/libhakmem.so is the default; --peers adds glibc, mimalloc,
jemalloc and tcmalloc (Debian packages). Python 3 standard library only;
run from the repository top.
"""
import argparse
import collections
import os
import re
import subprocess
import statistics
import sys
import tempfile

LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = {
    "glibc": "",
    "mimalloc": f"{LIBDIR}/libmimalloc.so.2",
    "jemalloc": f"{LIBDIR}/libjemalloc.so.2",
    "tcmalloc": f"{LIBDIR}/libtcmalloc_minimal.so.4",
}
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(.*)$")


def atomic_addrs(path):
    """Addresses of the atomic read-modify-write instructions of an object."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                         text=True, check=False).stdout
    addrs, lock_next = set(), False
    for line in out.splitlines():
        m = INSN.match(line)
        if not m:
            continue
        addr, text = int(m.group(1), 16), m.group(2).strip()
        words = text.split()
        if not words:
            continue
        if lock_next or words[0] == "lock" and len(words) > 1:
            addrs.add(addr)
        lock_next = words == ["lock"]  # a prefix objdump printed alone
        if words[0].startswith("xchg") and "(" in text:
            addrs.add(addr)
    return addrs


def self_costs(cg_file):
    """{object: {address: Ir}} of the instructions executed (self cost)."""
    costs = collections.defaultdict(collections.Counter)
    ob, skip_next = None, False
    with open(cg_file) as f:
        for line in f:
            if line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("calls="):
                skip_next = True  # the next cost line is the call's inclusive cost
            elif line.startswith("0x"):
                if skip_next:
                    skip_next = False
                    continue
                addr, ir = line.split()[:2]
                costs[ob][int(addr, 16)] += int(ir)
    return costs


def workload_argv(workload, blocks):
    if workload == "xbatch":
        return ["bench/bin/xbatch", "2", "2", "0", "1"]
    return ["bench/bin/xthread", "1", str(blocks), "1024", "16", "256", "1"]


def measure(name, lib, argv, tmp):
    out = os.path.join(tmp, f"{name}.cg")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=yes",
           "--dump-line=no", "--compress-pos=no", "--compress-strings=no",
           "--toggle-collect=producer", "--toggle-collect=consumer"] + argv
    env = dict(os.environ)
    if lib:
        env["LD_PRELOAD"] = os.path.abspath(lib)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    m = re.search(r"^RESULT .*\bblocks=(\d+)", r.stdout, re.M)
    if r.returncode != 0 or not m:
        sys.exit(f"remote_cost: {name} failed:\n{r.stderr[-2000:]}")
    blocks = int(m.group(1))
    costs = self_costs(out)
    total_ir = total_at = alloc_ir = alloc_at = 0
    alloc_obj = os.path.realpath(lib) if lib else None
    for ob, per in costs.items():
        ir = sum(per.values())
        at = 0
        if os.path.exists(ob):
            atoms = atomic_addrs(ob)
            at = sum(n for a, n in per.items() if a in atoms)
        total_ir += ir
        total_at += at
        is_alloc = (os.path.realpath(ob) == alloc_obj) if alloc_obj else ob.endswith("libc.so.6")
        if is_alloc:
            alloc_ir += ir
            alloc_at += at
    return total_ir / blocks, alloc_ir / blocks, total_at / blocks, alloc_at / blocks


def pinned(libs, argv, rounds):
    rates = collections.defaultdict(list)
    for _ in range(rounds):
        for name, lib in libs:  # alternating: a busy moment hits every allocator
            env = dict(os.environ)
            if lib:
                env["LD_PRELOAD"] = os.path.abspath(lib)
            r = subprocess.run(["taskset", "-c", "1"] + argv, env=env, capture_output=True,
                               text=True, check=False)
            m = re.search(r"\bcpu_ops_per_sec=(\d+)", r.stdout)
            if r.returncode != 0 or not m:
                sys.exit(f"remote_cost: {name} failed:\n{r.stderr[-2000:]}")
            rates[name].append(int(m.group(1)))
    print(f"`taskset -c 1 {' '.join(argv)}`, {rounds} alternating runs; blocks per CPU-second")
    print("| allocator | median | runs |")
    print("|---|---|---|")
    for name, _ in libs:
        v = rates[name]
        runs = ", ".join(f"{x / 1e6:.1f}" for x in v)
        print(f"| {name} | {statistics.median(v) / 1e6:.2f} M | {runs} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", choices=["xthread", "xbatch"], default="xthread")
    ap.add_argument("--blocks", type=int, default=200000, help="xthread's block count")
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--pinned", type=int, metavar="R", help="timed runs on one CPU instead")
    a = ap.parse_args()
    libs = [tuple(x.split("=", 1)) for x in a.lib] or [("hakmem", "lib/libhakmem.so")]
    if a.peers:
        libs += list(PEERS.items())
    if a.pinned:
        blocks = a.blocks if "--blocks" in sys.argv else 5000000
        return pinned(libs, workload_argv(a.workload, blocks), a.pinned)
    argv = workload_argv(a.workload, a.blocks)
    print(f"`{' '.join(argv)}` under callgrind; per block passed "
          "(malloc in the producer + remote free in the consumer)")
    print("| allocator | Ir (process) | Ir (allocator) | atomics (process) | atomics (allocator) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="hak-remote-cost.") as tmp:
        for name, lib in libs:
            t_ir, a_ir, t_at, a_at = measure(name, lib, argv, tmp)
            print(f"| {name} | {t_ir:.1f} | {a_ir:.1f} | {t_at:.3f} | {a_at:.3f} |", flush=True)


if __name__ == "__main__":
    main()
