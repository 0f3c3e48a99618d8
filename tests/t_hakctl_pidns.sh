#!/usr/bin/env bash
# t_hakctl_pidns — a container with its own pid namespace but our /dev/shm
# (a Kubernetes pod, --ipc=host) names its segment by its own pid: here
# hakmem.1, while our pid 1 is init. hakctl must judge it by the namespace
# the header records (pid_ns), never by our pid 1: ps lists it live under its
# pid in our namespace (found through /proc), gc keeps
# it while its process runs, and removes it once the namespace is gone
# (provably dead). (issue 11, item 6)
# The other way round: hakctl in a pid namespace below ours that still sees
# our /proc (`unshare -p -f` without --mount-proc), where kill() says ESRCH
# for every process of ours: gc must not call our live segments stale.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
[ "$(id -u)" = 0 ] || skip "needs root (unshare --pid)"
need_cmd unshare
f=/dev/shm/hakmem.1
seg_exists 1 && skip "$f exists already"
RM_FILES+=("$f")

unshare --pid --fork env LD_PRELOAD="$HAKMEM_LIB" "$WORKLOAD" -t 1 -s 60 >/dev/null 2>&1 &
u=$!
KILL_PIDS+=("$u")
c=
for _ in $(seq 100); do
    c=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null)
    [ -n "$c" ] && seg_exists 1 && break
    sleep 0.05
done
{ [ -n "$c" ] && seg_exists 1; } || skip "unshare --pid did not start a process with a segment"
KILL_PIDS+=("$c")
ns=$(stat -L -c %i "/proc/$c/ns/pid")
[ "$ns" != "$(stat -L -c %i /proc/self/ns/pid)" ] || fail "not in another pid namespace"
sleep 0.3 # let it count

run "$HAKCTL" gc
expect 0
seg_exists 1 || fail "gc removed the live segment of a process in another pid namespace"
run "$HAKCTL" stats "$c" --json
expect 0
python3 - "$T/out" <<'PY' || fail "stats --json by host pid: the container's segment"
import json, sys
j = json.load(open(sys.argv[1]))
assert sum(c["allocs"] for c in j["classes"]) > 0, j
PY
run "$HAKCTL" ps --json
expect 0
python3 - "$T/out" "$c" <<'PY' || fail "ps: the container's process is not listed live by its pid here"
import json, sys
rows = json.load(open(sys.argv[1]))
rows = rows["processes"] if isinstance(rows, dict) else rows
mine = [r for r in rows if r["pid"] == int(sys.argv[2])]
assert mine and mine[0].get("state", "live") == "live", (sys.argv[2], rows)
PY
echo "ok: kept, listed by ps under its pid here ($c), and live while its process runs"

kill -9 "$c" "$u" 2>/dev/null
for _ in $(seq 100); do [ -e "/proc/$c" ] || break; sleep 0.05; done
seg_exists 1 || fail "the killed process should leave its segment"
run "$HAKCTL" gc --verbose
expect 0 "removed $f (process gone)"
! seg_exists 1 || fail "gc kept the segment of a dead namespace"

workload -t 1 -s 60
run unshare -p -f "$HAKCTL" gc --dry-run --verbose
expect 0
! grep -q "hakmem.$WPID" "$T/out" || { cat "$T/out"; fail "gc from a pid namespace below ours calls live $WPID stale"; }
run unshare -p -f "$HAKCTL" ps
expect 0
grep -q "^ *$WPID .* wl\|^ *$WPID .*hakctl_workl" "$T/out" && ! grep -q "^ *$WPID .*stale" "$T/out" ||
    { cat "$T/out"; fail "ps from a pid namespace below ours does not list $WPID live"; }
echo "ok: from a pid namespace below ours (our /proc), gc keeps and ps lists live $WPID"
echo PASS
