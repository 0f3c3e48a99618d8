#!/usr/bin/env bash
# What a process pays to publish its segment with many live hakmem processes
# around, and how much of it is the clean-up of dead processes' segments
# (hak_shm_gc_dead: a scan of /dev/shm with a kill() per segment). LIVE
# processes hold live segments (bench/bin/publish_us hold, under this
# build); then bench/bin/publish_us times the publishing malloc, RUNS runs
# per case, alternating, medians of its thread CPU time (and wall clock):
#   scan     this build, the gc stamp aged first: the publication scans
#   no-scan  this build, right after another scan: the stamp is fresh, no scan
#   NAME     each NAME=LIB given (e.g. base=/tmp/base/lib/libhakmem.so)
# A short process (`sh -c true`, bench/startup.sh) ends before it publishes:
# it pays none of this.
#   bench/publish_cost.sh [LIVE] [RUNS] [NAME=LIB ...]
set -euo pipefail
cd "$(dirname "$0")/.."
live=${1:-200} runs=${2:-21}
shift 2 || shift $#
make -s lib/libhakmem.so bench/bin/publish_us >/dev/null
LIB=$PWD/lib/libhakmem.so
T=$(mktemp -d /tmp/publish-cost.XXXXXX)
pids=()
cleanup() { # TERM: timeout passes it on to its holder, which dies of it
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
for i in $(seq "$live"); do
    LD_PRELOAD=$LIB timeout -s KILL 3600 bench/bin/publish_us hold >"$T/h.$i" 2>&1 &
    pids+=($!)
done
for _ in $(seq 600); do
    n=$(cat "$T"/h.* | grep -c '^published=1' || true)
    [ "$n" -ge "$live" ] && break
    sleep 0.1
done
echo "live hakmem segments: $(find /dev/shm -maxdepth 1 -name 'hakmem.*' | wc -l) (of them $n held here)"
stamp=/dev/shm/hakmem-gc.$(id -u).$(stat -L -c %i /proc/self/ns/pid)
one() { # one NAME LIB [age]: a run, appended to $T/r.NAME
    [ "${3:-}" = age ] && [ -f "$stamp" ] && touch -d "1 minute ago" "$stamp"
    [ "${3:-}" = fresh ] && touch "$stamp"
    LD_PRELOAD=$2 bench/bin/publish_us | sed -n 's/publish_us=\([0-9.]*\) cpu_us=\([0-9.]*\) published=1/\1 \2/p' >>"$T/r.$1"
}
for _ in $(seq "$runs"); do
    one scan "$LIB" age
    one no-scan "$LIB" fresh
    for nl in "$@"; do one "${nl%%=*}" "${nl#*=}" age; done
done
python3 - "$T" "$runs" scan no-scan "${@%%=*}" <<'PY'
import statistics, sys
d, runs, names = sys.argv[1], sys.argv[2], sys.argv[3:]
print("publication cost, median of %s runs (thread CPU us / wall us; spread of CPU):" % runs)
for n in names:
    rows = [tuple(map(float, l.split())) for l in open("%s/r.%s" % (d, n))]
    if not rows:
        print("  %-8s never published" % n)
        continue
    cpu = [r[1] for r in rows]
    m = statistics.median(cpu)
    print("  %-8s %7.1f / %7.1f  (%d runs, spread %.0f %%)" % (n, m, statistics.median(r[0] for r in rows),
                                                             len(rows), 100 * (max(cpu) - min(cpu)) / m))
PY
