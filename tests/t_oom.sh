#!/usr/bin/env bash
# t_oom — out of memory under an address-space limit (ulimit -v).
#
# tests/bin/oom_helper fills the limit with blocks of one size from 1 and 4
# threads, for small (100 B, 4000 B), mid (40 KB, 200 KB, 900 KB) and large
# (3 MB) blocks. Every run must end with malloc returning NULL and errno
# ENOMEM (no crash, no other errno). With hakmem, each must also get at
# least MIN percent of the limit (a floor against collapse, not a target),
# and after everything is freed a second fill must get at least 90 % of the
# first with one thread, 92 % with four: the memory came back, and a thread
# that runs out does not fail while the process still holds free memory it
# could hand out (other threads' caches and empty spans, a dead thread's
# free pages: lib/hak_oom.c). `bench/oom_fill.sh -n 20` measured a lowest
# ratio of 94 % with four threads (3 MB blocks: four blocks more or less;
# 96-99 % for the others); main at 2ad420d, before that recovery, 81 % for
# 4 x 4000 B (median 91 %). The four-thread runs are made 5 times, so that
# a racy shortfall shows. (glibc's arenas give 75 % for 4 x 40 KB.)
# `oom_helper pinned`: a thread fills the limit and exits, its blocks are
# freed but one in each 4 MiB, and a thread that already had a heap fills
# again: it must get at least 90 % of what was freed (the dead thread's
# segments cannot be given back; the filler takes that heap over: 82 of
# 80 MiB for 4000 B blocks; main at 2ad420d: 3 MiB). Under ulimit -v 500000,
# after 900 KB blocks filled the limit and were freed, malloc(292 MiB) must
# succeed, as it does with glibc (caches are released and the mapping
# retried before malloc gives up). Runs with the library under test, or
# glibc when there is none.
# Why: a program near its limit must get NULL + ENOMEM and be able to go on;
# an allocator that keeps freed memory mapped, or maps more address space
# than it uses, makes programs fail early under ulimit -v or in containers.
. "$(dirname "$0")/lib.sh"
H=$ROOT/tests/bin/oom_helper
[ -x "$H" ] || fail "$H not built (make test builds it)"
ulimit -c 0
pre=${HAKMEM_LIB:+LD_PRELOAD=$HAKMEM_LIB}
bad=0

# run LIMIT_KIB MIN_PCT SIZE THREADS BIG_MIB
run() {
    local limit=$1 min=$2 size=$3 threads=$4 big=$5 out rc
    out=$(setsid timeout -s KILL 60 bash -c "ulimit -v $limit; exec env $pre \"$H\" fill $size $threads $big" 2>"$T/err")
    rc=$?
    local what="ulimit -v $limit, $threads x $size B"
    if [ $rc -ne 0 ]; then
        echo "FAIL $what: exit $rc ($out)"
        sed 's/^/     stderr: /' "$T/err" | head -5
        bad=1
        return
    fi
    local usable refill big_ok
    usable=$(sed -n 's/.*usable_mib=\([0-9]*\).*/\1/p' <<<"$out")
    refill=$(sed -n 's/.*refill_mib=\([0-9]*\).*/\1/p' <<<"$out")
    big_ok=$(sed -n 's/.*big_ok=\([0-9]*\).*/\1/p' <<<"$out")
    local want=$((limit * min / 102400))
    local problems=()
    if [ -n "$HAKMEM_LIB" ]; then # (glibc's per-thread arenas do worse under small limits)
        [ "${usable:-0}" -ge $want ] || problems+=("usable ${usable} MiB < $want MiB ($min % of the limit)")
        local back=90
        [ "$threads" = 1 ] || back=92
        [ $((${refill:-0} * 100)) -ge $((${usable:-0} * back)) ] || problems+=("second fill ${refill} MiB < $back % of the first")
    fi
    [ "$big" = 0 ] || [ "$big_ok" = 1 ] || problems+=("malloc($big MiB) failed after everything was freed")
    if [ ${#problems[@]} -eq 0 ]; then
        echo "ok   $what: $out"
    else
        echo "FAIL $what: ${problems[*]} ($out)"
        bad=1
    fi
}

for threads in 1 4 4 4 4 4; do
    run 150000 30 100 $threads 0
    run 150000 30 4000 $threads 0
    run 300000 50 40000 $threads 0
    run 300000 50 200000 $threads 0
    run 300000 50 900000 $threads 0
    run 300000 50 3000000 $threads 0
done
run 500000 60 900000 1 292

# pinned SIZE: the second thread gets >= 90 % of what the first one freed
pinned() {
    local size=$1 out rc freed refill
    out=$(setsid timeout -s KILL 60 bash -c "ulimit -v 150000; exec env $pre \"$H\" pinned $size" 2>"$T/err")
    rc=$?
    freed=$(sed -n 's/.*freed_mib=\([0-9]*\).*/\1/p' <<<"$out")
    refill=$(sed -n 's/.*refill_mib=\([0-9]*\).*/\1/p' <<<"$out")
    if [ $rc -ne 0 ] || [ -z "$freed" ] || [ -z "$refill" ]; then
        echo "FAIL pinned $size B: exit $rc ($out)"
        sed 's/^/     stderr: /' "$T/err" | head -5
        bad=1
    elif [ -n "$HAKMEM_LIB" ] && [ $((refill * 100)) -lt $((freed * 90)) ]; then
        echo "FAIL pinned $size B: the second thread got $refill MiB of the $freed MiB freed ($out)"
        bad=1
    else
        echo "ok   pinned $size B: $out"
    fi
}
for size in 100 4000 40000; do pinned $size; done
[ $bad -eq 0 ] || fail "out-of-memory behaviour wrong (see above)"
echo "all out-of-memory runs ended in NULL + ENOMEM and recovered"
