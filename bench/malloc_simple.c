/* malloc_simple — single-threaded small-object churn in the shape of glibc's
 * own benchmark (benchtests/bench-malloc-simple.c): malloc N blocks of one
 * size, free them in the order they were allocated (FIFO, unlike tiny_hot's
 * LIFO), repeat; N = 25, 100, 400 and 1600, for each size.
 *
 *   malloc_simple PAIRS MIN_SIZE MAX_SIZE
 *   e.g. malloc_simple 2000000 16 256        (sizes 16, 32, 64, 128, 256)
 *
 * The sizes are MIN_SIZE, 2*MIN_SIZE, ... up to MAX_SIZE. Each (size, N)
 * pass does PAIRS / N rounds, as glibc's does (NUM_ITERS / allocs). With
 * N = 1600 a round holds more blocks than a thread cache usually keeps, so
 * the refill and flush paths are part of the measure, not only the cache.
 * Result: ops_per_sec = malloc+free pairs / elapsed.                      */
#include "bench_util.h"

static const size_t counts[] = {25, 100, 400, 1600};
#define NCOUNTS (sizeof counts / sizeof counts[0])
#define MAX_COUNT 1600

/* Kept out of line so bench/callgrind.sh can count just this function.
 * Returns the malloc+free pairs done; *bad counts failed tag checks. */
__attribute__((noinline, noclone)) static uint64_t bench_loop(void **arr, uint64_t pairs, size_t lo,
                                                              size_t hi, uint64_t *bad) {
    uint64_t done = 0;
    for (size_t size = lo; size <= hi; size *= 2) {
        for (size_t c = 0; c < NCOUNTS; c++) {
            size_t n = counts[c];
            uint64_t rounds = pairs / n;
            for (uint64_t r = 0; r < rounds; r++) {
                for (size_t i = 0; i < n; i++) {
                    arr[i] = xmalloc(size);
                    *(volatile uint32_t *)arr[i] = (uint32_t)i;
                }
                for (size_t i = 0; i < n; i++) {
                    if (*(volatile uint32_t *)arr[i] != (uint32_t)i) (*bad)++;
                    free(arr[i]);
                }
            }
            done += rounds * n;
        }
    }
    return done;
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: malloc_simple PAIRS MIN_SIZE MAX_SIZE");
    uint64_t pairs = (uint64_t)arg_long(argc, argv, 1, 2000000, MAX_COUNT, 1L << 40);
    size_t lo = (size_t)arg_long(argc, argv, 2, 16, 4, 1 << 20);
    size_t hi = (size_t)arg_long(argc, argv, 3, 256, (long)lo, 1 << 20);

    void **arr = xmalloc(sizeof(void *) * MAX_COUNT);
    uint64_t bad = 0;
    double t0 = now_sec();
    uint64_t done = bench_loop(arr, pairs, lo, hi, &bad);
    double elapsed = now_sec() - t0;
    free(arr);

    printf("RESULT name=malloc_simple min=%zu max=%zu pairs=%llu bad_tags=%llu elapsed=%.4f "
           "ops_per_sec=%.0f\n",
           lo, hi, (unsigned long long)done, (unsigned long long)bad, elapsed,
           (double)done / elapsed);
    return bad ? 1 : 0;
}
