/* hak_span.c — moving blocks between thread caches and spans: refill, flush,
 * local free, remote free (lock-free MPSC push) and the owner's drain. */
#include "hak_internal.h"

#include <string.h>

static void partial_push(hak_heap *h, hak_span *s) {
    s->prev = NULL;
    s->next = h->partial[s->cls];
    if (s->next) s->next->prev = s;
    h->partial[s->cls] = s;
    s->in_partial = 1;
}

static void partial_remove(hak_heap *h, hak_span *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        h->partial[s->cls] = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->in_partial = 0;
}

/* A span that may have become empty or non-full: keep the partial list
 * right, and give the span back when empty unless it is the class's last
 * partial span (which would only be carved again at the next refill). */
static void span_settle(hak_heap *h, hak_span *s, bool keep_last) {
    if (!s->in_partial) partial_push(h, s);
    if (s->used == 0 && !(keep_last && h->partial[s->cls] == s && s->next == NULL)) {
        partial_remove(h, s);
        hak_span_release(h, s);
    }
}

/* Gives back every empty span of the class, the last one too (the heap is
 * going to the pool or being reclaimed). Returns how many; *kept gets the
 * number of spans left because blocks are still out. */
/* Classes whose blocks freed to a span are stamped for the purge (see
 * hak_span_purge_free): big classes always, all classes while a solo
 * purger may purge this thread's small spans too (hak_tls.lock_small: set
 * and cleared only by this thread, between span operations). Locking is
 * no longer per class: SPAN_LOCK below. */
static inline bool big_cls(int cls) {
    return cls >= HAK_PURGE_CLS_MIN || HAK_UNLIKELY(hak_tls.lock_small);
}
/* Every class's span lists and free lists change under the heap lock (an
 * uncontended lock per refill, flush or drain: a slow path of many blocks),
 * so the background purger may drain the remote frees of a heap whose owner
 * sleeps and give back its spans that emptied (hak_heap_drain_idle). */
#define SPAN_LOCK(h) hak_heap_lock(h)
#define SPAN_UNLOCK(h) hak_heap_unlock(h)

/* Prefetch for the carve's writes. __builtin_prefetch for write, built
 * without -mprfchw: prefetcht0, which every x86-64 has. prefetchw (the
 * line fetched exclusive) is not on every x86-64 (CPUID 0x80000001 ECX bit
 * 8), and the CPUID gate that chose it made GCC duplicate the carve loop,
 * 185 bytes that put the hot segment back on its 12th page; it timed the
 * same (thread_churn 30 4 14 40 128 1, bench/ab_rate.py, 11 runs: 561
 * against 557 per CPU-second): a line nobody else caches comes exclusive
 * on a read miss anyway, and a carve's fresh lines are such lines. */
#define HAK_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)

/* Blocks went onto s->free under the heap lock: due for a purge later.
 * A big class's block carries the time in its stamp (hak_block_stamp), so
 * the purge takes only what has been free for the purge delay; the span's
 * free_dirty_ns is the oldest stamp not purged yet. */
static inline void free_dirty(hak_span *s, hak_block *list, uint32_t n, uint64_t now) {
    if (s->cls >= HAK_PURGE_CLS_MIN)
        for (hak_block *b = list; n--; b = b->next) *hak_block_stamp(b) = now;
    if (!s->free_dirty_ns) s->free_dirty_ns = now;
}

static uint32_t release_empty(hak_heap *h, int cls, uint32_t *kept, bool warm, bool reset) {
    uint32_t released = 0;
    hak_span *keep = NULL; /* warm: the empty span carved furthest */
    *kept = 0;
    SPAN_LOCK(h);
    for (hak_span *s = h->partial[cls], *next; s; s = next) {
        next = s->next;
        if (s->used != 0) {
            (*kept)++;
            continue;
        }
        if (warm && (!keep || s->carved > keep->carved)) {
            hak_span *t = keep;
            keep = s;
            if (!t) continue;
            s = t;
        }
        partial_remove(h, s);
        hak_span_release(h, s);
        released++;
    }
    /* it goes if the class has other spans to refill from; reset (home):
     * the class's only span stays if it has no purged OS pages (its blocks
     * there would need listing again, hak_span_unpurge) */
    if (keep && (*kept || (reset && hak_span_purged(keep)))) {
        partial_remove(h, keep);
        hak_span_release(h, keep);
        released++;
    } else if (keep && reset) {
        /* carved again from its start, in address order, over the OS pages
         * the last carve wrote; its old free list is dropped unwalked
         * (every block on it is free: used is 0, no remote list) */
        keep->free = NULL;
        keep->carved = 0;
        keep->free_dirty_ns = 0;
    }
    SPAN_UNLOCK(h);
    return released;
}

uint32_t hak_release_empty(hak_heap *h, int cls, uint32_t *kept) {
    return release_empty(h, cls, kept, false, false);
}

uint32_t hak_release_empty_reset(hak_heap *h, int cls, uint32_t *kept) {
    return release_empty(h, cls, kept, true, true);
}

/* Whether h holds blocks out (live, or cached or queued by other threads)
 * in at least HAK_WARM_SPANS of its spans. Its owner asks, before it
 * releases its empty spans. */
bool hak_heap_holds_blocks(hak_heap *h) {
    int spans = 0;
    hak_heap_lock(h); /* the masks: the background purger writes them */
    for (hak_segment *seg = h->segs; seg && spans < HAK_WARM_SPANS; seg = seg->next) {
        uint64_t m = seg->used_mask & ~1ull; /* bit 0: the header page */
        while (m && spans < HAK_WARM_SPANS) {
            int i = __builtin_ctzll(m);
            const hak_span *s = &seg->pages[i];
            spans += s->used != 0;
            int n = s->head_off || !s->pages ? 1 : s->pages;
            m &= ~((n >= 64 ? ~0ull : (1ull << n) - 1) << i);
        }
    }
    hak_heap_unlock(h);
    return spans >= HAK_WARM_SPANS;
}

