/* t_fork_handlers — fork handlers of the application, and forks that run
 * no handler at all, while other threads allocate.
 *
 * Churn threads swap verified blocks of every size non-stop. Meanwhile:
 *  - forker threads fork() with the application's pthread_atfork handlers
 *    registered: prepare allocates three verified blocks (small, mid,
 *    large), parent verifies and frees them, child verifies and frees them
 *    too, then allocates. The child then starts two threads that allocate
 *    (the child keeps allocating from new threads), joins them, exits 0.
 *  - a raw forker calls the fork system call directly (syscall(SYS_fork)):
 *    no atfork handler runs, neither ours nor glibc's, so in the child
 *    allocator locks may still be held by threads that do not exist there.
 *    That is what an application child handler registered before hakmem's
 *    meets when it allocates; hak_lock must find the lost holder and free
 *    the lock (hak_fork_reset_orphans) instead of waiting for ever. The
 *    child mallocs and frees small, mid and large blocks, then _exit(0)s.
 *    (hakmem only: glibc's malloc hangs in such a child.)
 * Every child must exit 0; hangs are caught by tests/fork_watch.h.
 * Usage: t_fork_handlers [seconds]   (default 2)
 */
#include "fork_watch.h"
#include "stress.h"
#include "fork_churn.h"

#include <sys/syscall.h>

#define NCHURN 3
#define NFORKERS 2

static int R_FORK, R_RAW = -1;
static __thread struct blk *held[3]; /* allocated by prepare, in the forking thread */
static atomic_long prepares, parents, children;

/* Large blocks back to back: the large-block lock is held much of the time,
 * so raw fork children often find it held by a thread they do not have. */
static void *large_churn_thread(void *arg) {
    uint64_t rng = 77 + (uint64_t)(uintptr_t)arg;
    while (fw_running()) {
        for (int i = 0; i < 64; i++) {
            size_t n = (2u << 20) + tu_rand(&rng) % 65536;
            char *p = malloc(n);
            CHECK(p != NULL);
            if (p) p[n - 1] = 1;
            free(p);
        }
        fw_tick(fc_role);
    }
    return NULL;
}

static void on_prepare(void) {
    static const size_t sizes[3] = {40, 70000, 2u << 20};
    for (int i = 0; i < 3; i++) held[i] = blk_new_n(sizes[i]);
    atomic_fetch_add(&prepares, 1);
}

static void release_held(void) {
    for (int i = 0; i < 3; i++) {
        blk_free(held[i]);
        held[i] = NULL;
    }
}

static void on_parent(void) {
    release_held();
    atomic_fetch_add(&parents, 1);
}

static void on_child(void) {
    release_held();
    uint64_t rng = 17;
    for (int i = 0; i < 50; i++) blk_free(blk_new(&rng));
    atomic_fetch_add(&children, 1);
}

static void *child_thread(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 300; i++) blk_free(blk_new(&rng));
    return NULL;
}

static void child_main(void) {
    alarm(20);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)(i + 1)) != 0) _exit(3);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    /* the prepare/child handlers ran in this (forking) thread */
    _exit(tu_failures || atomic_load(&children) != 1 ? 1 : 0);
}

static void *forker(void *arg) {
    (void)arg;
    while (fw_running()) {
        pid_t p = fork();
        if (p == 0) child_main();
        fw_check_child(p, p > 0 ? fw_wait(p) : -1, "fork");
        fw_tick(R_FORK);
    }
    return NULL;
}

static void raw_child(void) {
    static const size_t sizes[] = {24, 5000, 300000, 3u << 20};
    fw_child_alloc_exit(sizes, 4, 8, 0x3c);
}

static void *raw_forker(void *arg) {
    (void)arg;
    while (fw_running()) {
        pid_t p = (pid_t)syscall(SYS_fork);
        if (p == 0) raw_child();
        fw_check_child(p, p > 0 ? fw_wait(p) : -1, "raw fork");
        fw_tick(R_RAW);
    }
    return NULL;
}

static int work(double seconds) {
    REQUIRE(pthread_atfork(on_prepare, on_parent, on_child) == 0);
    pthread_t t[NCHURN + 2 + NFORKERS + 1];
    int n = 0;
    for (int i = 0; i < NCHURN; i++)
        REQUIRE(pthread_create(&t[n++], NULL, fc_churn_thread, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&t[n++], NULL, large_churn_thread, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < NFORKERS; i++) REQUIRE(pthread_create(&t[n++], NULL, forker, NULL) == 0);
    /* hakmem's guarantee only: glibc's malloc hangs in such a child */
    if (hakmem_loaded()) REQUIRE(pthread_create(&t[n++], NULL, raw_forker, NULL) == 0);
    fw_run_for(seconds);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    fc_drain();
    printf("forks %lu (prepare %ld, parent %ld), raw forks %lu, churn rounds %lu, failures %ld\n",
           fw_ticks(R_FORK), atomic_load(&prepares), atomic_load(&parents),
           R_RAW >= 0 ? fw_ticks(R_RAW) : 0, fw_ticks(fc_role), atomic_load(&fw_failures));
    CHECK(atomic_load(&prepares) == atomic_load(&parents));
    CHECK(atomic_load(&prepares) >= (long)fw_ticks(R_FORK));
    return atomic_load(&fw_failures) || tu_failures ? 1 : 0;
}

int main(int argc, char **argv) {
    tu_init("t_fork_handlers");
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    R_FORK = fw_role("forks");
    if (hakmem_loaded()) R_RAW = fw_role("rawforks");
    fc_role = fw_role("churn");
    if (fw_run(work, seconds)) tu_fail(__FILE__, __LINE__, "worker passed", NULL);
    return tu_done();
}
