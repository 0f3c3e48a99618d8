/* t_fork_raw_drain — a raw fork (the fork system call: no atfork handler
 * runs) while the background purger is half-way through draining the
 * forking thread's own heap (hak_heaps_drain_idle: remote frees drained,
 * empty spans given back, pages purged, all under that heap's lock). In the
 * child the purger is lost and the heap's span lists may be half-updated:
 * the thread must leave that heap (retired) and go on with a new one, never
 * take the heap's lock over (lib/hak_fork.c).
 *
 * This program defines hakmem_test_drain_hook (exported: -rdynamic,
 * tests.mk), which the purger calls half-way through each drain, with the
 * heap's span lists torn (their heads point at no span: following one
 * faults), and restores them after. For the main thread's heap the hook
 * holds the purger until released; the main thread raw-forks meanwhile. The
 * child's first call is a realloc that frees its old block into its span
 * (realloc's own free path, not a slow path's), then it frees the blocks it
 * held (of the old heap), allocates and frees blocks of every kind, starts a
 * thread that does the same, and exits 0. A child that takes the old heap
 * over faults (SIGSEGV); one that waits for its lock hangs (killed).
 * Setup: a second thread frees blocks of the main thread's (remote frees:
 * the drain's work) and keeps a second heap alive (the purger starts in
 * processes of two threads); the main thread then idles (no slow path: its
 * heap is idle) until the hook holds the purger in its heap.
 * Runs with a purge delay of 100 ms and no segment (re-executes itself).
 * hakmem only (skips without it). */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_DEADLINE_S 20
#define SETUP_DEADLINE_S 20
#define NSMALL 2048
#define NBIG 48
#define BIG 40960 /* a big class */

static pid_t main_tid;
static atomic_int hooked, release_hook, handed, h_stop;
static atomic_long drains;
static char *small[NSMALL], *big[NBIG], *held24;

/* Called by the purger (no heap of its own, never allocates) mid-drain. */
void hakmem_test_drain_hook(pid_t owner);
void hakmem_test_drain_hook(pid_t owner) {
    atomic_fetch_add(&drains, 1);
    if (owner != main_tid || atomic_load(&release_hook)) return;
    atomic_store(&hooked, 1);
    struct timespec ts = {0, 1000000};
    while (!atomic_load(&release_hook)) nanosleep(&ts, NULL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int purger_running(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[96], name[32] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        found = fgets(name, sizeof name, f) && !strncmp(name, "hakmem-purge", 12);
        fclose(f);
    }
    closedir(d);
    return found;
}

/* H: frees half of the main thread's blocks (remote frees into its heap),
 * then lives on without a slow path until told to stop. */
static void *h_main(void *arg) {
    (void)arg;
    free(malloc(100)); /* a heap of its own: two live threads */
    while (!atomic_load(&handed)) nap_ms(1);
    for (int i = 0; i < NSMALL; i += 2) free(small[i]), small[i] = NULL;
    for (int i = 0; i < NBIG; i += 2) free(big[i]), big[i] = NULL;
    atomic_store(&handed, 2);
    while (!atomic_load(&h_stop)) nap_ms(1);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    static const size_t sizes[] = {24, 64, 700, 5000, BIG, 300000, 3u << 20};
    for (int r = 0; r < 50; r++)
        for (int i = 0; i < 7; i++) {
            char *p = malloc(sizes[i]);
            if (!p) return (void *)1;
            memset(p, r, sizes[i] < 4096 ? sizes[i] : 4096);
            free(p);
        }
    return NULL;
}

static void child(void) {
    alarm(CHILD_DEADLINE_S); /* its own guard: alarms are not inherited */
    /* first: realloc frees the old block into its span itself (when it is
     * the thread's heap's); the target comes from the thread cache */
    char *q = realloc(held24, 48);
    if (!q || q[0] != 0x24) _exit(4);
    free(q);
    for (int i = 0; i < NSMALL; i++)
        if (small[i]) {
            if (small[i][0] != (char)i) _exit(5);
            free(small[i]);
        }
    for (int i = 0; i < NBIG; i++)
        if (big[i]) {
            if (big[i][BIG - 1] != (char)i) _exit(5);
            free(big[i]);
        }
    if (child_thread(NULL)) _exit(3);
    pthread_t t;
    void *rc = NULL;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0) _exit(6);
    pthread_join(t, &rc);
    if (child_thread(NULL) || rc) _exit(3);
    _exit(0);
}

