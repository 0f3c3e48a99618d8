#!/usr/bin/env bash
# t_daemon_profile — what hakmemd learns about a program is kept and used:
#  - run 1 of a program is tuned; its profile (JSON, one per executable:
#    path + build-id) is written to the state directory;
#  - run 2 of the same program starts with the learned setting within two
#    ticks of attaching ("profile ...: learned" in hakctl get);
#  - a corrupt profile (not JSON) and a hand-edited one (a value out of
#    range) are rejected whole with a log line: nothing of it is applied;
#  - a bad config is a clear error naming the field, and hakmemd does not
#    start (exit 1, no status file); so is a bad flag (exit 2).
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
dconfig '"profile_save_s": 1'
dstart

# ---- run 1: tuned, profile written
dwork -t 1 -s 100 -z 64 -n 20000
w=$WPID
for i in $(seq 100); do
    read -r v o <<<"$(knob "$w" refill_count 3)"
    [ "$o" = daemon ] && [ "$v" -ge 256 ] && break
    sleep 0.1
done
[ "$o" = daemon ] || fail "run 1 was not tuned"
prof=
for i in $(seq 100); do # a steady phase is remembered after 10 ticks, saved every second
    prof=$(ls "$T"/state/profiles/wl-*.json 2>/dev/null | head -1)
    [ -n "$prof" ] && python3 - "$prof" <<'PY' && break
import json, sys
p = json.load(open(sys.argv[1]))
ks = {(k["knob"], k["class"]): k["value"] for ph in p["phases"] for k in ph["knobs"]}
sys.exit(not ks.get(("refill_count", 3), 0) >= 256)
PY
    sleep 0.1