/* As hak_release_empty, but a class left with no span that has blocks out
 * keeps its empty span carved furthest (hak_release_empty_warm in
 * hak_internal.h says why). */
uint32_t hak_release_empty_warm(hak_heap *h, int cls, uint32_t *kept) {
    return release_empty(h, cls, kept, true, false);
}

/* Refill took k listed blocks of a big class from first on: those the
 * purge returned fault back in (the refault count feeds the purge delay). */
static void taken_purged(hak_block *first, uint32_t k, uint32_t size) {
    uint64_t n = 0;
    for (hak_block *b = first; k--; b = b->next) n += *hak_block_stamp(b) == HAK_STAMP_PURGED;
    if (n) HAK_PROC_ADD(REFAULT_BYTES, n * size);
}

bool hak_refill(hak_heap *h, int cls) {
    struct hak_tbin *bin = &hak_tls.bins[cls];
    if (HAK_UNLIKELY(!(bin->refilled & HAK_TBIN_EVER))) {
        /* the thread's first refill of the class: it mallocs it, so a
         * default cap that started low (hak_tbin_cap_start) goes to the knob */
        uint32_t knob = (uint32_t)HAK_KNOB_CLS(FAST_CAP, cls);
        if (bin->cap && bin->cap < knob && bin->cap_max > bin->cap) {
            bin->room += knob - bin->cap;
            bin->cap = knob;
        }
        bin->refilled |= HAK_TBIN_EVER;
    }
    if (HAK_UNLIKELY(h->starter_bytes)) return hak_starter_refill(h, cls); /* a new thread */
    uint32_t want = (uint32_t)HAK_KNOB_CLS(REFILL_COUNT, cls);
    /* slow start: a heap's first refills of a class carve 2, 4, 8, ...
     * blocks, so a thread that uses a few blocks of many classes (a pool of
     * mostly idle threads) does not write (fault in) a full batch of each */
    uint64_t nth = HAK_CTR(cls, REFILLS);
    if (nth < 5 && want > 2u << nth) want = 2u << nth;
    /* and blocks of a page or more start with one: the second's link would
     * be the first write to a page of its own, which a program with one
     * stdio buffer (4 KiB: every row's printf) never uses */
    if (nth == 0 && hak_class_size[cls] >= HAK_OS_PAGE) want = 1;
    if (want > bin->room) want = bin->room;
    if (want == 0) want = 1; /* cap 0 (safe-free mode): one block at a time */
    /* Listed blocks (flushed or drained back: written already) are taken up
     * to want; fresh ones carved up to want too, but only a quarter of it
     * unless the last refill too found nothing listed (HAK_TBIN_DRY: the
     * thread grows): what a producer carves when it runs dry is what
     * circulates, and most of it is on its way back. xthread's producer
     * carved 254 blocks of each class where about 190 circulate. */
    const uint32_t listed_max = want;
    uint32_t dry = 0;
    if (!(bin->refilled & HAK_TBIN_DRY) && nth >= 5) want = (want + 3) / 4;
    SPAN_LOCK(h);

    if (++h->refills_since_drain >= HAK_KNOB(DRAIN_INTERVAL) || !h->partial[cls]) {
        h->refills_since_drain = 0;
        if (atomic_load_explicit(&h->remote_spans, memory_order_relaxed)) hak_remote_drain(h);
    }
    size_t size = hak_class_size[cls];
    uint32_t got = 0;
    hak_block *head = bin->head;
    /* the store first: blocks flushed whole, up to half a cache in one go
     * (the flush moved that many there) */
    if (cls >= HAK_PURGE_CLS_MIN)
        got = hak_store_take(h, cls, bin->room / 2 > want ? bin->room / 2 : want, &head);
    while (got < want) {
        hak_span *s = h->partial[cls];
        if (!s) {
            if (got) break;
            /* the adoption links the adopted heap's spans into h (this
             * thread's heap): cppcheck cannot see h->partial change */
            // cppcheck-suppress knownConditionTrueFalse
            if (HAK_KNOB(ADOPT) && hak_heap_reclaim_abandoned(true) && h->partial[cls]) continue;
            s = hak_span_alloc(h, cls);
            if (!s) break;
            partial_push(h, s);
        }
        if (!s->free && HAK_UNLIKELY(hak_span_purged(s))) hak_span_unpurge(s, want - got + 1);
        if (s->free) { /* a prefix of the span's free list, as it is: one walk to the cut */
            hak_block *first = s->free, *last = first, *nx;
            uint32_t k = 1, need = listed_max - got;
            for (; k < need && (nx = last->next) != NULL; k++) last = nx;
            if (HAK_UNLIKELY(cls >= HAK_PURGE_CLS_MIN)) taken_purged(first, k, (uint32_t)size);
            s->free = last->next;
            last->next = head;
            head = first;
            got += k;
            s->used += k;
            dry = 0;
        }
        if (got < want && s->carved < s->capacity) {
            uint32_t n = want - got;
            dry = HAK_TBIN_DRY;
            if (n > s->capacity - s->carved) n = s->capacity - s->carved;
            /* lowest address ends up first; the key in a register (a store
             * through b may alias the global, which would be read again) */
            const uintptr_t key = hak_key;
            char *base = hak_span_base(s) + hak_cls_span_color(s, cls) + (size_t)s->carved * size;
            /* each block links to the one above, the top block to the bin's
             * list: pairs after an odd one, 4.5 instructions a block, not 6.
             * The first writes to a span's lines miss (the carve was 14-17 %
             * of thread_churn's CPU samples, nearly all on its stores), and
             * so do the program's first writes past a block's first line.
             * So the carve goes in ascending address order, as malloc hands
             * the blocks out and the hardware prefetchers follow, and each
             * pair asks, for write, for the first two lines of the two blocks
             * `ahead` above (all lines of blocks up to 128 B): those of the
             * next carve of this span, whose misses then overlap the
             * program's work until that refill instead of stalling it. Two
             * instructions a block. docs/allocator.md, "thread_churn: the
             * carve's write misses" */
            char *p = base, *top = base + (size_t)(n - 1) * size;
            const size_t ahead = s->carved + 2 * n <= s->capacity ? (size_t)n * size : 0;
            if ((n - 1) & 1) {
                ((hak_block *)p)->next = (hak_block *)(p + size);
                ((hak_block *)p)->key = key;
                p += size;
            }
            for (; p != top; p += 2 * size) {
                hak_block *lo = (hak_block *)p, *hi = (hak_block *)(p + size);
                HAK_PREFETCH_W(p + ahead);
                HAK_PREFETCH_W(p + ahead + 64);
                HAK_PREFETCH_W(p + ahead + size);
                HAK_PREFETCH_W(p + ahead + size + 64);
                lo->next = hi;
                lo->key = key;
                hi->next = (hak_block *)(p + 2 * size);
                hi->key = key;
            }
            ((hak_block *)top)->next = head;
            ((hak_block *)top)->key = key;
            head = (hak_block *)base;
            s->carved += n;
            s->used += n;
            got += n;
        }
        /* full: nothing listed, nothing to carve, no purged free blocks
         * (those are listed again by the next round of this loop) */
        if (!s->free && s->carved == s->capacity && !hak_span_purged(s)) partial_remove(h, s);
    }
    bin->head = head;
    bin->room = bin->room > got ? bin->room - got : 0; /* cap 0: the block goes out at once */
    bin->refilled = (bin->refilled & HAK_TBIN_MIXED) | HAK_TBIN_REFILLED | HAK_TBIN_EVER | dry;
    SPAN_UNLOCK(h);
    HAK_CTR(cls, REFILLS)++;
    HAK_CTR(cls, REFILL_BLOCKS) += got;
    HAK_PROBE2(refill, cls, got);
    hak_tcache_event(h, cls, got); /* the other bins' decay, on this slow path */
    return got > 0;
}

