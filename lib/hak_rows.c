/* hak_rows.c — counter rows: where a heap's counts go (the segment's rows
 * once there is a segment, private rows before or when it is full), the
 * orphan rows (threads past their exit, the purger), the bins bound to
 * them (a bin's row and caps: hak_knobs_apply_tls, which binds the bins
 * anew after a knob change, lives here because the bins point at the rows
 * whose layout only this file knows), the publication of the segment to
 * the heaps, mallinfo's sum over them, and the rows' part of fork. Locks:
 * the pool lock (hak_heap.c) orders a heap's counters moving with
 * publication's snapshot; rows_lock and orphan_lock are leaves. */
#include "hak_internal.h"

#include <string.h>

/* Orphan counts (threads past their exit): a row per class, laid out as
 * the segment's last HAK_NUM_CSLOTS rows, which they move to (ORPHAN_ROW). */
#define ORPHAN_INDEX(c, id) ((size_t)(c)*HAK_SHM_ROW_WORDS + (size_t)(id))
#define ORPHAN_ROW (HAK_SHM_ROWS - HAK_NUM_CSLOTS)
static uint64_t orphan_private[HAK_NUM_CSLOTS * HAK_SHM_ROW_WORDS] HAK_SPARSE_BSS("orphan_private");
uint64_t *hak_orphan_ctr = orphan_private;

/* Private counters: a row per class, made at the class's first count
 * (hak_ctr_row_make) and linked to the heap, never freed (a heap that moves
 * to the segment keeps them for a fork child). A heap counts in segment
 * rows (hak_srow) once the segment is up; before that, and for good if the
 * segment's rows run out, in these. The rows are what a thread of few
 * classes writes: a pool thread of 12 blocks of 16-1024 B counts in about
 * 8 of them (1.2 KiB, with the struct's 656 B: many_threads 1000 12,
 * docs/allocator.md). Packed, 152 bytes: a row's hot words (allocs, frees)
 * come first; a cache line it shares with the row before holds that row's
 * rarely written tail (spans, adoption, large bytes, realloc copies) and
 * its link. */
uint64_t hak_ctr_sink[HAK_NUM_CTRS];
struct hak_crow {
    uint64_t c[HAK_NUM_CTRS];
    struct hak_crow *next; /* written before the row is linked (release) */
    int cls;
};

/* A heap's row in the segment (the counters there, HAK_SHM_ROWS of them
 * packed, given out in order as heaps first count in a class: ABI 3,
 * docs/shm.md): which row holds class cls, privately, since nothing read
 * back from the segment is trusted. 16 bytes; a bound heap's list,
 * hak_heap.srows, pushed by its owner (release), or by the publication's
 * snapshot under the pool lock before the owner binds. */
struct hak_srow {
    struct hak_srow *next;
    uint32_t row;
    uint16_t cls;
    uint16_t gen; /* rows_gen when its maker read the segment pointer */
};

/* The rows' generation: a fork child starts the next one (its fork
 * handler, hak_rows_leave_parent), and rows of an older one are the
 * parent's segment's, never used again. It matters where a signal
 * handler's fork interrupted a row's making (or a heap's binding) and the
 * child resumes it: the child links a row numbered in its parent's segment
 * after its handler dropped them all. The maker reads the generation
 * before the segment pointer, so such a row carries the old one. */
static uint16_t rows_gen;

static uint16_t rows_gen_read(void) {
    uint16_t g = __atomic_load_n(&rows_gen, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_seq_cst); /* before the segment pointer's read */
    return g;
}

static bool srow_live(const struct hak_srow *s) {
    return s->gen == __atomic_load_n(&rows_gen, __ATOMIC_RELAXED);
}
/* The next row to give out in our segment (a fresh one: 0); past the
 * heaps' part (the last HAK_NUM_CSLOTS are the orphans'), the segment
 * is full: heaps count privately. */
static atomic_uint rows_next;

static void rows_clear(hak_heap *h) {
    for (struct hak_crow *w = h->rows; w; w = w->next)
        for (int i = 0; i < HAK_NUM_CTRS; i++)
            if (w->c[i]) w->c[i] = 0;
}

static uint64_t row_offset(uint32_t row) {
    return hak_layout.slot_off + (uint64_t)row * hak_layout.slot_size;
}

