#!/usr/bin/env bash
# t_daemon_user — hakmemd run by an ordinary user (nobody here) manages that
# user's processes and no one else's: it keeps its state under $HOME
# (~/.local/state/hakmemd, found by `hakctl daemon`), tunes the user's own
# workload, and passes over root's segments quietly (no warning per file).
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
[ "$(id -u)" = 0 ] || skip "needs root to run as another user"
id nobody >/dev/null 2>&1 || skip "no user nobody"
need_cmd setpriv
home=$T/home
mkdir -p "$home"
chmod 755 "$T" "$T/bin"
chmod 777 "$home"
chmod 755 "$WL"
printf '{ "include": ["%s/bin/*"] }\n' "$T" >"$T/cfg.json"
chmod 644 "$T/cfg.json"
dwork -t 1 -s 60 -z 64 -n 20000 # root's: must be left alone
root_w=$WPID
out=$T/user.out
# setpriv and env exec: $! is the workload's pid
setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$home" LD_PRELOAD="$HAKMEM_LIB" \
    "$WL" -t 1 -s 60 -z 64 -n 20000 >"$out" 2>&1 &
KILL_PIDS+=("$!")
user_w=$!
for _ in $(seq 100); do seg_exists "${user_w}" && break; sleep 0.05; done
timeout -s KILL 60 setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$home" \
    "$HAKMEMD" --foreground --no-bpf --config "$T/cfg.json" --interval-ms 200 >"$T/d.log" 2>&1 &
DTO=$!
st=$home/.local/state/hakmemd/status.json
for _ in $(seq 100); do [ -s "$st" ] && break; sleep 0.05; done
[ -s "$st" ] || { cat "$T/d.log"; fail "no status file under the user's home"; }
DPID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$st")
for _ in $(seq 100); do
    read -r v o <<<"$(knob "$user_w" refill_count 3)"
    [ "$o" = daemon ] && break
    sleep 0.1
done
[ "$o" = daemon ] || { cat "$T/d.log"; fail "the user's workload was not tuned ($v $o)"; }
read -r v o <<<"$(knob "$root_w" refill_count 3)"
[ "$o" = default ] || fail "root's workload was touched ($v $o)"
! grep -q "warning: pid .*permission denied" "$T/d.log" || fail "a warning for every other user's segment"
HOME=$home run "$HAKCTL" daemon
expect 0 "hakmemd: up (pid $DPID"
kill -TERM "$DPID"
echo "ok: run as nobody: its own process tuned, root's untouched, state in ~/.local/state/hakmemd"
