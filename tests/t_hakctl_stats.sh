#!/usr/bin/env bash
# t_hakctl_stats — `hakctl stats PID` on a running workload: the per-class
# table and totals, numbers that rise between two calls, --json with the
# documented keys, --watch refreshing (one JSON object a line) until Ctrl-C.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 2 -s 30 -L
w=$WPID

run "$HAKCTL" stats "$w"
expect 0 "pid $w  hakctl_workload"
cat "$T/out"
for want in "in use " "ops/s " "fast-path hit" "large:" "global knobs:" "CLS  SIZE ALLOC" \
            "KNOBS = refill_count/fast_cap"; do
    grep -qF "$want" "$T/out" || fail "stats output lacks '$want'"
done
grep -qE '^ +3 +64 ' "$T/out" || fail "no row for class 3 (64 bytes)"
grep -qE '^ +L +>[0-9.]+[KM] ' "$T/out" || fail "no row for large blocks"
awk 'length > 80 { print; exit 1 }' "$T/out" || fail "stats output wider than 80 columns"

run "$HAKCTL" stats "$w" --json --interval 0.2
expect 0
cp "$T/out" "$T/a.json"
sleep 0.3
run "$HAKCTL" stats "$w" --json --interval 0.2
expect 0
python3 - "$T/a.json" "$T/out" "$w" <<'PY' || fail "stats --json"
import json, os, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
pid = int(sys.argv[3])
for d in (a, b):
    assert d["pid"] == pid and d["exe"] == "hakctl_workload", d.get("pid")
    assert isinstance(d["classes"], list) and len(d["classes"]) == int(os.environ["HAK_NUM_CLASSES"])
    for c in d["classes"]:
        for k in ("class", "size", "allocs", "frees", "live", "alloc_per_s", "refills",
                  "remote_frees", "adopted", "bytes_cached", "counters", "knobs"):
            assert k in c, (k, c)
        assert set(c["knobs"]) == {"refill_count", "fast_cap"}, c["knobs"]
    assert d["classes"][3]["size"] == 64
    t = d["totals"]
    assert t["ops_per_s"] > 0 and t["bytes_in_use"] > 4 << 20, t   # 4 x 1 MiB kept
    assert t["threads"] == 3 and d["large"]["live"] >= 4, (t["threads"], d["large"])
    assert d["knobs"]["adopt"] == 1
sa = sum(c["allocs"] for c in a["classes"]); sb = sum(c["allocs"] for c in b["classes"])
assert sb > sa, (sa, sb)
assert b["totals"]["allocs"] > a["totals"]["allocs"]
print("allocs rose from", sa, "to", sb)
PY

# --watch: refreshes until Ctrl-C, then exits 0
timeout -s INT --preserve-status 1.6 "$HAKCTL" stats "$w" --watch 0.3 --json >"$T/watch" 2>"$T/err"
RC=$?
expect 0
python3 - "$T/watch" <<'PY' || fail "stats --watch --json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) >= 3, len(rows)
allocs = [r["totals"]["allocs"] for r in rows]
assert allocs == sorted(allocs) and allocs[-1] > allocs[0], allocs
print(len(rows), "refreshes, allocs", allocs[0], "->", allocs[-1])
PY
# the human --watch too (not a terminal: frames one after another)
timeout -s INT --preserve-status 1 "$HAKCTL" stats "$w" --watch 0.3 >"$T/out" 2>"$T/err"
RC=$?
expect 0
[ "$(grep -c '^CLS' "$T/out")" -ge 2 ] || fail "--watch printed fewer than 2 frames"

# the process exits while watched
workload -t 1 -s 1
timeout 5 "$HAKCTL" stats "$WPID" --watch 0.2 >"$T/out" 2>&1
# shellcheck disable=SC2034 # read by expect
RC=$?
expect 0 "process $WPID exited"

run "$HAKCTL" stats
expect 2 "missing PID"
run "$HAKCTL" stats "$w" --watch 0
expect 2 "not a number of seconds"
run "$HAKCTL" stats --help
expect 0 "usage: hakctl stats PID"
echo PASS
