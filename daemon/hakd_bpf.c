/* hakd_bpf.c — loads daemon/bpf/hakmemd.bpf.c through its bpftool skeleton
 * and serves the counts and exit events of watched processes (hakd_bpf.h).
 * One program per daemon: the state below is the daemon's single instance.
 * Built only where libbpf, clang, bpftool and kernel BTF exist at build time
 * (daemon/bpf.mk); elsewhere hakd_bpf_off.c takes its place. */
#include "hakd_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf/hakmemd.skel.h"

/* The map value is struct counts in hakmemd.bpf.c: seven __u64 in this order. */
_Static_assert(sizeof(struct hakd_bpf_stats) == 7 * sizeof(uint64_t), "BPF value layout");
_Static_assert(offsetof(struct hakd_bpf_stats, madvise_bytes) == 6 * sizeof(uint64_t),
               "BPF value layout");

static struct hakmemd_bpf *skel;
static struct ring_buffer *exit_rb;
static int ncpus;
static struct hakd_bpf_stats *percpu; /* ncpus values, scratch for reads */
static void (*exit_fn)(pid_t, void *);
static void *exit_arg;
/* libbpf's last complaint, so a failed load says why in one line. */
static char last_msg[160];

static int keep_last_msg(enum libbpf_print_level level, const char *fmt, va_list ap) {
    if (level == LIBBPF_DEBUG) return 0;
    vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    last_msg[strcspn(last_msg, "\n")] = '\0';
    return 0;
}

static int off(char *why, size_t whylen, const char *reason, int err) {
    if (why && whylen && err)
        snprintf(why, whylen, "BPF off: %s: %s%s%s%s", reason, strerror(err),
                 last_msg[0] ? " (libbpf: " : "", last_msg, last_msg[0] ? ")" : "");
    else if (why && whylen)
        snprintf(why, whylen, "BPF off: %s", reason);
    hakd_bpf_close();
    return -1;
}

static int on_exit_event(void *ctx, void *data, size_t len) {
    (void)ctx;
    if (len >= sizeof(uint32_t) && exit_fn) exit_fn((pid_t) * (const uint32_t *)data, exit_arg);
    return 0;
}

enum sys_how { SYS_NONE, SYS_FENTRY, SYS_TRACEPOINT };

/* Opens, loads and attaches the skeleton with the syscalls counted as asked.
 * 0, or a positive errno with the step that failed in *step. */
static int load(enum sys_how how, int faults, const char **step) {
    int err;

    skel = hakmemd_bpf__open();
    if (!skel) {
        *step = "cannot open the BPF object";
        return errno ? errno : EINVAL;
    }
    skel->rodata->nr_mmap = SYS_mmap;
    skel->rodata->nr_munmap = SYS_munmap;
    skel->rodata->nr_madvise = SYS_madvise;
    skel->rodata->madv_dontneed = MADV_DONTNEED;
    skel->rodata->madv_free = MADV_FREE;
    bpf_program__set_autoload(skel->progs.hakd_mmap, how == SYS_FENTRY);
    bpf_program__set_autoload(skel->progs.hakd_munmap, how == SYS_FENTRY);
    bpf_program__set_autoload(skel->progs.hakd_madvise, how == SYS_FENTRY);
    bpf_program__set_autoload(skel->progs.hakd_sys_enter, how == SYS_TRACEPOINT);
    bpf_program__set_autoload(skel->progs.hakd_fault, faults);
    err = hakmemd_bpf__load(skel);
    if (err) {
        *step = "cannot load the BPF program";
        return -err;
    }
    err = hakmemd_bpf__attach(skel);
    if (err) {
        *step = "cannot attach the BPF program (kernel too old?)";
        return -err;
    }
    return 0;
}

static void unload(void) {
    hakmemd_bpf__destroy(skel);
    skel = NULL;
}

/* How the syscalls are counted. The sys_enter tracepoint runs on every
 * syscall of every process on the machine (+100-180 ns on a 300 ns
 * getppid() measured here), to count calls the allocator already counts
 * itself (its released_bytes and mapped_bytes figures): so it is used only
 * when asked for, never as an automatic fallback. */
static const char *sys_mode = "off";

const char *hakd_bpf_syscalls(void) {
    return skel ? sys_mode : "off";
}

/* The page-fault program (tp_btf/page_fault_user) runs on every user page
 * fault of every process on the machine, a hash lookup to skip the
 * unwatched ones included, to count what /proc/PID/stat's minflt (read by
 * the daemon every tick anyway) already counts for the watched ones. So it
 * is loaded only when asked for: HAKMEMD_BPF_FAULTS=on. */
static int faults_on;

int hakd_bpf_faults(void) {
    return skel ? faults_on : 0;
}

/* 1 or 0 from an on/off environment variable (unset or empty: dflt); -1 if
 * it holds anything else. */
static int env_on_off(const char *name, int dflt) {
    const char *v = getenv(name);

    if (!v || !*v) return dflt;
    if (!strcmp(v, "on")) return 1;
    if (!strcmp(v, "off")) return 0;
    return -1;
}

/* HAKMEMD_BPF_SYSCALLS chooses how mmap/munmap/madvise are counted:
 *   auto (default)  fentry where the kernel allows it, else not at all;
 *   fentry          fentry or fail;
 *   tracepoint      the sys_enter tracepoint (every syscall pays);
 *   off             not counted.
 * HAKMEMD_BPF_FAULTS (on, off: default) chooses whether page faults are
 * counted (above). Exits are counted in every mode: that program runs only
 * when a thread exits. */
