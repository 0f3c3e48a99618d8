/* t_stress_xthread — cross-thread frees under load, contents verified.
 *
 * Phase 1 (shared slots): NTHREADS threads each do ITERS operations on a
 * table of atomic slots: allocate a verified block (stress.h), swap it into a
 * random slot, and verify + free whatever was there, so most blocks are freed
 * by a thread other than the one that allocated them, all size ranges mixed.
 * Phase 2 (bulk remote free): in rounds, every thread allocates a batch of
 * blocks and the batches rotate one thread to the right (handed over behind a
 * barrier); each thread frees a whole batch it did not allocate, while its own
 * blocks are being freed remotely by its neighbour at the same time.
 * Phase 3 (realloc across threads): blocks are realloc'd by a thread other
 * than their allocator (moves between classes and backends remotely).
 * Every block is pattern-checked right before it is freed.
 * Why: remote frees are the hardest path of a thread-caching allocator
 * (lost blocks, blocks handed out twice, races on the owner's free lists).
 * Also built as tests/bin/tsan_stress_xthread (TSAN, allocator linked in).
 */
#include "stress.h"

#define NTHREADS 4
#define NSLOTS 4096

static _Atomic(struct blk *) slots[NSLOTS];
static pthread_barrier_t bar;
static struct blk *batches[NTHREADS];
static long iters, rounds, batch;

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t rng = 0x1234 + (uint64_t)id * 7919;

    /* phase 1 */
    for (long i = 0; i < iters; i++) {
        uint64_t r = tu_rand(&rng);
        size_t s = (size_t)(r % NSLOTS);
        if ((r >> 32) % 8 == 0) {
            blk_free(atomic_exchange(&slots[s], NULL));
            continue;
        }
        struct blk *nb = blk_new(&rng);
        blk_free(atomic_exchange(&slots[s], nb));
    }
    pthread_barrier_wait(&bar);

    /* phase 2 */
    for (long r = 0; r < rounds; r++) {
        struct blk *head = NULL;
        for (long k = 0; k < batch; k++) {
            size_t n = (size_t)(tu_rand(&rng) % 2048); /* small: slab-local blocks */
            if (k % 64 == 0) n = tu_stress_size(&rng);
            struct blk *b = blk_new_n(n);
            if (!b) continue;
            b->next = head;
            head = b;
        }
        batches[id] = head;
        pthread_barrier_wait(&bar);
        struct blk *mine = batches[(id + 1) % NTHREADS];
        pthread_barrier_wait(&bar);
        while (mine) {
            struct blk *nx = mine->next;
            blk_free(mine);
            mine = nx;
        }
    }
    pthread_barrier_wait(&bar);

    /* phase 3: realloc blocks other threads allocated */
    for (long i = 0; i < iters / 4; i++) {
        uint64_t r = tu_rand(&rng);
        size_t s = (size_t)(r % NSLOTS);
        struct blk *b = atomic_exchange(&slots[s], NULL);
        if (!b) {
            atomic_store(&slots[s], blk_new(&rng));
            continue;
        }
        if (b->chk != blk_sum(b)) {
            CHECKF(0, "descriptor %p corrupted", (void *)b);
            continue;
        }
        size_t bad = pat_check_sparse(b->p, b->n, 0);
        CHECKF(bad == (size_t)-1, "block %p (%zu) corrupted at %zu before realloc", b->p, b->n,
               bad);
        size_t nn = tu_stress_size(&rng);
        size_t keep = nn < b->n ? nn : b->n;
        /* remember the first up-to-64 bytes to compare after the move */
        unsigned char head[64];
        size_t hk = keep < 64 ? keep : 64;
        memcpy(head, b->p, hk);
        void *q = realloc(b->p, nn);
        CHECKF(q != NULL || nn == 0, "realloc(%zu -> %zu) = NULL", b->n, nn);
        if (!q) q = malloc(nn);
        REQUIRE(q);
        CHECKF(memcmp(q, head, hk) == 0, "realloc %zu -> %zu lost contents", b->n, nn);
        b->p = q;
        b->n = nn;
        pat_fill_sparse(q, nn, 0);
        b->chk = blk_sum(b);
        blk_free(atomic_exchange(&slots[s], b));
    }
    return NULL;
}

int main(void) {
    tu_init("t_stress_xthread");
    iters = tu_scale(300000);
    rounds = tu_scale(200);
    batch = 2000;
    printf("threads %d, iters %ld, rounds %ld x %ld\n", NTHREADS, iters, rounds, batch);
    pthread_barrier_init(&bar, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    for (int s = 0; s < NSLOTS; s++) blk_free(atomic_exchange(&slots[s], NULL));
    pthread_barrier_destroy(&bar);
    return tu_done();
}
