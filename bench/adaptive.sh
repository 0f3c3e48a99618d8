#!/usr/bin/env bash
# bench/adaptive.sh — what hakmemd is worth: bench/bin/adaptive (a
# phase-shifting workload) under four configurations, in the same run,
# alternating round by round:
#   defaults  hakmem's defaults, no daemon
#   fixed     the best fixed knob setting a random search found on another
#             seed (step 1, written to $OUT/best_fixed.env)
#   daemon    hakmemd with an empty state directory (no profile)
#   profile   hakmemd with the state directory the previous daemon run left
# then writes docs/adaptive.md and docs/adaptive.png (bench/adaptive_report.py).
#
# Usage: bench/adaptive.sh [--quick] [--rounds N] [--search N] [--threads T]
#                          [--phase-s S] [--cycles N]
#   --quick    4 s phases (idle 6 s), 2 cycles; search on 3 s phases
#   --phase-s, --cycles  override the phase length and cycles (both steps)
#   --rounds   rounds of the four configurations (default 3; quick 2)
#   --search   random knob settings tried besides the defaults (default 10; quick 8)
# Needs bench/bin/adaptive, lib/libhakmem.so and daemon/hakmemd (make
# bench-adaptive builds them). Without daemon/hakmemd the daemon rows are
# left out and the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
quick=0 rounds='' search='' threads=2 phase_s='' cycles=''
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --search) search=$2; shift ;;
    --threads) threads=$2; shift ;;
    --phase-s) phase_s=$2; shift ;;
    --cycles) cycles=$2; shift ;;
    *) echo "usage: $0 [--quick] [--rounds N] [--search N] [--threads T] [--phase-s S] [--cycles N]" >&2; exit 2 ;;
    esac
    shift
done
if [ $quick = 1 ]; then
    wl_args=(--phase-s 4 --cycles 2 --threads "$threads" --seed 1)
    search_args=(--phase-s 3 --cycles 1 --threads "$threads" --seed 2)
    rounds=${rounds:-2} search=${search:-8}
else
    wl_args=(--phase-s 15 --cycles 2 --threads "$threads" --seed 1)
    search_args=(--phase-s 8 --cycles 1 --threads "$threads" --seed 2)
    rounds=${rounds:-3} search=${search:-10}
fi
if [ -n "$phase_s" ]; then
    wl_args+=(--phase-s "$phase_s")
    search_args+=(--phase-s "$phase_s")
