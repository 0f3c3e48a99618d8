#!/usr/bin/env bash
# t_real_sort — GNU sort of a 2,000,000-line file under hakmem.
#
# Generates a deterministic file (awk), sorts it with LC_ALL=C in three ways
# (plain, -n -k2 multi-threaded --parallel=2, and -u with a small -S buffer
# so it spills to temporary files and merges), with and without
# LD_PRELOAD=libhakmem.so; the sha256 of every output must match.
# Why: sort allocates big line buffers, runs worker threads and frees
# across them.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd sort awk sha256sum

awk 'BEGIN { x = 12345; for (i = 0; i < 2000000; i++) { x = (x * 1103515245 + 12345) % 2147483648;
    printf "%08x %d line-%d%s\n", x, x % 100000, i, (i % 13 ? "" : "-extra-padding-text") } }' >"$T/in.txt"
echo "input: $(wc -l <"$T/in.txt") lines, $(wc -c <"$T/in.txt") bytes"

run_sorts() { # $1 = prefix ('' or 'hak')
    local p=$1 rc=0
    $p sort "$T/in.txt" >"$T/$2.1" 2>>"$T/$2.err" || rc=1
    $p sort -n -k2,2 -k1,1 --parallel=2 "$T/in.txt" >"$T/$2.2" 2>>"$T/$2.err" || rc=1
    $p sort -u -S 8M -T "$T" -k2,2n "$T/in.txt" >"$T/$2.3" 2>>"$T/$2.err" || rc=1
    return $rc
}
export LC_ALL=C
run_sorts "" ref || { cat "$T/ref.err"; fail "reference sort failed"; }
run_sorts hak hak || { cat "$T/hak.err"; fail "sort under hakmem failed (repro: LD_PRELOAD=$HAKMEM_LIB sort FILE)"; }
check_stderr "$T/hak.err"
for i in 1 2 3; do
    a=$(sha256sum <"$T/ref.$i" | cut -d' ' -f1)
    b=$(sha256sum <"$T/hak.$i" | cut -d' ' -f1)
    [ "$a" = "$b" ] || fail "sort variant $i: sha256 differs ($a vs $b)"
    echo "ok: sort variant $i sha256 $a ($(wc -l <"$T/ref.$i") lines)"
done
