#!/usr/bin/env bash
# t_daemon_remote — a producer/consumer phase is recognised as remote. The
# workload alternates a one-thread 64-byte churn (tiny/local) with two
# threads that send each other 64-byte blocks to free: every free is of a
# block the other thread allocated, but each thread's cache serves most of
# them to its own next batch, so only a small share of its frees reach the
# remote_frees counter (a flush to the owner's span): 1-15 % depending on
# how the two threads interleave on the machine. The daemon must still call
# that phase tiny/remote (from the flushed blocks), and the first phase
# tiny/local, both ways, and say what share it measured. The test means
# something only while the counted share stays below the policy's remote
# band (25 %, daemon/policy.c): a classifier reading remote_frees / frees
# would then call the phase mixed or local, not remote.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
[ -x "$ROOT/tests/bin/daemon_phases" ] || skip "tests/bin/daemon_phases not built"
cp "$ROOT/tests/bin/daemon_phases" "$T/bin/phases"
dconfig
DINT=500 dstart --log-level debug
LD_PRELOAD=$HAKMEM_LIB "$T/bin/phases" 3 2 20000 remote >"$T/ph.out" 2>&1 &
w=$!
KILL_PIDS+=("$w")
wait_log "pid $w (phases): phase - -> tiny/local" 5
wait_log "pid $w (phases): phase tiny/local -> tiny/remote" 6
wait_log "pid $w (phases): phase tiny/remote -> tiny/local" 6
grep "pid $w (phases): tick tiny/remote" "$T/d.log" | sed 's/^hakmemd: debug: //' | head -3
# what the allocator counted in that phase: remote frees a small share of
# all frees (why a share of frees called it local)
wait "$w" || fail "the workload failed"
counted=$(grep "pid $w (phases): tick tiny/remote" "$T/d.log" | sed 's/.*(counted \([0-9.]*\)%.*/\1/' | sort -g | head -1)
echo "lowest share of frees counted remote in a tiny/remote tick: $counted %"
awk -v c="$counted" 'BEGIN { exit !(c < 25) }' || fail "the workload did not hide its remote frees in the caches (counted $counted %)"
echo "ok: the producer/consumer phase is tiny/remote, the churn tiny/local"
dstop
