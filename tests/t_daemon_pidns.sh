#!/usr/bin/env bash
# t_daemon_pidns — one daemon a process, when two daemons have the same pid.
# A lease names its daemon by pid, but pids repeat across pid namespaces: a
# host's (or an outer container's) hakmemd and a container's own can both be
# pid 2. Each must still tell the other's lease from its own (the random tag
# beside the pid), or both would take the lease for theirs and tune the
# process against each other. Here: namespace 1 runs daemon A as its pid 2
# and makes namespace 2 inside it, whose pid 2 is daemon B and whose pid 1 is
# the workload; A sees the workload as a process of a namespace below its
# own (the container case), B as its own. Exactly one of them manages it,
# and the other says so, for 2 s. Skips where pid namespaces cannot be made.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
[ "$(id -u)" = 0 ] || skip "needs root for pid namespaces"
unshare -m -p -f --mount-proc true 2>/dev/null || skip "unshare -m -p -f --mount-proc fails here"
dconfig '"lease_ms": 1000, "rescan_ms": 200'
mkdir -p "$T/a" "$T/b"

# $0 hakmemd, $1 the test dir, $2 the workload, $3 the allocator
inner='"$0" --foreground --no-bpf --config "$1/cfg.json" --state-dir "$1/b" --interval-ms 200 \
    >"$1/b.log" 2>&1 &
exec env LD_PRELOAD="$3" "$2" -t 1 -s 50 >"$1/wl.out" 2>&1'
outer='"$0" --foreground --no-bpf --config "$1/cfg.json" --state-dir "$1/a" --interval-ms 200 \
    >"$1/a.log" 2>&1 &
exec unshare -m -p -f --kill-child --mount-proc sh -c "$4" "$0" "$1" "$2" "$3"'
# its own process group (setsid), killed whole at exit; --kill-child takes
# each namespace down with the unshare that made it
setsid timeout -s KILL 60 unshare -m -p -f --kill-child --mount-proc \
    sh -c "$outer" "$HAKMEMD" "$T" "$WL" "$HAKMEM_LIB" "$inner" &
TO=$!
KILL_PIDS+=("$TO")
trap 'kill -9 -- "-$TO" 2>/dev/null; rm -rf "$T"' EXIT

status_num() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
for i in $(seq 100); do
    [ -n "$(status_num "$T/a/status.json" pid)" ] && [ -n "$(status_num "$T/b/status.json" pid)" ] &&
        grep -q '^pid ' "$T/wl.out" 2>/dev/null && break
    sleep 0.05
done
pa=$(status_num "$T/a/status.json" pid)
pb=$(status_num "$T/b/status.json" pid)
[ -n "$pa" ] && [ -n "$pb" ] || { cat "$T"/a.log "$T"/b.log; fail "the daemons did not start"; }
[ "$pa" = "$pb" ] || skip "the daemons have pids $pa and $pb, not one pid (the namespaces' start differs here)"
echo "ok: daemon A (namespace 1) and daemon B (namespace 2 inside it) are both pid $pa"

# counts A B: "managed others" of each status file
counts() { echo "$(status_num "$T/a/status.json" processes) $(status_num "$T/a/status.json" processes_of_other_daemons) $(status_num "$T/b/status.json" processes) $(status_num "$T/b/status.json" processes_of_other_daemons)"; }
for i in $(seq 100); do
    c=$(counts)
    [ "$c" = "1 0 0 1" ] || [ "$c" = "0 1 1 0" ] && break
    sleep 0.1
done
[ "$c" = "1 0 0 1" ] || [ "$c" = "0 1 1 0" ] || {
    cat "$T"/a.log "$T"/b.log
    fail "managed/others' of A and B: $c, not one each (both take the lease for their own?)"
}
if [ "$c" = "1 0 0 1" ]; then holder=a other=b; else holder=b other=a; fi
grep -q "managed by another hakmemd (pid $pa); left alone" "$T/$other.log" ||
    { cat "$T/$other.log"; fail "daemon $other does not say it leaves the workload to another"; }
for i in $(seq 10); do # 2 s: ten of each daemon's ticks
    [ "$(counts)" = "$c" ] || { cat "$T"/a.log "$T"/b.log; fail "read $i: $(counts), was $c: the daemons fight over it"; }
    sleep 0.2
done
! grep -q "(wl): .* -> " "$T/$other.log" || { cat "$T/$other.log"; fail "daemon $other changed a knob"; }
echo "ok: daemon $holder manages the workload, $other leaves it alone for 2 s (same pid $pa)"
