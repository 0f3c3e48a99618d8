#!/usr/bin/env bash
# t_bpf.sh — hakmemd's kernel probe (daemon/hakd_bpf.c + daemon/bpf/hakmemd.bpf.c)
# through tests/bin/bpf_probe:
#  1. as root, in each way of counting syscalls (auto, fentry, tracepoint,
#     off), with page faults counted (HAKMEMD_BPF_FAULTS=on) and not (the
#     default): a child with a known number of page faults and
#     mmap/munmap/madvise calls is watched; the counts must reach the known
#     numbers and stay within sane bounds, or be 0 where not counted;
#     MADV_WILLNEED must not count; the child's exit comes on the ring
#     buffer, an unwatched process's does not.
#  2. as nobody: open fails with one clean "BPF off: ..." line and every call
#     is a no-op (the daemon then runs on /proc and the segments alone).
#  3. hakmemd with BPF: its status says faults are read from /proc by
#     default and counted by BPF with HAKMEMD_BPF_FAULTS=on.
# Skips only where BPF cannot load: not root, no kernel BTF, or a build
# without libbpf/BTF (daemon/bpf.mk chose daemon/hakd_bpf_off.c).
. "$(dirname "$0")/lib.sh"

probe=$ROOT/tests/bin/bpf_probe
[ -x "$probe" ] || skip "tests/bin/bpf_probe is not built (make test builds it through daemon/bpf.mk)"

# 2 first: it needs no privilege to pass, only to be run as someone else.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    cp "$probe" "$T/bpf_probe"
    chmod 755 "$T" "$T/bpf_probe"
    out=$(setsid timeout -s KILL 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
        --inh-caps=-all --bounding-set=-all "$T/bpf_probe" --expect-off 2>&1)
    rc=$?
    echo "$out"
    [ $rc -eq 0 ] || fail "unprivileged run did not fall back cleanly (rc $rc)"
    [ "$(grep -c . <<<"$out")" -eq 1 ] || fail "the fallback reason is not exactly one line"
    echo "ok: unprivileged (uid 65534): clean fallback"
else
    out=$(setsid timeout -s KILL 20 "$probe" --expect-off 2>&1) || { echo "$out"; fail "unprivileged run did not fall back cleanly"; }
    echo "$out"
    skip "not root: BPF cannot load here (the fallback was checked)"
fi

[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF (/sys/kernel/btf/vmlinux): BPF cannot load"
# Exits are counted in every mode. The syscalls are counted by fentry where
# the kernel allows it; by default nothing else, because the sys_enter
# tracepoint costs every syscall on the machine (daemon/hakd_bpf.c): the
# default, then each way forced. The default must never pick sys_enter.
# Page faults only with HAKMEMD_BPF_FAULTS=on (the fault program costs every
# fault on the machine; /proc minflt carries the same signal): each fault
# setting runs with two syscall modes (faults alone with syscalls "off"),
# the default with "auto".
fentry_ok=
for mode in fentry:on auto: tracepoint:off off:on; do
    faults=${mode#*:} mode=${mode%%:*}
    echo "== syscalls by: $mode, HAKMEMD_BPF_FAULTS=${faults:-(unset)}"
    out=$(HAKMEMD_BPF_SYSCALLS=$mode HAKMEMD_BPF_FAULTS=$faults setsid timeout -s KILL 30 "$probe" 2>&1)
    rc=$?
    echo "$out"
    case $rc in
    0)
        counted=$(sed -n 's/^faults counted: //p' <<<"$out")
        [ "$counted" = "${faults:-off}" ] ||
            fail "HAKMEMD_BPF_FAULTS=${faults:-(unset)}: faults counted '$counted', not '${faults:-off}'"
        how=$(sed -n 's/^syscalls counted by: //p' <<<"$out")
        case $mode in
        fentry) [ "$how" = fentry ] || fail "fentry mode counted by '$how'"; fentry_ok=1 ;;
        auto)
            want=off
            [ -n "$fentry_ok" ] && want=fentry
            [ "$how" = "$want" ] || fail "auto mode counted syscalls by '$how', not '$want'"
            ;;
        tracepoint) [ "$how" = sys_enter ] || fail "tracepoint mode counted by '$how'" ;;
        off) [ "$how" = off ] || fail "off mode counted by '$how'" ;;
        esac
        echo "ok: $mode: syscalls by $how, faults $counted; BPF counts and exit event as expected"
        ;;
    3)
        grep -q 'built without libbpf/BTF' <<<"$out" && skip "$out"
        if [ $mode = fentry ] && grep -q 'kernel refused' <<<"$out"; then
            echo "note: this kernel refuses fentry programs; by default the syscalls are then not counted"
            continue
        fi
        fail "BPF did not load as root on a kernel with BTF ($mode): $out"
        ;;
    *) fail "bpf_probe failed ($mode, rc $rc)" ;;
    esac
done
out=$(HAKMEMD_BPF_SYSCALLS=bogus setsid timeout -s KILL 30 "$probe" 2>&1)
[ $? -eq 3 ] && grep -q 'must be auto, fentry, tracepoint or off' <<<"$out" ||
    fail "a bad HAKMEMD_BPF_SYSCALLS was not refused: $out"
echo "ok: a bad HAKMEMD_BPF_SYSCALLS is refused with the accepted values"
out=$(HAKMEMD_BPF_FAULTS=yes setsid timeout -s KILL 30 "$probe" 2>&1)
[ $? -eq 3 ] && grep -q 'HAKMEMD_BPF_FAULTS must be on or off' <<<"$out" ||
    fail "a bad HAKMEMD_BPF_FAULTS was not refused: $out"
echo "ok: a bad HAKMEMD_BPF_FAULTS is refused with the accepted values"

# The daemon itself, BPF on: its status says whether faults are counted by
# BPF (HAKMEMD_BPF_FAULTS=on) or read from /proc (the default).
hakmemd=$ROOT/daemon/hakmemd
[ -x "$hakmemd" ] || { echo "note: daemon/hakmemd not built: the daemon part skipped"; exit 0; }
printf '{ "include": ["%s/nothing"] }\n' "$T" >"$T/cfg.json"
for faults in "" on off; do
    rm -f "$T/status.json"
    HAKMEMD_BPF_FAULTS=$faults setsid timeout -s KILL 30 "$hakmemd" --foreground \
        --config "$T/cfg.json" --state-dir "$T/state" --status "$T/status.json" >"$T/d.log" 2>&1 &
    dto=$!
    got=
    for _ in $(seq 200); do
        got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["bpf"], d["bpf_faults"])' \
            "$T/status.json" 2>/dev/null) && break
        sleep 0.05
    done
    kill -TERM -- "-$dto" 2>/dev/null
    wait "$dto" 2>/dev/null
    want="True False"
    [ "$faults" = on ] && want="True True"
    [ "$got" = "$want" ] || { cat "$T/d.log"; fail "hakmemd, HAKMEMD_BPF_FAULTS=${faults:-(unset)}: status bpf, bpf_faults = '$got', not '$want'"; }
    echo "ok: hakmemd, HAKMEMD_BPF_FAULTS=${faults:-(unset)}: status bpf, bpf_faults = $got; $(grep -o 'BPF on: .*' "$T/d.log")"
done