/* Puts the chain first..last (n blocks of span s, ours) on the span's free
 * list; settles the span once. A big class's blocks are stamped `now` (0:
 * read the clock here; a flush reads it once for all its runs). */
static void local_push(hak_heap *h, hak_span *s, hak_block *first, hak_block *last, uint32_t n,
                       uint64_t now) {
    SPAN_LOCK(h); /* recursive: a flush holds it already */
    if (HAK_UNLIKELY(big_cls(s->cls))) free_dirty(s, first, n, now ? now : hak_coarse_ns());
    last->next = s->free;
    s->free = first;
    s->used -= n;
    span_settle(h, s, true);
    SPAN_UNLOCK(h);
}

void hak_free_to_span(hak_heap *h, hak_span *s, hak_block *b) {
    local_push(h, s, b, b, 1, 0);
}

/* A block of h's store back on its span's free list (hak_store_purge), the
 * heap lock held: stamped with the time it has been idle since, the span
 * listed as partial; nothing counted, nothing released (the caller may be
 * the purger, which has no counters). */
void hak_span_take_back(hak_heap *h, hak_block *b, uint64_t stamp) {
    hak_span *s = hak_span_of(hak_seg_of(b), b);
    b->next = s->free;
    s->free = b;
    s->used--;
    *hak_block_stamp(b) = stamp;
    if (!s->free_dirty_ns || s->free_dirty_ns > stamp) s->free_dirty_ns = stamp;
    if (!s->in_partial) partial_push(h, s);
}

/* ---- remote frees ----
 * span->remote is one word: the head of the span's remote list in its low
 * HAK_ADDR_BITS bits and the number of blocks on the list above them. A
 * pusher adds its chain and its count with one CAS; the owner takes list and
 * count with one exchange and never walks the list to count it. A span holds
 * fewer blocks than the count field can express (checked below). */
#define REMOTE_PTR(w) ((hak_block *)((w) & ((1ul << HAK_ADDR_BITS) - 1)))
#define REMOTE_N(w) ((uint32_t)((w) >> HAK_ADDR_BITS))
#define REMOTE_CAP_OK(i, size, pages)                                                              \
    _Static_assert((uint64_t)(pages)*HAK_PAGE_SIZE / (size) < (1ul << (64 - HAK_ADDR_BITS)),       \
                   "a span's block count fits the remote word");
HAK_CLASS_TABLE(REMOTE_CAP_OK)

/* Pushes the chain first..last (n blocks of span s) on the span's remote
 * list. Returns true if the list was empty: the caller must then queue the
 * span with its owner (queue_spans), and only it, so a span is on its
 * owner's remote_spans stack at most once. */
static bool remote_push(hak_span *s, hak_block *first, hak_block *last, uint32_t n) {
    /* acquire: finding the list empty must come after the owner's exchange,
     * and with it after the owner's last read of s->remote_next */
    uintptr_t old = atomic_load_explicit(&s->remote, memory_order_acquire), w;
    do {
        last->next = REMOTE_PTR(old);
        w = (uintptr_t)first | (uintptr_t)(REMOTE_N(old) + n) << HAK_ADDR_BITS;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, w, memory_order_acq_rel,
                                                    memory_order_acquire));
    return old == 0;
}

/* Queues the chain first..last of spans (linked by remote_next), all of one
 * owner, on its remote_spans stack with one CAS. Every span in it was found
 * with an empty remote list by this thread (remote_push returned true). */
static void queue_spans(hak_heap *owner, hak_span *first, hak_span *last) {
    hak_span *top = atomic_load_explicit(&owner->remote_spans, memory_order_relaxed);
    do {
        last->remote_next = top;
    } while (!atomic_compare_exchange_weak_explicit(&owner->remote_spans, &top, first,
                                                    memory_order_release, memory_order_relaxed));
}

