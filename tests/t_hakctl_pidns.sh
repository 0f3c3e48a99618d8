#!/usr/bin/env bash
# t_hakctl_pidns — a container with its own pid namespace but our /dev/shm
# (a Kubernetes pod, --ipc=host) names its segment by its own pid: here
# hakmem.1, while our pid 1 is init. hakctl must judge it by the namespace
# the header records (pid_ns), never by our pid 1: ps shows it live, gc keeps
# it while its process runs, and removes it once the namespace is gone
# (provably dead). (issue 11, item 6)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
[ "$(id -u)" = 0 ] || skip "needs root (unshare --pid)"
need_cmd unshare
f=/dev/shm/hakmem.1
[ -e "$f" ] && skip "$f exists already"
RM_FILES+=("$f")

unshare --pid --fork env LD_PRELOAD="$HAKMEM_LIB" "$WORKLOAD" -t 1 -s 60 >/dev/null 2>&1 &
u=$!
KILL_PIDS+=("$u")
c=
for _ in $(seq 100); do
    c=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null)
    [ -n "$c" ] && [ -e "$f" ] && break
    sleep 0.05
done
{ [ -n "$c" ] && [ -e "$f" ]; } || skip "unshare --pid did not start a process with a segment"
KILL_PIDS+=("$c")
ns=$(stat -L -c %i "/proc/$c/ns/pid")
[ "$ns" != "$(stat -L -c %i /proc/self/ns/pid)" ] || fail "not in another pid namespace"
# what the allocator records (ABI 1.1); written here in case this build does not
seg_patch 1 pid_ns "$ns"
sleep 0.3 # let it count

run "$HAKCTL" gc
expect 0
[ -e "$f" ] || fail "gc removed the live segment of a process in another pid namespace"
run "$HAKCTL" ps --json
python3 - "$T/out" <<'PY' || fail "ps --json: the container's segment"
import json, sys
e = [o for o in json.load(open(sys.argv[1])) if o["pid"] == 1][0]
assert e["state"] == "live", e
assert e["totals"]["allocs"] > 0, e
PY
echo "ok: kept and live while its process runs"

kill -9 "$c" "$u" 2>/dev/null
for _ in $(seq 100); do [ -e "/proc/$c" ] || break; sleep 0.05; done
[ -e "$f" ] || fail "the killed process should leave its segment"
run "$HAKCTL" gc --verbose
expect 0 "removed $f (process gone)"
[ ! -e "$f" ] || fail "gc kept the segment of a dead namespace"
echo PASS
