#!/usr/bin/env bash
# t_daemon_discover — hakmemd finds a preloaded process (inotify), marks it
# managed (hakctl ps shows the lease), detaches when it exits, and removes
# the segment of a SIGKILLed process within 1 s of its death. Hostile files
# named like the segment of a live, included process (truncated, garbage,
# newer ABI, a good copy truncated while the daemon reads it: SIGBUS) are
# logged and skipped; the daemon survives all of them. --no-bpf says BPF is
# off in its status (`hakctl daemon`).
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
dconfig
dstart

# ---- modes: --no-bpf, as hakctl daemon reports it
run "$HAKCTL" daemon --status "$T/state/status.json"
expect 0 "hakmemd: up (pid $DPID"
grep -q "BPF: *off - BPF off: --no-bpf" "$T/out" || { cat "$T/out"; fail "status does not say BPF is off"; }

# ---- attach, managed, detach on a clean exit
dwork -t 1 -s 4
w=$WPID
wait_log "pid $w (wl): attached" 5
marked=
for i in $(seq 20); do
    "$HAKCTL" ps --interval 0.05 >"$T/ps" && grep -E "^ *$w .*\*$" "$T/ps" && grep -qx "\* managed by hakmemd $DPID" "$T/ps" && marked=1 && break
    sleep 0.05
done
[ -n "$marked" ] || { cat "$T/ps"; fail "ps does not mark $w as managed"; }
run "$HAKCTL" daemon --status "$T/state/status.json"
expect 0 "processes managed:     1"
wait_log "pid $w (wl): detached (process exited)" 10
! grep -q "removed /dev/shm/hakmem.$w" "$T/d.log" || fail "removed the segment of a clean exit"
echo "ok: attach, managed mark, detach"

# ---- SIGKILL: the segment goes within 1 s
dwork -t 2 -s 60
w=$WPID
wait_log "pid $w (wl): attached" 5
kill -9 "$w"
t0=$(date +%s%N)
while seg_exists "${w}"; do
    [ $(( $(date +%s%N) - t0 )) -lt 1000000000 ] || fail "segment of killed $w still there after 1 s"
    sleep 0.01
done
echo "ok: segment of SIGKILLed $w removed after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait_log "pid $w (wl): exited without cleaning up: removed /dev/shm/hakmem.$w" 2

# ---- hostile segments under the name of a live, included process
# The process maps whatever file stands under its segment's name (as a
# process of an older hakmem mapped its regular file): a segment its process
# does not map is stale and removed, never attached.
cp "$(python3 -c 'import sys; print(sys.executable)')" "$T/bin/sleeper" # an included exe
cat >"$T/sleeper.py" <<'PY'
import mmap, os, time
path, ino, m = "/dev/shm/hakmem.%d" % os.getpid(), None, None
end = time.time() + 120
while time.time() < end:
    try:
        st = os.lstat(path)
        if st.st_ino != ino and st.st_size > 0:
            fd = os.open(path, os.O_RDONLY)
            m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ)
            os.close(fd)
            ino = st.st_ino
    except (OSError, ValueError):
        pass
    time.sleep(0.02)
PY
"$T/bin/sleeper" "$T/sleeper.py" &
s=$!
KILL_PIDS+=("$s")
disown "$s"
dwork -t 1 -s 60
w=$WPID
f=/dev/shm/hakmem.$s
RM_FILES+=("$f")
# mkseg: a copy of $w's segment, patched to be $s's, built under another
# name and renamed into place, so the daemon sees it whole (as the allocator
# publishes its own); then damaged by the caller's python code, if any.
mkseg() {
    cp "$(seg_file "$w")" "/dev/shm/.t_daemon.$$" && chmod 600 "/dev/shm/.t_daemon.$$"
    RM_FILES+=("/dev/shm/.t_daemon.$$")
    python3 - "/dev/shm/.t_daemon.$$" "$s" "$(start_time "$s")" "${1:-}" <<'PY'
import struct, sys
path, pid, start, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(path, "r+b") as f:
    f.seek(24); f.write(struct.pack("<i", pid))
    f.seek(32); f.write(struct.pack("<Q", start))
    if extra == "abi5":
        f.seek(8); f.write(struct.pack("<H", 5))
    if extra == "short":
        f.truncate(100)
PY
    mv "/dev/shm/.t_daemon.$$" "$f"
}
hostile() { # hostile WHAT LOGTEXT
    wait_log "$2" 5
    kill -0 "$DPID" || fail "$1: the daemon died"
    rm -f "$f"
    echo "ok: $1 logged and skipped"
}
mkseg short
hostile truncated "pid $s: skipping segment: $f is truncated (100 bytes)"
head -c 2048000 /dev/urandom >"/dev/shm/.t_daemon.$$" && chmod 600 "/dev/shm/.t_daemon.$$" &&
    mv "/dev/shm/.t_daemon.$$" "$f"
hostile garbage "pid $s: skipping segment: $f: bad magic"
mkseg abi5
hostile "newer ABI" "pid $s: skipping segment: $f: segment ABI 5"
# a good copy, attached, then truncated under the daemon: SIGBUS, caught
mkseg
wait_log "pid $s (wl): attached" 5
truncate -s 0 "$f" # even the header (read every tick) is gone
wait_log "pid $s: segment $f truncated under us (SIGBUS): dropping it" 5
kill -0 "$DPID" || fail "the daemon died of SIGBUS"
wait_log "pid $s (wl): detached (segment became unreadable)" 5
rm -f "$f"
echo "ok: SIGBUS from a truncated segment caught"

# still working after all of that
kill -9 "$w"
wait_log "removed /dev/shm/hakmem.$w" 3
dstop
grep -q "stopped:" "$T/d.log" || fail "no clean stop"
run "$HAKCTL" daemon --status "$T/state/status.json"
expect 1 "hakmemd: down (stopped"
echo "ok: stopped cleanly"
