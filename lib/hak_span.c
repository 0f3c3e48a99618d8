/* hak_span.c — moving blocks between thread caches and spans: refill, flush,
 * local free, remote free (lock-free MPSC push) and the owner's drain. */
#include "hak_internal.h"

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
/* Spans of big classes are walked by the background purger: their lists
 * change under the heap lock (see hak_span_purge_free). */
static inline bool big_cls(int cls) {
    return cls >= HAK_PURGE_CLS_MIN;
}

/* A block of a big class went onto s->free: it is due for a purge later. */
static inline void free_dirty(hak_span *s) {
    if (!s->free_dirty_ns) s->free_dirty_ns = hak_now_ns();
}

uint32_t hak_release_empty(hak_heap *h, int cls, uint32_t *kept) {
    uint32_t released = 0;
    *kept = 0;
    if (big_cls(cls)) hak_heap_lock(h);
    for (hak_span *s = h->partial[cls], *next; s; s = next) {
        next = s->next;
        if (s->used == 0) {
            partial_remove(h, s);
            hak_span_release(h, s);
            released++;
        } else {
            (*kept)++;
        }
    }
    if (big_cls(cls)) hak_heap_unlock(h);
    return released;
}

bool hak_refill(hak_heap *h, int cls) {
    struct hak_tbin *bin = &hak_tls.bins[cls];
    uint32_t want = (uint32_t)HAK_KNOB_CLS(REFILL_COUNT, cls);
    /* slow start: a heap's first refills of a class carve 2, 4, 8, ...
     * blocks, so a thread that uses a few blocks of many classes (a pool of
     * mostly idle threads) does not write (fault in) a full batch of each */
    uint64_t nth = HAK_CTR(cls, REFILLS);
    if (nth < 5 && want > 2u << nth) want = 2u << nth;
    if (want > bin->room) want = bin->room;
    if (want == 0) want = 1; /* cap 0 (safe-free mode): one block at a time */
    if (big_cls(cls)) hak_heap_lock(h);

    if (++h->refills_since_drain >= HAK_KNOB(DRAIN_INTERVAL) || !h->partial[cls]) {
        h->refills_since_drain = 0;
        if (atomic_load_explicit(&h->remote_spans, memory_order_relaxed)) hak_remote_drain(h);
    }
    size_t size = hak_class_size[cls];
    uint32_t got = 0;
    hak_block *head = bin->head;
    while (got < want) {
        hak_span *s = h->partial[cls];
        if (!s) {
            if (got) break;
            if (HAK_KNOB(ADOPT) && hak_heap_reclaim_abandoned() && h->partial[cls]) continue;
            s = hak_span_alloc(h, cls);
            if (!s) break;
            partial_push(h, s);
        }
        if (s->free) { /* a prefix of the span's free list, as it is: one walk to the cut */
            hak_block *first = s->free, *last = first, *nx;
            uint32_t k = 1, need = want - got;
            for (; k < need && (nx = last->next) != NULL; k++) last = nx;
            s->free = last->next;
            last->next = head;
            head = first;
            got += k;
            s->used += k;
        }
        if (got < want && s->carved < s->capacity) {
            uint32_t n = want - got;
            if (n > s->capacity - s->carved) n = s->capacity - s->carved;
            char *base = hak_span_start(s) + (size_t)s->carved * size;
            for (uint32_t i = n; i-- > 0;) { /* lowest address ends up first */
                hak_block *b = (hak_block *)(base + i * size);
                b->next = head;
                b->key = hak_key;
                head = b;
            }
            s->carved += n;
            s->used += n;
            got += n;
        }
        if (!s->free && s->carved == s->capacity) partial_remove(h, s); /* full */
    }
    bin->head = head;
    bin->room = bin->room > got ? bin->room - got : 0; /* cap 0: the block goes out at once */
    bin->refilled = 1;
    if (big_cls(cls)) hak_heap_unlock(h);
    HAK_CTR(cls, REFILLS)++;
    HAK_CTR(cls, REFILL_BLOCKS) += got;
    HAK_PROBE2(refill, cls, got);
    return got > 0;
}

/* Puts the chain first..last (n blocks of span s, ours) on the span's free
 * list; settles the span once. */
static void local_push(hak_heap *h, hak_span *s, hak_block *first, hak_block *last, uint32_t n) {
    bool big = big_cls(s->cls);
    if (HAK_UNLIKELY(big)) hak_heap_lock(h);
    last->next = s->free;
    s->free = first;
    s->used -= n;
    if (HAK_UNLIKELY(big)) free_dirty(s);
    span_settle(h, s, true);
    if (HAK_UNLIKELY(big)) hak_heap_unlock(h);
}

