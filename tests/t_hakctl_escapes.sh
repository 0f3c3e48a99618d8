#!/usr/bin/env bash
# t_hakctl_escapes — text another process wrote (a knob's reason, the exe
# name in its segment) never reaches the terminal as control characters:
# not C0 (ESC), not C1 in its UTF-8 form (\xc2\x9b is CSI to a UTF-8
# terminal), not bidi overrides. Text output shows them escaped (\xc2\x9b),
# in the C locale and in a UTF-8 one; JSON stays valid and carries the same
# escaped text. (issue 11, item 11)
. "$(dirname "$0")/hakctl_lib.sh"
need_hakctl

workload -t 1 -s 60
w=$WPID
evil=$'\xc2\x9b2J\x1b]0;pwned\x07\xe2\x80\xaeRLO\xff'
run "$HAKCTL" set "$w" adopt=1 --reason "$evil"
expect 0
seg_patch "$w" exe "x$evil"

# every byte of the output: UTF-8, no control character but newline, no
# C1, no bidi or invisible formatting; the escaped form is there
check() { # check WHAT FILE EXPECTED
    python3 - "$1" "$2" "$3" <<'PY' || fail "$1: control characters reach the terminal"
import sys, unicodedata
what, path, want = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path, "rb").read().decode("utf-8")  # strict: malformed UTF-8 fails
for ch in text:
    if ch == "\n":
        continue
    cat = unicodedata.category(ch)
    assert cat not in ("Cc", "Cf"), "%s: %r (%s) in the output" % (what, ch, cat)
assert want in text, "%s: %r not shown" % (what, want)
print("ok:", what)
PY
}
for loc in C C.UTF-8; do
    LC_ALL=$loc "$HAKCTL" get "$w" adopt >"$T/get" || fail "get"
    check "get ($loc)" "$T/get" '\xc2\x9b2J'
    LC_ALL=$loc "$HAKCTL" ps --interval 0.05 >"$T/ps" || fail "ps"
    check "ps ($loc)" "$T/ps" 'x\xc2\x9b2J'
    LC_ALL=$loc "$HAKCTL" top --iterations 1 --interval 0.05 >"$T/top" || fail "top"
    check "top ($loc)" "$T/top" 'x\xc2\x9b2J'
    LC_ALL=$loc "$HAKCTL" stats "$w" --interval 0.05 >"$T/stats" || fail "stats"
    check "stats ($loc)" "$T/stats" 'x\xc2\x9b2J\x1b]0;pw'
done

"$HAKCTL" get "$w" adopt --json >"$T/get.json" || fail "get --json"
"$HAKCTL" ps --json --interval 0.05 >"$T/ps.json" || fail "ps --json"
"$HAKCTL" stats "$w" --json --interval 0.05 >"$T/stats.json" || fail "stats --json"
python3 - "$T" "$w" <<'PY' || fail "JSON output"
import json, sys, unicodedata
d, w = sys.argv[1], int(sys.argv[2])
def clean(s):
    return all(unicodedata.category(c) not in ("Cc", "Cf") for c in s)
g = json.load(open(d + "/get.json"))
r = g["knobs"][0]["reason"]
assert r.startswith("\\xc2\\x9b2J\\x1b]0;pwned\\x07\\xe2\\x80\\xaeRLO\\xff"), r
assert clean(r) and clean(g["exe"]), g
p = [o for o in json.load(open(d + "/ps.json")) if o["pid"] == w][0]
assert p["exe"].startswith("x\\xc2\\x9b2J") and clean(p["exe"]), p["exe"]
s = json.load(open(d + "/stats.json"))
assert s["exe"] == p["exe"], s["exe"]
print("ok: JSON valid, text escaped")
PY
# printable UTF-8 stays readable where the terminal can show it
seg_patch "$w" exe "café"
LC_ALL=C.UTF-8 "$HAKCTL" ps --interval 0.05 | grep -E "^ *$w .*café" || fail "UTF-8 name not shown as is"
"$HAKCTL" ps --json --interval 0.05 | python3 -c '
import json, sys
assert [o for o in json.load(sys.stdin) if o["pid"] == int(sys.argv[1])][0]["exe"] == "café"' "$w" ||
    fail "UTF-8 name in JSON"
LC_ALL=C "$HAKCTL" ps --interval 0.05 | grep -qF 'caf\xc3\xa9' || fail "non-ASCII escaped in the C locale"
echo PASS
