#!/usr/bin/env bash
# t_daemon_metrics — hakmemd --metrics serves Prometheus text exposition
# over TCP (127.0.0.1:PORT) and a unix socket: scraped with curl, every line
# is a valid # HELP / # TYPE comment or sample (name{labels} value), every
# sample's family was declared, and the expected names are there, with the
# watched process's per-class counters and knob owners. Another path is 404.
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_cmd curl
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dwork -t 1 -s 60 -z 64 -n 20000
w=$WPID
dstart --metrics "127.0.0.1:$port"
wait_log "pid $w (wl): refill_count[3]" 10
sleep 0.5 # the next tick reads the knob back

check() { # check FILE: the exposition format, and what must be in it
    python3 - "$1" "$w" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
pid = sys.argv[2]
assert text.endswith("\n"), "no final newline"
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$" % (name, label, label))
declared, samples = {}, []
for i, line in enumerate(text.splitlines(), 1):
    if line.startswith("# HELP "):
        assert re.match(r"^# HELP %s \S" % name, line), "line %d: %r" % (i, line)
    elif line.startswith("# TYPE "):
        m = re.match(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % name, line)
        assert m, "line %d: %r" % (i, line)
        declared[m.group(1)] = m.group(2)
    else:
        m = sample.match(line)
        assert m, "line %d is not valid exposition: %r" % (i, line)
        assert m.group(1) in declared, "line %d: %s has no # TYPE" % (i, m.group(1))
        samples.append(line)
for want in ["hakmemd_up", "hakmemd_bpf_enabled", "hakmemd_cpu_seconds_total", "hakmemd_processes",
             "hakmemd_decisions_total", "hakmemd_ticks_total", "hakmem_process_ops_per_second",
             "hakmem_process_cpu_ns_per_op", "hakmem_process_cached_bytes",
             "hakmem_class_allocs_total", "hakmem_class_alloc_slow_total", "hakmem_knob_value"]:
    assert want in declared, "missing " + want
assert "hakmemd_up 1" in samples
assert "hakmemd_bpf_enabled 0" in samples
assert any(s.startswith('hakmem_class_allocs_total{pid="%s",class="3"} ' % pid) for s in samples)
assert any(s.startswith('hakmem_knob_value{pid="%s",knob="refill_count",class="3",owner="daemon"} ' % pid)
           for s in samples), "no daemon-owned refill_count[3]"
assert any(s.startswith('hakmemd_decisions_total{rule="alloc_miss"} ') and not s.endswith(" 0")
           for s in samples)
print("ok: %d samples of %d families, all valid" % (len(samples), len(declared)))
PY
}
curl -sS --max-time 5 -o "$T/m.txt" -w '%{http_code} %{content_type}\n' "http://127.0.0.1:$port/metrics" >"$T/code" ||
    fail "curl failed"
cat "$T/code"
grep -q '^200 text/plain; version=0.0.4' "$T/code" || fail "not 200 text/plain 0.0.4"
check "$T/m.txt" || fail "bad exposition (TCP)"
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
[ "$code" = 404 ] || fail "GET /nope gave $code"
dstop

mv "$T/d.log" "$T/d1.log"
# The first daemon may have learned wl's phase and saved a profile (more
# likely the longer it ran: a loaded machine): the second would apply it at
# attach ("refill_count[3] 64 -> 256 [profile]", which wait_log took for the
# decision) and make no alloc_miss decision of its own. Start it afresh.
rm -rf "$T/state/profiles"
dstart --metrics "$T/metrics.sock"
wait_log "pid $w (wl): refill_count[3]" 10
sleep 0.5
curl -sS --max-time 5 --unix-socket "$T/metrics.sock" -o "$T/m2.txt" http://localhost/metrics || fail "curl on the unix socket failed"
check "$T/m2.txt" || fail "bad exposition (unix socket)"
dstop
[ ! -e "$T/metrics.sock" ] || fail "the socket was left behind"
echo "ok: metrics over TCP and a unix socket"
