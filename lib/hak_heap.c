/* hak_heap.c — heaps and threads: a heap per thread, taken from the pool at
 * the thread's first slow path and abandoned to the pool when it exits, so
 * the next thread takes over its memory (and the memory other threads freed
 * into it). The pool lock is the only lock here, taken on thread start/exit
 * and by adopt. */
#include "hak_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

__thread struct hak_tls hak_tls __attribute__((tls_model("initial-exec")));

hak_lock_t hak_pool_lock;
atomic_int hak_live_threads;     /* threads with a heap: private, unlike the segment's figure */
static hak_heap *pool_abandoned; /* heaps with memory, no owner */
static hak_heap *pool_free;      /* heaps with nothing, no owner */
static hak_heap *all_heaps;
static atomic_int abandoned_n;
/* heap structs, private counters, and what heaps make on first use:
 * under arena_lock, a leaf (taken under the pool lock and under a heap's) */
static hak_lock_t arena_lock;
static char *arena_cur, *arena_end;
static size_t arena_chunk = 32 << 10; /* the last chunk's size, doubled for the next */
static atomic_ullong trim_epoch = 1;
/* Orphan counts (threads past their exit): a row per class, laid out as
 * the segment's last HAK_NUM_CSLOTS rows, which they move to (ORPHAN_ROW). */
#define ORPHAN_INDEX(c, id) ((size_t)(c)*HAK_SHM_ROW_WORDS + (size_t)(id))
#define ORPHAN_ROW (HAK_SHM_ROWS - HAK_NUM_CSLOTS)
static uint64_t orphan_private[HAK_NUM_CSLOTS * HAK_SHM_ROW_WORDS] HAK_SPARSE_BSS("orphan_private");
uint64_t *hak_orphan_ctr = orphan_private;

/* align: a power of two, 8 at least (sizes rounded to it, up to 64).
 * Fresh memory from mmap, never reused: zeroed. */
static void *arena_alloc_aligned(size_t n, size_t align) {
    size_t r = align < 64 ? align : 64;
    n = (n + r - 1) & ~(r - 1);
    hak_lock(&arena_lock);
    char *at = (char *)(((uintptr_t)arena_cur + align - 1) & ~(uintptr_t)(align - 1));
    if (!arena_cur || at > arena_end || (size_t)(arena_end - at) < n) {
        /* 64 KiB first (a process of one thread), then twice the last, up
         * to 1 MiB: a pool of 1,000 threads' heaps (12 KiB each) in 16
         * mappings, not 200 (untouched address space costs nothing) */
        size_t chunk = arena_chunk < (1u << 20) ? (arena_chunk *= 2) : arena_chunk;
        if (chunk < n) chunk = n;
        char *p =
            hak_sys_mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            hak_unlock(&arena_lock);
            return NULL;
        }
        arena_end = p + chunk;
        at = p;
    }
    arena_cur = at + n;
    hak_unlock(&arena_lock);
    return at;
}

static void *arena_alloc(size_t n) {
    return arena_alloc_aligned(n, 64);
}

