/* hak_store.c — the heap's store of big-class blocks, between the thread
 * cache and the spans.
 *
 * A full thread cache of a big class (>= HAK_PURGE_CLS_MIN, 5 KiB up)
 * flushes half its blocks. Put back on their spans, the next refill would
 * take them off again a few at a time (refill_count), each time with the
 * heap lock, the span walk and the stamps. The heap's own blocks go to the
 * class's store instead, whole, in the same lock hold as the flush, and the
 * next refill takes up to half a cache from there in one hold
 * (mid_large_mt-8k-32k, 200 k operations: 2.2 k refills instead of 3.4 k,
 * 4.2 k heap-lock holds instead of 7.3 k). The thread cache stays small: it is the one
 * place the purger cannot reach (lock-free, owner only): the store is under
 * the heap lock, and the purger (or a trim) returns a store left alone for
 * the purge delay to its spans, whose free pages it then purges as usual.
 *
 * Per class: 256 KiB of blocks (what a default thread cache holds), and
 * at least 8 blocks, so that the classes of 80 KiB-1 MiB (thread caches of
 * 2-3 blocks) keep their freed blocks for their own next mallocs instead
 * of emptying spans whose pages the next span of another class carves with
 * other block boundaries, faulting in pages the first never touched
 * (mid_large_mt-64k-1m: peak RSS 67 -> 25 MiB; with 4 blocks 41 MiB, 2:
 * 52 MiB, 16: 24 MiB; docs/allocator.md). Only the heap's own blocks
 * (another heap's go back to their owner as always), all still counted as
 * used by their spans (a span with stored blocks is not empty), taken in
 * whole batches (one per flush), so a refill does not walk them. */
#include "hak_internal.h"

enum { STORE_BYTES = 256 << 10, STORE_MIN = 8 };

/* The heap's stores are made at its first flush of a big class (most
 * threads never have one: 1 KiB a heap), by the owner under the heap
 * lock, where the purger reads the pointer too; release and acquire say
 * so to a reader that looks without it. */
static struct hak_store *stores_of(hak_heap *h) {
    return __atomic_load_n(&h->store, __ATOMIC_ACQUIRE);
}

static struct hak_store *store_of(hak_heap *h, int cls) {
    return &stores_of(h)[cls - HAK_PURGE_CLS_MIN];
}

/* The store is a stack of batches (one per flush), so that a refill takes
 * whole batches without walking their blocks: a batch's first block holds,
 * past its link, key and stamp words (a big block has room), the next
 * batch, its last block and its count. */
struct batch {
    hak_block blk;  /* next (within the batch), key */
    uint64_t stamp; /* hak_block_stamp's word: unused while stored */
    hak_block *next_batch;
    hak_block *last; /* the store's (the stash's batches end in NULL) */
    uint64_t n;
};
_Static_assert(sizeof(struct batch) <= 5120, "a big block holds a batch header");

static struct batch *batch_of(hak_block *b) {
    return (struct batch *)b;
}

/* The owner's flush asks first: the stores are made here (none when out
 * of memory: the blocks go to their spans). */
uint32_t hak_store_room(hak_heap *h, int cls) {
    if (HAK_UNLIKELY(!stores_of(h))) {
        struct hak_store *st = hak_heap_extra(sizeof(struct hak_store) * HAK_STORE_N);
        if (!st) return 0;
        __atomic_store_n(&h->store, st, __ATOMIC_RELEASE);
    }
    uint32_t n = STORE_BYTES / hak_class_size[cls], max = n < STORE_MIN ? STORE_MIN : n,
             have = store_of(h, cls)->n;
    return max > have ? max - have : 0;
}

/* Takes the chain first..last (n blocks of h's own spans of cls, checked by
 * the flush, n <= hak_store_room) as one batch. */
void hak_store_put(hak_heap *h, int cls, hak_block *first, hak_block *last, uint32_t n) {
    struct hak_store *st = store_of(h, cls);
    last->next = NULL;
    struct batch *b = batch_of(first);
    b->next_batch = st->head;
    b->last = last;
    b->n = n;
    st->head = first;
    st->n += n;
    st->used_ns = hak_coarse_ns();
    hak_purger_wake_soon(); /* an idle purger must come back for it */
}

/* Moves whole batches onto *head while they fit in max blocks, and when
 * the first does not fit (a batch of a cap that shrank since), max blocks
 * of it, the rest staying a batch; returns how many blocks. */
