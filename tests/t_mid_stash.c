/* t_mid_stash — the stash of big-class blocks (lib/hak_store.c): a full
 * thread cache of 8 KiB-32 KiB blocks (default caps: 32, 16, 8) moves its
 * colder half there whole, without the heap lock, and an empty one takes a
 * batch back. The thread cache is out of every purge's reach; the stash
 * must not be:
 *   1. idle: a thread frees twice its caches' worth of 8, 16 and 32 KiB
 *      blocks and sleeps. Its caches keep one cap each; the rest is in its
 *      stashes (and, for the class whose overflow came first, half a cap in
 *      the store, which that overflow makes). With purge_delay_ms=50 the
 *      purger must take the stashes of the sleeping thread and purge the
 *      blocks' pages within 3 s: resident memory falls by at least 3/4 of
 *      those blocks' interiors (past the header page). Without the
 *      stash's purge only the store's half cap of one class would go.
 *   2. trim: the same with the background purger off: malloc_trim(0) from
 *      another thread must take them.
 *   3. cross: the blocks were allocated by the main thread and freed by
 *      the worker: its stashes hold another heap's blocks, which go back to
 *      their owner (remote frees) when the purger takes the stashes; the
 *      memory must come back as in 1.
 *   4. reuse: 50 rounds of fill and free: blocks that went through the
 *      stash come back whole and distinct, without page faults.
 *   5. shrink: fast_cap of the 8 KiB class goes from 32 to 8 (written into
 *      the segment, as hakctl does) while the stash holds two batches of
 *      16: an empty cache of cap 8 cannot take one. The batches go to
 *      their spans (checked) and the refill takes blocks from there: every
 *      block intact and distinct.
 * Each case runs in a fresh process (this binary re-executed). */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NCLS = 3, MAXPER = 64 };
static const size_t sizes[NCLS] = {8 << 10, 16 << 10, 32 << 10};
static void *blocks[NCLS][MAXPER];

/* the default cap (256 KiB of blocks), twice over: a cache and a stash */
static int cap(int c) {
    return (int)((256u << 10) / sizes[c]);
}
static int per(int c) {
    return 2 * cap(c);
}

/* mid_free_all frees class by class, the 8 KiB class first: its first
 * overflow makes the heap's stores (a flush to the store), the other
 * classes' go to stashes */
#include "mid_lib.h"

/* 1, 2 and 3: 3/4 of the interiors past the caches (the stashes' and the
 * store's) must go back; the worker starts the purger, which the stash's
 * moves do not. */
static struct mid_idle idle = {
    .what = "the stashed blocks", .where = "past the caches", .num = 3, .den = 4, .kick = true};

int main(int argc, char **argv) {
    tu_init("t_mid_stash");
    if (!hakmem_loaded()) return TU_SKIP;
    if (argc > 1) {
        idle.cross = strcmp(argv[1], "cross") == 0;
        if (strcmp(argv[1], "idle") == 0 || idle.cross) mid_idle_case(&idle, false);
        if (strcmp(argv[1], "trim") == 0) mid_idle_case(&idle, true);
        /* 4. half the rounds free in the order the blocks came, half the
         * other way: the stash's batches then hold blocks of both orders */
        if (strcmp(argv[1], "reuse") == 0) mid_reuse_case(true);
        /* 5. batches in the stash bigger than an empty cache may take: 80 blocks
         * of 8 KiB (HAK_CLS_8192, shm/hakmem_shm.h's class table), 65 freed: at cap 32
         * the first overflow flushes 16 to the store (and makes it), the next two
         * move 16 each to the stash. The worker exits holding the 40 it takes:
         * its exit flush empties its stash. */
        if (strcmp(argv[1], "shrink") == 0) mid_shrink_case(8 << 10, 80, 65, 40, HAK_CLS_8192, 8);
        return tu_done();
    }
    mid_child("t_mid_stash", "idle", "1", NULL);
    mid_child("t_mid_stash", "trim", "0", NULL);
    mid_child("t_mid_stash", "cross", "1", NULL);
    mid_child("t_mid_stash", "reuse", "1", NULL);
    mid_child("t_mid_stash", "shrink", "1", NULL);
    return tu_done();
}