void hak_free_to_span(hak_heap *h, hak_span *s, hak_block *b) {
    local_push(h, s, b, b, 1);
}

/* Pushes the chain first..last (blocks of span s) on the span's remote list;
 * the push that finds the list empty also queues the span with its owner. */
static void remote_push(hak_span *s, hak_block *first, hak_block *last) {
    /* acquire: finding the list empty must come after the owner's exchange,
     * and with it after the owner's last read of s->remote_next */
    hak_block *old = atomic_load_explicit(&s->remote, memory_order_acquire);
    do {
        last->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, first, memory_order_acq_rel,
                                                    memory_order_acquire));
    if (old == NULL) {
        hak_heap *owner = hak_seg_of(s)->heap;
        hak_span *top = atomic_load_explicit(&owner->remote_spans, memory_order_relaxed);
        do {
            s->remote_next = top;
        } while (!atomic_compare_exchange_weak_explicit(
            &owner->remote_spans, &top, s, memory_order_release, memory_order_relaxed));
    }
}

/* A free by a thread that has no heap (it is past its exit). */
void hak_remote_free(hak_span *s, hak_block *b) {
    b->key = hak_key;
    remote_push(s, b, b);
}

/* The owner takes every queued span's remote list. Each span is read for
 * its link before its list is taken: after that, a pusher may queue it again. */
void hak_remote_drain(hak_heap *h) {
    hak_span *s = atomic_exchange_explicit(&h->remote_spans, NULL, memory_order_acquire);
    while (s) {
        hak_span *next = s->remote_next;
        /* acq_rel: our read of remote_next above happens before any pusher
         * that finds the list empty re-queues the span (and rewrites it) */
        hak_block *list = atomic_exchange_explicit(&s->remote, NULL, memory_order_acq_rel);
        if (list) {
            bool big = big_cls(s->cls);
            if (big) hak_heap_lock(h);
            uint32_t n = 1;
            hak_block *tail = list;
            while (tail->next) {
                tail = tail->next;
                n++;
            }
            tail->next = s->free;
            s->free = list;
            s->used -= n;
            HAK_CTR(s->cls, REMOTE_DRAINED) += n;
            HAK_PROBE2(remote_drain, s->cls, n);
            if (big) free_dirty(s);
            span_settle(h, s, true);
            if (big) hak_heap_unlock(h);
        }
        s = next;
    }
}

/* A class whose thread cache overflows although it was refilled since its
 * last overflow is churned through the cache (malloc n, free n, n above the
 * cap): flushing half and refilling again would move every block through
 * its span each round. Such a bin doubles its cap instead, up to about
 * 256 KiB of blocks (2048 at most), the byte bound of the default caps; a
 * bin that only receives frees (a consumer of other threads' blocks) is
 * never refilled and keeps its cap. Only default caps grow: a cap set by
 * the environment, the daemon or hakctl is kept as set. Caps go back to the
 * knob whenever knobs are applied again (hak_knobs_apply_tls). */
uint32_t hak_tbin_cap_max(int cls, uint32_t cap) {
    if (cap == 0 || hak_knobs.owner[HAK_KNOB_FAST_CAP][cls] != HAK_OWNER_DEFAULT) return cap;
    return hak_cls_grow_cap[cls] > cap ? hak_cls_grow_cap[cls] : cap;
}

/* The bin is full: grow it if it qualifies (above), else false. */
bool hak_tbin_grow(struct hak_tbin *bin) {
    bool grow = bin->refilled && bin->cap < bin->cap_max;
    bin->refilled = 0;
    if (!grow) return false;
    uint32_t cap = bin->cap * 2 < bin->cap_max ? bin->cap * 2 : bin->cap_max;
    bin->room += cap - bin->cap;
    bin->cap = cap;
    return true;
}

/* Returns cached blocks of the class's thread cache to their spans until
 * `keep` are left: ours directly, other heaps' through their remote lists.
 * The most recently freed go (as tcmalloc does): they are the list's head,
 * so the blocks kept are never walked. */
void hak_flush(hak_heap *h, int cls, uint32_t keep) {
    struct hak_tbin *bin = &hak_tls.bins[cls];
    uint32_t count = hak_tbin_count(bin);
    if (count <= keep) return;
    hak_block *list = bin->head;
    bin->head = NULL;
    bin->room = bin->cap - keep;
    bin->head = hak_flush_list(h, cls, list, count - keep);
}

