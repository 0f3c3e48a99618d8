/* realloc_grow — many buffers growing by small appends (string builders,
 * vectors, read buffers).
 *
 *   realloc_grow BUFFERS MAX_SIZE MAX_STEP ROUNDS SEED
 *   e.g. realloc_grow 256 65536 512 4 1
 *
 * Each round starts BUFFERS empty buffers and, visiting them in turn, grows
 * each by a random 1..MAX_STEP bytes with realloc and fills the new bytes,
 * until every buffer holds MAX_SIZE bytes; then checks and frees them all.
 * Interleaved growth means a buffer's neighbour is usually in the way, so
 * the allocator's in-place growth and size-class slack decide how much is
 * copied. Result: ops_per_sec = realloc calls / elapsed; cpu_ops_per_sec =
 * realloc calls / process CPU time (what a busy shared machine disturbs
 * less); moves = reallocs that returned a new address (each one a copy of
 * the old block, unless the allocator moved pages instead of bytes).       */
#include "bench_util.h"

static unsigned char pattern(size_t id, size_t pos) {
    return (unsigned char)(id * 31u + pos);
}

typedef struct {
    unsigned char **buf;
    size_t *len, nbuf, max_size, max_step;
    uint64_t reallocs, moves, bad;
} grow_t;

/* One round: every buffer from empty to max_size, then checked and freed.
 * (noinline: bench/callgrind.sh counts the instructions inside.) */
__attribute__((noinline)) static void bench_loop(grow_t *g, rng_t *rng) {
    memset(g->buf, 0, sizeof(*g->buf) * g->nbuf);
    memset(g->len, 0, sizeof(*g->len) * g->nbuf);
    for (size_t growing = g->nbuf; growing > 0;) {
        growing = 0;
        for (size_t i = 0; i < g->nbuf; i++) {
            size_t old = g->len[i];
            if (old == g->max_size) continue;
            size_t n = old + rng_range(rng, 1, g->max_step);
            if (n > g->max_size) n = g->max_size;
            unsigned char *p = realloc(g->buf[i], n);
            if (!p) die("realloc failed");
            g->reallocs++;
            g->moves += old && p != g->buf[i];
            if (old && (p[0] != pattern(i, 0) || p[old - 1] != pattern(i, old - 1))) g->bad++;
            for (size_t k = old; k < n; k++) p[k] = pattern(i, k);
            g->buf[i] = p;
            g->len[i] = n;
            growing += n < g->max_size;
        }
    }
    for (size_t i = 0; i < g->nbuf; i++) {
        for (size_t k = 0; k < g->len[i]; k += 61) g->bad += g->buf[i][k] != pattern(i, k);
        free(g->buf[i]);
    }
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: realloc_grow BUFFERS MAX_SIZE MAX_STEP ROUNDS SEED");
    grow_t g = {0};
    g.nbuf = (size_t)arg_long(argc, argv, 1, 256, 1, 1 << 24);
    g.max_size = (size_t)arg_long(argc, argv, 2, 65536, 1, 1L << 32);
    g.max_step = (size_t)arg_long(argc, argv, 3, 512, 1, 1L << 32);
    long rounds = arg_long(argc, argv, 4, 4, 1, 1 << 20);
    long seed = arg_long(argc, argv, 5, 1, 0, 1L << 62);

    g.buf = xmalloc(sizeof(*g.buf) * g.nbuf);
    g.len = xmalloc(sizeof(*g.len) * g.nbuf);
    rng_t rng;
    rng_seed(&rng, (uint64_t)seed);

    double t0 = now_sec(), cpu0 = bench_cpu_sec();
    for (long r = 0; r < rounds; r++) bench_loop(&g, &rng);
    double elapsed = now_sec() - t0, cpu = bench_cpu_sec() - cpu0;
    free(g.buf);
    free(g.len);
    printf("RESULT name=realloc_grow buffers=%zu max_size=%zu max_step=%zu rounds=%ld seed=%ld "
           "reallocs=%llu moves=%llu bad_tags=%llu elapsed=%.4f cpu=%.4f ops_per_sec=%.0f "
           "cpu_ops_per_sec=%.0f\n",
           g.nbuf, g.max_size, g.max_step, rounds, seed, (unsigned long long)g.reallocs,
           (unsigned long long)g.moves, (unsigned long long)g.bad, elapsed, cpu,
           (double)g.reallocs / elapsed, (double)g.reallocs / cpu);
    return g.bad ? 1 : 0;
}
