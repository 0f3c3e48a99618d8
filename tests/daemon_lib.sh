# shellcheck shell=bash
# tests/daemon_lib.sh — helpers for the t_daemon_* scripts (not a test).
# Sources tests/hakctl_lib.sh, then:
#   HAKMEMD            daemon/hakmemd
#   WL                 a private copy of tests/bin/hakctl_workload ($T/bin/wl):
#                      the daemon's config includes only $T/bin/*, so it never
#                      touches the processes of tests running beside this one
#   need_daemon        skip unless hakmemd, hakctl and the workload are built
#   dconfig [JSON..]   write $T/cfg.json: include $T/bin/* plus these fields
#   dwork ARGS..       start $WL ARGS under hakmem; sets WPID (killed on exit)
#   dstart [ARGS..]    start hakmemd (foreground, --no-bpf, $T/cfg.json,
#                      $T/state, --interval-ms ${DINT:-200}) under timeout -s
#                      KILL in its own process group; sets DPID; log $T/d.log
#   dstop              SIGTERM, wait for a clean exit (fail otherwise)
#   dkill              SIGKILL the daemon's process group
#   wait_log TEXT [SEC]   poll $T/d.log until it has TEXT (fixed string)
#   knob PID KNOB [CLS]   "value owner" of a knob (hakctl get --json)
. "$(dirname "${BASH_SOURCE[0]}")/hakctl_lib.sh"
HAKMEMD=$ROOT/daemon/hakmemd
WL=$T/bin/wl
DTO=
# shellcheck disable=SC2064
trap "dkill; $(trap -p EXIT | sed "s/^trap -- '//; s/' EXIT\$//")" EXIT

need_daemon() {
    need_hakctl
    [ -x "$HAKMEMD" ] || skip "daemon/hakmemd not built (make daemon/hakmemd)"
    mkdir -p "$T/bin" "$T/state"
    cp "$WORKLOAD" "$WL"
}

dconfig() {
    local extra=""
    for f in "$@"; do extra+=", $f"; done
    printf '{ "include": ["%s/bin/*"]%s }\n' "$T" "$extra" >"$T/cfg.json"
}

dwork() {
    local out=$T/dwork.$RANDOM i
    LD_PRELOAD=$HAKMEM_LIB "$WL" "$@" >"$out" 2>&1 &
    WPID=$!
    KILL_PIDS+=("$WPID")
    disown "$WPID"
    for i in $(seq 100); do
        grep -q '^pid ' "$out" 2>/dev/null && seg_exists "${WPID}" && return 0
        sleep 0.05
    done
    cat "$out"
    fail "workload $WPID did not publish its segment"
}

dstart() {
    [ -f "$T/cfg.json" ] || dconfig
    rm -f "$T/state/status.json"
    timeout -s KILL "${DTIMEOUT:-120}" "$HAKMEMD" --foreground --no-bpf --config "$T/cfg.json" \
        --state-dir "$T/state" --interval-ms "${DINT:-200}" "$@" >>"$T/d.log" 2>&1 &
    DTO=$!
    disown "$DTO"
    local i
    for i in $(seq 100); do
        DPID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
            "$T/state/status.json" 2>/dev/null) && [ -n "$DPID" ] && return 0
        kill -0 "$DTO" 2>/dev/null || break
        sleep 0.05
    done
    cat "$T/d.log"
    fail "hakmemd did not start"
}

dstop() {
    kill -TERM "$DPID" 2>/dev/null
    local i
    for i in $(seq 100); do
        kill -0 "$DPID" 2>/dev/null || { DTO=; return 0; }
        sleep 0.05
    done
    fail "hakmemd did not stop within 5 s of SIGTERM"
}

dkill() {
    # timeout runs in a process group of its own: the daemon is in it
    [ -n "$DTO" ] && kill -9 -- "-$DTO" 2>/dev/null
    DTO=
    return 0
}

wait_log() {
    local i n=$(( ${2:-10} * 20 ))
    for ((i = 0; i < n; i++)); do
        grep -qF -- "$1" "$T/d.log" && return 0
        sleep 0.05
    done
    echo "--- daemon log:"; tail -40 "$T/d.log"
    fail "the daemon never logged '$1'"
}

knob() {
    "$HAKCTL" get "$1" "$2" ${3:+--class "$3"} --json | python3 -c '
import json, sys
k = json.load(sys.stdin)["knobs"][0]
print(k["value"], k["owner"])'
}

# wait_owner PID KNOB CLASS OWNER [SECONDS]: polls until the knob's owner is
# OWNER (default 10 s); sets KV (value) and KO (owner) either way; 1 if not.
wait_owner() {
    local i
    for ((i = 0; i < ${5:-10} * 10; i++)); do
        read -r KV KO <<<"$(knob "$1" "$2" "$3")"
        [ "$KO" = "$4" ] && return 0
        sleep 0.1
    done
    return 1
}
