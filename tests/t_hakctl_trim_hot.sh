#!/usr/bin/env bash
# t_hakctl_trim_hot — `hakctl trim` reaches a process whose threads never
# leave their caches: a two-thread workload frees 64 MiB of 16 KiB blocks
# (purge delay 60 s, a segment cache of 64: nothing goes back by itself),
# then its one live thread loops on malloc/free of one block, which never
# takes a slow path. Its background purger (lib/hak_purger.c), asleep on the
# segment's trim_req word, serves the trim: hakctl says "trimmed", the free
# memory leaves RSS and the mapping, trims counts 1. (It started before the
# segment was published, asleep on a private word that hakctl's wake never
# reached: the trim used to wait for a slow path that never came.)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
HAKMEM_PURGE_DELAY_MS=60000 HAKMEM_SEG_CACHE=64 LD_PRELOAD=$HAKMEM_LIB \
    "$WORKLOAD" -t 2 -z 16384 -n 2048 -s 1 -c 60 >"$T/w.out" 2>&1 &
w=$!
KILL_PIDS+=("$w")
disown "$w"
for _ in $(seq 200); do grep -q '^hot' "$T/w.out" && break; sleep 0.05; done
grep -q '^hot' "$T/w.out" || { cat "$T/w.out"; fail "the workload did not reach its hot loop"; }
seg_exists "$w" || fail "the workload did not publish its segment"
grep -qx hakmem-purge /proc/"$w"/task/*/comm || fail "the workload has no background purger"
before=$(rss_kib "$w")
run "$HAKCTL" stats "$w"
echo "before: RSS $before KiB; $(grep -o 'mapped [^ ]* [^ ]*' "$T/out")"
run "$HAKCTL" trim "$w" --wait 5
expect 0 "pid $w: trimmed"
cat "$T/out"
after=$(rss_kib "$w")
run "$HAKCTL" stats "$w"
expect 0 "trims 1"
echo "after: RSS $after KiB; $(grep -o 'mapped [^ ]* [^ ]*' "$T/out")"
[ $((before - after)) -ge 8192 ] || fail "RSS went from $before to $after KiB: less than 8 MiB returned"
grep -q '^hot' "$T/w.out" && kill -0 "$w" || fail "the workload died"
echo "ok: a process looping in its thread cache: the purger served the trim, RSS $before -> $after KiB"
echo PASS
