#!/usr/bin/env bash
# t_seg_shm_fail — the segment never hurts its process, whatever /dev/shm is
# like. Each case runs in a private mount namespace with its own /dev/shm:
#   full (a 64 KiB tmpfs filled up) before the process starts, and after it
#   published and before its threads take fresh counter slots: the process
#   runs to completion with the right output (no SIGBUS), hakctl still reads
#   it (the segment is a memfd, not a /dev/shm file);
#   out of inodes, read-only, missing: the process runs to completion with
#   the right output, counting privately, and says so on stderr once;
#   HAKMEM_SHM=0 silences that line.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd unshare python3 timeout setsid
unshare -m --propagation private true 2>/dev/null || skip "cannot create a mount namespace here"
WORK=$ROOT/tests/seg_work.py
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # one process: not a version manager's shim
want=$("$PY" "$WORK" | sed "s/ *$//") || fail "the workload fails without hakmem"
NOTE="hakmem: no live segment for hakctl"

# in_ns SCRIPT: runs SCRIPT (bash) in a private mount namespace, bounded.
in_ns() {
    timeout -s KILL 90 setsid unshare -m --propagation private \
        env LD_PRELOAD= HAK="$HAKMEM_LIB" PY="$PY" WORK="$WORK" HAKCTL="$HAKCTL" T="$T" bash -c "$1" \
        >"$T/out" 2>"$T/err"
    RC=$?
}
shm_tmpfs='mount -t tmpfs -o size=64k,mode=1777 tmpfs /dev/shm || exit 3'
fill='dd if=/dev/zero of=/dev/shm/fill bs=4k 2>/dev/null; true'
notes() { grep -c "^$NOTE" "$T/err"; }

echo "== full before start"
in_ns "$shm_tmpfs; $fill; LD_PRELOAD=\$HAK \$PY \$WORK"
expect 0 "$want"
[ "$(notes)" = 0 ] || { cat "$T/err"; fail "a full /dev/shm needs no note: the segment is a memfd"; }

echo "== full after publishing, before the threads start"
in_ns "$shm_tmpfs
LD_PRELOAD=\$HAK \$PY \$WORK \$T/go >\$T/py.out 2>\$T/py.err &
p=\$!
for _ in \$(seq 200); do [ -L /dev/shm/hakmem.\$p ] || [ -e /dev/shm/hakmem.\$p ] && break; sleep 0.05; done
[ -L /dev/shm/hakmem.\$p ] || [ -e /dev/shm/hakmem.\$p ] || { echo 'never published'; exit 5; }
$fill
df /dev/shm | tail -1
\$HAKCTL stats \$p >\$T/stats.out 2>&1 || { cat \$T/stats.out; exit 6; }
touch \$T/go
wait \$p
echo \"workload exit \$?\"
cat \$T/py.out \$T/py.err"
expect 0 "workload exit 0"
expect 0 "$want flag"

for kind in inodes read-only missing; do
    echo "== /dev/shm $kind"
    case $kind in
    inodes) setup='mount -t tmpfs -o size=64k,nr_inodes=8,mode=1777 tmpfs /dev/shm || exit 3
        for i in $(seq 20); do touch /dev/shm/f$i 2>/dev/null; done' ;;
    read-only) setup='mount -t tmpfs -o ro,mode=1777 tmpfs /dev/shm || exit 3' ;;
    missing) setup='mount --bind /dev/null $T/null || exit 3
        mount -t tmpfs tmpfs /dev || exit 3
        touch /dev/null && mount --bind $T/null /dev/null || exit 3
        [ ! -e /dev/shm ] || exit 4' ;;
    esac
    touch "$T/null"
    in_ns "$setup
LD_PRELOAD=\$HAK \$PY \$WORK"
    expect 0 "$want"
    [ "$(notes)" = 1 ] || { cat "$T/err"; fail "/dev/shm $kind: expected one line '$NOTE', got $(notes)"; }
    in_ns "$setup
HAKMEM_SHM=0 LD_PRELOAD=\$HAK \$PY \$WORK"
    expect 0 "$want"
    [ "$(notes)" = 0 ] || { cat "$T/err"; fail "/dev/shm $kind: HAKMEM_SHM=0 should silence the note"; }
done
echo PASS
