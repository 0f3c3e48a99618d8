#!/usr/bin/env bash
# t_hakctl_knobs — get/set/reset/trim on a running workload: set and get
# round-trip (human and --json), the process obeys (average blocks per
# refill of the class follows refill_count), reset hands the knob back, and
# every knob error gives its message and exit status.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

# one thread, 20000 live 64-byte blocks at a time: the thread cache empties,
# so every refill asks for refill_count blocks of class 3
workload -t 1 -s 60 -z 64 -n 20000
w=$WPID

# average blocks per refill of class 3 over ~0.6 s, from two samples
refill_avg() {
    "$HAKCTL" stats "$w" --json --interval 0.6 | python3 -c '
import json, sys
d = json.load(sys.stdin)["classes"][3]["counters"]
print(d["refill_blocks"], d["refills"])' >"$T/s0"
    sleep 0.6
    "$HAKCTL" stats "$w" --json --interval 0.1 | python3 -c '
import json, sys
d = json.load(sys.stdin)["classes"][3]["counters"]
print(d["refill_blocks"], d["refills"])' >"$T/s1"
    python3 -c '
import sys
b0, r0 = map(int, open(sys.argv[1]).read().split()); b1, r1 = map(int, open(sys.argv[2]).read().split())
assert r1 > r0, "no refills"
print("%.2f" % ((b1 - b0) / (r1 - r0)))' "$T/s0" "$T/s1"
}
# within 5 % below the knob: a refill stops early only at the end of a slab
near() { python3 -c 'import sys; a, k = float(sys.argv[1]), float(sys.argv[2]); sys.exit(not (0.95 * k <= a <= k + 1e-9))' "$1" "$2"; }

run "$HAKCTL" get "$w"
expect 0 "KNOB"
grep -qE '^refill_count +0-' "$T/out" || fail "get shows no class groups"
grep -qE '^adopt +- +1 +0\.\.1 bool +default' "$T/out" || fail "get adopt row"
def=$("$HAKCTL" get "$w" refill_count --class 3 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["knobs"][0]["value"])')
echo "default refill_count of class 3: $def"
before=$(refill_avg)
echo "blocks per refill before: $before"
near "$before" "$def" || fail "blocks per refill $before with refill_count $def"

why="t_hakctl_knobs: a reason longer than 15"
run "$HAKCTL" set "$w" refill_count=10 --class 3 --reason "$why"
expect 0 "refill_count = 10 (class 3), owner manual"
run "$HAKCTL" get "$w" refill_count --class 3
expect 0
grep -qE "^refill_count +3 +10 +1\.\.512 blocks +manual +[0-9]+s ago +$why\$" "$T/out" ||
    { cat "$T/out"; fail "get after set (the whole reason)"; }
after=$(refill_avg)
echo "blocks per refill after set 10: $after"
near "$after" 10 || fail "the process did not obey refill_count=10 (average $after)"

run "$HAKCTL" get "$w" --json
expect 0
python3 - "$T/out" <<'PY' || fail "get --json"
import json, os, sys
d = json.load(open(sys.argv[1]))
ks = d["knobs"]
for k in ks:
    for f in ("name", "class", "value", "min", "max", "owner"):
        assert f in k, (f, k)
rc = {k["class"]: k for k in ks if k["name"] == "refill_count"}
assert len(rc) == int(os.environ["HAK_NUM_CLASSES"]) and rc[3]["value"] == 10 and rc[3]["owner"] == "manual", rc[3]
assert rc[3]["reason"] == "t_hakctl_knobs: a reason longer than 15" and rc[3]["set_ns"] > 0
assert rc[4]["owner"] == "default" and (rc[3]["min"], rc[3]["max"]) == (1, 512)
ad = [k for k in ks if k["name"] == "adopt"]
assert len(ad) == 1 and ad[0]["class"] is None and ad[0]["value"] == 1, ad
print("get --json ok:", len(ks), "entries")
PY

# several at once, a bool word, a per-class knob without --class = every class
run "$HAKCTL" set "$w" adopt=off fast_cap=300 purge_delay_ms=100
expect 0 "fast_cap = 300 (all classes), owner manual"
run "$HAKCTL" get "$w" fast_cap adopt
expect 0
grep -qE '^fast_cap +all +300 .* manual' "$T/out" || { cat "$T/out"; fail "fast_cap for all classes"; }
grep -qE '^adopt +- +0 .* manual' "$T/out" || fail "adopt=off"
run "$HAKCTL" ps
grep -E "^ *$w .*manual:4" "$T/out" || { cat "$T/out"; fail "ps should show manual:4"; }
sleep 0.3
"$HAKCTL" stats "$w" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["totals"]["knob_reloads"] >= 2, d["totals"]["knob_reloads"]
assert d["knob_gen"] >= 4, d["knob_gen"]' || fail "the process did not reload its knobs"

# reset hands back: value default, owner default, and the process follows
run "$HAKCTL" reset "$w" refill_count
expect 0 "refill_count reset to default"
run "$HAKCTL" get "$w" refill_count --class 3 --json
python3 -c '
import json, sys
k = json.load(open(sys.argv[1]))["knobs"][0]
assert k["owner"] == "default" and k["value"] == int(sys.argv[2]), k' "$T/out" "$def" ||
    fail "reset did not restore refill_count"
back=$(refill_avg)
echo "blocks per refill after reset: $back"
near "$back" "$def" || fail "after reset the process still refills $back blocks"
run "$HAKCTL" reset "$w"
expect 0 "adopt reset to default"
run "$HAKCTL" ps
grep -E "^ *$w .* default$" "$T/out" || { cat "$T/out"; fail "after reset all, owners should be default"; }

run "$HAKCTL" trim "$w"
expect 0 "pid $w: trimmed"

# errors: message and status
run "$HAKCTL" set "$w" bogus=1
expect 1 "unknown knob 'bogus'; known knobs: refill_count fast_cap adopt"
run "$HAKCTL" get "$w" bogus
expect 1 "known knobs:"
run "$HAKCTL" set "$w" refill_count=513
expect 1 "513 is out of range for refill_count: 1..512 blocks"
run "$HAKCTL" set "$w" adopt=2
expect 1 "out of range for adopt: 0..1 bool"
run "$HAKCTL" set "$w" refill_count=12 fast_cap=0      # nothing is written
expect 1 "out of range"
"$HAKCTL" get "$w" refill_count --class 3 | grep -qE '^refill_count +3 +'"$def"' ' ||
    fail "a refused set changed a knob"
run "$HAKCTL" set "$w" refill_count=abc
expect 2 "'abc' is not a value for refill_count"
run "$HAKCTL" set "$w" refill_count
expect 2 "expected KNOB=VALUE"
run "$HAKCTL" set "$w"
expect 2 "missing KNOB=VALUE"
run "$HAKCTL" set "$w" adopt=1 --class 2
expect 2 "adopt is a global knob: --class does not apply"
run "$HAKCTL" set "$w" refill_count=5 --class 99
expect 2 "no class 99"
run "$HAKCTL" set "$w" refill_count=5 --json
expect 2 "hakctl set: unknown option '--json'"
run "$HAKCTL" trim "$w" extra
expect 2 "unexpected argument"
echo PASS
