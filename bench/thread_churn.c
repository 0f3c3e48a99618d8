/* thread_churn — short-lived threads: each builds a tree, frees it, exits.
 *
 *   thread_churn ROUNDS THREADS DEPTH MIN_SIZE MAX_SIZE SEED
 *   e.g. thread_churn 200 4 10 40 128 1
 *
 * Every round starts THREADS threads at once; each builds a binary tree of
 * depth DEPTH (2^(DEPTH+1) - 1 nodes of random size in [MIN, MAX]), walks it
 * to check the tags, frees it and exits; the main thread joins them all and
 * starts the next round. This is a request-per-thread server or a parallel
 * task runner without a pool: what a thread's heap costs to set up and to
 * hand back (page faults, madvise/munmap at thread exit) decides the speed.
 * Result: ops_per_sec = threads completed / elapsed; nodes_per_sec too;
 * cpu_ops_per_sec = threads / process CPU time.                            */
#include "bench_util.h"

#include <sys/resource.h>

typedef struct node {
    struct node *l, *r;
    size_t size;
    size_t slot;
} node_t;

typedef struct {
    int depth;
    size_t lo, hi;
    rng_t rng;
    uint64_t nodes, bad;
} task_t;

static node_t *build(task_t *t, int depth, size_t slot) {
    size_t n = rng_range(&t->rng, t->lo, t->hi);
    node_t *x = xmalloc(n);
    x->size = n;
    x->slot = slot;
    tag_block((char *)x + sizeof(node_t), slot, n - sizeof(node_t));
    x->l = depth ? build(t, depth - 1, 2 * slot + 1) : NULL;
    x->r = depth ? build(t, depth - 1, 2 * slot + 2) : NULL;
    t->nodes++;
    return x;
}

static void release(task_t *t, node_t *x) {
    if (!x) return;
    release(t, x->l);
    release(t, x->r);
    t->bad += !tag_ok((char *)x + sizeof(node_t), x->slot, x->size - sizeof(node_t));
    free(x);
}

static void *worker(void *arg) {
    task_t *t = arg;
    release(t, build(t, t->depth, 0));
    return NULL;
}

static double cpu_sec(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

int main(int argc, char **argv) {
    if (argc < 7) die("usage: thread_churn ROUNDS THREADS DEPTH MIN_SIZE MAX_SIZE SEED");
    long rounds = arg_long(argc, argv, 1, 200, 1, 1L << 30);
    int nthreads = (int)arg_long(argc, argv, 2, 4, 1, 1024);
    int depth = (int)arg_long(argc, argv, 3, 10, 0, 24);
    size_t lo = (size_t)arg_long(argc, argv, 4, 16, (long)sizeof(node_t) + 1, 1 << 20);
    size_t hi = (size_t)arg_long(argc, argv, 5, 128, (long)lo, 1 << 20);
    long seed = arg_long(argc, argv, 6, 1, 0, 1L << 62);
    task_t *tasks = xmalloc(sizeof(task_t) * (size_t)nthreads);
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    uint64_t nodes = 0, bad = 0;
    double t0 = now_sec(), c0 = cpu_sec(), elapsed = 0;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < nthreads; i++) {
            tasks[i] = (task_t){.depth = depth, .lo = lo, .hi = hi};
            rng_seed(&tasks[i].rng, rng_next(&master));
        }
        elapsed += run_threads(nthreads, worker, tasks, sizeof(task_t));
        for (int i = 0; i < nthreads; i++) {
            nodes += tasks[i].nodes;
            bad += tasks[i].bad;
        }
    }
    double wall = now_sec() - t0, cpu = cpu_sec() - c0;
    free(tasks);
    double threads = (double)rounds * nthreads;
    printf("RESULT name=thread_churn rounds=%ld threads=%d depth=%d min=%zu max=%zu seed=%ld "
           "nodes=%llu bad_tags=%llu elapsed=%.4f cpu=%.4f nodes_per_sec=%.0f "
           "cpu_ops_per_sec=%.1f ops_per_sec=%.1f\n",
           rounds, nthreads, depth, lo, hi, seed, (unsigned long long)nodes,
           (unsigned long long)bad, wall, cpu, (double)nodes / elapsed, threads / cpu,
           threads / wall);
    return bad ? 1 : 0;
}
