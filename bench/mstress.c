/* mstress — the shape of mimalloc's test-stress ("mstress" in mimalloc-bench):
 * threads that allocate, free at random and swap blocks with other threads.
 *
 *   mstress THREADS SCALE ROUNDS SEED
 *   e.g. mstress 2 50 5 1          (mimalloc-bench: mstress $procs 50 25)
 *
 * Each round starts THREADS threads; thread t makes 80 * SCALE * (t % 8 + 1)
 * steps (some threads work longer than others). A step mallocs a block of
 * 1..128 words kept in a growing array (grown by realloc, 100,000 entries at
 * a time), or, in about a third of the steps, a block of 10..1,280 words
 * kept until the thread ends; 1 % of the blocks are 100 times larger (up to
 * 1 MiB). Two in three steps then free a random block of the array, and one
 * in four swaps a random entry of it with a random slot of a table of 1,000
 * slots shared by all threads (atomic exchange): blocks change hands, so
 * frees are remote and blocks outlive the thread that made them; the table
 * survives the round, so the next round's threads free blocks of threads
 * that have exited. Every word of a block is written at malloc and checked
 * at free. A thread frees what it still holds when it ends.
 * What is timed: the rounds (thread start to last join); ops = mallocs +
 * frees. Result: ops_per_sec (wall), cpu_ops_per_sec (per CPU-second of
 * the process); peak_live_kb, the most bytes the threads held at once
 * (sampled every few hundred steps), to set against the peak RSS. */
#include "bench_util.h"

#include <stdatomic.h>

enum { TRANSFERS = 1000, GROW = 100000, MAX_ITEM = 128 };

static _Atomic(uintptr_t *) transfer[TRANSFERS];
static const uintptr_t cookie = 0xbf58476d1ce4e5b9ULL;
static atomic_ullong ops_total, bad_total;

typedef struct {
    long steps;
    rng_t rng;
    int64_t live; /* bytes malloced minus bytes freed since the last report */
} task_t;

static bench_live_t live; /* all threads' blocks, reported every 256 steps */

static uintptr_t *alloc_items(task_t *t, size_t items) {
    if (rng_next(&t->rng) % 100 == 0) items *= 100;
    uintptr_t *p = xmalloc(items * sizeof(uintptr_t));
    t->live += (int64_t)(items * sizeof(uintptr_t));
    for (uintptr_t i = 0; i < items; i++) p[i] = (items - i) ^ cookie;
    return p;
}

/* Checks every word (the block's first word holds its length) and frees. */
static uint64_t free_items(task_t *t, uintptr_t *p) {
    if (!p) return 0;
    uintptr_t items = p[0] ^ cookie;
    if (t) t->live -= (int64_t)(items * sizeof(uintptr_t));
    uint64_t bad = 0;
    for (uintptr_t i = 0; i < items; i++) bad |= (p[i] ^ cookie) != items - i;
    free(p);
    return bad;
}

static void *worker(void *arg) {
    task_t *t = arg;
    long allocs = t->steps, retain = t->steps / 2;
    uintptr_t **data = NULL, **kept = xmalloc(sizeof(void *) * (size_t)(retain + 1));
    size_t data_size = 0, data_top = 0, kept_top = 0;
    uint64_t ops = 0, bad = 0;
    while (allocs > 0 || retain > 0) {
        if (retain == 0 || (allocs > 0 && rng_next(&t->rng) % 100 < 50)) {
            allocs--;
            if (data_top >= data_size) {
                data_size += GROW;
                data = realloc(data, data_size * sizeof(void *));
                if (!data) die("realloc failed");
            }
            data[data_top++] = alloc_items(t, rng_next(&t->rng) % MAX_ITEM + 1);
        } else {
            kept[kept_top++] = alloc_items(t, 10 * (rng_next(&t->rng) % (10 * MAX_ITEM) + 1));
            retain--;
        }
        if (++ops % 256 == 0) bench_live_report(&live, &t->live);
        if (data_top && rng_next(&t->rng) % 100 < 66) {
            size_t i = rng_next(&t->rng) % data_top;
            ops += data[i] != NULL;
            bad |= free_items(t, data[i]);
            data[i] = NULL;
        }
        if (data_top && rng_next(&t->rng) % 100 < 25) {
            size_t i = rng_next(&t->rng) % data_top;
            data[i] = atomic_exchange(&transfer[rng_next(&t->rng) % TRANSFERS], data[i]);
        }
    }
    for (size_t i = 0; i < kept_top; i++) bad |= free_items(t, kept[i]);
    for (size_t i = 0; i < data_top; i++) {
        ops += data[i] != NULL;
        bad |= free_items(t, data[i]);
    }
    ops += kept_top;
    free(kept);
    free(data);
    bench_live_report(&live, &t->live);
    atomic_fetch_add(&ops_total, ops);
    atomic_fetch_add(&bad_total, bad);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) die("usage: mstress THREADS SCALE ROUNDS SEED");
    int nthreads = (int)arg_long(argc, argv, 1, 2, 1, 256);
    long scale = arg_long(argc, argv, 2, 50, 1, 1L << 20);
    long rounds = arg_long(argc, argv, 3, 5, 1, 1L << 20);
    long seed = arg_long(argc, argv, 4, 1, 0, 1L << 62);
    task_t *tasks = xmalloc(sizeof(task_t) * (size_t)nthreads);
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    double elapsed = 0, c0 = bench_cpu_sec();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < nthreads; i++) {
            tasks[i].steps = 80 * scale * (i % 8 + 1);
            tasks[i].live = 0;
            rng_seed(&tasks[i].rng, rng_next(&master));
        }
        elapsed += run_threads(nthreads, worker, tasks, sizeof(task_t));
    }
    double cpu = bench_cpu_sec() - c0;
    uint64_t bad = atomic_load(&bad_total), ops = atomic_load(&ops_total);
    for (int i = 0; i < TRANSFERS; i++) bad |= free_items(NULL, atomic_load(&transfer[i]));
    free(tasks);
    printf("RESULT name=mstress threads=%d scale=%ld rounds=%ld seed=%ld ops=%llu bad=%llu "
           "peak_live_kb=%lld elapsed=%.4f cpu=%.4f cpu_ops_per_sec=%.1f ops_per_sec=%.1f\n",
           nthreads, scale, rounds, seed, (unsigned long long)ops, (unsigned long long)bad,
           atomic_load(&live.peak) / 1024, elapsed, cpu, (double)ops / cpu, (double)ops / elapsed);
    return bad ? 1 : 0;
}
