/* t_fork_lost_holder — a child made by the raw fork system call (no atfork
 * handler runs) while another thread holds an allocator lock, exactly: the
 * holder is stopped inside the allocator, in a system call this program
 * stands in for, when the fork happens. The child must allocate and exit 0
 * (hak_lock finds the holder lost and frees the lock, lib/hak_fork.c); a
 * child still running after CHILD_DEADLINE_S has hung.
 *
 * This program defines mmap() and madvise() itself (exported: -rdynamic,
 * tests.mk), so the preloaded allocator's calls come here. A thread armed
 * to stop is held in the call until released:
 *   - starter: a new thread's first malloc refills from the starter heap
 *     (lib/hak_starter.c), which maps its first 4 MiB segment under the
 *     starter's lock: the holder stops in that mmap. A thread that never
 *     allocated raw-forks; in the child its first malloc takes the starter
 *     too (its heap is new). The child must retire the starter (its holder
 *     may have left it half-updated) and use a new one.
 *   - visitor: a thread's malloc_trim purges every heap's free pages, each
 *     under that heap's lock: the trimmer stops in a madvise of the forking
 *     thread's segments. The child allocates blocks of big classes (their
 *     span work is under its own heap's lock, which the lost trimmer held)
 *     and must take that lock over.
 * Runs with HAKMEM_BACKGROUND=0, a long purge delay and no segment (it
 * re-executes itself so), so that nobody but the trimmer purges those
 * pages first (no purger thread, no trim requested from outside).
 * hakmem only (skips without it). */
#include "testutil.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG_BYTES (4ul << 20) /* hakmem's segment: size and alignment */
#define CHILD_DEADLINE_S 10
#define HOLD_DEADLINE_S 10
#define BIG 40960 /* a big class: its span work is under the heap lock */
#define NBIG 64

/* volatile: glibc declares malloc_trim and the like leaf functions, as if
 * they never came back into this file, so plain stores around them vanish */
static __thread volatile int stop_in_mmap;    /* stops in its next 4 MiB mmap */
static __thread volatile int stop_in_madvise; /* stops in a madvise of a target segment */
static atomic_int holding;                    /* a thread stopped where it was armed to */
static atomic_int release_holder;
static uintptr_t target_seg[NBIG]; /* the forking thread's segments (visitor case) */
static int ntarget;

