/* thread_bins — threads that each keep a pool of bins, in the shape of
 * ptmalloc's t-test1 (Wolfram Gloger's multi-thread malloc test).
 *
 *   thread_bins TOTAL CONCURRENT ACTIONS MAX_SIZE SEED
 *   e.g. thread_bins 100 2 10000 10000 1
 *
 * TOTAL threads run, CONCURRENT at a time (a new one starts as one ends).
 * Each keeps 64 MiB / (MAX_SIZE * CONCURRENT) bins, fills half of them,
 * then does ACTIONS steps of random frees and allocations of 1..MAX_SIZE
 * bytes (calloc 16 in 1024, memalign 4 in 1024, realloc 80 in 1024 while
 * the bin is below 2000 bytes, else free + malloc), writing every 2047th
 * byte and the last, checks and frees everything and exits. Peak RSS is
 * the point: what short-lived threads holding megabytes leave behind for
 * the next ones. Result: ops_per_sec = actions / elapsed; cpu_ops_per_sec
 * = actions / process CPU time.                                           */
#include "bench_util.h"

#include <malloc.h>

typedef struct {
    unsigned char *p;
    size_t n;
} bin_t;

typedef struct {
    size_t nbins, max_size;
    long actions;
    uint64_t seed, bad, done;
} job_t;

static unsigned char mark(const bin_t *b, size_t i) {
    return (unsigned char)(b->n * 7 + i);
}

static void bin_fill(bin_t *b) {
    for (size_t i = 0; i < b->n; i += 2047) b->p[i] = mark(b, i);
    b->p[b->n - 1] = mark(b, b->n - 1);
}

static int bin_bad(const bin_t *b) {
    if (!b->n) return 0;
    for (size_t i = 0; i < b->n; i += 2047)
        if (b->p[i] != mark(b, i)) return 1;
    return b->p[b->n - 1] != mark(b, b->n - 1);
}

static void bin_free(job_t *j, bin_t *b) {
    j->bad += bin_bad(b);
    if (b->n) free(b->p);
    b->p = NULL;
    b->n = 0;
}

static void bin_alloc(job_t *j, bin_t *b, rng_t *rng) {
    size_t n = rng_range(rng, 1, j->max_size);
    unsigned r = (unsigned)(rng_next(rng) % 1024);
    if (r < 4) {
        bin_free(j, b);
        b->p = memalign(sizeof(int) << r, n);
    } else if (r < 20) {
        bin_free(j, b);
        b->p = calloc(n, 1);
        if (b->p)
            for (size_t i = 0; i < n; i += 509) j->bad += b->p[i] != 0;
    } else if (r < 100 && b->n < 2000) {
        j->bad += bin_bad(b);
        unsigned char *q = realloc(b->n ? b->p : NULL, n);
        if (!q) die("realloc failed");
        b->p = q;
    } else {
        bin_free(j, b);
        b->p = malloc(n);
    }
    if (!b->p) die("allocation failed");
    b->n = n;
    bin_fill(b);
}

static void *thread_main(void *arg) {
    job_t *j = arg;
    rng_t rng;
    rng_seed(&rng, j->seed);
    bin_t *bins = calloc(j->nbins, sizeof(bin_t));
    if (!bins) die("calloc");
    for (size_t b = 0; b < j->nbins; b++)
        if (rng_next(&rng) & 1) bin_alloc(j, &bins[b], &rng);
    for (long i = 0; i < j->actions;) {
        long a = (long)(rng_next(&rng) % 30);
        for (long k = 0; k < a; k++) bin_free(j, &bins[rng_next(&rng) % j->nbins]);
        i += a;
        a = (long)(rng_next(&rng) % 30);
        for (long k = 0; k < a; k++) bin_alloc(j, &bins[rng_next(&rng) % j->nbins], &rng);
        i += a;
        j->done += (uint64_t)a;
    }
    for (size_t b = 0; b < j->nbins; b++) bin_free(j, &bins[b]);
    free(bins);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: thread_bins TOTAL CONCURRENT ACTIONS MAX_SIZE SEED");
    long total = arg_long(argc, argv, 1, 100, 1, 1 << 20);
    int conc = (int)arg_long(argc, argv, 2, 2, 1, 64);
    long actions = arg_long(argc, argv, 3, 10000, 1, 1L << 32);
    size_t max_size = (size_t)arg_long(argc, argv, 4, 10000, 2, 1L << 30);
    long seed = arg_long(argc, argv, 5, 1, 0, 1L << 62);
    size_t nbins = ((size_t)64 << 20) / (max_size * (size_t)conc);
    if (nbins < 4) nbins = 4;

    job_t *jobs = calloc((size_t)total, sizeof(job_t));
    pthread_t *th = calloc((size_t)conc, sizeof(pthread_t));
    if (!jobs || !th) die("calloc");
    for (long t = 0; t < total; t++)
        jobs[t] = (job_t){.nbins = nbins,
                          .max_size = max_size,
                          .actions = actions,
                          .seed = (uint64_t)seed * 1000003u + (uint64_t)t};
    double t0 = now_sec(), cpu0 = bench_cpu_sec();
    long next = 0;
    for (int i = 0; i < conc && next < total; i++, next++)
        if (pthread_create(&th[i], NULL, thread_main, &jobs[next])) die("pthread_create");
    /* one slot after the other: a new thread as soon as that slot's ends */
    for (long joined = 0; joined < total; joined++) {
        int i = (int)(joined % conc);
        pthread_join(th[i], NULL);
        if (next < total && pthread_create(&th[i], NULL, thread_main, &jobs[next++]))
            die("pthread_create");
    }
    double elapsed = now_sec() - t0, cpu = bench_cpu_sec() - cpu0;
    uint64_t bad = 0, done = 0;
    for (long t = 0; t < total; t++) {
        bad += jobs[t].bad;
        done += jobs[t].done;
    }
    free(jobs);
    free(th);
    printf("RESULT name=thread_bins threads=%ld concurrent=%d actions=%ld max_size=%zu bins=%zu "
           "seed=%ld allocs=%llu bad_tags=%llu elapsed=%.4f cpu=%.4f ops_per_sec=%.0f "
           "cpu_ops_per_sec=%.0f\n",
           total, conc, actions, max_size, nbins, seed, (unsigned long long)done,
           (unsigned long long)bad, elapsed, cpu, (double)done / elapsed, (double)done / cpu);
    return bad ? 1 : 0;
}