static uint64_t *srow_ctr(struct hak_shm_header *shm, uint32_t row) {
    return (uint64_t *)((char *)shm + row_offset(row) + hak_layout.slot_ctr_off);
}

static struct hak_srow *srow_find(hak_heap *h, int cls) {
    struct hak_srow *s = __atomic_load_n(&h->srows, __ATOMIC_ACQUIRE);
    while (s && (s->cls != cls || !srow_live(s))) s = s->next;
    return s;
}

#define ROWS_AHEAD_MAX (32u << 10)
#define ROWS_AHEAD_FROM (32u << 10)
/* under rows_lock: rows of rows_seg from the first past ROWS_AHEAD_FROM to
 * offset rows_end are reserved */
static hak_lock_t rows_lock;
static struct hak_shm_header *rows_seg;
static uint64_t rows_end;

/* Rows go out in order: a row on a new page reserves an eighth of the rows
 * made so far ahead with it (at most 32 KiB, never into the orphans'), so
 * that a thousand threads' rows take tens of calls, not one a page, for at
 * most 8 pages never written. One reservation at a time: threads starting
 * together find the pages the one before them reserved instead of
 * populating them again (many_threads 1000 12 16 1024 1 under strace: 1.3-1.9
 * k calls for 280 pages). A leaf lock; a signal handler's malloc inside it
 * reserves its row alone (a duplicate call at worst); a holder lost in a
 * fork is taken over (nothing to reset). A small program never gets here. */
static HAK_NOINLINE int rows_reserve_ahead(struct hak_shm_header *shm, uint32_t row) {
    uint64_t off = row_offset(row), end = off + hak_layout.slot_size;
    if (atomic_load_explicit(&rows_lock.v, memory_order_relaxed) == hak_self_tid())
        return hak_shm_reserve(shm, off, hak_layout.slot_size);
    hak_lock_as(&rows_lock, HAK_LOCK_TAKE_LOST);
    int rc = 0;
    if (rows_seg != shm || end > rows_end) {
        /* from where the last reservation ended (the first row here: one
         * made after it may have been reserved first), so that every row
         * below rows_end is reserved whatever order their makers came in */
        uint32_t first = (ROWS_AHEAD_FROM + hak_layout.slot_size - 1) / hak_layout.slot_size - 1;
        uint64_t from = rows_seg == shm ? rows_end : row_offset(first);
        uint64_t ahead = (end - hak_layout.slot_off) / 8, room = row_offset(ORPHAN_ROW) - end;
        ahead = ahead < ROWS_AHEAD_MAX ? ahead : ROWS_AHEAD_MAX;
        ahead = ahead < room ? ahead : room;
        uint64_t top = (end + ahead) & ~(uint64_t)4095; /* whole pages ahead */
        if (top > end && hak_shm_reserve(shm, from, top - from) == 0) {
            rows_seg = shm, rows_end = top;
        } else {
            rc = hak_shm_reserve(shm, off, hak_layout.slot_size);
        }
    }
    hak_unlock(&rows_lock);
    return rc;
}

/* Reserves a row (a write there can then never fault), tags it with its
 * class and links it to h; NULL if the segment is full or out of memory. */
static struct hak_srow *srow_make(struct hak_shm_header *shm, hak_heap *h, int cls, uint16_t gen) {
    uint32_t row = atomic_fetch_add_explicit(&rows_next, 1, memory_order_relaxed);
    if (row >= ORPHAN_ROW) {
        atomic_store_explicit(&rows_next, ORPHAN_ROW, memory_order_relaxed); /* no wrap */
        return NULL;
    }
    /* the first rows as they come; from 32 KiB of rows on, ahead */
    uint64_t end = row_offset(row) + hak_layout.slot_size;
    if (end - hak_layout.slot_off < ROWS_AHEAD_FROM
            ? hak_shm_reserve(shm, row_offset(row), hak_layout.slot_size)
            : rows_reserve_ahead(shm, row))
        return NULL;
    struct hak_srow *s = hak_arena_alloc_aligned(sizeof *s, 8);
    if (!s) return NULL;
    /* a reader sums a row under its tag: set once, before the first count */
    __atomic_store_n((uint32_t *)((char *)shm + row_offset(row) + hak_layout.row_tag_off),
                     (uint32_t)cls + 1, __ATOMIC_RELEASE);
    s->row = row;
    s->cls = (uint16_t)cls;
    s->gen = gen;
    s->next = h->srows;
    __atomic_store_n(&h->srows, s, __ATOMIC_RELEASE);
    return s;
}

