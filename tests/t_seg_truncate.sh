#!/usr/bin/env bash
# t_seg_truncate — the segment cannot be shrunk (or grown) under its process:
# a process of the same user truncating it, through the /dev/shm name or
# the file itself, fails and the workload runs to completion (exit 0, not
# SIGBUS); hakctl still reads it. Following the /dev/shm link blindly
# creates nothing. Punching a hole (the one change the seals allow) costs
# figures, never the process.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd truncate fallocate

LD_PRELOAD=$HAKMEM_LIB "$WORKLOAD" -t 2 -s 2 >"$T/w.out" 2>&1 & # ends by itself
w=$!
KILL_PIDS+=("$w")
for _ in $(seq 100); do seg_exists "$w" && break; sleep 0.05; done
seg_exists "$w" || fail "workload $w did not publish"
f=$(seg_file "$w")
size=$(stat -L -c %s "$f")
echo "segment of $w: $(ls -l "/dev/shm/hakmem.$w" | sed 's/.*hakmem/hakmem/'), $size bytes"

truncate -s 4096 "/dev/shm/hakmem.$w" 2>"$T/err" && fail "truncating through the /dev/shm name succeeded"
echo "ok: truncate /dev/shm/hakmem.$w: $(cat "$T/err")"
truncate -s 4096 "$f" 2>"$T/err" && fail "truncating $f succeeded"
echo "ok: truncate $f: $(cat "$T/err")"
truncate -s 8M "$f" 2>"$T/err" && fail "growing $f succeeded"
echo "ok: grow $f: $(cat "$T/err")"
[ "$(stat -L -c %s "$f")" = "$size" ] || fail "the segment's size changed"
if [ -L "/dev/shm/hakmem.$w" ]; then # what a tool following the link would have created
    t=$(readlink "/dev/shm/hakmem.$w")
    [ ! -e "$t" ] && [ ! -e "/dev/shm/$t" ] || fail "following the link created $t"
fi

run "$HAKCTL" stats "$w"
expect 0 "pid $w  hakctl_workload"
# the allowed damage: the pages come back as zeros, the process goes on
fallocate -p -o 65536 -l 65536 "$f" 2>/dev/null && echo "ok: punched a hole in the counters"

wait "$w"
rc=$?
[ $rc = 0 ] || { cat "$T/w.out"; fail "the workload exited $rc after the truncation attempts (135: SIGBUS)"; }
echo "ok: the workload exited 0"
echo PASS
