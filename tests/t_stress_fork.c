/* t_stress_fork — fork() while other threads allocate.
 *
 * NWORKERS threads swap verified blocks through shared slots (as in
 * t_stress_xthread) non-stop while a forking thread (the main thread, and
 * for the last third of the forks a worker-spawned helper thread) calls
 * fork() NFORKS times. Each child, with an alarm as a hang guard:
 *  - verifies and frees every block left in the slots (allocated by parent
 *    threads that do not exist in the child), then allocates/frees a lot;
 *  - starts a new thread that does the same churn, joins it;
 *  - every 4th child forks a grandchild that mallocs too;
 *  - exits with exit(0) (atexit/stdio teardown included).
 * The parent requires every child to exit 0 (a deadlock on an allocator lock
 * held across fork shows as SIGALRM), and keeps going: at the end all slot
 * blocks are verified and freed.
 * Why: an allocator must take/reset its locks around fork (pthread_atfork or
 * equivalent) or the child deadlocks or corrupts its heap; thread caches of
 * threads that vanished in the child must not be trusted.
 * Also built as tests/bin/tsan_stress_fork (TSAN, allocator linked in; there
 * the child does not start a thread, which TSAN does not support).
 */
#include "stress.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 3
#define NSLOTS 1024

static _Atomic(struct blk *) slots[NSLOTS];
static atomic_int stop;
static long nforks;
static atomic_long child_fail;
/* While a child runs, the parent's workers rest: on 2 CPUs three spinning
 * workers starved the child (90 s a run, over the 180 s timeout on a busy
 * machine, glibc too). The fork itself still lands in full allocation:
 * the forker waits for the workers to make progress again first. */
static atomic_int child_running;
static atomic_long worker_rounds;

static void *worker(void *arg) {
    uint64_t rng = 31337 + (uint64_t)(long)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&child_running, memory_order_relaxed)) {
            usleep(500);
            continue;
        }
        for (int i = 0; i < 64; i++) {
            size_t s = (size_t)(tu_rand(&rng) % NSLOTS);
            blk_free(atomic_exchange(&slots[s], blk_new(&rng)));
        }
        atomic_fetch_add_explicit(&worker_rounds, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Returns once the workers have done `rounds` more rounds (or after 2 s). */
static void workers_busy(long rounds) {
    long from = atomic_load(&worker_rounds);
    for (int i = 0; i < 20000 && atomic_load(&worker_rounds) - from < rounds; i++) usleep(100);
}

static void churn(uint64_t seed, int n) {
    uint64_t rng = seed;
    struct blk *local[64] = {0};
    for (int i = 0; i < n; i++) {
        int k = (int)(tu_rand(&rng) % 64);
        blk_free(local[k]);
        local[k] = blk_new(&rng);
    }
    for (int k = 0; k < 64; k++) blk_free(local[k]);
}

static void *child_thread(void *arg) {
    churn((uint64_t)(uintptr_t)arg, 5000);
    return NULL;
}

static int wait_ok(pid_t pid, const char *what) {
    int st;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (w != pid) {
        CHECKF(0, "%s: waitpid(%d) failed: %s", what, (int)pid, strerror(errno));
        return 0;
    }
    if (WIFSIGNALED(st)) {
        CHECKF(0, "%s %d killed by signal %d%s", what, (int)pid, WTERMSIG(st),
               WTERMSIG(st) == SIGALRM ? " (hang guard: probably deadlocked)" : "");
        return 0;
    }
    CHECKF(WEXITSTATUS(st) == 0, "%s %d exited %d", what, (int)pid, WEXITSTATUS(st));
    return WEXITSTATUS(st) == 0;
}

static void child_main(long i) {
    alarm(60);
    tu_failures = 0; /* the parent's count so far is not this child's */
    /* blocks allocated by threads that do not exist here */
    for (int s = 0; s < NSLOTS; s++) blk_free(atomic_exchange(&slots[s], NULL));
    churn((uint64_t)i * 3 + 1, 20000);
#ifdef __SANITIZE_THREAD__
    /* TSAN can not start threads in the child of a multi-threaded process
     * ("dup thread with used id"): the TSAN build churns inline instead. */
    child_thread((void *)(uintptr_t)(i + 100));
#else
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)(i + 100)) != 0) {
        fprintf(stderr, "child: pthread_create failed\n");
        _exit(3);
    }
    pthread_join(t, NULL);
#endif
    if (i % 4 == 0) {
        pid_t g = fork();
        if (g == 0) {
            alarm(60); /* alarms are not inherited: its own hang guard */
            churn((uint64_t)i + 999, 5000);
            exit(tu_failures ? 1 : 0);
        }
        if (g < 0 || !wait_ok(g, "grandchild")) exit(4);
    }
    fflush(stdout);
    exit(tu_failures ? 1 : 0);
}

static void do_forks(long from, long to) {
    for (long i = from; i < to; i++) {
        /* make sure allocation is in full swing in this thread as well */
        workers_busy(3 * NWORKERS);
        churn((uint64_t)i, 200);
        atomic_store(&child_running,
                     1); /* workers finish the round they are in: still mid-round at the fork */
        pid_t pid = fork();
        if (pid == 0) child_main(i);
        CHECKF(pid > 0, "fork: %s", strerror(errno));
        if (pid > 0 && !wait_ok(pid, "child")) atomic_fetch_add(&child_fail, 1);
        atomic_store(&child_running, 0);
    }
}

static void *forker_thread(void *arg) {
    (void)arg;
    do_forks(nforks * 2 / 3, nforks);
    return NULL;
}

int main(void) {
    tu_init("t_stress_fork");
    fflush(stdout);
    nforks = tu_scale(60);
    printf("%d workers, %ld forks\n", NWORKERS, nforks);
    fflush(stdout);
    pthread_t t[NWORKERS];
    for (long i = 0; i < NWORKERS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
    do_forks(0, nforks * 2 / 3);
    pthread_t ft;
    REQUIRE(pthread_create(&ft, NULL, forker_thread, NULL) == 0);
    pthread_join(ft, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < NWORKERS; i++) pthread_join(t[i], NULL);
    for (int s = 0; s < NSLOTS; s++) blk_free(atomic_exchange(&slots[s], NULL));
    printf("children failed: %ld\n", atomic_load(&child_fail));
    return tu_done();
}
