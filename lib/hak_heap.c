/* hak_heap.c — heaps and threads: a heap per thread, taken from the pool at
 * the thread's first slow path and abandoned to the pool when it exits, so
 * the next thread takes over its memory (and the memory other threads freed
 * into it). The pool lock is the only lock here, taken on thread start/exit
 * and by adopt. Owns the thread's TLS, the list of every heap, the pools,
 * the arena that heap structs (and their rows) come from, and the heaps'
 * and pools' part of fork. A heap's counter rows: hak_rows.c; trims and
 * the purger's idle drains: hak_idle.c. */
#include "hak_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

__thread struct hak_tls hak_tls __attribute__((tls_model("initial-exec")));

hak_lock_t hak_pool_lock;
atomic_int hak_pinned_segs;
atomic_int hak_live_threads;     /* threads with a heap: private, unlike the segment's figure */
static hak_heap *pool_abandoned; /* heaps with memory, no owner */
static hak_heap *pool_free;      /* heaps with nothing, no owner */
hak_heap *hak_all_heaps;
atomic_int hak_abandoned_n; /* heaps in pool_abandoned */
/* heap structs, private counters, and what heaps make on first use:
 * under arena_lock, a leaf (taken under the pool lock and under a heap's) */
static hak_lock_t arena_lock;
static char *arena_cur, *arena_end;
static size_t arena_chunk = 32 << 10; /* the last chunk's size, doubled for the next */

/* align: a power of two, 8 at least (sizes rounded to it, up to 64).
 * Fresh memory from mmap, never reused: zeroed. Under arena_lock. */
static void *arena_carve(size_t n, size_t align) {
    size_t r = align < 64 ? align : 64;
    n = (n + r - 1) & ~(r - 1);
    char *at = (char *)(((uintptr_t)arena_cur + align - 1) & ~(uintptr_t)(align - 1));
    if (!arena_cur || at > arena_end || (size_t)(arena_end - at) < n) {
        /* 64 KiB first (a process of one thread), then twice the last, up
         * to 1 MiB: a pool of 1,000 threads' heaps (12 KiB each) in 16
         * mappings, not 200 (untouched address space costs nothing) */
        size_t chunk = arena_chunk < (1u << 20) ? (arena_chunk *= 2) : arena_chunk;
        if (chunk < n) chunk = n;
        char *p =
            hak_sys_mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        arena_end = p + chunk;
        at = p;
    }
    arena_cur = at + n;
    return at;
}

void *hak_arena_alloc_aligned(size_t n, size_t align) {
    hak_lock(&arena_lock);
    void *p = arena_carve(n, align);
    hak_unlock(&arena_lock);
    return p;
}

void *hak_arena_try_alloc_aligned(size_t n, size_t align) {
    if (!hak_trylock(&arena_lock)) return NULL;
    void *p = arena_carve(n, align);
    hak_unlock(&arena_lock);
    return p;
}

static void *arena_alloc(size_t n) {
    return hak_arena_alloc_aligned(n, 64);
}

void *hak_heap_extra(size_t n) {
    return arena_alloc(n);
}

/* An ownerless heap goes back to the pool: with memory to the abandoned
 * list (a new thread takes it over whole), without to the free list.
 * The caller holds the pool lock; pool_run was set while it owned h. */
void hak_pool_put(hak_heap *h) {
    if (h->segs) {
        h->pool_next = pool_abandoned;
        pool_abandoned = h;
        atomic_fetch_add(&hak_abandoned_n, 1);
    } else {
        h->pool_next = pool_free;
        pool_free = h;
    }
}

/* Every heap's lists until it carves: never written (read-only memory, so
 * a write through it faults at once), read by hak_refill and the walks.
 * In RELRO (read-only once relocated), whose page the loader writes anyway:
 * in .rodata its 480 bytes pushed the hot text over a page (t_fixed_rss). */
__attribute__((section(".data.rel.ro.hak_partial_none")))
hak_span *const hak_partial_none[HAK_NUM_CLASSES];

/* The heap's own lists, made before its first span goes on one (under
 * its lock, hak_span_alloc: the purger walks them under it too; the array
 * is all NULL either way, so a walk racing with the switch sees empty
 * lists). False: out of memory. */
