/* t_mid_store — the heap's store of big-class blocks (lib/hak_store.c):
 * what a full thread cache of a class >= 5 KiB flushes waits there for the
 * next refill, under the heap lock, so that memory a sleeping thread
 * leaves there still goes back:
 *   1. idle: a thread fills and frees blocks of 16-32 KiB (thread cache cap
 *      2: every overflow moves a block to the store, which takes them all)
 *      and sleeps; with
 *      purge_delay_ms=50 the purger must give the store's blocks back to
 *      their spans and purge their pages within 3 s (resident memory falls
 *      by half their interiors, `purged_bytes` rises as much). Without the
 *      purger's reach, they would stay resident while the thread sleeps.
 *   2. trim: the same with the background purger off: malloc_trim(0) from
 *      another thread must return them.
 *   3. reuse: blocks that went through the store come back whole and
 *      distinct (every byte written and checked, no two overlapping), and
 *      the refill takes them before fresh memory (no page faults).
 *   4. shrink: fast_cap of the 32 KiB class goes from 8 to 2 (written into
 *      the segment, as hakctl does) while 8 blocks are cached: the 6 flushed
 *      go to the store as one batch, bigger than the refill of a cap of 2
 *      may take. The refill must take part of it (a whole one would leave 6
 *      blocks in a cache that counts 2: its room runs past its cap, and the
 *      thread's exit flush walks off the list). Every block is checked and
 *      distinct; the thread exits holding them (main frees them after).
 * Each case runs in a fresh process (this binary re-executed). */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NCLS = 5, PER = 18 };
static const size_t sizes[NCLS] = {16 << 10, 20 << 10, 24 << 10, 28 << 10, 32 << 10};
static void *blocks[NCLS][PER];

/* Blocks of class c: what its store holds (256 KiB of them, lib/hak_store.c)
 * and the thread cache's 2, so that every freed block is in one or the
 * other, none on its span: only the store's purge can return them. */
static int per(int c) {
    return (int)((256u << 10) / sizes[c]) + 2;
}
static int cap(int c) {
    (void)c;
    return 2; /* HAKMEM_TINY_FAST_CAP=2 */
}

#include "mid_lib.h"

/* 1 and 2: half the stored blocks' interiors must go back. */
static const struct mid_idle idle = {
    .what = "the store's blocks", .where = "in the store", .num = 1, .den = 2};

int main(int argc, char **argv) {
    tu_init("t_mid_store");
    if (!hakmem_loaded()) return TU_SKIP;
    if (argc > 1) {
        if (strcmp(argv[1], "idle") == 0) mid_idle_case(&idle, false);
        if (strcmp(argv[1], "trim") == 0) mid_idle_case(&idle, true);
        if (strcmp(argv[1], "reuse") == 0) mid_reuse_case(false);
        /* 4. a batch in the store bigger than the refill may take: 16 blocks of
         * 32 KiB (HAK_CLS_32768, shm/hakmem_shm.h's class table), 8 freed (the cache:
         * full, cap 8); at cap 2, 6 are flushed. The worker exits with 8 taken
         * out: a cache that took a whole batch of 6 for a cap of 2 has room 6
         * there, and the exit flush walks cap - room blocks. */
        if (strcmp(argv[1], "shrink") == 0) mid_shrink_case(32 << 10, 16, 8, 8, HAK_CLS_32768, 2);
        return tu_done();
    }
    mid_child("t_mid_store", "idle", "1", "2");
    mid_child("t_mid_store", "trim", "0", "2");
    mid_child("t_mid_store", "reuse", "1", "2");
    mid_child("t_mid_store", "shrink", "1", NULL);
    return tu_done();
}
