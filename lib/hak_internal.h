/* hak_internal.h — the allocator's types, in one place.
 *
 * Memory is organised in three layers:
 *   segment  4 MiB, 4 MiB-aligned, owned by one heap. Page 0 holds the
 *            segment header (with the page descriptors); pages 1..63 are
 *            64 KiB each. Found from any block address by masking.
 *   span     1..32 contiguous pages carved into blocks of one size class
 *            ("slab"). Its state lives in the descriptor of its first page;
 *            every page of the span carries the class (seg->page_cls, and
 *            its copy in the page window, which free() reads with one load).
 *   heap     per thread: a partial-span list per class, its segments, and a
 *            lock-free stack of spans that received remote frees. Heaps
 *            outlive threads: an exiting thread abandons its heap to a pool,
 *            where a new thread takes it over (or another thread reclaims
 *            its empty memory, "adopt", or a thread out of memory trades
 *            its own heap for it, hak_heap_swap).
 * In front of it all, the thread cache: a singly linked list per class in
 * thread-local storage (hak_tls). That list IS the fast path.
 *
 * Ownership invariants:
 *   - span->free, span->used, the partial lists and segment masks are only
 *     touched by the thread that owns the heap (heap->owner).
 *     Every change to them is made under the heap lock (seg_lock), so the
 *     background purger, holding it, may work on them too: it drains the
 *     remote frees of a heap whose owner sleeps (hak_heaps_drain_idle).
 *   - span->remote is the only field other threads write (CAS push of a
 *     chain of blocks with its count; a flush sends one chain per span and
 *     queues the spans it found empty with their owner, one CAS per owner).
 *     Only the owner takes it (exchange), and only for spans it found on its
 *     remote_spans stack, so each span is on that stack at most once.
 *   - the starter heap (hak_starter.c), where a new thread's first blocks
 *     come from, has no owner thread: whoever holds its seg_lock is its
 *     owner for the fields above. Its blocks are never a thread's own, so a
 *     thread frees them as remote frees.
 *   - the thread-cache decay (hak_tcache.c, heap->tgc) is the owner's too:
 *     only its slow paths (a refill, an overflow) look at its bins and give
 *     blocks back; the fast path neither reads nor writes it.
 *   - every free block has block->key == hak_key (random per process); every
 *     block handed to the user has it cleared. A free of a block whose key is
 *     set is a double free.
 */
#ifndef HAK_INTERNAL_H
#define HAK_INTERNAL_H

#include "hak_sys.h"
#include "hakmem_shm.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_COLD __attribute__((cold)) /* rare (fork, start-up): small code, away from hot code */
#define HAK_EXPORT __attribute__((visibility("default")))

/* USDT probes (lib.mk sets HAK_USDT=1 when <sys/sdt.h> is installed) */
#if HAK_USDT
#include <sys/sdt.h>
#define HAK_PROBE1(n, a) STAP_PROBE1(hakmem, n, a)
#define HAK_PROBE2(n, a, b) STAP_PROBE2(hakmem, n, a, b)
#define HAK_PROBE3(n, a, b, c) STAP_PROBE3(hakmem, n, a, b, c)
#endif
#ifndef HAK_PROBE1
#define HAK_PROBE1(n, a) ((void)0)
#define HAK_PROBE2(n, a, b) ((void)0)
#define HAK_PROBE3(n, a, b, c) ((void)0)
#endif

/* Everything declared below is the library's own (not exported): hidden
 * declarations let the compiler address globals directly instead of
 * through the GOT, one load less on the fast path (hak_key in free). */
#pragma GCC visibility push(hidden)

/* A small spinlock for slow paths; yields under contention. The word holds
 * the holder's tid (0 free), so a fork child can tell a lock its own thread
 * holds from one whose holder did not survive the fork (hak_fork.c). */
typedef struct {
    atomic_int v;
} hak_lock_t;

#define HAK_SEG_SIZE (1ul << HAK_SEG_SHIFT)
#define HAK_SEG_MASK (HAK_SEG_SIZE - 1)
#define HAK_PAGE_SIZE (1ul << HAK_PAGE_SHIFT)
#define HAK_SEG_PAGES ((int)(HAK_SEG_SIZE / HAK_PAGE_SIZE)) /* 64 */
#define HAK_SEG_PAGES_MAX 64
#define HAK_CLS_NONE HAK_NUM_CLASSES /* page in no span: its bin has room 0 */
#define HAK_ADDR_BITS 47             /* user-space addresses we map; segmap covers them */

/* The segment map: what each 4 MiB chunk of the address space holds, one
 * byte per chunk: 0 = not ours, 1 = small segment, 2 = large block header
 * here, 2+k = large block whose header is k chunks lower (k is 1 for
 * alignments of 4 MiB and more: the header sits a chunk below the user
 * pointer). Two copies (lib/hak_segmap.c):
 *   - the authoritative map, all 47 bits, two levels: hak_segmap_top (16 KiB
 *     of .bss; its top TiB apart, hak_segmap_slot) points to leaves of 16
 *     KiB (64 GiB each) mapped when a chunk of theirs is first recorded; a
 *     leaf pointer is published once (release) and never changes, leaves
 *     are never freed. Slow paths only.
 *   - the window, for free()'s fast path: a flat byte per 64 KiB page over
 *     64 GiB (1 MiB of .bss) from hak_segwin_base, chosen once by the first
 *     segment (centred on it) and never changed, fork included. A page's
 *     byte is its class + 1 while it is in a small span of a segment in the
 *     window (a copy of seg->page_cls), else 0: free() reads its class with
 *     one load, without touching the segment header. A segment placed
 *     outside it is still found through the authoritative map, by
 *     hak_free_slow.
 * Start-up address space: 1 MiB instead of a flat map's 32 MiB. Entries are
 * read relaxed (plain loads on x86): an entry only changes for memory
 * nobody may still use (a span being made or released by its owner, a
 * chunk being recorded), ordered by the mmap/munmap that recycled it. */
/* Large, sparsely touched zero arrays go after all of .bss (x86-64's .lbss,
 * still NOBITS), so the small globals a process touches at start share as
 * few pages as possible (docs/allocator.md, "Fixed resident memory"). */
#if defined(__x86_64__)
#define HAK_SPARSE_BSS(name) __attribute__((section(".lbss." name)))
#else
#define HAK_SPARSE_BSS(name)
#endif
/* Zero-initialised words read before they are written at start: in .data's
 * page, which the loader writes anyway, not in a fresh .bss page. */
#define HAK_LOADED_PAGE __attribute__((section(".data.hak_loaded")))
enum { HAK_MAP_NONE = 0, HAK_MAP_SEG = 1, HAK_MAP_LARGE = 2 };
#define HAK_MAP_CHUNKS (1ul << (HAK_ADDR_BITS - HAK_SEG_SHIFT))      /* 2^25 */
#define HAK_MAP_LEAF_SHIFT 36                                        /* a leaf maps 64 GiB */
#define HAK_MAP_LEAF_N (1ul << (HAK_MAP_LEAF_SHIFT - HAK_SEG_SHIFT)) /* 16384 bytes */
#define HAK_MAP_TOP_N (1ul << (HAK_ADDR_BITS - HAK_MAP_LEAF_SHIFT))  /* 2048 leaves */
#define HAK_WIN_SHIFT 36                                             /* the window: 64 GiB */
#define HAK_WIN_N (1ul << (HAK_WIN_SHIFT - HAK_SEG_SHIFT))           /* chunks */
#define HAK_PAGEWIN_N (1ul << (HAK_WIN_SHIFT - HAK_PAGE_SHIFT))      /* pages: 1 MiB */
#define HAK_WIN_UNSET ((uintptr_t)1 << 63) /* no window yet: every index misses */
/* The top level's last HAK_MAP_TOP_HI slots (the top TiB of the address
 * space, where x86-64 places mmap, ASLR included) are a small array among
 * the globals a process touches at start; the rest is sparse .bss. A
 * process's first segment then costs no page of the top level of its own. */
