#!/usr/bin/env bash
# t_daemon_systemd — systemd/hakmemd.service passes `systemd-analyze
# verify` (with ExecStart pointed at the built daemon and the man page on
# MANPATH, as `make install` puts them), is Type=notify with a watchdog and
# the hardening the docs promise; and hakmemd speaks sd_notify: READY=1,
# STATUS=..., WATCHDOG=1 on a socket standing in for systemd's.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_cmd systemd-analyze
unit=$ROOT/systemd/hakmemd.service
mkdir -p "$T/unit" "$T/man/man8"
sed "s#^ExecStart=/usr/local/sbin/hakmemd#ExecStart=$HAKMEMD#" "$unit" >"$T/unit/hakmemd.service"
cp "$ROOT/docs/hakmemd.8" "$T/man/man8/"
MANPATH=$T/man SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$T/unit/hakmemd.service" >"$T/v" 2>&1 ||
    { cat "$T/v"; fail "systemd-analyze verify failed"; }
[ ! -s "$T/v" ] || { cat "$T/v"; fail "systemd-analyze verify complained"; }
echo "ok: systemd-analyze verify"
for want in Type=notify WatchdogSec= Restart=on-failure ProtectSystem=strict ReadWritePaths=/dev/shm \
    StateDirectory=hakmemd NoNewPrivileges=yes CapabilityBoundingSet= CPUQuota= MemoryMax=; do
    grep -q "^$want" "$unit" || fail "the unit lacks $want"
done
echo "ok: notify, watchdog, restart, hardening, caps"

# sd_notify: a datagram socket in place of systemd's
python3 - "$T/notify.sock" >"$T/notes" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(10)
seen = set()
end = time.time() + 10
while time.time() < end and not {"READY=1", "WATCHDOG=1", "STATUS"} <= seen:
    for line in s.recv(4096).decode().splitlines():
        print(line, flush=True)
        seen.add(line.split("=")[0] if line.startswith("STATUS=") else line)
PY
lis=$!
KILL_PIDS+=("$lis")
for i in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 dstart
wait "$lis" || true
cat "$T/notes"
grep -q '^READY=1$' "$T/notes" || fail "no READY=1"
grep -q '^STATUS=[0-9]* processes' "$T/notes" || fail "no STATUS="
grep -q '^WATCHDOG=1$' "$T/notes" || fail "no WATCHDOG=1"
dstop
echo "ok: READY=1, STATUS=, WATCHDOG=1"

# make install puts the daemon, the unit, the man page and the doc in place
need_cmd make
make -s -C "$ROOT" install-daemon DESTDIR="$T/root" PREFIX=/usr >"$T/make.log" 2>&1 ||
    { cat "$T/make.log"; fail "make install-daemon failed"; }
for f in sbin/hakmemd lib/systemd/system/hakmemd.service share/man/man8/hakmemd.8 \
    share/doc/hakmem/hakmemd.md; do
    [ -f "$T/root/usr/$f" ] || fail "make install did not install $f"
done
grep -q "^ExecStart=/usr/sbin/hakmemd --foreground" "$T/root/usr/lib/systemd/system/hakmemd.service" ||
    fail "the installed unit does not start the installed daemon"
grep -q 'install-daemon' <(make -s -C "$ROOT" -pn install 2>/dev/null | grep '^install:') ||
    fail "install-daemon is not part of 'make install'"
if command -v man >/dev/null; then
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$T/root/usr/share/man/man8/hakmemd.8" 2>&1 >"$T/man.txt")
    [ -z "$w" ] || { echo "$w"; fail "man page warnings"; }
fi
echo "ok: make install (daemon, unit, hakmemd(8), hakmemd.md)"
