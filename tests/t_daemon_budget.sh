#!/usr/bin/env bash
# t_daemon_budget — the thread-cache budget holds: with cache_budget_mb
# below what the default caches of one thread already take (fast_cap x
# block size summed over the classes, about 12 MiB), the daemon grows no
# fast_cap although the class misses and its signal fires; refill_count,
# outside the budget, is still tuned. A config knob limit holds too: with
# refill_count capped at 128, it stops there.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
dconfig '"cache_budget_mb": 8' '"knobs": { "refill_count": { "max": 128 } }'
dwork -t 1 -s 60 -z 64 -n 20000
w=$WPID
dstart
for _ in $(seq 100); do
    read -r v o <<<"$(knob "$w" refill_count 3)"
    [ "$o" = daemon ] && [ "$v" -ge 128 ] && break
    sleep 0.1
done
[ "$o" = daemon ] && [ "$v" = 128 ] || fail "refill_count[3] is $v ($o), expected 128 by the daemon"
sleep 3 # 15 ticks: free_miss and cap_room fire all along
read -r v o <<<"$(knob "$w" refill_count 3)"
[ "$v" -le 128 ] || fail "refill_count[3] went past the config's max 128: $v"
# (a rollback may bring it back down meanwhile; never above the limit)
! grep -E "pid $w \(wl\): refill_count\[[0-9]+\] [0-9]+ -> (129|1[3-9][0-9]|[2-9][0-9][0-9])" "$T/d.log" ||
    fail "a decision set refill_count above the config's max 128"
read -r v o <<<"$(knob "$w" fast_cap 3)"
[ "$o" = default ] || fail "fast_cap[3] grew over the budget: $v ($o)"
! grep -q "pid $w (wl): fast_cap\[[0-9]*\] [0-9]* -> " "$T/d.log" || fail "a fast_cap grew over the budget"
echo "ok: fast_cap held by the 8 MiB budget, refill_count stopped at the config's 128"
dstop
