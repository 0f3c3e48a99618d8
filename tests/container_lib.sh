# shellcheck shell=bash
# tests/container_lib.sh — a hakmem workload in a container, for
# t_shm_container and t_daemon_container (not a test). Source it after
# hakctl_lib.sh (or daemon_lib.sh), which it uses for KILL_PIDS and fail.
#   need_container          skip unless unshare can make a mount namespace
#   container PROG "UNSHARE_ARGS" ARGS..
#       runs PROG ARGS under hakmem in `unshare UNSHARE_ARGS --propagation
#       private`, with a tmpfs of its own on /dev/shm (so its segment is not
#       in the host's), output in $T/c.out; waits until it printed "pid " and
#       published /dev/shm/hakmem.<its own pid> there, seen from the host
#       through /proc/PID/root; sets CPID (its host pid) and CINNER (its pid
#       in its own pid namespace). Both it and unshare are killed on exit.
#       "PROG ARGS" must match only it (pgrep -f).

need_container() {
    need_cmd unshare pgrep
    unshare -m --propagation private true 2>/dev/null || skip "cannot create a mount namespace here"
}

container() {
    local prog=$1 opts=$2 outer
    shift 2
    # shellcheck disable=SC2016,SC2086 # the inner script is for the inner sh
    unshare $opts --propagation private sh -c \
        'mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 3
         lib=$1; shift
         exec env LD_PRELOAD="$lib" "$@"' sh "$HAKMEM_LIB" "$prog" "$@" >"$T/c.out" 2>&1 &
    outer=$!
    disown "$outer"
    KILL_PIDS+=("$outer")
    CPID=
    for _ in $(seq 100); do
        # with -f the workload is a child of unshare; else unshare execs into it
        CPID=$(pgrep -n -f "^$prog $*" 2>/dev/null)
        [ -n "$CPID" ] && grep -q '^pid ' "$T/c.out" && break
        sleep 0.05
    done
    [ -n "$CPID" ] || { cat "$T/c.out"; fail "container workload did not start (unshare $opts)"; }
    KILL_PIDS+=("$CPID")
    CINNER=$(awk '/^NSpid:/ { print $NF }' "/proc/$CPID/status")
    # it publishes after ~50 ms, under its own pid, in its own /dev/shm
    for _ in $(seq 100); do
        [ -L "/proc/$CPID/root/dev/shm/hakmem.$CINNER" ] && return 0
        sleep 0.05
    done
    fail "container workload $CPID did not publish its segment (unshare $opts)"
}
