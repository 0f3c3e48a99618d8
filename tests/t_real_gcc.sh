#!/usr/bin/env bash
# t_real_gcc — gcc (driver, cc1, as, collect2, ld all preloaded) under hakmem.
#
# Generates a C file of moderate size (a few hundred functions with switches,
# loops, structs and string tables), compiles it with -O2 with and without
# LD_PRELOAD=libhakmem.so (in two directories, same relative file names), and
# requires: both compiles succeed, the two executables are byte-identical
# (gcc is deterministic, so any difference means the compiler computed
# something else), and running them prints the same output.
# Why: cc1 is a large, allocation-heavy C/C++ program (GC'd trees, obstacks,
# hash tables) that exercises every size range.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd gcc

gen() {
    echo '#include <stdio.h>'
    echo '#include <string.h>'
    echo 'struct rec { int a; long b; char name[24]; double d; };'
    for i in $(seq 0 299); do
        cat <<EOF
static const char *tab_${i}[] = { "alpha$i", "beta$i", "gamma$i", "delta$i", "eps$i" };
static unsigned long f_$i(unsigned long x) {
    struct rec r[8];
    unsigned long acc = x ^ $i;
    for (int k = 0; k < 8; k++) {
        r[k].a = (int)(x + k * $i); r[k].b = (long)(acc * 31 + k);
        snprintf(r[k].name, sizeof r[k].name, "%s-%d", tab_${i}[k % 5], k);
        r[k].d = (double)r[k].a / (k + 1.5);
    }
    for (int k = 0; k < 8; k++) {
        switch ((r[k].a + k) % 7) {
        case 0: acc += r[k].b; break;
        case 1: acc ^= strlen(r[k].name) * $((i + 3)); break;
        case 2: acc = acc * 1099511628211UL + (unsigned long)r[k].d; break;
        case 3: acc -= (unsigned long)r[k].a << (k % 13); break;
        case 4: acc += (unsigned char)r[k].name[k % 5]; break;
        case 5: acc = (acc >> 3) | (acc << 61); break;
        default: acc += $i; break;
        }
    }
    return acc;
}
EOF
    done
    echo 'int main(void) {'
    echo '    unsigned long acc = 1;'
    for i in $(seq 0 299); do echo "    acc = f_$i(acc);"; done
    echo '    printf("%lu\n", acc);'
    echo '    return 0;'
    echo '}'
}
mkdir -p "$T/ref" "$T/hak"
gen >"$T/ref/gen.c"
cp "$T/ref/gen.c" "$T/hak/gen.c"
echo "generated $(wc -l <"$T/ref/gen.c") lines of C"

(cd "$T/ref" && gcc -O2 -Wall -o gen gen.c) 2>"$T/ref.err" || { cat "$T/ref.err"; fail "reference gcc failed"; }
(cd "$T/hak" && hak gcc -O2 -Wall -o gen gen.c) 2>"$T/hak.err"
rc=$?
[ $rc -eq 0 ] || { cat "$T/hak.err"; fail "gcc under hakmem exited $rc (repro: LD_PRELOAD=$HAKMEM_LIB gcc -O2 -Wall -c gen.c)"; }
check_stderr "$T/hak.err"
diff "$T/ref.err" "$T/hak.err" >/dev/null || { diff "$T/ref.err" "$T/hak.err" | head; fail "gcc diagnostics differ under hakmem"; }
cmp "$T/ref/gen" "$T/hak/gen" || fail "the executables built with and without hakmem differ"
echo "ok: executables identical"
"$T/ref/gen" >"$T/ref.out" || fail "reference program failed"
"$T/hak/gen" >"$T/hak.out" || fail "program built under hakmem failed"
same_output "gcc-built program" "$T/ref.out" "$T/hak.out"

# a C++ translation unit too (g++ uses more of the allocator: templates)
if command -v g++ >/dev/null 2>&1; then
    cat >"$T/ref/t.cc" <<'EOF'
#include <map>
#include <numeric>
#include <string>
#include <vector>
#include <iostream>
#include <algorithm>
template <int N> struct F { static long v() { return F<N - 1>::v() * 3 % 1000003 + N; } };
template <> struct F<0> { static long v() { return 1; } };
int main() {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 1000; i++) m["k" + std::to_string(i % 97)].push_back(i);
    long s = F<300>::v();
    for (auto &kv : m) s += std::accumulate(kv.second.begin(), kv.second.end(), 0L) * (long)kv.first.size();
    std::cout << s << "\n";
}
EOF
    cp "$T/ref/t.cc" "$T/hak/t.cc"
    (cd "$T/ref" && g++ -O2 -o t t.cc) 2>"$T/ref2.err" || { cat "$T/ref2.err"; fail "reference g++ failed"; }
    (cd "$T/hak" && hak g++ -O2 -o t t.cc) 2>"$T/hak2.err" || { cat "$T/hak2.err"; fail "g++ under hakmem failed"; }
    check_stderr "$T/hak2.err"
    cmp "$T/ref/t" "$T/hak/t" || fail "the C++ executables built with and without hakmem differ"
    "$T/ref/t" >"$T/ref2.out" && "$T/hak/t" >"$T/hak2.out" || fail "C++ program failed"
    same_output "g++-built program" "$T/ref2.out" "$T/hak2.out"
fi
