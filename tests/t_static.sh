#!/usr/bin/env bash
# t_static — hakmem linked in directly from lib/libhakmem.a (no LD_PRELOAD).
#
# tests/bin/static_* are built with -Wl,--whole-archive lib/libhakmem.a: the
# C++ churn program (its checksum must equal the one of the plain build and
# it must report hakmem as its allocator) and the cross-thread stress test
# (must pass and find hakmem_version). Skips (77) without the archive.
# Why: the archive is a supported way to use hakmem; it must define the whole
# malloc family and operator new/delete so nothing falls back to glibc.
. "$(dirname "$0")/lib.sh"
[ -f "$ROOT/lib/libhakmem.a" ] || skip "lib/libhakmem.a not built"
shopt -s nullglob
S=("$ROOT"/tests/bin/static_*)
if [ ${#S[@]} -eq 0 ]; then
    make -C "$ROOT" --no-print-directory tests-static || fail "building the static test binaries failed"
fi
for b in static_cxx_churn static_stress_xthread; do
    [ -x "$ROOT/tests/bin/$b" ] || fail "tests/bin/$b missing although lib/libhakmem.a exists"
done

"$ROOT/tests/bin/cxx_churn" >"$T/ref.out" 2>"$T/ref.err" || { cat "$T/ref.err"; fail "reference cxx_churn failed"; }
"$ROOT/tests/bin/static_cxx_churn" >"$T/st.out" 2>"$T/st.err"
rc=$?
cat "$T/st.err"
[ $rc -eq 0 ] || fail "static_cxx_churn exited $rc"
grep -q 'allocator: hakmem' "$T/st.err" || fail "static_cxx_churn does not see hakmem_version"
check_stderr "$T/st.err"
same_output "static cxx_churn" "$T/ref.out" "$T/st.out"

HAKMEM_TEST_EXPECT_HAKMEM=1 HAKMEM_TEST_SCALE=50 "$ROOT/tests/bin/static_stress_xthread" >"$T/x.out" 2>&1
rc=$?
cat "$T/x.out"
[ $rc -eq 0 ] || fail "static_stress_xthread exited $rc"
