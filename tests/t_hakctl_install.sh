#!/usr/bin/env bash
# t_hakctl_install — `make install` puts hakctl, its man page, its bash
# completion and hakmem_shm.h in place (installed into a scratch DESTDIR);
# the man page renders without warnings; the installed completion completes
# commands, knob names (with '=' after set) and options.
. "$(dirname "$0")/hakctl_lib.sh"
[ -x "$HAKCTL" ] || skip "cli/hakctl not built"
need_cmd make

make -s -C "$ROOT" install-cli DESTDIR="$T/root" PREFIX=/usr >"$T/make.log" 2>&1 ||
    { cat "$T/make.log"; fail "make install-cli failed"; }
for f in bin/hakctl share/man/man1/hakctl.1 share/bash-completion/completions/hakctl \
         include/hakmem_shm.h; do
    [ -f "$T/root/usr/$f" ] || fail "make install did not install $f"
done
[ -x "$T/root/usr/bin/hakctl" ] || fail "installed hakctl not executable"
grep -q 'install-cli' <(make -s -C "$ROOT" -pn install 2>/dev/null | grep '^install:') ||
    fail "install-cli is not part of 'make install'"
"$T/root/usr/bin/hakctl" --version | grep -q '^hakctl ' || fail "installed hakctl does not run"

if command -v man >/dev/null; then
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$T/root/usr/share/man/man1/hakctl.1" 2>&1 >"$T/man.txt")
    [ -z "$w" ] || { echo "$w"; fail "man page warnings"; }
    grep -q "EXIT STATUS" "$T/man.txt" || fail "man page lacks EXIT STATUS"
    echo "ok: man page renders ($(wc -l <"$T/man.txt") lines)"
fi

# shellcheck disable=SC1091
. "$T/root/usr/share/bash-completion/completions/hakctl"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _hakctl; echo "${COMPREPLY[*]}"; }
[ "$(comp "$HAKCTL" st)" = "stats" ] || fail "completion of 'st': $(comp "$HAKCTL" st)"
[ "$(comp "$HAKCTL" set 123 refill)" = "refill_count=" ] || fail "completion of a knob after set"
[ "$(comp "$HAKCTL" get 123 fast)" = "fast_cap" ] || fail "completion of a knob after get"
[ "$(comp "$HAKCTL" stats 123 --wa)" = "--watch" ] || fail "completion of an option"
[ "$(comp "$HAKCTL" top --sort m)" = "mem" ] || fail "completion of --sort"
echo "ok: bash completion"
echo PASS
