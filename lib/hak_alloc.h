/* hak_alloc.h — the hot path of malloc and free, read top to bottom.
 *
 * malloc: size -> class by table, pop the thread cache list, clear the
 * block's free-key, count. free: address -> segment (mask) -> class (one
 * byte in the page descriptor), push on the thread cache list, count.
 * No locks, no atomics, no writes to memory another thread writes.
 * Everything else (empty cache, full cache, large blocks, foreign or
 * doubly freed pointers, first call of a thread) is hak_*_slow.
 */
#ifndef HAK_ALLOC_H
#define HAK_ALLOC_H

#include "hak_internal.h"

/* The calling thread's bin of class cls. x86-64 (not under TSAN, which must
 * see plain accesses): addressed %fs-relative through the initial-exec
 * offset of hak_tls (one GOT load, constant per process), so the fast path
 * does not also load the thread pointer from %fs:0 to form &hak_tls: one
 * load and one add less in malloc and in free. */
#if defined(__x86_64__) && defined(__SEG_FS) && !defined(__SANITIZE_THREAD__)
typedef struct hak_tbin __seg_fs hak_tbin_ref;
static inline hak_tbin_ref *hak_tbin_of(unsigned cls) {
    uintptr_t off = offsetof(struct hak_tls, bins) + cls * sizeof(struct hak_tbin);
    /* + (hak_tls - thread pointer), the GOT word initial-exec code reads */
    __asm__("addq hak_tls@gottpoff(%%rip), %0" : "+r"(off) : : "cc");
    return (hak_tbin_ref *)off;
}
#else
typedef struct hak_tbin hak_tbin_ref;
static inline hak_tbin_ref *hak_tbin_of(unsigned cls) {
    return &hak_tls.bins[cls];
}
#endif

static inline void *hak_alloc_fast(size_t n) {
    if (HAK_LIKELY(n <= HAK_SMALL_MAX)) {
        unsigned cls = hak_small_cls[n];
        hak_tbin_ref *bin = hak_tbin_of(cls);
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
    uintptr_t a = (uintptr_t)p;
    /* ours, small-segment, 16-aligned: anything else is the slow path */
    if (HAK_LIKELY(hak_segwin_small(a))) {
        hak_segment *seg = hak_seg_of(p);
        unsigned cls = seg->page_cls[(a & HAK_SEG_MASK) >> HAK_PAGE_SHIFT];
        hak_block *b = p;
        if (HAK_LIKELY(b->key != hak_key)) { /* cls may be HAK_CLS_NONE: room 0 */
            hak_tbin_ref *bin = hak_tbin_of(cls);
            /* room <= 4096: the sign bit of the decrement says "was full" (one
             * subtract-and-branch on memory); a full bin gets its room back */
            if (HAK_LIKELY((int32_t)--bin->room >= 0)) {
                b->next = bin->head;
                b->key = hak_key;
                bin->head = b;
                HAK_FAST_COUNT(bin, FREES);
                return;
            }
            bin->room = 0; /* it was 0: the only value the decrement takes below 0 */
        }
    }
    hak_free_slow(p);
}

#endif