/* The orphan rows are reserved at the first orphan count, not when the
 * segment appears: a program whose threads never outlive their heaps (most
 * small ones) keeps their three pages unmapped. orphan_seg is the segment
 * whose rows we tried (bound when orphan_bound), under orphan_lock. */
static hak_lock_t orphan_lock;
static struct hak_shm_header *orphan_seg;
static bool orphan_bound;

/* Where orphan counts go: the slot of the segment once reserved, privately
 * before (or after fork, or if the slot cannot be had); what was counted
 * before moves along (an add racing with the move may be lost). Under
 * orphan_lock, or in a fork child (one thread). */
void hak_orphan_bind(void) {
    struct hak_shm_header *shm = hak_shm;
    if (!shm || shm != __atomic_load_n(&orphan_seg, __ATOMIC_RELAXED)) orphan_bound = false;
    uint64_t *o = orphan_bound ? srow_ctr(shm, ORPHAN_ROW) : orphan_private;
    if (orphan_bound)
        for (int c = 0; c < HAK_NUM_CSLOTS; c++) {
            for (int i = 0; i < HAK_NUM_CTRS; i++)
                o[ORPHAN_INDEX(c, i)] =
                    __atomic_load_n(&orphan_private[ORPHAN_INDEX(c, i)], __ATOMIC_RELAXED);
            __atomic_store_n(
                (uint32_t *)((char *)shm + row_offset(ORPHAN_ROW + c) + hak_layout.row_tag_off),
                (uint32_t)c + 1, __ATOMIC_RELEASE);
        }
    __atomic_store_n(&hak_orphan_ctr, o, __ATOMIC_RELEASE);
}

/* The first orphan count since the segment appeared: reserve the rows (a
 * try-lock: a signal handler's free must not wait for its own thread; its
 * count goes where the pointer points meanwhile). */
static HAK_NOINLINE void orphan_slot_bind(struct hak_shm_header *shm) {
    if (!hak_trylock(&orphan_lock)) return;
    if (hak_shm == shm && __atomic_load_n(&orphan_seg, __ATOMIC_RELAXED) != shm) {
        __atomic_store_n(&orphan_seg, shm, __ATOMIC_RELAXED);
        orphan_bound = hak_shm_reserve(shm, row_offset(ORPHAN_ROW),
                                       (uint64_t)HAK_NUM_CSLOTS * hak_layout.slot_size) == 0;
        hak_orphan_bind();
    }
    hak_unlock(&orphan_lock);
}

void hak_orphan_add(int cls, int id, uint64_t n) {
    struct hak_shm_header *shm = hak_shm;
    if (HAK_UNLIKELY(shm && __atomic_load_n(&orphan_seg, __ATOMIC_RELAXED) != shm))
        orphan_slot_bind(shm);
    __atomic_fetch_add(&__atomic_load_n(&hak_orphan_ctr, __ATOMIC_ACQUIRE)[ORPHAN_INDEX(cls, id)],
                       n, __ATOMIC_RELAXED);
}

/* Copies a heap's private rows into its segment rows, made as needed; 0,
 * or -1 if a row could not be had. With snapshot, a copy of an owned
 * heap's counts at publication (hak_heaps_publish), so that a thread
 * blocked since before shows exact figures: its owner may be writing them,
 * and linking a new row, meanwhile: a statistics read, racy by design (as
 * a reader in another process is); a word at a time, untorn. The owner's
 * bind copies them again over the snapshot. */
__attribute__((no_sanitize_thread)) static int rows_copy(struct hak_shm_header *shm, hak_heap *h,
                                                         bool snapshot, uint16_t gen) {
    for (struct hak_crow *w = __atomic_load_n(&h->rows, __ATOMIC_ACQUIRE); w; w = w->next) {
        const volatile uint64_t *v = w->c;
        int i = 0;
        while (snapshot && i < HAK_NUM_CTRS && !v[i]) i++;
        if (i == HAK_NUM_CTRS) continue; /* nothing to show yet: no row */
        struct hak_srow *s = srow_find(h, w->cls);
        if (!s && !(s = srow_make(shm, h, w->cls, gen))) return -1;
        uint64_t *d = srow_ctr(shm, s->row);
        for (i = 0; i < HAK_NUM_CTRS; i++) d[i] = v[i];
    }
    return 0;
}

