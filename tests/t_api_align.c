/* t_api_align — posix_memalign, aligned_alloc, memalign, valloc, pvalloc.
 *
 * For every power-of-two alignment from sizeof(void*) up to 4 MiB and sizes
 * small, odd and large, each API must return memory aligned as asked, with
 * malloc_usable_size >= requested and every usable byte writable (a pattern
 * over all usable bytes is verified with all blocks of one alignment live,
 * so overlapping blocks are caught). Error contract:
 *  - posix_memalign: EINVAL for 0, non-power-of-two, and powers of two below
 *    sizeof(void*) (not a multiple of it), returned WITHOUT touching *out;
 *    ENOMEM for impossible sizes, *out untouched too;
 *  - aligned_alloc with a non-power-of-two alignment: NULL + errno EINVAL
 *    (C17 DR 460; glibc < 2.38 rounds the alignment up instead, so under old
 *    glibc this one is only checked when hakmem is loaded);
 *  - memalign with a non-power-of-two alignment: NULL + EINVAL, or a block
 *    aligned to the next power of two (glibc's historical behaviour);
 *  - valloc/pvalloc: page aligned; pvalloc rounds the size up to whole pages
 *    (usable size >= rounded size).
 * Why: aligned allocation is a separate path in most allocators (over-
 * allocate and offset, or a dedicated large mapping), and free() /
 * malloc_usable_size() / realloc() of such blocks must find their owner.
 */
#include "testutil.h"

#include <gnu/libc-version.h>
#include <malloc.h>
#include <unistd.h>

static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static void *(*volatile p_valloc)(size_t) = valloc;
static void *(*volatile p_pvalloc)(size_t) = pvalloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;

enum api { API_POSIX, API_ALIGNED, API_MEMALIGN, API_N };
static const char *api_name[] = {"posix_memalign", "aligned_alloc", "memalign"};

static void *alloc_aligned(enum api a, size_t al, size_t sz) {
    void *p = NULL;
    switch (a) {
    case API_POSIX: {
        int r = p_posix_memalign(&p, al, sz);
        CHECKF(r == 0, "posix_memalign(al=%zu, sz=%zu) = %d", al, sz, r);
        if (r) p = NULL;
        break;
    }
    case API_ALIGNED:
        p = p_aligned_alloc(al, sz);
        break;
    case API_MEMALIGN:
        p = p_memalign(al, sz);
        break;
    default:
        break;
    }
    CHECKF(p != NULL, "%s(al=%zu, sz=%zu) returned NULL", api_name[a], al, sz);
    return p;
}

struct blk {
    void *p;
    size_t sz, us;
};

