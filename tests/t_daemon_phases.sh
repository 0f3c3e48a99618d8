#!/usr/bin/env bash
# t_daemon_phases — phases are recognised and their settings remembered: a
# program alternating 64-byte batches (phase tiny/local) and 2048-byte
# batches (mid/local) is tuned in each phase; when it comes back to a phase
# it has been in, the daemon puts that phase's learned setting back at once
# (decisions of rule "phase", "known setting" / "default"), in the tick the phase change
# is confirmed, not after the hysteresis of the rules.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
[ -x "$ROOT/tests/bin/daemon_phases" ] || skip "tests/bin/daemon_phases not built"
cp "$ROOT/tests/bin/daemon_phases" "$T/bin/phases"
dconfig
dstart
LD_PRELOAD=$HAKMEM_LIB "$T/bin/phases" 4 2 20000 >"$T/ph.out" 2>&1 &
w=$!
KILL_PIDS+=("$w")
wait_log "pid $w (phases): phase - -> tiny/local" 5
wait_log "pid $w (phases): phase tiny/local -> mid/local" 8
wait_log "pid $w (phases): phase mid/local -> tiny/local" 8
# The restore names the phase's setting: "known setting" for the knobs the
# daemon kept there, "default" for knobs it moved for the other phase only.
# (On a noisy machine every experiment of the first tiny/local phase may be
# rolled back: its setting is then the defaults, and the restore is only
# "default" lines. Both are the remembered setting coming back at once.)
restored=
for _ in $(seq 60); do
    grep -qE "pid $w \(phases\): .*\[phase\] phase tiny/local: (known setting|default)" "$T/d.log" && restored=1 && break
    sleep 0.05
done
[ -n "$restored" ] || { tail -40 "$T/d.log"; fail "no [phase] restore of tiny/local"; }
grep "pid $w " "$T/d.log" | sed 's/^hakmemd: info: //'
# the restore comes in the tick that confirms the phase: no rule could act
# before 3 ticks of signal
back=$(grep -n "pid $w (phases): phase mid/local -> tiny/local" "$T/d.log" | head -1 | cut -d: -f1)
restore=$(grep -nE "pid $w \(phases\): .*\[phase\] phase tiny/local: (known setting|default)" "$T/d.log" | head -1 | cut -d: -f1)
[ "$restore" -gt "$back" ] || fail "restore before the phase change?"
between=0
[ "$restore" -gt $((back + 1)) ] &&
    between=$(sed -n "$((back + 1)),$((restore - 1))p" "$T/d.log" | grep -c "pid $w (phases): .*\[")
[ "$between" = 0 ] || fail "$between other decisions came before the restore"
# what came back is what phase A ran with when it ended (its last step on
# refill_count[3], a grow or a rollback, before the phase changed)
left=$(grep -n "pid $w (phases): phase tiny/local -> mid/local" "$T/d.log" | head -1 | cut -d: -f1)
learned=$(head -n "$left" "$T/d.log" | grep "pid $w (phases): refill_count\[3\] " | tail -1 | sed 's/.* -> \([0-9]*\) .*/\1/')
# the restore writes only the knobs that differ: refill_count[3] among them,
# or it already had the learned value when the phase came back
rline=$(tail -n +"$restore" "$T/d.log" | grep -m1 "pid $w (phases): refill_count\[3\] .*\[phase\]")
if [ -n "$rline" ]; then
    restored=$(sed 's/.* -> \([0-9]*\) .*/\1/' <<<"$rline")
else
    restored=$(head -n "$back" "$T/d.log" | grep "pid $w (phases): refill_count\[3\] " | tail -1 | sed 's/.* -> \([0-9]*\) .*/\1/')
fi
echo "refill_count[3]: phase A ended with $learned; the first restore set ${restored}"
[ "$restored" = "$learned" ] || fail "phase A learned refill_count[3] = $learned, the restore set $restored"
wait "$w" || fail "the workload failed"
echo "ok: phase A's setting came back in the tick the phase returned"
dstop
