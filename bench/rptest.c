/* rptest — the shape of rpmalloc's benchmark (rptest in mimalloc-bench):
 * per-thread slot arrays churned in bursts, plus batches freed by another
 * thread, sizes from a distribution with a linear drop-off up to MAX.
 *
 *   rptest THREADS LOOPS SLOTS OPS MIN MAX CROSS SEED
 *   e.g. rptest 2 500 1000 100 8 16000 2 1
 *        (mimalloc-bench: rptest $procs 0 1 2 500 1000 100 8 16000)
 *
 * Each thread owns SLOTS slots. A loop frees about 0.8 x OPS slots (walking
 * the array with one prime stride), frees every batch other threads sent
 * it, then mallocs about OPS blocks into slots found with another prime
 * stride (freeing what was there), and every CROSS-th loop mallocs one more
 * batch of as many blocks and pushes it (a lock-free stack) onto the next
 * thread's mailbox, which frees it in its next loop (at most 4 batches
 * wait there: a sender finding 4 frees its own mail until there is room). Burst lengths vary from
 * loop to loop (0.3..1.0 x OPS). Sizes are MIN + (MAX - MIN) x |u1 - u2|
 * (u uniform): small blocks are frequent, 16 KB ones rare. Every block gets
 * its size in its first word, a byte in each 4 KiB page and in its last
 * byte (what rptest writes to commit the memory). LOOPS loops are run
 * twice; each time the threads then free what they hold.
 * What is timed: the threads' lifetime; ops = mallocs + frees. Result:
 * ops_per_sec (wall), cpu_ops_per_sec (per CPU-second of the process);
 * peak_live_kb: the most bytes the program held at once (sampled once per
 * loop and thread), to set against the peak RSS rss_wrap measures.       */
#include "bench_util.h"

typedef struct task {
    int index, nthreads;
    long loops, cross;
    size_t slots, ops, lo, hi;
    rng_t rng;
    bench_mailbox_t inbox;
    struct task *all;
    uint64_t done_ops, bad;
    int64_t live; /* bytes malloced minus bytes freed since the last report */
} task_t;

static atomic_int finished;
static bench_live_t live; /* slots and batches in flight, once per loop */

static size_t pick_size(task_t *t) {
    uint64_t a = rng_next(&t->rng) >> 40, b = rng_next(&t->rng) >> 40; /* 24 bits each */
    uint64_t d = a > b ? a - b : b - a;
    return t->lo + (size_t)(((t->hi - t->lo) * d) >> 24);
}

static void *make(task_t *t, size_t size) {
    char *p = xmalloc(size);
    t->live += (int64_t)size;
    *(uint32_t *)p = (uint32_t)size;
    for (size_t off = 4096; off < size; off += 4096) p[off] = 1;
    p[size - 1] = 1;
    return p;
}

static void drop(void *arg, void *p) {
    task_t *t = arg;
    uint32_t size = *(uint32_t *)p;
    t->bad |= size < t->lo || size > t->hi || ((char *)p)[size - 1] != 1;
    free(p);
    t->live -= size;
    t->done_ops++;
}

static void drain(task_t *t) {
    t->done_ops += bench_mail_empty(&t->inbox, drop, t); /* a free per batch */
}

/* While a full mailbox keeps it waiting: free its own mail and say so. */
static void wait_mail(void *arg) {
    task_t *t = arg;
    drain(t);
    bench_live_report(&live, &t->live);
}

