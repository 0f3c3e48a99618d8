# shellcheck shell=bash
# tests/hakctl_lib.sh — helpers for the t_hakctl_* / t_shm_* scripts (not a
# test). Sources tests/lib.sh, then:
#   HAKCTL              cli/hakctl, or $HAKCTL_BIN (skip if not built)
#   need_hakctl         skip unless cli/hakctl and tests/bin/hakctl_workload exist
#   workload ARGS..     start tests/bin/hakctl_workload ARGS under LD_PRELOAD of
#                       libhakmem, wait until its segment is there; sets WPID.
#                       Every process started so is killed on exit.
#   plain CMD..         start CMD without hakmem in the background; sets PPID_
#   run CMD..           run CMD, keep stdout in $T/out, stderr in $T/err, status in RC
#   expect RC [TEXT]    fail unless the last `run` exited RC (and stderr or
#                       stdout contains TEXT)
#   seg_exists PID      /dev/shm/hakmem.PID is there (a link, even a dangling one)
#   seg_file PID        the readable file of PID's segment: /proc/PID/fd/N for
#                       the link a live process publishes, else the name itself
#   seg_patch PID FIELD VALUE   rewrite a header field of PID's segment
#   seg_blocks PID..    blocks their segments occupy
#   start_time PID      field 22 of /proc/PID/stat
#   tty_start CMD       run CMD in a detached tmux pane (100x50), private server
#   tty_keys KEYS..     tmux send-keys
#   tty_wait TEXT [SEC] wait until the pane shows TEXT (fixed string), else fail
#   tty_screen          print the pane
#   tty_exited [SEC]    wait until the program in the pane exits; fail unless with status 0
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HAKCTL=${HAKCTL_BIN:-$ROOT/cli/hakctl} # HAKCTL_BIN: test another build
# the system interpreter starts in a fraction of a version manager's shim
python3() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else command python3 "$@"; fi; }
WORKLOAD=$ROOT/tests/bin/hakctl_workload
# the class count, from the one definition of the class table
export HAK_NUM_CLASSES=$(awk '/^#define HAK_NUM_CLASSES/ {print $3}' "$ROOT/shm/hakmem_shm.h")
KILL_PIDS=()
RM_FILES=()
TMUX_SOCK=hakctl-test-$$
# shellcheck disable=SC2154
trap 'tmux -L "$TMUX_SOCK" kill-server 2>/dev/null
for p in "${KILL_PIDS[@]}"; do kill -9 "$p" 2>/dev/null && rm -f "/dev/shm/hakmem.$p"; done
rm -rf "${RM_FILES[@]}" "$T"' EXIT

need_hakctl() {
    [ -x "$HAKCTL" ] || skip "cli/hakctl not built (make cli/hakctl)"
    [ -x "$WORKLOAD" ] || skip "tests/bin/hakctl_workload not built"
    need_hakmem
}

workload() {
    local out=$T/workload.$RANDOM i
    LD_PRELOAD=$HAKMEM_LIB "$WORKLOAD" "$@" >"$out" 2>&1 &
    KILL_PIDS+=($!)
    WPID=$!
    disown "$WPID" # no "Killed" job notices; bash still reaps it
    for i in $(seq 100); do
        grep -q '^pid ' "$out" 2>/dev/null && seg_exists "$WPID" && return 0
        sleep 0.05
    done
    cat "$out"
    fail "workload $WPID did not publish /dev/shm/hakmem.$WPID"
}

plain() {
    "$@" &
    PPID_=$!
    KILL_PIDS+=($!)
    disown "$PPID_"
    local i # until the forked shell has exec'd CMD (its name shows in messages)
    for i in $(seq 100); do
        [ "$(cat "/proc/$PPID_/comm" 2>/dev/null)" = "$(basename "$1" | cut -c1-15)" ] && break
        sleep 0.01
    done
}

run() {
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
}

expect() {
    local want=$1 text=${2:-}
    if [ "$RC" -ne "$want" ]; then
        echo "--- stdout:"; cat "$T/out"; echo "--- stderr:"; cat "$T/err"
        fail "exit status $RC, expected $want${text:+ (with '$text')}"
    fi
    if [ -n "$text" ] && ! grep -qF -- "$text" "$T/out" "$T/err"; then
        echo "--- stdout:"; cat "$T/out"; echo "--- stderr:"; cat "$T/err"
        fail "output lacks '$text'"
    fi
    echo "ok: exit $RC${text:+, '$text'}"
}

