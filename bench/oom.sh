#!/usr/bin/env bash
# bench/oom.sh — usable memory under an address-space limit, hakmem vs glibc
# (the figures of docs/allocator.md, "Out of memory").
#
# Usage: bench/oom.sh [LIMIT_KIB]   (default 500000; needs make test's
#        tests/bin/oom_helper and lib/libhakmem.so)
# For 40 KB, 200 KB and 900 KB blocks: MiB malloc hands out before NULL
# under `ulimit -v LIMIT` (one thread), and whether malloc(292 MiB) succeeds
# after everything was freed; the address space 200 MiB of live 100-900 KB
# blocks takes (with 20000 replacements); how many of 2640 blocks freed from
# posix_memalign(64, n) a later malloc(n) hands out again; how many
# bytearray(n) Python makes before MemoryError under the same limit; the
# start-up address space: VmSize of `cat` at start, and the lowest
# `ulimit -v` (KiB, found to 100 by bisection) under which
# `oom_helper aligned 100 10` works (with hakmem really loaded: far below,
# the loader skips the preload and the program runs on glibc).
# HAKMEM_LIB=/path/libhakmem.so measures another build.
set -u
cd "$(dirname "$0")/.." || exit 2
limit=${1:-500000}
H=tests/bin/oom_helper
LIB=${HAKMEM_LIB:-$PWD/lib/libhakmem.so}
if [ ! -x "$H" ] || [ ! -f "$LIB" ]; then
    echo "build first: make test" >&2
    exit 2
fi
printf '%-34s %14s %14s\n' "ulimit -v $limit" hakmem glibc
row() { # row NAME CMD... (run with and without the preload)
    local name=$1 a b
    shift
    a=$( (ulimit -v "$limit"; LD_PRELOAD=$LIB "$@") 2>&1 | tail -1)
    b=$( (ulimit -v "$limit"; "$@") 2>&1 | tail -1)
    printf '%-34s %14s %14s\n' "$name" "$a" "$b"
}
for n in 40000 200000 900000; do
    row "usable MiB, $n B blocks" bash -c "$H fill $n 1 292 | sed -n 's/.*usable_mib=\([0-9]*\).*/\1/p'"
    row "  then malloc(292 MiB) ok" bash -c "$H fill $n 1 292 | sed -n 's/.*big_ok=\([0-9]*\).*/\1/p'"
done
limit=unlimited
row "MiB mapped for 200 MiB of 100-900 KB" bash -c "$H mixed 200 | sed -n 's/.*mapped_mib=\([0-9]*\).*/\1/p'"
for n in 5000 40000 200000; do
    row "posix_memalign(64, $n) reused" bash -c "$H aligned $n 2640 | sed -n 's/.*reused=\([0-9]*\).*/\1/p'"
done
runs_at() { # runs_at KIB PRELOAD: the helper works (on hakmem if PRELOAD)
    (ulimit -v "$1"; LD_PRELOAD=$2 "$H" aligned 100 10 >/dev/null 2>&1) || return 1
    [ -z "$2" ] || (ulimit -v "$1"; LD_PRELOAD=$2 cat /proc/self/maps 2>/dev/null) | grep -q libhakmem
}
lowest() { # lowest PRELOAD: the smallest limit that works, to 100 KiB
    local lo=1000 hi=200000 mid
    runs_at $hi "$1" || { echo ">$hi"; return; }
    while [ $((hi - lo)) -gt 100 ]; do
        mid=$(((lo + hi) / 2))
        if runs_at $mid "$1"; then hi=$mid; else lo=$mid; fi
    done
    echo "$hi"
}
# shellcheck disable=SC2002 # cat is the program measured
vmsize() { LD_PRELOAD=$1 cat /proc/self/status | awk '/^VmSize:/ {print $2}'; }
printf '%-34s %14s %14s\n' "start-up VmSize of cat, KiB" "$(vmsize "$LIB")" "$(vmsize "")"
printf '%-34s %14s %14s\n' "lowest ulimit -v, KiB" "$(lowest "$LIB")" "$(lowest "")"
limit=${1:-500000}
if command -v python3 >/dev/null; then
    for n in 40000 200000 900000; do
        row "python bytearray($n) objects" python3 -c "
objs = []
try:
    while True: objs.append(bytearray($n))
except MemoryError:
    pass
print(len(objs))"
    done
fi
