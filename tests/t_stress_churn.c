/* t_stress_churn — thread churn: threads exit holding blocks others free.
 *
 * ROUNDS rounds; each round starts NTHREADS short-lived threads. Each one:
 *  - frees (verifying) the blocks that threads of the previous round left in
 *    the shared pool — their allocating threads are gone, so these frees land
 *    in the heaps/slabs of dead threads (adoption / orphan path);
 *  - allocates a mix of blocks, frees some right away (so its thread cache
 *    is non-empty when it exits), leaves some in the pool for the next round
 *    and some in a "kept" list that the main thread frees after the join
 *    (the allocating thread is gone by then);
 *  - registers a pthread_key destructor that mallocs, reallocs and frees
 *    while the thread is being torn down (after the allocator's own TLS
 *    teardown may already have run), and a few rounds use detached-style
 *    exits through pthread_exit from a nested function.
 * Finally the main thread frees the pool and every kept block, all verified.
 * Why: per-thread heaps must survive their thread: blocks freed after the
 * owner exited, allocations from TLS destructors, and thousands of thread
 * creations must neither leak heaps nor crash.
 * Also built as tests/bin/tsan_stress_churn (TSAN, allocator linked in).
 */
#include "stress.h"

#define NTHREADS 4

static pthread_mutex_t pool_m = PTHREAD_MUTEX_INITIALIZER;
static struct blk *pool; /* left by the previous round */
static struct blk *kept; /* freed by main at the end */
static pthread_key_t key;
static long rounds, per_thread;
static _Atomic long dtor_runs;

static void dtor(void *v) {
    struct blk *b = v;
    /* allocate and free during thread teardown */
    void *x = malloc(100);
    REQUIRE(x);
    memset(x, 1, 100);
    x = realloc(x, 5000);
    REQUIRE(x);
    memset(x, 2, 5000);
    void *y = calloc(10, 100);
    REQUIRE(y);
    free(x);
    free(y);
    blk_free(b);
    atomic_fetch_add(&dtor_runs, 1);
}

static void leave_early(void) {
    pthread_exit(NULL);
}

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t rng = (uint64_t)id * 2654435761u + 17;

    /* free what the previous generation left */
    pthread_mutex_lock(&pool_m);
    struct blk *mine = NULL;
    for (int k = 0; k < per_thread && pool; k++) {
        struct blk *b = pool;
        pool = b->next;
        b->next = mine;
        mine = b;
    }
    pthread_mutex_unlock(&pool_m);
    while (mine) {
        struct blk *nx = mine->next;
        blk_free(mine);
        mine = nx;
    }

    struct blk *local = NULL, *to_pool = NULL, *to_keep = NULL;
    for (long k = 0; k < per_thread; k++) {
        struct blk *b = (k % 3 == 0) ? blk_new(&rng) : blk_new_n(tu_rand(&rng) % 700);
        if (!b) continue;
        switch (tu_rand(&rng) % 4) {
        case 0:
            b->next = to_pool;
            to_pool = b;
            break;
        case 1:
            b->next = to_keep;
            to_keep = b;
            break;
        default:
            b->next = local;
            local = b;
            break;
        }
    }
    /* free half of the local ones now, the rest too: the cache is warm */
    while (local) {
        struct blk *nx = local->next;
        blk_free(local);
        local = nx;
    }
    pthread_setspecific(key, blk_new(&rng));

    pthread_mutex_lock(&pool_m);
    while (to_pool) {
        struct blk *nx = to_pool->next;
        to_pool->next = pool;
        pool = to_pool;
        to_pool = nx;
    }
    while (to_keep) {
        struct blk *nx = to_keep->next;
        to_keep->next = kept;
        kept = to_keep;
        to_keep = nx;
    }
    pthread_mutex_unlock(&pool_m);

    /* keep a few blocks allocated in the thread cache while exiting */
    for (int k = 0; k < 8; k++) {
        void *p = malloc((size_t)(16 * (k + 1)));
        REQUIRE(p);
        free(p);
    }
    if (id % 5 == 0) leave_early();
    return NULL;
}

int main(void) {
    tu_init("t_stress_churn");
    rounds = tu_scale(600);
    per_thread = 400;
    printf("rounds %ld x %d threads x %ld blocks\n", rounds, NTHREADS, per_thread);
    REQUIRE(pthread_key_create(&key, dtor) == 0);
    long id = 0;
    for (long r = 0; r < rounds; r++) {
        pthread_t t[NTHREADS];
        for (int i = 0; i < NTHREADS; i++)
            REQUIRE(pthread_create(&t[i], NULL, worker, (void *)id++) == 0);
        for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
        /* blocks of threads that just exited, freed by main */
        pthread_mutex_lock(&pool_m);
        struct blk *k = kept;
        kept = NULL;
        pthread_mutex_unlock(&pool_m);
        while (k) {
            struct blk *nx = k->next;
            blk_free(k);
            k = nx;
        }
        /* the main thread takes part too now and then */
        if (r % 10 == 0) {
            pthread_mutex_lock(&pool_m);
            struct blk *b = pool;
            pool = b ? b->next : NULL;
            pthread_mutex_unlock(&pool_m);
            blk_free(b);
        }
    }
    long n = 0;
    while (pool) {
        struct blk *nx = pool->next;
        blk_free(pool);
        pool = nx;
        n++;
    }
    while (kept) {
        struct blk *nx = kept->next;
        blk_free(kept);
        kept = nx;
        n++;
    }
    printf("freed %ld leftover blocks in main; %ld TLS destructors ran\n", n,
           atomic_load(&dtor_runs));
    CHECK(atomic_load(&dtor_runs) == rounds * NTHREADS);
    return tu_done();
}