static void test_alignments(void) {
    const size_t sizes[] = {0,
                            1,
                            7,
                            8,
                            15,
                            16,
                            24,
                            100,
                            1000,
                            4095,
                            4097,
                            12345,
                            65537,
                            131073,
                            (1u << 20) + 3,
                            (5u << 20) + 1};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    for (int a = 0; a < API_N; a++) {
        for (size_t al = sizeof(void *); al <= (4u << 20); al <<= 1) {
            struct blk b[NS * 2];
            int nb = 0;
            /* two rounds so blocks of one alignment coexist */
            for (int round = 0; round < 2; round++)
                for (int i = 0; i < NS; i++) {
                    size_t sz = sizes[i];
                    void *p = alloc_aligned((enum api)a, al, sz);
                    if (!p) continue;
                    CHECKF(((uintptr_t)p & (al - 1)) == 0, "%s(al=%zu, sz=%zu) = %p misaligned",
                           api_name[a], al, sz, p);
                    size_t us = malloc_usable_size(p);
                    CHECKF(us >= sz, "%s(al=%zu, sz=%zu): usable %zu", api_name[a], al, sz, us);
                    if (us < sz) us = sz;
                    pat_fill(p, us, al ^ sz);
                    b[nb++] = (struct blk){p, sz, us};
                }
            for (int i = 0; i < nb; i++) {
                size_t bad = pat_check(b[i].p, b[i].us, al ^ b[i].sz);
                CHECKF(bad == (size_t)-1, "%s(al=%zu, sz=%zu) block %p corrupted at %zu",
                       api_name[a], al, b[i].sz, b[i].p, bad);
                for (int j = 0; j < nb; j++)
                    if (j != i)
                        CHECKF((uintptr_t)b[i].p + b[i].us <= (uintptr_t)b[j].p ||
                                   (uintptr_t)b[j].p + b[j].us <= (uintptr_t)b[i].p,
                               "%s(al=%zu) blocks overlap: %p+%zu, %p+%zu", api_name[a], al, b[i].p,
                               b[i].us, b[j].p, b[j].us);
            }
            /* realloc of an aligned block keeps the contents (first half of
             * the blocks), free directly the rest */
            for (int i = 0; i < nb; i++) {
                if (i % 2 == 0) {
                    size_t keep = b[i].sz;
                    size_t nsz = b[i].sz * 2 + 10;
                    void *q = p_realloc(b[i].p, nsz);
                    CHECKF(q != NULL, "realloc of %s block (%zu -> %zu) failed", api_name[a],
                           b[i].sz, nsz);
                    if (q) {
                        for (size_t k = 0; k < keep; k++)
                            if (((uint8_t *)q)[k] != pat_byte(b[i].p, b[i].us, al ^ b[i].sz, k)) {
                                CHECKF(0, "realloc of %s(al=%zu, sz=%zu) lost byte %zu",
                                       api_name[a], al, b[i].sz, k);
                                break;
                            }
                        free(q);
                    }
                } else {
                    free(b[i].p);
                }
            }
        }
    }
}

static void test_errors(void) {
    /* posix_memalign: bad alignments -> EINVAL, out pointer untouched */
    const size_t bad[] = {
        0,  1,   2,    4,    3,        12,       24,
        48, 100, 4095, 4097, 3u << 20, SIZE_MAX, (size_t)1 << (sizeof(size_t) * 8 - 1) | 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)(uintptr_t)0x5a5a5a5a;
        void *p = sentinel;
        errno = 0;
        int r = p_posix_memalign(&p, bad[i], 64);
        CHECKF(r == EINVAL, "posix_memalign(al=%zu) = %d, want EINVAL", bad[i], r);
        CHECKF(p == sentinel, "posix_memalign(al=%zu) wrote *out = %p on error", bad[i], p);
        if (r == 0 && p != sentinel) free(p);
    }
    /* posix_memalign: impossible size -> ENOMEM, out untouched */
    {
        void *sentinel = (void *)(uintptr_t)0x5a5a5a5a;
        void *p = sentinel;
        volatile size_t huge = SIZE_MAX - 100;
        int r = p_posix_memalign(&p, 64, huge);
        CHECKF(r == ENOMEM, "posix_memalign(64, SIZE_MAX-100) = %d, want ENOMEM", r);
        CHECK(p == sentinel);
        r = p_posix_memalign(&p, 4096, (size_t)PTRDIFF_MAX + 1);
        CHECKF(r == ENOMEM, "posix_memalign(4096, PTRDIFF_MAX+1) = %d, want ENOMEM", r);
        CHECK(p == sentinel);
    }

    /* aligned_alloc: non-power-of-two -> NULL, EINVAL */
    int strict = hakmem_loaded();
    {
        int maj = 0, min = 0;
        if (sscanf(gnu_get_libc_version(), "%d.%d", &maj, &min) == 2 &&
            (maj > 2 || (maj == 2 && min >= 38)))
            strict = 1;
    }
    const size_t npot[] = {0, 3, 12, 24, 48, 100, 4097, 3u << 20};
    for (size_t i = 0; i < sizeof npot / sizeof npot[0]; i++) {
        errno = 0;
        void *p = p_aligned_alloc(npot[i], 96);
        int e = errno;
        if (strict) {
            CHECKF(p == NULL, "aligned_alloc(%zu, 96) = %p, want NULL", npot[i], p);
            CHECKF(p != NULL || e == EINVAL, "aligned_alloc(%zu, 96): errno %d, want EINVAL",
                   npot[i], e);
        }
        if (p) free(p);
    }
    if (!strict)
        printf("aligned_alloc bad-alignment check skipped (glibc %s < 2.38 rounds up)\n",
               gnu_get_libc_version());
    {
        errno = 0;
        volatile size_t huge = SIZE_MAX - 100;
        void *p = p_aligned_alloc(64, huge);
        CHECKF(p == NULL && errno == ENOMEM, "aligned_alloc(64, SIZE_MAX-100) = %p errno %d", p,
               errno);
    }

    /* memalign with non-power-of-two: NULL+EINVAL, or rounded up */
    const size_t mnpot[] = {3, 12, 24, 48, 100, 4097};
    for (size_t i = 0; i < sizeof mnpot / sizeof mnpot[0]; i++) {
        errno = 0;
        void *p = p_memalign(mnpot[i], 200);
        if (p) {
            size_t pot = 1;
            while (pot < mnpot[i]) pot <<= 1;
            CHECKF(((uintptr_t)p & (pot - 1)) == 0, "memalign(%zu) = %p not aligned to %zu",
                   mnpot[i], p, pot);
            CHECK(malloc_usable_size(p) >= 200);
            memset(p, 1, 200);
            free(p);
        } else {
            CHECKF(errno == EINVAL, "memalign(%zu) NULL with errno %d, want EINVAL", mnpot[i],
                   errno);
        }
    }
    {
        errno = 0;
        volatile size_t huge = SIZE_MAX - 100;
        void *p = p_memalign(64, huge);
        CHECKF(p == NULL && errno == ENOMEM, "memalign(64, SIZE_MAX-100) = %p errno %d", p, errno);
    }
}

