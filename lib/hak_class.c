/* hak_class.c — size -> class, and the cheap divisibility test that checks
 * a pointer is the start of a block of its class. */
#include "hak_internal.h"

uint8_t hak_small_cls[HAK_SMALL_MAX / 16 + 1];
uint32_t hak_cls_shift[HAK_NUM_CLASSES]; /* size = odd << shift */
uint32_t hak_cls_inv[HAK_NUM_CLASSES];   /* odd^-1 mod 2^32 */
uint32_t hak_cls_lim[HAK_NUM_CLASSES];   /* UINT32_MAX / odd */

int hak_size_class(size_t n) {
    if (n <= HAK_SMALL_MAX) return hak_small_cls[(n + 15) >> 4];
    if (n > HAK_CLASS_MAX) return -1;
    /* four classes per doubling: find the doubling, then the quarter */
    size_t m = n - 1;
    int lg = 63 - __builtin_clzl(m);            /* 2^lg <= m < 2^(lg+1) */
    int quarter = (int)((m >> (lg - 2)) & 3);   /* which quarter above 2^lg */
    int cls = 19 + (lg - 10) * 4 + quarter + 1; /* class 19 is 1024 = 2^10 */
    return cls;
}

void hak_class_init(void) {
    int c = 0;
    for (size_t i = 0; i <= HAK_SMALL_MAX / 16; i++) {
        size_t n = i * 16;
        while (hak_class_size[c] < n) c++;
        hak_small_cls[i] = (uint8_t)c;
    }
    for (int k = 0; k < HAK_NUM_CLASSES; k++) {
        uint32_t s = hak_class_size[k], sh = (uint32_t)__builtin_ctz(s), odd = s >> sh;
        uint32_t inv = odd; /* Newton: inv = inv * (2 - odd*inv), 5 steps for 32 bits */
        for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
        hak_cls_shift[k] = sh;
        hak_cls_inv[k] = inv;
        hak_cls_lim[k] = UINT32_MAX / odd;
    }
}