/* A free by a thread that has no heap (it is past its exit). */
void hak_remote_free(hak_span *s, hak_block *b) {
    b->key = hak_key;
    if (remote_push(s, b, b, 1)) queue_spans(hak_seg_of(s)->heap, s, s);
}

/* Remote blocks of one flush, grouped by span: each group goes out with one
 * CAS, and the spans that need queuing go to each owner in one chain. */
enum { GROUPS = 8 };
struct remote_group {
    hak_span *s;
    hak_block *first, *last;
    uint32_t n;
};

static void remote_publish(struct remote_group *g, int k) {
    hak_heap *owner[GROUPS];
    hak_span *head[GROUPS], *tail[GROUPS];
    int owners = 0;
    for (int i = 0; i < k; i++) {
        if (!remote_push(g[i].s, g[i].first, g[i].last, g[i].n)) continue;
        hak_heap *o = hak_seg_of(g[i].s)->heap;
        int j = 0;
        while (j < owners && owner[j] != o) j++;
        if (j == owners) {
            owner[owners++] = o;
            head[j] = tail[j] = g[i].s;
        } else {
            g[i].s->remote_next = head[j];
            head[j] = g[i].s;
        }
    }
    for (int j = 0; j < owners; j++) queue_spans(owner[j], head[j], tail[j]);
}

/* Puts the n blocks of list (taken from the span's remote list) on s->free.
 * The span's free list holds carved - used blocks: the shorter of the two
 * lists is walked for its tail, and none when the free list is empty. */
static void free_splice(hak_span *s, hak_block *list, uint32_t n) {
    if (!s->free) {
        s->free = list;
    } else if (s->carved - s->used < n) {
        hak_block *t = s->free;
        while (t->next) t = t->next;
        t->next = list;
    } else {
        hak_block *t = list;
        while (t->next) t = t->next;
        t->next = s->free;
        s->free = list;
    }
}

/* The owner takes every queued span's remote list. Each span is read for
 * its link before its list is taken: after that, a pusher may queue it again.
 * Under the heap lock: the background purger drains a sleeping owner's heap
 * too (hak_heap_drain_idle), so the two may each take a part of the stack. */
void hak_remote_drain(hak_heap *h) {
    hak_span *s = atomic_exchange_explicit(&h->remote_spans, NULL, memory_order_acquire);
    if (!s) return;
    SPAN_LOCK(h);
    while (s) {
        hak_span *next = s->remote_next;
        /* acq_rel: our read of remote_next above happens before any pusher
         * that finds the list empty re-queues the span (and rewrites it) */
        uintptr_t w = atomic_exchange_explicit(&s->remote, 0, memory_order_acq_rel);
        if (w) {
            uint32_t n = REMOTE_N(w);
            if (big_cls(s->cls)) free_dirty(s, REMOTE_PTR(w), n, hak_coarse_ns());
            free_splice(s, REMOTE_PTR(w), n);
            s->used -= n;
            HAK_CTR(s->cls, REMOTE_DRAINED) += n;
            HAK_PROBE2(remote_drain, s->cls, n);
            span_settle(h, s, true);
        }
        s = next;
    }
    SPAN_UNLOCK(h);
}

/* The bin is full: grow it if it qualifies (hak_tbin_cap_max in
 * hak_internal.h says up to where), else false. */
bool hak_tbin_grow(struct hak_tbin *bin) {
    int cls = (int)(bin - hak_tls.bins);
    /* the other bins' decay: half the cache moves on (a flush or a growth) */
    hak_tcache_event(hak_tls.heap, cls, bin->cap / 2);
    /* Below the knob (where a default cap starts, hak_tbin_cap_start) a bin
     * this thread ever refilled doubles at each overflow: it mallocs the
     * class too; one never refilled (a consumer) stays. Above it, a bin
     * grows when it was refilled since its last overflow, and not before
     * the process is published: a churn that fits a grown cache never takes
     * a slow path again, and the first slow path after the start-up delay
     * is what publishes the segment (hak_publish_poll); each refusal
     * brings that delay nearer. */
    bool grow = false;
    if (bin->cap < bin->cap_max && !(bin->refilled & HAK_TBIN_MIXED)) {
        if (bin->cap < (uint32_t)HAK_KNOB_CLS(FAST_CAP, cls))
            grow = bin->refilled & HAK_TBIN_EVER;
        else if (bin->refilled & HAK_TBIN_REFILLED) {
            grow = !HAK_PUBLISH_PENDING();
            if (!grow) /* refused: publish sooner (hak_publish_after) */
                __atomic_fetch_sub(&hak_publish_after, HAK_PUBLISH_HURRY_NS, __ATOMIC_RELAXED);
        }
    }
    bin->refilled &= ~(uint32_t)HAK_TBIN_REFILLED;
    if (!grow) return false;
    uint32_t cap = bin->cap * 2 < bin->cap_max ? bin->cap * 2 : bin->cap_max;
    bin->room += cap - bin->cap;
    bin->cap = cap;
    return true;
}

/* Blocks of one flush on their way out: the current run (consecutive
 * blocks of one span) and the remote groups. */
struct flush_state {
    hak_heap *h;
    uint64_t now;        /* a big class's: the stamp of the blocks it frees (0: none yet) */
    uint32_t store_room; /* our runs go to the heap's store while they fit, */
    hak_block *store_first, *store_last; /* as one batch (stored at the end of the flush) */
    uint32_t store_n;
    struct remote_group g[GROUPS];
    int k;
    uint32_t nremote;
};

/* A run ends: ours goes back in one splice; another heap's joins its span's
 * group (a new group when there is none, sending all when the table is full). */
