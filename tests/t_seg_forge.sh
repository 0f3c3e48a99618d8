#!/usr/bin/env bash
# t_seg_forge — root trusts no segment another user made (the hsperfdata
# rule: a process's segment belongs to the process's user), and no size
# beyond what the header's tables need:
#   a throwaway user forges a "live" segment for a root process, as a copy
#   of a real one and as a link to the process's fd: root's hakctl stats,
#   set and ps refuse it, naming both uids, and set writes nothing into it;
#   root-owned sparse segments of 512 MB (padding after the tables, or a
#   slot count that spans it) and of 32 MB (padding) are refused before they
#   are mapped, and hakctl ps faults in none of it.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd useradd userdel setpriv
[ "$(id -u)" = 0 ] || skip "needs root (to make a throwaway user)"
u=hakforge$$
useradd -M -N -s /usr/sbin/nologin "$u" >/dev/null 2>&1 || skip "cannot add a user"
eval "$(trap -p EXIT | sed "s/' EXIT\$/; userdel -f $u 2>\/dev\/null' EXIT/")"
uid=$(id -u "$u")
as_u() { setpriv --reuid="$uid" --regid="$(id -g "$u")" --clear-groups "$@"; }

# patch FILE FIELD VALUE: a header field of a segment file
patch() {
    python3 - "$@" <<'PY'
import struct, sys
path, field, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
off = {"total_size": (16, "<Q"), "pid": (24, "<i"), "start_time": (32, "<Q"),
       "n_slots": (420, "<I"), "slot_size": (424, "<I")}[field]
with open(path, "r+b") as f:
    f.seek(off[0])
    f.write(struct.pack(off[1], value))
PY
}
field() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(512); print(struct.unpack_from("<I", d, int(sys.argv[2]))[0])' "$@"; }

workload -t 1 -s 60
w=$WPID
plain sleep 60
s=$PPID_
f=/dev/shm/hakmem.$s
RM_FILES+=("$f")
chmod 755 "$T"
cp "$(seg_file "$w")" "$T/forged"
patch "$T/forged" pid "$s"
patch "$T/forged" start_time "$(start_time "$s")"
chmod 644 "$T/forged"

echo "== a copy, made by $u (uid $uid), for root's process $s"
as_u sh -c "cp '$T/forged' '$f' && chmod 600 '$f'" || fail "$u cannot write /dev/shm"
sum=$(md5sum <"$f")
msg="refusing $f: it belongs to uid $uid ($u) but process $s runs as uid 0 (root)"
run "$HAKCTL" stats "$s"
expect 1 "$msg"
run "$HAKCTL" set "$s" adopt=0 --reason secret
expect 1 "$msg"
[ "$(md5sum <"$f")" = "$sum" ] || fail "hakctl set wrote into the forger's file"
run "$HAKCTL" ps
grep -E "^ *$s .*hakctl_workloa" "$T/out" && fail "ps shows the forged segment as the process's"
echo "ok: ps does not show it as process $s's"

echo "== a link, made by $u, to root's process's fd"
rm -f "$f"
as_u ln -s "/proc/$s/fd/0:pidns=$(stat -L -c %i /proc/self/ns/pid)" "$f" || fail "$u cannot link"
run "$HAKCTL" stats "$s"
expect 1 "$msg"
run "$HAKCTL" get "$s" adopt
expect 1 "$msg"

echo "== $u squats the name of a process before it publishes"
if unshare -p -f --mount-proc true 2>/dev/null && ! seg_exists 1; then
    # pid 1 of a new pid namespace (sharing /dev/shm): a name one can predict
    RM_FILES+=(/dev/shm/hakmem.1)
    as_u sh -c "cp '$T/forged' /dev/shm/hakmem.1 && chmod 600 /dev/shm/hakmem.1"
    sum=$(md5sum </dev/shm/hakmem.1)
    timeout -s KILL 30 unshare -p -f --mount-proc env LD_PRELOAD="$HAKMEM_LIB" "$WORKLOAD" -t 1 -s 0.5 \
        >"$T/sq.out" 2>&1
    rc=$?
    [ $rc = 0 ] || { cat "$T/sq.out"; fail "the squatted process exited $rc"; }
    grep -c "^hakmem: no live segment for hakctl (its name is taken" "$T/sq.out" | grep -qx 1 ||
        { cat "$T/sq.out"; fail "expected one note that the name is taken"; }
    [ "$(stat -c %U /dev/shm/hakmem.1)" = "$u" ] && [ "$(md5sum </dev/shm/hakmem.1)" = "$sum" ] ||
        fail "the squatter's file was replaced or written"
    echo "ok: the process ran without a segment (exit 0, one note); the squatter's file untouched"
    rm -f /dev/shm/hakmem.1
else
    echo "note: no pid namespace here (or /dev/shm/hakmem.1 exists); squatting part skipped"
fi

echo "== root's own sparse segments of 512 MB"
rm -f "$f"
cp "$T/forged" "$f"
patch "$f" total_size $((512 << 20))
truncate -s 512M "$f"
run "$HAKCTL" stats "$s"
expect 1 "implausibly large"
cp "$T/forged" "$f"
patch "$f" total_size $((32 << 20)) # within the bound, but padding
truncate -s 32M "$f"
run "$HAKCTL" stats "$s"
expect 1 "but its tables end at"
# 65536 counter rows of 8 KiB (a geometry the header allows; ABI 3 writes
# 144-byte rows, ABI 2 wrote 8384-byte slots): 512 MB apparent size
slot_off=$(field "$f" 416)
slot_size=8192
big=$(((slot_off + 65536 * slot_size + 4095) / 4096 * 4096))
cp "$T/forged" "$f"
patch "$f" n_slots 65536
patch "$f" slot_size "$slot_size"
patch "$f" total_size "$big"
truncate -s "$big" "$f"
echo "65536 rows of $slot_size bytes: $big bytes"
run "$HAKCTL" stats "$s"
expect 1 "implausibly large"
before=$(stat -c %b "$f")
timeout -s KILL 60 "$HAKCTL" ps >/dev/null 2>&1
after=$(stat -c %b "$f")
echo "blocks of $f: $before before hakctl ps, $after after"
[ $((after - before)) -lt 4096 ] || fail "hakctl ps faulted in $(((after - before) / 2)) KiB of a forged segment"
echo PASS
