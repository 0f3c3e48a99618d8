#!/usr/bin/env bash
# t_seg_rlimit — a file-size limit (ulimit -f) below the segment's size means
# "no segment", never SIGXFSZ: /bin/true and a threaded workload under
# `ulimit -f 100` exit 0 with the right output; the workload (old enough to
# publish) says once on stderr that it counts privately, HAKMEM_SHM=0
# silences that; writing files within the limit still works.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd python3 timeout
WORK=$ROOT/tests/seg_work.py
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # one process: not a version manager's shim
want=$("$PY" "$WORK" | sed "s/ *$//") || fail "the workload fails without hakmem"
NOTE="hakmem: no live segment for hakctl (file size limit"

limited() { # limited CMD..: under ulimit -f 100, preloaded, bounded
    timeout -s KILL 60 bash -c 'ulimit -f 100; LD_PRELOAD=$0 exec "$@"' "$HAKMEM_LIB" "$@" \
        >"$T/out" 2>"$T/err"
}

limited /bin/true
rc=$?
[ $rc = 0 ] || { cat "$T/err"; fail "/bin/true under ulimit -f 100 exited $rc (153: SIGXFSZ)"; }
echo "ok: /bin/true exits 0"

limited "$PY" "$WORK"
rc=$?
[ $rc = 0 ] || { cat "$T/err"; fail "the workload under ulimit -f 100 exited $rc"; }
grep -qxF "$want" <(sed "s/ *$//" "$T/out") || { cat "$T/out"; fail "wrong output: want '$want'"; }
[ "$(grep -c "^$NOTE" "$T/err")" = 1 ] || { cat "$T/err"; fail "expected one line '$NOTE'"; }
echo "ok: the workload exits 0, right output, one note"

HAKMEM_SHM=0 limited "$PY" "$WORK"
rc=$?
[ $rc = 0 ] && ! grep -q "^hakmem:" "$T/err" || { cat "$T/err"; fail "HAKMEM_SHM=0: exit $rc or a note"; }
echo "ok: HAKMEM_SHM=0 runs silently"

limited sh -c "head -c 50000 /dev/zero > $T/small && wc -c < $T/small"
[ "$(cat "$T/out")" = 50000 ] || fail "a 50 kB file under the 100 kB limit: $(cat "$T/out" "$T/err")"
echo "ok: files within the limit are written"
echo PASS
