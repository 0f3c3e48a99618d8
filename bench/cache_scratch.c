/* cache_scratch — passive false sharing, after Hoard's cache-scratch test.
 *
 *   cache_scratch THREADS ITERATIONS OBJ_SIZE REPETITIONS
 *   e.g. cache_scratch 2 1000 8 2000
 *
 * The main thread mallocs one small object per thread back to back (so they
 * likely share a cache line) and hands one to each thread. Each thread frees
 * its object, then ITERATIONS times mallocs an object of OBJ_SIZE, writes
 * every byte of it REPETITIONS times and frees it. An allocator that hands
 * the freed object (or its neighbours) to threads on other cores makes them
 * write to one cache line and the run becomes much slower.
 * Result: ops_per_sec = object write passes (all threads) / elapsed.     */
#include "bench_util.h"

#include <pthread.h>

typedef struct {
    char *first; /* allocated by the main thread */
    long iterations, repetitions;
    size_t size;
    uint64_t bad;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    free(w->first);
    for (long i = 0; i < w->iterations; i++) {
        volatile char *obj = xmalloc(w->size);
        for (long r = 0; r < w->repetitions; r++)
            for (size_t k = 0; k < w->size; k++) obj[k] = (char)(k + (size_t)r);
        for (size_t k = 0; k < w->size; k++)
            if (obj[k] != (char)(k + (size_t)w->repetitions - 1)) w->bad++;
        free((void *)obj);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) die("usage: cache_scratch THREADS ITERATIONS OBJ_SIZE REPETITIONS");
    int nthreads = (int)arg_long(argc, argv, 1, 2, 1, 256);
    long iterations = arg_long(argc, argv, 2, 1000, 1, 1L << 40);
    size_t size = (size_t)arg_long(argc, argv, 3, 8, 1, 1 << 20);
    long reps = arg_long(argc, argv, 4, 2000, 1, 1L << 40);

    worker_t *w = xmalloc(sizeof(worker_t) * (size_t)nthreads);
    for (int t = 0; t < nthreads; t++)
        w[t] = (worker_t){
            .first = xmalloc(size), .iterations = iterations, .repetitions = reps, .size = size};
    double elapsed = run_threads(nthreads, worker, w, sizeof(worker_t));
    uint64_t bad = 0;
    for (int t = 0; t < nthreads; t++) bad += w[t].bad;
    free(w);
    double passes = (double)nthreads * (double)iterations * (double)reps;
    printf("RESULT name=cache_scratch threads=%d iterations=%ld size=%zu repetitions=%ld "
           "bad_tags=%llu elapsed=%.4f ops_per_sec=%.0f\n",
           nthreads, iterations, size, reps, (unsigned long long)bad, elapsed, passes / elapsed);
    return bad ? 1 : 0;
}
