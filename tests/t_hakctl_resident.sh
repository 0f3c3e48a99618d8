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

pids=()
for _ in $(seq 12); do
    workload -t 3 -s 0.2 -i 120 # three threads work, exit; the process idles
    pids+=("$WPID")
done
sleep 0.5 # every workload past its work phase
b0=$(seg_blocks "${pids[@]}")
run "$HAKCTL" ps --interval 0.05
expect 0
b1=$(seg_blocks "${pids[@]}")
"$HAKCTL" top --iterations 2 --interval 0.05 >/dev/null || fail "top failed"
"$HAKCTL" stats "${pids[0]}" --interval 0.05 >/dev/null || fail "stats failed"
"$HAKCTL" ps --json --interval 0.05 >"$T/ps.json" || fail "ps --json failed"
b2=$(seg_blocks "${pids[@]}")
echo "tmpfs blocks of ${#pids[@]} idle segments: $b0 before, $b1 after ps, $b2 after top, stats, ps --json"
[ "$b1" = "$b0" ] || fail "hakctl ps made segments resident: $b0 -> $b1 blocks"
[ "$b2" = "$b0" ] || fail "top/stats made segments resident: $b0 -> $b2 blocks"

# exact: allocs summed over every slot, read with read() (holes read as zero
# without allocating), equal what hakctl shows
python3 - "$T/ps.json" "${pids[@]}" <<'PY' || fail "figures differ from the segment's slots"
import json, struct, sys
ps = {o["pid"]: o for o in json.load(open(sys.argv[1]))}
for pid in map(int, sys.argv[2:]):
    b = open("/dev/shm/hakmem.%d" % pid, "rb").read()
    n_ctrs = struct.unpack_from("<I", b, 412)[0]
    slot_off, n_slots, slot_size, ctr_off, cslots = struct.unpack_from("<5I", b, 416)
    names = [b[o:o + 24].split(b"\0")[0].decode() for o in
             range(struct.unpack_from("<I", b, 408)[0], struct.unpack_from("<I", b, 408)[0] + 24 * n_ctrs, 24)]
    k = names.index("allocs")
    total = used = 0
    for s in range(n_slots):
        base = slot_off + s * slot_size + ctr_off
        v = sum(struct.unpack_from("<Q", b, base + 8 * (k * cslots + c))[0] for c in range(cslots))
        total += v
        used += v > 0
    got = ps[pid]["totals"]["allocs"]
    assert ps[pid]["state"] == "live", ps[pid]
    assert got == total and total > 0, (pid, got, total)
    assert used >= 3, ("the exited threads' slots should hold counts", pid, used)
print("allocs exact over", len(sys.argv) - 2, "processes")
PY
echo PASS
