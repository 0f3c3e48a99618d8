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

int main(int argc, char **argv) {
    if (argc < 6) die("usage: realloc_grow BUFFERS MAX_SIZE MAX_STEP ROUNDS SEED");
    size_t nbuf = (size_t)arg_long(argc, argv, 1, 256, 1, 1 << 24);
    size_t max_size = (size_t)arg_long(argc, argv, 2, 65536, 1, 1L << 32);
    size_t max_step = (size_t)arg_long(argc, argv, 3, 512, 1, 1L << 32);
    long rounds = arg_long(argc, argv, 4, 4, 1, 1 << 20);
    long seed = arg_long(argc, argv, 5, 1, 0, 1L << 62);

    unsigned char **buf = xmalloc(sizeof(*buf) * nbuf);
    size_t *len = xmalloc(sizeof(*len) * nbuf);
    rng_t rng;
    rng_seed(&rng, (uint64_t)seed);
    uint64_t reallocs = 0, bad = 0, moves = 0;

    double t0 = now_sec(), cpu0 = process_cpu_sec();
    for (long r = 0; r < rounds; r++) {
        memset(buf, 0, sizeof(*buf) * nbuf);
        memset(len, 0, sizeof(*len) * nbuf);
        for (size_t growing = nbuf; growing > 0;) {
            growing = 0;
            for (size_t i = 0; i < nbuf; i++) {
                size_t old = len[i];
                if (old == max_size) continue;
                size_t n = old + rng_range(&rng, 1, max_step);
                if (n > max_size) n = max_size;
                unsigned char *p = realloc(buf[i], n);
                if (!p) die("realloc failed");
                reallocs++;
                moves += old && p != buf[i];
                if (old && (p[0] != pattern(i, 0) || p[old - 1] != pattern(i, old - 1))) bad++;
                for (size_t k = old; k < n; k++) p[k] = pattern(i, k);
                buf[i] = p;
                len[i] = n;
                growing += n < max_size;
            }
        }
        for (size_t i = 0; i < nbuf; i++) {
            for (size_t k = 0; k < len[i]; k += 61) bad += buf[i][k] != pattern(i, k);
            free(buf[i]);
        }
    }
    double elapsed = now_sec() - t0, cpu = process_cpu_sec() - cpu0;
    free(buf);
    free(len);
    printf("RESULT name=realloc_grow buffers=%zu max_size=%zu max_step=%zu rounds=%ld seed=%ld "
           "reallocs=%llu moves=%llu bad_tags=%llu elapsed=%.4f cpu=%.4f ops_per_sec=%.0f "
           "cpu_ops_per_sec=%.0f\n",
           nbuf, max_size, max_step, rounds, seed, (unsigned long long)reallocs,
           (unsigned long long)moves, (unsigned long long)bad, elapsed, cpu,
           (double)reallocs / elapsed, (double)reallocs / cpu);
    return bad ? 1 : 0;
}
