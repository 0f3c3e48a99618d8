/* hak_idle.c — memory that threads hold but do not use goes back: trims
 * (malloc_trim, trim requests, out-of-memory recovery: every heap answers
 * a trim epoch at its next slow path), the purge of every heap's due free
 * pages, the background purger's drain of idle heaps (their owners take
 * no slow path), and hak_heap_poll, every slow path's periodic work that
 * starts them. Takes the pool lock (hak_heap.c) only to walk the heaps or
 * take a pooled heap out; a heap's lock, by try-lock, to work in it. */
#include "hak_internal.h"

#include <time.h>

atomic_ullong hak_trim_epoch = 1;

/* This thread's part of a trim (and of out-of-memory recovery): every
 * cached block back to its span, remote frees drained, every empty span
 * given back (the classes' last partial ones too), free pages purged. The
 * heap answers the epoch in force (hak_heaps_unanswered). */
static void heap_give_back(hak_heap *h) {
    uint64_t e = atomic_load(&hak_trim_epoch);
    hak_tls.trim_epoch = e;
    for (int c = 0; c < HAK_NUM_CLASSES; c++) hak_flush(h, c, 0);
    hak_remote_drain(h);
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t kept;
        hak_release_empty(h, c, &kept);
    }
    hak_segment_purge(h, true);
    atomic_store_explicit(&h->trim_answered, e, memory_order_release);
}

/* Every slow path: knob changes, trim requests, timed purges. Cheap unless
 * something changed: two loads from the segment and a counter. */
