/* xbatch — cross-thread frees in big batches, the shape of Lever and
 * Boreham's multithreaded malloc test (xmalloc-test in mimalloc-bench).
 *
 *   xbatch PAIRS SECONDS SIZE SEED      (SIZE 0: mixed 8 B .. 2 KiB)
 *   e.g. xbatch 2 2 0 1
 *
 * PAIRS producer threads each malloc batches of 4096 blocks (writing up to
 * 128 bytes of each) and queue them; PAIRS consumer threads take batches
 * off the queue and free every block. The queue holds at most 100 batches
 * (a producer waits for room), so about 400,000 blocks are live: whole
 * spans are emptied by frees of another thread and refilled by their owner,
 * over and over. Stresses the remote-free path and how the allocator
 * handles memory that other threads give back (purge or keep).
 * Result: blocks freed per second, and per CPU-second of the process. */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>

enum { PER_BATCH = 4096, QUEUE_MAX = 100 };

struct batch {
    struct batch *next;
    void *blocks[PER_BATCH];
};

static const size_t mixed[] = {8,   12,  16,  24,  32,  48,   64,   96,  128,
                               192, 256, 384, 512, 768, 1024, 1536, 2048};
static struct batch *queue;
static int queued;
static atomic_int done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static size_t fixed_size;
static uint64_t seed;
static atomic_ullong freed;

static void *producer(void *arg) {
    rng_t rng;
    rng_seed(&rng, seed + (uintptr_t)arg);
    while (!atomic_load(&done)) {
        struct batch *b = xmalloc(sizeof *b);
        for (int i = 0; i < PER_BATCH; i++) {
            size_t sz =
                fixed_size ? fixed_size : mixed[rng_next(&rng) % (sizeof mixed / sizeof *mixed)];
            b->blocks[i] = xmalloc(sz);
            memset(b->blocks[i], i & 255, sz > 128 ? 128 : sz);
        }
        pthread_mutex_lock(&lock);
        while (queued >= QUEUE_MAX && !atomic_load(&done)) pthread_cond_wait(&not_full, &lock);
        b->next = queue;
        queue = b;
        queued++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!queue && !atomic_load(&done)) pthread_cond_wait(&not_empty, &lock);
        struct batch *b = queue;
        if (b) {
            queue = b->next;
            queued--;
            pthread_cond_signal(&not_full);
        }
        pthread_mutex_unlock(&lock);
        if (!b) return NULL;
        for (int i = 0; i < PER_BATCH; i++) free(b->blocks[i]);
        free(b);
        atomic_fetch_add(&freed, PER_BATCH);
    }
}

int main(int argc, char **argv) {
    if (argc < 5) die("usage: xbatch PAIRS SECONDS SIZE SEED");
    int pairs = (int)arg_long(argc, argv, 1, 2, 1, 64);
    long seconds = arg_long(argc, argv, 2, 2, 1, 3600);
    fixed_size = (size_t)arg_long(argc, argv, 3, 0, 0, 1 << 20);
    seed = (uint64_t)arg_long(argc, argv, 4, 1, 0, 1L << 62);
    pthread_t *th = xmalloc(sizeof(pthread_t) * 2 * (size_t)pairs);
    double t0 = now_sec(), c0 = bench_cpu_sec();
    for (int i = 0; i < pairs; i++)
        if (pthread_create(&th[2 * i], NULL, consumer, NULL) ||
            pthread_create(&th[2 * i + 1], NULL, producer, (void *)(uintptr_t)i))
            die("pthread_create");
    while (now_sec() - t0 < (double)seconds) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&lock);
    atomic_store(&done, 1);
    pthread_cond_broadcast(&not_empty);
    pthread_cond_broadcast(&not_full);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 2 * pairs; i++) pthread_join(th[i], NULL);
    double elapsed = now_sec() - t0, cpu = bench_cpu_sec() - c0;
    uint64_t n = atomic_load(&freed);
    while (queue) { /* what was still queued (not counted) */
        struct batch *b = queue;
        queue = b->next;
        for (int i = 0; i < PER_BATCH; i++) free(b->blocks[i]);
        free(b);
    }
    free(th);
    printf("RESULT name=xbatch pairs=%d seconds=%ld size=%zu seed=%llu blocks=%llu elapsed=%.4f "
           "cpu=%.4f cpu_ops_per_sec=%.0f ops_per_sec=%.0f\n",
           pairs, seconds, fixed_size, (unsigned long long)seed, (unsigned long long)n, elapsed,
           cpu, (double)n / cpu, (double)n / elapsed);
    return 0;
}
