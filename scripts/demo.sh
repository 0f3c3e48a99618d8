#!/usr/bin/env bash
# The main job: a real program (python3 building and dropping dicts and
# lists) runs under hakmem; hakctl finds it and shows its live per-class
# counters; hakmemd, the learning daemon, tunes its knobs while it runs
# (owner daemon, with the reason), a person pins a knob by hand, and when the
# daemon stops its knobs go back to their defaults. Under a minute; leaves
# nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
command -v python3 >/dev/null || bash scripts/deps.sh test
make -s all

LIB=$PWD/lib/libhakmem.so
HAKCTL=$PWD/cli/hakctl
HAKMEMD=$PWD/daemon/hakmemd
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
tmp=$(mktemp -d /tmp/hakmem-demo.XXXXXX)
pid= dto=
cleanup() {
    [ -n "$dto" ] && kill -9 -- "-$dto" 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

$HAKCTL gc >/dev/null 2>&1 || true # segments left by killed processes

# The daemon tunes only this demo's own python (a private copy of the
# interpreter, matched by path), not other hakmem processes on the machine.
py=/usr/bin/python3 # the interpreter itself, not a version manager's shim script
[ -x "$py" ] || py=$(command -v python3)
cp -L "$py" "$tmp/python3"
printf '{ "include": ["%s/*"], "lease_ms": 2000 }\n' "$tmp" >"$tmp/hakmemd.json"

say "a real workload under LD_PRELOAD=lib/libhakmem.so (python3, ~20 s)"
# PYTHONMALLOC=malloc: every Python object comes from malloc, i.e. from hakmem
PYTHONMALLOC=malloc LD_PRELOAD=$LIB "$tmp/python3" - <<'PY' &
import ctypes, time
ver = ctypes.CDLL(None).hakmem_version
ver.restype = ctypes.c_char_p
print("served by:", ver().decode(), flush=True)
t0, n = time.time(), 0
while time.time() - t0 < 20:
    d = {i: str(i) * (i % 7 + 1) for i in range(50000)}
    l = [(k, v, [k] * 3) for k, v in d.items()]
    n += len(l)
    del d, l
print("workload done: %d tuples built and dropped" % n, flush=True)
PY
pid=$!
sleep 1.5

say "hakctl stats $pid (two samples, busiest classes)"
$HAKCTL stats "$pid" | sed -n '1,16p'

say "hakmemd --foreground --interval-ms 250 (the learning daemon; its decisions:)"
timeout -s KILL 60 "$HAKMEMD" --foreground --config "$tmp/hakmemd.json" --state-dir "$tmp/state" \
    --interval-ms 250 2>"$tmp/hakmemd.log" &
dto=$!
sleep 5
grep -E "BPF|\] " "$tmp/hakmemd.log" | sed 's/^hakmemd: [a-z]*: /  /' | head -20

say "hakctl ps   (managed processes carry [hakmemd PID])"
$HAKCTL ps | grep -E "PID|$pid"
say "hakctl get $pid   (knobs the daemon set: owner daemon, and why)"
$HAKCTL get "$pid" | grep -E "KNOB|daemon"
say "hakctl daemon"
$HAKCTL daemon --status "$tmp/state/status.json" || true

say "hakctl set $pid fast_cap=32 --class 3   (a person pins a knob: the daemon leaves it alone)"
$HAKCTL set "$pid" fast_cap=32 --class 3
sleep 2
$HAKCTL get "$pid" fast_cap --class 3

say "stop the daemon: its leases end, the process hands its knobs back to the defaults"
kill -TERM "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$tmp/state/status.json")"
wait "$dto" 2>/dev/null || true
dto=
tail -2 "$tmp/hakmemd.log" | sed 's/^hakmemd: [a-z]*: /  /'
sleep 1
$HAKCTL get "$pid" | grep -E "KNOB|lease|manual" | head -8
$HAKCTL daemon --status "$tmp/state/status.json" | head -1 || true

say "hakctl trim $pid"
$HAKCTL trim "$pid"
wait "$pid"
wpid=$pid pid=
say "after exit: the segment is gone"
ls /dev/shm/hakmem."$wpid" 2>/dev/null || echo "/dev/shm/hakmem.$wpid removed"