void hak_heap_poll(hak_heap *h) {
    if (HAK_UNLIKELY(HAK_PUBLISH_PENDING())) hak_publish_poll();
    if (HAK_HEAP_UNBOUND(h)) hak_heap_publish_self(h);
    if (hak_shm) {
        if (HAK_UNLIKELY(HAK_SHM_LOAD(knob_gen) !=
                         __atomic_load_n(&hak_knob_gen_applied, __ATOMIC_ACQUIRE)))
            hak_knobs_reload();
        if (HAK_UNLIKELY(HAK_SHM_LOAD(trim_req) != HAK_SHM_LOAD(trim_done))) hak_trim_all();
    }
    if (HAK_UNLIKELY(hak_tls.knob_gen != __atomic_load_n(&hak_knob_gen_applied, __ATOMIC_ACQUIRE)))
        hak_knobs_apply_tls();
    if (HAK_UNLIKELY(hak_tls.trim_epoch !=
                     atomic_load_explicit(&hak_trim_epoch, memory_order_relaxed)))
        heap_give_back(h);
    uint32_t polls = h->polls + 1; /* the purger reads it: idle heaps (hak_heaps_drain_idle) */
    __atomic_store_n(&h->polls, polls, __ATOMIC_RELAXED);
    if ((polls & 63) == 0) {
        hak_purger_tick(h); /* may start the purger: nothing held, heap consistent */
        uint64_t now = hak_now_ns();
        if (hak_shm) {
            struct timespec ts;
            hak_clock(CLOCK_REALTIME, &ts);
            HAK_SHM_STORE(heartbeat_ns, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
            hak_knobs_lease_check(now);
        }
        if (now >= h->purge_ns) {
            uint64_t delay = (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 1000000ull;
            hak_segment_purge(h, false);
            if (HAK_KNOB(ADOPT)) hak_heap_reclaim_abandoned(false);
            hak_starter_tidy(false);
            hak_segment_cache_trim(false);
            hak_large_cache_trim(false);
            h->purge_ns = now + delay / 2;
        }
    }
}

/* malloc_trim, outside trim requests and out-of-memory recovery: this
 * thread does its part now, every other thread at its next slow path (trim
 * epoch). Returns the epoch raised. */
uint64_t hak_trim_all(void) {
    uint64_t e = atomic_fetch_add(&hak_trim_epoch, 1) + 1;
    hak_trim_release();
    if (hak_shm) HAK_SHM_STORE(trim_done, HAK_SHM_LOAD(trim_req));
    HAK_PROC_ADD(TRIMS, 1);
    return e;
}

/* A trim's work, for the epoch in force: this thread's part, abandoned
 * heaps, every heap's free pages, both caches. */
void hak_trim_release(void) {
    hak_heap *h = hak_tls.heap;
    if (h) {
        heap_give_back(h);
        hak_starter_tidy(true);
        for (int i = 0; i < 64; i++) /* bounded */
            if (!hak_heap_reclaim_abandoned(false)) break;
    }
    hak_heaps_purge_all(true); /* threads that sleep do not come to do their part */
    hak_segment_cache_trim(true);
    hak_large_cache_trim(true);
}

/* A trim epoch that a waiter gave up on (hak_oom.c): a live heap that has
 * not answered even that one has had no slow path since, and is not waited
 * for again until it answers something. */
static _Atomic uint64_t idle_epoch;

/* Whether a live heap other than this thread's has not yet answered epoch,
 * leaving out idle ones (above). Owners change under the pool lock. */
bool hak_heaps_unanswered(uint64_t epoch) {
    uint64_t idle = atomic_load_explicit(&idle_epoch, memory_order_relaxed);
    bool found = false;
    hak_lock(&hak_pool_lock);
    for (hak_heap *h = hak_all_heaps; h && !found; h = h->all_next) {
        uint64_t a = atomic_load_explicit(&h->trim_answered, memory_order_acquire);
        found = h->owner > 0 && h != hak_tls.heap && a < epoch && a >= idle;
    }
    hak_unlock(&hak_pool_lock);
    return found;
}

/* A wait for epoch timed out: whoever has not answered it counts as idle. */
void hak_heaps_mark_idle(uint64_t epoch) {
    uint64_t old = atomic_load_explicit(&idle_epoch, memory_order_relaxed);
    while (old < epoch) {
        if (atomic_compare_exchange_weak(&idle_epoch, &old, epoch)) break;
    }
}

/* The heap whose seg_lock a purge holds (for a fork child: such a lost
 * holder only purged; may be stale, a trim's, or a retired starter's). */
static hak_heap *_Atomic purging;
/* The heap the purger is draining (hak_heaps_drain_idle): stored once its
 * lock is held and before the drain's first write, cleared after its last
 * write and before the unlock. Only the purger thread writes it (a trim's
 * purge, which also sets `purging`, cannot clobber it). A fork child sees a
 * prefix of the purger's writes in their order (hak_fork.c), so a drain it
 * may see half done is one it sees here: hak_idle_leave_parent retires
 * that heap (hak_drain_lost) if the lock's holder was lost. */
static hak_heap *_Atomic draining;
hak_heap *hak_drain_lost;

/* Purges the due free pages of every heap, owned or abandoned, never
 * waiting for an owner (a retired heap whose thread died in a fork holding
 * its lock stays locked and is skipped). Heaps are never freed and all_next never changes after a
 * heap is linked, so the walk needs the pool lock only for the head. */
bool hak_heaps_purge_all(bool force) {
    hak_lock(&hak_pool_lock);
    hak_heap *h = hak_all_heaps;
    hak_unlock(&hak_pool_lock);
    bool left = false;
    for (; h; h = h->all_next) {
        atomic_store(&purging, h);
        left |= hak_segment_purge_try(h, force);
        atomic_store(&purging, NULL);
    }
    return left;
}

/* The purger's counts while it works in a heap (HAK_CTR): added to the
 * orphan slot after each heap (atomic adds: the owner may count meanwhile). */
static uint64_t bg_ctr[HAK_NUM_CSLOTS * HAK_NUM_CTRS] HAK_SPARSE_BSS("bg_ctr");

static void bg_ctr_flush(void) {
    for (int c = 0; c < HAK_NUM_CSLOTS; c++)
        for (int id = 0; id < HAK_NUM_CTRS; id++) {
            uint64_t *k = &bg_ctr[HAK_CTR_INDEX(c, id, HAK_NUM_CTRS)];
            if (*k) hak_orphan_add(c, id, *k);
            *k = 0;
        }
}

/* A heap idle for a purge delay, its lock held by the purger: remote
 * frees drained, every empty span given back, and its free pages purged at
 * once (a trim of the heap: an owner that slept through a purge delay is
 * not coming back for them soon, and what its remote frees returned has
 * waited since they came in). Every span list changes under the heap lock
 * (hak_span.c), so this is safe whether its owner sleeps or wakes up
 * meanwhile (it then waits for the lock); blocks in the owner's thread
 * cache count as used, so their spans stay, and their pages too. */
/* Tests only (t_fork_raw_drain): defined by a test program, called by the
 * purger half-way through an idle heap's drain with every span list of the
 * heap torn (heads pointing at no span, as an unlink lost half-way leaves
 * one), restored after; the test holds the purger there and forks. */
extern void hakmem_test_drain_hook(pid_t owner) __attribute__((weak));
#define HAK_TORN_SPAN ((hak_span *)(uintptr_t)0x18) /* faults when followed */

/* (cold text: lib/hak_cold.ld) */
HAK_COLD HAK_NOINLINE static void drain_hook_run(hak_heap *h) {
    hak_span *heads[HAK_NUM_CLASSES];
    for (int c = 0; c < HAK_NUM_CLASSES; c++)
        if ((heads[c] = h->partial[c]) != NULL) h->partial[c] = HAK_TORN_SPAN;
    hakmem_test_drain_hook(h->owner);
    for (int c = 0; c < HAK_NUM_CLASSES; c++)
        if (heads[c]) h->partial[c] = heads[c];
}

static void heap_idle_give_back(hak_heap *h, bool purge) {
    hak_remote_drain(h);
    if (HAK_UNLIKELY(hakmem_test_drain_hook != NULL)) drain_hook_run(h);
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t kept;
        hak_release_empty(h, c, &kept);
    }
    hak_heap_unpin(h); /* its kept spans just went too */
    if (purge) hak_segment_purge(h, true);
}

/* The background purger's look at heaps whose owner sleeps (or whose
 * thread exited: pooled): a heap with no slow path (hak_heap_poll) for a
 * purge delay gets its remote frees drained and its empty memory given back
 * (heap_idle_give_back), once per idle period, and again when remote frees
 * come in. Nobody else would: only a slow path drains, and a thread
 * waiting on a condition variable takes none (larson's main thread held
 * 1.08 MiB of blocks its workers freed). An owned heap is worked on under
 * its lock (try-lock: a busy owner is not idle); a pooled one is taken out
 * of the pool meanwhile. */
bool hak_heaps_drain_idle(void) {
    uint64_t now = hak_now_ns(), delay = hak_purge_delay_ns();
    hak_lock(&hak_pool_lock);
    hak_heap *h = hak_all_heaps;
    hak_unlock(&hak_pool_lock);
    bool left = false;
    /* HAK_CTR counts through the bins' rows (hak_ctr_row): the purger's
     * point at bg_ctr while it works, and are put back after */
    uint64_t *rows[HAK_NUM_CSLOTS];
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) rows[c] = hak_tls.bins[c].ctr;
    for (; h; h = h->all_next) {
        if (h->shared) continue; /* the starter: hak_starter_tidy */
        /* slow paths, and moves to and from its stashes (no poll) */
        uint32_t polls = __atomic_load_n(&h->polls, __ATOMIC_RELAXED) +
                         __atomic_load_n(&h->stash_ops, __ATOMIC_RELAXED);
        bool remote = atomic_load_explicit(&h->remote_spans, memory_order_relaxed) != NULL;
        if (polls != h->bg_polls || !h->bg_seen_ns) {
            h->bg_polls = polls, h->bg_seen_ns = now, h->bg_done = 0;
            left |= remote;
            continue;
        }
        if (h->bg_done == 2 && !remote) continue;
        /* half a delay: its remote frees drained, its empty spans given
         * back (their pages then go on the usual delay); a whole delay: all
         * of its free pages purged */
        bool full = now - h->bg_seen_ns >= delay;
        if (!full && (now - h->bg_seen_ns < delay / 2 || (h->bg_done == 1 && !remote))) {
            left = true;
            continue;
        }
        hak_lock(&hak_pool_lock);
        pid_t owner = h->owner;
        bool pooled = owner == 0 && hak_pool_take(h, INT_MAX), locked = false;
        if (owner > 0 || pooled) locked = hak_heap_trylock(h);
        hak_unlock(&hak_pool_lock);
        if (!locked) {
            if (pooled) {
                hak_lock(&hak_pool_lock);
                hak_pool_put(h);
                hak_unlock(&hak_pool_lock);
            }
            if (owner > 0 || pooled)
                left = true; /* busy: the next pass */
            else
                h->bg_done = 2; /* retired, or not in the pool (no memory, being taken) */
            continue;
        }
        atomic_store(&purging, h);
        atomic_store(&draining, h);
        for (int c = 0; c < HAK_NUM_CSLOTS; c++)
            hak_tls.bins[c].ctr = &bg_ctr[HAK_CTR_INDEX(c, 0, HAK_NUM_CTRS)];
        heap_idle_give_back(h, full);
        atomic_store(&draining, NULL);
        if (pooled) h->pool_run = hak_segment_free_run(h);
        hak_heap_unlock(h);
        atomic_store(&purging, NULL);
        for (int c = 0; c < HAK_NUM_CSLOTS; c++) hak_tls.bins[c].ctr = rows[c];
        bg_ctr_flush();
        if (pooled) {
            hak_lock(&hak_pool_lock);
            hak_pool_put(h);
            hak_unlock(&hak_pool_lock);
        }
        h->bg_done = full ? 2 : 1;
    }
    return left;
}

