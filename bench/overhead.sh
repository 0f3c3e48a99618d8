#!/usr/bin/env bash
# Cost of the live counters on the fast path: lib/libhakmem.so against the
# same source built with -DHAK_COUNTERS=0 (lib/libhakmem-nocounters.so), on
# the tiny hot path and on a churn workload. Alternating runs, medians, and
# exact instruction counts from callgrind. Writes docs/overhead.md.
#   bench/overhead.sh [RUNS]      (make bench-overhead)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
on=lib/libhakmem.so off=lib/libhakmem-nocounters.so
make -s $on $off bench/bin/tiny_hot bench/bin/random_mixed bench/bin/larson >/dev/null

workloads=(
  "tiny_hot-64|bench/bin/tiny_hot 64 100 200000"
  "random_mixed-8-128|bench/bin/random_mixed 5000000 400 1 8 128"
  "larson-2t|bench/bin/larson 1 8 128 1024 1 12345 2"
)
ops() { sed -n 's/.* ops_per_sec=\([0-9.]*\).*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

out=docs/overhead.md
{
  echo "# Cost of the live counters"
  echo
  echo "Written by \`bench/overhead.sh $runs\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
  echo "\`counters on\` is lib/libhakmem.so; \`off\` is the same source with \`-DHAK_COUNTERS=0\`."
  echo "Runs alternate on/off; medians of $runs runs each. The machine is shared and noisy:"
  echo "the instruction counts (callgrind, exact and repeatable) are the firmer number."
  echo
  echo "| workload | on (ops/s) | off (ops/s) | on/off | instructions on | instructions off | extra |"
  echo "|---|---|---|---|---|---|---|"
} > "$out"
for w in "${workloads[@]}"; do
  name=${w%%|*} cmd=${w#*|}
  : > /tmp/ovh_on.$$; : > /tmp/ovh_off.$$
  for ((i = 0; i < runs; i++)); do
    LD_PRELOAD=$PWD/$on $cmd | ops >> /tmp/ovh_on.$$
    LD_PRELOAD=$PWD/$off $cmd | ops >> /tmp/ovh_off.$$
  done
  mon=$(median < /tmp/ovh_on.$$) moff=$(median < /tmp/ovh_off.$$)
  # a shorter run under callgrind: the same code paths, exact counts
  small=$(echo "$cmd" | sed -e 's/ 200000$/ 20000/' -e 's/ 5000000 / 500000 /' -e 's/larson 1 /larson 0.2 /')
  ir() { LD_PRELOAD=$PWD/$1 valgrind --tool=callgrind --callgrind-out-file=/tmp/ovh_cg.$$ $small >/dev/null 2>&1
         callgrind_annotate /tmp/ovh_cg.$$ 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); v = $1} END {print v}'; }
  if [[ $name == larson* ]]; then ion=- ioff=- extra=- # timed loop: its count depends on speed
  else ion=$(ir $on); ioff=$(ir $off); extra=$(awk -v a="$ion" -v b="$ioff" 'BEGIN {printf "%+.1f %%", (a-b)*100/b}'); fi
  ratio=$(awk -v a="$mon" -v b="$moff" 'BEGIN {printf "%.3f", a/b}')
  awk -v n="$name" -v a="$mon" -v b="$moff" -v r="$ratio" -v i="$ion" -v j="$ioff" -v e="$extra" \
    'BEGIN {printf "| %s | %.3g M | %.3g M | %s | %s | %s | %s |\n", n, a/1e6, b/1e6, r, i, j, e}' >> "$out"
done
rm -f /tmp/ovh_on.$$ /tmp/ovh_off.$$ /tmp/ovh_cg.$$
cat "$out"