start_time() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $20}'; }

seg_exists() { [ -L "/dev/shm/hakmem.$1" ] || [ -e "/dev/shm/hakmem.$1" ]; }

seg_file() {
    local f=/dev/shm/hakmem.$1 t
    if [ -L "$f" ]; then
        t=$(readlink "$f")
        echo "${t%%:*}"
    else
        echo "$f"
    fi
}

# seg_patch PID FIELD VALUE: FIELD is pid, start_time, abi_major, total_size,
# pid_ns (numbers) or exe (a string of bytes, bash $'...' escapes welcome).
seg_patch() {
    python3 - "$(seg_file "$1")" "$2" "$3" <<'EOF'
import os, struct, sys
path, field = sys.argv[1], sys.argv[2]
with open(path, "r+b") as f:
    if field == "exe":
        f.seek(56)  # char exe[64]
        f.write(os.fsencode(sys.argv[3])[:63].ljust(64, b"\0"))
        sys.exit(0)
    off = {"abi_major": (8, "<H"), "total_size": (16, "<Q"), "pid": (24, "<i"),
           "start_time": (32, "<Q"), "pid_ns": (496, "<Q")}[field]
    f.seek(off[0])
    f.write(struct.pack(off[1], int(sys.argv[3])))
EOF
}

# seg_blocks PID..: tmpfs blocks (512 B) of their segments, summed: what
# reading them must not grow.
seg_blocks() {
    local p s=0
    for p in "$@"; do s=$((s + $(stat -L -c %b "$(seg_file "$p")"))); done
    echo "$s"
}

# A copy of a live segment, for a process that does not use hakmem: fake
# segments whose owner check passes, so only the property under test differs.
seg_copy() {
    RM_FILES+=("/dev/shm/hakmem.$2")
    cp "$(seg_file "$1")" "/dev/shm/hakmem.$2" && chmod 600 "/dev/shm/hakmem.$2"
    seg_patch "$2" pid "$2"
    seg_patch "$2" start_time "$(start_time "$2")"
}

tty_start() {
    need_cmd tmux
    local i # a server still exiting from the last session may refuse: retry
    for i in 1 2 3 4 5; do
        tmux -L "$TMUX_SOCK" -f /dev/null new-session -d -x 100 -y 50 -s t "$@" 2>"$T/tmux.err" &&
            break
        [ "$i" = 5 ] && { cat "$T/tmux.err"; fail "tmux cannot start a session"; }
        sleep 0.2
    done
    tmux -L "$TMUX_SOCK" set-option -t t remain-on-exit on >/dev/null
}
tty_keys() { tmux -L "$TMUX_SOCK" send-keys -t t "$@"; }
tty_screen() { tmux -L "$TMUX_SOCK" capture-pane -p -t t; }
tty_wait() {
    local i n=$(( ${2:-10} * 10 ))
    for ((i = 0; i < n; i++)); do
        tty_screen | grep -qF -- "$1" && { echo "ok: screen shows '$1'"; return 0; }
        sleep 0.1
    done
    echo "--- screen:"; tty_screen
    tmux -L "$TMUX_SOCK" list-panes -F "pane: dead=#{pane_dead} pid=#{pane_pid} cmd=#{pane_current_command}"
    [ -n "${HAKCTL_DEBUG:-}" ] && gdb -p "$(tmux -L "$TMUX_SOCK" list-panes -F '#{pane_pid}')" -batch -ex bt 2>&1 | tail -12
    fail "the terminal never showed '$1'"
}

tty_exited() {
    local i n=$(( ${1:-15} * 10 )) st dead=0
    for ((i = 0; i < n; i++)); do
        st=$(tmux -L "$TMUX_SOCK" list-panes -t t -F '#{pane_dead} #{pane_dead_status}#{pane_dead_signal}')
        # dead, and tmux has collected the exit status (it may see EOF first)
        if [ "${st%% *}" = 1 ] && [ -n "${st#* }" ]; then
            [ "${st#* }" = 0 ] || { tty_screen; fail "the program exited with status ${st#* }"; }
            echo "ok: the program exited, status 0"
            return 0
        fi
        # tmux 3.3 sometimes reaps the child after it saw EOF and never
        # records the status: dead for 3 s with no status counts as exited
        if [ "${st%% *}" = 1 ] && ((++dead >= 30)); then
            echo "ok: the program exited (tmux recorded no status)"
            return 0
        fi
        sleep 0.1
    done
    tty_screen
    fail "the program did not exit"
}