/* Counters live in the segment's rows once there is a segment, else
 * privately. Only a heap's owner, or whoever holds an ownerless heap, binds
 * it: the counts move with no writer racing. A heap whose rows cannot all
 * be had is given up: it counts privately for good (its rows in the
 * segment zeroed, so that readers see no stale snapshot). A bound heap
 * takes a row at each class's first count (hak_ctr_row_make): many_threads
 * 1000 12 16 1024 1, 8 rows of 144 B a thread where a slot per heap of
 * 8384 B made 6.2 KiB of pages resident (docs/shm.md). */
void hak_heap_bind_counters(hak_heap *h, bool fresh) {
    uint16_t gen = rows_gen_read();
    struct hak_shm_header *shm = hak_shm;
    if (shm && !h->shm_never && !h->shm_bound) {
        if (fresh || rows_copy(shm, h, false, gen) == 0) {
            h->shm_bound = true;
            return;
        }
        for (struct hak_srow *s = h->srows; s; s = s->next)
            if (srow_live(s)) memset(srow_ctr(shm, s->row), 0, HAK_NUM_CTRS * 8);
        h->shm_never = true;
    }
    if (!h->shm_bound) {
        /* rows unused while it counted in the segment (fork child): zero */
        if (fresh) rows_clear(h);
        h->srows = NULL; /* the rows of a segment that is not (or no longer) ours */
    }
}

/* The calling thread's row of class cls (its bin had none): made in the
 * segment if its heap counts there, else (or the segment full) privately,
 * and the bin opened (caps from the knobs, as hak_knobs_apply_tls). Out of
 * memory, or no heap: the orphan row (counts may be lost). */
/* h's private row of cls, made if it has none (from the arena: if !wait
 * only when its lock is free); NULL out of memory. */
static struct hak_crow *crow_get(hak_heap *h, int cls, bool wait) {
    struct hak_crow *w = h->rows;
    while (w && w->cls != cls) w = w->next;
    if (w) return w;
    w = wait ? hak_arena_alloc_aligned(sizeof *w, 8) : hak_arena_try_alloc_aligned(sizeof *w, 8);
    if (!w) return NULL;
    w->cls = cls;
    w->next = h->rows;
    __atomic_store_n(&h->rows, w, __ATOMIC_RELEASE);
    return w;
}

static void bin_open(int c, uint64_t *row);
uint64_t *hak_ctr_row_make(int cls) {
    hak_heap *h = hak_tls.heap;
    uint64_t *r = &orphan_private[ORPHAN_INDEX(cls, 0)];
    if (!h) return r;
    uint16_t gen = rows_gen_read();
    struct hak_shm_header *shm = h->shm_bound ? hak_shm : NULL;
    struct hak_srow *s = NULL;
    /* a fork child between leaving the segment and unbinding: counts lost */
    if (h->shm_bound && !shm) return r;
    if (shm && ((s = srow_find(h, cls)) != NULL || (s = srow_make(shm, h, cls, gen)) != NULL)) {
        r = srow_ctr(shm, s->row);
    } else { /* the segment full: a private row, which only mallinfo sees */
        struct hak_crow *w = crow_get(h, cls, true);
        if (!w) return r;
        r = w->c;
    }
    bin_open(cls, r);
    return r;
}

/* Fork child handler (hak_heap_after_fork_self): the bins count in the
 * heap's fresh private rows from the fork on (hak_rows_leave_parent dropped
 * the segment's), so a child's counts are exact. Nothing but the row
 * pointers changes: the caps wait for the next slow path (see there). A
 * row is made only if the arena's lock is free; held, this thread holds it
 * (the code a signal handler's fork interrupted), and that class counts in
 * the sink until the next slow path. */
