#!/usr/bin/env bash
# t_seg_litter — /dev/shm holds segments of live processes only:
#   a short process (50 runs of `sh -c`, which ends with _exit) publishes
#   nothing; one that lives (the workload) publishes, and its link goes at a
#   clean exit; a SIGKILLed one leaves a dangling link, which the next
#   process that publishes removes once it is HAK_SHM_GC_AGE_S old, if it was
#   written in our pid namespace (a dead pid there proves nothing about a
#   neighbour's namespace sharing /dev/shm: kept), and not before it is old.
#   (At most one process a second scans; tests/t_shm_gc checks that limit.)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

# /dev/shm is shared: a name that was there before a run is not its doing;
# and a run slower than the publishing delay (a loaded machine) may publish
left=0 fast=0
for _ in $(seq 50); do
    t0=$EPOCHREALTIME
    p=$(LD_PRELOAD=$HAKMEM_LIB sh -c 'echo $$')
    ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
    [ "$ms" -lt 40 ] || continue
    fast=$((fast + 1))
    # a link or file newer than the run's start is the run's
    if seg_exists "$p" && [ "$(stat -c %Z "/dev/shm/hakmem.$p")" -ge "${t0%.*}" ]; then
        left=$((left + 1))
        RM_FILES+=("/dev/shm/hakmem.$p")
    fi
done
[ "$fast" -ge 10 ] || skip "the machine is too loaded: only $fast of 50 runs took < 40 ms"
[ "$left" = 0 ] || fail "$left of $fast runs of sh -c true (< 40 ms each) left a segment"
echo "ok: $fast runs of sh -c true (< 40 ms each) left no segment"

ns=$(stat -L -c %i /proc/self/ns/pid)
mk() { # mk PID PIDNS AGE: a link as a process PID of namespace PIDNS leaves it
    RM_FILES+=("/dev/shm/hakmem.$1")
    rm -f "/dev/shm/hakmem.$1"
    ln -s "/proc/$1/fd/1000:pidns=$2" "/dev/shm/hakmem.$1"
    touch -h -d "$3" "/dev/shm/hakmem.$1"
}
dead=4194301 other=4194302 young=4194303 # above any pid this test meets
for p in $dead $other $young; do kill -0 $p 2>/dev/null && skip "pid $p exists"; done
mk $dead "$ns" "2 minutes ago"
mk $other 12345 "2 minutes ago"
mk $young "$ns" "now"
# At most one process of a user and pid namespace a second scans (the mtime
# of the stamp below, shm/shm_create.c): age it, so that the workload's
# publication scans; any other process's scan from now on removes the dead
# link just as well.
stamp=/dev/shm/hakmem-gc.$(id -u).$ns
[ -f "$stamp" ] && [ -O "$stamp" ] && touch -d "1 minute ago" "$stamp"

LD_PRELOAD=$HAKMEM_LIB "$WORKLOAD" -t 1 -s 1 >"$T/w.out" 2>&1 & # ends by itself
w=$!
KILL_PIDS+=("$w")
for _ in $(seq 100); do seg_exists "$w" && break; sleep 0.05; done
seg_exists "$w" || fail "the workload (lives 1 s) did not publish"
echo "ok: a process that lives publishes: $(readlink "/dev/shm/hakmem.$w")"
for _ in $(seq 100); do seg_exists $dead || break; sleep 0.05; done
! seg_exists $dead || fail "the dead link of our pid namespace was not removed by a starting process"
echo "ok: a dead link of our pid namespace, 2 minutes old, removed"
seg_exists $other || fail "a link of another pid namespace was removed"
echo "ok: a link of another pid namespace kept"
seg_exists $young || fail "a dead link younger than HAK_SHM_GC_AGE_S was removed"
echo "ok: a young dead link kept"
wait "$w"
! seg_exists "$w" || fail "the workload's link is left after its clean exit"
echo "ok: gone after a clean exit"

workload -t 1 -s 30
kill -9 "$WPID"
for _ in $(seq 50); do [ -e "/proc/$WPID" ] || break; sleep 0.05; done
seg_exists "$WPID" || fail "a SIGKILLed process leaves its link (for gc to find)"
RM_FILES+=("/dev/shm/hakmem.$WPID")
run "$HAKCTL" stats "$WPID"
expect 1 "is gone; /dev/shm/hakmem.$WPID is a stale segment"
echo PASS
