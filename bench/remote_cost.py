#!/usr/bin/env python3
"""bench/remote_cost.py — what one cross-thread free costs, counted.

    bench/remote_cost.py [--blocks N] [--lib NAME=PATH ...] [--peers]

Runs `bench/bin/xthread 1 N 1024 16 256 1` (a producer mallocs, a consumer
frees: every free is remote) under valgrind's callgrind, once per
allocator, collecting only inside the producer and consumer threads
(--toggle-collect), with a cost per instruction address (--dump-instr).
Each executed instruction is then looked up in `objdump -d` of its object:
a `lock`-prefixed instruction or an `xchg` with memory (locked implicitly)
is an atomic read-modify-write. Printed per block passed (one malloc in the
producer + one remote free in the consumer): instructions in the whole
process and in the allocator's object, and atomic instructions.
Deterministic: callgrind runs the threads one at a time, so the numbers do
not depend on the machine's load (the interleaving is valgrind's, though,
so batches are larger than on two free-running CPUs).

--lib hakmem=lib/libhakmem.so is the default; --peers adds glibc, mimalloc,
jemalloc and tcmalloc (Debian packages). Python 3 standard library only;
run from the repository top.
"""
import argparse
import collections
import os
import re
import subprocess
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


def measure(name, lib, blocks, tmp):
    out = os.path.join(tmp, f"{name}.cg")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=yes",
           "--dump-line=no", "--compress-pos=no", "--compress-strings=no",
           "--toggle-collect=producer", "--toggle-collect=consumer",
           "bench/bin/xthread", "1", str(blocks), "1024", "16", "256", "1"]
    env = dict(os.environ)
    if lib:
        env["LD_PRELOAD"] = os.path.abspath(lib)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0 or "RESULT " not in r.stdout:
        sys.exit(f"remote_cost: {name} failed:\n{r.stderr[-2000:]}")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=200000)
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--peers", action="store_true")
    a = ap.parse_args()
    libs = [tuple(x.split("=", 1)) for x in a.lib] or [("hakmem", "lib/libhakmem.so")]
    if a.peers:
        libs += list(PEERS.items())
    print(f"xthread 1 {a.blocks} 1024 16 256 1 under callgrind; per block passed "
          "(malloc in the producer + remote free in the consumer)")
    print("| allocator | Ir (process) | Ir (allocator) | atomics (process) | atomics (allocator) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="hak-remote-cost.") as tmp:
        for name, lib in libs:
            t_ir, a_ir, t_at, a_at = measure(name, lib, a.blocks, tmp)
            print(f"| {name} | {t_ir:.1f} | {a_ir:.1f} | {t_at:.3f} | {a_at:.3f} |", flush=True)


if __name__ == "__main__":
    main()
