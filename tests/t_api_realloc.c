/* t_api_realloc — realloc and reallocarray.
 *
 * Checks:
 *  - contents survive every move across the size ranges: a block walks
 *    tiny -> small -> mid -> slab-max -> large (> 1 MiB, up to 32 MiB) and
 *    back down, in several step patterns (doubling, +1 byte, odd sizes,
 *    growing by a few bytes many times = in-place growth path), verifying
 *    min(old, new) bytes at each step and that new usable bytes are writable;
 *  - realloc(NULL, n) behaves as malloc(n), reallocarray(NULL, 0, n) too;
 *  - a new thread's first call is a realloc of another thread's block (in
 *    place or moving, every size range), then its first malloc_usable_size,
 *    free and memalign;
 *  - realloc(p, 0) frees p and returns NULL or a unique freeable pointer
 *    (glibc returns NULL; both are accepted);
 *  - realloc(p, impossible) -> NULL + ENOMEM and p still valid and intact;
 *  - reallocarray(p, a, b) with a*b overflowing -> NULL + ENOMEM, p intact;
 *    reallocarray without overflow works like realloc.
 * Why: realloc is where allocators move blocks between size classes and
 * between slab and mmap backends; losing a byte here corrupts programs
 * silently (every string builder / vector growth goes through it).
 */
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>

static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void *(*volatile p_reallocarray)(void *, size_t, size_t) = reallocarray;

/* Content of a realloc chain: byte i = f(seed, i), independent of address. */
static inline uint8_t cb(uint64_t seed, size_t i) {
    return (uint8_t)(tu_mix(seed + (i >> 3)) >> ((i & 7) * 8));
}

static void fill_range(uint8_t *p, size_t from, size_t to, uint64_t seed) {
    for (size_t i = from; i < to; i++) p[i] = cb(seed, i);
}

static int check_range(const uint8_t *p, size_t n, uint64_t seed, size_t *bad) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != cb(seed, i)) {
            *bad = i;
            return 0;
        }
    return 1;
}

/* Walks one block through sizes[], checking contents at every step. */
static void walk(const size_t *sizes, size_t n, uint64_t seed, const char *what) {
    uint8_t *p = p_realloc(NULL, sizes[0]);
    CHECKF(p != NULL || sizes[0] == 0, "%s: realloc(NULL, %zu) = NULL", what, sizes[0]);
    if (!p) return;
    size_t cur = sizes[0];
    fill_range(p, 0, cur, seed);
    for (size_t k = 1; k < n; k++) {
        size_t nsz = sizes[k];
        uint8_t *q = p_realloc(p, nsz);
        if (nsz == 0) {
            /* frees, or returns a unique pointer; start again */
            if (q) free(q);
            p = p_malloc(0);
            cur = 0;
            CHECK(p != NULL);
            if (!p) return;
            continue;
        }
        CHECKF(q != NULL, "%s: realloc(%p, %zu -> %zu) = NULL", what, (void *)p, cur, nsz);
        if (!q) {
            free(p);
            return;
        }
        if (nsz >= 16)
            CHECKF(((uintptr_t)q & 15) == 0, "%s: realloc to %zu gave misaligned %p", what, nsz,
                   (void *)q);
        size_t keep = cur < nsz ? cur : nsz;
        size_t bad;
        CHECKF(check_range(q, keep, seed, &bad),
               "%s: realloc %zu -> %zu lost contents at byte %zu (of %zu kept)", what, cur, nsz,
               bad, keep);
        size_t us = malloc_usable_size(q);
        CHECKF(us >= nsz, "%s: usable %zu after realloc to %zu", what, us, nsz);
        /* write the new bytes; scribble all the slack past nsz too */
        fill_range(q, keep, nsz, seed);
        if (us > nsz) memset(q + nsz, 0xEE, us - nsz);
        p = q;
        cur = nsz;
    }
    size_t bad;
    CHECKF(check_range(p, cur, seed, &bad), "%s: final block corrupted at %zu", what, bad);
    free(p);
}

