/* hak_api.c — the libc malloc API on top of the fast path (hak_alloc.h) and
 * the slow paths. Semantics are glibc's: errno ENOMEM/EINVAL, malloc(0) is
 * a unique pointer, realloc(p, 0) frees and returns NULL. */
#include "hak_alloc.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Sanitizer builds (lib/libhakmem-tsan.a) export hak_test_malloc & co
 * instead, so the sanitizer runtime keeps its own malloc and the tests call
 * ours by name (tests/tsan_api.h). */
#ifdef HAK_API_PREFIX
#define HAK_API(name) hak_test_##name
#else
#define HAK_API(name) name
#endif

/* Under an address-space limit (RLIMIT_AS: ulimit -v), blocks above
 * 128 KiB are mapped alone at page granularity, as glibc's mmap threshold
 * does, because there address space is what runs out first, and the
 * classes spend it: up to 12 % in rounding (200000 B takes a 229376 B
 * block) and a segment holds only four 896 KiB blocks. Without a limit the
 * classes serve them (thread caches, no system calls). The limit is read
 * once, and again whenever memory runs out (a program may lower it). */
#define ALONE_MIN ((size_t)128 << 10)
static int as_limited = -1; /* -1 not read yet */

static bool read_as_limit(void) {
    struct rlimit rl;
    int e = errno;
    int v = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    errno = e;
    __atomic_store_n(&as_limited, v, __ATOMIC_RELAXED);
    return v;
}

/* Whether the process runs under an address-space limit (ulimit -v). */
bool hak_as_limited(void) {
    int v = __atomic_load_n(&as_limited, __ATOMIC_RELAXED);
    return v < 0 ? read_as_limit() : v;
}

static bool map_alone(size_t n) {
    if (n <= ALONE_MIN || n > HAK_CLASS_MAX) return false;
    return hak_as_limited();
}

/* A large block. Out of memory, the recovery steps of hak_oom.c with a
 * retry after each. */
static void *large_alloc(hak_heap *h, size_t n, size_t align, bool *fresh) {
    void *p = NULL;
    if ((n | align) >> HAK_ADDR_BITS) goto out; /* more than the address space */
    p = hak_large_alloc(n, align, fresh);
    if (!p) {
        read_as_limit(); /* a program may have changed it */
        struct hak_oom oom = {0};
        while (!p && hak_oom_step(&oom, &h, -1)) p = hak_large_alloc(n, align, fresh);
    }
out:
    if (!p) errno = ENOMEM;
    return p;
}

/* Pops a block of class cls, refilling the thread cache if it is empty.
 * Out of memory, the recovery steps of hak_oom.c with a refill after each
 * (a step may give this thread another heap), and first a mapping of its
 * own if `alone` (the size, see map_alone; *fresh: it is a new one). */
static void *alloc_cls(hak_heap *h, int cls, size_t alone, bool *fresh) {
    struct hak_tbin *bin = &hak_tls.bins[cls];
    if (!bin->head) {
        hak_heap_poll(h);
        HAK_CTR(cls, ALLOC_SLOW)++;
        if (!hak_refill(h, cls)) {
            read_as_limit();
            struct hak_oom oom = {0};
            bool ok = false;
            while (!ok && hak_oom_step(&oom, &h, cls)) {
                void *p = alone ? hak_large_alloc(alone, 0, fresh) : NULL;
                if (p) return p;
                if (fresh) *fresh = false;
                ok = hak_refill(h, cls);
            }
            if (!ok) {
                errno = ENOMEM;
                return NULL;
            }
        }
    }
    hak_block *b = bin->head;
    bin->head = b->next;
    bin->room += bin->room < bin->cap; /* cap 0 (safe-free mode) stays 0 */
    b->key = 0;
    HAK_BIN_CTR(bin, ALLOCS)++;
    return b;
}

/* A mid size under an address-space limit: a mapping of its own (after
 * unmapping the caches' empty memory if need be: a class block wastes more
 * of it), else a block of its class, before any recovery that makes other
 * threads give memory back. */
static void *alloc_alone(hak_heap *h, size_t n, bool *fresh) {
    hak_heap_poll(h);
    void *p = hak_large_alloc(n, 0, fresh);
    if (!p) {
        hak_segment_cache_trim(true);
        hak_large_cache_trim(true);
        p = hak_large_alloc(n, 0, fresh);
    }
    if (p) return p;
    if (fresh) *fresh = false;
    return alloc_cls(h, hak_size_class(n), n, fresh);
}

