/* hakd_bpf_off.c — hakd_bpf.h where the daemon was built without libbpf,
 * clang, bpftool or kernel BTF (daemon/bpf.mk chooses): BPF is always off and
 * the daemon runs on segment counters and /proc alone. */
#include "hakd_bpf.h"

#include <stdio.h>

int hakd_bpf_open(char *why, size_t whylen) {
    if (why && whylen) snprintf(why, whylen, "BPF off: built without libbpf/BTF");
    return -1;
}

int hakd_bpf_on(void) {
    return 0;
}
const char *hakd_bpf_syscalls(void) {
    return "off";
}
int hakd_bpf_faults(void) {
    return 0;
}
int hakd_bpf_watch(pid_t pid) {
    return -1;
}
void hakd_bpf_unwatch(pid_t pid) {}
int hakd_bpf_read(pid_t pid, struct hakd_bpf_stats *out) {
    return -1;
}
int hakd_bpf_exit_fd(void) {
    return -1;
}
int hakd_bpf_drain_exits(void (*fn)(pid_t pid, void *arg), void *arg) {
    return 0;
}
void hakd_bpf_close(void) {}
