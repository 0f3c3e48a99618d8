# shellcheck shell=bash
# tests/lib.sh — helpers sourced by the tests/t_*.sh scripts (not a test).
#
#   ROOT            repository root
#   HAKMEM_LIB      absolute path of the library under test ('' = none);
#                   tests/run exports it, a script run by hand finds
#                   lib/libhakmem.so itself
#   T               a private temporary directory, removed on exit
#   skip MSG        print "SKIP: MSG" and exit 77
#   fail MSG        print "FAIL: MSG" and exit 1
#   need_hakmem     skip unless the library exists, fail unless LD_PRELOAD of it
#                   is honoured (it shows in a preloaded shell's /proc/self/maps)
#   need_cmd CMD..  skip unless every CMD is installed
#   hak CMD...      run CMD with the library preloaded
#   same_output NAME FILE_A FILE_B   fail with a diff if the files differ
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${HAKMEM_LIB+x}" ]; then
    HAKMEM_LIB=
    [ -f "$ROOT/lib/libhakmem.so" ] && HAKMEM_LIB=$ROOT/lib/libhakmem.so
fi
export HAKMEM_LIB
T=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
unset LD_PRELOAD

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (scripts/deps.sh test installs it)"
    done
}

need_hakmem() {
    [ -n "$HAKMEM_LIB" ] && [ -f "$HAKMEM_LIB" ] || skip "no hakmem library (lib/libhakmem.so not built, or HAKMEM_TEST_ALLOCATOR=glibc)"
    local maps
    # shellcheck disable=SC2016
    maps=$(LD_PRELOAD=$HAKMEM_LIB /bin/sh -c 'cat /proc/$$/maps' 2>"$T/preload.err")
    if ! grep -q "$(basename "$HAKMEM_LIB")" <<<"$maps"; then
        cat "$T/preload.err"
        fail "LD_PRELOAD=$HAKMEM_LIB is not honoured (library not mapped in a preloaded shell)"
    fi
}

hak() { LD_PRELOAD=$HAKMEM_LIB "$@"; }

# Fails if a preloaded run's stderr file shows the dynamic linker ignored the
# preload, or hakmem complained about something.
check_stderr() {
    if grep -q 'cannot be preloaded' "$1"; then
        cat "$1"
        fail "the dynamic linker refused to preload $HAKMEM_LIB"
    fi
    if grep -q 'hakmem:' "$1"; then
        grep 'hakmem:' "$1" | head -20
        fail "hakmem printed diagnostics (see above) during a run that should be clean"
    fi
}

same_output() {
    if ! cmp -s "$2" "$3"; then
        echo "--- $1: output without hakmem ($2) vs with hakmem ($3):"
        diff "$2" "$3" | head -40
        fail "$1: output differs under hakmem"
    fi
    echo "ok: $1 output identical ($(wc -c <"$2") bytes)"
}