bool hak_heap_partial_make(hak_heap *h) {
    if (h->partial != (hak_span **)hak_partial_none) return true;
    hak_span **p = arena_alloc(sizeof(hak_span *) * HAK_NUM_CLASSES);
    if (!p) return false;
    __atomic_store_n(&h->partial, p, __ATOMIC_RELEASE);
    return true;
}

/* A new heap; a shared one (the starter) never counts in the segment: it
 * counts nothing itself (the threads using it count in their own). */
static hak_heap *heap_new(bool shared) {
    /* the struct alone (64-byte aligned, six a page): its counters are
     * rows made as it counts, in the segment or private */
    hak_heap *h = arena_alloc(sizeof(hak_heap));
    if (!h) return NULL;
    memset(h, 0, sizeof(*h));
    h->partial = (hak_span **)hak_partial_none;
    h->shm_never = shared;
    /* rows in the segment when it exists, else private counters */
    hak_heap_bind_counters(h, false);
    h->all_next = hak_all_heaps;
    /* release: a fork child walks the list without the lock (its holder may
     * be lost), so a heap is linked only once complete */
    __atomic_store_n(&hak_all_heaps, h, __ATOMIC_RELEASE);
    HAK_PROC_ADD(HEAPS, 1);
    return h;
}

/* The starter heap (hak_starter.c): owned by no thread, in no pool; every
 * list of it under its lock, the purger's small classes too. */
hak_heap *hak_heap_new_shared(void) {
    hak_heap *h = heap_new(true);
    if (h) {
        h->shared = true;
        h->lock_small = true;
    }
    return h;
}

/* The calling thread owns h from now on (caller holds the pool lock). */
static void heap_own_locked(hak_heap *h) {
    h->owner = hak_self_tid(); /* cached by the pool lock's stamp: no gettid per thread */
    hak_heap_unpin(h);
    if (HAK_HEAP_UNBOUND(h)) hak_heap_bind_counters(h, false);
}

/* h's segments no longer count as held for its kept spans (an owner took
 * it, or the purger gave its empty spans back). */
void hak_heap_unpin(hak_heap *h) {
    if (!h->pinned) return;
    atomic_fetch_sub(&hak_pinned_segs, h->pinned);
    h->pinned = 0;
}

/* The calling thread, owner of h, starts using it. */
static void heap_attach(hak_heap *h) {
    hak_tls.heap = h;
    hak_tls.trim_epoch = atomic_load(&hak_trim_epoch);
    atomic_store_explicit(&h->trim_answered, hak_tls.trim_epoch, memory_order_relaxed);
    hak_knobs_apply_tls();
}

static HAK_NOINLINE hak_heap *heap_get_slow(hak_heap *want);

/* Every slow path's entry: the thread's heap, once the thread (or the
 * process, after a fork) has settled (hak_fork_check). */
hak_heap *hak_heap_get(void) {
    hak_heap *h = hak_tls.heap;
    if (HAK_LIKELY(h != NULL) &&
        HAK_LIKELY(hak_tls.settled ==
                   atomic_load_explicit(&HAK_FORKPAGE()->settled, memory_order_relaxed)))
        return h;
    return heap_get_slow(NULL);
}

/* A thread's first heap, taken at its first free, of a block of heap
 * `want`: the heap of the thread that handed it its blocks, its
 * predecessor (larson: a thread starts its successor, which inherits its
 * blocks, then exits). Taking that heap keeps the blocks the thread frees
 * and reuses its own, where another heap would leave them circulating in
 * this thread's cache while that heap's owner carves new blocks beside
 * them in the same spans, and cache lines, from another CPU (larson-lit:
 * 50-75 % of a thread's frees were of such blocks). A predecessor still on
 * its way out gets a few yields to put its heap in the pool. */
hak_heap *hak_heap_get_for(hak_heap *want) {
    if (hak_tls.heap || !want || !HAK_READY()) return hak_heap_get();
    hak_fork_check(); /* a raw fork child settles its locks first (heap_get_slow) */
    if (hak_tls.heap) return hak_heap_get();
    for (int i = 0;; i++) {
        hak_lock(&hak_pool_lock); /* owner changes under it */
        bool owned = want->owner > 0;
        hak_unlock(&hak_pool_lock);
        if (!owned || i == HAK_HEAP_WAIT_YIELDS) break;
        hak_sys_sched_yield();
    }
    return heap_get_slow(want);
}

