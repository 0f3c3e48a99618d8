#!/usr/bin/env bash
# t_real_redis — redis-server under hakmem: a deterministic data set, a
# reload from disk, redis-benchmark, lazy (background-thread) frees.
#
# Two servers on unix sockets, one plain and one preloaded with
# libhakmem.so, get the same generated command stream (strings of 1 B to
# 2 MiB, APPEND/SETRANGE growth, lists, hashes, sets, sorted sets, counters,
# deletes, SORT/ZUNIONSTORE results) through `redis-cli --pipe`, then DEBUG
# RELOAD (save the RDB, free everything, load it again). Their DEBUG DIGEST
# (a hash of every key and value) and DBSIZE must be equal. The preloaded
# server then serves redis-benchmark in another database with io-threads
# and pipelining, the benchmark's keys are freed by FLUSHDB ASYNC (redis'
# lazyfree thread frees what the main thread allocated), and the digest
# must still be the reference's. The server must shut down cleanly with
# nothing from hakmem on its stderr.
# Why: redis is the allocator-heavy server users run; Debian's build links
# jemalloc and still calls malloc_usable_size around every allocation
# (zmalloc), so the preload takes over a program written for another
# allocator; its io and lazyfree threads free blocks other threads made.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd redis-server redis-cli redis-benchmark python3

