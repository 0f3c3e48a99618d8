#!/usr/bin/env bash
# tests/fork_repeat.sh — runs a fork deadlock test many times in a row (not
# part of `make test`): pass count, total time, and for each hang the time
# at which the hung role last made progress (tests/fork_watch.h prints it).
#
# Usage: tests/fork_repeat.sh [-n RUNS] [-l LIB] TEST [SECONDS]
#   TEST     t_fork_stdio, t_fork_signal, ... (tests/bin/TEST)
#   RUNS     default 100
#   LIB      library to preload, default lib/libhakmem.so ('' = glibc)
#   SECONDS  passed to the test (its run length)
# Each run is in its own session under `timeout -s KILL 60`.
set -u
cd "$(dirname "$0")/.." || exit 2
runs=100 lib=$PWD/lib/libhakmem.so
while getopts n:l: o; do
    case $o in
    n) runs=$OPTARG ;;
    l) lib=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
test=${1:?usage: tests/fork_repeat.sh [-n RUNS] [-l LIB] TEST [SECONDS]}
shift
bin=tests/bin/$test
[ -x "$bin" ] || { echo "$bin not built"; exit 2; }
log=$(mktemp "${TMPDIR:-/tmp}/fork_repeat.XXXXXX")
trap 'rm -f "$log"' EXIT
pass=0 hangs=() other=0
t0=$(date +%s.%N)
for ((i = 1; i <= runs; i++)); do
    if [ -n "$lib" ]; then
        setsid timeout -s KILL 60 env LD_PRELOAD="$lib" "$bin" "$@" >"$log" 2>&1
    else
        setsid timeout -s KILL 60 "$bin" "$@" >"$log" 2>&1
    fi
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
    elif h=$(grep -o 'stopped at [0-9.]* s' "$log"); then
        hangs+=("$(awk '{print $3}' <<<"$h")")
    else
        other=$((other + 1))
        echo "run $i: exit $rc"
        tail -5 "$log" | sed 's/^/    | /'
    fi
done
t1=$(date +%s.%N)
echo "$test ${lib:-glibc}: $pass/$runs passed, ${#hangs[@]} hung, $other failed otherwise;" \
    "total $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
if [ ${#hangs[@]} -gt 0 ]; then
    printf '%s\n' "${hangs[@]}" | sort -n | awk '{ v[NR] = $1; s += $1 }
        END { printf "hung: last progress at min %.2f s, median %.2f s, max %.2f s after start (mean %.2f)\n",
              v[1], v[int((NR + 1) / 2)], v[NR], s / NR }'
fi
[ "$pass" -eq "$runs" ]