/* Takes an ownerless heap out of the abandoned pool, looking at no more
 * than `max` entries (the caller then owns it, as an adopter does); false
 * if it is not there (being taken over). The pool lock held. */
bool hak_pool_take(hak_heap *h, int max) {
    hak_heap **pp = &pool_abandoned;
    for (int i = 0; *pp && i < max; i++, pp = &(*pp)->pool_next)
        if (*pp == h) {
            *pp = h->pool_next;
            atomic_fetch_sub(&hak_abandoned_n, 1);
            return true;
        }
    return false;
}

static hak_heap *heap_get_slow(hak_heap *want) {
    if (!HAK_READY()) hak_init();
    hak_fork_check(); /* a new thread, or the first slow path in a fork child */
    hak_heap *h = hak_tls.heap;
    if (h) return h;
    hak_lock(&hak_pool_lock);
    /* the wanted heap if it is in the pool, else the top */
    if (want && hak_pool_take(want, 64)) {
        h = want;
    } else if ((h = pool_abandoned) != NULL) {
        pool_abandoned = h->pool_next;
        atomic_fetch_sub(&hak_abandoned_n, 1);
    } else if ((h = pool_free) != NULL) {
        pool_free = h->pool_next;
    } else {
        h = heap_new(false);
    }
    if (h) heap_own_locked(h);
    hak_unlock(&hak_pool_lock);
    if (!h) return NULL;
    hak_starter_begin(h);
    HAK_PROC_ADD(THREADS, 1);
    atomic_fetch_add(&hak_live_threads, 1);
    heap_attach(h);
    /* may allocate (second-level key data): the heap is already in place */
    if (hak_tkey_ready) pthread_setspecific(hak_tkey, h);
    return h;
}

/* Every cached block of the thread back to its span, the big classes'
 * stores too (hak_flush with nothing kept), under one heap lock: flush_n
 * and the stores take it per class and call, and the holder's re-entry is
 * a depth count. Thread exit took 32 store and up to 60 flush lock pairs:
 * with release_empty's 60, 1/4 of hakmem's exit in larson-1t (callgrind).
 * Nothing here takes a lock the heap lock may not be held under: flush_n
 * and hak_span_release run under it anyway. */
static void leave_flush(hak_heap *h) {
    hak_heap_lock(h);
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_flush(h, c, 0);
        hak_tls.bins[c].cap = hak_tls.bins[c].room = 0;
    }
    hak_heap_unlock(h);
}

/* The segments h holds (its owner's, or under its lock). */
static int heap_seg_count(const hak_heap *h) {
    int n = 0;
    for (const hak_segment *s = h->segs; s; s = s->next) n++;
    return n;
}

/* The calling thread gives its heap up: every cached block back, remote
 * frees drained, empty spans released; the heap goes to the pool with the
 * rest, for the next thread (or one out of memory, hak_heap_swap). */
static void heap_leave(hak_heap *h, bool help) {
    if (HAK_HEAP_UNBOUND(h)) hak_heap_publish_self(h);
    leave_flush(h);
    hak_remote_drain(h);
    hak_starter_tidy(false); /* the blocks it took from the starter, just flushed there */
    bool warm = hak_heap_holds_blocks(h);
    /* every class keeps its page(s) (hak_release_empty_reset), and the heap
     * its segments: only for an owner that filled a segment at its peak
     * (its successor will fill these again), and while empty segments are
     * not piling up (threads come and go; not all of them leaving at once,
     * with nobody to come): the cached segments, the pinned ones and these
     * within the cache's knob, so idle segments stay as bounded as the cache
     * alone bounds them (half the knob: thread_bins 24.66 MiB against 24.28,
     * 50 runs) */
    hak_heap_lock(h); /* once, not per class (leave_flush) */
    int nsegs = heap_seg_count(h);
    /* this owner's peak: pages_peak is its own once it took a span
     * (hak_span_alloc), else what it found kept (pages_now) */
    uint32_t peak = h->pages_tid == h->owner ? h->pages_peak : h->pages_now;
    bool keep = !warm && (int)peak >= HAK_SEG_PAGES - 1 &&
                hak_segment_cached() + atomic_load(&hak_pinned_segs) + nsegs <= HAK_KNOB(SEG_CACHE);
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t kept = 0;
        if (warm)
            hak_release_empty_warm(h, c, &kept);
        else if (keep)
            hak_release_empty_reset(h, c, &kept);
        else
            hak_release_empty(h, c, &kept);
        if (kept) HAK_CTR(c, PUBLISHED) += kept; /* untouched rows stay unwritten */
    }
    if (keep) { /* the segments a kept span holds (the others went to the cache) */
        nsegs = heap_seg_count(h);
        h->pinned = (uint16_t)nsegs; /* <= the knob, at most 256 */
        atomic_fetch_add(&hak_pinned_segs, nsegs);
    }
    hak_heap_unlock(h);
    /* no forced purge: the next thread to take this heap reuses its free
     * pages warm; the purge delay (or the background purger) returns them */
    hak_segment_purge(h, false);
    hak_purger_thread_exit(h);
    /* help drain what other exited threads left, while we are on a slow path */
    if (help && HAK_KNOB(ADOPT)) hak_heap_reclaim_abandoned(true);
    hak_heap_lock(h); /* the masks: the purger may be giving back spans of ours */
    h->pool_run = hak_segment_free_run(h);
    hak_heap_unlock(h);
    hak_lock(&hak_pool_lock);
    h->owner = 0;
    hak_pool_put(h);
    hak_unlock(&hak_pool_lock);
    hak_tls.heap = NULL;
}

