#!/usr/bin/env bash
# bench/callgrind.sh — instructions per operation of each allocator, counted
# with valgrind's callgrind (deterministic: immune to the noise of a shared
# machine). Run from the repository top, or via `make bench-callgrind`.
#
#   bench/callgrind.sh [REPORT]        (default docs/benchmarks.md)
#   HAKMEM_LIB=/path/libhakmem.so bench/callgrind.sh REPORT   (another build)
#
# Runs tiny_hot, random_mixed, malloc_simple, larson, mid_large_mt and
# realloc_grow with small fixed iteration counts under glibc, hakmem (if
# lib/libhakmem.so exists), mimalloc, jemalloc and tcmalloc.
# Callgrind does not replace malloc (only memcheck-like tools do), so the
# allocator comes in with LD_PRELOAD as usual. Only instructions executed
# inside the workload's bench_loop() (larson: exercise_heap, mid_large_mt:
# worker) and what it calls are counted (--toggle-collect), so start-up and
# teardown do not blur the numbers. larson runs for a time, so its
# operations are the steps its RESULT line reports (@steps).
# The result replaces the callgrind section of REPORT (between the
# callgrind:begin/end markers) or is appended to it; bench/run keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
report=${1:-docs/benchmarks.md}
libdir=/usr/lib/x86_64-linux-gnu
if ! command -v valgrind >/dev/null; then
    echo "callgrind.sh: valgrind is missing (bash scripts/deps.sh bench)" >&2
    exit 1
fi

allocs=(glibc hakmem mimalloc jemalloc tcmalloc)
hakmem_lib=$(readlink -f "${HAKMEM_LIB:-lib/libhakmem.so}" 2>/dev/null || echo "${HAKMEM_LIB:-lib/libhakmem.so}")
declare -A lib=([glibc]="" [hakmem]="$hakmem_lib" [mimalloc]="$libdir/libmimalloc.so.2"
                [jemalloc]="$libdir/libjemalloc.so.2" [tcmalloc]="$libdir/libtcmalloc_minimal.so.4")
note=""
if [ ! -e "$hakmem_lib" ]; then
    echo "callgrind.sh: $hakmem_lib is missing: measuring the peers only" >&2
    note="$hakmem_lib was missing: hakmem was not measured."
    allocs=(glibc mimalloc jemalloc tcmalloc)
fi

# name | command | operations counted (@KEY: the RESULT line's KEY) | what one
# operation is | function counted (default bench_loop)
workloads=(
    "tiny_hot-16|bench/bin/tiny_hot 16 100 2000|200000|malloc+free pair"
    "tiny_hot-64|bench/bin/tiny_hot 64 100 2000|200000|malloc+free pair"
    "tiny_hot-128|bench/bin/tiny_hot 128 100 2000|200000|malloc+free pair"
    "random_mixed-8-128|bench/bin/random_mixed 200000 400 1 8 128|200000|malloc or free"
    "random_mixed-8-1024|bench/bin/random_mixed 200000 400 1 8 1024|200000|malloc or free"
    "malloc_simple-16-256|bench/bin/malloc_simple 20000 16 256|400000|malloc+free pair"
    "larson-1t|bench/bin/larson 1 8 128 1024 1 12345 1 pin|@steps|free+malloc step|exercise_heap"
    "larson-lit-2t|bench/bin/larson 1 8 1000 1000 100 4141 2|@steps|free+malloc step|exercise_heap"
    "mid_large_mt-8k-32k|bench/bin/mid_large_mt 2 100000 256 8192 32768 1|@cycles|malloc or free|worker"
    "realloc_grow-64k|bench/bin/realloc_grow 256 65536 512 1 1|65546|realloc + filling its new bytes"
    "realloc_grow-1m|bench/bin/realloc_grow 64 1048576 8192 1 1|16410|realloc + filling its new bytes"
)

