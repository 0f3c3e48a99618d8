/* hak_alloc.h — the hot path of malloc and free, read top to bottom.
 *
 * malloc: size -> bin by table, pop the thread cache list, clear the
 * block's free-key, count. free: address -> class + 1 (one byte of the page
 * window, hak_pagewin_entry), the bin's room, the free-key, push on the
 * thread cache list, count.
 * No locks, no atomics, no writes to memory another thread writes.
 * Everything else (empty cache, full cache, large blocks, foreign or
 * doubly freed pointers, first call of a thread) is hak_*_slow.
 */
#ifndef HAK_ALLOC_H
#define HAK_ALLOC_H

#include "hak_internal.h"

/* The calling thread's bins. x86-64 (not under TSAN, which must
 * see plain accesses): addressed %fs-relative through the initial-exec
 * offset of hak_tls (one GOT load, constant per process), so the fast path
 * does not also load the thread pointer from %fs:0 to form &hak_tls: one
 * load and one add less in malloc and in free. */
#if defined(__x86_64__) && defined(__SEG_FS) && !defined(__SANITIZE_THREAD__)
typedef struct hak_tbin __seg_fs hak_tbin_ref;
/* (hak_tls - thread pointer) + x: the GOT word initial-exec code reads.
 * Field offsets stay outside, so they fold into the accesses' displacements. */
static inline uintptr_t hak_tls_off(uintptr_t x) {
    __asm__("addq hak_tls@gottpoff(%%rip), %0" : "+r"(x) : : "cc");
    return x;
}
_Static_assert(offsetof(struct hak_tls, bin_none) == 0 &&
                   offsetof(struct hak_tls, bins) == sizeof(struct hak_tbin),
               "hak_tls starts with bin_none, then bins");
/* The bin off bytes into bins, written as "the bin after bin_none + off":
 * so GCC folds bins' offset into the accesses (not for a byte offset added) */
static inline hak_tbin_ref *hak_tbin_at(uintptr_t off) {
    return &((hak_tbin_ref *)hak_tls_off(off))[1];
}
/* The bin of free()'s window entry e (class + 1, 0: bin_none). */
static inline hak_tbin_ref *hak_tbin_of_entry(unsigned e) {
    return (hak_tbin_ref *)hak_tls_off((uintptr_t)e * sizeof(struct hak_tbin));
}
#else
typedef struct hak_tbin hak_tbin_ref;
static inline hak_tbin_ref *hak_tbin_of_entry(unsigned e) {
    return e ? &hak_tls.bins[e - 1] : &hak_tls.bin_none;
}
static inline hak_tbin_ref *hak_tbin_at(uintptr_t off) {
    return (hak_tbin_ref *)((char *)hak_tls.bins + off);
}
#endif

static inline void *hak_alloc_fast(size_t n) {
    if (HAK_LIKELY(n <= HAK_SMALL_MAX)) {
        hak_tbin_ref *bin = hak_tbin_at(hak_small_bin[n]);
        hak_block *b = bin->head;
        if (HAK_LIKELY(b != NULL)) {
            bin->head = b->next;
            bin->room++;
            b->key = 0; /* live blocks never carry the free-key */
            HAK_FAST_COUNT(bin, ALLOCS);
            return b;
        }
    }
    return hak_alloc_slow(n);
}

static inline void hak_free_fast(void *p) {
    /* class + 1 of p's page if p is 16-aligned in a small span of the
     * window, else 0; entry e's bin is bins[e - 1] (bins[-1]: bin_none).
     * The bins of 0 and HAK_CLS_NONE + 1 have room 0: the slow path. */
    hak_tbin_ref *bin = hak_tbin_of_entry(hak_pagewin_entry((uintptr_t)p));
    /* room <= 4096: the sign bit of the decrement says "was full" (one
     * subtract-and-branch on memory); a full bin gets its room back */
    if (HAK_LIKELY((int32_t)--bin->room >= 0)) {
        hak_block *b = p; /* in a span of ours: readable */
        if (HAK_LIKELY(b->key != hak_key)) {
            b->next = bin->head;
            b->key = hak_key;
            bin->head = b;
            HAK_FAST_COUNT(bin, FREES);
            return;
        }
        /* doubly freed: the slow path says so. The barrier keeps the
         * decrement above a plain subtract on memory (no copy kept for here) */
        __asm__ volatile("" ::: "memory");
        bin->room++;
    } else {
        bin->room = 0; /* it was 0: the only value the decrement takes below 0 */
    }
    hak_free_slow(p);
}

#endif
