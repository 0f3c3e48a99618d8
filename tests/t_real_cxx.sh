#!/usr/bin/env bash
# t_real_cxx — a C++ program (tests/cxx_churn.cc) under hakmem.
#
# std::map/std::string/std::vector/std::unordered_map/std::list churn in four
# threads with cross-thread destruction, new[]/delete[], aligned new
# (std::align_val_t(64), alignas(128)/alignas(4096) types, 4 KiB-aligned
# 1-3 MiB blocks), explicit sized delete, nothrow new and bad_alloc on an
# impossible new[]. The checksum with LD_PRELOAD=libhakmem.so must equal the
# one without, and the preloaded run must report that hakmem served it.
# Why: operator new/delete (plain, sized, aligned) must all reach hakmem and
# pair up correctly with each other and with libstdc++'s containers.
. "$(dirname "$0")/lib.sh"
need_hakmem
B=$ROOT/tests/bin/cxx_churn
[ -x "$B" ] || skip "$B not built (needs a C++ compiler; make test builds it)"

"$B" >"$T/ref.out" 2>"$T/ref.err" || { cat "$T/ref.err"; fail "reference run failed"; }
hak "$B" >"$T/hak.out" 2>"$T/hak.err"
rc=$?
cat "$T/hak.err"
[ $rc -eq 0 ] || fail "cxx_churn under hakmem exited $rc (repro: LD_PRELOAD=$HAKMEM_LIB $B)"
grep -q 'allocator: hakmem' "$T/hak.err" || fail "hakmem_version not visible in the preloaded program"
check_stderr "$T/hak.err"
same_output "cxx_churn" "$T/ref.out" "$T/hak.out"
cat "$T/hak.out"
