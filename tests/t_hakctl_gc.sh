#!/usr/bin/env bash
# t_hakctl_gc — `hakctl gc` removes the segment a SIGKILLed process left
# behind and the segment of a pid now used by another program, keeps live
# segments, and removes only what the caller may remove: another user's
# stale segment is listed as kept, with whose it is.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 1 -s 60
live=$WPID
workload -t 1 -s 60
dead=$WPID
kill -9 "$dead"
RM_FILES+=("/dev/shm/hakmem.$dead")
for _ in $(seq 50); do [ -e "/proc/$dead" ] || break; sleep 0.05; done
seg_exists "$dead" || fail "the killed workload left no segment"
plain sleep 60
seg_copy "$live" "$PPID_"
seg_patch "$PPID_" start_time 1          # pid reused: stale
reused=$PPID_
plain sleep 60
seg_copy "$live" "$PPID_"                # a live-looking copy: must stay
keep=$PPID_

run "$HAKCTL" gc --dry-run
expect 0 "would remove /dev/shm/hakmem.$dead (process gone)"
seg_exists "$dead" || fail "--dry-run removed a segment"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$HAKCTL" gc
    expect 0 "kept /dev/shm/hakmem.$dead (process gone): it belongs to root; only that user or root may remove it"
    seg_exists "$dead" || fail "another user's gc removed root's segment"
fi

run "$HAKCTL" gc
expect 0 "removed /dev/shm/hakmem.$dead (process gone)"
grep -qF "removed /dev/shm/hakmem.$reused (pid reused)" "$T/out" ||
    { cat "$T/out"; fail "gc did not remove the reused pid's segment"; }
! seg_exists "$dead" || fail "segment of the killed process still there"
seg_exists "$live" || fail "gc removed a live process's segment"
seg_exists "$keep" || fail "gc removed a live-looking segment"
"$HAKCTL" ps | grep -E "^ *$dead " && fail "ps still lists the removed segment"
run "$HAKCTL" gc bogus
expect 2 "unexpected argument"
echo PASS