fi
[ -z "$cycles" ] || wl_args+=(--cycles "$cycles")
WL=$ROOT/bench/bin/adaptive
LIB=$ROOT/lib/libhakmem.so
HAKMEMD=$ROOT/daemon/hakmemd
for f in "$WL" "$LIB"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "bench/adaptive.sh: $f missing (make bench-adaptive)" >&2; exit 1; }
done
have_daemon=0
[ -x "$HAKMEMD" ] && have_daemon=1
OUT=$ROOT/bench/out/adaptive
rm -rf "$OUT"
mkdir -p "$OUT"
qflag=
[ $quick = 1 ] && qflag="--quick "
{
    echo "command=bash bench/adaptive.sh ${qflag}--rounds $rounds --search $search --threads $threads${phase_s:+ --phase-s $phase_s}${cycles:+ --cycles $cycles}"
    echo "workload=${wl_args[*]}"
    echo "search=${search_args[*]}"
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host=$(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "daemon=$have_daemon"
} >"$OUT/meta"

# Runs the workload (args in $@ after the env file) with hakmem preloaded and
# the settings of env file $1; its output to $2. Bounded by timeout.
run_wl() {
    local envfile=$1 out=$2
    shift 2
    local -a envs=()
    [ -s "$envfile" ] && mapfile -t envs <"$envfile"
    env "${envs[@]}" LD_PRELOAD="$LIB" setsid timeout -s KILL 900 "$WL" "$@" >"$out"
}

# ---- 1. the best fixed setting: a random search on another seed
pick() { # values... -> REPLY = one of them, from $RANDOM (no subshell: it
    # would reseed $RANDOM and the candidates would change from run to run)
    local v=("$@")
    REPLY=${v[RANDOM % ${#v[@]}]}
}
RANDOM=7 # the candidates are the same every run
: >"$OUT/cand0.env"
cands=("$OUT/cand0.env")
# the one knob known to matter for big blocks, alone, then random mixes
printf 'HAKMEM_LARGE_CACHE_MB=1024\n' >"$OUT/cand1.env"
cands+=("$OUT/cand1.env")
for i in $(seq 2 "$search"); do
    f=$OUT/cand$i.env
    {
        pick 64 256 1024 4096
        echo "HAKMEM_LARGE_CACHE_MB=$REPLY"
        pick 16 64 256
        echo "HAKMEM_SEG_CACHE=$REPLY"
        pick 50 250 1000 5000
        echo "HAKMEM_PURGE_DELAY_MS=$REPLY"
        pick 1 4 16
        echo "HAKMEM_DRAIN_INTERVAL=$REPLY"
        pick 0 1
        echo "HAKMEM_TINY_SS_ADOPT=$REPLY"
        pick default 64 512
        [ "$REPLY" = default ] || echo "HAKMEM_TINY_FAST_CAP=$REPLY"
        pick default 32 128
        [ "$REPLY" = default ] || echo "HAKMEM_TINY_REFILL_COUNT=$REPLY"
    } >"$f"
    cands+=("$f")
done
echo "== search: ${#cands[@]} settings (defaults first), workload ${search_args[*]}" >&2
for f in "${cands[@]}"; do
    run_wl "$f" "${f%.env}.log" "${search_args[@]}"
    echo "   $(basename "$f"): $(python3 bench/adaptive_report.py score "$OUT/cand0.log" "${f%.env}.log") x defaults  [$(paste -sd' ' "$f")]" >&2
done
best=$(for f in "${cands[@]}"; do
    echo "$(python3 bench/adaptive_report.py score "$OUT/cand0.log" "${f%.env}.log") $f"
done | sort -g -r | head -1 | cut -d' ' -f2)
cp "$best" "$OUT/best_fixed.env"
echo "== best fixed: $(paste -sd' ' "$OUT/best_fixed.env") ($(basename "$best"))" >&2

# ---- 2. the four configurations, alternating
cat >"$OUT/hakmemd.json" <<'EOF'
{ "include": ["adaptive"] }
EOF
DPID=
start_daemon() { # state dir, log
    local state=$1 log=$2
    # each line stamped with the wall clock, to place decisions on the chart
    setsid timeout -s KILL 900 "$HAKMEMD" --foreground --state-dir "$state" \
        --config "$OUT/hakmemd.json" 2> >(while IFS= read -r l; do
            printf '%s %s\n' "$EPOCHREALTIME" "$l"
        done >"$log") &
    DPID=$!
    # ready once it has logged something (its start line), or after 3 s
    for _ in $(seq 30); do
        [ -s "$log" ] && break
        sleep 0.1
    done
}
stop_daemon() { # [cpu file]: the daemon's CPU seconds and lifetime, then stop it
    [ -n "$DPID" ] || return 0
    local hp
    hp=$(pgrep -P "$DPID" -x hakmemd | head -1 || true)
    if [ -n "${1:-}" ] && [ -n "$hp" ] && [ -r "/proc/$hp/stat" ]; then
        # fields after the command: 14 utime, 15 stime, 22 start time (ticks)
        awk -v hz="$(getconf CLK_TCK)" -v up="$(cut -d' ' -f1 /proc/uptime)" \
            '{ sub(/^.*\) /, ""); print ($12 + $13) / hz, up - $20 / hz }' "/proc/$hp/stat" >"$1"
    fi
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
    DPID=
}
trap 'stop_daemon' EXIT

# Other hakmemd instances on the machine (not ours) could tune the workload in
# the no-daemon rows: count them around every run, for the report.
foreign() {
    local n=0 p
    for p in $(pgrep -x hakmemd || true); do
        [ -n "$DPID" ] && [ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$DPID" ] && continue
        n=$((n + 1))
    done
    echo $n
}

configs=(defaults fixed)
[ $have_daemon = 1 ] && configs+=(daemon profile)
for r in $(seq 1 "$rounds"); do
    for c in "${configs[@]}"; do
        log=$OUT/$c.r$r.log
        echo "== round $r/$rounds: $c" >&2
        f0=$(foreign)
        case $c in
        defaults) run_wl /dev/null "$log" "${wl_args[@]}" ;;
        fixed) run_wl "$OUT/best_fixed.env" "$log" "${wl_args[@]}" ;;
        daemon)
            rm -rf "$OUT/state.r$r"
            mkdir -p "$OUT/state.r$r"
            start_daemon "$OUT/state.r$r" "$OUT/$c.r$r.dlog"
            run_wl /dev/null "$log" "${wl_args[@]}"
            stop_daemon "$OUT/$c.r$r.dcpu"
            ;;
        profile)
            # the profile the previous (no-profile) daemon run learned
            rm -rf "$OUT/pstate.r$r"
            cp -a "$OUT/state.r$r" "$OUT/pstate.r$r"
            find "$OUT/pstate.r$r" -name '*.json' -path '*profiles*' | wc -l >"$OUT/$c.r$r.nprof"
            start_daemon "$OUT/pstate.r$r" "$OUT/$c.r$r.dlog"
            run_wl /dev/null "$log" "${wl_args[@]}"
            stop_daemon "$OUT/$c.r$r.dcpu"
            ;;
        esac
        echo "$f0 $(foreign)" >"$OUT/$c.r$r.foreign"
        grep '^RESULT' "$log" >&2
    done
done

python3 bench/adaptive_report.py report "$OUT" docs/adaptive.md docs/adaptive.png
echo "wrote docs/adaptive.md docs/adaptive.png (raw logs in $OUT)" >&2
