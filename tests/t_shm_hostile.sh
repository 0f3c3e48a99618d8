#!/usr/bin/env bash
# t_shm_hostile — what hakctl finds under /dev/shm/hakmem.<pid> is not
# trusted: a symlink, a hard link, a group-writable file, a FIFO, a
# directory, a truncated or damaged copy are each refused with a message
# (exit 1), never followed, never hung on, never crashed on. The segment of
# a live process is the model the damaged copies are made from.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 1 -s 300
w=$WPID
plain sleep 60
s=$PPID_
f=/dev/shm/hakmem.$s
RM_FILES+=("$f" "$T/target")

hostile() { # hostile WHAT TEXT: hakctl stats must refuse with TEXT, in time
    timeout 10 "$HAKCTL" stats "$s" --interval 0.05 >"$T/out" 2>"$T/err"
    RC=$?
    [ $RC -ne 124 ] || fail "$1: hakctl hung"
    expect 1 "$2"
    timeout 10 "$HAKCTL" ps --interval 0.05 >"$T/out" 2>"$T/err" || fail "$1: ps failed (exit $?)"
    timeout 10 "$HAKCTL" set "$s" adopt=0 >"$T/out" 2>"$T/err"
    RC=$?
    expect 1 "$2"
    rm -rf "$f"
}

cp "/dev/shm/hakmem.$w" "$T/target"
ln -s "$T/target" "$f"
hostile symlink "refusing $f: it is a symlink"
seg_copy "$w" "$s"
ln "$f" "/dev/shm/.t_shm_hostile.$$" || fail "cannot hard-link in /dev/shm"  # same file system
RM_FILES+=("/dev/shm/.t_shm_hostile.$$")
hostile "hard link" "refusing $f: it has 2 hard links, expected 1"
rm -f "/dev/shm/.t_shm_hostile.$$"
seg_copy "$w" "$s"
chmod 660 "$f"
hostile "group-writable" "refusing $f: mode 0660 lets other users write it"
mkfifo -m 600 "$f"
hostile fifo "refusing $f: not a regular file"
mkdir -m 700 "$f"
hostile directory "refusing $f: not a regular file"
seg_copy "$w" "$s"
truncate -s 100 "$f"
hostile "truncated to 100 bytes" "$f is truncated (100 bytes)"
seg_copy "$w" "$s"
truncate -s -4096 "$f"
hostile "one page short" "size mismatch"
seg_copy "$w" "$s"
printf 'XXXXXXXX' | dd of="$f" conv=notrunc status=none
hostile "bad magic" "bad magic: not a hakmem segment"
seg_copy "$w" "$s"
seg_patch "$s" total_size 99999999999
hostile "total_size lies" "size mismatch"
seg_copy "$w" "$s"
seg_patch "$s" pid 1
hostile "another pid inside" "written by pid 1, not $s"
# random damage to the header: never a crash (exit 0 or 1 only)
for i in $(seq 25); do
    seg_copy "$w" "$s"
    python3 - "$f" "$i" <<'PY'
import random, sys
random.seed(int(sys.argv[2]))
b = bytearray(open(sys.argv[1], "rb").read(8192))
for _ in range(random.randint(1, 6)):
    b[random.randrange(32, 8192)] ^= 1 << random.randrange(8)
with open(sys.argv[1], "r+b") as fh:
    fh.write(b)
PY
    for cmd in "stats $s --interval 0.05" "get $s" "ps --interval 0.05"; do
        # shellcheck disable=SC2086
        timeout 10 "$HAKCTL" $cmd >/dev/null 2>"$T/err"
        rc=$?
        [ $rc -le 1 ] || { cat "$T/err"; fail "damaged segment $i: hakctl $cmd exited $rc"; }
    done
    rm -f "$f"
done
echo "ok: 25 randomly damaged segments, no crash"

# a segment truncated by its owner while hakctl reads it (SIGBUS on the
# mapping): ps and top go on, stats ends with a message, never a signal
seg_copy "$w" "$s"
cp "$f" "$T/good"
( while :; do cp "$T/good" "$f" 2>/dev/null; truncate -s 4096 "$f" 2>/dev/null; done ) &
flip=$!
KILL_PIDS+=("$flip")
for i in $(seq 10); do
    timeout 20 "$HAKCTL" top --iterations 5 --interval 0.01 >/dev/null 2>"$T/err" ||
        { cat "$T/err"; fail "top while a segment is truncated: exit $?"; }
    timeout 20 "$HAKCTL" ps --interval 0.01 >/dev/null 2>"$T/err" ||
        { cat "$T/err"; fail "ps while a segment is truncated: exit $?"; }
    timeout 20 "$HAKCTL" stats "$s" --interval 0.01 >/dev/null 2>"$T/err"
    rc=$?
    [ $rc -le 1 ] || { cat "$T/err"; fail "stats while its segment is truncated: exit $rc"; }
done
kill "$flip"
wait "$flip" 2>/dev/null
echo "ok: segments truncated while read: no crash"
echo PASS