static void run_close(struct flush_state *f, bool mine, hak_span *s, hak_block *first,
                      hak_block *last, uint32_t n) {
    if (mine) {
        if (f->store_n + n <= f->store_room) {
            last->next = f->store_first;
            f->store_first = first;
            if (!f->store_n) f->store_last = last;
            f->store_n += n;
        } else {
            local_push(f->h, s, first, last, n, f->now);
        }
        return;
    }
    f->nremote += n;
    int j = 0;
    while (j < f->k && f->g[j].s != s) j++;
    if (j < f->k) {
        last->next = f->g[j].first;
        f->g[j].first = first;
        f->g[j].n += n;
        return;
    }
    if (f->k == GROUPS) { /* more spans than groups: send what we have */
        remote_publish(f->g, f->k);
        f->k = 0;
    }
    f->g[f->k++] = (struct remote_group){s, first, last, n};
}

/* Division-free test of "off is k blocks of size into the span, k < n"
 * (Granlund-Montgomery, as in Hacker's Delight 10-17): with size = odd *
 * 2^shift and inv the odd part's inverse mod 2^64, rotating off * inv right
 * by shift gives off / size when size divides off, and a value above
 * UINT64_MAX / size (so above any block count) when it does not. */
struct block_index {
    uint64_t inv;
    unsigned shift;
};
static struct block_index block_index_of(int cls) {
    /* the class table's inverse is right to 32 bits (hak_class_init): one
     * Newton step more, inv * (2 - odd * inv), makes it right to 64 */
    unsigned shift = hak_cls_shift[cls];
    uint64_t odd = hak_class_size[cls] >> shift, inv = hak_cls_inv[cls];
    inv *= 2 - odd * inv;
    return (struct block_index){inv, shift};
}
/* q = off * inv: the rotate of the Granlund-Montgomery test above */
static inline uint64_t block_index_q(struct block_index bi, uint64_t q) {
    return q >> bi.shift | q << (-bi.shift & 63); /* one ror */
}

/* Returns the first n blocks of list (class cls) to their spans: ours
 * directly, other heaps' grouped by span (remote_publish). Every block is
 * checked to be the start of a block of its span's class, below the carved
 * part in our own spans (carved is the owner's) and below the capacity in
 * others'. The list is cut into runs of consecutive blocks of one span,
 * each passed on as the chain it already is (no block is written here): a
 * block of the current run's span is known by its address alone, and the
 * descriptor is read once per run. Returns the rest of the list. */
static hak_block *flush_n(hak_heap *h, int cls, hak_block *list, uint32_t n, bool store,
                          uint32_t *nremote) {
    const struct block_index bi = block_index_of(cls);
    /* A cache's list is mostly in descending address order, a block or
     * two apart: blocks carved in ascending order, freed in about the order
     * they were allocated (a queue, a tree taken down, a batch), are pushed
     * on its stack one by one. The walk below is one chain of loads, each
     * an L1 miss when the blocks were freed a few hundred frees ago (an
     * overflow's flush): the block 16 below the current one, prefetched,
     * is the link the walk reads ~10 blocks later (thread_churn: +6 % per
     * CPU-second). A list in the other order finds that line already walked,
     * in L1. One instruction a block, which the count-down loop below gives
     * back. At most a page below (big blocks). */
    const intptr_t pf =
        -(intptr_t)(16 * hak_class_size[cls] < 4096 ? 16 * hak_class_size[cls] : 4096);
    /* the scalars only: the remote groups are written as they fill (f.k) */
    struct flush_state f;
    f.h = h, f.now = 0, f.store_room = 0, f.store_n = 0, f.k = 0, f.nremote = 0;
    f.store_first = f.store_last = NULL;
    const uint32_t total = n;
    /* a big class: the heap lock once for all runs (each run's push would
     * take it again) and for the store, and one clock read for all their
     * stamps. Only big classes have stores. */
    const bool big = big_cls(cls);
    SPAN_LOCK(h);
    if (HAK_UNLIKELY(big)) {
        f.now = hak_coarse_ns(); /* the purge compares with hak_now_ns: never older */
        if (store) f.store_room = hak_store_room(h, cls);
    }
    while (n) {
        hak_block *first = list, *last = first;
        hak_segment *seg = hak_seg_of(first);
        hak_span *rs = hak_span_of(seg, first);
        if (rs->cls != cls) hak_fatal("free(): invalid pointer", first);
        const uintptr_t base = (uintptr_t)hak_span_base(rs);
        const uintptr_t start = base + hak_cls_span_color(rs, cls);
        const uintptr_t span_len = (uintptr_t)rs->pages * HAK_PAGE_SIZE;
        const bool mine = seg->heap == h;
        const uint64_t blocks = mine ? rs->carved : rs->capacity; /* valid indexes */
        /* (b - start) * inv is b * inv - start * inv mod 2^64: the per-run
         * product subtracted, no copy and subtract of b per block */
        uint64_t start_q = start * bi.inv;
        __asm__("" : "+r"(start_q)); /* else GCC folds it back into (b - start) * inv */
        /* the run's first block is in rs by construction: invalid if it fails */
        if (HAK_UNLIKELY(block_index_q(bi, (uintptr_t)first * bi.inv - start_q) >= blocks))
            hak_fatal("free(): invalid pointer", first);
        __builtin_prefetch((const char *)first + pf); /* a link ahead: see above */
        /* each step tests the next block before taking it, so `last` is the
         * run's last block when the walk stops either way (no copy kept) */
        uint32_t left = n - 1; /* counts down: one instruction less a block */
        for (; left; left--) {
            hak_block *b = last->next;
            if (HAK_UNLIKELY(block_index_q(bi, (uintptr_t)b * bi.inv - start_q) >= blocks)) {
                if ((uintptr_t)b - base < span_len) hak_fatal("free(): invalid pointer", b);
                break; /* another span's: the next run */
            }
            __builtin_prefetch((const char *)b + pf);
            last = b;
        }
        const uint32_t rn = n - left;
        list = last->next; /* read before run_close relinks last */
        n = left;
        run_close(&f, mine, rs, first, last, rn);
    }
    if (f.k) remote_publish(f.g, f.k);
    if (f.store_n) hak_store_put(h, cls, f.store_first, f.store_last, f.store_n);
    SPAN_UNLOCK(h);
    HAK_CTR(cls, FLUSHES)++;
    HAK_CTR(cls, FLUSH_BLOCKS) += total;
    HAK_CTR(cls, REMOTE_FREES) += f.nremote;
    HAK_PROBE3(flush, cls, total, f.nremote);
    *nremote = f.nremote;
    return list;
}

