/* t_api_malloc — the malloc/free/malloc_usable_size contract.
 *
 * Checks, against whatever allocator serves the process (tests/run preloads
 * hakmem when lib/libhakmem.so exists; the same binary passes under glibc):
 *  - malloc(0) returns unique, non-NULL, freeable pointers; free(NULL) is a no-op;
 *  - every size 0..4096 and then geometric up to 64 MiB: the block is
 *    16-byte aligned (for sizes >= 16), malloc_usable_size >= requested, all
 *    usable bytes writable; a pattern written to every usable byte is intact
 *    when all blocks of the sweep are live together (no two blocks overlap,
 *    the allocator keeps no metadata inside a live block), then checked
 *    again right before each free;
 *  - impossible sizes (SIZE_MAX, PTRDIFF_MAX+1, SIZE_MAX-4096) -> NULL, ENOMEM;
 *  - free() leaves errno alone (glibc >= 2.33 and POSIX-2024 guarantee it);
 *  - malloc_usable_size(NULL) == 0; malloc_trim returns 0 or 1;
 *  - mallinfo2: uordblks grows after allocating 10 MiB of small blocks
 *    (strictly required when hakmem is loaded; glibc's main arena passes too).
 * Why: these are the guarantees real programs lean on, and each one is a
 * classic place for a new allocator to be subtly wrong.
 */
#include "testutil.h"

#include <malloc.h>
#include <stdint.h>
#include <unistd.h>

/* Calls go through volatile pointers so the compiler can not fold them. */
static void *(*volatile p_malloc)(size_t) = malloc;
static void (*volatile p_free)(void *) = free;

struct blk {
    void *p;
    size_t req, usable;
};

static int cmp_blk(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const struct blk *)a)->p, y = (uintptr_t)((const struct blk *)b)->p;
    return x < y ? -1 : x > y;
}

/* Allocates every size in sizes[], fills all usable bytes, checks no overlap
 * with the others, verifies, frees (in an interleaved order). */
