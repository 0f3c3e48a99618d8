#!/usr/bin/env bash
# t_seg_seccomp — in a sandbox whose system call filter refuses what the
# live segment uses (systemd's SystemCallFilter=, a container's seccomp
# profile), the process runs as without hakmem and hakmem says once why it
# has no segment, in words that point at the cause:
#   memfd_create or symlink refused: right output, one note "not permitted";
#   madvise refused (MADV_POPULATE_WRITE reserves the segment's pages): the
#     segment is still made (the pages allocated with fallocate instead) and
#     hakctl reads it; with fallocate refused too: one note, right output;
#   getrandom, mremap, membarrier, prctl refused: right output, no note.
# Each case runs first without hakmem: a case the interpreter itself cannot
# run under is skipped. tests/sys_deny.c sets the filter (EPERM).
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd python3 timeout setsid
DENY=$ROOT/tests/bin/sys_deny
[ -x "$DENY" ] || skip "tests/bin/sys_deny not built"
WORK=$ROOT/tests/seg_work.py
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # one process: not a version manager's shim
want=$("$PY" "$WORK" | sed "s/ *$//") || fail "the workload fails without hakmem"
NOTE="hakmem: no live segment for hakctl"
notes() { grep -c "^$NOTE" "$T/err"; }

# deny "CALLS" [LIB]: the workload under the filter, bounded
deny() {
    # shellcheck disable=SC2086
    timeout -s KILL 90 setsid "$DENY" $1 -- env LD_PRELOAD="${2:-}" "$PY" "$WORK" >"$T/out" 2>"$T/err"
    RC=$?
}

for calls in "memfd_create" "symlink symlinkat" "madvise fallocate" "getrandom mremap membarrier prctl" "madvise"; do
    echo "== refused: $calls"
    deny "$calls"
    if [ "$RC" != 0 ] || [ "$(sed "s/ *$//" "$T/out")" != "$want" ]; then
        echo "skipped: the workload fails under this filter without hakmem"
        continue
    fi
    deny "$calls" "$HAKMEM_LIB"
    expect 0 "$want"
    case $calls in
    getrandom* | madvise)
        [ "$(notes)" = 0 ] || { cat "$T/err"; fail "$calls refused: no note expected"; } ;;
    *)
        [ "$(notes)" = 1 ] || { cat "$T/err"; fail "$calls refused: expected one note, got $(notes)"; }
        grep -q "^$NOTE (not permitted" "$T/err" || { cat "$T/err"; fail "$calls refused: the note does not say 'not permitted'"; } ;;
    esac
done

echo "== refused: madvise; hakctl reads the segment"
timeout -s KILL 60 setsid "$DENY" madvise -- env LD_PRELOAD="$HAKMEM_LIB" "$WORKLOAD" -t 1 -s 20 >"$T/wl.out" 2>&1 &
KILL_PIDS+=("$!")
w=
for _ in $(seq 100); do
    w=$(awk '/^pid /{print $2}' "$T/wl.out")
    [ -n "$w" ] && seg_exists "$w" && break
    sleep 0.05
done
seg_exists "$w" || { cat "$T/wl.out"; fail "madvise refused: no segment"; }
run "$HAKCTL" stats "$w"
expect 0 "pid $w"
kill -9 "$w"
echo PASS