void hak_bins_rebind_rows(void) {
    hak_heap *h = hak_tls.heap;
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) hak_tls.bins[c].ctr = hak_ctr_sink;
    for (struct hak_crow *w = h ? h->rows : NULL; w; w = w->next) hak_tls.bins[w->cls].ctr = w->c;
    for (int c = 0; h && c < HAK_NUM_CLASSES; c++) {
        struct hak_tbin *b = &hak_tls.bins[c];
        struct hak_crow *w = b->ctr == hak_ctr_sink && b->cap ? crow_get(h, c, false) : NULL;
        if (w) b->ctr = w->c;
    }
}

/* The segment appeared: the calling thread moves its own heap's counters
 * (under the pool lock: hak_heaps_publish may be copying them). */
void hak_heap_publish_self(hak_heap *h) {
    hak_lock(&hak_pool_lock);
    hak_heap_bind_counters(h, false);
    hak_unlock(&hak_pool_lock);
    if (h->shm_bound) hak_knobs_apply_tls(); /* rebinds the bins' counter rows */
}

/* The segment appears. Heaps no thread owns move their counters now. An
 * owned heap's counters are copied into its rows, so that a thread blocked
 * since before (which counts nothing meanwhile) shows exact figures; its
 * owner moves them for good at its next slow path, copying over whatever
 * it counted since. The pool lock orders the two copies. */
void hak_heaps_publish(struct hak_shm_header *shm) {
    uint16_t gen = rows_gen_read();
    hak_lock(&hak_pool_lock);
    __atomic_store_n(&hak_shm_ptr, shm, __ATOMIC_RELEASE);
    for (hak_heap *h = hak_all_heaps; h; h = h->all_next) {
        if (h->owner <= 0) {
            hak_heap_bind_counters(h, false);
        } else if (!h->shm_never && !h->shm_bound) {
            rows_copy(shm, h, true, gen);
        }
    }
    hak_unlock(&hak_pool_lock);
}

/* A bin's counter row and caps: cap from the knobs, a shrunk cap flushes
 * the excess. Without a row (a class its heap never counted in) the bin
 * holds nothing and has no room: the class's first malloc or free takes
 * the slow path, which makes the row (hak_ctr_row_make). */
static void bin_open(int c, uint64_t *row) {
    struct hak_tbin *bin = &hak_tls.bins[c];
    bin->ctr = row ? row : hak_ctr_sink;
    if (c >= HAK_NUM_CLASSES) return; /* HAK_CLS_NONE's bin: the large class's row, no room */
    uint32_t cap = hak_safe_free || !row ? 0 : (uint32_t)HAK_KNOB_CLS(FAST_CAP, c);
    uint32_t count = hak_tbin_count(bin);
    /* a stash's batches (half the old cap each) may not fit the new one */
    if (c >= HAK_PURGE_CLS_MIN && cap < bin->cap && hak_tls.heap) hak_stash_empty(hak_tls.heap, c);
    if (count > cap && hak_tls.heap) hak_flush(hak_tls.heap, c, cap);
    count = hak_tbin_count(bin);
    bin->cap_max = hak_tbin_cap_max(c, cap);
    bin->cap = hak_tbin_cap_start(cap, bin->cap_max, bin->cap, c);
    bin->room = bin->cap > count ? bin->cap - count : 0;
}

void hak_knobs_apply_tls(void) {
    hak_tls.knob_gen = __atomic_load_n(&hak_knob_gen_applied, __ATOMIC_ACQUIRE);
    hak_heap *h = hak_tls.heap;
    /* the rows first, in the bins (no table on the stack: a pool thread's
     * first malloc comes through here, and its stack's pages count) */
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) hak_tls.bins[c].ctr = hak_ctr_sink;
    /* a bound heap's private rows: from before the bind (its segment rows,
     * set after, take their place) or made with the segment full */
    for (struct hak_crow *w = h ? h->rows : NULL; w; w = w->next) hak_tls.bins[w->cls].ctr = w->c;
    struct hak_shm_header *shm = h && h->shm_bound ? hak_shm : NULL;
    for (struct hak_srow *s = shm ? h->srows : NULL; s; s = s->next)
        if (srow_live(s)) hak_tls.bins[s->cls].ctr = srow_ctr(shm, s->row);
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) {
        struct hak_tbin *b = &hak_tls.bins[c];
        /* No row and nothing held (most classes of a new thread): cap 0
         * whatever the knobs say (bin_open), so their reads are skipped.
         * thread_churn: 4.1k -> 1.7k instructions a new thread (callgrind) */
        if (b->ctr == hak_ctr_sink && c < HAK_NUM_CLASSES && !hak_tbin_count(b)) {
            b->cap = b->cap_max = b->room = 0;
            continue;
        }
        uint64_t *r = b->ctr == hak_ctr_sink ? NULL : b->ctr;
        /* blocks held without a row: none (they came through a count), but
         * such a bin is never left without room for them */
        if (!r && c < HAK_NUM_CLASSES && h && hak_tbin_count(b)) {
            b->ctr = hak_ctr_sink;
            hak_ctr_row_make(c);
        } else {
            bin_open(c, r);
        }
    }
}