/* Returns cached blocks beyond `keep` of the class's thread cache to their
 * spans. The most recently freed go (they are the ones in the cache lines
 * just written: the walk that returns them is the walk that finds the cut).
 * A big class's own blocks go to the heap's store (hak_store.c) instead, in
 * one hold of the heap lock for the whole flush; keep 0 (exit, trim, the
 * decay's end of a class) sends the stash and the store back to the spans
 * too. */
void hak_flush(hak_heap *h, int cls, uint32_t keep) {
    struct hak_tbin *bin = &hak_tls.bins[cls];
    uint32_t count = hak_tbin_count(bin);
    bool store = cls >= HAK_PURGE_CLS_MIN && keep > 0;
    if (cls >= HAK_PURGE_CLS_MIN && keep == 0) {
        hak_stash_empty(h, cls);
        hak_store_empty(h, cls);
    }
    if (count <= keep) return;
    uint32_t nremote;
    bin->head = flush_n(h, cls, bin->head, count - keep, store, &nremote);
    bin->room = bin->cap - keep;
    if (nremote) bin->refilled |= HAK_TBIN_MIXED;
}

/* A full bin's flush (hak_free_slow) when the bin takes mail
 * (HAK_TBIN_MIXED: its last flush sent other heaps' blocks, or one of them
 * overflowed it): those go home first, all of them: kept, they are
 * reused by this thread while their owners carve replacements, and each
 * pins a span of its owner's. Ours stay, in their order, up to keep (the
 * newest of the rest go), and a grown cap halves (down to
 * HAK_TBIN_CAP_START; hak_tbin_grow does not grow it while it is mixed):
 * shbench-sh8's caches and scattered spans, docs/allocator.md. It may keep
 * fewer than keep, never all of cap (the caller pushes a block); hak_flush
 * keeps exactly keep, which its other callers count on. */
void hak_flush_mixed(hak_heap *h, int cls, uint32_t keep) {
    struct hak_tbin *bin = &hak_tls.bins[cls];
    uint32_t count = hak_tbin_count(bin);
    if (!keep || count <= keep) {
        hak_flush(h, cls, keep);
        return;
    }
    const bool store = cls >= HAK_PURGE_CLS_MIN;
    uint32_t nremote;
    /* one pass splits the list (a segment's owner read once per run of it) */
    hak_block *mine = NULL, **mt = &mine, *other = NULL, **ot = &other;
    uint32_t nm = 0, no = 0;
    hak_block *b = bin->head;
    hak_segment *seg = NULL;
    bool own = false;
    for (uint32_t i = 0; i < count; i++, b = b->next) {
        if (hak_seg_of(b) != seg) seg = hak_seg_of(b), own = seg->heap == h;
        if (own)
            *mt = b, mt = &b->next, nm++;
        else
            *ot = b, ot = &b->next, no++;
    }
    *mt = b; /* what follows the counted blocks: NULL (malloc pops to NULL) */
    *ot = NULL;
    if (no)
        flush_n(h, cls, other, no, store, &nremote);
    else /* no mail this time: the bin may grow again */
        bin->refilled &= ~(uint32_t)HAK_TBIN_MIXED;
    if (nm > keep) {
        mine = flush_n(h, cls, mine, nm - keep, store, &nremote);
        nm = keep;
    }
    bin->head = mine;
    if (bin->cap > HAK_TBIN_CAP_START && bin->cap / 2 > nm) bin->cap /= 2;
    bin->room = bin->cap - nm;
}

/* Returns the first n blocks of list (class cls) to their spans; returns
 * the rest of the list. */
hak_block *hak_flush_list(hak_heap *h, int cls, hak_block *list, uint32_t n) {
    uint32_t nremote;
    return flush_n(h, cls, list, n, false, &nremote);
}

/* Returns the free OS pages of a span: a page goes back when every block
 * overlapping it is free. Pages inside one free block (past its header)
 * go back as they are: the block stays listed, its header resident (big
 * classes; glibc's trim does this for its free chunks). A page that holds
 * block headers (every page of the small classes) can only go back if
 * those blocks leave the free list first, as their links would read back
 * as zero: os_purged marks such a page (a bit per OS page in the span's
 * page descriptors' slots), its blocks counted as free from then on, and
 * hak_span_unpurge lists them again when refill needs them. Headers in a
 * page must all belong to carved blocks (a later carve would mix fresh
 * blocks with unlisted ones); pages past the carved end hold nothing and go
 * back unmarked. Caller: the owner, or the purger under the heap lock when
 * the owner locks this class. Returns the madvise calls. */
enum { OS_PER_PAGE = (int)(HAK_PAGE_SIZE / HAK_OS_PAGE), OS_MAX = 32 * OS_PER_PAGE };
#define OS_BIT(m, q) ((m)[(q) / OS_PER_PAGE] >> ((q) % OS_PER_PAGE) & 1)
#define OS_SET(m, q) ((m)[(q) / OS_PER_PAGE] |= (uint16_t)(1u << ((q) % OS_PER_PAGE)))

static uint16_t *os_marks(hak_span *s) {
    hak_segment *seg = hak_seg_of(s);
    return &seg->os_purged[s - seg->pages];
}