uint32_t hak_store_take(hak_heap *h, int cls, uint32_t max, hak_block **head) {
    if (!stores_of(h)) return 0;
    struct hak_store *st = store_of(h, cls);
    uint32_t got = 0;
    if (st->head && batch_of(st->head)->n > max) {
        if (max == 0) return 0;
        struct batch *b = batch_of(st->head);
        hak_block *last = &b->blk;
        for (uint32_t i = 1; i < max; i++) last = last->next;
        struct batch *rest = batch_of(last->next);
        rest->next_batch = b->next_batch;
        rest->last = b->last;
        rest->n = b->n - max;
        st->head = &rest->blk;
        last->next = *head;
        *head = &b->blk;
        got = max;
    }
    while (st->head && got + batch_of(st->head)->n <= max) {
        struct batch *b = batch_of(st->head);
        st->head = b->next_batch;
        got += (uint32_t)b->n;
        b->last->next = *head;
        *head = &b->blk;
    }
    st->n -= got;
    return got;
}

/* Returns to their spans the stores nobody used for the purge delay (all if
 * force), their blocks stamped with the store's last use, so the purge that
 * follows takes their pages at once. Owner or purger (no counters, no span
 * released: the owner's next settle or trim does that). Returns whether
 * some store still holds blocks. */
bool hak_store_purge(hak_heap *h, uint64_t now, uint64_t delay, bool force) {
    bool left = false;
    struct hak_store *all = stores_of(h);
    for (int i = 0; all && i < HAK_STORE_N; i++) {
        struct hak_store *st = &all[i];
        if (!st->n) continue;
        if (!force && now - st->used_ns < delay) {
            left = true;
            continue;
        }
        for (hak_block *first = st->head, *nb; first; first = nb) {
            nb = batch_of(first)->next_batch;
            for (hak_block *b = first, *next; b; b = next) {
                next = b->next;
                hak_span_take_back(h, b, st->used_ns);
            }
        }
        st->head = NULL;
        st->n = 0;
    }
    return left;
}

/* The owner gives the whole store of cls back (exit, trim): through the
 * flush, which settles and releases the spans it empties. */
void hak_store_empty(hak_heap *h, int cls) {
    hak_heap_lock(h);
    hak_block *list = NULL;
    uint32_t n = hak_store_take(h, cls, UINT32_MAX, &list);
    hak_heap_unlock(h);
    if (n) hak_flush_list(h, cls, list, n);
}

/* The stash: the store's cheap half, for the classes whose caches hold 8
 * blocks or more (5-32 KiB by default). A full cache moves its colder half
 * (the bottom of the stack) there as one batch, an empty one takes the top
 * batch back: a walk of half a cache's links (hot lines) and one exchange,
 * no heap lock, no check of the blocks, no poll. Without it a cache of 8-16
 * blocks took a flush or refill (~600 instructions each) every ~16
 * operations of a class (mid_large_mt-8k-32k: 3,966 per 200 k operations).
 * The bound on what no purge reaches stays the cache's (256 KiB a class):
 * the stash holds up to one cache more, and it is not the owner's alone:
 * a trim or the drain of an owner idle for a purge delay (hak_stash_purge,
 * under the heap lock) exchanges it for NULL and flushes it, checked, to
 * the spans. The owner exchanges it for NULL too, so whatever it then holds
 * is its own until it stores the stash back (release: a purge that takes
 * it reads the batch headers). Blocks of other heaps ride along (the
 * cache's blocks are not walked on the way in): they go to their owners
 * when the stash is flushed, as the cache's would. docs/allocator.md, "The
 * stash". */
#ifndef HAK_STASH_CAPS
#define HAK_STASH_CAPS 2
#endif
enum { STASH_CAPS = HAK_STASH_CAPS };

static struct hak_store *stash_of(hak_heap *h, int cls) {
    struct hak_store *all = h->store; /* the owner made it: no acquire */
    return all ? &all[cls - HAK_PURGE_CLS_MIN] : NULL;
}

static bool stash_class(const struct hak_tbin *bin, int cls) {
    return cls >= HAK_PURGE_CLS_MIN && cls < HAK_STASH_CLS_END && bin->cap >= HAK_STASH_MIN_CAP &&
           bin->cap == bin->cap_max;
}

static void stash_moved(hak_heap *h) {
    __atomic_store_n(&h->stash_ops, h->stash_ops + 1, __ATOMIC_RELAXED);
}

