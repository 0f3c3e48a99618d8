#!/usr/bin/env bash
# The main job: a real program (python3 building and dropping dicts and
# lists) runs under hakmem; hakctl finds it, shows its live per-class
# counters, changes a knob while it runs, and the process obeys.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
command -v python3 >/dev/null || bash scripts/deps.sh test
make -s all

LIB=$PWD/lib/libhakmem.so
HAKCTL=$PWD/cli/hakctl
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

$HAKCTL gc >/dev/null 2>&1 || true # segments left by killed processes

say "a real workload under LD_PRELOAD=lib/libhakmem.so (python3, ~8 s)"
# PYTHONMALLOC=malloc: every Python object comes from malloc, i.e. from hakmem
PYTHONMALLOC=malloc LD_PRELOAD=$LIB python3 - <<'PY' &
import ctypes, time
ver = ctypes.CDLL(None).hakmem_version
ver.restype = ctypes.c_char_p
print("served by:", ver().decode(), flush=True)
t0, n = time.time(), 0
while time.time() - t0 < 8:
    d = {i: str(i) * (i % 7 + 1) for i in range(50000)}
    l = [(k, v, [k] * 3) for k, v in d.items()]
    n += len(l)
    del d, l
print("workload done: %d tuples built and dropped" % n, flush=True)
PY
pid=$!
sleep 2

say "hakctl ps"
$HAKCTL ps
say "hakctl stats $pid (two samples, busiest classes)"
$HAKCTL stats "$pid" | sed -n '1,24p'
say "hakctl set $pid fast_cap=32 --class 3   (live, no restart)"
$HAKCTL set "$pid" fast_cap=32 --class 3
$HAKCTL get "$pid" fast_cap | sed -n '1,8p'
sleep 1
say "hakctl trim $pid"
$HAKCTL trim "$pid"
wait "$pid"
say "after exit: the segment is gone"
ls /dev/shm/hakmem."$pid" 2>/dev/null || echo "/dev/shm/hakmem.$pid removed"
