#!/usr/bin/env bash
# t_seg_pidns — containers with their own pid namespaces sharing /dev/shm
# (a pod, --ipc=host) never delete each other's segments:
#   A's workload is pid 2 of its namespace, B's pid 1 of another: B's
#   start-up clean-up sees /dev/shm/hakmem.2, whose pid does not exist in
#   B's namespace, and keeps it (written in another namespace);
#   C's workload is pid 2 of a third namespace: its name is taken by A's
#   live segment, so C runs without one (one note on stderr) and A's stays;
#   from the host, hakctl reads A and B by their host pids throughout.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd unshare pgrep
unshare -p -f --mount-proc true 2>/dev/null || skip "cannot create a pid namespace here"

# ns NAME SECS INNER: a workload in a new pid namespace (same /dev/shm);
# INNER=2: run by a shell that stays pid 1. Sets HOST (host pid), NSINO.
ns() {
    local cmd="LD_PRELOAD=$HAKMEM_LIB $WORKLOAD -t 1 -s $2"
    if [ "$3" = 2 ]; then cmd="$cmd; :"; else cmd="exec env $cmd"; fi
    unshare -p -f --mount-proc sh -c "$cmd" >"$T/$1.out" 2>&1 &
    KILL_PIDS+=($!)
    disown $!
    HOST=
    for _ in $(seq 100); do
        HOST=$(pgrep -n -f "^$WORKLOAD -t 1 -s $2\$") && break
        sleep 0.05
    done
    [ -n "$HOST" ] || fail "$1: the workload did not start"
    KILL_PIDS+=("$HOST")
    NSINO=$(stat -L -c %i "/proc/$HOST/ns/pid")
    local inner
    inner=$(awk '/^NSpid:/ { print $NF }' "/proc/$HOST/status")
    [ "$inner" = "$3" ] || fail "$1: expected pid $3 in its namespace, got $inner"
    echo "$1: host pid $HOST, pid $inner in pid namespace $NSINO"
}
ino() { stat -c %i "/dev/shm/hakmem.$1" 2>/dev/null; }
wait_seg() { # wait_seg PID: until /dev/shm/hakmem.PID is there; prints its inode
    for _ in $(seq 100); do seg_exists "$1" && break; sleep 0.05; done
    seg_exists "$1" || fail "no /dev/shm/hakmem.$1"
    ls -l "/dev/shm/hakmem.$1" | sed 's/.*hakmem/hakmem/' >&2
    ino "$1"
}
for p in 1 2; do
    seg_exists $p && skip "/dev/shm/hakmem.$p exists already (another container?)"
    RM_FILES+=("/dev/shm/hakmem.$p")
done

ns A 31 2
a=$HOST
a_ino=$(wait_seg 2)
touch -h -d "2 minutes ago" /dev/shm/hakmem.2 # old enough for any clean-up

ns B 32 1
b=$HOST
wait_seg 1 >/dev/null
sleep 0.3 # B's clean-up runs right after it publishes
[ "$(ino 2)" = "$a_ino" ] || fail "B's start-up clean-up removed A's live segment"
echo "ok: B kept A's segment (pid 2 is not B's to judge)"
run "$HAKCTL" stats "$a"
expect 0 "pid $a  hakctl_workload"
run "$HAKCTL" stats "$b"
expect 0 "pid $b  hakctl_workload"

ns C 33 2
c=$HOST
for _ in $(seq 100); do grep -q "^hakmem: no live segment" "$T/C.out" && break; sleep 0.05; done
grep -c "^hakmem: no live segment for hakctl (its name is taken" "$T/C.out" | grep -qx 1 ||
    { cat "$T/C.out"; fail "C: expected one note that its name is taken"; }
[ "$(ino 2)" = "$a_ino" ] || fail "C took A's live segment"
echo "ok: C runs without a segment, A's stays"
run "$HAKCTL" stats "$a"
expect 0 "pid $a  hakctl_workload"
run "$HAKCTL" stats "$c"
expect 1 "another pid namespace"
echo PASS