static HAK_NOINLINE void *alloc_slow(size_t n);

/* Mid sizes pop their thread cache here, in a leaf that saves no registers
 * (everything else is a tail call to alloc_slow). */
void *hak_alloc_slow(size_t n) {
    if (n > HAK_SMALL_MAX && n <= HAK_CLASS_MAX) {
        /* mid sizes: the same thread-cache pop as the fast path, the bin
         * addressed as there (%fs-relative: no thread-pointer load) */
        hak_tbin_ref *bin = hak_tbin_at((uintptr_t)hak_mid_class(n) * sizeof(struct hak_tbin));
        hak_block *b = bin->head;
        if (HAK_LIKELY(b != NULL)) {
            bin->head = b->next;
            bin->room++;
            b->key = 0;
            HAK_FAST_COUNT(bin, ALLOCS);
            return b;
        }
    }
    return alloc_slow(n);
}

static void *alloc_slow(size_t n) {
    if (n > 4096 && n <= HAK_STASH_SIZE_MAX) {
        /* an empty cache of a class with a stash: its top batch, if any */
        hak_heap *q = hak_tls.heap; /* no settling after a fork: the stash takes no lock */
        int cls = hak_mid_class(n);
        struct hak_tbin *bin = &hak_tls.bins[cls];
        if (bin->cap >= HAK_STASH_MIN_CAP && q && hak_stash_take(q, bin, cls))
            return hak_alloc_slow(n); /* the cache's pop, now that it holds blocks */
    }
    hak_heap *h = hak_heap_get();
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > HAK_CLASS_MAX) {
        hak_heap_poll(h);
        return large_alloc(h, n, 0, NULL);
    }
    if (HAK_UNLIKELY(map_alone(n))) return alloc_alone(h, n, NULL);
    return alloc_cls(h, hak_size_class(n), 0, NULL);
}

static void invalid(const char *what, void *p) {
    hak_fatal(what, p);
}

/* at_block_start's test for a coloured class (hak_span_color): out of line,
 * as only the classes from 5 KiB up have colours */
static __attribute__((noinline)) bool at_colored_start(int cls, uintptr_t off, const hak_span *d) {
    uintptr_t c = hak_span_color(d - d->head_off); /* the head's descriptor: another line */
    return off >= c && hak_block_aligned(cls, off - c);
}
/* Whether p, in a small span of class cls, is at the start of a block:
 * its offset from the span's first block a multiple of the class size.
 * Spans start on page boundaries, so that offset is p's within its page
 * plus the pages between its page and the span head (hak_span_of), less
 * the colour. */
static inline bool at_block_start(int cls, void *p) {
    uintptr_t a = (uintptr_t)p & HAK_SEG_MASK;
    const hak_span *d = &hak_seg_of(p)->pages[a >> HAK_PAGE_SHIFT];
    uintptr_t off = (a & (HAK_PAGE_SIZE - 1)) + ((uintptr_t)d->head_off << HAK_PAGE_SHIFT);
    if (HAK_UNLIKELY(hak_cls_colored(cls))) return at_colored_start(cls, off, d);
    return hak_block_aligned(cls, off);
}

/* Class of a live small block p, checked; or -1 if p is not in a segment.
 * `invalid_msg`: what to report for a pointer that is not at a block start,
 * `free_msg`: for a block that is free already. */
static int live_small_class(void *p, const char *invalid_msg, const char *free_msg) {
    uintptr_t a = (uintptr_t)p;
    if ((a >> HAK_ADDR_BITS) || hak_segmap_get(a) != HAK_MAP_SEG) return -1;
    hak_segment *seg = hak_seg_of(p);
    int cls = seg->page_cls[(a & HAK_SEG_MASK) >> HAK_PAGE_SHIFT];
    if (cls >= HAK_NUM_CLASSES || !at_block_start(cls, p)) invalid(invalid_msg, p);
    /* free and listed (key set), or free in a purged page (key read as zero) */
    if (((hak_block *)p)->key == hak_key || HAK_UNLIKELY(hak_block_purged(p)))
        hak_fatal(free_msg, p);
    return cls;
}