#define HAK_MAP_TOP_HI 16
extern uint8_t *hak_segmap_top[HAK_MAP_TOP_N - HAK_MAP_TOP_HI];
extern uint8_t *hak_segmap_top_hi[HAK_MAP_TOP_HI];
static inline uint8_t **hak_segmap_slot(uintptr_t a) {
    uintptr_t i = a >> HAK_MAP_LEAF_SHIFT;
    return i >= HAK_MAP_TOP_N - HAK_MAP_TOP_HI
               ? &hak_segmap_top_hi[i - (HAK_MAP_TOP_N - HAK_MAP_TOP_HI)]
               : &hak_segmap_top[i];
}
/* class + 1 of each page of the window in a small span, 0 otherwise */
extern uint8_t hak_pagewin[HAK_PAGEWIN_N] __attribute__((visibility("hidden")));
/* first chunk of the window, or HAK_WIN_UNSET */
extern uintptr_t hak_segwin_base __attribute__((visibility("hidden")));
/* the same in pages (hak_segwin_base << 6), or HAK_WIN_UNSET: free()'s */
extern uintptr_t hak_pagewin_base __attribute__((visibility("hidden")));
/* The window bytes of seg's pages, or NULL when seg is outside the window. */
uint8_t *hak_pagewin_of(const void *seg);
/* Pages first..first+n-1 of seg now read v in the window (class + 1, or 0). */
static inline void hak_pagewin_set(const void *seg, int first, int n, uint8_t v) {
    uint8_t *w = hak_pagewin_of(seg);
    if (w)
        for (int i = first; i < first + n; i++) __atomic_store_n(&w[i], v, __ATOMIC_RELAXED);
}

/* The authoritative entry of a (NONE beyond 47 bits or where no leaf is). */
static inline uint8_t hak_segmap_get(uintptr_t a) {
    if (a >> HAK_ADDR_BITS) return HAK_MAP_NONE;
    const uint8_t *leaf = __atomic_load_n(hak_segmap_slot(a), __ATOMIC_ACQUIRE);
    return leaf ? __atomic_load_n(&leaf[(a >> HAK_SEG_SHIFT) & (HAK_MAP_LEAF_N - 1)],
                                  __ATOMIC_RELAXED)
                : HAK_MAP_NONE;
}

/* The base is written once, before any segment is recorded, and read by
 * every free: a plain load (the compiler folds it into the subtraction;
 * word loads are atomic on x86), whose old value (UNSET) only means the slow
 * path. The TSAN build loads it relaxed, so the sanitizer sees the pairing. */
#ifdef __SANITIZE_THREAD__
#define HAK_PAGEWIN_BASE() __atomic_load_n(&hak_pagewin_base, __ATOMIC_RELAXED)
#else
#define HAK_PAGEWIN_BASE() (hak_pagewin_base)
#endif
/* free()'s fast-path lookup: class + 1 of a 16-aligned address in a small
 * span of the window, else 0. The alignment test rides on the range test:
 * rotating a right by 4 moves its low 4 bits to bits 60-63, so after the
 * shift they land at bits 48-51 of idx, far above HAK_PAGEWIN_N (the base
 * is below 2^31): one compare refuses misaligned addresses, addresses
 * beyond 47 bits and everything while the window is unset. */
static inline unsigned hak_pagewin_entry(uintptr_t a) {
    uintptr_t rot = a >> 4 | a << 60; /* one ror */
    uintptr_t idx = (rot >> (HAK_PAGE_SHIFT - 4)) - HAK_PAGEWIN_BASE();
    return HAK_LIKELY(idx < HAK_PAGEWIN_N) ? __atomic_load_n(&hak_pagewin[idx], __ATOMIC_RELAXED)
                                           : 0;
}

typedef struct hak_block {
    struct hak_block *next;
    uintptr_t key; /* == hak_key while free */
} hak_block;

/* A free block of a big class (>= HAK_PURGE_CLS_MIN) on its span's free
 * list: when it went there (ns), HAK_STAMP_PURGED once its pages went back
 * to the OS, 0 if unknown (listed again from a purged page). Its third
 * word, in the header's OS page: the purge never returns that page while
 * the block is listed. Written on the span's slow paths only. */
#define HAK_STAMP_PURGED 1ull
static inline uint64_t *hak_block_stamp(hak_block *b) {
    return (uint64_t *)(b + 1);
}

struct hak_heap;

typedef struct hak_span {
    uint8_t cls;      /* (valid in a span only: page_cls is the free page's truth) */
    uint8_t pages;    /* span length (head only) */
    uint8_t head_off; /* this descriptor's distance from the span head */
    uint8_t in_partial;
    uint32_t capacity;            /* blocks */
    uint32_t used;                /* blocks handed out (to users or thread caches) */
    uint32_t carved;              /* blocks ever taken by bump allocation */
    hak_block *free;              /* local free list */
    _Atomic(uintptr_t) remote;    /* remote list head | its block count << HAK_ADDR_BITS */
    struct hak_span *next, *prev; /* heap partial list of the class */
    struct hak_span *remote_next; /* heap remote_spans stack link */
    uint64_t free_dirty_ns;       /* big classes: oldest free block not purged yet (0: none) */
} hak_span;

typedef struct hak_segment {
    uint64_t magic;
    struct hak_heap *heap;
    uint8_t page_cls[HAK_SEG_PAGES_MAX]; /* copy of pages[i].cls: free() reads one byte */
    uint64_t used_mask;                  /* pages in spans (bit 0: the header page) */
    uint64_t dirty_mask;                 /* free pages still resident (to purge) */
    uint64_t dirty_new;                  /* those of them freed since dirty_ns */
    uint64_t dirty_ns;                   /* start of the dirty_new generation */
    uint64_t purged_mask;                /* free pages purged since last in a span */
    uint64_t touched_mask; /* pages a span carved into since their last purge (resident) */
    struct hak_segment *next, *prev; /* heap segment list / cache list */
    /* Bit k of page i set: OS page k of page i was purged, and the free
     * blocks that start in it are off their span's free list (their links
     * read as zero); refill lists them again (hak_span_unpurge). Changed
     * with the span's free list (same owner, same lock). */
    uint16_t os_purged[HAK_SEG_PAGES];
    /* Last, and written only when carved: a small heap's spans sit low in
     * the segment, so the descriptors of its high pages (the header's
     * second OS page) are never touched. A free page's descriptor is
     * meaningless: page_cls says the page is in no span. */
    hak_span pages[HAK_SEG_PAGES];
} hak_segment;

#define HAK_SEG_MAGIC 0x5345474b4148ull

/* Thread cache bin: the fast path. Blocks cached = cap - room. */
struct hak_tbin {
    hak_block *head;
    uint64_t *ctr;     /* this class's counter row: in the segment (hak_shm_row) or private */
    uint32_t room;     /* frees that fit before a flush */
    uint32_t cap;      /* fast_cap knob (0 in safe-free mode), grown up to cap_max */
    uint32_t cap_max;  /* what cap may grow to (hak_tbin_grow) */
    uint32_t refilled; /* HAK_TBIN_REFILLED: since the bin last overflowed; _EVER, _DRY, _MIXED */
};
enum {
    HAK_TBIN_REFILLED = 1,
    HAK_TBIN_EVER = 2, /* by this thread, ever */
    HAK_TBIN_DRY = 4,  /* its last refill carved, having found nothing listed (hak_refill) */
    HAK_TBIN_MIXED = 8 /* it takes other heaps' blocks: they go first (hak_flush_mixed) */
};
static inline uint32_t hak_tbin_count(const struct hak_tbin *b) {
    return b->cap - b->room;
}