static void *worker(void *arg) {
    task_t *t = arg;
    void **slot = calloc(t->slots, sizeof(void *));
    if (!slot) die("calloc failed");
    size_t astride = 7, fstride = 11; /* primes not dividing SLOTS (checked in main) */
    size_t ai = 0, fi = 0, next = (size_t)t->index;
    for (int iter = 0; iter < 2; iter++) {
        for (long loop = 0; loop < t->loops; loop++) {
            size_t burst = t->ops * (30 + rng_next(&t->rng) % 71) / 100;
            size_t frees = burst * 8 / 10;
            for (size_t k = 0; k < frees; k++, fi = (fi + fstride) % t->slots)
                if (slot[fi]) {
                    drop(t, slot[fi]);
                    slot[fi] = NULL;
                }
            drain(t);
            for (size_t k = 0; k < burst; k++, ai = (ai + astride) % t->slots) {
                if (slot[ai]) drop(t, slot[ai]);
                slot[ai] = make(t, pick_size(t));
                t->done_ops++;
            }
            if (t->nthreads > 1 && t->cross && loop % t->cross == 0 &&
                atomic_load(&finished) == 0) {
                bench_batch_t *b = bench_batch_new(burst);
                for (size_t k = 0; k < burst; k++) b->blocks[k] = make(t, pick_size(t));
                t->done_ops += burst + 1;
                next = (next + 1) % (size_t)t->nthreads;
                if (next == (size_t)t->index) next = (next + 1) % (size_t)t->nthreads;
                bench_mail_send(&t->all[next].inbox, b, wait_mail, t);
            }
            bench_live_report(&live, &t->live);
        }
        for (size_t i = 0; i < t->slots; i++)
            if (slot[i]) {
                drop(t, slot[i]);
                slot[i] = NULL;
            }
        drain(t);
        bench_live_report(&live, &t->live);
    }
    atomic_store(&t->inbox.closed, 1);
    atomic_fetch_add(&finished, 1);
    free(slot);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 9) die("usage: rptest THREADS LOOPS SLOTS OPS MIN MAX CROSS SEED");
    int nthreads = (int)arg_long(argc, argv, 1, 2, 1, 256);
    long loops = arg_long(argc, argv, 2, 500, 1, 1L << 30);
    size_t slots = (size_t)arg_long(argc, argv, 3, 1000, 1, 1L << 24);
    size_t ops = (size_t)arg_long(argc, argv, 4, 100, 1, 1L << 24);
    size_t lo = (size_t)arg_long(argc, argv, 5, 8, 8, 1L << 30);
    size_t hi = (size_t)arg_long(argc, argv, 6, 16000, (long)lo, 1L << 30);
    long cross = arg_long(argc, argv, 7, 2, 0, 1L << 30);
    long seed = arg_long(argc, argv, 8, 1, 0, 1L << 62);
    if (slots % 7 == 0 || slots % 11 == 0) die("rptest: SLOTS must not be a multiple of 7 or 11");
    task_t proto = {.nthreads = nthreads,
                    .loops = loops,
                    .cross = cross,
                    .slots = slots,
                    .ops = ops,
                    .lo = lo,
                    .hi = hi};
    proto.all = calloc((size_t)nthreads, sizeof(task_t));
    if (!proto.all) die("calloc failed");
    rng_seed(&proto.rng, (uint64_t)seed);
    for (int i = nthreads; i-- > 0;) {
        proto.all[i] = proto;
        proto.all[i].index = i;
        rng_seed(&proto.all[i].rng, rng_next(&proto.rng));
    }
    double c0 = bench_cpu_sec(), elapsed = run_threads(nthreads, worker, proto.all, sizeof(task_t));
    double cpu = bench_cpu_sec() - c0;
    uint64_t total = 0, bad = 0;
    for (task_t *t = proto.all; t < proto.all + nthreads; t++) {
        drain(t); /* batches pushed after their receiver ended */
        total += t->done_ops;
        bad |= t->bad;
    }
    free(proto.all);
    printf("RESULT name=rptest threads=%d loops=%ld slots=%zu ops=%zu min=%zu max=%zu cross=%ld "
           "seed=%ld total_ops=%llu bad=%llu peak_live_kb=%lld elapsed=%.4f cpu=%.4f "
           "cpu_ops_per_sec=%.1f ops_per_sec=%.1f\n",
           nthreads, loops, slots, ops, lo, hi, cross, seed, (unsigned long long)total,
           (unsigned long long)bad, atomic_load(&live.peak) / 1024, elapsed, cpu,
           (double)total / cpu, (double)total / elapsed);
    return bad ? 1 : 0;
}