static void test_valloc(void) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 65536, 100000, (3u << 20) + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t sz = sizes[i];
        void *p = p_valloc(sz);
        CHECKF(p != NULL, "valloc(%zu) = NULL", sz);
        if (p) {
            CHECKF(((uintptr_t)p & (pg - 1)) == 0, "valloc(%zu) = %p not page aligned", sz, p);
            size_t us = malloc_usable_size(p);
            CHECKF(us >= sz, "valloc(%zu): usable %zu", sz, us);
            pat_fill(p, us, 7);
            CHECK(pat_check(p, us, 7) == (size_t)-1);
            free(p);
        }
        void *q = p_pvalloc(sz);
        CHECKF(q != NULL, "pvalloc(%zu) = NULL", sz);
        if (q) {
            size_t want = (sz + pg - 1) / pg * pg;
            CHECKF(((uintptr_t)q & (pg - 1)) == 0, "pvalloc(%zu) = %p not page aligned", sz, q);
            size_t us = malloc_usable_size(q);
            CHECKF(us >= want, "pvalloc(%zu): usable %zu < rounded size %zu", sz, us, want);
            if (us < sz) us = sz;
            pat_fill(q, us, 8);
            CHECK(pat_check(q, us, 8) == (size_t)-1);
            free(q);
        }
    }
    errno = 0;
    volatile size_t huge = SIZE_MAX - 100;
    void *p = p_pvalloc(huge);
    CHECKF(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX-100) = %p errno %d", p, errno);
    errno = 0;
    p = p_valloc(huge);
    CHECKF(p == NULL && errno == ENOMEM, "valloc(SIZE_MAX-100) = %p errno %d", p, errno);
}

int main(void) {
    tu_init("t_api_align");
    test_alignments();
    test_errors();
    test_valloc();
    return tu_done();
}
