#!/usr/bin/env bash
# bench/oom_fill.sh — how much of an address-space limit malloc hands out,
# and how much again after everything was freed, from 1 and 4 threads (the
# out-of-memory figures of docs/allocator.md; tests/t_oom.sh checks floors).
#
# Usage: bench/oom_fill.sh [-n RUNS] [LIB...]
#   LIB: libhakmem.so builds to compare (default lib/libhakmem.so); "glibc"
#   runs without a preload. RUNS (default 10) runs of
#   `tests/bin/oom_helper fill SIZE THREADS 0` under `ulimit -v` (150000 KiB
#   for 100 B and 4000 B blocks, 300000 KiB for the larger ones, as t_oom.sh).
# Prints, per library, thread count and block size: the first fill (MiB
# until malloc returned NULL) and the second (after freeing everything),
# each as min/median over the runs, and the lowest second/first ratio.
set -u
cd "$(dirname "$0")/.." || exit 2
runs=10
if [ "${1:-}" = -n ]; then
    runs=$2
    shift 2
fi
[ $# -gt 0 ] || set -- lib/libhakmem.so
H=tests/bin/oom_helper
if [ ! -x "$H" ]; then
    echo "build first: make test (needs $H)" >&2
    exit 2
fi

# min and median of the numbers on stdin
stats() {
    sort -n | awk '{v[NR] = $1} END {if (!NR) {print "-"; exit} printf "%d/%d", v[1], v[int((NR + 1) / 2)]}'
}

echo "| library | threads | block | ulimit -v | first fill MiB (min/median) | second fill MiB (min/median) | lowest second/first |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for lib in "$@"; do
    pre=
    if [ "$lib" != glibc ]; then
        [ -f "$lib" ] || { echo "no $lib" >&2; exit 2; }
        pre="LD_PRELOAD=$(readlink -f "$lib")"
    fi
    for threads in 1 4; do
        for size in 100 4000 40000 200000 900000 3000000; do
            limit=300000
            [ "$size" -le 4000 ] && limit=150000
            first=() second=() worst=
            for _ in $(seq "$runs"); do
                out=$(setsid timeout -s KILL 60 bash -c \
                    "ulimit -v $limit; exec env $pre $H fill $size $threads 0" 2>/dev/null)
                u=$(sed -n 's/.*usable_mib=\([0-9]*\).*/\1/p' <<<"$out")
                r=$(sed -n 's/.*refill_mib=\([0-9]*\).*/\1/p' <<<"$out")
                if [ -z "$u" ] || [ -z "$r" ]; then
                    echo "run failed: $out" >&2
                    continue
                fi
                first+=("$u")
                second+=("$r")
                if [ "$u" -gt 0 ]; then
                    pct=$((r * 100 / u))
                    if [ -z "$worst" ] || [ "$pct" -lt "$worst" ]; then worst=$pct; fi
                fi
            done
            printf '| %s | %s | %s | %s | %s | %s | %s %% |\n' "$(basename "$lib")" "$threads" "$size" \
                "$limit" "$(printf '%s\n' "${first[@]}" | stats)" \
                "$(printf '%s\n' "${second[@]}" | stats)" "${worst:--}"
        done
    done
done
