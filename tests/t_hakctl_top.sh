#!/usr/bin/env bash
# t_hakctl_top — `hakctl top`: in batch mode (not a terminal) prints frames
# sorted by ops/s, --json frames parse; on a terminal (tmux) it redraws,
# switches sort on `m`/`o` and quits on `q`.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 2 -s 60
busy=$WPID

run "$HAKCTL" top --iterations 2 --interval 0.3
expect 0 "hakctl top:"
cat "$T/out"
[ "$(grep -c '^hakctl top:' "$T/out")" = 2 ] || fail "expected 2 frames"
awk 'length > 80 { exit 1 }' "$T/out" || fail "top wider than 80 columns"
grep -qE "^ *$busy +root +hakctl_workloa +[0-9.]+[kMG]? " "$T/out" || fail "workload row"

run "$HAKCTL" top --json --iterations 2 --interval 0.2
expect 0
python3 - "$T/out" "$busy" "$HAKCTL" <<'PY' || fail "top --json"
import json, subprocess, sys
frames = [json.loads(l) for l in open(sys.argv[1])]
assert len(frames) == 2
live = [o for o in frames[-1] if o["state"] == "live"]
ops = [o["ops_per_s"] for o in live]
assert ops == sorted(ops, reverse=True), ops
states = [o["state"] for o in frames[-1]]
assert states == sorted(states, key=lambda s: s != "live"), "live rows first"
run = subprocess.run([sys.argv[3], "top", "--json", "--sort", "mem", "--interval", "0.2"],
                     capture_output=True, text=True, check=True)
mem = [o["bytes_in_use"] for o in json.loads(run.stdout) if o["state"] == "live"]
assert mem == sorted(mem, reverse=True), mem
assert any(o["pid"] == int(sys.argv[2]) and o["ops_per_s"] > 0 for o in live)
print("top --json ok")
PY

tty_start "$HAKCTL" top --interval 0.3
tty_wait "sort: ops/s"
tty_wait " $busy "
tty_keys m
tty_wait "sort: memory"
tty_keys o
tty_wait "sort: ops/s"
tty_keys q
tty_exited
echo PASS
