/* mid_large_mt — multi-threaded random alloc/free of mid and large blocks.
 *
 *   mid_large_mt THREADS CYCLES WORKING_SET MIN_SIZE MAX_SIZE SEED
 *   e.g. mid_large_mt 2 200000 256 8192 32768 1        (8-32 KiB)
 *        mid_large_mt 2 20000 64 65536 1048576 1       (64 KiB-1 MiB)
 *
 * Each thread owns WORKING_SET slots; each cycle picks a random slot and
 * frees its block or mallocs a new one of random size, writing the block's
 * first 64 bytes and its last byte (buffers that are used, not just
 * reserved). Sizes around and above the usual mmap threshold exercise
 * page-level reuse, mmap/munmap traffic and the arena locks.
 * Result: ops_per_sec = cycles of all threads / elapsed; cpu_ops_per_sec =
 * cycles / the workers' own CPU time in their loops (CLOCK_THREAD_CPUTIME_ID:
 * no start-up, exit or other process's time).                             */
#include "bench_util.h"

#include <pthread.h>

typedef struct {
    uint64_t cycles, bad;
    double cpu; /* the loop's thread CPU time */
    size_t nws, lo, hi;
    rng_t rng;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    void **ptr = calloc(w->nws, sizeof(void *));
    size_t *size = calloc(w->nws, sizeof(size_t));
    if (!ptr || !size) die("calloc");
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    for (uint64_t i = 0; i < w->cycles; i++) {
        size_t k = (size_t)(rng_next(&w->rng) % w->nws);
        if (ptr[k]) {
            if (!tag_ok(ptr[k], k, size[k])) w->bad++;
            free(ptr[k]);
            ptr[k] = NULL;
        } else {
            size[k] = rng_range(&w->rng, w->lo, w->hi);
            ptr[k] = xmalloc(size[k]);
            memset(ptr[k], 0x5a, size[k] < 64 ? size[k] : 64);
            tag_block(ptr[k], k, size[k]);
        }
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    w->cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
    for (size_t k = 0; k < w->nws; k++) {
        if (ptr[k] && !tag_ok(ptr[k], k, size[k])) w->bad++;
        free(ptr[k]);
    }
    free(ptr);
    free(size);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 7) die("usage: mid_large_mt THREADS CYCLES WORKING_SET MIN_SIZE MAX_SIZE SEED");
    int nthreads = (int)arg_long(argc, argv, 1, 2, 1, 256);
    uint64_t cycles = (uint64_t)arg_long(argc, argv, 2, 100000, 1, 1L << 40);
    size_t nws = (size_t)arg_long(argc, argv, 3, 256, 1, 1 << 24);
    size_t lo = (size_t)arg_long(argc, argv, 4, 8192, 1, 1L << 32);
    size_t hi = (size_t)arg_long(argc, argv, 5, 32768, (long)lo, 1L << 32);
    long seed = arg_long(argc, argv, 6, 1, 0, 1L << 62);

    worker_t *w = calloc((size_t)nthreads, sizeof(worker_t));
    if (!w) die("calloc");
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    for (int t = 0; t < nthreads; t++) {
        w[t] = (worker_t){.cycles = cycles, .nws = nws, .lo = lo, .hi = hi};
        rng_seed(&w[t].rng, rng_next(&master));
    }
    double elapsed = run_threads(nthreads, worker, w, sizeof(worker_t));
    uint64_t bad = 0;
    double cpu = 0;
    for (int t = 0; t < nthreads; t++) bad += w[t].bad, cpu += w[t].cpu;
    free(w);
    printf("RESULT name=mid_large_mt threads=%d min=%zu max=%zu ws=%zu seed=%ld cycles=%llu "
           "bad_tags=%llu elapsed=%.4f ops_per_sec=%.0f cpu_ops_per_sec=%.0f\n",
           nthreads, lo, hi, nws, seed, (unsigned long long)(cycles * (uint64_t)nthreads),
           (unsigned long long)bad, elapsed, (double)(cycles * (uint64_t)nthreads) / elapsed,
           (double)(cycles * (uint64_t)nthreads) / cpu);
    return bad ? 1 : 0;
}
