/* tiny_hot — the allocator's fast path: LIFO batches of one small size.
 *
 *   tiny_hot SIZE BATCH ITERATIONS
 *   e.g. tiny_hot 64 100 200000
 *
 * Each iteration mallocs BATCH blocks of SIZE bytes, then frees them in
 * reverse order. Everything stays in the thread's cache: this measures the
 * cost of malloc+free on the hottest path and nothing else.
 * Result: ops_per_sec = malloc+free pairs / elapsed.                      */
#include "bench_util.h"

/* Kept out of line so bench/callgrind.sh can count just this function. */
__attribute__((noinline)) static uint64_t bench_loop(void **ptrs, size_t batch, uint64_t iters,
                                                     size_t size) {
    uint64_t bad = 0;
    for (uint64_t it = 0; it < iters; it++) {
        for (size_t i = 0; i < batch; i++) {
            ptrs[i] = xmalloc(size);
            *(volatile uint32_t *)ptrs[i] = (uint32_t)i;
        }
        for (size_t i = batch; i-- > 0;) {
            if (*(volatile uint32_t *)ptrs[i] != (uint32_t)i) bad++;
            free(ptrs[i]);
        }
    }
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: tiny_hot SIZE BATCH ITERATIONS");
    size_t size = (size_t)arg_long(argc, argv, 1, 64, 4, 1 << 20);
    size_t batch = (size_t)arg_long(argc, argv, 2, 100, 1, 1 << 20);
    uint64_t iters = (uint64_t)arg_long(argc, argv, 3, 100000, 1, 1L << 40);

    void **ptrs = xmalloc(sizeof(void *) * batch);
    double t0 = now_sec();
    uint64_t bad = bench_loop(ptrs, batch, iters, size);
    double elapsed = now_sec() - t0;
    free(ptrs);

    uint64_t pairs = iters * batch;
    printf("RESULT name=tiny_hot size=%zu batch=%zu iterations=%llu pairs=%llu bad_tags=%llu "
           "elapsed=%.4f ops_per_sec=%.0f\n",
           size, batch, (unsigned long long)iters, (unsigned long long)pairs,
           (unsigned long long)bad, elapsed, (double)pairs / elapsed);
    return bad ? 1 : 0;
}
