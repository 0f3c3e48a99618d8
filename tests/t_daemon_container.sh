#!/usr/bin/env bash
# t_daemon_container — hakmemd finds a process in a container (its own mount
# namespace with a private /dev/shm, then also its own pid namespace)
# through /proc/PID/root/dev/shm, as hakctl does, and tunes it: the knob
# hakctl reads from the host has owner daemon. Skips where namespaces
# cannot be made.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_cmd unshare
unshare -m --propagation private true 2>/dev/null || skip "cannot create a mount namespace here"
dconfig '"rescan_ms": 200'
dstart

# container ARGS..: the workload with its own /dev/shm; sets CPID (host pid)
container() {
    unshare "$@" --propagation private sh -c \
        'mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 3
         exec env LD_PRELOAD="$0" "$1" -t 1 -s 61 -z 64 -n 20000' "$HAKMEM_LIB" "$WL" >"$T/c.out" 2>&1 &
    disown
    KILL_PIDS+=("$!")
    CPID=
    for _ in $(seq 100); do
        CPID=$(pgrep -n -f "^$WL -t 1 -s 61" 2>/dev/null)
        [ -n "$CPID" ] && grep -q '^pid ' "$T/c.out" && break
        sleep 0.05
    done
    [ -n "$CPID" ] || { cat "$T/c.out"; fail "container workload did not start"; }
    KILL_PIDS+=("$CPID")
}

for ns in "-m" "-m -p -f"; do
    # shellcheck disable=SC2086
    container $ns
    seg_exists "${CPID}" && fail "the container's segment is in the host /dev/shm"
    wait_log "pid $CPID (wl): attached /proc/$CPID/root/dev/shm/hakmem." 10
    wait_owner "$CPID" refill_count 3 daemon || fail "unshare $ns: refill_count[3] is $KV ($KO), not tuned"
    echo "ok: unshare $ns: pid $CPID found and tuned (refill_count[3] = $KV, owner daemon)"
    kill -9 "$CPID"
done
dstop
