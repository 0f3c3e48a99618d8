/* hak_tcache.c — thread-cache decay: blocks a thread keeps cached but does
 * not use go back to their spans, as jemalloc's tcache GC and tcmalloc's
 * thread-cache scavenging do.
 *
 * A bin fills up to its cap (grown up to ~256 KiB of blocks for a churned
 * class, hak_tbin_grow), and nothing on the fast path ever empties it: a
 * program that moves on from one size to another keeps the first size's
 * blocks cached, and with them the spans they sit in (a span goes back only
 * when all its blocks are free). So, on the slow paths only (a refill, a
 * bin overflowing: hak_tcache_event, called by hak_span.c), the thread
 * looks at its busy bins (those refilled or overflowed since they were last
 * found done) every tcache_gc blocks those slow paths moved, and per bin:
 *   - low water: the cache is a LIFO stack, so of the blocks cached at the
 *     last look at least (then - allocs since) were never taken: they sat
 *     at the bottom the whole time. The fast path keeps no low-water mark
 *     (it takes no extra writes): this bound from the bin's counters stands
 *     in for it; a flush of the bin since then (from the top, down to a
 *     keep) voids it, and a bin that only took frees has none. Over a period
 *     of at least tcache_gc allocs + frees of the thread, three quarters of
 *     it go back (jemalloc's ratio: a quarter stays for the next burst) and
 *     a grown cap halves.
 *   - idle: the thread's allocs + frees while the bin had none. Once they
 *     reach tcache_gc, the class's phase is over: every cached block goes
 *     back, the cap goes back to the knob, and the class's empty spans go
 *     too, the last one as well (span_settle keeps one for the next refill),
 *     so their pages serve the classes in use (a carve takes free resident
 *     pages first) or go to the OS after the purge delay. The class leaves
 *     the busy set until its next slow path.
 * A class that starts (enters the busy set) looks at once and brings the
 * next look to a sixteenth of the period: a program's phases of one size
 * after another carve the new size's spans with few slow paths between, and
 * the old size's pages should be free by then (malloc_simple: peak RSS
 * docs/allocator.md). Costs: one call per refill or overflow, a look per
 * tcache_gc blocks, a walk of the busy bins (two loads of counters each).
 * The counters say what moved: the decay's flushes are flushes (flushes,
 * flush_blocks), its span releases spans_freed. The look reads the bin's
 * own counters (allocs, frees, flushes), which the fast path keeps: the
 * build without fast-path counters (HAK_COUNTERS=0, only to measure them)
 * cannot tell a quiet bin and does not decay. */
#include "hak_internal.h"

#if HAK_COUNTERS

/* Bin c gives back `give` of its n blocks; a grown cap halves (back to the
 * knob when the class is done). */
static void give_back(hak_heap *h, struct hak_tbin *bin, int c, uint32_t n, uint32_t give,
                      bool done) {
    hak_flush(h, c, n - give);
    uint32_t base = hak_safe_free ? 0 : (uint32_t)HAK_KNOB_CLS(FAST_CAP, c), left = n - give;
    if (bin->cap > base) {
        uint32_t cap = done ? base : bin->cap / 2;
        if (cap < base) cap = base;
        if (cap < left) cap = left;
        bin->cap = cap;
        bin->room = cap - left;
    }
}

static HAK_NOINLINE void look(hak_heap *h, int skip, uint32_t every) {
    struct hak_tgc *g = &h->tgc;
    struct hak_tgc_seen *seen = g->seen;
    uint32_t ops[HAK_NUM_CLASSES] = {0}, total = 0;
    /* the busy set: a bit per class, two words (more than 64 classes) */
    for (int w = 0; w < 2; w++)
        for (uint64_t m = g->busy[w]; m; m &= m - 1) { /* the activity since the last look */
            int c = w * 64 + __builtin_ctzll(m);
            struct hak_tbin *bin = &hak_tls.bins[c];
            ops[c] = (uint32_t)HAK_BIN_CTR(bin, ALLOCS) - seen->allocs[c];
            uint32_t frees = (uint32_t)HAK_BIN_CTR(bin, FREES) - seen->frees[c];
            total += ops[c] + frees;
            if (!ops[c] && frees) ops[c] = UINT32_MAX; /* not quiet (and no low water from it) */
        }
    for (int w = 0; w < 2; w++)
        for (uint64_t m = g->busy[w]; m; m &= m - 1) { /* a copy: the loop clears done ones */
            int c = w * 64 + __builtin_ctzll(m);
            struct hak_tbin *bin = &hak_tls.bins[c];
            uint32_t n = hak_tbin_count(bin), allocs = ops[c], give = 0;
            /* idle: what the thread did while this class saw no alloc and no free */
            seen->idle[c] = allocs                                  ? 0
                            : seen->idle[c] + total < seen->idle[c] ? UINT32_MAX
                                                                    : seen->idle[c] + total;
            bool done = seen->idle[c] >= every && c != skip;
            if (done) {
                give = n;
            } else if (c != skip && total >= every && allocs < seen->count[c] &&
                       (uint16_t)HAK_BIN_CTR(bin, FLUSHES) == seen->flushes[c]) {
                /* low water: of the blocks cached then, these stayed at the
                 * bottom of the stack the whole time (a flush takes from the
                 * top, but down to a keep: it voids the bound) */
                uint32_t low = seen->count[c] - allocs < n ? seen->count[c] - allocs : n;
                give = low - low / 4;
            }
            if (give) give_back(h, bin, c, n, give, done);
            /* done: its empty spans go too, the last one as well, and the class
             * leaves the looks until its next refill or overflow */
            if (done) {
                uint32_t kept;
                hak_release_empty(h, c, &kept); /* the lock first: the purger may change the list */
                g->busy[c >> 6] &= ~(1ull << (c & 63));
            }
            seen->allocs[c] = (uint32_t)HAK_BIN_CTR(bin, ALLOCS);
            seen->frees[c] = (uint32_t)HAK_BIN_CTR(bin, FREES);
            seen->flushes[c] = (uint16_t)HAK_BIN_CTR(bin, FLUSHES);
            seen->count[c] = (uint16_t)hak_tbin_count(bin);
        }
}

#endif

void hak_tcache_look(hak_heap *h, int cls) {
    struct hak_tgc *g = &h->tgc;
    uint32_t every = (uint32_t)HAK_KNOB(TCACHE_GC);
#if HAK_COUNTERS
    /* the thread's own heap only: the starter heap refills through here too */
    if (!every || h != hak_tls.heap) {
        g->blocks = 0;
        return;
    }
    /* the history, at the first look (out of memory: no decay, ask again
     * after another period) */
    if (HAK_UNLIKELY(!g->seen) && !(g->seen = hak_heap_extra(sizeof(struct hak_tgc_seen)))) {
        g->blocks = 0;
        return;
    }
    if (!(g->busy[cls >> 6] >> (cls & 63) & 1)) {
        /* a class (re)starts: the program may have moved on from other
         * sizes. This look is their baseline and the next comes after a
         * sixteenth of the period, so a phase's classes go back while the next
         * phase's spans are still being carved (few slow paths between) */
        g->busy[cls >> 6] |= 1ull << (cls & 63);
        g->seen->idle[cls] = 0;
        g->blocks = every - every / 16;
    } else {
        g->blocks = 0;
    }
    look(h, cls, every);
#else
    g->blocks = 0, g->busy[0] = g->busy[1] = ~0ull; /* never looks: no fast-path counts to tell */
    (void)cls, (void)every;
#endif
}
