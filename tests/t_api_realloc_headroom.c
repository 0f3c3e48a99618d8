/* t_api_realloc_headroom — a mid-size block grown by small appends moves
 * with headroom, one grown by a big step gets its exact class.
 *
 * Checks (hakmem only: the sizes are its classes):
 *  - a buffer grown from 1100 B to 64 KiB in 256 B appends keeps every byte
 *    and moves at most 14 times (the class steps alone are 23 moves);
 *  - a small step out of a class (10000 -> 10300 B) lands in a class of at
 *    least 1.5 times the size (16 KiB), not the next one (12 KiB);
 *  - a doubling step (10000 -> 20000 B) gets the exact class (20 KiB);
 *  - the headroom stops at 64 KiB: 50000 -> 58000 B gives a 64 KiB class
 *    block, not a large mapping (a realloc past 64 KiB would make it one);
 *  - shrinking within half of the block stays in place.
 * Why: every class step copies the whole buffer; a buffer that grows by
 * appends (string builders, read buffers) grows again.
 */
#include "testutil.h"

#include <malloc.h>
#include <stdint.h>

static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;

static uint8_t byte_at(size_t i) {
    return (uint8_t)(tu_mix(i >> 3) >> ((i & 7) * 8));
}

/* A fresh block of `from` bytes grown once to `to`; its usable size. */
static size_t grown_once(size_t from, size_t to) {
    uint8_t *p = p_malloc(from);
    REQUIRE(p != NULL);
    p[0] = 0x5a;
    p[from - 1] = 0xa5;
    uint8_t *q = p_realloc(p, to);
    REQUIRE(q != NULL);
    CHECKF(q[0] == 0x5a && q[from - 1] == 0xa5, "%zu -> %zu B lost bytes", from, to);
    size_t u = malloc_usable_size(q);
    free(q);
    return u;
}

int main(void) {
    tu_init("t_api_realloc_headroom");
    if (!hakmem_loaded()) {
        printf("SKIP: the sizes checked are hakmem's classes (run through tests/run)\n");
        return TU_SKIP;
    }
    uint8_t *p = p_malloc(1100);
    REQUIRE(p != NULL);
    size_t len = 1100, bad = SIZE_MAX;
    unsigned moves = 0;
    for (size_t i = 0; i < len; i++) p[i] = byte_at(i);
    while (len < ((size_t)64 << 10)) {
        size_t n = len + 256 > ((size_t)64 << 10) ? (size_t)64 << 10 : len + 256;
        uint8_t *q = p_realloc(p, n);
        REQUIRE(q != NULL);
        moves += q != p;
        if (bad == SIZE_MAX && (q[0] != byte_at(0) || q[len - 1] != byte_at(len - 1))) bad = len;
        for (size_t i = len; i < n; i++) q[i] = byte_at(i);
        p = q;
        len = n;
    }
    for (size_t i = 0; i < len && bad == SIZE_MAX; i++)
        if (p[i] != byte_at(i)) bad = i;
    CHECKF(bad == SIZE_MAX, "byte %zu lost while growing", bad);
    printf("1100 B -> 64 KiB in 256 B appends: %u moves\n", moves);
    CHECKF(moves >= 3 && moves <= 14, "%u moves (23 class steps; headroom should halve them)",
           moves);
    /* within half of the block: in place */
    uint8_t *s = p_realloc(p, 40000);
    CHECKF(s == p, "64 KiB block shrunk to 40000 B moved");
    free(s);

    size_t u = grown_once(10000, 10300);
    CHECKF(u >= 15450 && u <= 16384, "10000 -> 10300 B: usable %zu, want the 16 KiB class", u);
    u = grown_once(10000, 20000);
    CHECKF(u == 20480, "10000 -> 20000 B: usable %zu, want the exact 20 KiB class", u);
    u = grown_once(50000, 58000);
    CHECKF(u == 65536, "50000 -> 58000 B: usable %zu, want the 64 KiB class", u);
    return tu_done();
}
