/* large_churn — big buffers allocated, written and freed over and over.
 *
 *   large_churn ITERATIONS SLOTS MIN_MIB MAX_MIB SEED
 *   e.g. large_churn 2000 4 5 25 1
 *
 * SLOTS buffers are live at a time. Each iteration frees a random slot's
 * buffer (after checking its tags) and mallocs a new one of a random size
 * in [MIN_MIB, MAX_MIB] MiB (byte granularity), writing one byte in every
 * 4 KiB page: image and network buffers, decompression windows, column
 * batches. An allocator that maps every buffer afresh (or unmaps every
 * freed one) pays an mmap, a munmap and a page fault per page each time;
 * one that keeps freed mappings pays none of them.
 * Result: ops_per_sec = iterations / elapsed (one free + one malloc + the
 * page writes each); touched_mib is what was written.                      */
#include "bench_util.h"

static void touch(char *p, size_t n, unsigned char t) {
    for (size_t i = 0; i < n; i += 4096) ((volatile char *)p)[i] = (char)t;
    tag_block(p, 0, n);
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: large_churn ITERATIONS SLOTS MIN_MIB MAX_MIB SEED");
    long iters = arg_long(argc, argv, 1, 2000, 1, 1L << 40);
    size_t slots = (size_t)arg_long(argc, argv, 2, 4, 1, 1 << 16);
    size_t lo = (size_t)arg_long(argc, argv, 3, 5, 1, 1 << 14) << 20;
    size_t hi = (size_t)arg_long(argc, argv, 4, 25, (long)(lo >> 20), 1 << 14) << 20;
    long seed = arg_long(argc, argv, 5, 1, 0, 1L << 62);
    rng_t r;
    rng_seed(&r, (uint64_t)seed);
    char **buf = xmalloc(slots * sizeof(*buf));
    size_t *len = xmalloc(slots * sizeof(*len));
    for (size_t i = 0; i < slots; i++) {
        len[i] = rng_range(&r, lo, hi);
        buf[i] = xmalloc(len[i]);
        touch(buf[i], len[i], tag_of(0, len[i]));
    }
    uint64_t bad = 0, touched = 0;
    double t0 = now_sec();
    for (long it = 0; it < iters; it++) {
        size_t s = (size_t)(rng_next(&r) % slots);
        bad += !tag_ok(buf[s], 0, len[s]);
        free(buf[s]);
        len[s] = rng_range(&r, lo, hi);
        buf[s] = xmalloc(len[s]);
        touch(buf[s], len[s], tag_of(0, len[s]));
        touched += len[s];
    }
    double elapsed = now_sec() - t0;
    for (size_t i = 0; i < slots; i++) {
        bad += !tag_ok(buf[i], 0, len[i]);
        free(buf[i]);
    }
    free(buf);
    free(len);
    printf("RESULT name=large_churn iterations=%ld slots=%zu min_mib=%zu max_mib=%zu seed=%ld "
           "bad_tags=%llu touched_mib=%llu elapsed=%.4f ops_per_sec=%.1f\n",
           iters, slots, lo >> 20, hi >> 20, seed, (unsigned long long)bad,
           (unsigned long long)(touched >> 20), elapsed, (double)iters / elapsed);
    return bad ? 1 : 0;
}