static void sweep(const size_t *sizes, size_t n, uint64_t seed) {
    struct blk *b = calloc(n, sizeof *b);
    REQUIRE(b);
    for (size_t i = 0; i < n; i++) {
        size_t sz = sizes[i];
        void *p = p_malloc(sz);
        CHECKF(p != NULL, "malloc(%zu) returned NULL", sz);
        if (!p) continue;
        if (sz >= 16)
            CHECKF(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned", sz, p);
        else
            CHECKF(((uintptr_t)p & 7) == 0, "malloc(%zu) = %p not 8-aligned", sz, p);
        size_t us = malloc_usable_size(p);
        CHECKF(us >= sz, "malloc_usable_size(malloc(%zu)) = %zu", sz, us);
        if (us < sz) us = sz;
        pat_fill(p, us, seed);
        b[i] = (struct blk){p, sz, us};
    }
    /* All live at once: patterns intact, no overlap of usable ranges. */
    for (size_t i = 0; i < n; i++) {
        if (!b[i].p) continue;
        size_t bad = pat_check(b[i].p, b[i].usable, seed);
        CHECKF(bad == (size_t)-1, "block %p (req %zu, usable %zu) corrupted at offset %zu", b[i].p,
               b[i].req, b[i].usable, bad);
    }
    struct blk *s = malloc(n * sizeof *s);
    REQUIRE(s);
    memcpy(s, b, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_blk);
    for (size_t i = 1; i < n; i++) {
        if (!s[i - 1].p) continue;
        CHECKF((uintptr_t)s[i - 1].p + s[i - 1].usable <= (uintptr_t)s[i].p,
               "blocks overlap: %p+%zu and %p", s[i - 1].p, s[i - 1].usable, s[i].p);
    }
    free(s);
    /* Free odd indices first, then even: exercises partially-empty slabs. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = (size_t)(1 - pass); i < n; i += 2) {
            if (!b[i].p) continue;
            size_t bad = pat_check(b[i].p, b[i].usable, seed);
            CHECKF(bad == (size_t)-1, "block %p (req %zu) corrupted before free at %zu", b[i].p,
                   b[i].req, bad);
            p_free(b[i].p);
        }
    free(b);
}

static void test_malloc0(void) {
    enum { N = 1000 };
    struct blk b[N];
    for (int i = 0; i < N; i++) {
        b[i].p = p_malloc(0);
        CHECKF(b[i].p != NULL, "malloc(0) #%d returned NULL", i);
        b[i].usable = b[i].p ? malloc_usable_size(b[i].p) : 0;
        b[i].req = 0;
    }
    qsort(b, N, sizeof b[0], cmp_blk);
    for (int i = 1; i < N; i++)
        if (b[i - 1].p) CHECKF(b[i - 1].p != b[i].p, "malloc(0) returned %p twice", b[i].p);
    /* usable bytes of malloc(0) blocks must not overlap either */
    for (int i = 1; i < N; i++)
        if (b[i - 1].p)
            CHECKF((uintptr_t)b[i - 1].p + b[i - 1].usable <= (uintptr_t)b[i].p,
                   "malloc(0) blocks overlap: %p+%zu, %p", b[i - 1].p, b[i - 1].usable, b[i].p);
    for (int i = 0; i < N; i++) p_free(b[i].p);
    p_free(NULL);
    p_free(NULL);
    CHECK(malloc_usable_size(NULL) == 0);
}

static void test_sizes(void) {
    static size_t sizes[4097];
    for (size_t i = 0; i <= 4096; i++) sizes[i] = i;
    sweep(sizes, 4097, 1);
    /* geometric 4 KiB .. 64 MiB, with the neighbours of each step */
    size_t geo[400];
    size_t n = 0;
    for (double s = 4096; s <= 64.0 * 1024 * 1024 && n + 3 <= 400; s *= 1.25) {
        size_t z = (size_t)s & ~(size_t)15;
        if (z <= (1u << 20)) geo[n++] = z - 1;
        geo[n++] = z;
        if (z <= (1u << 20)) geo[n++] = z + 1;
    }
    geo[n++] = 64u << 20;
    /* powers of two and class-ish boundaries up to 64 MiB */
    for (size_t z = 8192; z <= (64u << 20) && n + 2 <= 400; z <<= 1) {
        geo[n++] = z + 16;
        if (z <= (4u << 20)) geo[n++] = z - 16;
    }
    sweep(geo, n, 2);
    /* one at a time too (fresh block every time, not all live) */
    for (size_t i = 0; i < n; i++) sweep(&geo[i], 1, 3 + i);
}

static void test_impossible(void) {
    volatile size_t bigs[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4096,
                              (size_t)PTRDIFF_MAX + 4096, SIZE_MAX / 2 + 12345};
    for (size_t i = 0; i < sizeof bigs / sizeof bigs[0]; i++) {
        errno = 0;
        void *p = p_malloc(bigs[i]);
        int e = errno;
        CHECKF(p == NULL, "malloc(%zu) returned %p", bigs[i], p);
        CHECKF(e == ENOMEM, "malloc(%zu): errno %d, want ENOMEM", bigs[i], e);
        if (p) p_free(p);
    }
    /* still works afterwards */
    void *p = p_malloc(100);
    CHECK(p != NULL);
    p_free(p);
}

static void test_free_errno(void) {
    size_t sizes[] = {0, 8, 100, 5000, 100000, 3u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = p_malloc(sizes[i]);
        CHECK(p != NULL);
        errno = 12345;
        p_free(p);
        CHECKF(errno == 12345, "free() of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    errno = 777;
    p_free(NULL);
    CHECK(errno == 777);
}

static void test_trim_mallinfo(void) {
    int r = malloc_trim(0);
    CHECKF(r == 0 || r == 1, "malloc_trim(0) = %d", r);

    struct mallinfo2 before = mallinfo2();
    enum { N = 10 * 1024 * 1024 / 64 };
    void **v = malloc(N * sizeof *v);
    REQUIRE(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = p_malloc(48 + (i & 15));
        REQUIRE(v[i]);
        memset(v[i], (int)i, 48);
    }
    struct mallinfo2 during = mallinfo2();
    printf("mallinfo2: uordblks %zu -> %zu, arena %zu -> %zu, hblkhd %zu, fordblks %zu\n",
           before.uordblks, during.uordblks, before.arena, during.arena, during.hblkhd,
           during.fordblks);
    CHECKF(during.uordblks >= before.uordblks + 9 * 1024 * 1024,
           "uordblks grew only from %zu to %zu after 10 MiB of small blocks", before.uordblks,
           during.uordblks);
    /* total in use can not exceed what the system gave (arena + mmapped) */
    CHECKF(during.uordblks <= during.arena + during.hblkhd + (64u << 20),
           "uordblks %zu > arena %zu + hblkhd %zu", during.uordblks, during.arena, during.hblkhd);
    for (size_t i = 0; i < N; i++) p_free(v[i]);
    free(v);
    struct mallinfo2 after = mallinfo2();
    CHECKF(after.uordblks < during.uordblks, "uordblks did not drop after free: %zu -> %zu",
           during.uordblks, after.uordblks);
    r = malloc_trim(0);
    CHECKF(r == 0 || r == 1, "malloc_trim(0) = %d", r);
    r = malloc_trim(1 << 20);
    CHECKF(r == 0 || r == 1, "malloc_trim(1M) = %d", r);
    /* allocator still fine after trim */
    size_t sizes[] = {1, 17, 300, 4000, 70000, 200000, 5u << 20};
    sweep(sizes, sizeof sizes / sizeof sizes[0], 99);
}

int main(void) {
    tu_init("t_api_malloc");
    test_malloc0();
    test_sizes();
    test_impossible();
    test_free_errno();
    test_trim_mallinfo();
    return tu_done();
}
