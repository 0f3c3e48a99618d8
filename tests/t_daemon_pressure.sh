#!/usr/bin/env bash
# t_daemon_pressure — the pressure rules, fed from real files in the kernel's
# formats (the config's psi_path and cgroup_dir point at them: this machine
# may have no PSI and a cgroup v1 hierarchy). A busy watched process:
#  - PSI "some avg10" 25 %: large_cache_mb, seg_cache and purge_delay_ms go
#    down (owner daemon, reason "memory pressure"); the allocator applies
#    them (knob_reloads); no relief while it lasts; PSI back to 0: after the
#    calm ticks every knob is back where it was;
#  - cgroup memory.current at 95 % of memory.high: the same, then
#    memory.high "max": back;
#  - memory.events "high" counting up each tick: the same, then still: back.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
psi=$T/psi cg=$T/cg
mkdir -p "$cg"
psi_set() { # avg10
    printf 'some avg10=%s avg60=0.00 avg300=0.00 total=1000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n' "$1" >"$psi.tmp"
    mv "$psi.tmp" "$psi"
}
cg_set() { # high-events memory.high memory.current
    printf 'low 0\nhigh %s\nmax 0\noom 0\noom_kill 0\n' "$1" >"$cg/memory.events"
    echo "$2" >"$cg/memory.high"
    echo "$3" >"$cg/memory.current"
}
psi_set 0.00
cg_set 0 max 1000000
# a path that is not absolute is a config error naming the field
echo '{ "psi_path": "pressure/memory" }' >"$T/bad.json"
if out=$(timeout -s KILL 10 "$HAKMEMD" --once --no-bpf --config "$T/bad.json" --state-dir "$T/state" 2>&1); then
    fail "hakmemd started with a relative psi_path"
fi
grep -q 'field "psi_path"' <<<"$out" || fail "the error does not name psi_path: $out"
dconfig "\"psi_path\": \"$psi\"" "\"cgroup_dir\": \"$cg\""
dwork -t 2 -s 0
w=$WPID
DINT=200 dstart
wait_log "pid $w (wl): attached" 5
d_large=$(knob "$w" large_cache_mb | cut -d' ' -f1)
d_seg=$(knob "$w" seg_cache | cut -d' ' -f1)
d_purge=$(knob "$w" purge_delay_ms | cut -d' ' -f1)
echo "before: large_cache_mb $d_large, seg_cache $d_seg, purge_delay_ms $d_purge"

# all three below their value, owned by the daemon (within 5 s)
expect_tight() {
    local i v1 v2 v3 o
    for i in $(seq 50); do
        read -r v1 o <<<"$(knob "$w" large_cache_mb)"
        read -r v2 _ <<<"$(knob "$w" seg_cache)"
        read -r v3 _ <<<"$(knob "$w" purge_delay_ms)"
        [ "$o" = daemon ] && [ "$v1" -lt "$d_large" ] && [ "$v2" -lt "$d_seg" ] &&
            [ "$v3" -lt "$d_purge" ] && break
        sleep 0.1
    done
    echo "$1: large_cache_mb $v1, seg_cache $v2, purge_delay_ms $v3 ($o)"
    [ "$o" = daemon ] && [ "$v1" -lt "$d_large" ] && [ "$v2" -lt "$d_seg" ] && [ "$v3" -lt "$d_purge" ] ||
        { tail -20 "$T/d.log"; fail "$1: the knobs did not go down"; }
    local why
    why=$("$HAKCTL" get "$w" large_cache_mb --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["knobs"][0]["reason"])')
    echo "  reason: $why"
    [[ $why == "memory pressure "* ]] || fail "$1: hakctl get does not show the pressure reason"
}
# all three back to their value (within 5 s), the reason "back"
expect_back() {
    local i v1 v2 v3
    for i in $(seq 50); do
        read -r v1 _ <<<"$(knob "$w" large_cache_mb)"
        read -r v2 _ <<<"$(knob "$w" seg_cache)"
        read -r v3 _ <<<"$(knob "$w" purge_delay_ms)"
        [ "$v1" = "$d_large" ] && [ "$v2" = "$d_seg" ] && [ "$v3" = "$d_purge" ] && break
        sleep 0.1
    done
    echo "$1: large_cache_mb $v1, seg_cache $v2, purge_delay_ms $v3"
    [ "$v1" = "$d_large" ] && [ "$v2" = "$d_seg" ] && [ "$v3" = "$d_purge" ] ||
        { tail -20 "$T/d.log"; fail "$1: the knobs did not come back"; }
    grep -q "pid $w (wl): large_cache_mb [0-9]* -> $d_large \[relief\]" "$T/d.log" ||
        fail "$1: no relief decision in the log"
}

# ---- PSI
reloads0=$("$HAKCTL" stats "$w" --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["totals"]["knob_reloads"])')
psi_set 25.00
expect_tight "PSI 25 %"
# the allocator took the new knobs (it counts each generation it applies)
reloads=$("$HAKCTL" stats "$w" --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["totals"]["knob_reloads"])')
echo "knob generations the allocator applied: $reloads (was $reloads0)"
[ "$reloads" -gt "$reloads0" ] || fail "the allocator never applied the lowered knobs"
n0=$(grep -c "pid $w (wl): .*\[relief\]" "$T/d.log")
psi_set 0.00
expect_back "PSI 0"
n1=$(grep -c "pid $w (wl): .*\[relief\]" "$T/d.log")
[ "$n0" = 0 ] || fail "$n0 relief decisions while the pressure lasted"

# ---- cgroup: near memory.high
cg_set 0 104857600 99614720
expect_tight "memory.current at 95 % of memory.high"
cg_set 0 max 99614720
expect_back "memory.high max"

# ---- cgroup: memory.events "high" counting up
k=0
( while :; do k=$((k + 1)); cg_set "$k" max 1000; sleep 0.1; done ) &
bump=$!
KILL_PIDS+=("$bump")
expect_tight "memory.events high counting"
kill "$bump"
wait "$bump" 2>/dev/null
expect_back "memory.events high still"
grep "pid $w (wl): " "$T/d.log" | grep -E "\[(tight_[a-z]+|relief)\]" | sed 's/^hakmemd: info: //' | head -12
echo "ok: $n0 relief decisions before PSI cleared, $((n1 - n0)) after; three sources, down and back"
dstop