python3 - "$T/cmds.resp" <<'EOF'
import random, sys
r = random.Random(20261127)
out = open(sys.argv[1], "wb")
def cmd(*a):
    a = [x if isinstance(x, bytes) else str(x).encode() for x in a]
    out.write(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
def val(n, k):
    return (b"%d:" % k + bytes(r.randrange(97, 123) for _ in range(16))) * (n // 18 + 1)
for i in range(40000):
    k = r.randrange(4000)
    op = r.randrange(16)
    size = r.choice([r.randrange(1, 64), r.randrange(64, 1024), r.randrange(1024, 65536)])
    if i % 2000 == 0:
        size = r.randrange(1 << 20, 2 << 20)
    if op == 0: cmd("SET", "s:%d" % k, val(size, i)[:size])
    elif op == 1: cmd("APPEND", "s:%d" % k, val(r.randrange(1, 300), i))
    elif op == 2: cmd("SETRANGE", "s:%d" % k, r.randrange(4096), val(r.randrange(1, 100), i))
    elif op == 3: cmd("DEL", "s:%d" % k, "l:%d" % (k % 300))
    elif op == 4: cmd("RPUSH", "l:%d" % (k % 300), *[val(r.randrange(1, 200), j) for j in range(r.randrange(1, 20))])
    elif op == 5: cmd("LPOP", "l:%d" % (k % 300), r.randrange(1, 10))
    elif op == 6: cmd("LTRIM", "l:%d" % (k % 300), 0, r.randrange(5, 200))
    elif op == 7: cmd("HSET", "h:%d" % (k % 200), "f%d" % r.randrange(500), val(r.randrange(1, 2000), i))
    elif op == 8: cmd("HDEL", "h:%d" % (k % 200), *["f%d" % r.randrange(500) for _ in range(5)])
    elif op == 9: cmd("SADD", "t:%d" % (k % 100), *["m%d" % r.randrange(5000) for _ in range(10)])
    elif op == 10: cmd("SREM", "t:%d" % (k % 100), *["m%d" % r.randrange(5000) for _ in range(10)])
    elif op == 11: cmd("ZADD", "z:%d" % (k % 100), r.randrange(10**6), "m%d" % r.randrange(3000))
    elif op == 12: cmd("ZREMRANGEBYRANK", "z:%d" % (k % 100), 0, r.randrange(3))
    elif op == 13: cmd("INCRBY", "c:%d" % (k % 50), r.randrange(-1000, 1000))
    elif op == 14: cmd("ZUNIONSTORE", "u:%d" % (k % 20), 2, "z:%d" % (k % 100), "z:%d" % ((k + 1) % 100))
    else: cmd("SORT", "t:%d" % (k % 100), "ALPHA", "LIMIT", 0, 50, "STORE", "o:%d" % (k % 20))
out.close()
EOF

start_server() { # $1 = name, $2 = LD_PRELOAD ('' for none)
    mkdir -p "$T/$1"
    env ${2:+LD_PRELOAD=$2} redis-server --port 0 --unixsocket "$T/$1.sock" --dir "$T/$1" --save '' --appendonly no \
        --enable-debug-command yes --io-threads 2 --io-threads-do-reads yes \
        --lazyfree-lazy-user-del yes --lazyfree-lazy-user-flush yes --lazyfree-lazy-server-del yes \
        --logfile "$T/$1.log" >"$T/$1.out" 2>"$T/$1.err" &
    eval "pid_$1=$!"
    for _ in $(seq 100); do
        [ "$(redis-cli -s "$T/$1.sock" PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    cat "$T/$1.err" "$T/$1.log"
    fail "$1: redis-server did not answer PING within 10 s"
}
rcli() { timeout -s KILL 120 redis-cli -s "$T/$1.sock" "${@:2}"; }

load() { # $1 = server: the command stream, a reload, then what must match
    rcli "$1" --pipe <"$T/cmds.resp" >"$T/$1.pipe" 2>&1 || { cat "$T/$1.pipe"; fail "$1: redis-cli --pipe failed"; }
    grep -q 'errors: 0' "$T/$1.pipe" || { cat "$T/$1.pipe"; fail "$1: the command stream had errors"; }
    rcli "$1" DEBUG DIGEST >"$T/$1.digest1"
    [ "$(rcli "$1" DEBUG RELOAD)" = OK ] || fail "$1: DEBUG RELOAD failed"
    { rcli "$1" DEBUG DIGEST; rcli "$1" DBSIZE; rcli "$1" STRLEN s:7; rcli "$1" LRANGE l:3 0 -1 | md5sum
      rcli "$1" HGETALL h:5 | paste - - | sort | md5sum; rcli "$1" ZRANGE z:9 0 -1 WITHSCORES | md5sum; } >"$T/$1.state"
    cmp -s "$T/$1.digest1" <(head -1 "$T/$1.state") || fail "$1: DEBUG RELOAD changed the data set's digest"
}

start_server ref ""
start_server hak "$HAKMEM_LIB"
grep -q libhakmem "/proc/$pid_hak/maps" || fail "the preloaded redis-server has no libhakmem mapped"
load ref
load hak
same_output "redis data set after the command stream and a reload" "$T/ref.state" "$T/hak.state"

timeout -s KILL 120 redis-benchmark -s "$T/hak.sock" --dbnum 3 -n 20000 -c 16 -P 8 -r 10000 -d 300 -q \
    -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset \
    >"$T/bench.out" 2>&1 || { cat "$T/bench.out"; fail "redis-benchmark failed against the preloaded server"; }
grep -qi 'err' "$T/bench.out" && { cat "$T/bench.out"; fail "redis-benchmark reported errors"; }
[ "$(grep -c 'requests per second' "$T/bench.out")" -ge 14 ] || { cat "$T/bench.out"; fail "redis-benchmark did not finish every test"; }
tr '\r' '\n' <"$T/bench.out" | grep 'requests per second' | head -3
[ "$(rcli hak -n 3 DBSIZE)" -gt 0 ] || fail "redis-benchmark left no keys in db 3"
[ "$(rcli hak -n 3 FLUSHDB ASYNC)" = OK ] || fail "FLUSHDB ASYNC failed"
rcli hak DEBUG DIGEST >"$T/hak.digest2"
cmp -s "$T/hak.digest2" <(head -1 "$T/ref.state") || fail "the data set changed while redis-benchmark ran in another database"

for s in ref hak; do
    rcli "$s" SHUTDOWN NOSAVE >/dev/null 2>&1
    eval "pid=\$pid_$s"
    wait "$pid"
    rc=$?
    [ $rc -eq 0 ] || { tail -20 "$T/$s.log"; fail "$s: redis-server exited with $rc"; }
done
check_stderr "$T/hak.err"
grep -q 'hakmem:' "$T/hak.log" && { grep 'hakmem:' "$T/hak.log"; fail "hakmem diagnostics in the server log"; }
echo "ok: redis-server under hakmem: $(cat "$T/hak.digest2") ($(sed -n 2p "$T/hak.state") keys), benchmark and lazy frees clean"
