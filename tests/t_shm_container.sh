#!/usr/bin/env bash
# t_shm_container — a process in a container (its own mount namespace with a
# private /dev/shm, optionally its own pid namespace) is found through
# /proc/PID/root/dev/shm/hakmem.<its own pid>: stats, get and set work from
# the host by the host pid. Skips where namespaces cannot be made.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
. "$(dirname "$0")/container_lib.sh"
need_container

container "$WORKLOAD" -m -t 1 -s 61
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
    container "$WORKLOAD" "-m -p -f --mount-proc" -t 1 -s 61
    echo "workload in a pid namespace: host pid $CPID, its own pid $CINNER"
    [ "$CINNER" != "$CPID" ] || fail "expected a different pid inside the namespace"
    run "$HAKCTL" stats "$CPID"
    expect 0 "pid $CPID  hakctl_workload"
    run "$HAKCTL" set "$CPID" refill_count=9 --class 2
    expect 0 "refill_count = 9 (class 2)"
else
    echo "note: cannot create a pid namespace here; that part skipped"
fi
echo PASS