/* HAK_TLS_ALIGN 64 would fix the bins' place in their cache lines whatever
 * the sizes of hak_tls and of the other modules' TLS (each 32-byte bin half
 * a line): unaligned, a layout change can put class 0's head alone at the
 * end of one line and its ctr and room in the next, and tiny_hot-16 then
 * ran a third slower (docs/allocator.md, "Where the bins sit"). It is not
 * the default: built with it, malloc and free land 16 bytes earlier in the
 * text (hak_free_slow compiles shorter) and malloc_simple-16-256 ran 4 %
 * slower per CPU-second (bench/ab_rate.py, 21 runs: 198.2 M against 206.0
 * M; tiny_hot-16 231 against 230 M). The current layout is on the fast side
 * of the line (tiny_hot-16 level with -64 and -128); check it after any
 * change to hak_tls's size. Its size also costs memory a thread: the static
 * TLS sits at the top of each thread's stack, and at 2288 B (68 classes)
 * fewer than 384 B more fit before the stack's used part takes one more
 * page (many_threads: 17.7 -> 21.6 KiB a thread with 72 classes;
 * docs/allocator.md, "Eight classes per doubling"). */
#ifndef HAK_TLS_ALIGN
#define HAK_TLS_ALIGN 8
#endif
_Static_assert(sizeof(struct hak_tbin) == 32, "two bins a cache line");
/* hak_tls.knob_gen matching no generation: the next slow path reloads the
 * caps and counter rows (hak_heap_poll) */
#define HAK_KNOB_GEN_STALE UINT64_MAX
struct hak_tls {
    /* bins[-1] for free()'s window entry 0 (bin of entry e: bins[e - 1]):
     * always full (room 0), never used otherwise */
    struct hak_tbin bin_none;
    struct hak_tbin bins[HAK_NUM_CLASSES + 1]; /* +1: HAK_CLS_NONE, always full */
    struct hak_heap *heap;
    uint64_t knob_gen; /* knob generation the caps were loaded from (HAK_KNOB_GEN_STALE) */
    uint64_t trim_epoch;
    int exited;          /* hak_thread_exit ran: frees from here on need no heap */
    int lock_small;      /* this thread takes the heap lock around small-class span work
                          * too, while a solo purger may walk its heap (hak_purger.c) */
    pid_t tid;           /* gettid(), cached for lock words (0 until the first lock) */
    pid_t tid_ident;     /* hak_forkpage.ident when tid was cached: tid is this process's */
    pid_t settled;       /* hak_forkpage.settled this thread last saw (hak_fork_settle) */
    pid_t tid_in_parent; /* only while the fork child handler runs: this thread's tid in
                          * the parent (locks it held there carry it), or -1 */
#if defined(HAK_TLS_PAD) && HAK_TLS_PAD > 0
    char layout_pad[HAK_TLS_PAD]; /* experiment only (docs/allocator.md, "Where the bins
                                   * sit"): grows hak_tls, which moves it unless aligned */
#endif
} __attribute__((aligned(HAK_TLS_ALIGN)));
extern __thread struct hak_tls hak_tls __attribute__((tls_model("initial-exec")));

/* Classes whose blocks can hold a whole OS page past their header. Their
 * span lists change under the heap lock, so the background purger returns
 * their free pages too; the smaller classes' only the owner (or a solo
 * purger while the owner locks them): hak_span_purge_free. */
#define HAK_PURGE_CLS_MIN HAK_CLS_5120

/* The heap's store of a big class (hak_store.c): blocks a full thread cache
 * flushed, kept whole for the next refill, under the heap lock, where the
 * purger reaches them (a thread cache it cannot). */
struct hak_store {
    hak_block *head;  /* chain of the heap's own free blocks (keyed) */
    uint64_t used_ns; /* last put or take (coarse clock): idle since then */
    /* the stash (hak_stash_put): halves of the owner's full cache, moved
     * whole, unchecked, without the heap lock. The owner takes it with an
     * exchange and stores it back; anyone else only exchanges it for NULL
     * (a trim, an idle owner's drain: hak_stash_purge) */
    hak_block *_Atomic stash;
    uint32_t n;
    uint32_t stash_n; /* the owner's count of it (0 again when its exchange finds none) */
};
#define HAK_STORE_N (HAK_NUM_CLASSES - HAK_PURGE_CLS_MIN)
/* Thread-cache decay (hak_tcache.c): what the owner saw of each of its
 * bins at its last look. Low bits of the counters: only compared. Made at
 * the first look (hak_heap_extra): a thread that only ever refills from the
 * starter heap never looks. */
struct hak_tgc_seen {
    uint32_t allocs[HAK_NUM_CLASSES]; /* the bin's allocs counter then */
    uint32_t frees[HAK_NUM_CLASSES];  /* its frees counter */
    uint16_t flushes[HAK_NUM_CLASSES];
    uint16_t count[HAK_NUM_CLASSES]; /* blocks it held after the look (cap <= 4096) */
    uint32_t idle[HAK_NUM_CLASSES];  /* the thread's allocs + frees while this class had none */
};
_Static_assert(HAK_NUM_CLASSES <= 128, "hak_tgc.busy: a bit per class");
struct hak_tgc {
    uint64_t busy[2];          /* classes the looks visit (a bit per class) */
    uint32_t blocks;           /* blocks refills and overflows moved since the last look */
    struct hak_tgc_seen *seen; /* NULL until the first look */
};

typedef struct hak_crow hak_crow; /* a class's private counter row (hak_rows.c) */
struct hak_srow;                  /* a class's row in the segment (hak_rows.c) */
typedef struct hak_heap hak_heap;
extern hak_span *const hak_partial_none[HAK_NUM_CLASSES];
bool hak_heap_partial_make(hak_heap *h);
struct hak_heap {
    pid_t owner; /* tid of the owning thread, 0 abandoned, -1 retired (fork child) */
    /* segs, segment masks, and the spans of big classes (HAK_PURGE_CLS_MIN):
     * the owner (recursively) against the background purger (try-lock) */
    hak_lock_t seg_lock;
    void *_Atomic lock_holder; /* &hak_tls of the thread holding seg_lock */
    uint32_t lock_depth;
    bool lock_small;        /* its owner locks small-class span work too (hak_tls.lock_small);
                             * written under seg_lock by the owner at a safe point */
    bool shm_never;         /* never counts in the segment (shared, or gave up on it) */
    bool shm_bound;         /* counts in segment rows (srows) */
    hak_crow *rows;         /* private counters: a row per class counted in (hak_ctr_row_make) */
    struct hak_srow *srows; /* bound: its rows in the segment, one per class counted in */
    /* a partial-span list per class: hak_partial_none (read-only, every
     * list empty) until the heap's first span (hak_heap_partial_make, from
     * hak_span_alloc): a heap whose thread lives on the starter heap never
     * carves, and 480 bytes a heap were most of its struct (many_threads) */
    hak_span **partial;
    /* big classes' stores (under seg_lock), NULL until the first flush of
     * a big class (hak_heap_extra): most threads never use one */
    struct hak_store *store;
    hak_segment *segs; /* segments owned */
    _Atomic(hak_span *) remote_spans;
    uint32_t refills_since_drain;
    uint32_t polls;
    uint32_t stash_ops; /* the owner's stash moves: activity without a poll (the purger reads it) */
    uint64_t purge_ns;  /* next time dirty pages are due */
    _Atomic uint64_t trim_answered; /* the trim epoch its owner last gave memory back for */
    int pool_run;                   /* in the pool: longest run of free pages in its segments */
    uint32_t starter_bytes;         /* a new thread's: bytes it still refills from the starter
                                     * heap before it carves spans of its own (hak_starter.c) */
    bool shared;                    /* the starter heap: no owner, every list under seg_lock */
    bool starter_begun;             /* starter_bytes was set (once a heap: hak_starter_begin) */
    uint16_t pinned;    /* pooled, its empty spans kept (heap_leave): the segments it holds, counted
                         * in hak_pinned_segs until an owner takes it or the purger drains it */
    struct hak_tgc tgc; /* its owner's thread-cache decay (hak_tcache.c) */
    struct hak_heap *pool_next; /* abandoned / free pool link */
    struct hak_heap *all_next;  /* every heap ever made */
    /* the background purger's own (hak_heaps_drain_idle): polls as it last
     * saw them, since when (ns), and whether it gave back the heap's idle
     * memory since they last changed */
    uint32_t bg_polls, bg_done;
    uint64_t bg_seen_ns;
    /* Pages in its spans now, their peak under the current owner (pages_tid),
     * and the previous owner's peak: what a new owner is expected to grow to
     * (0: unknown). hak_span_alloc weighs a cached segment's resident pages
     * against it. Under seg_lock. */
    uint32_t pages_now, pages_peak, pages_expect;
    pid_t pages_tid;
};

