/* random_mixed — single-thread random alloc/free over a small working set.
 *
 *   random_mixed CYCLES WORKING_SET SEED [MIN_SIZE MAX_SIZE]
 *   e.g. random_mixed 200000 400 1          (sizes 8..128 B by default)
 *        random_mixed 200000 400 1 8 1024
 *
 * Each cycle picks a random slot of WORKING_SET: an empty slot gets a new
 * block of random size in [MIN_SIZE, MAX_SIZE], a full one is freed. This is
 * the short-lived small-object churn of interpreters and parsers.
 * Result: ops_per_sec = cycles / elapsed (one malloc or one free each).   */
#include "bench_util.h"

typedef struct {
    void *p;
    size_t size;
} slot_t;

/* Kept out of line so bench/callgrind.sh can count just this function. */
__attribute__((noinline)) static uint64_t bench_loop(slot_t *ws, size_t nws, uint64_t cycles,
                                                     size_t lo, size_t hi, rng_t *rng) {
    uint64_t bad = 0;
    for (uint64_t i = 0; i < cycles; i++) {
        uint64_t r = rng_next(rng);
        slot_t *s = &ws[r % nws];
        if (s->p) {
            if (!tag_ok(s->p, (size_t)(s - ws), s->size)) bad++;
            free(s->p);
            s->p = NULL;
        } else {
            s->size = lo + (size_t)((r >> 32) % (hi - lo + 1));
            s->p = xmalloc(s->size);
            tag_block(s->p, (size_t)(s - ws), s->size);
        }
    }
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: random_mixed CYCLES WORKING_SET SEED [MIN_SIZE MAX_SIZE]");
    uint64_t cycles = (uint64_t)arg_long(argc, argv, 1, 200000, 1, 1L << 40);
    size_t nws = (size_t)arg_long(argc, argv, 2, 400, 1, 1 << 24);
    long seed = arg_long(argc, argv, 3, 1, 0, 1L << 62);
    size_t lo = (size_t)arg_long(argc, argv, 4, 8, 1, 1 << 24);
    size_t hi = (size_t)arg_long(argc, argv, 5, 128, (long)lo, 1 << 24);

    slot_t *ws = calloc(nws, sizeof(slot_t));
    if (!ws) die("calloc");
    rng_t rng;
    rng_seed(&rng, (uint64_t)seed);

    double t0 = now_sec();
    uint64_t bad = bench_loop(ws, nws, cycles, lo, hi, &rng);
    double elapsed = now_sec() - t0;

    for (size_t i = 0; i < nws; i++) {
        if (ws[i].p && !tag_ok(ws[i].p, i, ws[i].size)) bad++;
        free(ws[i].p);
    }
    free(ws);
    printf("RESULT name=random_mixed min=%zu max=%zu ws=%zu seed=%ld cycles=%llu bad_tags=%llu "
           "elapsed=%.4f ops_per_sec=%.0f\n",
           lo, hi, nws, seed, (unsigned long long)cycles, (unsigned long long)bad, elapsed,
           (double)cycles / elapsed);
    return bad ? 1 : 0;
}
