#!/usr/bin/env bash
# t_daemon_container — hakmemd finds a process in a container (its own mount
# namespace with a private /dev/shm, then also its own pid namespace)
# through /proc/PID/root/dev/shm, as hakctl does, and tunes it: the knob
# hakctl reads from the host has owner daemon. Skips where namespaces
# cannot be made.
. "$(dirname "$0")/daemon_lib.sh"
. "$(dirname "$0")/container_lib.sh"
need_daemon
need_container
dconfig '"rescan_ms": 200'
dstart

for ns in "-m" "-m -p -f"; do
    container "$WL" "$ns" -t 1 -s 61 -z 64 -n 20000
    seg_exists "${CPID}" && fail "the container's segment is in the host /dev/shm"
    wait_log "pid $CPID (wl): attached /proc/$CPID/root/dev/shm/hakmem." 10
    wait_owner "$CPID" refill_count 3 daemon || fail "unshare $ns: refill_count[3] is $KV ($KO), not tuned"
    echo "ok: unshare $ns: pid $CPID found and tuned (refill_count[3] = $KV, owner daemon)"
    kill -9 "$CPID"
done
dstop