/* Fork child, our handler: the purger stayed in the parent, maybe holding
 * a seg_lock. A lost purge left the heap whole: the lock is freed. (A lost
 * drain's heap was retired by hak_heaps_leave_parent: its lock reads
 * retired and is left alone.) */
void hak_heaps_unlock_after_fork(void) {
    hak_heap *h = atomic_load(&purging);
    if (h && hak_lock_take_orphan(&h->seg_lock)) hak_heap_lock_reset(h);
    atomic_store(&purging, NULL);
}

/* A fork child (hak_heaps_leave_parent, one thread or under the pool
 * lock), after the rows: the purger lost half-way through a drain: that
 * heap's span lists may be half-updated. It is retired for good, its lock
 * too (a wait for it then fails loudly, never takes it over): a bounded
 * leak in the child. Its owner, if it came through the fork, takes a new
 * heap as it settles (hak_heap_after_fork_self), before its first lock. */
HAK_COLD void hak_idle_leave_parent(void) {
    hak_heap *d = atomic_load(&draining);
    hak_drain_lost = NULL; /* a grandchild's: its parent's is no heap in use */
    if (d && hak_lock_take_orphan(&d->seg_lock)) {
        d->owner = -1;
        d->lock_depth = 0;
        atomic_store_explicit(&d->lock_holder, NULL, memory_order_relaxed);
        hak_lock_retire(&d->seg_lock);
        hak_drain_lost = d;
    }
    atomic_store(&draining, NULL);
}