/* The class of a live small block p as free()'s fast path checks it: its
 * page window entry (p 16-aligned in a small span of the window: readable)
 * and its free-key (not listed free). -1: live_small_class decides (a
 * segment outside the window, a large or foreign pointer, a free block,
 * HAKMEM_SAFE_FREE's full checks). As with free(), a 16-aligned interior
 * pointer or a block free in a purged page passes here; free() catches those
 * on the flush. malloc_usable_size is called around every malloc and free by
 * programs that count their memory (redis's zmalloc: 10 calls a request):
 * the full check's segment map, page and span loads and alignment test cost
 * 72 instructions a call there; malloc_usable_size with this is 19
 * (docs/allocator.md, "Round five"). */
static inline int live_small_class_quick(void *p) {
    unsigned e = hak_pagewin_entry((uintptr_t)p) - 1;
    if (HAK_LIKELY(e < HAK_NUM_CLASSES) && HAK_LIKELY(((hak_block *)p)->key != hak_key) &&
        HAK_LIKELY(!hak_safe_free))
        return (int)e;
    return -1;
}

void hak_free_slow(void *p) {
    if (!p) return;
    /* A full cache of a class with a stash (hak_store.c): its colder half
     * goes there, then p takes the fast path's push, which now has room
     * (a doubly freed p comes on here to be reported; the flush that takes
     * the stashed blocks to their spans checks the rest). A cap of 8 or
     * more: never in safe-free mode (cap 0) */
    unsigned q = hak_pagewin_entry((uintptr_t)p) - 1; /* p's class, or above them all */
    if (q - HAK_PURGE_CLS_MIN < HAK_STASH_CLS_END - HAK_PURGE_CLS_MIN) {
        struct hak_tbin *bin = &hak_tls.bins[q];
        if (bin->room == 0 && bin->cap >= HAK_STASH_MIN_CAP && ((hak_block *)p)->key != hak_key &&
            hak_tls.heap && hak_stash_put(hak_tls.heap, bin, (int)q)) {
            hak_free_fast(p);
            return;
        }
    }
    int cls = live_small_class(p, "free(): invalid pointer",
                               "free(): double free detected in tcache 2; block already free");
    if (HAK_UNLIKELY(hak_tls.exited && !hak_tls.heap)) {
        /* glibc frees thread state after our destructor ran: no new heap for
         * a thread that is going away; the block goes back to its owner */
        if (cls < 0) {
            if (!hak_large_free_checked(p))
                hak_fatal("free(): invalid pointer; not allocated by hakmem", p);
            return;
        }
        hak_remote_free(hak_span_of(hak_seg_of(p), p), p);
        hak_ctr_add(cls, HAK_CTR_FREES, 1);
        hak_ctr_add(cls, HAK_CTR_REMOTE_FREES, 1);
        return;
    }
    hak_heap *h = hak_tls.heap || cls < 0 ? hak_heap_get() : hak_heap_get_for(hak_seg_of(p)->heap);
    if (cls < 0) {
        if (!h || !hak_large_free_checked(p))
            hak_fatal("free(): invalid pointer; not allocated by hakmem", p);
        return;
    }
    if (!h) hak_fatal("free(): invalid pointer; no heap for this thread", p);
    hak_block *b = p;
    struct hak_tbin *bin = &hak_tls.bins[cls];
    if (HAK_UNLIKELY(bin->ctr == hak_ctr_sink))
        hak_ctr_row(cls); /* a class's first: its row, its room */
    /* With room in the cache this is the fast path's push, for a block it
     * could not take (its segment lies outside the window, or the thread's
     * first free): no cache miss, so no free_slow (the daemon's signal). */
    if (bin->room == 0) {
        HAK_CTR(cls, FREE_SLOW)++;
        hak_heap_poll(h);
    }
    if (bin->cap == 0) {
        /* safe-free mode: straight back to the span, checked */
        b->next = NULL;
        b->key = hak_key;
        hak_flush_list(h, cls, b, 1);
    } else {
        if (bin->room == 0) {
            /* another heap's block overflows the bin: it takes mail, which
             * neither grows it nor stays in it (hak_flush_mixed) */
            if (hak_seg_of(b)->heap != h) bin->refilled |= HAK_TBIN_MIXED;
            if (!hak_tbin_grow(bin)) {
                uint32_t keep = hak_tbin_overflow_keep(bin, cls);
                if (bin->refilled & HAK_TBIN_MIXED)
                    hak_flush_mixed(h, cls, keep);
                else
                    hak_flush(h, cls, keep);
            }
        }
        b->next = bin->head;
        b->key = hak_key;
        bin->head = b;
        bin->room--;
    }
    HAK_BIN_CTR(bin, FREES)++;
}

