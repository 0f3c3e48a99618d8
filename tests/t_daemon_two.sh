#!/usr/bin/env bash
# t_daemon_two — one daemon a process. A second hakmemd (started by hand
# beside the service, or a host's beside a container's) finds processes the
# first manages; if both tuned them, each would undo the other's knobs and
# overwrite the other's lease every tick. The second leaves a process alone
# while the first's lease runs (`hakctl ps` keeps naming the first, the
# second's status counts it as another daemon's), takes it over when the
# holder dies (once its lease has run out) or stops (at once: a clean stop
# ends the lease), and a daemon that comes later yields to the new holder.
# A daemon restarted after a crash (same status file) takes its own
# predecessor's leases at once.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
dconfig '"lease_ms": 1000'
dwork -t 1 -s 60
w=$WPID
dstart
A=$DPID

# holder PID: the daemon pid `hakctl ps --json` gives as managing it, or ""
holder() {
    "$HAKCTL" ps --json --interval 0.01 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p["pid"] == int(sys.argv[1]):
        print(p.get("managed_by", ""))' "$1"
}
# wait_holder PID WANT SEC: until PID's lease is held by WANT
wait_holder() {
    local i h
    for i in $(seq $(($3 * 10))); do
        h=$(holder "$1")
        [ "$h" = "$2" ] && return 0
        sleep 0.1
    done
    fail "pid $1: lease held by '${h}', not $2 after $3 s"
}
status_num() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# second NAME: another daemon, same config, a state dir of its own; sets
# BPID to the daemon's pid (from its status file: $! is timeout's)
second() {
    mkdir -p "$T/$1"
    timeout -s KILL 120 "$HAKMEMD" --foreground --no-bpf --config "$T/cfg.json" \
        --state-dir "$T/$1" --interval-ms 200 >>"$T/$1.log" 2>&1 &
    KILL_PIDS+=("$!")
    local i
    for i in $(seq 100); do
        BPID=$(status_num "$T/$1/status.json" pid 2>/dev/null) && [ -n "$BPID" ] && break
        sleep 0.05
    done
    [ -n "$BPID" ] || { cat "$T/$1.log"; fail "daemon $1 did not start"; }
    KILL_PIDS+=("$BPID")
}
# log_has FILE TEXT SEC
log_has() {
    local i
    for i in $(seq $(($3 * 20))); do
        grep -qF -- "$2" "$1" && return 0
        sleep 0.05
    done
    cat "$1"
    fail "$1 lacks: $2"
}

wait_holder "$w" "$A" 5
echo "ok: daemon $A holds pid $w"

# ---- a second daemon leaves it alone
second b
B=$BPID
log_has "$T/b.log" "pid $w (wl): managed by another hakmemd (pid $A); left alone" 5
for i in $(seq 10); do # 2 s: ten of each daemon's ticks
    h=$(holder "$w")
    [ "$h" = "$A" ] || fail "read $i: lease held by '$h', not $A: the daemons fight over it"
    sleep 0.2
done
[ "$(status_num "$T/b/status.json" processes)" = 0 ] || fail "daemon $B counts pid $w as managed"
[ "$(status_num "$T/b/status.json" processes_of_other_daemons)" = 1 ] ||
    fail "daemon $B does not count pid $w as another daemon's"
run "$HAKCTL" daemon --status "$T/b/status.json"
expect 0 "left to other daemons: 1"
! grep -q "pid $w (wl): .* -> " "$T/b.log" || { cat "$T/b.log"; fail "daemon $B changed a knob of pid $w"; }
echo "ok: daemon $B leaves pid $w to $A for 2 s (status: 0 managed, 1 another's)"

# ---- the holder dies: the second takes over once the lease has run out
dkill
log_has "$T/b.log" "pid $w (wl): the lease of hakmemd $A ran out; managing it" 10
wait_holder "$w" "$B" 5
echo "ok: kill -9 of $A: daemon $B holds pid $w"

# ---- a third yields to the new holder; the holder's clean stop hands it over
second c
C=$BPID
log_has "$T/c.log" "pid $w (wl): managed by another hakmemd (pid $B); left alone" 5
kill -TERM "$B"
for i in $(seq 100); do kill -0 "$B" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$B" 2>/dev/null || fail "daemon $B did not stop on SIGTERM"
log_has "$T/c.log" "pid $w (wl): the lease of hakmemd $B ran out; managing it" 5
wait_holder "$w" "$C" 5
echo "ok: daemon $C yields to $B, and takes pid $w when $B stops"

# ---- a crash and a restart (same status file): the new daemon takes its
# predecessor's lease at once, it does not wait for it to run out
kill -9 "$C"
for i in $(seq 100); do kill -0 "$C" 2>/dev/null || break; sleep 0.05; done
: >"$T/c.log"
second c
D=$BPID
log_has "$T/c.log" "pid $w (wl): taking over the lease of hakmemd $C, gone before me" 5
wait_holder "$w" "$D" 5
! grep -q "managed by another hakmemd" "$T/c.log" || { cat "$T/c.log"; fail "daemon $D waited for its predecessor's lease"; }
kill -TERM "$D"
echo "ok: kill -9 of $C, restarted as $D with its status file: $D holds pid $w at once"
