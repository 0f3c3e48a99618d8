/* hak_class.c — size -> class, and the cheap divisibility test that checks
 * a pointer is the start of a block of its class. */
#include "hak_internal.h"

#include <string.h>

uint8_t hak_small_cls[HAK_SMALL_MAX + 1];   /* by the byte: indexed by n itself */
uint16_t hak_small_bin[HAK_SMALL_MAX + 1];  /* malloc's: the class's bin offset in hak_tls.bins */
uint8_t hak_fine_cls[HAK_FINE_MAX / 128];   /* by (n - 1) / 128, above HAK_SMALL_MAX */
uint32_t hak_cls_shift[HAK_NUM_CLASSES];    /* size = odd << shift */
uint32_t hak_cls_inv[HAK_NUM_CLASSES];      /* odd^-1 mod 2^32 */
uint32_t hak_cls_lim[HAK_NUM_CLASSES];      /* UINT32_MAX / odd */
uint32_t hak_cls_grow_cap[HAK_NUM_CLASSES]; /* a churned default cache's cap (see below) */

void hak_class_init(void) {
    /* a class's sizes at once (the bin offsets in a loop the compiler
     * vectorises): 17 k instructions at every start were a byte at a time */
    size_t n = 0;
    for (int c = 0; n <= HAK_SMALL_MAX; c++) {
        size_t end = hak_class_size[c] < HAK_SMALL_MAX ? hak_class_size[c] : HAK_SMALL_MAX;
        uint16_t bin = (uint16_t)(c * sizeof(struct hak_tbin));
        memset(hak_small_cls + n, c, end + 1 - n);
        for (size_t i = n; i <= end; i++) hak_small_bin[i] = bin;
        n = end + 1;
    }
    for (int c = HAK_CLS_1024 + 1, i = HAK_SMALL_MAX / 128; i < HAK_FINE_MAX / 128; i++) {
        while (hak_class_size[c] < (i + 1) * 128u) c++;
        hak_fine_cls[i] = (uint8_t)c;
    }
    for (int k = 0; k < HAK_NUM_CLASSES; k++) {
        uint32_t s = hak_class_size[k], sh = (uint32_t)__builtin_ctz(s), odd = s >> sh;
        uint32_t inv = odd; /* Newton: inv = inv * (2 - odd*inv), 5 steps for 32 bits */
        for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
        hak_cls_shift[k] = sh;
        hak_cls_inv[k] = inv;
        hak_cls_lim[k] = UINT32_MAX / odd;
        hak_cls_grow_cap[k] = 262144 / s < 2048 ? 262144 / s : 2048;
        /* Every class, the mid ones (16-64 KiB) too, grows to 256 KiB at
         * most: a thread cache is the one place no purge reaches (its
         * lists are the owner's, without locks), so what a thread holds
         * there when it goes to sleep stays resident until it wakes. Grown
         * to 1 MiB for the mid classes' refills (mid_large_mt-8k-32k), a
         * thread that freed 32 blocks of 40 KiB and slept kept 25 of them
         * cached: 480 KiB of their pages went back instead of 1080 KiB
         * (t_purge_fresh, part 2; the issue: idle memory goes back within
         * ~2 s). The refill cost this brings back: docs/allocator.md. */
    }
}
