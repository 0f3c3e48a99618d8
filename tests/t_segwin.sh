#!/usr/bin/env bash
# t_segwin — segments outside free()'s fast-path window (lib/hak_segmap.c).
#
# HAKMEM_TEST_SEGWIN=N shrinks the window to N chunks of 4 MiB (0: none), so
# segments land outside it; their blocks are then freed by hak_free_slow,
# which finds them in the authoritative (two-level) segment map. Under 0
# (every segment outside) and 2 (the first segment inside, most others
# outside):
#   1. a workload of 3 threads shows its segments outside in the process
#      figure segs_outside (all of them under 0; some, not all, under 2),
#      and free_slow, the daemon's cache-miss signal, is not inflated: it
#      stays at the flushes (a full cache), as with the whole window, not at
#      every free;
#   2. the stress tests pass: content-checked blocks of every size, frees
#      from other threads and from exited threads, realloc, fork; and one
#      under ThreadSanitizer.
# Invalid and double frees of such blocks: tests/t_detect.sh, mode outside.
# Why: correctness must not depend on where the kernel puts a segment; a
# block outside the window only costs a slower free.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd python3 timeout setsid

# ---- 1. the figures, from the live segment of a workload
figures() { # figures WINDOW THREADS [legacy]: "segs outside frees free_slow flushes" (64 B) in $T/fig
    local w=$WORKLOAD args=(-t "$2" -s 0 -z 64 -n 1000)
    if [ "${3:-}" = legacy ]; then # the bottom-up mmap layout
        WORKLOAD=setarch
        args=("$(uname -m)" -L "$w" "${args[@]}")
    fi
    if [ "$1" = full ]; then
        workload "${args[@]}"
    else
        HAKMEM_TEST_SEGWIN=$1 workload "${args[@]}"
    fi
    WORKLOAD=$w
    run "$HAKCTL" stats "$WPID" --json --interval 0.3
    expect 0
    kill -9 "$WPID"
    python3 - "$T/out" >"$T/fig" <<'PY' || fail "stats --json: no figures"
import json, sys
d = json.load(open(sys.argv[1]))
t, c = d["totals"], d["classes"][3]["counters"]
assert d["classes"][3]["size"] == 64
print(t["mapped_bytes"] >> 22, t["segs_outside"], c["frees"], c["free_slow"], c["flushes"])
PY
}
for win in full 0 2; do
    figures $win 3
    read -r segs outside frees slow flushes <"$T/fig"
    echo "window $win: $segs segments, $outside outside; 64 B: $frees frees, $slow slow, $flushes flushes"
    [ "$frees" -gt 100000 ] || fail "window $win: only $frees frees counted"
    case $win in
    full) [ "$outside" -eq 0 ] || fail "whole window: $outside segments outside" ;;
    0) [ "$outside" -eq "$segs" ] || fail "no window: $outside of $segs segments outside" ;;
    2) if [ "$outside" -eq 0 ] || [ "$outside" -ge "$segs" ]; then
        fail "window of 2 chunks: $outside of $segs segments outside, want some, not all"
    fi ;;
    esac
    # a slow free is a full cache (a flush, or a cap that grows instead: at
    # most 4 doublings of the 64 B cap per thread, lib/hak_span.c
    # hak_tbin_grow), or a thread's first free; a free outside the window
    # counted as a miss would add one per free (millions)
    [ "$slow" -le $((flushes + 8 + 4 * 4)) ] ||
        fail "window $win: free_slow $slow > flushes $flushes: frees outside the window count as misses"
done
# Bottom-up layout, 16 threads (their 8 MiB stacks and 17 segments grow
# past the upper half of a 64-chunk window): the segments that land above it
# are moved below the libraries, inside it (lib/hak_segmap.c); a single try
# right below the first segment, which the libraries occupy, left 15 of 17
# outside.
if command -v setarch >/dev/null && setarch "$(uname -m)" -L true 2>/dev/null; then
    figures 64 16 legacy
    read -r segs outside frees slow flushes <"$T/fig"
    echo "bottom-up layout, window of 64 chunks: $segs segments, $outside outside"
    [ $((outside * 2)) -lt "$segs" ] ||
        fail "bottom-up layout: $outside of $segs segments outside the window, want fewer than half"
else
    echo "no setarch -L here: the bottom-up layout is not tried"
fi

# ---- 2. the stress tests, every segment or most of them outside
export HAKMEM_TEST_SCALE=${HAKMEM_TEST_SCALE:-20}
for win in 0 2; do
    tests="t_stress_xthread t_stress_churn t_stress_prodcons"
    [ $win = 0 ] && tests+=" t_stress_fork t_api_realloc" # the long ones: all outside only
    for t in $tests; do
        b=$ROOT/tests/bin/$t
        [ -x "$b" ] || fail "$b not built (make test builds it)"
        HAKMEM_TEST_SEGWIN=$win HAKMEM_TEST_EXPECT_HAKMEM=1 LD_PRELOAD=$HAKMEM_LIB \
            timeout -s KILL 120 setsid "$b" >"$T/$t.out" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            tail -20 "$T/$t.out"
            fail "$t with HAKMEM_TEST_SEGWIN=$win: exit $rc"
        fi
        echo "ok   window $win: $t"
    done
done
# the same under ThreadSanitizer (allocator linked in), if it was built
b=$ROOT/tests/bin/tsan_stress_xthread
if [ -x "$b" ]; then
    HAKMEM_TEST_SEGWIN=2 HAKMEM_TEST_SCALE=15 TSAN_OPTIONS='halt_on_error=1 exitcode=66 history_size=4' \
        timeout -s KILL 120 setsid "$b" >"$T/tsan.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        grep -A30 -m1 'WARNING: ThreadSanitizer' "$T/tsan.out" || tail -20 "$T/tsan.out"
        fail "tsan_stress_xthread with HAKMEM_TEST_SEGWIN=2: exit $rc"
    fi
    echo "ok   window 2: tsan_stress_xthread"
fi
echo "segments outside the window work and do not count as cache misses"
