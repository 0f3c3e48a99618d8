#!/usr/bin/env bash
# t_hakctl_errors — every error a user can meet gives a message that says
# what to do, and the documented exit status (1 error, 2 usage): no such
# process, a process without hakmem, permission denied (as another user),
# a segment of a newer ABI, a stale segment; plus --help/--version and usage
# mistakes.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

run "$HAKCTL" stats 2147483000
expect 1 "no such process: 2147483000; \`hakctl ps\` lists the processes that use hakmem"
plain sleep 30
run "$HAKCTL" get "$PPID_"
expect 1 "process $PPID_ (sleep) does not use hakmem (no /dev/shm/hakmem.$PPID_); start it with LD_PRELOAD"

workload -t 1 -s 30
w=$WPID
# permission denied, and why: another user may not read root's segment
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$HAKCTL" stats "$w"
    expect 1 "permission denied: /dev/shm/hakmem.$w belongs to uid 0 (root); run as that user or root"
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$HAKCTL" set "$w" adopt=0
    expect 1 "permission denied"
    # ps as that user lists it, unreadable
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$HAKCTL" ps
    expect 0
    grep -E "^ *$w +root .*permission denied" "$T/out" || { cat "$T/out"; fail "ps as nobody"; }
else
    echo "note: not root, permission checks as another user skipped"
fi

# a segment written by a newer hakmem (ABI 5): refused, with the versions
plain sleep 30
seg_copy "$w" "$PPID_"
seg_patch "$PPID_" abi_major 5
run "$HAKCTL" stats "$PPID_"
expect 1 "is newer than this tool understands (4.x); use the hakctl that came with"
run "$HAKCTL" ps
grep -E "^ *$PPID_ .*other segment ABI" "$T/out" || { cat "$T/out"; fail "ps shows the other ABI"; }

# one written by a hakmem before ABI 3 (a counter slot per heap, not
# rows): refused as older, not misread
seg_patch "$PPID_" abi_major 2
run "$HAKCTL" stats "$PPID_"
expect 1 "segment ABI 2.0 is older than this tool understands (4.x)"

# one of ABI 3 (the 60-class table: class indices from 20 up named other
# sizes): refused as older
seg_patch "$PPID_" abi_major 3
run "$HAKCTL" stats "$PPID_"
expect 1 "segment ABI 3.0 is older than this tool understands (4.x)"

# a stale segment: its process is gone / the pid was reused
seg_patch "$PPID_" abi_major 4
seg_patch "$PPID_" start_time 1
run "$HAKCTL" stats "$PPID_"
expect 1 "process $PPID_ is another program now (pid reused); /dev/shm/hakmem.$PPID_ is a stale segment (\`hakctl gc\` removes it)"
workload -t 1 -s 30
kill -9 "$WPID"
RM_FILES+=("/dev/shm/hakmem.$WPID")
for _ in $(seq 50); do [ -e "/proc/$WPID" ] || break; sleep 0.05; done
run "$HAKCTL" get "$WPID"
expect 1 "process $WPID is gone; /dev/shm/hakmem.$WPID is a stale segment"

# usage
run "$HAKCTL"
expect 2 "usage: hakctl"
run "$HAKCTL" frobnicate
expect 2 "unknown command 'frobnicate'"
run "$HAKCTL" --frob
expect 2 "unknown option '--frob'"
run "$HAKCTL" stats "$w" --frob
expect 2 "hakctl stats: unknown option '--frob'"
run "$HAKCTL" stats abc
expect 2 "'abc' is not a process id"
run "$HAKCTL" stats -- -5
expect 2 "not a process id"
run "$HAKCTL" stats "$w" --interval
expect 2 "option '--interval' needs a value"
run "$HAKCTL" top --sort bananas
expect 2 "--sort takes ops or mem"
run "$HAKCTL" --help
expect 0 "commands:"
for c in ps stats top get set reset trim gc shell; do
    run "$HAKCTL" "$c" --help
    expect 0 "usage: hakctl $c"
done
run "$HAKCTL" --version
expect 0 "hakctl 1."
grep -q "segment ABI 4\." "$T/out" || fail "--version names the segment ABI"
echo PASS
