/* t_sandbox_seccomp — with HAKMEM_SHM=0 HAKMEM_BACKGROUND=0, a process
 * confined by a strict seccomp filter keeps allocating.
 *
 * The filter is of OpenSSH's pre-authentication kind: memory (mmap, munmap,
 * mremap, madvise, mprotect, brk), futex, clocks and sleeps, read, write,
 * close, getpid, gettid, getrandom, exit; open/openat/stat denied with
 * EACCES; anything else kills the process. Checks, in fork children of a
 * process that ran a thread (the test re-runs itself with the two knobs):
 *  - "cold": the child confines itself before its first malloc, then
 *    allocates and frees 1 B .. 100 KB blocks, a buffer realloc'ed to
 *    64 MiB and 20 calloc'ed blocks of 1-20 MiB (210 MiB freed: past
 *    background_solo_mb), frees the parent's blocks, malloc_trim: exit 0;
 *  - "warm": the same after allocating first, then for 1.5 s more.
 * Why: by default hakmem makes system calls glibc's malloc never makes: a
 * fork child publishes its own segment on its first malloc (readlink,
 * openat, prlimit64, memfd_create, ...) and a thread that freed 64 MiB
 * starts the purger (clone3). Under such a filter the process is killed
 * (SIGSYS); docs/allocator.md "Sandboxes" gives the two knobs, and this
 * test keeps them sufficient. Passes on glibc.
 */
#include "testutil.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define ALLOW(nr)                                                                                  \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define DENY(nr, e)                                                                                \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                               \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (e))

static bool confine(void) {
    struct sock_filter f[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                              DENY(SYS_open, EACCES),
                              DENY(SYS_openat, EACCES),
                              DENY(SYS_newfstatat, EACCES),
                              DENY(SYS_stat, EACCES),
                              DENY(SYS_fstat, EACCES),
                              ALLOW(SYS_brk),
                              ALLOW(SYS_mmap),
                              ALLOW(SYS_munmap),
                              ALLOW(SYS_mremap),
                              ALLOW(SYS_madvise),
                              ALLOW(SYS_mprotect),
                              ALLOW(SYS_futex),
                              ALLOW(SYS_clock_gettime),
                              ALLOW(SYS_gettimeofday),
                              ALLOW(SYS_clock_nanosleep),
                              ALLOW(SYS_nanosleep),
                              ALLOW(SYS_read),
                              ALLOW(SYS_write),
                              ALLOW(SYS_writev),
                              ALLOW(SYS_close),
                              ALLOW(SYS_getpid),
                              ALLOW(SYS_gettid),
                              ALLOW(SYS_getrandom),
                              ALLOW(SYS_rt_sigprocmask),
                              ALLOW(SYS_rt_sigreturn),
                              ALLOW(SYS_exit),
                              ALLOW(SYS_exit_group),
                              BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)};
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/* allocation work; 0 if every block read back what was written */
static int work(void **inherited, int n_inherited) {
    static void *r[3000];
    int bad = 0;
    for (int it = 0; it < 20; it++) {
        for (int k = 0; k < 3000; k++) {
            size_t n = (size_t)(k * 37 + it) % 100000 + 1;
            r[k] = malloc(n);
            if (!r[k]) return 1;
            memset(r[k], k & 0xff, n < 64 ? n : 64);
        }
        for (int k = 0; k < 3000; k++) {
            bad += ((unsigned char *)r[k])[0] != (k & 0xff);
            free(r[k]);
        }
    }
    char *b = malloc(100);
    for (size_t n = 100; b && n < ((size_t)64 << 20); n += n / 2) {
        char *nb = realloc(b, n);
        if (!nb) break;
        b = nb;
        b[n - 1] = 1;
    }
    free(b);
    for (int i = 0; i < 20; i++) {
        unsigned char *p = calloc(1, (size_t)(i + 1) << 20);
        if (!p) return 1;
        bad += p[(size_t)i << 20] != 0;
        free(p);
    }
    for (int i = 0; i < n_inherited; i++) {
        free(inherited[i]);
        inherited[i] = NULL;
    }
    malloc_trim(0);
    return bad != 0;
}

static void *thread_work(void *arg) {
    void *none[1];
    return (void *)(intptr_t)work(none, (int)(intptr_t)arg);
}

/* 0 ok, else what went wrong (a signal number + 1000, an exit status) */
static int child(bool warm, void **inherited, int n) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (warm && work(inherited, 0)) _exit(2);
        if (!confine()) _exit(3);
        int rc = work(inherited, n);
        for (int i = 0; warm && !rc && i < 6; i++) {
            struct timespec ts = {0, 250000000};
            nanosleep(&ts, NULL);
            rc = work(inherited, 0);
        }
        _exit(rc);
    }
    int st = tu_wait_child(pid, 120);
    if (st < 0) return st;
    return WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : WEXITSTATUS(st);
}

int main(int argc, char **argv) {
    (void)argc;
    static const char *const env[] = {"HAKMEM_SHM", "0", "HAKMEM_BACKGROUND", "0", NULL};
    tu_reexec_with(argv, env);
    tu_init("t_sandbox_seccomp");
    void *keep[100];
    for (int i = 0; i < 100; i++) keep[i] = malloc((size_t)i * 1000 + 1);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_work, (void *)0) == 0);
    pthread_join(t, NULL);
    for (int round = 0; round < 3; round++) {
        int r = child(false, keep, 100);
        CHECKF(r == 0, "cold child (confined before its first malloc), round %d: %s %d", round,
               r > 1000 ? "killed by signal" : "status", r > 1000 ? r - 1000 : r);
    }
    int r = child(true, keep, 100);
    CHECKF(r == 0, "warm child (confined after allocating): %s %d",
           r > 1000 ? "killed by signal" : "status", r > 1000 ? r - 1000 : r);
    for (int i = 0; i < 100; i++) free(keep[i]);
    return tu_done();
}