/* A block that starts in a marked OS page is free, off its span's free list,
 * and reads as zero: its free-key too, so free()'s fast path would take a
 * second free of it for a first (and refill would list it again: handed
 * out twice). So a page with marks reads 0 in free()'s page window: every
 * free there takes the slow path, which refuses a block whose page is
 * marked (hak_block_purged, hak_internal.h). Marks are written atomically: the slow path of
 * any thread reads them; a set bit can only mean a free block, as a page is
 * marked only when every block on it is free. */
static void mark_pages(hak_span *s, uint16_t *marks, const uint16_t *mark) {
    hak_segment *seg = hak_seg_of(s);
    int first = (int)(s - seg->pages);
    for (int k = 0; k < s->pages; k++) {
        if (!mark[k]) continue;
        __atomic_store_n(&marks[k], (uint16_t)(marks[k] | mark[k]), __ATOMIC_RELAXED);
        hak_pagewin_set(seg, first + k, 1, 0); /* before the madvise that zeroes the keys */
    }
}

/* Counts the block at off (size bytes) in every OS page it overlaps. */
static inline void count_block(uint64_t off, uint32_t size, uint16_t *cnt) {
    for (uint64_t q = off / HAK_OS_PAGE; q <= (off + size - 1) / HAK_OS_PAGE; q++) cnt[q]++;
}

/* The blocks that start in OS page q of a span whose first block is color
 * bytes in (< an OS page: hak_span_color): indexes [*first, *end). */
static inline void starting_in(uint32_t q, uint32_t size, uint32_t color, uint32_t *first,
                               uint32_t *end) {
    uint32_t lo = q * (uint32_t)HAK_OS_PAGE;
    *first = lo <= color ? 0 : (lo - color + size - 1) / size;
    *end = (lo + (uint32_t)HAK_OS_PAGE - color + size - 1) / size;
}

/* A listed block as the purge sees it: a big class's by its stamp, a
 * small class's always due (its span's time decided). */
enum { BLOCK_FRESH, BLOCK_DUE, BLOCK_PURGED };
static int block_state(const hak_span *s, hak_block *b, uint64_t now, uint64_t delay, bool force) {
    if (s->cls < HAK_PURGE_CLS_MIN) return BLOCK_DUE;
    uint64_t st = *hak_block_stamp(b);
    if (st == HAK_STAMP_PURGED) return BLOCK_PURGED;
    return force || st == 0 || now - st >= delay ? BLOCK_DUE : BLOCK_FRESH;
}

/* Purges the span's OS pages that only free blocks overlap, at least one
 * of them due: a fresh block (free for less than the delay) counts as live,
 * as the next moment may take it again, and a page overlapped only by
 * blocks purged before went then (or waits for a neighbour to come due).
 * Leaves in s->free_dirty_ns the oldest fresh stamp (0: none). */
static uint64_t purge_span_pages(hak_span *s, uint32_t size, uint64_t now, uint64_t delay,
                                 bool force) {
    uint16_t *marks = os_marks(s), cnt[OS_MAX], mark[OS_MAX / OS_PER_PAGE] = {0},
             go[OS_MAX / OS_PER_PAGE] = {0}, due[OS_MAX / OS_PER_PAGE] = {0};
    uint32_t nos = (uint32_t)s->pages * OS_PER_PAGE, calls = 0;
    char *start = hak_span_base(s); /* OS pages count from here */
    const uint32_t color = (uint32_t)hak_span_color(s);
    uint64_t end = color + (uint64_t)s->carved * size, fresh_min = 0; /* carved bytes */
    bool any = false, fresh = false, some_due = force || s->cls < HAK_PURGE_CLS_MIN;
    memset(cnt, 0, nos * sizeof cnt[0]);
    for (hak_block *b = s->free; b; b = b->next) {
        uint64_t off = (uint64_t)((char *)b - start);
        int st = block_state(s, b, now, delay, force);
        if (st == BLOCK_FRESH) {
            uint64_t t = *hak_block_stamp(b);
            if (!fresh_min || t < fresh_min) fresh_min = t;
            continue;
        }
        count_block(off, size, cnt);
        if (st == BLOCK_DUE) {
            some_due = true;
            for (uint64_t q = off / HAK_OS_PAGE; q <= (off + size - 1) / HAK_OS_PAGE; q++)
                OS_SET(due, q);
        }
    }
    s->free_dirty_ns = fresh_min;
    if (!some_due) return 0;
    for (uint32_t q = 0, i, e; q < nos; q++) /* blocks of marked pages are free, unlisted */
        if (OS_BIT(marks, q))
            for (starting_in(q, size, color, &i, &e); i < e; i++)
                count_block(color + (uint64_t)i * size, size, cnt);
    for (uint32_t q = 0; q < nos; q++) {
        uint64_t lo = (uint64_t)q * HAK_OS_PAGE, hi = lo + HAK_OS_PAGE;
        uint32_t i, e;
        if (lo >= end) { /* past the last carved block */
            OS_SET(go, q);
            any = true;
            continue;
        }
        /* blocks overlapping q (the colour is below hi: page 0 holds block 0) */
        uint64_t first = lo < color ? 0 : (lo - color) / size, last = (hi - 1 - color) / size;
        if (color + last * size >= end || OS_BIT(marks, q) || !OS_BIT(due, q) ||
            cnt[q] != last - first + 1)
            continue;
        OS_SET(go, q);
        any = true;
        starting_in(q, size, color, &i, &e);
        if (i < e) { /* headers in it: their blocks leave the list */
            OS_SET(mark, q);
            fresh = true;
        }
    }
    if (!any) return 0;
    /* unlist the blocks whose header pages go; mark the other due ones
     * purged (their own pages go now, a shared edge page when its
     * neighbour comes due) */
    hak_block **pp = &s->free;
    for (hak_block *b = s->free; b; b = b->next) {
        if (fresh && OS_BIT(mark, (uint64_t)((char *)b - start) / HAK_OS_PAGE)) continue;
        if (s->cls >= HAK_PURGE_CLS_MIN && block_state(s, b, now, delay, force) == BLOCK_DUE)
            *hak_block_stamp(b) = HAK_STAMP_PURGED;
        *pp = b;
        pp = &b->next;
    }
    *pp = NULL;
    if (fresh) mark_pages(s, marks, mark);
    for (uint32_t q = 0; q < nos;) { /* one madvise per run of pages */
        if (!OS_BIT(go, q)) {
            q++;
            continue;
        }
        uint32_t n = 1, held = (uint32_t)((end + HAK_OS_PAGE - 1) / HAK_OS_PAGE);
        while (q + n < nos && OS_BIT(go, q + n)) n++;
        hak_os_purge(start + (size_t)q * HAK_OS_PAGE, (size_t)n * HAK_OS_PAGE);
        /* pages past the carved end count for nothing: no refill faults them
         * back as purged blocks, and they go again at every purge of the span */
        if (q < held)
            HAK_PROC_ADD(PURGED_BYTES, (uint64_t)((q + n < held ? q + n : held) - q) * HAK_OS_PAGE);
        calls++;
        q += n;
    }
    return calls;
}

