#!/usr/bin/env bash
# redis_callgrind.sh — instructions per request of redis-server under each
# allocator: what the allocator changes in the redis row, without the noise.
#
#   bench/redis_callgrind.sh [-n REQUESTS] [NAME=LIB ...]
#
# The redis row's request rate is mostly the client's (redis-benchmark spends
# more CPU per request than the server) and its CPU-time rate varies 40 % run
# to run on a shared machine. Here redis-server runs under callgrind with the
# instrumentation switched on only while redis-benchmark sends REQUESTS (default
# 20000) requests of each of SET, GET, LPUSH, LPOP (-P 16 -c 50 -r 100000
# -d 128, as bench/redis_bench.py): start-up and shutdown are not counted.
# Prints, per allocator, instructions per request in the whole server and in
# the allocator's own functions. The event loop's batching varies a little
# from run to run: totals move by about 1 %.
# Default allocators: hakmem (lib/libhakmem.so), tcmalloc, mimalloc, jemalloc,
# glibc (LIB empty: libc.so.6 is preloaded, as redis_bench.py does, since
# Debian's redis links jemalloc). Needs valgrind, redis-server, redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
n=20000
if [ "${1:-}" = -n ]; then
    n=$2
    shift 2
fi
L=/usr/lib/x86_64-linux-gnu
if [ $# -eq 0 ]; then
    set -- "hakmem=$PWD/lib/libhakmem.so" "tcmalloc=$L/libtcmalloc_minimal.so.4" \
        "mimalloc=$L/libmimalloc.so.2" "jemalloc=$L/libjemalloc.so.2" "glibc="
fi
tmp=$(mktemp -d /tmp/hakbench-rcg.XXXXXX)
vpid=
trap '[ -z "$vpid" ] || kill -9 "$vpid" 2>/dev/null; rm -rf "$tmp"' EXIT
reqs=$((n * 4))
printf '%-12s %14s %16s\n' allocator "Ir/request" "allocator Ir/req"
for spec in "$@"; do
    name=${spec%%=*} lib=${spec#*=}
    [ -n "$lib" ] || lib=libc.so.6
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    out=$tmp/$name.cg
    mkdir -p "$tmp/$name"
    LD_PRELOAD=$lib valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$out" redis-server --port "$port" --bind 127.0.0.1 --save "" \
        --appendonly no --daemonize no --dir "$tmp/$name" --logfile "" >/dev/null 2>"$tmp/$name.err" &
    vpid=$!
    # valgrind's own pid, which callgrind_control addresses (no wrapper)
    for _ in $(seq 300); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    callgrind_control -i on "$vpid" >/dev/null 2>&1
    timeout -s KILL 600 redis-benchmark -h 127.0.0.1 -p "$port" -q --csv -t set,get,lpush,lpop \
        -n "$n" -P 16 -c 50 -r 100000 -d 128 >"$tmp/$name.bench"
    callgrind_control -i off "$vpid" >/dev/null 2>&1
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$vpid" || true
    vpid=
    # the allocator's functions: hakmem's files (lib/hak_*) or the preloaded object
    obj=$(basename "$lib")
    obj=${obj%%.so*}
    callgrind_annotate --auto=no --threshold=100 "$out" 2>/dev/null |
        awk -v name="$name" -v reqs=$reqs -v obj="$obj" '
            /^ *[0-9,]+ .*PROGRAM TOTALS/ { t = $1; gsub(",", "", t) }
            /^ *[0-9,]+ / && ($0 ~ /lib\/hak_/ || (obj != "libc" && index($0, obj))) {
                x = $1; gsub(",", "", x); a += x }
            END { printf "%-12s %14.0f %16s\n", name, t / reqs,
                  obj == "libc" ? "-" : sprintf("%.0f", a / reqs) }'
done