tmp=$(mktemp -d /tmp/hakbench-cg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Preload a private copy: a rebuild during the run must not mix versions.
if [ -z "$note" ]; then
    cp "$hakmem_lib" "$tmp/libhakmem.so"
    lib[hakmem]=$tmp/libhakmem.so
fi
section=$tmp/section.md
{
    echo "<!-- callgrind:begin -->"
    echo "## Instructions per operation (callgrind)"
    echo
    echo "Written by \`bench/callgrind.sh\` (\`make bench-callgrind\`)" \
         "on $(date '+%Y-%m-%d %H:%M:%S %z')," \
         "$(valgrind --version). Instructions (Ir) executed inside the workload's" \
         "\`bench_loop()\` and everything it calls, divided by its operations. The loop's own" \
         "work (random numbers, the tag check) is included and is the same for every allocator." \
         "Lower is better; *hakmem / best* < 1 means fewer instructions than every peer."
    if [ -n "$note" ]; then
        echo
        echo "> $note"
    else
        echo
        rev="git $(git rev-parse --short HEAD 2>/dev/null || echo 'no commit yet')"
        [ -n "${HAKMEM_LIB:-}" ] && rev="not this tree's build"
        echo "hakmem: $rev," \
             "lib/libhakmem.so sha256 $(sha256sum "$tmp/libhakmem.so" | cut -c1-12)," \
             "built $(date -r "$hakmem_lib" '+%Y-%m-%d %H:%M:%S') (${HAKMEM_LIB:+HAKMEM_LIB=}$hakmem_lib)."
    fi
    echo
    header="| workload | operation | $(printf '%s | ' "${allocs[@]}")best peer | hakmem / best |"
    echo "$header"
    echo "|$(printf -- '---|%.0s' $(seq $((${#allocs[@]} + 4))))"
} >"$section"

for w in "${workloads[@]}"; do
    IFS='|' read -r name cmd ops0 what fn <<<"$w"
    row="| $name | $what |"
    declare -A per=()
    for a in "${allocs[@]}"; do
        out=$tmp/$name.$a.out
        # $cmd is split into words on purpose.
        # shellcheck disable=SC2086
        if LD_PRELOAD=${lib[$a]} valgrind --tool=callgrind --callgrind-out-file="$out" \
            --toggle-collect="${fn:-bench_loop}" $cmd >"$tmp/stdout" 2>"$tmp/stderr" &&
            grep -q '^RESULT ' "$tmp/stdout"; then
            ops=$ops0
            if [ "${ops:0:1}" = @ ]; then
                ops=$(grep '^RESULT ' "$tmp/stdout" | tr ' ' '\n' | sed -n "s/^${ops0:1}=//p")
            fi
            ir=$(awk '/^totals:/ {t = $2} /^summary:/ {s = $2}
                      END {print (t != "" ? t : s)}' "$out")
            per[$a]=$(awk -v ir="$ir" -v n="$ops" 'BEGIN {printf "%.1f", ir / n}')
            echo "  $name $a: $ir Ir, ${per[$a]} per op" >&2
        else
            per[$a]=FAIL
            echo "  $name $a: FAILED: LD_PRELOAD=${lib[$a]} valgrind --tool=callgrind $cmd" >&2
            tail -n 3 "$tmp/stderr" >&2
        fi
        row+=" ${per[$a]} |"
    done
    best=""
    bestname=""
    for a in glibc mimalloc jemalloc tcmalloc; do
        v=${per[$a]}
        [ "$v" = FAIL ] && continue
        if [ -z "$best" ] || awk -v v="$v" -v b="$best" 'BEGIN {exit !(v < b)}'; then
            best=$v
            bestname=$a
        fi
    done
    ratio="—"
    if [ -n "$best" ] && [ -n "${per[hakmem]:-}" ] && [ "${per[hakmem]}" != FAIL ]; then
        ratio="**$(awk -v h="${per[hakmem]}" -v b="$best" 'BEGIN {printf "%.2f", h / b}')**"
    fi
    row+=" ${bestname:-—} ${best} | $ratio |"
    echo "$row" >>"$section"
    unset per
done
echo "<!-- callgrind:end -->" >>"$section"

# Splice: replace the old section, or append one.
mkdir -p "$(dirname "$report")"
touch "$report"
awk -v sec="$section" '
    BEGIN { while ((getline l < sec) > 0) s = s l "\n" }
    /<!-- callgrind:begin -->/ { printf "%s", s; skip = 1; done = 1; next }
    /<!-- callgrind:end -->/ { skip = 0; next }
    !skip { print }
    END { if (!done) printf "\n%s", s }' "$report" >"$tmp/report"
cp "$tmp/report" "$report"
cat "$section"
echo "callgrind.sh: updated $report" >&2