int main(int argc, char **argv) {
    (void)argc;
    tu_reexec_with(argv, (const char *const[]){"HAKMEM_PURGE_DELAY_MS", "100", "HAKMEM_SHM", "0",
                                               "HAKMEM_BACKGROUND", "1", NULL});
    tu_init("t_fork_raw_drain");
    if (!hakmem_loaded()) {
        printf("t_fork_raw_drain: hakmem only (glibc's malloc is not on trial)\n");
        return TU_SKIP;
    }
    main_tid = (pid_t)syscall(SYS_gettid);
    pthread_t h;
    REQUIRE(pthread_create(&h, NULL, h_main, NULL) == 0);
    for (int i = 0; i < NSMALL; i++) {
        REQUIRE((small[i] = malloc(64)) != NULL);
        small[i][0] = (char)i;
    }
    for (int i = 0; i < NBIG; i++) {
        REQUIRE((big[i] = malloc(BIG)) != NULL);
        memset(big[i], i, BIG);
    }
    REQUIRE((held24 = malloc(24)) != NULL);
    memset(held24, 0x24, 24);
    /* the purger starts on a slow path once memory went back (a span
     * emptied, a large block freed) in a process of two heaps */
    double t0 = now_s();
    while (!purger_running() && now_s() - t0 < SETUP_DEADLINE_S)
        for (int i = 0; i < 64; i++) {
            free(malloc(1u << 20));
            char *b[64];
            for (int k = 0; k < 64; k++) b[k] = malloc(BIG);
            for (int k = 0; k < 64; k++) free(b[k]);
        }
    REQUIRE(purger_running());
    atomic_store(&handed, 1);
    while (atomic_load(&handed) != 2) nap_ms(1);
    for (int i = 0; i < 32; i++) free(malloc(48)); /* 48-byte blocks cached: realloc's target */
    /* idle now: no slow path until the hook holds the purger in this heap */
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < SETUP_DEADLINE_S * 1000 && !atomic_load(&hooked); i++) nanosleep(&ts, NULL);
    int was_hooked = atomic_load(&hooked);
    pid_t pid = was_hooked ? (pid_t)syscall(SYS_fork) : -1;
    if (pid == 0) child();
    int st = pid > 0 ? tu_wait_child(pid, CHILD_DEADLINE_S + 5) : -1;
    atomic_store(&release_hook, 1);
    atomic_store(&h_stop, 1);
    pthread_join(h, NULL);
    CHECKF(was_hooked, "the purger never drained the main thread's heap (%ld drains seen)",
           atomic_load(&drains));
    REQUIRE(was_hooked);
    REQUIRE(pid > 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    printf("child status %#x: %s\n", st,
           code == 0                                    ? "exited 0 (a new heap)"
           : st == -1                                   ? "hung (killed at its deadline)"
           : WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? "SIGSEGV (took the torn heap over)"
                                                        : "failed");
    CHECKF(code == 0,
           "raw fork child status %#x (exit 3: malloc, 4: realloc, 5: a held block changed, "
           "6: pthread_create; SIGSEGV: took the half-drained heap over; -1: hung)",
           st);
    /* the parent's heap is whole again once the purger finished the drain */
    for (int i = 0; i < NSMALL; i++) free(small[i]);
    for (int i = 0; i < NBIG; i++) free(big[i]);
    child_thread(NULL);
    return tu_done();
}
