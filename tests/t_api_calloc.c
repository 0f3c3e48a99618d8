/* t_api_calloc — calloc returns zeroed memory, even when it recycles blocks.
 *
 * Checks:
 *  - for small, mid and large sizes: fill blocks with 0xAA, free them, calloc
 *    the same sizes again (same order, reverse order, and from another thread)
 *    and check every requested byte is zero. An allocator that skips zeroing
 *    because "fresh mmap memory is zero" fails here on recycled blocks,
 *    cached large blocks and thread-cache hits;
 *  - a recycled large block whose pages are partly resident (written in
 *    scattered places, the rest never touched; a realloc that moved): zero
 *    everywhere, and under hakmem the pages nobody wrote are still not
 *    resident after the calloc (it clears resident pages and drops the
 *    others; a memset faulted all of them in: 23 ms and 512 faults for a
 *    3 MiB calloc after a realloc to 9 MiB);
 *  - calloc(n, 0) and calloc(0, n) return unique freeable pointers;
 *  - calloc(nmemb, size) whose product overflows -> NULL + ENOMEM;
 *    calloc of an impossible total (SIZE_MAX, PTRDIFF_MAX+1) -> NULL + ENOMEM.
 * Why: calloc's zeroing is often optimised (skipped for fresh pages), and a
 * missed case is a silent information leak / corruption in the program.
 */
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;

static const size_t sizes[] = {1,        8,
                               16,       24,
                               100,      256,
                               1000,     1024,
                               2000,     4096,
                               5000,     12345,
                               40000,    65536,
                               100000,   131072,
                               131073,   200000,
                               1u << 20, (1u << 20) + 100,
                               3u << 20, (4u << 20) + 1,
                               9u << 20, 16u << 20};
enum { NS = sizeof sizes / sizeof sizes[0], COPIES = 8 };

static size_t first_nonzero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return i;
    return (size_t)-1;
}

static void dirty_round(void) {
    void *v[NS * COPIES];
    for (int c = 0; c < COPIES; c++)
        for (int i = 0; i < NS; i++) {
            void *p = p_malloc(sizes[i]);
            REQUIRE(p);
            memset(p, 0xAA, malloc_usable_size(p));
            v[c * NS + i] = p;
        }
    for (int i = 0; i < NS * COPIES; i++) free(v[i]);
}

static void calloc_round(int reverse, const char *what) {
    void *v[NS * COPIES];
    for (int k = 0; k < NS * COPIES; k++) {
        int j = reverse ? NS * COPIES - 1 - k : k;
        size_t sz = sizes[j % NS];
        /* vary the nmemb/size split */
        size_t nm = (sz % 8 == 0 && (j & 1)) ? sz / 8 : sz;
        size_t el = nm == sz ? 1 : 8;
        unsigned char *p = p_calloc(nm, el);
        CHECKF(p != NULL, "%s: calloc(%zu, %zu) = NULL", what, nm, el);
        v[k] = p;
        if (!p) continue;
        size_t bad = first_nonzero(p, sz);
        CHECKF(bad == (size_t)-1, "%s: calloc(%zu, %zu) = %p byte %zu is 0x%02x", what, nm, el,
               (void *)p, bad, bad == (size_t)-1 ? 0 : p[bad]);
        memset(p, 0xAA, malloc_usable_size(p));
    }
    for (int k = 0; k < NS * COPIES; k++) free(v[k]);
}

static void *thread_round(void *arg) {
    (void)arg;
    for (int r = 0; r < 3; r++) {
        calloc_round(r & 1, "thread");
        dirty_round();
    }
    return NULL;
}

static void test_zeroing(void) {
    for (int r = 0; r < 4; r++) {
        dirty_round();
        calloc_round(r & 1, r & 1 ? "reverse" : "same-order");
    }
    /* blocks dirtied here, calloc'd in another thread (and vice versa) */
    dirty_round();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_round, NULL) == 0);
    pthread_join(t, NULL);
    calloc_round(0, "after-thread");

    /* many small callocs of one size right after freeing dirty ones (thread
     * cache hits) */
    for (size_t sz = 1; sz <= 1100; sz += 13) {
        void *v[64];
        for (int i = 0; i < 64; i++) {
            v[i] = p_malloc(sz);
            REQUIRE(v[i]);
            memset(v[i], 0xAA, malloc_usable_size(v[i]));
        }
        for (int i = 0; i < 64; i++) free(v[i]);
        for (int i = 0; i < 64; i++) {
            unsigned char *p = p_calloc(1, sz);
            REQUIRE(p);
            size_t bad = first_nonzero(p, sz);
            CHECKF(bad == (size_t)-1, "calloc(1, %zu) after free: byte %zu nonzero", sz, bad);
            v[i] = p;
        }
        for (int i = 0; i < 64; i++) free(v[i]);
    }
}

