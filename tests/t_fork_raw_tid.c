/* t_fork_raw_tid — in a child made by the raw fork system call (no atfork
 * handler runs), the forking thread stamps the locks it takes with its tid
 * in the child, never with the one it had in the parent: a thread the child
 * starts would take such a stale stamp for a holder lost in the fork
 * (hak_lock_as checks the holder with tgkill after 10 ms of waiting) and
 * take the lock over while its real holder is inside: two holders.
 *
 * The single-threaded parent allocates (its tid is cached for lock words),
 * then raw-forks. In the child the forking thread F starts a thread T, which
 * frees big blocks into its own spans; F then trims (malloc_trim purges
 * every heap, each under its lock) and is held inside the madvise of T's
 * segment (this program defines madvise(), -rdynamic), holding T's heap
 * lock. T then allocates a big block, which needs that lock. A watcher
 * thread gives T HOLD_MS: T must still be waiting when F is released. The
 * child exits 0, or 1 if T got the lock while F held it. The parent kills
 * a child that outlives its deadline (the child has an alarm too).
 * Runs with HAKMEM_BACKGROUND=0, a long purge delay and no segment (it
 * re-executes itself so): nobody but F purges T's pages.
 * hakmem only (skips without it). */
#include "testutil.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG_BYTES (4ul << 20) /* hakmem's segment: size and alignment */
#define CHILD_DEADLINE_S 20
#define HOLD_MS 300 /* 30 times the lost-holder look */
#define BIG 40960   /* a big class: its span work is under the heap lock */
#define OTHER_BIG 100000
#define NBIG 64

static __thread volatile int stop_in_madvise;
static atomic_int holding, release_holder, t_ready, t_go, t_got_lock;
static uintptr_t target_seg[NBIG];
static atomic_int ntarget;

int madvise(void *addr, size_t len, int advice) {
    if (stop_in_madvise) {
        uintptr_t seg = (uintptr_t)addr & ~(SEG_BYTES - 1);
        for (int i = 0; i < atomic_load(&ntarget); i++)
            if (target_seg[i] == seg) {
                stop_in_madvise = 0;
                atomic_store(&holding, 1);
                struct timespec ts = {0, 1000000};
                while (!atomic_load(&release_holder)) nanosleep(&ts, NULL);
                break;
            }
    }
    return (int)syscall(SYS_madvise, addr, len, advice);
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static bool wait_flag(atomic_int *f, int ms) {
    for (int i = 0; i < ms && !atomic_load(f); i++) nap_ms(1);
    return atomic_load(f);
}

/* T: free pages in its own spans, then (on go) a block that needs its lock. */
static void *t_main(void *arg) {
    (void)arg;
    static char *big[NBIG];
    for (int i = 0; i < NBIG; i++) {
        if (!(big[i] = malloc(BIG))) _exit(3);
        memset(big[i], 1, BIG);
        uintptr_t seg = (uintptr_t)big[i] & ~(SEG_BYTES - 1);
        int j = 0, n = atomic_load(&ntarget);
        while (j < n && target_seg[j] != seg) j++;
        if (j == n) {
            target_seg[n] = seg;
            atomic_store(&ntarget, n + 1);
        }
    }
    for (int i = 0; i < NBIG; i++) free(big[i]);
    atomic_store(&t_ready, 1);
    wait_flag(&t_go, CHILD_DEADLINE_S * 1000);
    void *volatile p = malloc(OTHER_BIG); /* its first: a refill, under its heap lock */
    atomic_store(&t_got_lock, 1);
    free(p);
    return NULL;
}

/* W: once F holds T's lock, lets T ask for it, and releases F after HOLD_MS. */
static atomic_int verdict; /* 0 ok, 1 T got the lock while F held it, 2 F never held it */
static void *w_main(void *arg) {
    (void)arg;
    if (!wait_flag(&holding, 5000)) {
        atomic_store(&verdict, 2);
    } else {
        atomic_store(&t_go, 1);
        nap_ms(HOLD_MS);
        if (atomic_load(&t_got_lock)) atomic_store(&verdict, 1);
    }
    atomic_store(&release_holder, 1);
    atomic_store(&t_go, 1);
    return NULL;
}

static void child(void) {
    alarm(CHILD_DEADLINE_S); /* its own guard: alarms are not inherited */
    pthread_t t, w;
    if (pthread_create(&t, NULL, t_main, NULL) != 0) _exit(6);
    if (!wait_flag(&t_ready, 5000)) _exit(7);
    if (pthread_create(&w, NULL, w_main, NULL) != 0) _exit(6);
    stop_in_madvise = 1;
    malloc_trim(0); /* purges T's heap under T's lock: held in its madvise */
    stop_in_madvise = 0;
    pthread_join(w, NULL);
    pthread_join(t, NULL);
    _exit(atomic_load(&verdict));
}

int main(int argc, char **argv) {
    (void)argc;
    /* no purger, no trim requests from outside (hakmemd): knobs read at start */
    tu_reexec_with(argv, (const char *const[]){"HAKMEM_BACKGROUND", "0", "HAKMEM_PURGE_DELAY_MS",
                                               "60000", "HAKMEM_SHM", "0", NULL});
    tu_init("t_fork_raw_tid");
    if (!hakmem_loaded()) {
        printf("t_fork_raw_tid: hakmem only (glibc's malloc is not on trial)\n");
        return TU_SKIP;
    }
    free(malloc(40)); /* a heap, and the tid cached with the pool lock */
    malloc_trim(0);
    int runs = 3;
    for (int run = 0; run < runs; run++) {
        pid_t pid = (pid_t)syscall(SYS_fork);
        if (pid == 0) child();
        REQUIRE(pid > 0);
        int st = tu_wait_child(pid, CHILD_DEADLINE_S);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        printf("run %d: child status %#x (%s)\n", run, st,
               code == 0   ? "T waited for the forking thread's lock"
               : code == 1 ? "T took the lock over while the forking thread held it"
               : code == 2 ? "the trim never reached T's segments"
                           : "failed");
        CHECKF(code != 1, "run %d: a thread of the raw fork child took a lock its holder held",
               run);
        CHECKF(code == 0 || code == 1,
               "run %d: child status %#x (exit 2: no hold, 3: malloc, "
               "6: pthread_create, 7: T never ready; killed: hung)",
               run, st);
    }
    return tu_done();
}
