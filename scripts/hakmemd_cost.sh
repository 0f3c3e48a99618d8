#!/usr/bin/env bash
# What hakmemd costs, measured (the numbers in docs/hakmemd.md come from here):
#  1. its own CPU (/proc/PID/schedstat: nanoseconds on a CPU, exact for its
#     one thread; utime + stime count 10 ms ticks) over SECONDS while it watches
#     PROCS idle preloaded processes, at the default 1 s tick;
#  2. the slowdown of a watched process in --dry-run mode against no daemon:
#     bench/bin/larson (2 threads), RUNS runs each, alternating, medians of
#     ops/s and of ops per CPU second;
#  3. what its BPF program costs every other process on the machine:
#     nanoseconds per getppid() (bench/bin/syscall_ns) with no daemon, with
#     the daemon in its default BPF mode, and with HAKMEMD_BPF_SYSCALLS=
#     tracepoint (sys_enter: every syscall runs the program), RUNS runs
#     each, alternating, medians. Needs root (skipped otherwise).
#  4. what its page-fault program costs every other process: CPU
#     nanoseconds per page fault (bench/bin/fault_ns; its CPU clock, not
#     the wall clock, which on a shared machine mostly measures the wait
#     for a CPU) with no daemon, with the daemon
#     in its default BPF mode (faults from /proc minflt, no fault program)
#     and with HAKMEMD_BPF_FAULTS=on, RUNS runs each, alternating, medians
#     and the spread (max-min)/median of each. Needs root.
# Usage: scripts/hakmemd_cost.sh [--procs N] [--seconds S] [--runs R] [--only 1|2|3|4]
# The daemon is restricted (config include) to this script's own processes.
set -euo pipefail
cd "$(dirname "$0")/.."
procs=100 seconds=60 runs=9 only=
while [ $# -gt 0 ]; do
    case "$1" in
    --only) only=$2; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--procs N] [--seconds S] [--runs R] [--only 1|2|3|4]" >&2; exit 2 ;;
    esac
done
make -s daemon/hakmemd lib/libhakmem.so bench/bin/larson bench/bin/syscall_ns bench/bin/fault_ns >/dev/null
LIB=$PWD/lib/libhakmem.so
T=$(mktemp -d /tmp/hakmemd-cost.XXXXXX)
pids=() dto=
cleanup() {
    [ -n "$dto" ] && kill -9 -- "-$dto" 2>/dev/null
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/bin" "$T/state"
cp /bin/sleep "$T/bin/idle"
cp bench/bin/larson "$T/bin/larson"
printf '{ "include": ["%s/bin/*"] }\n' "$T" >"$T/cfg.json"
cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
start_daemon() { # start_daemon [--bpf] ARGS..: sets dto (timeout's pid = its group) and dpid
    local bpf=--no-bpf
    [ "${1:-}" = --bpf ] && { bpf=; shift; }
    rm -f "$T/state/status.json"
    # shellcheck disable=SC2086
    timeout -s KILL 3600 daemon/hakmemd --foreground $bpf --config "$T/cfg.json" \
        --state-dir "$T/state" --log-level warning "$@" 2>>"$T/d.log" &
    dto=$!
    for _ in $(seq 100); do
        dpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
            "$T/state/status.json" 2>/dev/null) && return 0
        sleep 0.05
    done
    echo "hakmemd did not start" >&2
    exit 1
}
stop_daemon() { kill -TERM "$dpid"; wait "$dto" 2>/dev/null || true; dto=; }

# ---- 1. CPU with PROCS idle processes
if [ -z "$only" ] || [ "$only" = 1 ]; then
for _ in $(seq "$procs"); do
    LD_PRELOAD=$LIB "$T/bin/idle" 3600 &
    pids+=($!)
    disown $! # no "Killed" notices at the end
done
sleep 1
start_daemon
sleep 5 # attached, first samples taken
managed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["processes"])' "$T/state/status.json")
c0=$(cpu_ns "$dpid")
sleep "$seconds"
c1=$(cpu_ns "$dpid")
stop_daemon
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
pids=()
python3 - "$c0" "$c1" "$seconds" "$managed" <<'PY'
import sys
c0, c1, s, n = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
cpu = (c1 - c0) / 1e9
print("daemon CPU with %s idle watched processes: %.3f s over %.0f s = %.3f %% of one core"
      % (n, cpu, s, 100 * cpu / s))
PY
fi