void *hak_heap_extra(size_t n) {
    return arena_alloc(n);
}

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
    int cls;
};
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
    while (s && s->cls != cls) s = s->next;
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
static struct hak_srow *srow_make(struct hak_shm_header *shm, hak_heap *h, int cls) {
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
    struct hak_srow *s = arena_alloc_aligned(sizeof *s, 8);
    if (!s) return NULL;
    /* a reader sums a row under its tag: set once, before the first count */
    __atomic_store_n((uint32_t *)((char *)shm + row_offset(row) + hak_layout.row_tag_off),
                     (uint32_t)cls + 1, __ATOMIC_RELEASE);
    s->row = row;
    s->cls = cls;
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
                                                         bool snapshot) {
    for (struct hak_crow *w = __atomic_load_n(&h->rows, __ATOMIC_ACQUIRE); w; w = w->next) {
        const volatile uint64_t *v = w->c;
        int i = 0;
        while (snapshot && i < HAK_NUM_CTRS && !v[i]) i++;
        if (i == HAK_NUM_CTRS) continue; /* nothing to show yet: no row */
        struct hak_srow *s = srow_find(h, w->cls);
        if (!s && !(s = srow_make(shm, h, w->cls))) return -1;
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
    struct hak_shm_header *shm = hak_shm;
    if (shm && !h->shm_never && !h->shm_bound) {
        if (fresh || rows_copy(shm, h, false) == 0) {
            h->shm_bound = true;
            return;
        }
        for (struct hak_srow *s = h->srows; s; s = s->next)
            memset(srow_ctr(shm, s->row), 0, HAK_NUM_CTRS * 8);
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
static void bin_open(int c, uint64_t *row);
uint64_t *hak_ctr_row_make(int cls) {
    hak_heap *h = hak_tls.heap;
    uint64_t *r = &orphan_private[ORPHAN_INDEX(cls, 0)];
    if (!h) return r;
    struct hak_shm_header *shm = h->shm_bound ? hak_shm : NULL;
    struct hak_srow *s = NULL;
    /* a fork child between leaving the segment and unbinding: counts lost */
    if (h->shm_bound && !shm) return r;
    if (shm && ((s = srow_find(h, cls)) != NULL || (s = srow_make(shm, h, cls)) != NULL)) {
        r = srow_ctr(shm, s->row);
    } else { /* the segment full: a private row, which only mallinfo sees */
        struct hak_crow *w = h->rows;
        while (w && w->cls != cls) w = w->next;
        if (!w && (w = arena_alloc_aligned(sizeof *w, 8)) != NULL) {
            w->cls = cls;
            w->next = h->rows;
            __atomic_store_n(&h->rows, w, __ATOMIC_RELEASE);
        }
        if (!w) return r;
        r = w->c;
    }
    bin_open(cls, r);
    return r;
}

/* The segment appeared: the calling thread moves its own heap's counters
 * (under the pool lock: hak_heaps_publish may be copying them). */
static void heap_publish_self(hak_heap *h) {
    hak_lock(&hak_pool_lock);
    hak_heap_bind_counters(h, false);
    hak_unlock(&hak_pool_lock);
    if (h->shm_bound) hak_knobs_apply_tls(); /* rebinds the bins' counter rows */
}
#define HEAP_UNBOUND(h) (HAK_UNLIKELY(!(h)->shm_bound && !(h)->shm_never) && hak_shm)

/* The segment appears. Heaps no thread owns move their counters now. An
 * owned heap's counters are copied into its rows, so that a thread blocked
 * since before (which counts nothing meanwhile) shows exact figures; its
 * owner moves them for good at its next slow path, copying over whatever
 * it counted since. The pool lock orders the two copies. */
void hak_heaps_publish(struct hak_shm_header *shm) {
    hak_lock(&hak_pool_lock);
    __atomic_store_n(&hak_shm_ptr, shm, __ATOMIC_RELEASE);
    for (hak_heap *h = all_heaps; h; h = h->all_next) {
        if (h->owner <= 0) {
            hak_heap_bind_counters(h, false);
        } else if (!h->shm_never && !h->shm_bound) {
            rows_copy(shm, h, true);
        }
    }
    hak_unlock(&hak_pool_lock);
}

/* An ownerless heap goes back to the pool: with memory to the abandoned
 * list (a new thread takes it over whole), without to the free list.
 * The caller holds the pool lock; pool_run was set while it owned h. */
static void pool_put(hak_heap *h) {
    if (h->segs) {
        h->pool_next = pool_abandoned;
        pool_abandoned = h;
        atomic_fetch_add(&abandoned_n, 1);
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
    h->all_next = all_heaps;
    /* release: a fork child walks the list without the lock (its holder may
     * be lost), so a heap is linked only once complete */
    __atomic_store_n(&all_heaps, h, __ATOMIC_RELEASE);
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
    if (HEAP_UNBOUND(h)) hak_heap_bind_counters(h, false);
}

/* The calling thread, owner of h, starts using it. */
static void heap_attach(hak_heap *h) {
    hak_tls.heap = h;
    hak_tls.trim_epoch = atomic_load(&trim_epoch);
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
        sched_yield();
    }
    return heap_get_slow(want);
}

/* Takes an ownerless heap out of the abandoned pool, looking at no more
 * than `max` entries (the caller then owns it, as an adopter does); false
 * if it is not there (being taken over). The pool lock held. */
static bool pool_take(hak_heap *h, int max) {
    hak_heap **pp = &pool_abandoned;
    for (int i = 0; *pp && i < max; i++, pp = &(*pp)->pool_next)
        if (*pp == h) {
            *pp = h->pool_next;
            atomic_fetch_sub(&abandoned_n, 1);
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
    if (want && pool_take(want, 64)) {
        h = want;
    } else if ((h = pool_abandoned) != NULL) {
        pool_abandoned = h->pool_next;
        atomic_fetch_sub(&abandoned_n, 1);
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

/* The calling thread gives its heap up: every cached block back, remote
 * frees drained, empty spans released; the heap goes to the pool with the
 * rest, for the next thread (or one out of memory, hak_heap_swap). */
static void heap_leave(hak_heap *h, bool help) {
    if (HEAP_UNBOUND(h)) heap_publish_self(h);
    leave_flush(h);
    hak_remote_drain(h);
    hak_starter_tidy(false); /* the blocks it took from the starter, just flushed there */
    bool warm = hak_heap_holds_blocks(h);
    hak_heap_lock(h); /* once, not per class (leave_flush) */
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t kept = 0;
        if (warm)
            hak_release_empty_warm(h, c, &kept);
        else
            hak_release_empty(h, c, &kept);
        if (kept) HAK_CTR(c, PUBLISHED) += kept; /* untouched rows stay unwritten */
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
    pool_put(h);
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
    if (atomic_load_explicit(&abandoned_n, memory_order_relaxed) == 0) return NULL;
    int need = hak_span_min_pages(cls);
    hak_lock(&hak_pool_lock);
    hak_heap *a = NULL, **pp = &pool_abandoned;
    for (int i = 0; *pp && i < 64; i++, pp = &(*pp)->pool_next) {
        if ((*pp)->partial[cls] || (*pp)->pool_run >= need) {
            a = *pp;
            *pp = a->pool_next;
            atomic_fetch_sub(&abandoned_n, 1);
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
bool hak_heap_reclaim_abandoned(bool warm) {
    if (atomic_load_explicit(&abandoned_n, memory_order_relaxed) == 0) return false;
    hak_lock(&hak_pool_lock);
    hak_heap *a = NULL, **pp = &pool_abandoned;
    for (int i = 0; *pp && i < 8; i++, pp = &(*pp)->pool_next) {
        if (atomic_load_explicit(&(*pp)->remote_spans, memory_order_relaxed)) {
            a = *pp;
            *pp = a->pool_next;
            atomic_fetch_sub(&abandoned_n, 1);
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
    hak_segment_purge(a, false); /* its free pages go back to the OS on the usual delay */
    HAK_PROBE2(adopt, a, released);
    a->pool_run = hak_segment_free_run(a);
    hak_lock(&hak_pool_lock);
    pool_put(a);
    hak_unlock(&hak_pool_lock);
    return released != 0;
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
        hak_tls.bins[s->cls].ctr = srow_ctr(shm, s->row);
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

/* This thread's part of a trim (and of out-of-memory recovery): every
 * cached block back to its span, remote frees drained, every empty span
 * given back (the classes' last partial ones too), free pages purged. The
 * heap answers the epoch in force (hak_heaps_unanswered). */
static void heap_give_back(hak_heap *h) {
    uint64_t e = atomic_load(&trim_epoch);
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
    if (HEAP_UNBOUND(h)) heap_publish_self(h);
    if (hak_shm) {
        if (HAK_UNLIKELY(HAK_SHM_LOAD(knob_gen) !=
                         __atomic_load_n(&hak_knob_gen_applied, __ATOMIC_ACQUIRE)))
            hak_knobs_reload();
        if (HAK_UNLIKELY(HAK_SHM_LOAD(trim_req) != HAK_SHM_LOAD(trim_done))) hak_trim_all();
    }
    if (HAK_UNLIKELY(hak_tls.knob_gen != __atomic_load_n(&hak_knob_gen_applied, __ATOMIC_ACQUIRE)))
        hak_knobs_apply_tls();
    if (HAK_UNLIKELY(hak_tls.trim_epoch != atomic_load_explicit(&trim_epoch, memory_order_relaxed)))
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
    uint64_t e = atomic_fetch_add(&trim_epoch, 1) + 1;
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
    for (hak_heap *h = all_heaps; h && !found; h = h->all_next) {
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
 * may see half done is one it sees here: hak_heaps_leave_parent retires
 * that heap (drain_lost) if the lock's holder was lost. */
static hak_heap *_Atomic draining;
static hak_heap *drain_lost;

/* Purges the due free pages of every heap, owned or abandoned, never
 * waiting for an owner (a retired heap whose thread died in a fork holding
 * its lock stays locked and is skipped). Heaps are never freed and all_next never changes after a
 * heap is linked, so the walk needs the pool lock only for the head. */
bool hak_heaps_purge_all(bool force) {
    hak_lock(&hak_pool_lock);
    hak_heap *h = all_heaps;
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
    hak_heap *h = all_heaps;
    hak_unlock(&hak_pool_lock);
    bool left = false;
    /* HAK_CTR counts through the bins' rows (hak_ctr_row): the purger's
     * point at bg_ctr while it works, and are put back after */
    uint64_t *rows[HAK_NUM_CSLOTS];
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) rows[c] = hak_tls.bins[c].ctr;
    for (; h; h = h->all_next) {
        if (h->shared) continue; /* the starter: hak_starter_tidy */
        uint32_t polls = __atomic_load_n(&h->polls, __ATOMIC_RELAXED);
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
        bool pooled = owner == 0 && pool_take(h, INT_MAX), locked = false;
        if (owner > 0 || pooled) locked = hak_heap_trylock(h);
        hak_unlock(&hak_pool_lock);
        if (!locked) {
            if (pooled) {
                hak_lock(&hak_pool_lock);
                pool_put(h);
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
            pool_put(h);
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
    for (hak_heap *h = all_heaps; h; h = h->all_next) {
        bool bound = h->shm_bound && shm;
        for (struct hak_srow *s = bound ? __atomic_load_n(&h->srows, __ATOMIC_ACQUIRE) : NULL; s;
             s = s->next)
            ctr_sum_row(srow_ctr(shm, s->row), s->cls, &live, &cap);
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

/* Fork child, the pool lock's holder lost half-way (hak_fork.c): the pools
 * may be broken. Forget them: the pooled heaps stay out of use with their
 * memory (a bounded leak in the child), all_heaps is whole (linked last,
 * see heap_new). The arena's holder lost: its tail may be broken, the next
 * allocation maps a new chunk. */
void hak_pool_after_fork(void) {
    if (hak_lock_take_orphan(&arena_lock)) {
        arena_cur = arena_end = NULL;
        hak_unlock(&arena_lock);
    }
    if (!hak_lock_take_orphan(&hak_pool_lock)) return;
    pool_abandoned = pool_free = NULL;
    atomic_store(&abandoned_n, 0);
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
    memset(orphan_private, 0, sizeof orphan_private); /* fresh, like every heap's */
    if (hak_lock_take_orphan(&orphan_lock)) hak_unlock(&orphan_lock);
    if (hak_lock_take_orphan(&rows_lock)) hak_unlock(&rows_lock);
    rows_seg = NULL; /* the parent's */
    __atomic_store_n(&orphan_seg, NULL, __ATOMIC_RELAXED);
    hak_orphan_bind();
    atomic_store_explicit(&rows_next, 0, memory_order_relaxed); /* of our own segment, later */
    for (hak_heap *h = __atomic_load_n(&all_heaps, __ATOMIC_ACQUIRE); h; h = h->all_next) {
        if (h->shm_bound) { /* the parent's segment is not ours: fresh private counters */
            h->shm_bound = false;
            hak_heap_bind_counters(h, true);
        } else { /* word by word: rows never counted in stay untouched */
            rows_clear(h);
        }
        h->srows = NULL; /* a snapshot's rows, in the parent's segment */
    }
    HAK_PROC_PTR()[HAK_PROC_THREADS] = 0;
    atomic_store(&hak_live_threads, 0);
    /* The purger lost half-way through a drain: that heap's span lists may
     * be half-updated. It is retired for good, its lock too (a wait for it
     * then fails loudly, never takes it over): a bounded leak in the child.
     * Its owner, if it came through the fork, takes a new heap as it
     * settles (hak_heap_after_fork_self), before its first lock. */
    hak_heap *d = atomic_load(&draining);
    drain_lost = NULL; /* a grandchild's: its parent's is no heap in use */
    if (d && hak_lock_take_orphan(&d->seg_lock)) {
        d->owner = -1;
        d->lock_depth = 0;
        atomic_store_explicit(&d->lock_holder, NULL, memory_order_relaxed);
        hak_lock_retire(&d->seg_lock);
        drain_lost = d;
    }
    atomic_store(&draining, NULL);
    if (others_run) hak_unlock(&hak_pool_lock);
}

/* This thread came through a fork (hak_fork_settle): its heap is its own
 * under its tid here, counts where the heap now does, and it lives. */
HAK_COLD void hak_heap_after_fork_self(void) {
    hak_heap *me = hak_tls.heap;
    if (!me) return;
    if (me == drain_lost) {
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
    hak_knobs_apply_tls();
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
    for (hak_heap *h = __atomic_load_n(&all_heaps, __ATOMIC_ACQUIRE); h; h = h->all_next)
        if (h != me && h->owner > 0) h->owner = -1; /* retired with its thread */
}
