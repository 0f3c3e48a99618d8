#!/usr/bin/env bash
# t_hakctl_ps — `hakctl ps` finds processes running under hakmem, shows live
# figures, lists a killed process's segment and a reused pid's as stale, and
# `ps --json` is an array of objects with pid and exe.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 2 -s 30
live=$WPID
workload -t 1 -s 30
dead=$WPID
kill -9 "$dead"
for _ in $(seq 50); do [ -e "/proc/$dead" ] || break; sleep 0.05; done
seg_exists "$dead" || fail "a SIGKILLed process should leave its segment behind"
RM_FILES+=("/dev/shm/hakmem.$dead")
plain sleep 30                     # a live pid whose segment is someone else's
seg_copy "$live" "$PPID_"
seg_patch "$PPID_" start_time 12345

run "$HAKCTL" ps
expect 0 "PID USER"
cat "$T/out"
grep -E "^ *$live +root +hakctl_workloa +[0-9]+s +3 " "$T/out" || fail "live workload row missing or wrong"
grep -E "^ *$live .* default$" "$T/out" || fail "knob owners should read 'default'"
grep -E "^ *$dead .*stale: process gone" "$T/out" || fail "killed process not listed as stale"
grep -E "^ *$PPID_ .*stale: pid reused by sleep" "$T/out" || fail "reused pid not listed as stale"
awk 'length > 80 { exit 1 }' "$T/out" || fail "ps output wider than 80 columns"

run "$HAKCTL" ps --json
expect 0
python3 - "$T/out" "$live" "$dead" "$PPID_" <<'PY' || fail "ps --json"
import json, sys
a = json.load(open(sys.argv[1]))
live, dead, reused = map(int, sys.argv[2:])
assert isinstance(a, list)
by = {o["pid"]: o for o in a}
for o in a:
    assert "pid" in o and "exe" in o, o
w = by[live]
assert w["exe"] == "hakctl_workload" and w["state"] == "live", w
assert w["ops_per_s"] > 0 and w["bytes_in_use"] >= 0 and w["threads"] == 3, w
assert w["knob_owners"] == "default", w
assert by[dead]["state"] == "stale" and by[dead]["stale_reason"] == "process gone", by[dead]
assert by[reused]["state"] == "stale" and by[reused]["stale_reason"] == "pid reused", by[reused]
print("ps --json ok:", len(a), "entries")
PY
# --json before the command works too
run "$HAKCTL" --json ps
expect 0
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" || fail "hakctl --json ps"
# a real program: CPython under hakmem, found by its name
if [ -x /usr/bin/python3 ]; then
    LD_PRELOAD=$HAKMEM_LIB PYTHONMALLOC=malloc /usr/bin/python3 -c '
import time
t = time.time() + 30
while time.time() < t:
    d = {i: str(i) * 3 for i in range(20000)}
    del d' &
    py=$!
    KILL_PIDS+=("$py")
    disown "$py"
    for _ in $(seq 100); do seg_exists "$py" && break; sleep 0.05; done
    sleep 0.3
    run "$HAKCTL" ps --json
    python3 - "$T/out" "$py" <<'PY' || fail "ps does not show the python3 process"
import json, sys
o = [o for o in json.load(open(sys.argv[1])) if o["pid"] == int(sys.argv[2])][0]
assert o["exe"].startswith("python3") and o["state"] == "live" and o["ops_per_s"] > 0, o
print("python3 found:", o["exe"], "%.0f ops/s" % o["ops_per_s"])
PY
    run "$HAKCTL" stats "$py"
    expect 0 "pid $py  python3"
fi
run "$HAKCTL" ps extra
expect 2 "unexpected argument"
echo "PASS"
