/* t_stress_prodcons — producer/consumer hand-offs, contents verified.
 *
 * 1. Lock-free SPSC rings (C11 acquire/release only, no mutex): NPAIRS
 *    producer threads allocate verified blocks and push them through a ring to
 *    their consumer, which verifies and frees them. Every block is allocated
 *    on one thread and freed on another, in a steady stream — the pattern of
 *    a work queue / logging thread. No lock surrounds the allocator calls,
 *    so under TSAN any race inside the allocator's remote-free path shows.
 * 2. A mutex/condvar queue of batches: 2 producers build linked lists of
 *    blocks (mixed sizes) and 2 consumers free whole lists, some consumers
 *    realloc a block before freeing it.
 * Each consumer also allocates and keeps a few blocks of its own while
 * freeing remote ones, so local and remote frees interleave on its heap.
 * Why: hand-off workloads make every free remote; an allocator that only
 * handles occasional remote frees leaks or corrupts here.
 * Also built as tests/bin/tsan_stress_prodcons (TSAN, allocator linked in).
 */
#include "stress.h"

#define NPAIRS 2
#define RING 1024

struct ring {
    _Atomic(struct blk *) cell[RING];
    _Atomic unsigned long head, tail; /* head: next to write; tail: next to read */
    char pad[64];
};
static struct ring rings[NPAIRS];
static long items;

static void *producer(void *arg) {
    struct ring *r = &rings[(long)arg];
    uint64_t rng = 99 + (uint64_t)(long)arg;
    for (long i = 0; i < items; i++) {
        struct blk *b = blk_new(&rng);
        unsigned long h = atomic_load_explicit(&r->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING) sched_yield();
        atomic_store_explicit(&r->cell[h % RING], b, memory_order_relaxed);
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg) {
    struct ring *r = &rings[(long)arg];
    uint64_t rng = 555 + (uint64_t)(long)arg;
    struct blk *own[16] = {0};
    for (long i = 0; i < items; i++) {
        unsigned long t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        while (atomic_load_explicit(&r->head, memory_order_acquire) == t) sched_yield();
        struct blk *b = atomic_load_explicit(&r->cell[t % RING], memory_order_relaxed);
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
        blk_free(b);
        if (i % 5 == 0) { /* local traffic interleaved with the remote frees */
            int k = (int)(tu_rand(&rng) % 16);
            blk_free(own[k]);
            own[k] = blk_new(&rng);
        }
    }
    for (int k = 0; k < 16; k++) blk_free(own[k]);
    return NULL;
}

/* ---- batch queue ---- */
#define QCAP 16
static struct blk *queue[QCAP];
static int qn, qh, producers_left;
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qc = PTHREAD_COND_INITIALIZER;
static long nbatches;

static void *bproducer(void *arg) {
    uint64_t rng = 4242 + (uint64_t)(long)arg;
    for (long i = 0; i < nbatches; i++) {
        struct blk *head = NULL;
        int len = 1 + (int)(tu_rand(&rng) % 500);
        for (int k = 0; k < len; k++) {
            struct blk *b = blk_new(&rng);
            if (!b) continue;
            b->next = head;
            head = b;
        }
        pthread_mutex_lock(&qm);
        while (qn == QCAP) pthread_cond_wait(&qc, &qm);
        queue[(qh + qn++) % QCAP] = head;
        pthread_cond_broadcast(&qc);
        pthread_mutex_unlock(&qm);
    }
    pthread_mutex_lock(&qm);
    producers_left--;
    pthread_cond_broadcast(&qc);
    pthread_mutex_unlock(&qm);
    return NULL;
}

static void *bconsumer(void *arg) {
    uint64_t rng = 777 + (uint64_t)(long)arg;
    for (;;) {
        pthread_mutex_lock(&qm);
        while (qn == 0 && producers_left > 0) pthread_cond_wait(&qc, &qm);
        if (qn == 0) {
            pthread_mutex_unlock(&qm);
            return NULL;
        }
        struct blk *b = queue[qh];
        qh = (qh + 1) % QCAP;
        qn--;
        pthread_cond_broadcast(&qc);
        pthread_mutex_unlock(&qm);
        while (b) {
            struct blk *nx = b->next;
            if (tu_rand(&rng) % 8 == 0 && b->chk == blk_sum(b) &&
                pat_check_sparse(b->p, b->n, 0) == (size_t)-1) {
                size_t nn = tu_stress_size(&rng);
                void *q = realloc(b->p, nn);
                if (q || nn == 0) {
                    if (!q) q = malloc(0);
                    REQUIRE(q);
                    b->p = q;
                    b->n = nn;
                    pat_fill_sparse(q, nn, 0);
                    b->chk = blk_sum(b);
                } else {
                    CHECKF(0, "realloc to %zu failed", nn);
                }
            }
            blk_free(b);
            b = nx;
        }
    }
}

int main(void) {
    tu_init("t_stress_prodcons");
    items = tu_scale(400000);
    nbatches = tu_scale(600);
    printf("spsc: %d pairs x %ld blocks; batches: 2 x %ld\n", NPAIRS, items, nbatches);

    pthread_t p[NPAIRS], c[NPAIRS];
    for (long i = 0; i < NPAIRS; i++) {
        REQUIRE(pthread_create(&c[i], NULL, consumer, (void *)i) == 0);
        REQUIRE(pthread_create(&p[i], NULL, producer, (void *)i) == 0);
    }
    for (int i = 0; i < NPAIRS; i++) {
        pthread_join(p[i], NULL);
        pthread_join(c[i], NULL);
    }

    producers_left = 2;
    pthread_t bp[2], bc[2];
    for (long i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&bp[i], NULL, bproducer, (void *)i) == 0);
        REQUIRE(pthread_create(&bc[i], NULL, bconsumer, (void *)i) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(bp[i], NULL);
        pthread_join(bc[i], NULL);
    }
    return tu_done();
}
