/* hak_class.c — size -> class, and the cheap divisibility test that checks
 * a pointer is the start of a block of its class. */
#include "hak_internal.h"

uint8_t hak_small_cls[HAK_SMALL_MAX + 1];   /* by the byte: indexed by n itself */
uint16_t hak_small_bin[HAK_SMALL_MAX + 1];  /* malloc's: the class's bin offset in hak_tls.bins */
uint32_t hak_cls_shift[HAK_NUM_CLASSES];    /* size = odd << shift */
uint32_t hak_cls_inv[HAK_NUM_CLASSES];      /* odd^-1 mod 2^32 */
uint32_t hak_cls_lim[HAK_NUM_CLASSES];      /* UINT32_MAX / odd */
uint32_t hak_cls_grow_cap[HAK_NUM_CLASSES]; /* a churned default cache's cap (see below) */

void hak_class_init(void) {
    int c = 0;
    for (size_t n = 0; n <= HAK_SMALL_MAX; n++) {
        while (hak_class_size[c] < n) c++;
        hak_small_cls[n] = (uint8_t)c;
        hak_small_bin[n] = (uint16_t)(c * sizeof(struct hak_tbin));
    }
    for (int k = 0; k < HAK_NUM_CLASSES; k++) {
        uint32_t s = hak_class_size[k], sh = (uint32_t)__builtin_ctz(s), odd = s >> sh;
        uint32_t inv = odd; /* Newton: inv = inv * (2 - odd*inv), 5 steps for 32 bits */
        for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
        hak_cls_shift[k] = sh;
        hak_cls_inv[k] = inv;
        hak_cls_lim[k] = UINT32_MAX / odd;
        hak_cls_grow_cap[k] = 262144 / s < 2048 ? 262144 / s : 2048;
        /* 16-64 KiB: 4-16 blocks are 256 KiB, and a random mix of
         * mallocs and frees walks a cache that short into a refill or a
         * flush every ~17 operations (mid_large_mt-8k-32k: 342 k refills
         * of the 32 KiB class for 5.9 M allocations), each under the heap
         * lock, through span lists whose free blocks the purger releases
         * and the next refill faults in again. A churned cache of these
         * classes grows to 1 MiB: refills 1 per ~1000 allocations, and
         * page faults fell (1.8 k -> 1.5 k) since fewer blocks sit in spans
         * long enough to be purged. Smaller classes keep 256 KiB
         * (thread_bins, 8 B-10 KB: 4x for 5-10 KiB gave +14 % page faults). */
        if (s >= 16384 && s <= 65536) hak_cls_grow_cap[k] = 4 * (262144 / s);
    }
}
