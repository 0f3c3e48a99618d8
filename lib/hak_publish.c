/* hak_publish.c — the process's own segment.
 *
 * A process publishes once it has lived HAK_PUBLISH_DELAY_NS, at the first
 * slow path after that (hak_publish_poll, never inside a recursive malloc):
 * a `sh -c true` ends long before and leaves nothing in /dev/shm; one that
 * sits idle after its start never publishes (nothing to watch). Until then,
 * and for good if the segment cannot be made (no memory, RLIMIT_FSIZE, no
 * /dev/shm to publish in), everything is counted privately; the process
 * says so on stderr once (HAKMEM_SHM=0: no segment, no message). Figures
 * and counters move into the segment when it appears; each heap's counters
 * by the thread that owns it (hak_heap_publish_self), so no count is lost.
 * Unlinked at a clean exit; a fork child starts private and makes its own. */
#include "hak_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HAK_PUBLISH_DELAY_NS 50000000ull /* 50 ms */

struct hak_shm_header *hak_shm_ptr;
struct hak_shm_layout hak_layout;
uint64_t hak_proc_private[HAK_NUM_PROCS];
uint64_t *hak_proc = hak_proc_private;
int hak_shm_enabled = 1;
static pid_t hak_shm_pid;        /* whose segment hak_shm is (not read back from it) */
uint64_t hak_publish_after;      /* hak_now_ns() from which we publish */
int hak_publish_pending;         /* armed, not yet published */
static atomic_int publish_state; /* 0 waiting, 1 publishing, 2 done (or given up) */
static int said;                 /* the stderr note, once per process tree */

/* noinline: its buffer is not on the stack while hak_shm_create runs
 * below publish's frame (the publishing thread's stack depth, see
 * gc_scan in shm/shm_create.c) */
static __attribute__((noinline)) uint64_t read_start_time(void) {
    char buf[512]; /* field 22 ends within about 320 bytes: numbers, comm 16 at most */
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p) return 0;
    for (int field = 2; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

/* One line on stderr, without stdio or strerror (either may allocate). */
static __attribute__((noinline)) void say_no_segment(int err) {
    /* the texts in the array, in cold read-only data (lib/hak_cold.ld) */
    static const struct {
        int e;
        char why[64];
    } whys[] __attribute__((section(".rodata.hak_cold"))) = {
        {0, "system error"},
        {ENOSPC, "no space"},
        {ENOMEM, "out of memory"},
        {EFBIG, "file size limit (ulimit -f)"},
        {ENOENT, "no /dev/shm"},
        {EROFS, "/dev/shm is read-only"},
        {EACCES, "/dev/shm not writable"},
        {EPERM, "not permitted: /dev/shm, or a sandbox's system call filter"},
        {EEXIST, "its name is taken: another user's, or another pid namespace's"},
        {EMFILE, "too many open files"}};
    const char *why = whys[0].why;
    if (said || !hak_shm_enabled) return;
    said = 1;
    for (size_t i = 0; i < sizeof whys / sizeof whys[0]; i++)
        if (whys[i].e == err) why = whys[i].why;
    char msg[256];
    size_t n = 0;
    const char *parts[] = {"hakmem: no live segment for hakctl (", why,
                           "); counting privately. HAKMEM_SHM=0 silences this.\n"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        if (n + l > sizeof msg) l = sizeof msg - n;
        memcpy(msg + n, parts[i], l);
        n += l;
    }
    ssize_t w = write(2, msg, n);
    (void)w;
}

void hak_publish_init(void) {
    if (!hak_shm_enabled) return;
    __atomic_store_n(&hak_publish_after, hak_now_ns() + HAK_PUBLISH_DELAY_NS, __ATOMIC_RELAXED);
    __atomic_store_n(&hak_publish_pending, 1, __ATOMIC_RELEASE);
}

static HAK_NOINLINE void publish(void) {
    char path[256] = {0}, comm[64] = {0};
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n < 0) path[0] = 0;
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, comm, sizeof(comm) - 1);
        if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
        close(fd);
    }
    struct hak_shm_header *shm = hak_shm_create(hak_sys_getpid(), read_start_time(), comm, path);
    if (!shm) {
        say_no_segment(errno);
        return;
    }
    hak_shm_pid = hak_sys_getpid();
    uint64_t *proc = (uint64_t *)((char *)shm + hak_layout.proc_off);
    /* figures counted before the segment existed move into it (an add racing
     * with the switch may be lost: these are statistics) */
    for (int i = 0; i < HAK_NUM_PROCS; i++)
        proc[i] = __atomic_load_n(&hak_proc[i], __ATOMIC_RELAXED);
    __atomic_store_n(&hak_proc, proc, __ATOMIC_RELEASE);
    hak_heaps_publish(shm); /* sets hak_shm; owned heaps move at their next slow path */
    /* orphan counts move at their first count from now (hak_orphan_add) */
    hak_purger_published(); /* trim requests reach a purger started before */
    hak_publish_knobs();
    hak_shm_gc_dead(); /* what processes killed or ended with _exit() left */
}