/* Live and cached bytes from the counters of every heap (mallinfo). */
static void ctr_sum_row(const uint64_t *k, int c, uint64_t *live, uint64_t *cap) {
#define K(id) __atomic_load_n(&k[HAK_CTR_##id], __ATOMIC_RELAXED)
    if (c == HAK_CLASS_LARGE) {
        *live += K(LARGE_BYTES);
        return;
    }
    *live += (K(ALLOCS) - K(FREES)) * hak_class_size[c];
    *cap += K(SPAN_BLOCKS) * hak_class_size[c];
#undef K
}

void hak_heap_sum_ctr(uint64_t *live_bytes, uint64_t *cached_bytes) {
    uint64_t live = 0, cap = 0;
    hak_lock(&hak_pool_lock);
    struct hak_shm_header *shm = hak_shm;
    for (hak_heap *h = hak_all_heaps; h; h = h->all_next) {
        bool bound = h->shm_bound && shm;
        for (struct hak_srow *s = bound ? __atomic_load_n(&h->srows, __ATOMIC_ACQUIRE) : NULL; s;
             s = s->next)
            if (srow_live(s)) ctr_sum_row(srow_ctr(shm, s->row), s->cls, &live, &cap);
        /* a bound heap's private rows count if made with the segment full
         * (a class without a segment row): the others were copied there */
        for (struct hak_crow *w = __atomic_load_n(&h->rows, __ATOMIC_ACQUIRE); w; w = w->next)
            if (!bound || !srow_find(h, w->cls)) ctr_sum_row(w->c, w->cls, &live, &cap);
    }
    const uint64_t *o = __atomic_load_n(&hak_orphan_ctr, __ATOMIC_ACQUIRE);
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) ctr_sum_row(o + ORPHAN_INDEX(c, 0), c, &live, &cap);
    hak_unlock(&hak_pool_lock);
    *live_bytes = (int64_t)live < 0 ? 0 : live;
    *cached_bytes = cap > live ? cap - live : 0;
}

/* A fork child (of any kind) counts afresh (hak_heaps_leave_parent, one
 * thread or under the pool lock): orphan counts, and every heap in its own
 * memory: a heap that counted in the parent's segment gets private counters
 * (the parent's range reads as zero pages by now, hak_publish_after_fork,
 * where a stale pointer of a retired heap or of a thread not yet settled
 * may still count), the others are zeroed in place. */
HAK_COLD void hak_rows_leave_parent(void) {
    memset(orphan_private, 0, sizeof orphan_private); /* fresh, like every heap's */
    if (hak_lock_take_orphan(&orphan_lock)) hak_unlock(&orphan_lock);
    if (hak_lock_take_orphan(&rows_lock)) hak_unlock(&rows_lock);
    rows_seg = NULL; /* the parent's */
    __atomic_store_n(&orphan_seg, NULL, __ATOMIC_RELAXED);
    hak_orphan_bind();
    atomic_store_explicit(&rows_next, 0, memory_order_relaxed); /* of our own segment, later */
    __atomic_store_n(&rows_gen, (uint16_t)(rows_gen + 1), __ATOMIC_RELAXED);
    for (hak_heap *h = __atomic_load_n(&hak_all_heaps, __ATOMIC_ACQUIRE); h; h = h->all_next) {
        if (h->shm_bound) { /* the parent's segment is not ours: fresh private counters */
            h->shm_bound = false;
            hak_heap_bind_counters(h, true);
        } else { /* word by word: rows never counted in stay untouched */
            rows_clear(h);
        }
        h->srows = NULL; /* a snapshot's rows, in the parent's segment */
    }
}