static void hold(void) {
    atomic_store(&holding, 1);
    struct timespec ts = {0, 1000000};
    while (!atomic_load(&release_holder)) nanosleep(&ts, NULL);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (stop_in_mmap && len == SEG_BYTES && (flags & MAP_ANONYMOUS)) {
        stop_in_mmap = 0;
        hold();
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int madvise(void *addr, size_t len, int advice) {
    if (stop_in_madvise) {
        uintptr_t seg = (uintptr_t)addr & ~(SEG_BYTES - 1);
        for (int i = 0; i < ntarget; i++)
            if (target_seg[i] == seg) {
                stop_in_madvise = 0;
                hold();
                break;
            }
    }
    return (int)syscall(SYS_madvise, addr, len, advice);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls until f() or the deadline; returns f(). */
static bool wait_until(int (*f)(void), double seconds) {
    double end = now_s() + seconds;
    struct timespec ts = {0, 1000000};
    while (!f() && now_s() < end) nanosleep(&ts, NULL);
    return f();
}

static int is_holding(void) {
    return atomic_load(&holding);
}

/* The raw fork child: sizes[] each allocated n times (all kept, then
 * freed), filled and checked; exit 0, or 3 when malloc fails, 4 when a
 * block was overwritten. */
static void child_allocs(const size_t *sizes, int nsizes, int n) {
    static char *p[4 * NBIG];
    int k = 0;
    for (int s = 0; s < nsizes; s++)
        for (int i = 0; i < n && k < 4 * NBIG; i++, k++) {
            if (!(p[k] = malloc(sizes[s]))) _exit(3);
            memset(p[k], 0x5a ^ k, sizes[s]);
        }
    k = 0;
    for (int s = 0; s < nsizes; s++)
        for (int i = 0; i < n && k < 4 * NBIG; i++, k++) {
            if (p[k][0] != (char)(0x5a ^ k) || p[k][sizes[s] - 1] != (char)(0x5a ^ k)) _exit(4);
            free(p[k]);
        }
    _exit(0);
}

static double child_ms; /* how long the last child took */

/* Raw-forks; the child runs child_allocs. Returns the child's wait status,
 * or -1 if it ran past the deadline (then killed). */
static int raw_fork_and_wait(const size_t *sizes, int nsizes, int n) {
    pid_t pid = (pid_t)syscall(SYS_fork);
    if (pid == 0) child_allocs(sizes, nsizes, n);
    if (pid < 0) return -2;
    double t0 = now_s();
    int st = tu_wait_child(pid, CHILD_DEADLINE_S);
    child_ms = (now_s() - t0) * 1000;
    return st;
}

static void check_child(const char *what, int st) {
    CHECKF(st != -1, "%s: the raw fork child hung (still running after %d s)", what,
           CHILD_DEADLINE_S);
    CHECKF(st == -1 || (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0),
           "%s: raw fork child status %#x", what, st);
    if (st == -1)
        printf("%s: raw fork child HUNG\n", what);
    else
        printf("%s: raw fork child status %#x after %.1f ms\n", what, st, child_ms);
}

/* ---- starter: a thread holds the starter's lock ---- */

static void *starter_holder(void *arg) {
    (void)arg;
    stop_in_mmap = 1;
    free(malloc(40)); /* a new heap: its first blocks from the starter */
    return NULL;
}

/* Allocates nothing before the fork: its child's heap is new. */
static void *starter_forker(void *arg) {
    static const size_t sizes[] = {40, 200, 3000};
    *(int *)arg = raw_fork_and_wait(sizes, 3, 20);
    return NULL;
}

static void case_starter(void) {
    pthread_t h, f;
    int st = -2;
    atomic_store(&holding, 0);
    atomic_store(&release_holder, 0);
    REQUIRE(pthread_create(&h, NULL, starter_holder, NULL) == 0);
    bool held = wait_until(is_holding, HOLD_DEADLINE_S);
    CHECKF(held, "starter: the holder never reached the starter's segment mmap");
    if (held) {
        REQUIRE(pthread_create(&f, NULL, starter_forker, &st) == 0);
        pthread_join(f, NULL);
        check_child("starter", st);
    }
    atomic_store(&release_holder, 1);
    pthread_join(h, NULL);
}

/* ---- visitor: a trimming thread holds the forking thread's heap lock ---- */

static atomic_int trim_done;

static void *trimmer(void *arg) {
    (void)arg;
    free(malloc(40)); /* a heap of its own first: not what it stops in */
    stop_in_madvise = 1;
    malloc_trim(0);
    stop_in_madvise = 0;
    atomic_store(&trim_done, 1);
    return NULL;
}

static int is_holding_or_trimmed(void) {
    return atomic_load(&holding) || atomic_load(&trim_done);
}

static void *visitor_forker(void *arg) {
    /* past the starter's budget first (kept live), so the big blocks come
     * from this thread's own segments */
    static char *small[64], *big[NBIG];
    for (int i = 0; i < 64; i++) REQUIRE((small[i] = malloc(4096)) != NULL);
    pthread_t t;
    bool held = false;
    /* a trim that finds the pages purged already (by this thread's own
     * slow paths) is tried again, with new free pages */
    for (int attempt = 0; attempt < 3 && !held; attempt++) {
        for (int i = 0; i < NBIG; i++) {
            REQUIRE((big[i] = malloc(BIG)) != NULL);
            memset(big[i], 1, BIG);
            uintptr_t seg = (uintptr_t)big[i] & ~(SEG_BYTES - 1);
            int j = 0;
            while (j < ntarget && target_seg[j] != seg) j++;
            if (j == ntarget && ntarget < NBIG) target_seg[ntarget++] = seg;
        }
        for (int i = 0; i < NBIG; i++) free(big[i]); /* free pages in its spans */
        atomic_store(&trim_done, 0);
        REQUIRE(pthread_create(&t, NULL, trimmer, NULL) == 0);
        wait_until(is_holding_or_trimmed, HOLD_DEADLINE_S);
        held = atomic_load(&holding);
        if (!held) pthread_join(t, NULL);
    }
    CHECKF(held, "visitor: the trim never purged the forking thread's segments");
    if (held) {
        static const size_t sizes[] = {BIG, 100000, 300000};
        int st = raw_fork_and_wait(sizes, 3, NBIG);
        check_child("visitor", st);
        atomic_store(&release_holder, 1);
        pthread_join(t, NULL);
    }
    for (int i = 0; i < 64; i++) free(small[i]);
    (void)arg;
    return NULL;
}

static void case_visitor(void) {
    pthread_t f;
    atomic_store(&holding, 0);
    atomic_store(&release_holder, 0);
    REQUIRE(pthread_create(&f, NULL, visitor_forker, NULL) == 0);
    pthread_join(f, NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    /* no purger, no trim requests from outside (hakmemd): knobs read at start */
    tu_reexec_with(argv, (const char *const[]){"HAKMEM_BACKGROUND", "0", "HAKMEM_PURGE_DELAY_MS",
                                               "60000", "HAKMEM_SHM", "0", NULL});
    tu_init("t_fork_lost_holder");
    if (!hakmem_loaded()) {
        printf("t_fork_lost_holder: hakmem only (glibc's malloc hangs in such a child)\n");
        return 77;
    }
    free(malloc(40)); /* the main thread's heap: the others are new threads */
    case_starter();
    case_visitor();
    return tu_done();
}
