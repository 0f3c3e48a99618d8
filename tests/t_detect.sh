#!/usr/bin/env bash
# t_detect — hakmem aborts on invalid frees and says where.
#
# Runs tests/bin/detect_helper (one bad free per case) under LD_PRELOAD of
# hakmem, in the default mode and with HAKMEM_SAFE_FREE=1. Each case must end
# in SIGABRT (exit 134) with a line on stderr containing "hakmem:" and the hex
# address that was passed to free. Cases: double free of a small, a mid, a
# large and a posix_memalign'd block, a double free with another free in
# between (a b a), and frees of pointers hakmem never handed out: a stack
# buffer, a global, an anonymous mmap page, and malloc'd pointer + 8 for a
# small, a mid and a large block; and a block freed by another thread then
# freed again, and an interior pointer freed by another thread; and a double
# free of a small block whose page malloc_trim gave back to the OS in
# between (the page, free-key included, reads as zero: double-purged);
# realloc of a 16-aligned pointer into a live small or mid block (which
# free()'s fast path takes, but realloc must refuse: "realloc(): invalid
# pointer") and of a freed block, and malloc_usable_size of a freed block
# (its messages named realloc before); a double free by a thread with a
# pending pthread_cancel (the report's write acted on it: the thread ended
# there, unreported, and the program went on).
# The line before it must be glibc's own message for the case, alone on its
# line as glibc prints it ("free(): invalid pointer", "free(): double free
# detected in tcache 2", "double free or corruption (out)"), so tools and
# scripts that grep logs for glibc's wording keep working.
# Why: silent acceptance of a bad free turns a program bug into heap
# corruption far away; the address in the message is what makes it fixable.
# Mode "outside" (HAKMEM_TEST_SEGWIN=0: no fast-path window, lib/hak_segmap.c)
# checks the same on blocks whose segments lie outside free()'s window, which
# only hak_free_slow and the authoritative segment map see.
# hakmem only: glibc's messages differ, so the test skips without hakmem.
. "$(dirname "$0")/lib.sh"
need_hakmem
H=$ROOT/tests/bin/detect_helper
[ -x "$H" ] || fail "$H not built (make test builds it)"
ulimit -c 0

cases="double-small double-mid double-large double-aligned double-interleaved double-purged double-purged-remote
       stack global mmap interior-small interior-mid interior-large
       double-remote interior-remote realloc-interior-small realloc-interior-mid realloc-freed
       usable-freed double-cancel-pending"
bad=0
for mode in default safe outside; do
    for c in $cases; do
        # (in a subshell that is not exec'd, so bash's "Aborted" notice goes
        # to /dev/null instead of the log)
        if [ $mode = safe ]; then
            (HAKMEM_SAFE_FREE=1 LD_PRELOAD=$HAKMEM_LIB "$H" "$c" >"$T/out" 2>"$T/err"; exit $?) 2>/dev/null
        elif [ $mode = outside ]; then
            (HAKMEM_TEST_SEGWIN=0 LD_PRELOAD=$HAKMEM_LIB "$H" "$c" >"$T/out" 2>"$T/err"; exit $?) 2>/dev/null
        else
            (LD_PRELOAD=$HAKMEM_LIB "$H" "$c" >"$T/out" 2>"$T/err"; exit $?) 2>/dev/null
        fi
        rc=$?
        addr=$(sed -n 's/^ADDR 0x//p' "$T/out" | tr 'A-F' 'a-f')
        [ -n "$addr" ] || { echo "FAIL $mode/$c: helper printed no address (rc $rc)"; cat "$T/err"; bad=1; continue; }
        msg=$(grep 'hakmem:' "$T/err" | head -3)
        problems=()
        [ $rc -eq 134 ] || problems+=("exit status $rc, want 134 (SIGABRT)")
        grep -q SURVIVED "$T/out" && problems+=("process survived the bad free")
        [ -n "$msg" ] || problems+=("no 'hakmem:' message on stderr")
        case $c in
        realloc-*) want='realloc\(\): invalid pointer' ;;
        usable-*) want='malloc_usable_size\(\): invalid pointer' ;;
        *) want='free\(\): invalid pointer|free\(\): double free detected in tcache 2|double free or corruption \(out\)' ;;
        esac
        grep -qxE "$want" "$T/err" || problems+=("no line with glibc's message alone ($want)")
        case $c in usable-*) grep -q 'hakmem: malloc_usable_size' "$T/err" || problems+=("hakmem's line names another call") ;; esac
        if [ -n "$msg" ] && ! grep 'hakmem:' "$T/err" | tr 'A-F' 'a-f' | grep -q "$addr"; then
            problems+=("message lacks the address 0x$addr")
        fi
        if [ ${#problems[@]} -eq 0 ]; then
            echo "ok   $mode/$c: $msg"
        else
            bad=1
            echo "FAIL $mode/$c (address 0x$addr): ${problems[*]}"
            pre=; [ $mode = safe ] && pre="HAKMEM_SAFE_FREE=1 "
            [ $mode = outside ] && pre="HAKMEM_TEST_SEGWIN=0 "
            echo "     repro: ${pre}LD_PRELOAD=$HAKMEM_LIB $H $c"
            sed 's/^/     stderr: /' "$T/err" | head -5
        fi
    done
done
[ $bad -eq 0 ] || fail "some invalid frees were not detected as required"
echo "all invalid frees detected"