static void test_walks(void) {
    /* tiny -> small -> mid -> large -> back down */
    const size_t updown[] = {1,         3,        8,       16,       17,
                             33,        100,      500,     1024,     1025,
                             4000,      4097,     16000,   65536,    131072,
                             131073,    300000,   1048577, 3u << 20, (8u << 20) + 7,
                             32u << 20, 5u << 20, 1048577, 131073,   131072,
                             70000,     4097,     4096,    1000,     129,
                             16,        15,       1,       0,        40,
                             2u << 20,  24,       0,       1};
    walk(updown, sizeof updown / sizeof updown[0], 11, "up-down");

    /* doubling to 64 MiB and halving back */
    size_t dbl[64];
    size_t n = 0;
    for (size_t s = 1; s <= (64u << 20); s <<= 1) dbl[n++] = s;
    for (size_t s = 32u << 20; s >= 1; s >>= 1) dbl[n++] = s;
    walk(dbl, n, 12, "doubling");

    /* +1 around each boundary of interest */
    size_t edges[] = {15,
                      16,
                      17,
                      1023,
                      1024,
                      1025,
                      4095,
                      4096,
                      4097,
                      131071,
                      131072,
                      131073,
                      (1u << 20) - 1,
                      1u << 20,
                      (1u << 20) + 1,
                      (4u << 20) - 1,
                      4u << 20,
                      (4u << 20) + 1};
    walk(edges, sizeof edges / sizeof edges[0], 13, "edges");

    /* grow by small steps many times (string-builder pattern), to 6 MiB */
    enum { STEPS = 4000 };
    static size_t steps[STEPS];
    size_t s = 1, ns = 0;
    for (int i = 0; ns < STEPS && s <= (6u << 20); i++) {
        steps[ns++] = s;
        s += 1 + s / 128 + (size_t)(i % 7);
    }
    walk(steps, ns, 14, "small-steps");
    for (size_t i = 0; i < ns / 2; i++) {
        size_t t = steps[i];
        steps[i] = steps[ns - 1 - i];
        steps[ns - 1 - i] = t;
    }
    walk(steps, ns, 15, "shrinking-steps");

    /* random odd sizes */
    uint64_t rs = 77;
    size_t rnd[400];
    for (int i = 0; i < 400; i++) {
        uint64_t r = tu_rand(&rs);
        switch (r % 4) {
        case 0:
            rnd[i] = 1 + (r >> 8) % 256;
            break;
        case 1:
            rnd[i] = 1 + (r >> 8) % 8192;
            break;
        case 2:
            rnd[i] = 1 + (r >> 8) % 262144;
            break;
        default:
            rnd[i] = 1 + (r >> 8) % (3u << 20);
            break;
        }
    }
    walk(rnd, 400, 16, "random");
}

static void test_null_zero(void) {
    /* realloc(NULL, n) == malloc(n) */
    for (size_t n = 0; n < 300; n += 7) {
        void *p = p_realloc(NULL, n);
        CHECKF(p != NULL, "realloc(NULL, %zu) = NULL", n);
        if (p) {
            CHECK(malloc_usable_size(p) >= n);
            memset(p, 0x33, n);
            free(p);
        }
    }
    /* reallocarray(NULL, 0, n) too (mimalloc issue 574), errno untouched */
    errno = 1234;
    void *z = p_reallocarray(NULL, 0, 16);
    CHECKF(z != NULL && errno == 1234, "reallocarray(NULL, 0, 16) = %p errno %d", z, errno);
    free(z);
    void *big = p_realloc(NULL, 5u << 20);
    CHECK(big != NULL);
    free(big);

    /* realloc(p, 0): frees; NULL or a unique pointer */
    size_t sizes[] = {1, 64, 3000, 100000, 2u << 20};
    void *keep[5][2];
    for (int i = 0; i < 5; i++) {
        void *p = p_malloc(sizes[i]);
        REQUIRE(p);
        void *q = p_realloc(p, 0);
        void *other = p_malloc(sizes[i]); /* must not be q if q is live */
        keep[i][0] = q;
        keep[i][1] = other;
        CHECKF(q == NULL || q != other, "realloc(p,0) returned %p which malloc then handed out", q);
        if (other) memset(other, 0x44, sizes[i]);
    }
    for (int i = 0; i < 5; i++) {
        free(keep[i][0]);
        free(keep[i][1]);
    }
}

