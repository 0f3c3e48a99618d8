#!/usr/bin/env bash
# t_hakctl_args — one grammar for arguments, and completion offers only what
# it accepts. Integers (pids, --class, --iterations, knob values): decimal
# digits, no '+', no blanks, no overflow, the range named in the message;
# seconds: digits and a fraction, no exponent, inf or nan. `get --class N`
# with a class the process lacks is an error even without a knob. Every
# option word bash completion and the readline shell offer, for every
# command, is accepted by that command's parser. (issue 11, item 12)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 1 -s 60
w=$WPID
n=$HAK_NUM_CLASSES

run "$HAKCTL" get "$w" --class "$n"
expect 2 "no class $n: process $w has classes 0..$((n - 1))"
run "$HAKCTL" get "$w" --class $((n - 1))
expect 0 "refill_count"
run "$HAKCTL" top --iterations 99999999999999999999
expect 2 "--iterations takes a whole number in 1..2147483647, not '99999999999999999999'"
run "$HAKCTL" top --iterations 0
expect 2 "--iterations takes a whole number in 1..2147483647"
for bad in " $w" "+$w" "$w " "0x10" "-$w" "$w.0" "99999999999999999999" ""; do
    run "$HAKCTL" stats -- "$bad"
    expect 2 "'$bad' is not a process id (a whole number in 1..2147483647)"
done
for bad in " 3" "+3" "-1" "1024" "3x" "99999999999999999999"; do
    run "$HAKCTL" get "$w" --class "$bad"
    expect 2 "--class takes a whole number in 0..1023, not '$bad'"
done
for bad in " 1" "+1" "1e3" "inf" "nan" "0x1" "1." "-1" "0"; do
    run "$HAKCTL" stats "$w" --interval "$bad"
    expect 2 "'$bad' is not a number of seconds (0 < SEC <= 86400)"
done
for bad in "+1" " 1" "1 " "0x1" "1e0"; do
    run "$HAKCTL" set "$w" adopt="$bad"
    expect 2 "'$bad' is not a value for adopt"
done
run "$HAKCTL" set "$w" refill_count=99999999999999999999
expect 1 "99999999999999999999 is out of range for refill_count: 1..512 blocks"
run "$HAKCTL" set "$w" refill_count=-5
expect 1 "-5 is out of range for refill_count"
run "$HAKCTL" set "$w" refill_count=010 --class 3 # decimal, not octal
expect 0 "refill_count = 10 (class 3)"
run "$HAKCTL" stats "$w" --interval .25
expect 0 "pid $w"

# completion: each option word offered, for each command, parses (exit 0
# or 1, never 2); as values, what each option takes
value() {
    case $1 in
        --interval|--watch|--wait) echo 0.05 ;;
        --class) echo 0 ;;
        --iterations) echo 1 ;;
        --sort) echo mem ;;
        --reason) echo test ;;
        --status) echo /nonexistent/status.json ;;
    esac
}
# the words bash completion offers after "hakctl CMD [PID] --"
# shellcheck disable=SC1091
. "$ROOT/cli/hakctl.bash-completion"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _hakctl; echo "${COMPREPLY[*]}"; }
cmds=$("$HAKCTL" --list-commands) || fail "--list-commands"
[ "$(comp "$HAKCTL" "")" = "$(echo "$cmds" | tr "\n" " " | sed "s/ $//")" ] || fail "bash completes other commands than hakctl has"
checked=0
for c in $cmds; do
    case $c in
        stats|get|set|reset|trim) pre=("$c" 2147483000); args=() ;; # no such pid: exit 1
        gc) pre=("$c" --dry-run); args=() ;;                        # never removes here
        *) pre=("$c"); args=() ;;
    esac
    [ "$c" = set ] && args=(adopt=1)
    words="$("$HAKCTL" --list-options "$c") $(comp "$HAKCTL" "${pre[@]}" --)"
    for o in $words; do
        v=$(value "$o")
        cmdline=("${pre[@]}" "$o" ${v:+"$v"} "${args[@]}")
        [ "$c" = shell ] && [ "$o" != --help ] && continue
        [ "$c" = top ] && cmdline+=(--iterations 1 --interval 0.05)
        timeout 20 "$HAKCTL" "${cmdline[@]}" </dev/null >"$T/out" 2>"$T/err"
        rc=$?
        [ $rc -le 1 ] || { cat "$T/err"; fail "completion offers '$o' for $c, which it rejects (exit $rc)"; }
        checked=$((checked + 1))
    done
done
echo "ok: $checked offered option words parse"
run "$HAKCTL" ps --all
expect 2 "unknown option '--all'"
[[ " $(comp "$HAKCTL" ps --a) " == *" --all "* ]] && fail "bash completion offers ps --all"
[[ " $("$HAKCTL" --list-options ps | tr '\n' ' ') " == *" --all "* ]] && fail "ps lists --all"
[[ " $("$HAKCTL" --list-options reset | tr '\n' ' ') " == *" --reason "* ]] && fail "reset lists --reason"

# the readline shell completes from the same tables: "ps --a" has no completion
need_cmd tmux
tty_start env HOME="$T" TERM=xterm "$HAKCTL" shell
tty_wait "hakctl>"
tty_keys "ps --a" Tab Tab
sleep 0.3
tty_screen | grep -q -- "--all" && { tty_screen; fail "the shell completes ps --all"; }
tty_keys C-u "reset $w --r" Tab Tab
sleep 0.3
tty_screen | grep -q -- "--reason" && { tty_screen; fail "the shell completes reset --reason"; }
tty_keys C-u "exit" Enter
tty_exited
echo PASS
