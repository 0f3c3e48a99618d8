#!/usr/bin/env bash
# t_tsan — the t_stress_* workloads under ThreadSanitizer, allocator linked in.
#
# tests/bin/tsan_stress_* are the stress sources compiled with
# -fsanitize=thread and linked with -Wl,--whole-archive lib/libhakmem-tsan.a
# (the allocator objects built with -fsanitize=thread), not preloaded, so
# TSAN sees every access the allocator makes. That archive exports the API as
# hak_test_malloc & co (TSAN's runtime needs its own malloc, it allocates
# before instrumented code can run); tests/tsan_api.h is force-included to
# route the test's malloc/free/... calls there. Each binary checks (nm) that
# it really calls hak_test_malloc. Each must exit 0 with no
# report (TSAN_OPTIONS halt_on_error=1 exitcode=66: a data race exits 66),
# and must really run on hakmem (HAKMEM_TEST_EXPECT_HAKMEM=1). A canary with a
# deliberate race, built the same way, must be reported (exit 66).
# Iteration counts are scaled down (HAKMEM_TEST_SCALE) because TSAN is slow.
# Skips (77) when lib/libhakmem-tsan.a does not exist.
# Why: a lock-free or thread-caching allocator's races rarely crash in a
# test, but TSAN flags them deterministically when the accesses happen.
. "$(dirname "$0")/lib.sh"
AR=$ROOT/lib/libhakmem-tsan.a
[ -f "$AR" ] || skip "lib/libhakmem-tsan.a not built"
shopt -s nullglob
bins=("$ROOT"/tests/bin/tsan_stress_*)
if [ ${#bins[@]} -eq 0 ]; then
    make -C "$ROOT" --no-print-directory tests-tsan || fail "building the TSAN stress binaries failed"
    bins=("$ROOT"/tests/bin/tsan_stress_*)
fi
[ ${#bins[@]} -gt 0 ] || fail "no tests/bin/tsan_stress_* binaries although $AR exists"

bad=0
# the canary races on purpose: TSAN must report it (exit 66)
C=$ROOT/tests/bin/tsan_canary
if [ -x "$C" ]; then
    TSAN_OPTIONS="halt_on_error=1 exitcode=66" timeout -k 5 60 "$C" >"$T/canary.log" 2>&1
    rc=$?
    if [ $rc -eq 66 ] && grep -q 'data race' "$T/canary.log"; then
        echo "ok   tsan_canary: the deliberate race is reported"
    else
        bad=1
        echo "FAIL tsan_canary: deliberate race not reported (exit $rc); repro: TSAN_OPTIONS='halt_on_error=1 exitcode=66' $C"
        head -20 "$T/canary.log" | sed 's/^/     | /'
    fi
else
    bad=1
    echo "FAIL tests/bin/tsan_canary missing"
fi
for b in "${bins[@]}"; do
    n=$(basename "$b")
    if ! nm "$b" 2>/dev/null | grep -q ' T hak_test_malloc$'; then
        bad=1
        echo "FAIL $n: does not contain hak_test_malloc: the stress would not exercise hakmem"
        continue
    fi
    opts="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4"
    scale=${HAKMEM_TSAN_SCALE:-15}
    # fork under TSAN costs seconds per fork (shadow memory): 3 forks
    [[ $n == *fork* ]] && opts="$opts die_after_fork=0" && scale=${HAKMEM_TSAN_FORK_SCALE:-5}
    t0=$SECONDS
    TSAN_OPTIONS="$opts" HAKMEM_TEST_SCALE=$scale HAKMEM_TEST_EXPECT_HAKMEM=1 \
        timeout -k 5 150 "$b" >"$T/$n.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && ! grep -q 'WARNING: ThreadSanitizer' "$T/$n.log"; then
        echo "ok   $n ($((SECONDS - t0))s)"
    else
        bad=1
        why="exit $rc"
        [ $rc -eq 66 ] && why="ThreadSanitizer report (exit 66)"
        [ $rc -eq 124 ] && why="timeout"
        echo "FAIL $n: $why ($((SECONDS - t0))s)"
        echo "     repro: TSAN_OPTIONS='$opts' HAKMEM_TEST_SCALE=$scale $b"
        head -60 "$T/$n.log" | sed 's/^/     | /'
        if ! grep -q 'allocator' "$T/$n.log"; then
            echo "     hint: it died before main(). The TSAN runtime calls malloc while it"
            echo "     initialises (dlsym -> dlerror) and from new threads before their TSAN"
            echo "     state exists (pthread_getattr_np in ThreadStart); an instrumented"
            echo "     malloc crashes there. Try: gdb -batch -ex run -ex bt $b"
        fi
    fi
done
[ $bad -eq 0 ] || fail "TSAN stress failed"
