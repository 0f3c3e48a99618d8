// SPDX-License-Identifier: GPL-2.0
/* hakmemd.bpf.c — hakmemd's kernel probe (CO-RE, loaded by daemon/hakd_bpf.c).
 *
 * Counts, per watched tgid, what the allocator cannot see itself: user page
 * faults, mmap/munmap/madvise(DONTNEED|FREE) calls and bytes, and reports the
 * exit of a watched process (its last thread) on a ring buffer. The loader
 * chooses which programs load: the fault program only when asked
 * (HAKMEMD_BPF_FAULTS=on), since it runs on every page fault of every process
 * and /proc/PID/stat's minflt already carries the count.
 *
 * Attached as BTF programs, which need kernel BTF but not tracefs (often not
 * mounted: containers, minimal VMs). The syscalls are counted by fentry on
 * the kernel functions behind them (ksys_mmap_pgoff, __vm_munmap,
 * do_madvise): only those calls pay. Where fentry cannot load (older
 * signatures, no trampolines, a kernel without ftrace) the syscalls are not
 * counted unless the operator opts in to the generic sys_enter tracepoint
 * filtered by number (HAKMEMD_BPF_SYSCALLS=tracepoint): that one runs on
 * every syscall of every process, measured at +70..+180 ns on a 180-300 ns
 * getppid() here. (The per-syscall events sys_enter_mmap & co exist only
 * through tracefs.)
 * Never attached to malloc: the segment counts allocations for free.
 *
 * Only tgids the daemon put in `watched` are counted, so an unrelated process
 * costs one hash lookup per fault or counted call. Values are
 * per-CPU: no atomics, the daemon sums the CPUs when it reads. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Same layout as struct hakd_bpf_stats (daemon/hakd_bpf.h); hakd_bpf.c
 * asserts it. */
struct counts {
    __u64 faults;
    __u64 mmap_calls, mmap_bytes;
    __u64 munmap_calls, munmap_bytes;
    __u64 madvise_calls, madvise_bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32); /* tgid, in the initial pid namespace */
    __type(value, struct counts);
} watched SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} exits SEC(".maps");

/* Syscall numbers and advice values come from the loader's libc headers
 * (set before load), so this file carries no per-arch tables. */
const volatile long nr_mmap = -1, nr_munmap = -1, nr_madvise = -1;
const volatile long madv_dontneed = -1, madv_free = -1;

static __always_inline struct counts *current_counts(void) {
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;

    return bpf_map_lookup_elem(&watched, &tgid);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(hakd_fault, unsigned long address, struct pt_regs *regs, unsigned long error_code) {
    struct counts *c = current_counts();

    if (c) c->faults++;
    return 0;
}

static __always_inline void count_unmap(__u64 len) {
    struct counts *c = current_counts();

    if (c) {
        c->munmap_calls++;
        c->munmap_bytes += len;
    }
}

/* The syscalls through fentry: the functions the syscalls call (kernel-
 * internal callers, e.g. a driver unmapping for this process, count too). */
SEC("fentry/ksys_mmap_pgoff")
int BPF_PROG(hakd_mmap, unsigned long addr, unsigned long len) {
    struct counts *c = current_counts();

    if (c) {
        c->mmap_calls++;
        c->mmap_bytes += len;
    }
    return 0;
}

SEC("fentry/__vm_munmap")
int BPF_PROG(hakd_munmap, unsigned long start, size_t len) {
    count_unmap(len);
    return 0;
}

SEC("fentry/do_madvise")
int BPF_PROG(hakd_madvise, struct mm_struct *mm, unsigned long start, size_t len, int behavior) {
    struct counts *c;

    /* only advice that hands memory back to the kernel */
    if (behavior != madv_dontneed && behavior != madv_free) return 0;
    c = current_counts();
    if (c) {
        c->madvise_calls++;
        c->madvise_bytes += len;
    }
    return 0;
}

/* The fallback for the three above: every syscall, filtered by number. */
SEC("tp_btf/sys_enter")
int BPF_PROG(hakd_sys_enter, struct pt_regs *regs, long id) {
    struct counts *c;
    __u64 len;

    if (id != nr_mmap && id != nr_munmap && id != nr_madvise) return 0;
    c = current_counts();
    if (!c) return 0;
    len = PT_REGS_PARM2_CORE_SYSCALL(regs);
    if (id == nr_mmap) {
        c->mmap_calls++;
        c->mmap_bytes += len;
    } else if (id == nr_munmap) {
        c->munmap_calls++;
        c->munmap_bytes += len;
    } else {
        long advice = PT_REGS_PARM3_CORE_SYSCALL(regs);

        /* only advice that hands memory back to the kernel */
        if (advice == madv_dontneed || advice == madv_free) {
            c->madvise_calls++;
            c->madvise_bytes += len;
        }
    }
    return 0;
}

/* Fires for every exiting thread. do_exit() has already decremented
 * signal->live, so 0 means this is the last thread: the process is gone.
 * (Newer kernels pass group_dead as an argument; reading signal->live
 * works on all of them.) */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(hakd_exit, struct task_struct *task) {
    __u32 tgid = BPF_CORE_READ(task, tgid);
    __u32 *ev;

    if (BPF_CORE_READ(task, signal, live.counter) != 0) return 0;
    if (!bpf_map_lookup_elem(&watched, &tgid)) return 0;
    ev = bpf_ringbuf_reserve(&exits, sizeof(*ev), 0);
    if (!ev) return 0; /* ring full: the daemon's /proc check still catches it */
    *ev = tgid;
    bpf_ringbuf_submit(ev, 0);
    return 0;
}
