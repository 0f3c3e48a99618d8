#!/usr/bin/env bash
# t_hakctl_shell — `hakctl shell` driven through a pseudo-terminal (tmux):
# commands run as on the command line, Tab completes command names, pids,
# knob names (with '=' after set) and options, errors do not end the shell,
# Ctrl-C clears the line and stops a --watch, history persists in $HOME.
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl
need_cmd tmux

workload -t 1 -s 90
w=$WPID
# the shortest prefix of our pid that no other segment's pid shares (now:
# processes that start meanwhile may share it; see the pid completion below)
unique_from() {
    local n p m
    for ((n = $1; n < ${#w}; n++)); do
        p=${w:0:n}
        m=(/dev/shm/hakmem."$p"*)
        [ ${#m[@]} = 1 ] && { echo "$n"; return; }
    done
    echo "${#w}"
}

home=$T/home
mkdir -p "$home"
tty_start env HOME="$home" TERM=xterm "$HAKCTL" shell
tty_wait "hakctl>"
line() { tty_screen | grep -v '^$' | tail -1; }

tty_keys "ps" Enter
tty_wait "hakctl_workloa"
tty_keys "sta" Tab
sleep 0.3
[ "$(line)" = "hakctl> stats" ] || { tty_screen; fail "command completion: '$(line)'"; }
# A prefix that another process's segment took meanwhile (other hakmem
# programs run on this machine) lists both: then a longer one, never a pass
# without a completion to the whole pid.
n=$(unique_from 1)
while :; do
    tty_keys "${w:0:n}" Tab
    sleep 0.3
    [ "$(line)" = "hakctl> stats $w" ] && break
    m=(/dev/shm/hakmem."${w:0:n}"*)
    [ ${#m[@]} -gt 1 ] && [ "$n" -lt "${#w}" ] || { tty_screen; fail "pid completion: '$(line)'"; }
    echo "note: prefix ${w:0:n} is shared now (${#m[@]} segments): a longer one"
    tty_keys C-u "stats "
    n=$(unique_from $((n + 1)))
done
tty_keys -- "--inter" Tab
sleep 0.3
[ "$(line)" = "hakctl> stats $w --interval" ] || { tty_screen; fail "option completion: '$(line)'"; }
tty_keys " 0.2" Enter
tty_wait "pid $w  hakctl_workload"
tty_keys "clear" Enter   # not a command: an error, the shell goes on
tty_wait "unknown command 'clear'"
tty_keys "get $w refill_c" Tab
sleep 0.3
[ "$(line)" = "hakctl> get $w refill_count" ] || { tty_screen; fail "knob completion: '$(line)'"; }
tty_keys -- "--class 3" Enter
tty_wait "refill_count   3 "
tty_keys "set $w ado" Tab
sleep 0.3
[ "$(line)" = "hakctl> set $w adopt=" ] || { tty_screen; fail "set completion: '$(line)'"; }
tty_keys "off --reason 'from the shell'" Enter
tty_wait "pid $w: adopt = 0, owner manual"
"$HAKCTL" get "$w" adopt | grep -q "manual .*from the shell" || fail "set in the shell did not take"
tty_keys "s" Tab Tab
tty_wait "set    shell  stats"
tty_keys C-u "help" Enter
tty_wait "Tab completes commands, pids and knobs"
tty_keys "garbage" C-c
sleep 0.3
tty_keys "ps extra" Enter
tty_wait "hakctl ps: unexpected argument 'extra'"
tty_screen | grep -q "unknown command 'garbage" && fail "Ctrl-C did not clear the line"
tty_keys "stats $w --watch 0.2" Enter
tty_wait "fast-path hit"
tty_keys C-c
sleep 0.5
tty_keys "get $w adopt" Enter
tty_wait "adopt          -          0"
tty_keys "exit" Enter
tty_exited
grep -qx "set $w adopt=off --reason 'from the shell'" "$home/.hakctl_history" ||
    { cat "$home/.hakctl_history"; fail "history not saved in \$HOME/.hakctl_history"; }

# history comes back in the next session
tmux -L "$TMUX_SOCK" kill-server
tty_start env HOME="$home" TERM=xterm "$HAKCTL" shell
tty_wait "hakctl>"
tty_keys Up
sleep 0.3
[ "$(line)" = "hakctl> get $w adopt" ] || { tty_screen; fail "history recall: '$(line)'"; }
tty_keys C-u C-d
tty_exited
echo PASS