done
[ -n "$prof" ] || fail "no profile written"
cat "$prof"
python3 - "$prof" "$WL" <<'PY' || fail "profile content"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["hakmemd_profile"] == 2
assert p["exe"] == sys.argv[2], p["exe"]
assert p["key"].startswith(sys.argv[2] + "@"), p["key"]
assert p["start_phase"] == "tiny/local", p["start_phase"]
PY
learned=$(python3 -c 'import json,sys
p = json.load(open(sys.argv[1]))
print([k["value"] for ph in p["phases"] if ph["phase"] == p["start_phase"] for k in ph["knobs"]
       if (k["knob"], k["class"]) == ("refill_count", 3)][0])' "$prof")
kill "$w"
echo "ok: run 1 tuned, profile $prof: refill_count[3] = $learned"

# ---- run 2: starts tuned
dwork -t 1 -s 100 -z 64 -n 20000
w=$WPID
wait_log "pid $w (wl): profile $prof: " 5
for i in $(seq 10); do # two ticks
    read -r v o <<<"$(knob "$w" refill_count 3)"
    [ "$o" = daemon ] && break
    sleep 0.1
done
[ "$v" = "$learned" ] && [ "$o" = daemon ] || fail "run 2 starts with refill_count[3] $v ($o), not $learned"
grep -q "pid $w (wl): refill_count\[3\] 64 -> $learned \[profile\] profile tiny/local: learned" "$T/d.log" ||
    { grep "pid $w " "$T/d.log"; fail "run 2: no decision from the profile"; }
kill "$w"
echo "ok: run 2 started with refill_count[3] = $v from the profile"

# ---- a corrupt and a hand-edited profile: rejected whole
dstop
cp "$prof" "$T/good.json"
rejected() { # rejected WHAT LOGTEXT
    dstart
    dwork -t 1 -s 100 -z 64 -n 20000
    w=$WPID
    wait_log "pid $w (wl): profile $prof rejected, nothing applied: " 5
    grep "pid $w (wl): profile $prof rejected" "$T/d.log" | grep -qF -- "$2" ||
        fail "$1: the rejection does not say '$2'"
    read -r v o <<<"$(knob "$w" refill_count 3)"
    [ "$o" = default ] || [ "$(grep -c "pid $w (wl): .*\[profile\]" "$T/d.log")" = 0 ] ||
        fail "$1: something of the profile was applied"
    ! grep -q "pid $w (wl): .*\[profile\]" "$T/d.log" || fail "$1: a profile decision was taken"
    kill "$w"
    dkill
    echo "ok: $1 profile rejected"
}
printf '{ "hakmemd_profile": 2, "key": ' >"$prof"
rejected corrupt "not valid JSON"
python3 - "$T/good.json" "$prof" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for ph in p["phases"]:
    ph["knobs"].insert(0, {"knob": "drain_interval", "class": 0, "value": 8})  # fine on its own
    ph["knobs"].append({"knob": "refill_count", "class": 3, "value": 100000})  # out of range
json.dump(p, open(sys.argv[2], "w"))
PY
rejected "hand-edited" "refill_count value not in 1..512"

# ---- a bad config: the field is named, the daemon does not start
badcfg() { # badcfg JSON TEXT
    printf '%s\n' "$1" >"$T/bad.json"
    rm -f "$T/state/status.json"
    run timeout -s KILL 10 "$HAKMEMD" --foreground --no-bpf --config "$T/bad.json" --state-dir "$T/state"
    expect 1 "hakmemd: bad config: $T/bad.json: $2"
    [ ! -e "$T/state/status.json" ] || fail "a status file was written with a bad config"
}
badcfg '{ "interval_ms": "fast" }' 'field "interval_ms": expected an integer'
badcfg '{ "interval_ms": 5 }' 'field "interval_ms": 5 is out of range 50..60000'
badcfg '{ "intervall_ms": 500 }' 'field "intervall_ms": unknown'
badcfg '{ "knobs": { "fast_cap": { "max": 99999 } } }' 'field "knobs.fast_cap.max": expected an integer in 1..4096'
badcfg '{ "knobs": { "fast_lane": { "max": 9 } } }' 'field "knobs.fast_lane": unknown knob'
badcfg '{ "include": "wl" }' 'field "include": expected an array of strings'
badcfg '{ "lease_ms": 500 }' 'field "lease_ms": 500 is less than two intervals'
badcfg '{ "interval_ms": 100, ' 'not valid JSON (near line'
run timeout -s KILL 10 "$HAKMEMD" --foreground --config "$T/nonexistent.json"
expect 1 "$T/nonexistent.json: No such file or directory"
run timeout -s KILL 10 "$HAKMEMD" --interval-ms 0
expect 2 "--interval-ms 0: expected 50..60000"
run timeout -s KILL 10 "$HAKMEMD" --bogus
expect 2 "usage: hakmemd"
echo "ok: bad configs and flags refused"

# ---- SIGHUP: a good config is taken, a bad one is refused and the old kept
dconfig '"profile_save_s": 1'
dstart
dconfig '"profile_save_s": 2, "exclude": ["wl"]'
kill -HUP "$DPID"
wait_log "SIGHUP: config $T/cfg.json reloaded" 5
printf '{ "interval_ms": -1 }\n' >"$T/cfg.json"
kill -HUP "$DPID"
wait_log "SIGHUP: config not reloaded: $T/cfg.json: field \"interval_ms\": -1 is out of range" 5
kill -0 "$DPID" || fail "a bad config on SIGHUP stopped the daemon"
dstop
echo "ok: SIGHUP reloads a good config, keeps the old one over a bad one"

# ---- --once: one pass, its decisions on stdout
dconfig
dwork -t 1 -s 100 -z 64 -n 20000
run timeout -s KILL 30 "$HAKMEMD" --once --dry-run --no-bpf --config "$T/cfg.json" \
    --state-dir "$T/once" --interval-ms 200
expect 0 "hakmemd --once: 1 process(es)"
grep -q "^pid $WPID (wl): refill_count\[3\] [0-9]* -> [0-9]* \[" "$T/out" ||
    { cat "$T/out"; fail "--once printed no decision for $WPID"; }
grep -q "(dry run: nothing written)" "$T/out" || fail "--once --dry-run does not say so"
read -r v o <<<"$(knob "$WPID" refill_count 3)"
[ "$o" = default ] || fail "--dry-run wrote refill_count[3] ($v $o)"
echo "ok: --once --dry-run prints its decisions and writes nothing"