/* Where malloc and free sit: at line offsets 48 and 16 (64-byte lines),
 * whatever the size of the code before them. The linker puts the
 * .text.sorted.* sections, sorted by name, ahead of the rest of .text (GNU
 * ld's default script): a pad of 48 int3 at a line start, malloc, a pad of
 * 16 at the next line start, free. Before, they followed hak_free_slow: a
 * build where it was 30 bytes shorter (HAK_TLS_ALIGN=64) had them at 32 and
 * 0, and malloc_simple ran 4 % slower; 48/16 is where every build measured
 * fast had them (docs/allocator.md, "Where the fast path sits"). Still in
 * .text: valgrind names only the functions there (callgrind's counts per
 * function, lib/hak_cold.py, bench/redis_callgrind.sh). */
#if defined(__x86_64__) && defined(__ELF__)
/* The build without fast-path counters (lib/libhakmem-nocounters.so) has a
 * malloc 16 bytes shorter that ends in its second line, not its third: a
 * pad a line longer puts its free at the counters build's address too, so
 * that the A/B differs in the counting only (nm; docs/allocator.md, "What
 * the counters cost"). */
#ifndef HAK_FREE_PAD
#define HAK_FREE_PAD 16
#endif
#define HAK_STR_(x) #x
#define HAK_STR(x) HAK_STR_(x)
#define HAK_FAST_SECTION(name) __attribute__((section(".text.sorted.hak_" name)))
__asm__(".pushsection .text.sorted.hak_0pad,\"ax\",@progbits\n\t.p2align 6\n\t"
        ".fill 48, 1, 0xcc\n\t.popsection\n\t"
        ".pushsection .text.sorted.hak_2pad,\"ax\",@progbits\n\t.p2align 6\n\t"
        ".fill " HAK_STR(HAK_FREE_PAD) ", 1, 0xcc\n\t.popsection");
#else
#define HAK_FAST_SECTION(name)
#endif
HAK_EXPORT HAK_FAST_SECTION("1malloc") void *HAK_API(malloc)(size_t n) {
    return hak_alloc_fast(n);
}
HAK_EXPORT HAK_FAST_SECTION("3free") void HAK_API(free)(void *p) {
    hak_free_fast(p);
}
HAK_EXPORT void HAK_API(cfree)(void *p) {
    hak_free_fast(p);
}
HAK_EXPORT void HAK_API(free_sized)(void *p, size_t n) {
    (void)n;
    hak_free_fast(p);
}
HAK_EXPORT void HAK_API(free_aligned_sized)(void *p, size_t a, size_t n) {
    (void)a, (void)n;
    hak_free_fast(p);
}

HAK_EXPORT void *HAK_API(calloc)(size_t nmemb, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    hak_heap *h;
    if ((n > HAK_CLASS_MAX || map_alone(n)) && (h = hak_heap_get()) != NULL) {
        bool fresh = false;
        void *p;
        if (n > HAK_CLASS_MAX) {
            hak_heap_poll(h); /* a slow path like malloc's: knobs, trims, publishing */
            p = large_alloc(h, n, 0, &fresh);
        } else {
            p = alloc_alone(h, n, &fresh);
        }
        /* a new mapping is zero already: don't touch it; a reused one, only
         * where it is resident */
        if (p && !fresh) hak_os_zero(p, n);
        return p;
    }
    void *p = hak_alloc_fast(n);
    if (p) memset(p, 0, n);
    return p;
}

static HAK_NOINLINE size_t usable_slow(void *p) {
    if (!p) return 0;
    int cls = live_small_class(p, "malloc_usable_size(): invalid pointer",
                               "malloc_usable_size(): invalid pointer; block already free");
    if (cls >= 0) return hak_class_size[cls];
    size_t n = hak_large_usable(p);
    if (!n) hak_fatal("malloc_usable_size(): invalid pointer", p);
    return n;
}