bool hak_span_purged(hak_span *s) {
    const uint16_t *marks = os_marks(s);
    for (int k = 0; k < s->pages; k++)
        if (marks[k]) return true;
    return false;
}

/* Refill found the free list empty: lists again the free blocks that start
 * in marked pages, a page at a time (lowest first) until at least want are
 * listed or none is left. Their pages fault in: they are about to be used. */
void hak_span_unpurge(hak_span *s, uint32_t want) {
    uint16_t *marks = os_marks(s);
    uint32_t size = hak_class_size[s->cls], got = 0, nos = (uint32_t)s->pages * OS_PER_PAGE;
    const uint32_t color = (uint32_t)hak_span_color(s);
    char *start = hak_span_base(s) + color; /* hak_span_start, the colour once */
    uint32_t cleared = 0; /* span pages whose last mark went */
    for (uint32_t q = 0, i, e; q < nos && got < want; q++) {
        if (!OS_BIT(marks, q)) continue;
        starting_in(q, size, color, &i, &e);
        /* a big class's blocks count when refill takes them (taken_purged) */
        if (s->cls < HAK_PURGE_CLS_MIN) HAK_PROC_ADD(REFAULT_BYTES, (uint64_t)(e - i) * size);
        for (; i < e; i++, got++) {
            hak_block *b = (hak_block *)(start + (size_t)i * size);
            b->next = s->free;
            b->key = hak_key;
            if (s->cls >= HAK_PURGE_CLS_MIN) *hak_block_stamp(b) = HAK_STAMP_PURGED;
            s->free = b;
        }
        /* release: a free that sees the mark gone sees the key set above */
        uint16_t *m = &marks[q / OS_PER_PAGE];
        __atomic_store_n(m, (uint16_t)(*m & ~(1u << (q % OS_PER_PAGE))), __ATOMIC_RELEASE);
        if (!*m) cleared |= 1u << (q / OS_PER_PAGE);
    }
    hak_segment *seg = hak_seg_of(s);
    for (; cleared; cleared &= cleared - 1) /* free()'s fast path back (mark_pages) */
        hak_pagewin_set(seg, (int)(s - seg->pages) + __builtin_ctz(cleared), 1,
                        (uint8_t)(s->cls + 1));
}

/* The span goes back to its segment empty. Its os_purged slots keep the
 * OS pages its block purges returned that nothing faulted in since: the
 * marked pages, and a big class's pages inside listed blocks stamped purged
 * (past their header's page), so that the segment counts each once: its
 * purge of the page counts only the others (purged_bytes), and the carve
 * that takes them again counts them as refaults (hak_span_alloc). A page
 * shared by two blocks is taken as resident. Under the heap lock for a big
 * class (the purger walks its list). At most ~25 blocks (the class table). */
void hak_span_note_purged(hak_span *s) {
    if (s->cls < HAK_PURGE_CLS_MIN) return;
    uint16_t *marks = os_marks(s);
    uint64_t size = hak_class_size[s->cls];
    char *start = hak_span_base(s); /* OS pages count from here */
    for (hak_block *b = s->free; b; b = b->next) {
        if (*hak_block_stamp(b) != HAK_STAMP_PURGED) continue;
        uint64_t off = (uint64_t)((char *)b - start);
        for (uint64_t q = off / HAK_OS_PAGE + 1; (q + 1) * HAK_OS_PAGE <= off + size; q++)
            OS_SET(marks, q);
    }
}

/* Purges the free blocks' pages of the heap's spans that have held
 * unpurged free blocks for the purge delay (all if force): big classes
 * always (the caller holds the heap lock, which every change to their
 * lists takes), small classes only when `small`: the caller is the owner
 * (nobody else touches their lists), or the owner locks them too
 * (lock_small). Returns whether some are left for later. */
bool hak_span_purge_free(hak_heap *h, uint64_t now, uint64_t delay, bool force, bool small) {
    bool left = false;
    uint64_t calls = 0;
    for (int c = small ? 0 : HAK_PURGE_CLS_MIN; c < HAK_NUM_CLASSES; c++) {
        uintptr_t size = hak_class_size[c];
        bool big = c >= HAK_PURGE_CLS_MIN;
        for (hak_span *s = h->partial[c]; s; s = s->next) {
            /* small spans carry a time only when freed under the lock:
             * without one they go back on force (trim) alone */
            if (!s->free_dirty_ns && (big || !force)) continue;
            if (!force && now - s->free_dirty_ns < delay) {
                left = true;
                continue;
            }
            calls += purge_span_pages(s, (uint32_t)size, now, delay, force);
            left |= s->free_dirty_ns != 0; /* fresh blocks: due later */
        }
    }
    HAK_PROC_ADD(PURGES, calls);
    return left;
}
