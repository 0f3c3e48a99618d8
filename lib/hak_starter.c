/* hak_starter.c — the starter heap: where a new thread's first blocks come
 * from.
 *
 * A heap that carves spans of its own claims a 4 MiB segment (address
 * space) and writes at least one OS page per class it touches: a pool of
 * hundreds of mostly idle threads holding a few blocks each paid that per
 * thread. So a thread that takes a heap with no memory (a fresh one, while
 * many threads live) first refills its thread cache from one shared
 * heap, the starter, under the starter's lock, until it has taken
 * HAK_STARTER_BYTES; only then does its own heap carve spans. Busy threads
 * pass through in a few refills; idle ones share the starter's spans.
 *
 * The starter has no owner. Every change to its spans, partial lists and
 * segments happens under its seg_lock (recursive for the holder: hak_refill
 * and hak_span_alloc take it again). Its blocks are never a thread's own
 * (their segment's heap is the starter): a thread frees them as remote
 * frees, which wait on the starter's remote_spans stack until a starter
 * refill or a tidy (thread exit, the periodic poll, trim) drains them under
 * the lock. The purger may purge it, small classes too (lock_small). The
 * malloc/free fast path does not know it exists.
 */
#include "hak_internal.h"

/* Enough for a few blocks of every small class at the refills' slow start;
 * a busy thread passes it within its first refills. */
#define HAK_STARTER_BYTES (64u << 10)

/* read at every thread exit (hak_starter_tidy), in programs that never
 * make a starter too: in .data's page, which the loader writes anyway (in
 * .bss it was alone in the section's last page, one more fault in a
 * program whose threads exit: xthread) */
static hak_heap *_Atomic starter HAK_LOADED_PAGE;

static hak_heap *starter_get(void) {
    hak_heap *s = atomic_load_explicit(&starter, memory_order_acquire);
    if (HAK_LIKELY(s != NULL)) return s;
    hak_lock(&hak_pool_lock);
    s = atomic_load_explicit(&starter, memory_order_relaxed);
    if (!s && (s = hak_heap_new_shared()) != NULL)
        atomic_store_explicit(&starter, s, memory_order_release);
    hak_unlock(&hak_pool_lock);
    return s;
}

/* The starter, locked (NULL: none can be made). A fork child may retire it
 * while this thread waits for its lock (hak_starter_after_fork, run by the
 * wait itself when the holder was lost): then the next one. */
static hak_heap *starter_lock(void) {
    hak_heap *s;
    while ((s = starter_get()) != NULL && !hak_heap_lock(s)) {
    }
    return s;
}

/* A heap with memory uses it. A fresh one starts on the starter once
 * starter_threads threads live (by default 1 per CPU the process may run
 * on, at least 2: hak_knob_default): the first threads, likely busy, carve
 * their own at once; past them, a new thread of a pool is likely idle. A
 * heap gets its budget once, at its first owner: its next owners (threads
 * that come and go, larson's successors) spend what is left, and then the
 * heap carves. With the budget given again to every owner, larson-4t's
 * heaps, passed on every ~1,000 steps, never left the starter (every thread
 * on it: -9 % per CPU-second), which is why the threshold was 4 per CPU, at
 * least 8, whose first 7 threads of many_threads then claimed a segment
 * each (+28 MiB of address space, docs/allocator.md "Round four"). With
 * the budget once a heap, 2 instead of 8 costs larson-lit-2t and larson-4t
 * under +0.1 % instructions a step (1: larson-lit-2t +0.4 %, and xthread's
 * producer took the starter's pages too, +25 faults). A thread that finds an
 * empty segment cached carves its own too (threads that come and go: the
 * segment a thread gave back at exit is warm, and costs no new address
 * space). */
void hak_starter_begin(hak_heap *h) {
    if (h->starter_begun) { /* a budget left over from the heap's last owner */
        if (h->segs || hak_segment_cached()) h->starter_bytes = 0;
        return;
    }
    h->starter_begun = true;
    bool fresh = !h->segs &&
                 atomic_load_explicit(&hak_live_threads, memory_order_relaxed) >=
                     HAK_KNOB(STARTER_THREADS) &&
                 hak_segment_cached() == 0;
    h->starter_bytes = fresh ? HAK_STARTER_BYTES : 0;
}

/* hak_refill for a heap still in its start: the blocks come from the
 * starter's spans. Past the budget (or if the starter has no memory), the
 * heap's own refill from now on. */
bool hak_starter_refill(hak_heap *h, int cls) {
    hak_heap *s = starter_lock();
    bool ok = false;
    if (s) {
        struct hak_tbin *bin = &hak_tls.bins[cls];
        uint64_t before = HAK_CTR(cls, REFILL_BLOCKS); /* the thread's counters */
        /* a slower start than refill's (1, 1, 1, 1, 2, 4, ... 16 blocks,
         * through the room refill sees): an idle thread holds what it asked
         * for. With 1, 2, 4, ... a pool thread of 12 blocks of 16-1024 B
         * cached 1.7 KiB it never used (the big classes are the likely
         * ones to see a second block: many_threads, docs/allocator.md) */
        uint64_t nth = HAK_CTR(cls, REFILLS);
        uint32_t lim = nth < 4 ? 1 : nth < 8 ? 1u << (nth - 3) : bin->room;
        uint32_t held_back = bin->room > lim ? bin->room - lim : 0;
        bin->room -= held_back;
        ok = hak_refill(s, cls); /* s->starter_bytes is 0: the ordinary refill */
        hak_heap_unlock(s);
        bin->room += held_back;
        uint64_t bytes = (HAK_CTR(cls, REFILL_BLOCKS) - before) * hak_class_size[cls];
        h->starter_bytes = bytes < h->starter_bytes ? h->starter_bytes - (uint32_t)bytes : 0;
    }
    if (ok) return true;
    h->starter_bytes = 0;
    return hak_refill(h, cls);
}

/* Drains the frees waiting at the starter, so that its emptied spans go
 * back (each class's last one too if `all`: a trim). The caller has a heap
 * (its counters count the work); a try-lock: a holder is refilling, and
 * drains as it goes. */
void hak_starter_tidy(bool all) {
    hak_heap *s = atomic_load_explicit(&starter, memory_order_acquire);
    if (!s || (!all && !atomic_load_explicit(&s->remote_spans, memory_order_relaxed))) return;
    if (!hak_heap_trylock(s)) return;
    hak_remote_drain(s);
    for (int c = 0; all && c < HAK_NUM_CLASSES; c++) {
        uint32_t kept;
        hak_release_empty(s, c, &kept);
    }
    hak_heap_unlock(s);
}

/* Fork child: a starter whose lock a lost thread held may be half-updated.
 * It is retired, its lock too (nobody walks it: a bounded leak in the
 * child; a thread waiting for it takes the next, starter_lock), and a new
 * one is made when a thread needs it. Unpublished first, so that a waiter
 * that sees the lock retired finds the starter gone. */
void hak_starter_after_fork(void) {
    hak_heap *s = atomic_load_explicit(&starter, memory_order_acquire);
    if (s && hak_lock_take_orphan(&s->seg_lock)) {
        s->owner = -1;
        atomic_store_explicit(&starter, NULL, memory_order_release);
        /* the lost holder's &hak_tls may be a new thread's (a reused stack) */
        atomic_store_explicit(&s->lock_holder, NULL, memory_order_relaxed);
        hak_lock_retire(&s->seg_lock);
    }
}
