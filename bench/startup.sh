#!/usr/bin/env bash
# Start-up cost of a short process: `sh -c true` under hakmem, glibc and
# mimalloc (and any NAME=LIB given), spawned RUNS times each, round-robin,
# timed from spawn to reap; medians and quartiles. Also counts what the
# hakmem runs left in /dev/shm (a short process must publish nothing).
# Writes docs/startup.md.
#   bench/startup.sh [RUNS] [NAME=/path/lib.so ...]     (make bench-startup)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-500}
shift || true
make -s lib/libhakmem.so >/dev/null
mi=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
libs=("glibc=" "hakmem=$PWD/lib/libhakmem.so")
[ -f "$mi" ] && libs+=("mimalloc=$mi")
libs+=("$@")
out=docs/startup.md
python3 - "$runs" "$out" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$*" "${libs[@]}" <<'PY'
import os, statistics, subprocess, sys, time
runs, out, rev, extra, libs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
libs = [l.split("=", 1) for l in libs]
times = {name: [] for name, _ in libs}
left = {name: 0 for name, _ in libs}
for i in range(runs):
    for name, lib in libs:
        env = dict(os.environ, LD_PRELOAD=lib)
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "true"], env)
        os.waitpid(pid, 0)
        times[name].append((time.perf_counter_ns() - t0) / 1e6)
        if os.path.lexists("/dev/shm/hakmem.%d" % pid):
            left[name] += 1
            os.unlink("/dev/shm/hakmem.%d" % pid)
with open(out, "w") as f:
    f.write("# Start-up cost of a short process\n\n")
    f.write("Written by `bench/startup.sh %d%s` on %s, %d CPUs, git %s.\n" %
            (runs, " " + extra if extra else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             os.cpu_count(), rev))
    f.write("Each run spawns `sh -c true` (dash: it ends with `_exit`) with the allocator\n"
            "in LD_PRELOAD and waits for it; allocators alternate run by run. Times are\n"
            "spawn to reap, in milliseconds: the machine is shared, so look at medians.\n"
            "`left in /dev/shm` counts runs that left a segment behind.\n\n")
    f.write("| allocator | median ms | p25 ms | p75 ms | left in /dev/shm |\n|---|---|---|---|---|\n")
    for name, _ in libs:
        q = statistics.quantiles(times[name], n=4)
        f.write("| %s | %.3f | %.3f | %.3f | %d of %d |\n" %
                (name, statistics.median(times[name]), q[0], q[2], left[name], runs))
print(open(out).read())
PY
