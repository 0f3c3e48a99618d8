/* t_stress_starter — new threads' first blocks come from the shared starter
 * heap (lib/hak_starter.c): many threads at once, their blocks freed by
 * other threads, while another thread trims.
 *
 * ROUNDS rounds of NTHREADS threads started together, each round after a
 * malloc_trim (which empties the segment cache, so every new thread starts
 * on the starter). Odd threads allocate a few blocks (they stay on the
 * starter), even ones 600 (past its 64 KiB budget, onto their own heaps).
 * Once all have allocated, each frees (verified) the even-numbered blocks
 * of the next thread and its own odd-numbered ones: starter blocks freed by
 * their thread and by others, own-heap blocks freed remotely. Meanwhile a
 * trimmer thread calls malloc_trim in a loop and allocates a little itself:
 * the starter is drained and its emptied spans given back while the others
 * refill from it.
 * Every third round (not under TSAN) the main thread forks while the
 * workers allocate, maybe while one holds the starter's lock: the child
 * starts a thread that allocates and frees through a starter (the parent's,
 * or a new one if the lock's holder was lost) and must exit cleanly within
 * 20 s.
 * Also built as tests/bin/tsan_stress_starter (TSAN, allocator linked in).
 */
#include "stress.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 8

static struct blk **lists[NTHREADS];
static int counts[NTHREADS];
static pthread_barrier_t bar;
static atomic_int stop;

static size_t pick_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    return r % 16 ? (size_t)(r >> 8) % 1024 + 1 : tu_stress_size(rng);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg, next = (id + 1) % NTHREADS;
    uint64_t rng = 0x5eed0000u + (uint64_t)id * 7919u;
    int n = id % 2 ? 8 : 600;
    struct blk **l = malloc(sizeof *l * (size_t)n);
    REQUIRE(l != NULL);
    for (int i = 0; i < n; i++) l[i] = blk_new_n(pick_size(&rng));
    lists[id] = l;
    counts[id] = n;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < counts[next]; i += 2) blk_free(lists[next][i]);
    for (int i = 1; i < n; i += 2) blk_free(l[i]);
    pthread_barrier_wait(&bar); /* nobody reads l any more */
    free(l);
    return NULL;
}

static void *trimmer(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        malloc_trim(0);
        void *p = malloc(200);
        REQUIRE(p != NULL);
        memset(p, 3, 200);
        free(p);
        sched_yield();
    }
    return NULL;
}

#ifndef __SANITIZE_THREAD__ /* TSAN: fork in a threaded process is its own test */
static void *child_worker(void *arg) {
    uint64_t rng = 77;
    struct blk *l[64];
    for (int i = 0; i < 64; i++) l[i] = blk_new_n(pick_size(&rng));
    for (int i = 0; i < 64; i++) blk_free(l[i]);
    return arg;
}

/* Forks now (workers running); the child's thread allocates and frees. */
static void fork_check(void) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20); /* a hang kills the child: the parent sees the signal */
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, child_worker, NULL) == 0);
        pthread_join(t, NULL);
        child_worker(NULL);
        _exit(tu_failures ? 1 : 0);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child: status %#x", st);
}
#endif

int main(int argc, char **argv) {
    (void)argc;
    /* every thread but the first starts on the starter, on any machine (by
     * default that waits for 4 live threads per CPU); read at start-up */
    tu_reexec_with(argv, (const char *const[]){"HAKMEM_STARTER_THREADS", "1", NULL});
    tu_init("t_stress_starter");
    long rounds = tu_scale(30);
    pthread_t trim, th[NTHREADS];
    REQUIRE(pthread_barrier_init(&bar, NULL, NTHREADS) == 0);
    REQUIRE(pthread_create(&trim, NULL, trimmer, NULL) == 0);
    for (long r = 0; r < rounds; r++) {
        malloc_trim(0);
        for (int i = 0; i < NTHREADS; i++)
            REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0);
#ifndef __SANITIZE_THREAD__
        if (r % 3 == 0) fork_check();
#endif
        for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    }
    atomic_store(&stop, 1);
    pthread_join(trim, NULL);
    pthread_barrier_destroy(&bar);
    printf("%ld rounds of %d threads\n", rounds, NTHREADS);
    return tu_done();
}