/* Effective knob values, process-private, already clamped. The table is
 * among the globals a process touches at start, so it is kept small: 32-bit
 * values (every knob's range fits, checked below; read as int64_t, as the
 * code that reads them was written for), a value per class only for the
 * class knobs, which come first in HAK_KNOB_TABLE (checked below), one for
 * each global knob. 645 bytes; a row of HAK_NUM_CLASSES for every knob took
 * 3,300 (64-bit, 5.9 KiB) and the small .bss ran onto a third page, a fault
 * and a dirty page more in every process (docs/allocator.md, "Fixed
 * resident memory" and "The hot segment's room"). */
#define HAK_CLASS_KNOBS 2
#define HAK_KNOB_SLOTS (HAK_CLASS_KNOBS * HAK_NUM_CLASSES + HAK_NUM_KNOBS - HAK_CLASS_KNOBS)
struct hak_knobs {
    int32_t val[HAK_KNOB_SLOTS];
    uint8_t owner[HAK_KNOB_SLOTS];
};
/* knob k's value for class c (c is 0 for a global knob) */
static inline int hak_knob_slot(int k, int c) {
    return k < HAK_CLASS_KNOBS ? k * HAK_NUM_CLASSES + c
                               : HAK_CLASS_KNOBS * HAK_NUM_CLASSES + k - HAK_CLASS_KNOBS;
}
#define HAK_KNOB_FITS(id, name, scope, def, min, max, ...)                                         \
    _Static_assert((def) >= INT32_MIN && (min) >= INT32_MIN && (max) <= INT32_MAX,                 \
                   "knob " name " does not fit struct hak_knobs' int32_t");                        \
    _Static_assert((HAK_KNOB_##id < HAK_CLASS_KNOBS) == ((scope) == HAK_SCOPE_CLASS),              \
                   "knob " name ": the class knobs come first (HAK_CLASS_KNOBS)");
HAK_KNOB_TABLE(HAK_KNOB_FITS)
#undef HAK_KNOB_FITS
extern struct hak_knobs hak_knobs;
#define HAK_KNOB(id) ((int64_t)hak_knobs.val[hak_knob_slot(HAK_KNOB_##id, 0)])
#define HAK_KNOB_CLS(id, c) ((int64_t)hak_knobs.val[hak_knob_slot(HAK_KNOB_##id, (c))])

/* Process globals */
extern uintptr_t hak_key;
extern int hak_safe_free;
/* Our segment, or NULL (HAKMEM_SHM=0, not created yet, creation failed). Set
 * once at start (and in a fork child) while other threads may run. */
extern struct hak_shm_header *hak_shm_ptr;
#define hak_shm (__atomic_load_n(&hak_shm_ptr, __ATOMIC_ACQUIRE))
/* our own layout: offsets are never read back from the segment, which any
 * writer may scribble on */
extern struct hak_shm_layout hak_layout;
extern atomic_int hak_ready; /* release-stored once phase 1 of hak_init is done */
/* Words of the segment that other processes (or our threads) also write. */
#define HAK_SHM_LOAD(field) __atomic_load_n(&hak_shm->field, __ATOMIC_ACQUIRE)
#define HAK_SHM_STORE(field, v) __atomic_store_n(&hak_shm->field, (v), __ATOMIC_RELEASE)
#define HAK_READY() atomic_load_explicit(&hak_ready, memory_order_acquire)
extern uint64_t hak_proc_private[HAK_NUM_PROCS];
extern uint64_t *hak_proc; /* process figures: in the segment or private */

/* Slow-path counts go through the bin's row: a heap counting privately
 * makes a class's row at its first count (a thread of few classes writes
 * few rows: many_threads, docs/allocator.md); until then the bin points at
 * the sink, holds nothing and has no room (the fast path does not count
 * there, but for a fast path a fork from a signal handler resumed in a
 * child whose bins were rebound under it: a count lost). */
extern uint64_t hak_ctr_sink[HAK_NUM_CTRS];
uint64_t *hak_ctr_row_make(int cls);
static inline uint64_t *hak_ctr_row(int cls) {
    uint64_t *r = hak_tls.bins[cls].ctr;
    if (HAK_UNLIKELY(r == hak_ctr_sink)) r = hak_ctr_row_make(cls);
    return r;
}
#define HAK_CTR(cls, id) (hak_ctr_row(cls)[HAK_CTR_##id])
/* Counters of threads past their exit (glibc frees thread state after the
 * TSD destructors) or without a heap: a shared slot, so atomic adds
 * (hak_orphan_add, hak_rows.c). */
extern uint64_t *hak_orphan_ctr;
void hak_orphan_add(int cls, int id, uint64_t n);
static inline void hak_ctr_add(int cls, int id, uint64_t n) {
    if (HAK_LIKELY(hak_tls.heap != NULL))
        hak_ctr_row(cls)[id] += n;
    else
        hak_orphan_add(cls, id, n);
}
#define HAK_BIN_CTR(bin, id) ((bin)->ctr[HAK_CTR_##id])
/* Fast-path counting; -DHAK_COUNTERS=0 compiles it out (only to measure its
 * cost: lib/libhakmem-nocounters.so, see docs/shm.md). */
#ifndef HAK_COUNTERS
#define HAK_COUNTERS 1
#endif
#if HAK_COUNTERS
#define HAK_FAST_COUNT(bin, id) ((void)HAK_BIN_CTR(bin, id)++)
#else
#define HAK_FAST_COUNT(bin, id) ((void)(bin))
#endif
#define HAK_PROC_PTR() __atomic_load_n(&hak_proc, __ATOMIC_ACQUIRE)
#define HAK_PROC_GET(id) __atomic_load_n(&HAK_PROC_PTR()[HAK_PROC_##id], __ATOMIC_RELAXED)
#define HAK_PROC_ADD(id, n)                                                                        \
    __atomic_fetch_add(&HAK_PROC_PTR()[HAK_PROC_##id], (n), __ATOMIC_RELAXED)
#define HAK_PROC_SUB(id, n)                                                                        \
    __atomic_fetch_sub(&HAK_PROC_PTR()[HAK_PROC_##id], (n), __ATOMIC_RELAXED)

/* A page the kernel hands every fork child zeroed (MADV_WIPEONFORK), the
 * raw fork system call's too: how a thread learns it is in a new process
 * with a load, not a system call (getpid). A mapping of its own, so that
 * nothing else is wiped (hak_fork.c); until start-up maps it, and if it
 * cannot be had, a static copy that no fork wipes. */
struct hak_forkpage {
    _Atomic pid_t ident;   /* this process's pid, written by the first thread that caches
                            * its tid here (hak_tid_refresh); 0: a new process */
    _Atomic pid_t settled; /* this process's pid once it counts in memory of its own
                            * (hak_fork_settle); 0: still its parent's segment */
    hak_lock_t lock;       /* the settling (0 in a child: free) */
};
extern struct hak_forkpage *hak_forkpage_ptr;
#define HAK_FORKPAGE() __atomic_load_n(&hak_forkpage_ptr, __ATOMIC_RELAXED)
pid_t hak_tid_refresh(void); /* caches this thread's tid for this process; returns it */
/* this thread's tid in this process, cached (a system call only at a
 * thread's first lock, or after a fork); every lock stamps it */
pid_t hak_self_tid(void);
void hak_fork_settle(void);
/* Every slow path's entry (hak_heap_get): a new thread, or a new process
 * (a fork child of any kind) settles first. Three loads and a compare. */
static inline void hak_fork_check(void) {
    if (HAK_UNLIKELY(hak_tls.settled !=
                     atomic_load_explicit(&HAK_FORKPAGE()->settled, memory_order_relaxed)))
        hak_fork_settle();
}

/* malloc and the rest are no cancellation points (POSIX), and glibc's never
 * act on a pending pthread_cancel: the libc calls hakmem makes inside them
 * that are (open, read, close and pread, on the segment's publication and
 * a fork child's release of its parent's; nanosleep, out of memory) run
 * with cancellation disabled; the rest are system calls of their own
 * (shm/hak_sys.h: hak_log's write, the row reservations' fallocate). A thread unwound out of one
 * left the publication half-done for good (no segment for hakctl) and a fork child that never
 * returned from fork(); its malloc never returned either (docs/allocator.md, "What the public test
 * suites check"). Not a cancellation point itself; the restore acts on nothing (deferred type). */
static inline int hak_cancel_off(void) {
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}
static inline void hak_cancel_restore(int old) {
    pthread_setcancelstate(old, NULL); /* NULL: glibc's and musl's allow it */
}

/* The thread id by the system call itself (shm/hak_sys.h): libc's gettid()
 * and syscall() are each in a 64 KiB fault-around window a small program
 * would not otherwise map (docs/allocator.md). */
static inline pid_t hak_gettid(void) {
    return hak_sys_gettid();
}

/* The word of a lock whose structure a fork child gave up (its holder was
 * lost half-way): nobody holds it, nobody may take it (trylock fails). */
#define HAK_LOCK_RETIRED INT_MIN
/* How hak_lock_as waits: with TAKE_LOST it takes the lock over from a
 * holder lost in a fork (the caller knows the holder left what it guards
 * whole, see hak_heap_lock); with MAY_RETIRE it returns false if the lock
 * is retired meanwhile (without, that is fatal: a wait for ever). */
enum { HAK_LOCK_TAKE_LOST = 1, HAK_LOCK_MAY_RETIRE = 2 };
bool hak_lock_as(hak_lock_t *l, int how);
static inline void hak_lock(hak_lock_t *l) {
    hak_lock_as(l, 0);
}
bool hak_trylock(hak_lock_t *l); /* the holder's tid too: see hak_fork.c */
static inline void hak_unlock(hak_lock_t *l) {
    atomic_store_explicit(&l->v, 0, memory_order_release);
}
/* If l is held by a thread that no longer exists (lost in a fork), takes it
 * over and returns true: the caller resets what it guards and unlocks. */
bool hak_lock_take_orphan(hak_lock_t *l);
/* Fork child, l taken over (hak_lock_take_orphan): what it guards is given
 * up for good; waiters with HAK_LOCK_MAY_RETIRE stop waiting. */
static inline void hak_lock_retire(hak_lock_t *l) {
    atomic_store_explicit(&l->v, HAK_LOCK_RETIRED, memory_order_release);
}

/* ---- layers ---- */
/* os (hak_os.c) */
void *hak_os_map_aligned(size_t size, size_t align);
void *hak_os_map_offset(size_t size, size_t align, size_t off); /* (p + off) % align == 0 */
void hak_os_unmap(void *p, size_t size);
void *hak_os_map_at(void *at, size_t size); /* exactly at at, or NULL */
void hak_os_purge(void *p, size_t size);
/* memset(p, 0, n) that leaves pages not resident alone (dropped instead):
 * for blocks of at least HAK_ZERO_PROBE_MIN in their own pages */
void hak_os_zero(void *p, size_t n);
#define HAK_ZERO_PROBE_MIN (128u << 10)
uint64_t hak_now_ns(void);
/* clock_gettime through the vDSO itself, not libc's wrapper (hak_os.c) */
int hak_clock(clockid_t clock, struct timespec *ts);
unsigned long hak_auxv(unsigned long type); /* getauxval without libc (hak_init.c) */
/* The clock's last tick (a few ms old, never ahead of hak_now_ns): cheap
 * enough for stamps taken on every flush of a big class. */
static inline uint64_t hak_coarse_ns(void) {
    struct timespec ts;
    hak_clock(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* segment map (hak_segmap.c) */
/* Records v for addr's chunk. false (nothing recorded) if the leaf for a
 * value other than NONE cannot be mapped: the caller gives the memory up. */
bool hak_segmap_set(uintptr_t addr, uint8_t v);
bool hak_segmap_prepare(uintptr_t addr); /* addr's leaf exists: a later set cannot fail */
void *hak_segmap_map_segment(void);      /* a fresh segment, in the window if it can be */

/* classes (hak_class.c) */
/* Class of a size up to HAK_SMALL_MAX, indexed by the size itself: 1 KiB,
 * two instructions (add, shift) less on malloc than a table by 16 bytes. */
extern uint8_t hak_small_cls[HAK_SMALL_MAX + 1];
/* The same as byte offsets of the bins in hak_tls.bins (class * 32):
 * malloc's lookup, one shift less. */
extern uint16_t hak_small_bin[HAK_SMALL_MAX + 1];
/* Class of a size above HAK_SMALL_MAX, up to HAK_FINE_MAX, by 128 bytes
 * (every class there is a multiple of 128): the classes there are finer
 * than four per doubling (HAK_CLASS_TABLE). */
extern uint8_t hak_fine_cls[HAK_FINE_MAX / 128];
/* Class of a size above HAK_SMALL_MAX, up to HAK_CLASS_MAX: the table to
 * HAK_FINE_MAX; above, four classes per doubling, so find the doubling,
 * then the quarter above it. */
static inline int hak_mid_class(size_t n) {
    size_t m = n - 1;
    if (m < HAK_FINE_MAX) return hak_fine_cls[m >> 7];
    int lg = __builtin_clzl(m) ^ 63;          /* 2^lg <= m < 2^(lg+1): one bsr */
    int quarter = (int)((m >> (lg - 2)) & 3); /* which quarter above 2^lg */
    return HAK_CLS_8192 + 1 + (lg - 13) * 4 + quarter;
}
_Static_assert(HAK_FINE_MAX == 1 << 13, "hak_mid_class: the doublings above HAK_FINE_MAX");
static inline int hak_size_class(size_t n) {
    if (n <= HAK_SMALL_MAX) return hak_small_cls[n];
    return n <= HAK_CLASS_MAX ? hak_mid_class(n) : -1;
}
extern uint32_t hak_cls_shift[HAK_NUM_CLASSES], hak_cls_inv[HAK_NUM_CLASSES],
    hak_cls_lim[HAK_NUM_CLASSES], hak_cls_grow_cap[HAK_NUM_CLASSES];
/* off (from the span start) is a multiple of the class size: exact division
 * test by the odd part's modular inverse, no divide instruction. */
static inline bool hak_block_aligned_by(uintptr_t off, uint32_t shift, uint32_t inv, uint32_t lim) {
    if (off & (((uintptr_t)1 << shift) - 1)) return false;
    return (uint32_t)(off >> shift) * inv <= lim;
}
static inline bool hak_block_aligned(int cls, uintptr_t off) {
    return hak_block_aligned_by(off, hak_cls_shift[cls], hak_cls_inv[cls], hak_cls_lim[cls]);
}
void hak_class_init(void);

#define HAK_OS_PAGE 4096ul

/* segments (hak_segment.c) */
bool hak_heap_lock(hak_heap *h); /* recursive for the holder; false: retired (the starter) */
void hak_heap_unlock(hak_heap *h);
bool hak_heap_trylock(hak_heap *h);
void hak_heap_lock_reset(hak_heap *h); /* fork child: the holder is gone */
hak_span *hak_span_alloc(hak_heap *h, int cls);
void hak_span_release(hak_heap *h, hak_span *s);
void hak_segment_purge(hak_heap *h, bool force);
bool hak_segment_cache_trim(bool force); /* true: dirty pages remain */
int hak_segment_cached(void);            /* empty segments cached (a hint) */
int hak_segment_free_run(hak_heap *h);   /* longest run of free pages, capped at a span's */
int hak_span_min_pages(int cls);         /* pages the shortest span of cls takes */
void hak_segment_after_fork(void);
static inline hak_segment *hak_seg_of(const void *p) {
    return (hak_segment *)((uintptr_t)p & ~HAK_SEG_MASK);
}
static inline hak_span *hak_span_of(hak_segment *seg, const void *p) {
    hak_span *d = &seg->pages[((uintptr_t)p & HAK_SEG_MASK) >> HAK_PAGE_SHIFT];
    return d - d->head_off;
}
static inline char *hak_span_base(const hak_span *s) { /* its first page */
    hak_segment *seg = hak_seg_of(s);
    return (char *)seg + (size_t)(s - seg->pages) * HAK_PAGE_SIZE;
}
/* Cache colouring. A span's blocks start at its page (64 KiB aligned), and
 * the classes from 5 KiB up are multiples of 1 KiB: the first lines of all
 * their blocks fell in 2-16 of L1's 64 sets and 30 of a 1 MiB L2's 1024,
 * up to 47 blocks in one 16-way set (mid_large_mt-8k-32k: the workload's
 * reads of a block's first line missed L2 1.8 times as often as with
 * tcmalloc). So a span of these classes starts its first block a colour
 * (a multiple of 64 B below 4 KiB) into the room its last block leaves,
 * chosen by the span's page and segment (no field: hak_span_color_of).
 * Classes that divide 64 KiB or are multiples of it leave no room: never
 * coloured, so their blocks keep the alignment aligned_alloc relies on
 * (hak_alloc_aligned takes no coloured class above 64 B alignment).
 * docs/allocator.md, "Cache colours". s: a span head. */
/* one bit a class from HAK_PURGE_CLS_MIN up (no class below it is coloured) */
#define HAK_CLS_COLOR_BIT(i, size, span)                                                           \
    | ((uint64_t)((i) >= HAK_PURGE_CLS_MIN && HAK_PAGE_SIZE % (size) && (size) % HAK_PAGE_SIZE)    \
       << ((i) >= HAK_PURGE_CLS_MIN ? (i)-HAK_PURGE_CLS_MIN : 0))
#define HAK_CLS_COLORED (0 HAK_CLASS_TABLE(HAK_CLS_COLOR_BIT)) /* a constant */
_Static_assert(HAK_NUM_CLASSES - HAK_PURGE_CLS_MIN <= 64, "HAK_CLS_COLORED: a bit a class");
static inline bool hak_cls_colored(int cls) {
    return cls >= HAK_PURGE_CLS_MIN && (HAK_CLS_COLORED >> (cls - HAK_PURGE_CLS_MIN) & 1);
}
/* The colour of span head s of class cls: one of the 64 B steps that fit
 * the room its last block leaves (at most 64), picked by a hash of its page
 * and segment. From what the span's making wrote (pages, capacity), so any
 * thread may compute it: a stored colour would share a byte or a word with
 * fields the owner changes (in_partial, used). Multiplies and shifts. */
static inline uintptr_t hak_span_color_of(const hak_span *s, int cls) {
    if (!hak_cls_colored(cls)) return 0;
    hak_segment *seg = hak_seg_of(s);
    uintptr_t room =
        (uintptr_t)s->pages * HAK_PAGE_SIZE - (uintptr_t)s->capacity * hak_class_size[cls];
    uintptr_t steps = (room >> 6) + 1;
    uintptr_t k = (uintptr_t)(s - seg->pages) * 37 + ((uintptr_t)seg >> HAK_SEG_SHIFT) * 11;
    return ((k & 63) * (steps < 64 ? steps : 64) >> 6) << 6;
}
uintptr_t hak_span_color_call(const hak_span *s, int cls); /* the same, out of line */
/* for the paths where the class is at hand: no call below 5 KiB */
static inline uintptr_t hak_cls_span_color(const hak_span *s, int cls) {
    return HAK_UNLIKELY(hak_cls_colored(cls)) ? hak_span_color_call(s, cls) : 0;
}
static inline uintptr_t hak_span_color(const hak_span *s) { /* s: a span head */
    return s->cls < HAK_NUM_CLASSES ? hak_span_color_of(s, s->cls) : 0;
}
static inline char *hak_span_start(hak_span *s) { /* its first block */
    return hak_span_base(s) + hak_span_color(s);
}

/* spans: refill, local and remote free (hak_span.c) */
bool hak_refill(hak_heap *h, int cls);
uint32_t hak_release_empty(hak_heap *h, int cls, uint32_t *kept);
/* A heap about to change owners (thread exit, an exited thread's heap
 * adopted on a refill): its next owner needs a span of every class it used
 * again within moments. A released span comes back elsewhere, and its carve
 * faults in fresh pages (larson: 1.3 MB per heap, every page new), so a
 * class with no other span keeps its empty one, the one carved furthest. A
 * trim, a timed adoption and thread-cache decay release all. */
uint32_t hak_release_empty_warm(hak_heap *h, int cls, uint32_t *kept);
/* Only for a heap that holds blocks out in HAK_WARM_SPANS spans or more (a
 * working set other threads go on using: larson's slots): one that a few
 * stray blocks hold, or none, gives its segments back whole. Kept spans
 * would hold them, and nothing purges an ownerless heap's small spans: 8
 * threads that freed their 10 MB each left 3.3 MiB resident after 3 s idle
 * where 2.4 MiB was, when one 320 B block (glibc's, freed later) kept them.
 * (A heap whose empty spans stay for its next owner holds its segments,
 * counted in hak_pinned_segs, bounded by the cache's knob.) */
enum { HAK_WARM_SPANS = 8 };
/* As hak_release_empty_warm, for a heap changing owners that holds no
 * blocks (heap_leave): each class's kept span is reset to uncarved, so the
 * next owner carves it again from its start, over the OS pages written
 * before; the others go. The heap's layout so passes to its next owner,
 * which writes the pages its predecessor wrote, each for the same class:
 * given back, the pages went through the segment cache, other classes'
 * spans took them with other block boundaries and carved into the OS pages
 * the last never wrote (docs/allocator.md, "Round six", "Round seven"). */
uint32_t hak_release_empty_reset(hak_heap *h, int cls, uint32_t *kept);
bool hak_heap_holds_blocks(hak_heap *h);
void hak_flush(hak_heap *h, int cls, uint32_t keep);
/* a full bin of HAK_TBIN_MIXED: other heaps' blocks first (warm text: only threads that take mail)
 */
void hak_flush_mixed(hak_heap *h, int cls, uint32_t keep);
bool hak_tbin_grow(struct hak_tbin *bin);

/* A class whose thread cache overflows although it was refilled since its
 * last overflow is churned through the cache (malloc n, free n, n above the
 * cap): flushing half and refilling again would move every block through
 * its span each round. Such a bin doubles its cap instead, up to about
 * 256 KiB of blocks (2048 at most), the byte bound of the default caps; a
 * bin that only receives frees (a consumer of other threads' blocks) is
 * never refilled and keeps its cap. Only default caps grow: a cap set by
 * the environment, the daemon or hakctl is kept as set. Caps go back to the
 * knob whenever knobs are applied again (hak_knobs_apply_tls). */
static inline uint32_t hak_tbin_cap_max(int cls, uint32_t cap) {
    if (cap == 0 || hak_knobs.owner[hak_knob_slot(HAK_KNOB_FAST_CAP, cls)] != HAK_OWNER_DEFAULT)
        return cap;
    return hak_cls_grow_cap[cls] > cap ? hak_cls_grow_cap[cls] : cap;
}

/* A default cap (one that may grow: cap_max above it) starts at
 * HAK_TBIN_CAP_START, not at the knob: the thread's first refill of the
 * class takes it to the knob (hak_refill), as a thread that mallocs a class
 * churns it. A bin never refilled (a consumer of other threads' blocks)
 * stays there and sends all of it back at each overflow (hak_flush): it held
 * cap/2..cap (256) blocks of every class it freed, and their owner carved
 * as many more to make up. 128, not less: a start of 64 cut xthread's
 * faults by a quarter (not a tenth), but doubled xbatch's median peak RSS
 * (docs/allocator.md). Knobs applied again keep a cap where it is, up to
 * the knob. The start is bounded in bytes too (HAK_TBIN_START_BYTES, 16
 * blocks at least), for the classes whose knob is above 128 (below 2 KiB):
 * a consumer's bin of 256 B blocks held 32 KiB, and the producer carved as
 * much again. xthread (16-256 B): faults 273 -> 237, instructions +0.8 %
 * (callgrind); 8 KiB: 230, but +3.8 % (a flush's fixed cost, paid 4 times
 * as often for 256 B); xbatch's peak RSS not higher. With hak_refill's
 * quarter batch when dry: 16 KiB 222 faults, -0.3 %; 12 KiB 216, +0.5 %. */
enum { HAK_TBIN_CAP_START = 128, HAK_TBIN_START_BYTES = 16384 };
static inline uint32_t hak_tbin_cap_start(uint32_t cap, uint32_t cap_max, uint32_t now, int cls) {
    if (cap_max <= cap || cap <= HAK_TBIN_CAP_START) return cap;
    uint32_t start = HAK_TBIN_START_BYTES / hak_class_size[cls];
    start = start > HAK_TBIN_CAP_START ? HAK_TBIN_CAP_START : start < 16 ? 16 : start;
    return now < start ? start : now > cap ? cap : now;
}
/* What a full bin keeps when it overflows: half, but none in a bin its
 * thread never refilled (a consumer, hak_tbin_grow), which takes no blocks
 * of the class from it: each flush then moves a full cap in one pass. Big
 * classes keep half (their flush goes to the heap's store). */
static inline uint32_t hak_tbin_overflow_keep(const struct hak_tbin *bin, int cls) {
    return !(bin->refilled & HAK_TBIN_EVER) && cls < HAK_PURGE_CLS_MIN ? 0 : bin->cap / 2;
}
hak_block *hak_flush_list(hak_heap *h, int cls, hak_block *list, uint32_t n); /* returns the rest */
/* the heap's stores (hak_store.c); the heap lock held, cls >= HAK_PURGE_CLS_MIN */
uint32_t hak_store_room(hak_heap *h, int cls); /* blocks the store of cls still takes */
void hak_store_put(hak_heap *h, int cls, hak_block *first, hak_block *last, uint32_t n);
uint32_t hak_store_take(hak_heap *h, int cls, uint32_t max, hak_block **head);
bool hak_store_purge(hak_heap *h, uint64_t now, uint64_t delay, bool force);
void hak_store_empty(hak_heap *h, int cls); /* the owner: all back to the spans */
/* The stash (hak_store.c): a full cache of a big class moves its colder
 * half there, an empty one takes a half back, each one exchange (owner,
 * its own bin, no lock held); false: the ordinary flush or refill. The
 * purge takes every stash of h (heap lock held); the owner empties one. */
/* Classes with a stash: 5-32 KiB (HAK_PURGE_CLS_MIN up to 32768 B), whose
 * default caches hold 8 blocks or more; a cache of fewer blocks (a knob)
 * has none. The slow paths of other sizes do not look. */
enum { HAK_STASH_CLS_END = HAK_CLS_32768 + 1, HAK_STASH_SIZE_MAX = 32768, HAK_STASH_MIN_CAP = 8 };
bool hak_stash_put(hak_heap *h, struct hak_tbin *bin, int cls);
bool hak_stash_take(hak_heap *h, struct hak_tbin *bin, int cls);
bool hak_stash_purge(hak_heap *h, bool force); /* whether some stash holds blocks */
void hak_stash_empty(hak_heap *h, int cls);
/* a stored block back on its span's free list, stamped (hak_span.c) */
void hak_span_take_back(hak_heap *h, hak_block *b, uint64_t stamp);
/* Thread-cache decay (hak_tcache.c): a refill or an overflow of class cls
 * in h (the calling thread's heap: others are left alone) moved `blocks`;
 * every tcache_gc blocks, and when a class starts, the thread looks at its
 * busy bins and gives back what stayed unused. The count inline (a slow
 * path each), the look out of line. */
void hak_tcache_look(hak_heap *h, int cls);
static inline void hak_tcache_event(hak_heap *h, int cls, uint32_t blocks) {
    struct hak_tgc *g = &h->tgc;
    if (HAK_LIKELY(g->busy[cls >> 6] >> (cls & 63) & 1) &&
        (g->blocks += blocks) < (uint64_t)HAK_KNOB(TCACHE_GC))
        return;
    hak_tcache_look(h, cls);
}
void hak_free_to_span(hak_heap *h, hak_span *s, hak_block *b);
void hak_remote_drain(hak_heap *h);
void hak_remote_free(hak_span *s, hak_block *b);
bool hak_span_purge_free(hak_heap *h, uint64_t now, uint64_t delay, bool force, bool small);
void hak_span_unpurge(hak_span *s, uint32_t want);
bool hak_span_purged(hak_span *s); /* some OS page of it is marked (os_purged) */
/* Block p of a live span starts in a marked OS page: it is free, unlisted,
 * and reads as zero (a free of it is a double free). Any thread. A span
 * starts on a 64 KiB page, so the marks of p's OS page are those of its
 * 64 KiB page (os_purged[page]), bit: the OS page within it. */
static inline bool hak_block_purged(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint16_t m = __atomic_load_n(&hak_seg_of(p)->os_purged[(a & HAK_SEG_MASK) >> HAK_PAGE_SHIFT],
                                 __ATOMIC_ACQUIRE);
    return m >> ((a / HAK_OS_PAGE) % (HAK_PAGE_SIZE / HAK_OS_PAGE)) & 1;
}
void hak_span_note_purged(hak_span *s); /* released: its purged pages stay in os_purged */
/* Adopt (hak_heap.c): a dead thread's heap with remote frees waiting is
 * drained and its empty spans given back. Only a thread's exit abandons a
 * heap, so the callers' refills test the count and the work is warm text
 * (lib/hak_cold.py): a single-threaded program never maps it. */
extern atomic_int hak_abandoned_n;
bool hak_heap_adopt_one(bool warm); /* warm: hak_release_empty_warm */
static inline bool hak_heap_reclaim_abandoned(bool warm) {
    return atomic_load_explicit(&hak_abandoned_n, memory_order_relaxed) != 0 &&
           hak_heap_adopt_one(warm);
}

/* heaps and threads (hak_heap.c) */
hak_heap *hak_heap_get(void);
hak_heap *hak_heap_get_for(hak_heap *want); /* a first free's: its block's heap if it can */
#ifndef HAK_HEAP_WAIT_YIELDS
#define HAK_HEAP_WAIT_YIELDS 8
#endif
void hak_thread_exit(void *arg);
void hak_heaps_after_fork(bool child);
void hak_heaps_leave_parent(bool others_run);
void hak_heap_after_fork_self(void);
void hak_pool_after_fork(void);
/* Zeroed memory for a heap's state made on first use (its stores, its
 * decay's history), from the arena of heap structs: never freed, a heap is
 * never freed either. Any lock may be held (the arena lock is a leaf);
 * NULL when out of memory. */
void *hak_heap_extra(size_t n);
hak_heap *hak_heap_swap(hak_heap *h, int cls);
/* counter rows and the bins bound to them (hak_rows.c) */
void hak_heap_bind_counters(hak_heap *h, bool fresh);
void hak_orphan_bind(void);
void hak_heaps_publish(struct hak_shm_header *shm); /* sets hak_shm */
void hak_knobs_apply_tls(void);
void hak_bins_rebind_rows(void); /* the row pointers only (fork child handler) */
void hak_heap_sum_ctr(uint64_t *out_live_bytes, uint64_t *out_cached_bytes);
/* trims and the slow paths' periodic work (hak_idle.c) */
void hak_heap_poll(hak_heap *h);
uint64_t hak_trim_all(void); /* returns the trim epoch it raised */
void hak_trim_release(void); /* a trim's work without a new epoch */
bool hak_heaps_unanswered(uint64_t epoch);
void hak_heaps_mark_idle(uint64_t epoch);
/* hak_heap.c: the pool lock (the pools, heap owners, the heap list's head,
 * a heap's counters moving to the segment), and the threads with a heap */
extern hak_lock_t hak_pool_lock;
extern atomic_int hak_live_threads;
/* Segments that pooled heaps hold for their kept spans (heap_leave): they
 * count against the segment cache's knob. */
extern atomic_int hak_pinned_segs;
void hak_heap_unpin(hak_heap *h);

/* State that hak_heap.c, hak_rows.c and hak_idle.c share (hidden: not
 * exported, prefixed for libhakmem.a). Every heap ever made, newest first
 * through all_next: hak_heap.c links a heap once complete (release, under
 * the pool lock) and never unlinks one, so a walk takes the lock only for
 * the head (a fork child walks without it: acquire). */
extern hak_heap *hak_all_heaps;
/* hak_heap.c's pools, the pool lock held: an ownerless heap goes in; one
 * comes out of the abandoned pool if among its first max (then owned by
 * the caller, as an adopter owns it) */
void hak_pool_put(hak_heap *h);
bool hak_pool_take(hak_heap *h, int max);
/* hak_heap.c's arena (under its own leaf lock): zeroed, never freed; the
 * try form NULL if the lock is held (a fork child handler: by this thread) */
void *hak_arena_alloc_aligned(size_t n, size_t align);
void *hak_arena_try_alloc_aligned(size_t n, size_t align);
/* hak_idle.c's trim epoch: raised (atomically) by each trim, answered by
 * every heap at its next slow path; hak_heap.c starts a thread at it */
extern atomic_ullong hak_trim_epoch;
/* hak_idle.c: the heap whose drain a fork lost, written only by a fork
 * child's hak_idle_leave_parent (under the fork page's lock), read by the
 * threads that settle after it (hak_heap_after_fork_self) */
extern hak_heap *hak_drain_lost;
/* hak_heaps_leave_parent's parts, in this order (hak_heap.c) */
void hak_rows_leave_parent(void);
void hak_idle_leave_parent(void);
/* the segment appeared and this heap has not moved its counters yet */
#define HAK_HEAP_UNBOUND(h) (HAK_UNLIKELY(!(h)->shm_bound && !(h)->shm_never) && hak_shm)
/* The segment appeared: the calling thread moves its own heap's counters
 * (hak_rows.c; a thread's exit and its slow paths' poll call it) */
void hak_heap_publish_self(hak_heap *h);

/* the starter heap: a new thread's first blocks (hak_starter.c) */
void hak_starter_begin(hak_heap *h); /* h was just taken by its thread */
bool hak_starter_refill(hak_heap *h, int cls);
void hak_starter_tidy(bool all); /* drains the frees waiting at the starter (try-lock) */
void hak_starter_after_fork(void);
hak_heap *hak_heap_new_shared(void); /* a heap no thread owns (hak_heap.c, pool lock held) */

/* background purger (hak_purger.c) */
void hak_purger_tick(hak_heap *h);        /* every 64th slow path: starts the purger when wanted */
void hak_purger_thread_exit(hak_heap *h); /* before the heap goes to the pool */
uint64_t hak_purge_delay_ns(void);        /* purge_delay_ms as refaults scale it */
void hak_purger_wake_soon(void);          /* something was freed: an idle purger should look */
void hak_purger_after_fork(void);
void hak_purger_published(void); /* the segment exists: the purger waits on its trim_req */
/* hak_idle.c: every heap's due free pages (try-lock); true if some remain */
bool hak_heaps_purge_all(bool force);
/* hak_idle.c: remote frees drained, empty spans given back and free pages
 * of small spans purged in heaps whose owner (or pool) had no slow path for
 * a purge delay; true if some are left for a later pass */
bool hak_heaps_drain_idle(void);
void hak_heaps_unlock_after_fork(void);
bool hak_segment_purge_try(hak_heap *h, bool force);

/* large blocks (hak_large.c) */
void *hak_large_alloc(size_t n, size_t align, bool *fresh);
bool hak_large_free_checked(void *p);
size_t hak_large_usable(void *p);
void *hak_large_realloc(void *p, size_t n);
void *hak_large_alloc_growing(size_t n); /* realloc moving a class block out */
void hak_large_cache_trim(bool force);
bool hak_large_cache_busy(void);
extern hak_lock_t hak_large_lock;
void hak_large_after_fork(void);

/* out of memory: what a failing allocation tries before NULL (hak_oom.c).
 * The caller retries after every step that returns true. */
struct hak_oom {
    int round;
    bool last; /* the final retry is under way */
    uint64_t epoch, deadline_ns;
};
bool hak_oom_step(struct hak_oom *o, hak_heap **h, int cls); /* cls -1: not a class block */

/* start-up (hak_init.c) */
void hak_init(void);
extern pthread_key_t hak_tkey;
extern int hak_tkey_ready;

/* knobs: defaults, environment, reload from the segment (hak_knobs.c) */
const char *hak_getenv(const char *name);
void hak_knobs_init(void);
void hak_knobs_reload(void);
void hak_publish_knobs(void);
void hak_knobs_after_fork(void);
void hak_knobs_lease_check(uint64_t now_ns); /* daemon lease expired: its knobs to defaults */
extern uint64_t hak_knob_gen_applied;

/* the process's own segment (hak_publish.c) */
extern int hak_shm_enabled;  /* HAKMEM_SHM */
void hak_publish_init(void); /* arms the clock: publishing waits for the process to live a while */
extern int hak_publish_pending; /* the segment is due: hak_publish_poll on slow paths */
#define HAK_PUBLISH_PENDING() __atomic_load_n(&hak_publish_pending, __ATOMIC_RELAXED)
void hak_publish_poll(void);
/* hak_now_ns() from which the process publishes (set by hak_publish_init).
 * Caps grow only once it is published (hak_tbin_grow: a churn that fits a
 * grown cache takes no slow path again, and would never publish); until
 * then a churn bigger than the cap flushes and refills every round
 * (malloc_simple 16 B, N = 400: 6 ns a pair instead of 3.2). So each
 * refused growth brings the publication HAK_PUBLISH_HURRY_NS nearer: a
 * refusal wastes ~1.2 us, publishing costs 0.5-1.2 ms, and after ~500
 * refusals (50 ms / 100 us) a churn that outgrows its cache publishes at
 * its next slow path (docs/allocator.md, "Bimodal processes"). */
extern uint64_t hak_publish_after;
#define HAK_PUBLISH_HURRY_NS 100000ull
void hak_publish_after_fork(void);

/* fork (hak_fork.c) */
/* me: the process's pid, read once by hak_init (a system call: 1.3 us) */
void hak_forkpage_init(pid_t me); /* first thing at start-up */
void hak_fork_init(pid_t me);
void hak_fork_reset_orphans(void);
/* A process whose fork child handler did not run (the raw fork system
 * call): glibc's own locks (thread stacks, TLS) may be held by lost threads
 * there, so nothing that needs them (pthread_create) may start. A system
 * call: for rare paths. */
bool hak_fork_unhandled(void);

/* reports (hak_report.c) */
__attribute__((noreturn)) void hak_fatal(const char *what, const void *p);
void hak_log(const char *msg);

/* Process-private usage figures for mallinfo & co (hak_mallinfo.c): never
 * read from the segment. Relaxed atomics, updated on slow paths only. */
struct hak_usage {
    size_t seg_bytes;                    /* segments mapped (in heaps and cached) */
    size_t span_bytes;                   /* pages of spans carved for classes */
    size_t large_n, large_bytes;         /* large-block mappings (live and cached) */
    size_t large_max_n, large_max_bytes; /* their peaks */
    size_t system_max;                   /* peak of seg_bytes + large_bytes */
};
extern struct hak_usage hak_usage;
void hak_usage_large(long n, long bytes);
void hak_usage_seg(long bytes);
#define HAK_USAGE_SPAN(bytes)                                                                      \
    __atomic_fetch_add(&hak_usage.span_bytes, (size_t)(long)(bytes), __ATOMIC_RELAXED)

/* slow paths of the public API (hak_api.c) */
void *hak_alloc_slow(size_t n);
void hak_free_slow(void *p);
void *hak_alloc_aligned(size_t align, size_t n);
bool hak_as_limited(void); /* RLIMIT_AS is set: spend address space sparingly */

#pragma GCC visibility pop

#endif