/* Flushes a stash taken whole: checked, to the spans and other heaps. */
static void stash_flush(hak_heap *h, int cls, hak_block *top) {
    while (top) {
        struct batch *b = batch_of(top);
        hak_block *next = b->next_batch;
        hak_flush_list(h, cls, top, (uint32_t)b->n);
        top = next;
    }
}

bool hak_stash_put(hak_heap *h, struct hak_tbin *bin, int cls) {
    struct hak_store *st;
    if (!stash_class(bin, cls) || !(st = stash_of(h, cls))) return false;
    uint32_t count = hak_tbin_count(bin), keep = bin->cap / 2, n = count - keep;
    if (count <= keep) return false;
    hak_block *below = atomic_exchange_explicit(&st->stash, NULL, memory_order_relaxed);
    if (!below) st->stash_n = 0; /* a purge took it */
    if (st->stash_n + n > bin->cap * STASH_CAPS) {
        if (below) atomic_store_explicit(&st->stash, below, memory_order_release);
        return false; /* full: the ordinary flush, to the store */
    }
    hak_block *cut = bin->head;
    for (uint32_t i = 1; i < keep; i++) cut = cut->next;
    struct batch *b = batch_of(cut->next);
    cut->next = NULL;
    b->next_batch = below;
    b->n = n;
    atomic_store_explicit(&st->stash, &b->blk, memory_order_release);
    st->stash_n += n;
    bin->room = bin->cap - keep;
    stash_moved(h);
    /* counted as the flush it stands for (the decay's low water reads the
     * flushes: a move voids it as a flush does) */
    HAK_BIN_CTR(bin, FREE_SLOW)++;
    HAK_BIN_CTR(bin, FLUSHES)++;
    HAK_BIN_CTR(bin, FLUSH_BLOCKS) += n;
    hak_purger_wake_soon(); /* an idle purger must come back for it */
    return true;
}

bool hak_stash_take(hak_heap *h, struct hak_tbin *bin, int cls) {
    struct hak_store *st;
    if (!stash_class(bin, cls) || !(st = stash_of(h, cls))) return false;
    if (!atomic_load_explicit(&st->stash, memory_order_relaxed)) return false; /* no exchange */
    hak_block *top = atomic_exchange_explicit(&st->stash, NULL, memory_order_relaxed);
    if (!top) {
        st->stash_n = 0; /* a purge took it meanwhile */
        return false;
    }
    struct batch *b = batch_of(top);
    uint32_t n = (uint32_t)b->n;
    if (bin->head || n > bin->room) {
        /* not an empty cache, or its cap shrank since (bin_open empties
         * the stash then): left as it was */
        atomic_store_explicit(&st->stash, top, memory_order_release);
        return false;
    }
    atomic_store_explicit(&st->stash, b->next_batch, memory_order_release);
    st->stash_n -= n;
    bin->head = top;
    bin->room -= n;
    stash_moved(h);
    HAK_BIN_CTR(bin, ALLOC_SLOW)++; /* and the refill it stands for */
    HAK_BIN_CTR(bin, REFILLS)++;
    HAK_BIN_CTR(bin, REFILL_BLOCKS) += n;
    return true;
}

void hak_stash_empty(hak_heap *h, int cls) {
    struct hak_store *st = stash_of(h, cls);
    hak_block *top = st ? atomic_exchange_explicit(&st->stash, NULL, memory_order_acquire) : NULL;
    if (st) st->stash_n = 0;
    if (top) stash_flush(h, cls, top);
}

/* A trim, or an owner idle for a purge delay (hak_heaps_drain_idle: force):
 * every stash of h to the spans (the purge that follows is forced: their
 * pages go at once). The heap lock held; the owner may be running: the
 * exchange decides who has it. Returns whether a stash holds blocks (not
 * force): the purger's passes go on, so that its drain comes once the
 * owner sleeps. */
bool hak_stash_purge(hak_heap *h, bool force) {
    struct hak_store *all = stores_of(h);
    bool left = false;
    for (int i = 0; all && i < HAK_STORE_N; i++) {
        if (HAK_PURGE_CLS_MIN + i >= HAK_STASH_CLS_END) break;
        if (!atomic_load_explicit(&all[i].stash, memory_order_relaxed)) continue;
        if (!force) {
            left = true;
            continue;
        }
        hak_block *top = atomic_exchange_explicit(&all[i].stash, NULL, memory_order_acquire);
        if (top) stash_flush(h, HAK_PURGE_CLS_MIN + i, top);
    }
    return left;
}