/* pages of [p, p + n) (page-aligned) that are resident */
static size_t resident_pages(void *p, size_t n) {
    static unsigned char vec[4096];
    size_t pages = n / 4096, in = 0;
    REQUIRE(pages <= sizeof vec && mincore(p, n, vec) == 0);
    for (size_t i = 0; i < pages; i++) in += vec[i] & 1;
    return in;
}

static void test_partly_resident(void) {
    enum { MIB = 1 << 20 };
    /* a transparent huge page makes 512 pages resident for one written:
     * "resident" must mean "written" here */
    REQUIRE(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0);
    for (int round = 0; round < 3; round++) {
        /* the block written at its start, in every 5th page and at its end */
        unsigned char *r = p_malloc(12 * MIB);
        REQUIRE(r);
        memset(r, 0xAB, MIB);
        for (size_t o = MIB; o < 12 * MIB; o += 5 * 4096) r[o + 17] = 0xCD;
        r[12 * MIB - 1] = 0xEF;
        free(r);
        /* then a realloc that moves: a block of 3 MiB grown to 9 */
        unsigned char *g = p_calloc(1, 3 * MIB);
        REQUIRE(g);
        size_t bad = first_nonzero(g, 3 * MIB);
        CHECKF(bad == (size_t)-1, "round %d: calloc(3 MiB) over a dirty block: byte %zu", round,
               bad);
        memset(g, 0x5A, 3 * MIB);
        unsigned char *g9 = realloc(g, 9 * MIB);
        REQUIRE(g9);
        free(g9);
        unsigned char *c = p_calloc(1, 10 * MIB);
        REQUIRE(c);
        unsigned char *pa = (unsigned char *)(((uintptr_t)c + 4095) & ~(uintptr_t)4095);
        size_t span = (10 * MIB - (size_t)(pa - c)) & ~(size_t)4095;
        size_t in = resident_pages(pa, span);
        bad = first_nonzero(c, 10 * MIB);
        CHECKF(bad == (size_t)-1, "round %d: calloc(10 MiB) after partial writes: byte %zu is %#x",
               round, bad, bad == (size_t)-1 ? 0 : c[bad]);
        /* round 0 only: the zero check reads every page, and a read maps
         * the zero page, which mincore() counts as resident; the next
         * rounds may reuse this mapping. Run first, on an empty cache. */
        if (hakmem_loaded() && round == 0)
            CHECKF(in < span / 4096, "round %d: calloc(10 MiB) made all %zu pages resident", round,
                   in);
        printf("round %d: calloc(10 MiB) over a recycled block: %zu of %zu pages resident\n", round,
               in, span / 4096);
        free(c);
    }
}

static void test_zero_and_overflow(void) {
    void *a = p_calloc(0, 10), *b = p_calloc(10, 0), *c = p_calloc(0, 0);
    CHECK(a != NULL && b != NULL && c != NULL);
    CHECK(a != b && b != c && a != c);
    free(a);
    free(b);
    free(c);

    struct {
        size_t n, s;
    } ov[] = {
        {SIZE_MAX, 2},
        {2, SIZE_MAX},
        {SIZE_MAX / 2 + 1, 2},
        {(size_t)1 << 33, (size_t)1 << 31},
        {(size_t)1 << 32, (size_t)1 << 32},
        {65537, SIZE_MAX / 65536},
        {1, SIZE_MAX},
        {1, (size_t)PTRDIFF_MAX + 1},
        {(size_t)PTRDIFF_MAX / 2 + 1, 2},
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        volatile size_t n = ov[i].n, s = ov[i].s;
        void *p = p_calloc(n, s);
        int e = errno;
        CHECKF(p == NULL, "calloc(%zu, %zu) = %p, want NULL", ov[i].n, ov[i].s, p);
        CHECKF(e == ENOMEM, "calloc(%zu, %zu): errno %d, want ENOMEM", ov[i].n, ov[i].s, e);
        free(p);
    }
}

int main(void) {
    tu_init("t_api_calloc");
    test_partly_resident(); /* first: it wants the large cache empty */
    test_zeroing();
    test_zero_and_overflow();
    return tu_done();
}