/* A leaf that saves no registers, the rest a tail call */
HAK_EXPORT size_t HAK_API(malloc_usable_size)(void *p) {
    int cls = live_small_class_quick(p);
    if (HAK_LIKELY(cls >= 0)) return hak_class_size[cls];
    return usable_slow(p);
}

/* A block that realloc grows past this size leaves the classes for a large
 * mapping with headroom (hak_large_alloc_growing): from there it grows by
 * mremap, moving page tables instead of copying bytes, and it leaves no
 * blocks behind in the spans of the classes it would have passed through.
 * Not under an address-space limit: a mapping takes a 4 MiB chunk of it. */
#define GROW_LARGE_MIN ((size_t)64 << 10)

/* A mid-size block (above the direct-lookup classes, up to GROW_LARGE_MIN)
 * that outgrows its class by a step of at most a quarter of it is being
 * appended to and will grow again: it moves to the class of 1.5 n (at most
 * GROW_LARGE_MIN), as a growing large block takes 1.5 times its size. On
 * realloc_grow-64k (appends of 1-512 B up to 64 KiB) that is 11.0 k moves
 * instead of 26.0 k, and fewer classes passed through leave fewer spans
 * behind (peak RSS 29 -> 25 MiB). A block grown by a big step (doubling)
 * gets its exact class; one that stops growing keeps the slack.
 * Either way a growing block takes a class of the four per doubling: the
 * finer ones (1-2 and 4-8 KiB) are for requests of one size (sqlite3's
 * 1032 B); a growing buffer that stepped through them left a block, and a
 * partly used span, in each (realloc_grow-64k 25.7 -> 29.7 MiB). */
static size_t realloc_headroom(size_t n, size_t old) {
    if (n <= HAK_SMALL_MAX || n > GROW_LARGE_MIN) return n;
    size_t want = n - old > old / 4 ? n : n + n / 2;
    if (want >= GROW_LARGE_MIN) return GROW_LARGE_MIN;
    size_t q = (size_t)1 << ((__builtin_clzl(want - 1) ^ 63) - 2); /* a quarter doubling */
    return (want + q - 1) & ~(q - 1);
}

/* The new place of a block growing (or shrinking) to n bytes. */
static void *realloc_target(size_t n, size_t old) {
    size_t want = n > old ? realloc_headroom(n, old) : n;
    if (want != n) { /* the headroom is a bonus: out of memory, n alone */
        int e = errno;
        void *q = hak_alloc_fast(want);
        if (q) return q;
        errno = e;
        return hak_alloc_fast(n);
    }
    if (n > old && n > GROW_LARGE_MIN && !hak_as_limited()) {
        /* a thread past its exit takes no heap for this (malloc may) */
        hak_heap *h = hak_tls.exited && !hak_tls.heap ? NULL : hak_heap_get();
        if (h) {
            hak_heap_poll(h); /* a slow path like malloc's: purge ticks, knobs */
            void *q = hak_large_alloc_growing(n);
            if (q) return q;
        }
    }
    return hak_alloc_fast(n);
}

HAK_EXPORT void *HAK_API(realloc)(void *p, size_t n) {
    if (!p) return hak_alloc_fast(n);
    if (n == 0) {
        hak_free_fast(p);
        return NULL;
    }
    /* The quick check passes a 16-aligned pointer into a live block: the
     * block's start is checked too, or realloc would copy from past the
     * block's end, hand the interior pointer to its span as a free block
     * (given out again while the block it lies in is live) or return it. */
    int cls = live_small_class_quick(p);
    if (cls < 0 || HAK_UNLIKELY(!at_block_start(cls, p)))
        cls = live_small_class(p, "realloc(): invalid pointer",
                               "realloc(): invalid pointer; block already free");
    size_t old = cls >= 0 ? hak_class_size[cls] : hak_large_usable(p);
    if (!old) hak_fatal("realloc(): invalid pointer", p);
    /* a large block stays a mapping while it is bigger than GROW_LARGE_MIN
     * (or grows): it knows whether it shrinks or grows into its headroom */
    if (cls < 0 && (n > old || n > GROW_LARGE_MIN)) {
        void *q = hak_large_realloc(p, n);
        if (q) return q;
    }
    /* in place when it fits and does not waste more than half */
    if (n <= old && (n >= old / 2 || old <= 16)) return p;
    void *q = realloc_target(n, old);
    if (!q) return NULL; /* errno is ENOMEM; p is untouched */
    memcpy(q, p, n < old ? n : old);
    hak_ctr_add(cls >= 0 ? cls : HAK_CLASS_LARGE, HAK_CTR_REALLOC_COPIES, 1);
    /* settled first (hak_heap_get): a raw fork child's thread may not have
     * yet, and its heap may be one it must leave (hak_heap_after_fork_self) */
    hak_heap *h = hak_tls.heap ? hak_heap_get() : NULL;
    if (cls >= 0 && h && hak_seg_of(p)->heap == h && n > old) {
        /* A growing buffer leaves its class behind: the old block goes
         * straight back to its span, not to the thread cache, where it
         * would pin the span (and its pages) long after the class went
         * quiet. */
        hak_block *b = p;
        b->key = hak_key;
        hak_free_to_span(h, hak_span_of(hak_seg_of(p), p), b);
        HAK_CTR(cls, FREES)++;
        HAK_CTR(cls, FLUSH_BLOCKS)++;
        return q;
    }
    hak_free_fast(p);
    return q;
}