/* Thread exit: the heap goes to the pool for the next thread. */
void hak_thread_exit(void *arg) {
    hak_heap *h = hak_tls.heap;
    if (!h) return;
    heap_leave(h, true);
    HAK_PROC_SUB(THREADS, 1);
    atomic_fetch_sub(&hak_live_threads, 1);
    hak_tls.exited = 1;
    (void)arg;
}

/* Out of memory in h for class cls: an abandoned heap whose segments have
 * room for a span of cls, or a partial span of it, serves this thread from
 * now on, and h goes to the pool. Free pages that a few live blocks keep in
 * a dead thread's segments are only usable this way: nobody else may carve
 * them, and their segments cannot be given back. Returns the new heap, or
 * NULL (none has room; h stays). */
hak_heap *hak_heap_swap(hak_heap *h, int cls) {
    if (atomic_load_explicit(&hak_abandoned_n, memory_order_relaxed) == 0) return NULL;
    int need = hak_span_min_pages(cls);
    hak_lock(&hak_pool_lock);
    hak_heap *a = NULL, **pp = &pool_abandoned;
    for (int i = 0; *pp && i < 64; i++, pp = &(*pp)->pool_next) {
        if ((*pp)->partial[cls] || (*pp)->pool_run >= need) {
            a = *pp;
            *pp = a->pool_next;
            atomic_fetch_sub(&hak_abandoned_n, 1);
            heap_own_locked(a);
            break;
        }
    }
    hak_unlock(&hak_pool_lock);
    if (!a) return NULL;
    heap_leave(h, false);
    heap_attach(a);
    HAK_PROBE2(heap_swap, h, a);
    return a;
}

/* Adopt: take one abandoned heap that has remote frees waiting, drain them
 * and give back every span that became empty. Memory other threads freed
 * into a dead thread's heap is reused without waiting for a new thread. */
bool hak_heap_adopt_one(bool warm) {
    hak_lock(&hak_pool_lock);
    hak_heap *a = NULL, **pp = &pool_abandoned;
    for (int i = 0; *pp && i < 8; i++, pp = &(*pp)->pool_next) {
        if (atomic_load_explicit(&(*pp)->remote_spans, memory_order_relaxed)) {
            a = *pp;
            *pp = a->pool_next;
            atomic_fetch_sub(&hak_abandoned_n, 1);
            break;
        }
    }
    hak_unlock(&hak_pool_lock);
    if (!a) return false;
    hak_remote_drain(a); /* we own `a` now: it is in no pool */
    warm = warm && hak_heap_holds_blocks(a);
    uint32_t released = 0, kept;
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t n = warm ? hak_release_empty_warm(a, c, &kept) : hak_release_empty(a, c, &kept);
        if (n) HAK_CTR(c, ADOPTED) += n;
        released += n;
    }
    hak_heap_unpin(a);           /* its kept spans went too */
    hak_segment_purge(a, false); /* its free pages go back to the OS on the usual delay */
    HAK_PROBE2(adopt, a, released);
    a->pool_run = hak_segment_free_run(a);
    hak_lock(&hak_pool_lock);
    hak_pool_put(a);
    hak_unlock(&hak_pool_lock);
    return released != 0;
}

