/* shbench — the shape of MicroQuill's SmartHeap benchmarks sh6bench and
 * sh8bench (mimalloc-bench runs both with 2 x CPUs threads): arrays of
 * blocks of steadily growing sizes, freed in reverse and interleaved order;
 * sh8bench's threads also free blocks that other threads allocated.
 *
 *   shbench THREADS ITERATIONS BLOCKS MIN MAX CROSS SEED
 *   e.g. shbench 4 300 1000 1 1000 0 1     (sh6bench-like)
 *        shbench 4 300 1000 1 1000 1 1     (sh8bench-like)
 *
 * Each thread, ITERATIONS times: mallocs BLOCKS blocks whose size goes
 * MIN, MIN+1, ... MAX and wraps (the start moves on with each iteration),
 * writing the first and last byte; frees the second half in reverse order
 * (LIFO), then the even-numbered blocks of the first half in order, then
 * the odd-numbered ones; with CROSS = 1 the odd-numbered blocks of the
 * first half go instead into a mailbox for the next thread, which frees
 * them (in order) at the start of its next iteration: a quarter of all
 * frees are remote, in bursts (at most 4 batches wait in a mailbox: a
 * sender finding 4 frees its own mail until there is room). Blocks from freed neighbours are reused
 * at once by the next iteration's different sizes, which is what tells
 * a size-segregated allocator from a coalescing one.
 * What is timed: the threads' lifetime; ops = mallocs + frees. Result:
 * ops_per_sec (wall), cpu_ops_per_sec (per CPU-second of the process);
 * peak_live_kb: the most bytes the program held at once (sampled once per
 * iteration and thread), to set against the peak RSS rss_wrap measures.  */
#include "bench_util.h"

typedef struct task {
    int index, nthreads, cross;
    long iterations;
    size_t blocks, lo, hi;
    rng_t rng;
    bench_mailbox_t inbox;
    atomic_int sent_all; /* its last mail is sent */
    struct task *all;
    uint64_t ops, bad;
    int64_t live; /* bytes malloced minus bytes freed since the last report */
} task_t;

static bench_live_t live; /* arrays and mail in flight, once per iteration */

static void drop(void *arg, void *block) {
    task_t *t = arg;
    unsigned char *p = block;
    size_t n = *(uint32_t *)p;
    t->bad |= n < t->lo || n > t->hi || p[n - 1] != (unsigned char)n;
    free(p);
    t->live -= (int64_t)n;
    t->ops++;
}

static void drain(task_t *t) {
    bench_mail_empty(&t->inbox, drop, t);
}

/* While a full mailbox keeps it waiting: free its own mail and say so. */
static void wait_mail(void *arg) {
    task_t *t = arg;
    drain(t);
    bench_live_report(&live, &t->live);
}

static void *worker(void *arg) {
    task_t *t = arg;
    unsigned char **a = xmalloc(t->blocks * sizeof(void *));
    size_t range = t->hi - t->lo + 1, start = rng_next(&t->rng) % range, half = t->blocks / 2;
    task_t *to = &t->all[(t->index + 1) % t->nthreads];
    for (long it = 0; it < t->iterations; it++) {
        drain(t);
        for (size_t i = 0; i < t->blocks; i++) {
            size_t n = t->lo + (start + i) % range;
            unsigned char *p = xmalloc(n);
            *(uint32_t *)p = (uint32_t)n;
            p[n - 1] = (unsigned char)n;
            a[i] = p;
            t->live += (int64_t)n;
            t->ops++;
        }
        start = (start + 17) % range;
        for (size_t i = t->blocks; i-- > half;) drop(t, a[i]);
        for (size_t i = 0; i < half; i += 2) drop(t, a[i]);
        if (t->cross && t->nthreads > 1) {
            bench_batch_t *b = bench_batch_new(half / 2 + 1);
            b->count = 0;
            for (size_t i = 1; i < half; i += 2) b->blocks[b->count++] = a[i];
            bench_mail_send(&to->inbox, b, wait_mail, t);
        } else {
            for (size_t i = 1; i < half; i += 2) drop(t, a[i]);
        }
        bench_live_report(&live, &t->live);
    }
    /* Free mail until the sender is done too: a receiver that ended first
     * would leave the rest of its sender's mail unfreed until exit. Each
     * waits only for its sender, which got here first or waits for its own. */
    atomic_store(&t->sent_all, 1);
    task_t *from = &t->all[(t->index + t->nthreads - 1) % t->nthreads];
    while (!atomic_load(&from->sent_all)) {
        wait_mail(t);
        sched_yield();
    }
    wait_mail(t);
    free(a);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 8) die("usage: shbench THREADS ITERATIONS BLOCKS MIN MAX CROSS SEED");
    int nthreads = (int)arg_long(argc, argv, 1, 4, 1, 256);
    long iterations = arg_long(argc, argv, 2, 300, 1, 1L << 30);
    size_t blocks = (size_t)arg_long(argc, argv, 3, 1000, 2, 1L << 24);
    size_t lo = (size_t)arg_long(argc, argv, 4, 1, 1, 1L << 24);
    size_t hi = (size_t)arg_long(argc, argv, 5, 1000, (long)lo, 1L << 24);
    int cross = (int)arg_long(argc, argv, 6, 0, 0, 1);
    long seed = arg_long(argc, argv, 7, 1, 0, 1L << 62);
    if (lo < 5) lo = 5; /* room for the size word and the tail byte */
    if (hi < lo) hi = lo;
    task_t *tasks = calloc((size_t)nthreads, sizeof(task_t));
    if (!tasks) die("calloc failed");
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    for (int i = 0; i < nthreads; i++) {
        tasks[i] = (task_t){.index = i,
                            .nthreads = nthreads,
                            .cross = cross,
                            .iterations = iterations,
                            .blocks = blocks,
                            .lo = lo,
                            .hi = hi,
                            .all = tasks};
        rng_seed(&tasks[i].rng, rng_next(&master));
    }
    double c0 = bench_cpu_sec();
    double elapsed = run_threads(nthreads, worker, tasks, sizeof(task_t));
    double cpu = bench_cpu_sec() - c0;
    uint64_t total = 0, bad = 0;
    for (int i = 0; i < nthreads; i++) drain(&tasks[i]); /* the last iteration's mail */
    for (int i = 0; i < nthreads; i++) {
        total += tasks[i].ops;
        bad |= tasks[i].bad;
    }
    free(tasks);
    printf("RESULT name=shbench threads=%d iterations=%ld blocks=%zu min=%zu max=%zu cross=%d "
           "seed=%ld total_ops=%llu bad=%llu peak_live_kb=%lld elapsed=%.4f cpu=%.4f "
           "cpu_ops_per_sec=%.1f "
           "ops_per_sec=%.1f\n",
           nthreads, iterations, blocks, lo, hi, cross, seed, (unsigned long long)total,
           (unsigned long long)bad, atomic_load(&live.peak) / 1024, elapsed, cpu,
           (double)total / cpu, (double)total / elapsed);
    return bad ? 1 : 0;
}