HAK_EXPORT void *HAK_API(reallocarray)(void *p, size_t nmemb, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return HAK_API(realloc)(p, n);
}

/* Blocks of a class lie at multiples of the class size from a span start,
 * and spans start on 64 KiB pages: a class whose size is a multiple of the
 * alignment (up to 64 KiB) serves it. The smallest such class >= n keeps
 * aligned requests in the classes plain malloc(n) uses, so memory freed by
 * one is reused by the other. The rest come from large mappings. */
void *hak_alloc_aligned(size_t align, size_t n) {
    if (align <= 16) return hak_alloc_fast(n);
    hak_heap *h = hak_heap_get();
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    size_t sz = n < align ? align : n;
    if (sz <= HAK_CLASS_MAX && align <= HAK_PAGE_SIZE) {
        for (int c = hak_size_class(sz); c < HAK_NUM_CLASSES; c++)
            if (hak_class_size[c] % align == 0 && (align <= 64 || !hak_cls_colored(c)))
                return alloc_cls(h, c, 0, NULL);
    }
    return large_alloc(h, n, align, NULL);
}

static bool pow2(size_t a) {
    return a && !(a & (a - 1));
}

/* glibc 2.36: EINVAL unless align is a power-of-two multiple of
 * sizeof(void *); a failed allocation returns ENOMEM and leaves errno
 * ENOMEM too (tst-malloc-thread-fail checks both). */
HAK_EXPORT int HAK_API(posix_memalign)(void **out, size_t align, size_t n) {
    if (!pow2(align) || align % sizeof(void *)) return EINVAL;
    void *p = hak_alloc_aligned(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* C17 (DR 460) and glibc >= 2.38: a non-power-of-two alignment is EINVAL.
 * (glibc 2.36 treated aligned_alloc as memalign.) */
HAK_EXPORT void *HAK_API(aligned_alloc)(size_t align, size_t n) {
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return hak_alloc_aligned(align, n);
}

/* glibc's rules: an alignment above 2^63 is EINVAL; one of 16 or less is
 * malloc's; any other is rounded up to a power of two; an alignment that
 * cannot be had (2^63 included) is ENOMEM. */
HAK_EXPORT void *HAK_API(memalign)(size_t align, size_t n) {
    if (align > ((size_t)1 << 63)) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1;
    while (a < align) a <<= 1;
    return hak_alloc_aligned(a, n);
}

HAK_EXPORT void *HAK_API(valloc)(size_t n) {
    return hak_alloc_aligned((size_t)getpagesize(), n);
}

HAK_EXPORT void *HAK_API(pvalloc)(size_t n) {
    size_t pg = (size_t)getpagesize(), r = (n + pg - 1) & ~(pg - 1);
    if (r < n) {
        errno = ENOMEM;
        return NULL;
    }
    return hak_alloc_aligned(pg, r ? r : pg);
}

HAK_EXPORT int HAK_API(malloc_trim)(size_t pad) {
    (void)pad;
    uint64_t before = HAK_PROC_GET(RELEASED);
    if (!HAK_READY()) return 0;
    hak_fork_check(); /* a fork child's first trim asks its own segment, not its parent's */
    hak_trim_all();
    return HAK_PROC_GET(RELEASED) != before;
}
