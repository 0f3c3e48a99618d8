#!/usr/bin/env bash
# t_hakctl_resident — reading a segment must not make it resident. A segment
# is 2 MB of tmpfs, sparse: idle processes touch ~40 KB of it (header,
# directories, the slots their threads took). Reading every counter slot
# through the shared mapping faults each page in, so `hakctl ps` over many
# idle processes used to grow /dev/shm (RAM) 50-fold. The tmpfs blocks of
# the segments must not change through ps, top and stats, and the figures
# must still be exact: every slot that holds counts is summed, those of
# threads that have exited included. (issue 11, items 8 and 9)
# As root, in a private /dev/shm: another reader of the shared one (a tool
# or daemon of a test running alongside) would fault the pages in as well.
if [ -z "${HAK_PRIVATE_SHM:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
    unshare --mount true 2>/dev/null; then
    exec unshare --mount env HAK_PRIVATE_SHM=1 bash "$0" "$@"
fi
if [ -n "${HAK_PRIVATE_SHM:-}" ]; then
    mount -t tmpfs -o size=64m tmpfs /dev/shm || exit 1
fi
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

# as_user CMD..: CMD as $user ('' = ourselves); exec_as=1: exec it
as_user() {
    local pre=()
    [ -n "${exec_as:-}" ] && pre=(exec)
    if [ -n "$user" ]; then
        "${pre[@]}" setpriv --reuid="$user" --regid="$user" --clear-groups "$@"
    else
        "${pre[@]}" "$@"
    fi
}

# check USER: 12 idle processes of USER, read by hakctl as USER. As root,
# hakctl copies the slots that hold data with pread (/proc/self/map_files);
# as another user, it reads the mapping where mincore says there is data.
check() {
    local user=$1 pids=() i out
    for i in $(seq 12); do
        out=$T/w.$user.$i
        # exec: $! is the workload itself
        (exec_as=1 as_user env LD_PRELOAD="$HAKMEM_LIB" "$WORKLOAD" -t 3 -s 0.2 -i 120) >"$out" 2>&1 &
        pids+=($!)
        KILL_PIDS+=($!)
    done
    for p in "${pids[@]}"; do
        for i in $(seq 100); do seg_exists "$p" && break; sleep 0.05; done
        seg_exists "$p" || fail "workload $p published no segment"
    done
    sleep 0.5 # every workload past its work phase
    b0=$(seg_blocks "${pids[@]}")
    as_user "$HAKCTL" ps --interval 0.05 >/dev/null || fail "ps failed"
    b1=$(seg_blocks "${pids[@]}")
    as_user "$HAKCTL" top --iterations 2 --interval 0.05 >/dev/null || fail "top failed"
    as_user "$HAKCTL" stats "${pids[0]}" --interval 0.05 >/dev/null || fail "stats failed"
    as_user "$HAKCTL" ps --json --interval 0.05 >"$T/ps.json" || fail "ps --json failed"
    b2=$(seg_blocks "${pids[@]}")
    echo "${user:-$(id -un)}: tmpfs blocks of ${#pids[@]} idle segments: $b0 before, $b1 after ps, $b2 after top, stats, ps --json"
    # measured in full first, judged at the end (every figure in the log)
    [ "$b1" = "$b0" ] || bad+=("${user:-root}: hakctl ps made segments resident: $b0 -> $b1 blocks")
    [ "$b2" = "$b0" ] || bad+=("${user:-root}: top/stats made segments resident: $b0 -> $b2 blocks")
    [ "$b2" = "$b0" ] && exact "${pids[@]}"
    kill "${pids[@]}"
}

# exact: allocs summed over every row, read with read() (holes read as zero
# without allocating), equal what hakctl shows
exact() {
    python3 - "$T/ps.json" "$@" <<'PY' || fail "figures differ from the segment's rows"
import json, os, struct, sys
ps = {o["pid"]: o for o in json.load(open(sys.argv[1]))}
for pid in map(int, sys.argv[2:]):
    path = "/dev/shm/hakmem.%d" % pid
    if os.path.islink(path):  # a live process's link: /proc/PID/fd/N:pidns=...
        path = os.readlink(path).split(":")[0]
    b = open(path, "rb").read()
    n_ctrs = struct.unpack_from("<I", b, 412)[0]
    slot_off, n_slots, slot_size, ctr_off, cslots, tag_off = struct.unpack_from("<6I", b, 416)
    names = [b[o:o + 24].split(b"\0")[0].decode() for o in
             range(struct.unpack_from("<I", b, 408)[0], struct.unpack_from("<I", b, 408)[0] + 24 * n_ctrs, 24)]
    k = names.index("allocs")
    total = used = 0
    for s in range(n_slots):
        # rows (segment ABI 3): a tag (1 + class, 0 unused), counter k at ctr_off + 8 k
        row = slot_off + s * slot_size
        tag = struct.unpack_from("<I", b, row + tag_off)[0]
        if tag == 0 or tag > cslots:
            continue
        v = struct.unpack_from("<Q", b, row + ctr_off + 8 * k)[0]
        total += v
        used += v > 0
    got = ps[pid]["totals"]["allocs"]
    assert ps[pid]["state"] == "live", ps[pid]
    assert got == total and total > 0, (pid, got, total)
    assert used >= 3, ("the exited threads' rows should hold counts", pid, used)
print("allocs exact over", len(sys.argv) - 2, "processes")
PY
}

# a forged segment of 65536 counter rows (9.4 MB apparent size; ABI 2's
# 65536 slots: 512 MB), mapped by the forger's live process so that it
# passes as live: reading it must touch
# only what it wrote (or refuse it: too large for the ABI)
forged() {
    local model=$1 py=/usr/bin/python3
    [ -x "$py" ] || py=$(type -P python3) # the binary itself: $! must be the forger
    "$py" - "$model" <<'PY' &
import mmap, os, struct, sys, time
model = "/dev/shm/hakmem.%s" % sys.argv[1]
if os.path.islink(model):  # a live process's link: /proc/PID/fd/N:pidns=...
    model = os.readlink(model).split(":")[0]
src = open(model, "rb").read(65536)
slot_off, n_slots, slot_size = struct.unpack_from("<3I", src, 416)
size = slot_off + 65536 * slot_size
size = (size + 4095) // 4096 * 4096
b = bytearray(src)
struct.pack_into("<Q", b, 16, size)        # total_size
struct.pack_into("<i", b, 24, os.getpid())  # pid
st = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
struct.pack_into("<Q", b, 32, int(st[19]))  # start_time
struct.pack_into("<I", b, 420, 65536)       # n_slots
path = "/dev/shm/hakmem.%d" % os.getpid()
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, bytes(b))
os.ftruncate(fd, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED)
print("forged", os.getpid(), flush=True)
time.sleep(120)
PY
    FORGER=$!
    KILL_PIDS+=("$FORGER")
    RM_FILES+=("/dev/shm/hakmem.$FORGER")
    for _ in $(seq 100); do seg_exists "$FORGER" && break; sleep 0.05; done
    sleep 0.2
}

bad=()
check ""
workload -t 1 -s 60 # a live segment to copy the forgery from
forged "$WPID"
b0=$(seg_blocks "$FORGER")
run "$HAKCTL" ps --interval 0.05
expect 0
grep -E "^ *$FORGER " "$T/out" || { cat "$T/out"; fail "ps does not list the forged segment"; }
run "$HAKCTL" stats "$FORGER" --interval 0.05
b1=$(seg_blocks "$FORGER")
echo "forged segment: $b0 blocks before, $b1 after ps and stats"
[ "$b1" = "$b0" ] || bad+=("reading a forged sparse segment made it resident: $b0 -> $b1 blocks")
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    check 65534
else
    echo "note: not root: the mincore path was the one tested"
fi
[ ${#bad[@]} = 0 ] || fail "$(printf '%s; ' "${bad[@]}")"
echo PASS
