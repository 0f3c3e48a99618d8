/* xthread — producer/consumer: every block is freed by another thread.
 *
 *   xthread PAIRS BLOCKS RING MIN_SIZE MAX_SIZE SEED
 *   e.g. xthread 1 3000000 1024 16 256 1
 *
 * Each pair is a producer thread that mallocs BLOCKS blocks of random size,
 * writes them and pushes them through a single-producer/single-consumer
 * ring of RING entries, and a consumer thread that checks and frees them.
 * This is the message-passing / work-queue pattern that stresses remote
 * (cross-thread) free paths. Waiting spins briefly, then yields.
 * (RING must be a power of two and larger than the publishing batch, 32.)
 * Result: ops_per_sec = blocks passed (malloc here, free there) / elapsed;
 * cpu_ops_per_sec = blocks / process CPU time, which does not depend on
 * whether the two threads happened to run at the same time (on a shared
 * 2-CPU machine they often do not, and the wall-clock rate is bimodal). */
#include "bench_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>

typedef struct {
    void *p;
    size_t size;
} msg_t;

typedef struct {
    _Alignas(64) atomic_size_t head; /* written by the producer */
    _Alignas(64) atomic_size_t tail; /* written by the consumer */
    _Alignas(64) msg_t *ring;
    size_t mask;
    uint64_t blocks, bad;
    size_t lo, hi;
    rng_t rng;
} pair_t;

/* User+system CPU time of the whole process. */
static double cpu_sec(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void backoff(unsigned *spins) {
    if (++*spins < 64)
        __builtin_ia32_pause();
    else
        sched_yield();
}

/* Indices are published every BATCH entries (and whenever a side has to wait),
 * so the two threads do not trade the head/tail cache lines for every block. */
enum { BATCH = 32 };

static void *producer(void *arg) {
    pair_t *q = arg;
    size_t head = 0, published = 0, tail_seen = 0;
    for (uint64_t i = 0; i < q->blocks; i++, head++) {
        size_t sz = rng_range(&q->rng, q->lo, q->hi);
        void *p = xmalloc(sz);
        tag_block(p, (size_t)i, sz);
        unsigned spins = 0;
        while (head - tail_seen > q->mask) {
            atomic_store_explicit(&q->head, published = head, memory_order_release);
            tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head - tail_seen > q->mask) backoff(&spins);
        }
        q->ring[head & q->mask] = (msg_t){p, sz};
        if (head + 1 - published >= BATCH)
            atomic_store_explicit(&q->head, published = head + 1, memory_order_release);
    }
    atomic_store_explicit(&q->head, head, memory_order_release);
    return NULL;
}

static void *consumer(void *arg) {
    pair_t *q = arg;
    size_t tail = 0, published = 0, head_seen = 0;
    for (uint64_t i = 0; i < q->blocks; i++, tail++) {
        unsigned spins = 0;
        while (tail == head_seen) {
            atomic_store_explicit(&q->tail, published = tail, memory_order_release);
            head_seen = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail == head_seen) backoff(&spins);
        }
        msg_t m = q->ring[tail & q->mask];
        if (tail + 1 - published >= BATCH)
            atomic_store_explicit(&q->tail, published = tail + 1, memory_order_release);
        if (!tag_ok(m.p, (size_t)i, m.size)) q->bad++;
        free(m.p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 7) die("usage: xthread PAIRS BLOCKS RING MIN_SIZE MAX_SIZE SEED");
    int npairs = (int)arg_long(argc, argv, 1, 1, 1, 64);
    uint64_t blocks = (uint64_t)arg_long(argc, argv, 2, 1000000, 1, 1L << 40);
    size_t ring = (size_t)arg_long(argc, argv, 3, 1024, 2, 1 << 24);
    size_t lo = (size_t)arg_long(argc, argv, 4, 16, 1, 1 << 24);
    size_t hi = (size_t)arg_long(argc, argv, 5, 256, (long)lo, 1 << 24);
    long seed = arg_long(argc, argv, 6, 1, 0, 1L << 62);
    if ((ring & (ring - 1)) || ring <= BATCH) die("RING must be a power of two > 32");

    pair_t *pairs = aligned_alloc(64, sizeof(pair_t) * (size_t)npairs);
    pthread_t *th = xmalloc(sizeof(pthread_t) * 2 * (size_t)npairs);
    if (!pairs) die("aligned_alloc");
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    for (int i = 0; i < npairs; i++) {
        pair_t *q = &pairs[i];
        memset(q, 0, sizeof *q);
        q->ring = xmalloc(sizeof(msg_t) * ring);
        q->mask = ring - 1;
        q->blocks = blocks;
        q->lo = lo;
        q->hi = hi;
        rng_seed(&q->rng, rng_next(&master));
    }
    double t0 = now_sec(), c0 = cpu_sec();
    for (int i = 0; i < npairs; i++) {
        if (pthread_create(&th[2 * i], NULL, consumer, &pairs[i]) ||
            pthread_create(&th[2 * i + 1], NULL, producer, &pairs[i]))
            die("pthread_create");
    }
    for (int i = 0; i < 2 * npairs; i++) pthread_join(th[i], NULL);
    double elapsed = now_sec() - t0, cpu = cpu_sec() - c0;

    uint64_t bad = 0;
    for (int i = 0; i < npairs; i++) {
        bad += pairs[i].bad;
        free(pairs[i].ring);
    }
    free(pairs);
    free(th);
    uint64_t total = blocks * (uint64_t)npairs;
    printf("RESULT name=xthread pairs=%d min=%zu max=%zu ring=%zu seed=%ld blocks=%llu "
           "bad_tags=%llu elapsed=%.4f cpu=%.4f cpu_ops_per_sec=%.0f ops_per_sec=%.0f\n",
           npairs, lo, hi, ring, seed, (unsigned long long)total, (unsigned long long)bad, elapsed,
           cpu, (double)total / cpu, (double)total / elapsed);
    return bad ? 1 : 0;
}