/* Signals wait until the publication is done, once per process: a handler
 * that forks would leave its child in the middle of it, and the child would
 * finish it as its own (its parent's pid in the header, its heaps bound to
 * rows in a range its fork handler had just made private, its own
 * publication marked done) or, at the wrong moment, fail to drop a
 * half-made segment (t_fork_signal). All of them, as in fork_child: nothing
 * here faults (hak_shm_reserve makes the segment's pages before they are
 * written, so a full /dev/shm is an error, not a SIGBUS). noinline: the
 * signal sets and publish's buffers (580 bytes) stay off the stack of every
 * thread that polls before the publication is due (many_threads: a third
 * stack page in about a third of 1,000 threads, +1.2 MiB). */
static HAK_NOINLINE void publish_signals_held(void) {
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    int cancel = hak_cancel_off(); /* its opens, reads and closes */
    publish();
    __atomic_store_n(&hak_publish_pending, 0, __ATOMIC_RELAXED);
    atomic_store(&publish_state, 2);
    hak_cancel_restore(cancel);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

void hak_publish_poll(void) {
    if (hak_now_ns() < __atomic_load_n(&hak_publish_after, __ATOMIC_RELAXED)) return;
    int z = 0;
    if (!atomic_compare_exchange_strong(&publish_state, &z, 1)) return;
    publish_signals_held();
}

/* Fork child: the parent's segment stays the parent's. The child counts
 * privately (from zero: hak_heaps_leave_parent) and publishes its own once it
 * has lived as long as any process must; a fork + exec publishes nothing. */
void hak_publish_after_fork(void) {
    uint64_t *proc = HAK_PROC_PTR(); /* the segment's, maybe before hak_shm is (publish) */
    if (proc != hak_proc_private) {
        for (int i = 0; i < HAK_NUM_PROCS; i++)
            hak_proc_private[i] = __atomic_load_n(&proc[i], __ATOMIC_RELAXED);
        __atomic_store_n(&hak_proc, hak_proc_private, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&hak_shm_ptr, NULL, __ATOMIC_RELEASE);
    hak_orphan_bind();
    /* the parent's range becomes private zero pages in place, our copy of
     * its fd is closed: pointers into it (counters of retired heaps, of a
     * raw fork child's thread not yet settled, of code a signal handler's
     * fork interrupted) stay valid and reach nothing shared */
    int cancel = hak_cancel_off(); /* the release's close: fork() must return */
    if (hak_shm_release() != 0) hak_fatal("fork child: cannot drop the parent's segment", NULL);
    hak_cancel_restore(cancel);
    __atomic_store_n(&hak_publish_pending, 0, __ATOMIC_RELAXED);
    atomic_store(&publish_state, 0);
    hak_publish_init();
}

static __attribute__((destructor)) void hak_fini(void) {
    if (hak_shm && hak_shm_pid == hak_sys_getpid()) {
        hak_shm->flags &= ~HAK_SHM_F_LIVE;
        hak_shm_unlink(hak_sys_getpid());
    }
}