/* Fork child, the pool lock's holder lost half-way (hak_fork.c): the pools
 * may be broken. Forget them: the pooled heaps stay out of use with their
 * memory (a bounded leak in the child), hak_all_heaps is whole (linked last,
 * see heap_new). The arena's holder lost: its tail may be broken, the next
 * allocation maps a new chunk. */
void hak_pool_after_fork(void) {
    if (hak_lock_take_orphan(&arena_lock)) {
        arena_cur = arena_end = NULL;
        hak_unlock(&arena_lock);
    }
    if (!hak_lock_take_orphan(&hak_pool_lock)) return;
    pool_abandoned = pool_free = NULL;
    atomic_store(&hak_abandoned_n, 0);
    atomic_store(&hak_pinned_segs, 0); /* the pooled heaps stay out of use */
    hak_unlock(&hak_pool_lock);
}

/* A fork child (of any kind) counts afresh: orphan counts, and every heap
 * in its own memory: a heap that counted in the parent's segment gets
 * private counters (the parent's range reads as zero pages by now,
 * hak_publish_after_fork, where a stale pointer of a retired heap or of a
 * thread not yet settled may still count), the others are zeroed in place.
 * No thread counts as live until it settles (hak_heap_after_fork_self). In
 * a raw fork child threads it started may run (they settle after this, but
 * the forking thread may be anywhere): then under the pool lock. */
HAK_COLD void hak_heaps_leave_parent(bool others_run) {
    if (others_run) hak_lock(&hak_pool_lock);
    hak_rows_leave_parent(); /* orphan counts and every heap's rows */
    HAK_PROC_PTR()[HAK_PROC_THREADS] = 0;
    atomic_store(&hak_live_threads, 0);
    hak_idle_leave_parent(); /* a drain the purger lost half-way */
    if (others_run) hak_unlock(&hak_pool_lock);
}

/* This thread came through a fork (hak_fork_settle): its heap is its own
 * under its tid here, counts where the heap now does, and it lives. Only
 * the bins' rows change here: the fork may come from a signal handler
 * that interrupted this thread's fast path or a flush half-way, and the
 * interrupted code writes its room back when the handler returns; caps
 * rewritten under it made room exceed cap (a count of -1: the next flush
 * walked 4 G blocks, t_fork_signal), and a flush here would take the
 * heap's lock the interrupted code may hold. The next slow path loads the
 * caps (a stale knob generation). */
HAK_COLD void hak_heap_after_fork_self(void) {
    hak_heap *me = hak_tls.heap;
    if (!me) return;
    if (me == hak_drain_lost) {
        /* its drain was lost half-way (hak_heaps_leave_parent): this slow
         * path takes a new heap (or the pool's). The blocks in the thread's
         * cache stay there, usable: their spans are whole (a cached block
         * counts as used, so no drain gives its span back, and the drain
         * never touches its memory), and a flush sends each one to the
         * retired heap as a remote free (lock-free: its segment is not the
         * new heap's), where it stays, leaked with the heap. */
        hak_tls.heap = NULL;
        return;
    }
    __atomic_store_n(&me->owner, hak_tid_refresh(), __ATOMIC_RELAXED);
    hak_bins_rebind_rows(); /* the bins count in the heap's fresh rows from here */
    hak_tls.knob_gen = HAK_KNOB_GEN_STALE;
    HAK_PROC_ADD(THREADS, 1);
    atomic_fetch_add(&hak_live_threads, 1);
}

/* Fork child, our handler: only this thread survives. The heaps of the
 * other live threads may have been in the middle of an update (their
 * owners take no lock), so they are retired, never reused: a bounded leak
 * in the child, which usually execs anyway. Pooled heaps are whole (or the
 * pools were forgotten, hak_pool_after_fork) and stay. (A raw fork child
 * cannot tell the forking thread's heap from the lost ones' before that
 * thread settles: there they keep their owners, never pooled either.) */
HAK_COLD void hak_heaps_after_fork(bool child) {
    if (!child) return;
    hak_heap *me = hak_tls.heap;
    for (hak_heap *h = __atomic_load_n(&hak_all_heaps, __ATOMIC_ACQUIRE); h; h = h->all_next)
        if (h != me && h->owner > 0) h->owner = -1; /* retired with its thread */
}
