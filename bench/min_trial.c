/* min_trial — the fast path timed in short trials, for A/B of builds on a
 * noisy machine: each trial (about 8000 operations, 25-90 us) is shorter
 * than a scheduler slice, so the minimum over many trials is one that ran
 * undisturbed. The minimum is steady within a process (min to 10th
 * percentile 0.1-1 %) but lands on one of a few levels that differ between
 * processes of the same build (3.2, 3.75 or 4.8 ns a tiny_hot pair here),
 * so compare the distributions of many processes' minima, alternating
 * builds (docs/allocator.md, "What the counters cost").
 *
 *   min_trial MODE TRIALS
 *   e.g. min_trial t16 300
 *
 * MODE: t<size> tiny_hot's loop (batches of 100, LIFO); ms<size>
 * malloc_simple's FIFO rounds of N = 25, 100 and 400 at one size (2500 +
 * 2500 + 2800 pairs a trial; 1600 would leave the cache); rm random_mixed's
 * loop (working set 400, 8-128 bytes; rm<max>: 8-max bytes, e.g. rm1024).
 * Result: min, p10 and median ns per operation (a pair for t and ms, a
 * malloc or a free for rm), after 20 trials of warm-up.                 */
#include "bench_util.h"
#include <time.h>

static void *ptrs[400];

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

__attribute__((noinline)) static uint64_t lifo(size_t size, int iters) {
    uint64_t bad = 0;
    for (int it = 0; it < iters; it++) {
        for (size_t i = 0; i < 100; i++) {
            ptrs[i] = xmalloc(size);
            *(volatile uint32_t *)ptrs[i] = (uint32_t)i;
        }
        for (size_t i = 100; i-- > 0;) {
            if (*(volatile uint32_t *)ptrs[i] != (uint32_t)i) bad++;
            free(ptrs[i]);
        }
    }
    return bad;
}

__attribute__((noinline)) static uint64_t fifo(size_t size, size_t n, int rounds) {
    uint64_t bad = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            ptrs[i] = xmalloc(size);
            *(volatile uint32_t *)ptrs[i] = (uint32_t)i;
        }
        for (size_t i = 0; i < n; i++) {
            if (*(volatile uint32_t *)ptrs[i] != (uint32_t)i) bad++;
            free(ptrs[i]);
        }
    }
    return bad;
}

typedef struct {
    void *p;
    size_t size;
} slot_t;
static slot_t ws[400];

__attribute__((noinline)) static uint64_t mixed(rng_t *rng, int cycles, size_t hi) {
    uint64_t bad = 0;
    for (int i = 0; i < cycles; i++) {
        uint64_t r = rng_next(rng);
        slot_t *s = &ws[r % 400];
        if (s->p) {
            if (!tag_ok(s->p, (size_t)(s - ws), s->size)) bad++;
            free(s->p);
            s->p = NULL;
        } else {
            s->size = 8 + (size_t)((r >> 32) % (hi - 7));
            s->p = xmalloc(s->size);
            tag_block(s->p, (size_t)(s - ws), s->size);
        }
    }
    return bad;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) die("usage: min_trial t<size>|ms<size>|rm[<max>] TRIALS");
    const char *mode = argv[1];
    int trials = (int)arg_long(argc, argv, 2, 300, 1, 1000000);
    size_t size = mode[0] == 't'   ? (size_t)atol(mode + 1)
                  : mode[0] == 'm' ? (size_t)atol(mode + 2)
                                   : 0;
    size_t hi = mode[0] == 'r' && mode[2] ? (size_t)atol(mode + 2) : 128;
    if (hi < 8 || hi > 1 << 20) die("min_trial: rm<max> needs 8 <= max <= 1048576");
    if ((mode[0] != 'r' && (size < 1 || size > 1 << 20)) || (mode[0] == 'r' && mode[1] != 'm'))
        die("min_trial: MODE is t<size>, ms<size>, rm or rm<max>");
    double *v = xmalloc(sizeof(double) * (size_t)trials);
    rng_t rng;
    rng_seed(&rng, 1);
    uint64_t bad = 0;
    for (int t = -20; t < trials; t++) {
        double t0 = now_ns(), ops;
        if (mode[0] == 't') {
            bad += lifo(size, 80);
            ops = 8000;
        } else if (mode[0] == 'm') {
            bad += fifo(size, 25, 100) + fifo(size, 100, 25) + fifo(size, 400, 7);
            ops = 2500 + 2500 + 2800;
        } else {
            bad += mixed(&rng, 8000, hi);
            ops = 8000;
        }
        if (t >= 0) v[t] = (now_ns() - t0) / ops;
    }
    qsort(v, (size_t)trials, sizeof(double), cmp);
    printf("RESULT name=min_trial mode=%s trials=%d bad_tags=%llu min=%.3f p10=%.3f med=%.3f\n",
           mode, trials, (unsigned long long)bad, v[0], v[trials / 10], v[trials / 2]);
    free(v);
    return bad ? 1 : 0;
}
