#!/usr/bin/env bash
# t_bpf.sh — hakmemd's kernel probe (daemon/hakd_bpf.c + daemon/bpf/hakmemd.bpf.c)
# through tests/bin/bpf_probe:
#  1. as root: a child with a known number of page faults and
#     mmap/munmap/madvise calls is watched; the counts must reach the known
#     numbers and stay within sane bounds; MADV_WILLNEED must not count; the
#     child's exit comes on the ring buffer, an unwatched process's does not.
#  2. as nobody: open fails with one clean "BPF off: ..." line and every call
#     is a no-op (the daemon then runs on /proc and the segments alone).
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
# The syscalls are counted by fentry where the kernel allows it, else by the
# sys_enter tracepoint (daemon/hakd_bpf.c): the default, then each way forced.
for mode in auto tracepoint fentry; do
    echo "== syscalls by: $mode"
    out=$(HAKMEMD_BPF_SYSCALLS=$mode setsid timeout -s KILL 30 "$probe" 2>&1)
    rc=$?
    echo "$out"
    case $rc in
    0) echo "ok: $mode: BPF counts and exit event as expected" ;;
    3)
        grep -q 'built without libbpf/BTF' <<<"$out" && skip "$out"
        if [ $mode = fentry ] && grep -q 'kernel refused' <<<"$out"; then
            echo "note: this kernel refuses fentry programs; the daemon counts syscalls by the tracepoint"
            continue
        fi
        fail "BPF did not load as root on a kernel with BTF ($mode): $out"
        ;;
    *) fail "bpf_probe failed ($mode, rc $rc)" ;;
    esac
done
