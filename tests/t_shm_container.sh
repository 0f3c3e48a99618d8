#!/usr/bin/env bash
# t_shm_container — a process in a container (its own mount namespace with a
# private /dev/shm, optionally its own pid namespace) is found through
# /proc/PID/root/dev/shm/hakmem.<its own pid>: stats, get and set work from
# the host by the host pid. Skips where namespaces cannot be made.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd unshare
unshare -m --propagation private true 2>/dev/null || skip "cannot create a mount namespace here"

# container CMD..: run the workload with its own /dev/shm; sets CPID (host pid)
container() {
    unshare "$@" --propagation private sh -c \
        'mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 3
         exec env LD_PRELOAD="$0" "$1" -t 1 -s 61' "$HAKMEM_LIB" "$WORKLOAD" >"$T/c.out" 2>&1 &
    disown
    local outer=$!
    KILL_PIDS+=("$outer")
    CPID=
    for _ in $(seq 100); do
        # with -f the workload is a child of unshare; else unshare execs into it
        CPID=$(pgrep -n -f "^$WORKLOAD -t 1 -s 61" 2>/dev/null)
        [ -n "$CPID" ] && grep -q '^pid ' "$T/c.out" && break
        sleep 0.05
    done
    [ -n "$CPID" ] || { cat "$T/c.out"; fail "container workload did not start"; }
    KILL_PIDS+=("$CPID")
    local inner # it publishes after ~50 ms, under its own pid, in its /dev/shm
    inner=$(awk '/^NSpid:/ { print $NF }' "/proc/$CPID/status")
    for _ in $(seq 100); do
        [ -L "/proc/$CPID/root/dev/shm/hakmem.$inner" ] && return 0
        sleep 0.05
    done
    fail "container workload $CPID did not publish its segment"
}

container -m
echo "workload in a mount namespace: pid $CPID"
[ -e "/dev/shm/hakmem.$CPID" ] && fail "the container's segment should not be in the host /dev/shm"
run "$HAKCTL" stats "$CPID"
expect 0 "pid $CPID  hakctl_workload"
run "$HAKCTL" set "$CPID" adopt=0
expect 0 "adopt = 0"
run "$HAKCTL" get "$CPID" adopt --json
expect 0
python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["knobs"][0]["owner"] == "manual"' \
    "$T/out" || fail "get --json after set in the container"
kill -9 "$CPID"

if unshare -m -p -f --mount-proc true 2>/dev/null; then
    container -m -p -f --mount-proc
    inner=$(awk '/^NSpid:/ { print $NF }' "/proc/$CPID/status")
    echo "workload in a pid namespace: host pid $CPID, its own pid $inner"
    [ "$inner" != "$CPID" ] || fail "expected a different pid inside the namespace"
    run "$HAKCTL" stats "$CPID"
    expect 0 "pid $CPID  hakctl_workload"
    run "$HAKCTL" set "$CPID" refill_count=9 --class 2
    expect 0 "refill_count = 9 (class 2)"
else
    echo "note: cannot create a pid namespace here; that part skipped"
fi
echo PASS