/* Returns the first n blocks of list (class cls) to their spans and the
 * rest of the list. Every block is checked to be the start of a block of
 * its span's class (in our own spans, of its carved part). Consecutive
 * blocks of one of our spans go back in one splice, and that span's checks
 * are made once per run: a block inside the run's span (its carved bytes)
 * costs a compare and the divisibility test, no descriptor lookup. */
hak_block *hak_flush_list(hak_heap *h, int cls, hak_block *list, uint32_t n) {
    const uintptr_t size = hak_class_size[cls];
    const uint32_t shift = hak_cls_shift[cls], inv = hak_cls_inv[cls], lim = hak_cls_lim[cls];
    const uintptr_t low = ((uintptr_t)1 << shift) - 1;
    uint32_t nremote = 0;

    hak_span *cur = NULL, *own = NULL; /* the current remote run, own run */
    hak_block *first = NULL, *last = NULL, *ofirst = NULL, *olast = NULL;
    uintptr_t ostart = 0, olen = 0; /* own run's span: start, bytes carved */
    uint32_t on = 0;
    for (uint32_t i = 0; i < n; i++) {
        hak_block *b = list;
        list = b->next;
        uintptr_t off = (uintptr_t)b - ostart;
        if (off < olen) { /* in the own run's span: only the block's place to check */
            if ((off & low) || (uint32_t)(off >> shift) * inv > lim)
                hak_fatal("free(): invalid pointer", b);
            b->next = ofirst;
            ofirst = b;
            on++;
            continue;
        }
        hak_segment *seg = hak_seg_of(b);
        hak_span *s = hak_span_of(seg, b);
        uintptr_t start = (uintptr_t)hak_span_start(s);
        if (s->cls != cls || !hak_block_aligned(cls, (uintptr_t)b - start))
            hak_fatal("free(): invalid pointer", b);
        if (seg->heap == h) {
            /* carved is the owner's: only checked for our own spans */
            if ((uintptr_t)b - start >= (size_t)s->carved * size)
                hak_fatal("free(): invalid pointer", b);
            if (own) local_push(h, own, ofirst, olast, on);
            own = s;
            ostart = start;
            olen = (size_t)s->carved * size;
            ofirst = olast = b;
            on = 1;
            continue;
        }
        nremote++;
        if (s != cur) {
            if (cur) remote_push(cur, first, last);
            cur = s;
            first = last = b;
            b->next = NULL;
        } else {
            b->next = first;
            first = b;
        }
    }
    if (own) local_push(h, own, ofirst, olast, on);
    if (cur) remote_push(cur, first, last);
    HAK_CTR(cls, FLUSHES)++;
    HAK_CTR(cls, FLUSH_BLOCKS) += n;
    HAK_CTR(cls, REMOTE_FREES) += nremote;
    HAK_PROBE3(flush, cls, n, nremote);
    return list;
}

/* Returns the whole OS pages inside the free blocks of big classes (past
 * each block's header, which keeps it on its free list) once the span has
 * held unpurged free blocks for the purge delay (all if force). glibc's
 * trim does this for its free chunks; a span that keeps a few live blocks
 * no longer pins the pages of its free ones. Caller holds the heap lock,
 * which every change to these spans' lists takes. Returns whether some
 * are left for later. */
bool hak_span_purge_free(hak_heap *h, uint64_t now, uint64_t delay, bool force) {
    bool left = false;
    for (int c = HAK_PURGE_CLS_MIN; c < HAK_NUM_CLASSES; c++) {
        uintptr_t size = hak_class_size[c];
        for (hak_span *s = h->partial[c]; s; s = s->next) {
            if (!s->free_dirty_ns) continue;
            if (!force && now - s->free_dirty_ns < delay) {
                left = true;
                continue;
            }
            uint64_t calls = 0;
            for (hak_block *b = s->free; b; b = b->next) {
                uintptr_t lo =
                    ((uintptr_t)b + sizeof(hak_block) + HAK_OS_PAGE - 1) & ~(HAK_OS_PAGE - 1);
                uintptr_t hi = ((uintptr_t)b + size) & ~(HAK_OS_PAGE - 1);
                if (hi > lo) {
                    hak_os_purge((void *)lo, hi - lo);
                    calls++;
                }
            }
            HAK_PROC_ADD(PURGES, calls);
            s->free_dirty_ns = 0;
        }
    }
    return left;
}
