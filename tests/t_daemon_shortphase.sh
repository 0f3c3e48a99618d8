#!/usr/bin/env bash
# t_daemon_shortphase — phases shorter than a change takes to judge (3 s
# phases, 1 s ticks: bench/adaptive's quick mode) still leave a profile: each
# phase remembers what it ran with when it ended, so the program's next run
# starts from there. (Before: no phase memory, no profile was ever written.)
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
[ -x "$ROOT/bench/bin/adaptive" ] || skip "bench/bin/adaptive not built (make bench-bins)"
cp "$ROOT/bench/bin/adaptive" "$T/bin/adaptive"
DINT=1000 dstart
LD_PRELOAD=$HAKMEM_LIB timeout -s KILL 90 "$T/bin/adaptive" --phase-s 3 --cycles 1 --threads 2 \
    --seed 2 >"$T/w.log" 2>&1 || { tail "$T/w.log"; fail "the phase workload failed"; }
dstop
grep "phase" "$T/d.log" | head -20
python3 - "$T/state/profiles" <<'PY' || { cat "$T/d.log" | tail -30; fail "no usable profile after short phases"; }
import glob, json, sys
files = glob.glob(sys.argv[1] + "/adaptive-*.json")
assert files, "no profile written"
phases = json.load(open(files[0]))["phases"]
print("profile:", [p["phase"] for p in phases])
assert len(phases) >= 2, phases
PY
echo PASS