int hakd_bpf_open(char *why, size_t whylen) {
    const char *mode = getenv("HAKMEMD_BPF_SYSCALLS"), *step = "";
    int err = 0, fentry_err = 0;
    char sys_why[200];

    if (skel) return 0;
    if (!mode || !*mode) mode = "auto";
    if (strcmp(mode, "auto") && strcmp(mode, "fentry") && strcmp(mode, "tracepoint") &&
        strcmp(mode, "off"))
        return off(why, whylen, "HAKMEMD_BPF_SYSCALLS must be auto, fentry, tracepoint or off", 0);
    faults_on = env_on_off("HAKMEMD_BPF_FAULTS", 0);
    if (faults_on < 0) return off(why, whylen, "HAKMEMD_BPF_FAULTS must be on or off", 0);
    last_msg[0] = '\0';
    libbpf_set_print(keep_last_msg);
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        return off(why, whylen, "no kernel BTF (/sys/kernel/btf/vmlinux)", 0);
    ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return off(why, whylen, "cannot count possible CPUs", -ncpus);
    percpu = calloc((size_t)ncpus, sizeof(*percpu));
    if (!percpu) return off(why, whylen, "out of memory", ENOMEM);

    if (!strcmp(mode, "auto") || !strcmp(mode, "fentry")) {
        sys_mode = "fentry";
        err = load(SYS_FENTRY, faults_on, &step);
        /* any failure, EPERM included: some kernels refuse fentry to root
         * (seen on 6.18 here, built without ftrace) */
        if (err && !strcmp(mode, "auto")) {
            fentry_err = err;
            unload();
            last_msg[0] = '\0';
            sys_mode = "off";
            err = load(SYS_NONE, faults_on, &step);
        }
    } else if (!strcmp(mode, "tracepoint")) {
        sys_mode = "sys_enter";
        err = load(SYS_TRACEPOINT, faults_on, &step);
    } else {
        sys_mode = "off";
        err = load(SYS_NONE, faults_on, &step);
    }
    if ((err == EPERM || err == EACCES) && geteuid() != 0)
        return off(why, whylen, "not permitted to load BPF (root or CAP_BPF+CAP_PERFMON needed)",
                   0);
    if (err == EPERM || err == EACCES)
        return off(why, whylen, "the kernel refused the BPF program to root (lockdown or an LSM?)",
                   0);
    if (err) return off(why, whylen, step, err);
    exit_rb = ring_buffer__new(bpf_map__fd(skel->maps.exits), on_exit_event, NULL, NULL);
    if (!exit_rb) return off(why, whylen, "cannot open the exit ring buffer", errno);
    if (!strcmp(sys_mode, "fentry"))
        snprintf(sys_why, sizeof sys_why, "mmap/munmap/madvise (fentry)");
    else if (!strcmp(sys_mode, "sys_enter"))
        snprintf(sys_why, sizeof sys_why,
                 "mmap/munmap/madvise (sys_enter tracepoint: every syscall on the machine pays)");
    else if (fentry_err)
        snprintf(sys_why, sizeof sys_why,
                 "syscalls not counted (fentry refused: %s; HAKMEMD_BPF_SYSCALLS=tracepoint to "
                 "count them at a cost to every syscall)",
                 strerror(fentry_err));
    else
        snprintf(sys_why, sizeof sys_why, "syscalls not counted");
    if (why && whylen)
        snprintf(why, whylen, "exits, %s; %s", sys_why,
                 faults_on ? "page faults (HAKMEMD_BPF_FAULTS=on: every fault on the machine pays)"
                           : "page faults from /proc minflt");
    return 0;
}

int hakd_bpf_on(void) {
    return skel != NULL;
}

int hakd_bpf_watch(pid_t pid) {
    uint32_t key = (uint32_t)pid;

    if (!skel || pid <= 0) return -1;
    memset(percpu, 0, (size_t)ncpus * sizeof(*percpu));
    /* BPF_NOEXIST: watching twice keeps the counts already gathered */
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.watched), &key, percpu, BPF_NOEXIST) == 0)
        return 0;
    return errno == EEXIST ? 0 : -1;
}

void hakd_bpf_unwatch(pid_t pid) {
    uint32_t key = (uint32_t)pid;

    if (skel && pid > 0) bpf_map_delete_elem(bpf_map__fd(skel->maps.watched), &key);
}

int hakd_bpf_read(pid_t pid, struct hakd_bpf_stats *out) {
    uint32_t key = (uint32_t)pid;

    if (!skel || pid <= 0 || !out) return -1;
    if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.watched), &key, percpu) != 0) return -1;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < ncpus; i++) {
        out->faults += percpu[i].faults;
        out->mmap_calls += percpu[i].mmap_calls;
        out->mmap_bytes += percpu[i].mmap_bytes;
        out->munmap_calls += percpu[i].munmap_calls;
        out->munmap_bytes += percpu[i].munmap_bytes;
        out->madvise_calls += percpu[i].madvise_calls;
        out->madvise_bytes += percpu[i].madvise_bytes;
    }
    return 0;
}

int hakd_bpf_exit_fd(void) {
    return exit_rb ? ring_buffer__epoll_fd(exit_rb) : -1;
}

int hakd_bpf_drain_exits(void (*fn)(pid_t pid, void *arg), void *arg) {
    int n;

    if (!exit_rb) return 0;
    exit_fn = fn;
    exit_arg = arg;
    n = ring_buffer__consume(exit_rb);
    exit_fn = NULL;
    exit_arg = NULL;
    return n < 0 ? 0 : n;
}

void hakd_bpf_close(void) {
    ring_buffer__free(exit_rb);
    exit_rb = NULL;
    unload();
    free(percpu);
    percpu = NULL;
}
