/* hakd_bpf.h — what hakmemd learns from the kernel, per watched process,
 * through its CO-RE BPF program (daemon/bpf/hakmemd.bpf.c, loaded with
 * libbpf from a bpftool skeleton). Never uprobes malloc: the segment already
 * counts allocations; BPF sees what the allocator cannot see itself.
 *
 * Where BPF cannot load (not root, no BTF, old kernel, --no-bpf) every call
 * below is a cheap no-op that reports "off", and the daemon runs on segment
 * counters and /proc alone. */
#ifndef HAKD_BPF_H
#define HAKD_BPF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Cumulative per-pid (tgid) counts since hakd_bpf_watch(pid). */
struct hakd_bpf_stats {
    uint64_t faults; /* user page faults (exceptions:page_fault_user); 0 unless hakd_bpf_faults() */
    uint64_t mmap_calls, mmap_bytes; /* these three pairs: 0 if hakd_bpf_syscalls() is "off" */
    uint64_t munmap_calls, munmap_bytes;
    uint64_t madvise_calls, madvise_bytes; /* MADV_DONTNEED/FREE: memory handed back */
};

/* Loads and attaches the program. 0 with what is counted in why ("exits,
 * ..."); -1 with a one-line reason in why (e.g. "BPF off: not root
 * (CAP_BPF/CAP_PERFMON needed)") otherwise. HAKMEMD_BPF_SYSCALLS (auto,
 * fentry, tracepoint, off) chooses how syscalls are counted, and
 * HAKMEMD_BPF_FAULTS (off by default, on) whether page faults are:
 * hakd_bpf.c. */
int hakd_bpf_open(char *why, size_t whylen);
/* How mmap/munmap/madvise are counted: "fentry", "sys_enter" or "off" (then
 * their fields below stay 0). */
const char *hakd_bpf_syscalls(void);
/* 1 if page faults are counted (HAKMEMD_BPF_FAULTS=on), else 0: the
 * daemon then takes them from /proc/PID/stat's minflt alone. */
int hakd_bpf_faults(void);
int hakd_bpf_on(void); /* 1 while loaded */
/* Start / stop counting a process (tgid). Watching is a map insert: the
 * program counts only watched pids, so unrelated processes cost a lookup. */
int hakd_bpf_watch(pid_t pid);
void hakd_bpf_unwatch(pid_t pid);
/* Current cumulative counts of a watched pid; 0, or -1 if unknown/off. */
int hakd_bpf_read(pid_t pid, struct hakd_bpf_stats *out);
/* A pollable fd that becomes readable when a watched process exits, and
 * the call that drains it: fn(pid, arg) per exit. -1 / 0 when off. */
int hakd_bpf_exit_fd(void);
int hakd_bpf_drain_exits(void (*fn)(pid_t pid, void *arg), void *arg);
void hakd_bpf_close(void);

#endif
