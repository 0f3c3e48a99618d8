#!/usr/bin/env bash
# t_daemon_remote — a producer/consumer phase is recognised as remote. The
# workload alternates a one-thread 64-byte churn (tiny/local) with two
# threads that send each other 64-byte blocks to free: every free is of a
# block the other thread allocated. How many of them reach the remote_frees
# counter (a flush to the owner's span) depends on the caches: before
# HAK_TBIN_MIXED each thread's cache served most of them to its own next
# batch (1-15 % counted); now a cache that takes mail sends it home first
# at its overflow (docs/allocator.md, "shbench-sh8: mail goes home first"),
# 30-95 % counted, depending on how the two threads interleave. The daemon
# must call that phase tiny/remote either way (from the flushed blocks),
# and the first phase tiny/local, both ways, and say what share it measured.
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
# what the allocator counted in that phase: every tiny/remote tick says
# which share of all frees reached remote_frees
wait "$w" || fail "the workload failed"
counted=$(grep "pid $w (phases): tick tiny/remote" "$T/d.log" | sed -n 's/.*(counted \([0-9.]*\)%.*/\1/p' | sort -g | head -1)
[ -n "$counted" ] || fail "no tiny/remote tick said which share of frees it counted remote"
echo "lowest share of frees counted remote in a tiny/remote tick: $counted %"
echo "ok: the producer/consumer phase is tiny/remote, the churn tiny/local"
dstop
