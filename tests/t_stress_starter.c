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
 * Also built as tests/bin/tsan_stress_starter (TSAN, allocator linked in).
 */
#include "stress.h"

#include <sched.h>

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

int main(void) {
    tu_init("t_stress_starter");
    long rounds = tu_scale(30);
    pthread_t trim, th[NTHREADS];
    REQUIRE(pthread_barrier_init(&bar, NULL, NTHREADS) == 0);
    REQUIRE(pthread_create(&trim, NULL, trimmer, NULL) == 0);
    for (long r = 0; r < rounds; r++) {
        malloc_trim(0);
        for (int i = 0; i < NTHREADS; i++)
            REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0);
        for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    }
    atomic_store(&stop, 1);
    pthread_join(trim, NULL);
    pthread_barrier_destroy(&bar);
    printf("%ld rounds of %d threads\n", rounds, NTHREADS);
    return tu_done();
}
