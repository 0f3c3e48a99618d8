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
# bytearray(n) Python makes before MemoryError under the same limit.
set -u
cd "$(dirname "$0")/.." || exit 2
limit=${1:-500000}
H=tests/bin/oom_helper
if [ ! -x "$H" ] || [ ! -f lib/libhakmem.so ]; then
    echo "build first: make test" >&2
    exit 2
fi
printf '%-34s %14s %14s\n' "ulimit -v $limit" hakmem glibc
row() { # row NAME CMD... (run with and without the preload)
    local name=$1 a b
    shift
    a=$( (ulimit -v "$limit"; LD_PRELOAD=$PWD/lib/libhakmem.so "$@") 2>&1 | tail -1)
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
