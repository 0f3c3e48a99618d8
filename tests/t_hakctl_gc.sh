#!/usr/bin/env bash
# t_hakctl_gc — `hakctl gc` removes the segment a SIGKILLed process left
# behind, the segment of a pid now used by another program and one its
# process no longer maps, keeps live segments, and removes only what the
# caller may remove: another user's stale segment is listed as kept, with
# whose it is. What is named like a segment but is none (a directory any
# user may plant) is skipped where it is and blocks nothing. Many removals
# are summarised in one line; --verbose and --json list them. (issue 11,
# item 10)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

# a directory under a segment's name, planted by anyone: skipped, in place,
# and gc goes on (it used to be renamed to a hidden entry, exit 1)
d=/dev/shm/hakmem.4000000
RM_FILES+=("$d")
mkdir "$d"
run "$HAKCTL" gc
expect 0
[ -d "$d" ] || fail "gc moved or removed the directory"
compgen -G '/dev/shm/.hakctl-gc.*.*' >/dev/null && fail "gc left a hidden .hakctl-gc entry"

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
seg_copy "$live" "$PPID_"                # its pid and start time, but not mapped by it
unmapped=$PPID_

run "$HAKCTL" gc --dry-run --verbose
expect 0 "would remove /dev/shm/hakmem.$dead (process gone)"
seg_exists "$dead" || fail "--dry-run removed a segment"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$HAKCTL" gc --verbose
    expect 0 "kept /dev/shm/hakmem.$dead (process gone): it belongs to root; only that user or root may remove it"
    seg_exists "$dead" || fail "another user's gc removed root's segment"
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$HAKCTL" gc
    expect 0
    grep -qE "^kept [0-9]+ stale segments? of other users: only their owner or root may remove them \(--verbose lists them\)$" \
        "$T/out" || { cat "$T/out"; fail "gc as another user: the summary of what it kept"; }
fi

# a file of another format under such a name: skipped too
other=/dev/shm/hakmem.4000001
RM_FILES+=("$other")
echo "not a segment" >"$other"
run "$HAKCTL" gc --verbose
expect 0 "removed /dev/shm/hakmem.$dead (process gone)"
grep -qF "skipped $other: not a hakmem segment" "$T/out" || { cat "$T/out"; fail "a foreign file"; }
[ -f "$other" ] || fail "gc removed a file that is not a segment"
grep -qF "removed /dev/shm/hakmem.$reused (pid reused)" "$T/out" ||
    { cat "$T/out"; fail "gc did not remove the reused pid's segment"; }
grep -qF "removed /dev/shm/hakmem.$unmapped (exec'd without hakmem)" "$T/out" ||
    { cat "$T/out"; fail "gc did not remove a segment its process does not map"; }
grep -qF "skipped $d: a directory" "$T/out" || { cat "$T/out"; fail "gc --verbose: the directory"; }
[ -d "$d" ] || fail "gc moved or removed the directory"
compgen -G '/dev/shm/.hakctl-gc.*.*' >/dev/null && fail "gc left a hidden .hakctl-gc entry"
! seg_exists "$dead" || fail "segment of the killed process still there"
seg_exists "$live" || fail "gc removed a live process's segment"
"$HAKCTL" ps | grep -E "^ *$dead " && fail "ps still lists the removed segment"

# 300 stale segments (as 300 killed short processes leave): one summary line;
# the directory still does not block anything
python3 - "$(seg_file "$live")" <<'PY'
import struct, sys
src = open(sys.argv[1], "rb").read(65536)
size = struct.unpack_from("<Q", src, 16)[0]
for pid in range(5000000, 5000300):  # above any pid_max: gone
    b = bytearray(src)
    struct.pack_into("<i", b, 24, pid)
    with open("/dev/shm/hakmem.%d" % pid, "wb") as f:
        f.write(b)
        f.truncate(size)
PY
for p in $(seq 5000000 5000299); do RM_FILES+=("/dev/shm/hakmem.$p"); done
run "$HAKCTL" gc
expect 0
cat "$T/out"
n=$(sed -n 's/^removed \([0-9]*\) stale segments$/\1/p' "$T/out")
{ [ -n "$n" ] && [ "$n" -ge 300 ]; } || fail "no 'removed N stale segments' summary (N >= 300)"
grep -q "^removed /dev/shm" "$T/out" && fail "gc printed one line per segment without --verbose"
[ "$(wc -l <"$T/out")" -le 3 ] || fail "gc printed more than a summary"
grep -qE "^skipped [0-9]+ entr(y|ies) named like a segment that (is|are) not one \(--verbose lists them\)$" \
    "$T/out" || fail "the summary should mention the skipped directory"
compgen -G '/dev/shm/hakmem.50002[0-9][0-9]' >/dev/null && fail "gc left some of the 300"
[ -d "$d" ] || fail "the directory moved"

# --json lists each, with why
seg_copy "$live" 5000400 && seg_patch 5000400 pid 5000400
run "$HAKCTL" gc --json --dry-run
expect 0
python3 - "$T/out" "$d" <<'PY' || fail "gc --json"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["dry_run"] is True
assert {"pid": 5000400, "path": "/dev/shm/hakmem.5000400", "reason": "process gone"} in j["removed"], j
assert {"pid": 4000000, "path": sys.argv[2], "reason": "a directory"} in j["skipped"], j
assert j["failed"] == [] and isinstance(j["kept"], list)
PY
run "$HAKCTL" gc bogus
expect 2 "unexpected argument"
echo PASS
