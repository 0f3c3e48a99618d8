/* mleak — the shape of mimalloc-bench's mleak: short-lived threads that each
 * leave one small long-lived object behind, over and over.
 *
 *   mleak ROUNDS THREADS SEED
 *   e.g. mleak 100 10 1            (mimalloc-bench: mleak 5 = 500 rounds)
 *
 * Each round starts THREADS threads; each callocs a 128-byte object, swaps
 * it into a random slot of a table of THREADS x 100 slots shared by all
 * (atomic exchange) and frees what it took out, then exits. So the live
 * objects stay at most THREADS x 100, but each was allocated by a thread
 * that is gone, and most frees are of another (dead) thread's block. An
 * allocator that keeps a dead thread's memory while one object in it
 * lives, or never reuses it, grows without bound: the result is resident
 * memory, not speed.
 * What is timed: the rounds. Result: ops_per_sec = threads per second;
 * cpu_ops_per_sec per CPU-second; rss_start_kb, rss_end_kb (VmRSS before
 * the first round and after the last, table still full) and
 * rss_delta_kb. */
#include "bench_util.h"

#include <stdatomic.h>

enum { OBJ = 128, SLOTS_PER_THREAD = 100 };

static _Atomic(uint64_t *) *table;
static size_t nslots;
static atomic_ullong bad;

typedef struct {
    uint64_t pick, tag;
} task_t;

static long vmrss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static void *worker(void *arg) {
    task_t *t = arg;
    uint64_t *p = calloc(OBJ / sizeof(uint64_t), sizeof(uint64_t));
    if (!p) die("calloc failed");
    uint64_t zero = 0;
    for (size_t i = 0; i < OBJ / sizeof(uint64_t); i++) zero |= p[i];
    p[0] = t->tag;
    p[OBJ / sizeof(uint64_t) - 1] = ~t->tag;
    uint64_t *q = atomic_exchange(&table[t->pick % nslots], p);
    if (q) zero |= q[0] != ~q[OBJ / sizeof(uint64_t) - 1];
    free(q);
    if (zero) atomic_fetch_add(&bad, 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: mleak ROUNDS THREADS SEED");
    long rounds = arg_long(argc, argv, 1, 100, 1, 1L << 30);
    int nthreads = (int)arg_long(argc, argv, 2, 10, 1, 1024);
    long seed = arg_long(argc, argv, 3, 1, 0, 1L << 62);
    nslots = (size_t)nthreads * SLOTS_PER_THREAD;
    table = calloc(nslots, sizeof(*table));
    task_t *tasks = xmalloc(sizeof(task_t) * (size_t)nthreads);
    if (!table) die("calloc failed");
    rng_t rng;
    rng_seed(&rng, (uint64_t)seed);
    long rss0 = vmrss_kb();
    double elapsed = 0, c0 = bench_cpu_sec();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < nthreads; i++) tasks[i] = (task_t){rng_next(&rng), rng_next(&rng)};
        elapsed += run_threads(nthreads, worker, tasks, sizeof(task_t));
    }
    double cpu = bench_cpu_sec() - c0;
    long rss1 = vmrss_kb();
    for (size_t i = 0; i < nslots; i++) free(atomic_load(&table[i]));
    free(table);
    free(tasks);
    double threads = (double)rounds * nthreads;
    printf("RESULT name=mleak rounds=%ld threads=%d seed=%ld bad=%llu elapsed=%.4f cpu=%.4f "
           "rss_start_kb=%ld rss_end_kb=%ld rss_delta_kb=%ld cpu_ops_per_sec=%.1f "
           "ops_per_sec=%.1f\n",
           rounds, nthreads, seed, (unsigned long long)atomic_load(&bad), elapsed, cpu, rss0, rss1,
           rss1 - rss0, threads / cpu, threads / elapsed);
    return atomic_load(&bad) ? 1 : 0;
}