static void test_enomem(void) {
    const size_t sizes[] = {10, 2000, 100000, 3u << 20};
    volatile size_t huge[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = p_malloc(sizes[i]);
        REQUIRE(p);
        fill_range(p, 0, sizes[i], 100 + i);
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            errno = 0;
            void *q = p_realloc(p, huge[h]);
            int e = errno;
            CHECKF(q == NULL, "realloc(%zu-byte block, %zu) = %p", sizes[i], huge[h], q);
            CHECKF(e == ENOMEM, "realloc(.., %zu): errno %d", huge[h], e);
            if (q) {
                p = q;
                continue;
            }
        }
        /* reallocarray overflow */
        struct {
            size_t a, b;
        } ov[] = {{SIZE_MAX, 2},
                  {SIZE_MAX / 2 + 1, 2},
                  {(size_t)1 << 33, (size_t)1 << 31},
                  {3, SIZE_MAX / 3 + 1}};
        for (size_t k = 0; k < sizeof ov / sizeof ov[0]; k++) {
            errno = 0;
            void *q = p_reallocarray(p, ov[k].a, ov[k].b);
            int e = errno;
            CHECKF(q == NULL, "reallocarray(p, %zu, %zu) = %p", ov[k].a, ov[k].b, q);
            CHECKF(e == ENOMEM, "reallocarray(p, %zu, %zu): errno %d", ov[k].a, ov[k].b, e);
            if (q) p = q;
        }
        size_t bad;
        CHECKF(check_range(p, sizes[i], 100 + i, &bad),
               "block of %zu corrupted at %zu after failed realloc/reallocarray", sizes[i], bad);
        CHECK(malloc_usable_size(p) >= sizes[i]);
        /* a working reallocarray */
        uint8_t *q = p_reallocarray(p, 2, sizes[i]);
        CHECK(q != NULL);
        if (q) {
            CHECKF(check_range(q, sizes[i], 100 + i, &bad), "reallocarray lost byte %zu", bad);
            p = q;
        }
        free(p);
    }
    /* reallocarray(NULL, ...) */
    errno = 0;
    void *q = p_reallocarray(NULL, SIZE_MAX / 4, 8);
    CHECK(q == NULL && errno == ENOMEM);
    q = p_reallocarray(NULL, 10, 10);
    CHECK(q != NULL);
    free(q);
}

/* A new thread whose first allocator call is a realloc of a block another
 * thread allocated (mimalloc's test-realloc-thread: its in-place path read
 * the thread's heap before it existed), in place and moving, for every
 * size range; then its first free, malloc_usable_size and memalign. */
static void *first_block;
static size_t first_n, first_to;
static void *first_realloc(void *arg) {
    (void)arg;
    return p_realloc(first_block, first_to);
}
static void *first_other(void *arg) {
    (void)arg;
    if (malloc_usable_size(first_block) < first_n) return NULL;
    free(first_block);
    return memalign(256, first_n);
}
static void *on_new_thread(void *(*fn)(void *)) {
    pthread_t t;
    void *r = NULL;
    REQUIRE(pthread_create(&t, NULL, fn, NULL) == 0);
    pthread_join(t, &r);
    return r;
}
static void test_first_call_in_thread(void) {
    const size_t sizes[] = {24, 48, 4000, 40000, 300000, 3u << 20};
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 6; j++) {
            first_n = sizes[i];
            first_to = sizes[j];
            first_block = p_malloc(first_n);
            REQUIRE(first_block);
            memcpy(first_block, "1304", 4);
            char *q = on_new_thread(first_realloc);
            CHECKF(q && memcmp(q, "1304", 4) == 0, "first call of a thread: realloc(%zu -> %zu)",
                   first_n, first_to);
            first_block = q;
            first_n = first_to;
            void *a = on_new_thread(first_other);
            CHECKF(a && ((uintptr_t)a & 255) == 0,
                   "first calls of a thread: usable, free, memalign");
            free(a);
        }
    }
}

int main(void) {
    tu_init("t_api_realloc");
    test_walks();
    test_null_zero();
    test_first_call_in_thread();
    test_enomem();
    return tu_done();
}
