#!/usr/bin/env bash
# t_hakctl_exec — a hakmem process that execs a program without hakmem keeps
# its pid and start time, and its old segment stays behind with frozen
# figures. hakctl must see that the process no longer maps it: ps and top
# list it as stale, stats/get/set refuse it (set must not report success
# into a segment no one reads), and gc removes it. (issue 11, item 5)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 1 -s 0.3 -e 60
x=$WPID
RM_FILES+=("/dev/shm/hakmem.$x")
for _ in $(seq 100); do [ "$(cat "/proc/$x/comm" 2>/dev/null)" = sleep ] && break; sleep 0.05; done
[ "$(cat "/proc/$x/comm")" = sleep ] || fail "the workload did not exec sleep"
seg_exists "$x" || fail "exec should leave the old segment behind"
workload -t 1 -s 60
live=$WPID

run "$HAKCTL" ps
expect 0
grep -E "^ *$x .*stale: exec'd without hakmem, now sleep" "$T/out" ||
    { cat "$T/out"; fail "ps shows the exec'd process's segment as live"; }
grep -E "^ *$live .*hakctl_workloa +[0-9]+s " "$T/out" || fail "the live workload is not live"
run "$HAKCTL" ps --json
python3 - "$T/out" "$x" <<'PY' || fail "ps --json"
import json, sys
e = [o for o in json.load(open(sys.argv[1])) if o["pid"] == int(sys.argv[2])][0]
assert e["state"] == "stale" and e["stale_reason"] == "exec'd without hakmem", e
PY
run "$HAKCTL" top --iterations 1 --interval 0.05
grep -E "^ *$x .* stale$" "$T/out" || { cat "$T/out"; fail "top shows it as live"; }

run "$HAKCTL" set "$x" adopt=0
expect 1 "/dev/shm/hakmem.$x is a stale segment"
run "$HAKCTL" stats "$x"
expect 1 "exec'd a program without hakmem"
run "$HAKCTL" set "$live" adopt=1
expect 0 "pid $live: adopt = 1"

# stats --watch ends when its process execs away. On a loaded machine the
# workload may exec before hakctl has attached (then stats refuses it, exit
# 1): that run says nothing of --watch, so it goes again with a longer life.
for life in 0.8 3 8; do
    workload -t 1 -s "$life" -e 60
    y=$WPID
    RM_FILES+=("/dev/shm/hakmem.$y")
    run timeout 30 "$HAKCTL" stats "$y" --watch 0.1
    [ "$RC" -eq 1 ] && grep -qF "exec'd a program without hakmem" "$T/out" "$T/err" || break
    echo "note: $y exec'd before hakctl attached (life ${life}s); again"
done
expect 0 "process $y exec'd a program without hakmem"

run "$HAKCTL" gc --verbose
expect 0 "removed /dev/shm/hakmem.$x (exec'd without hakmem)"
! seg_exists "$x" || fail "gc left the segment of the exec'd process"
seg_exists "$live" || fail "gc removed a live segment"
echo PASS