# ---- 2. slowdown of a watched process in --dry-run
if [ -z "$only" ] || [ "$only" = 2 ]; then
run_larson() {
    LD_PRELOAD=$LIB "$T/bin/larson" 2 8 128 1024 1 12345 2 |
        sed -n 's/.*cpu_ops_per_sec=\([0-9]*\) ops_per_sec=\([0-9]*\).*/\2 \1/p'
}
: >"$T/off"
: >"$T/dry"
for _ in $(seq "$runs"); do
    run_larson >>"$T/off"
    start_daemon --dry-run
    run_larson >>"$T/dry"
    stop_daemon
done
python3 - "$T/off" "$T/dry" "$runs" <<'PY'
import statistics, sys
off = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
dry = [tuple(map(float, l.split())) for l in open(sys.argv[2])]
for i, what in ((0, "ops/s"), (1, "ops per CPU second")):
    a, b = statistics.median(x[i] for x in off), statistics.median(x[i] for x in dry)
    print("larson-2t %s, median of %s alternating runs: no daemon %.3g, daemon --dry-run %.3g: %+.1f %%"
          % (what, sys.argv[3], a, b, 100 * (b / a - 1)))
PY
grep -v "BPF off" "$T/d.log" | head -5 || true
fi

# alternate MEASURE OPTIN STATUS_FIELD: RUNS times, alternating, MEASURE (a
# command printing one number) with no daemon, with the daemon in its default
# BPF mode and with OPTIN (VAR=VALUE) in its environment, appended to
# $T/a_none, $T/a_default, $T/a_optin; each daemon's STATUS_FIELD of its
# status file, as it said it, to $T/a_mode_default, $T/a_mode_optin.
alternate() {
    local measure=$1 optin=$2 field=$3 how
    : >"$T/a_none"; : >"$T/a_default"; : >"$T/a_optin"
    for _ in $(seq "$runs"); do
        $measure >>"$T/a_none"
        for how in default optin; do
            if [ $how = default ]; then start_daemon --bpf; else eval "$optin start_daemon --bpf"; fi
            python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], "?"))' \
                "$T/state/status.json" "$field" >"$T/a_mode_$how"
            $measure >>"$T/a_$how"
            stop_daemon
        done
    done
}

# ---- 3. what the BPF program costs every syscall on the machine
if { [ -z "$only" ] || [ "$only" = 3 ]; } && [ "$(id -u)" = 0 ]; then
    sys_ns() { bench/bin/syscall_ns 2000000 | sed -n 's/ns_per_syscall=//p'; }
    alternate sys_ns HAKMEMD_BPF_SYSCALLS=tracepoint bpf_syscalls
    python3 - "$T/a_none" "$T/a_default" "$T/a_optin" "$runs" "$(cat "$T/a_mode_default")" <<'PY'
import statistics, sys
med = [statistics.median(float(l) for l in open(f)) for f in sys.argv[1:4]]
print("getppid() ns, median of %s alternating runs: no daemon %.0f; daemon, default BPF "
      "(syscalls by %s) %.0f (%+.0f ns); daemon, HAKMEMD_BPF_SYSCALLS=tracepoint %.0f (%+.0f ns)"
      % (sys.argv[4], med[0], sys.argv[5], med[1], med[1] - med[0], med[2], med[2] - med[0]))
PY
fi

# ---- 4. what the page-fault program costs every page fault on the machine
if { [ -z "$only" ] || [ "$only" = 4 ]; } && [ "$(id -u)" = 0 ]; then
    fault_ns() { bench/bin/fault_ns 2000000 | sed -n 's/.*cpu_ns_per_fault=//p'; }
    alternate fault_ns HAKMEMD_BPF_FAULTS=on bpf_faults
    [ "$(cat "$T/a_mode_default")" = False ] || { echo "the default daemon counts faults by BPF" >&2; exit 1; }
    [ "$(cat "$T/a_mode_optin")" = True ] || { echo "HAKMEMD_BPF_FAULTS=on did not load the fault program" >&2; exit 1; }
    python3 - "$T/a_none" "$T/a_default" "$T/a_optin" "$runs" <<'PY'
import statistics, sys
runs = [[float(l) for l in open(f)] for f in sys.argv[1:4]]
med = [statistics.median(r) for r in runs]
sp = [100 * (max(r) - min(r)) / m for r, m in zip(runs, med)]
print("page fault CPU ns, median of %s alternating runs (spread): no daemon %.0f (%.0f %%); daemon, "
      "default (faults from /proc) %.0f (%.0f %%, %+.1f %%); daemon, HAKMEMD_BPF_FAULTS=on %.0f "
      "(%.0f %%, %+.1f %%)" % (sys.argv[4], med[0], sp[0], med[1], sp[1], 100 * (med[1] / med[0] - 1),
                               med[2], sp[2], 100 * (med[2] / med[0] - 1)))
PY
fi
