/* t_api_errno — the error answers of the aligned allocators, as glibc 2.36
 * gives them (issue 8 items 4 and 5; passes on plain glibc too).
 *  - posix_memalign: EINVAL (errno untouched) for 0, non-powers of two and
 *    powers below sizeof(void *), *out untouched; a failure to allocate
 *    returns ENOMEM AND leaves errno ENOMEM (glibc's tst-malloc-thread-fail
 *    aborts otherwise); impossible alignments (2^47, 2^62, 2^63) are ENOMEM;
 *  - memalign: an alignment above 2^63 is EINVAL; 2^63, 2^62 and any other
 *    power of two that cannot be had is ENOMEM; a non-power of two is rounded
 *    up (3 << 61 becomes 2^63: ENOMEM); one of 16 or less is plain malloc;
 *  - aligned_alloc: impossible powers of two are ENOMEM (on every glibc);
 *  - valloc / pvalloc / memalign of impossible sizes: ENOMEM;
 *  - glibc's tst-malloc-too-large, thinned: every API (malloc, realloc,
 *    calloc, reallocarray, memalign, posix_memalign and aligned_alloc at
 *    every alignment, valloc, pvalloc) with sizes near SIZE_MAX, above
 *    PTRDIFF_MAX and multiples of 2^50, each after a small block was
 *    freed, fails with ENOMEM, a failed realloc keeping its block; then
 *    again under RLIMIT_AS = 2^50 (hakmem's mapped-alone path).
 * Why: programs and test suites check errno after a failed allocation and
 * tell "you asked for nonsense" (EINVAL) from "no memory" (ENOMEM).
 */
#include "testutil.h"

#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>

static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_valloc)(size_t) = valloc;
static void *(*volatile p_pvalloc)(size_t) = pvalloc;
static void (*volatile p_free_)(void *) = free;

static void posix_case(size_t al, size_t n, int want_ret, int want_errno) {
    void *out = (void *)&out;
    errno = 1234;
    int r = p_posix_memalign(&out, al, n);
    int e = errno;
    CHECKF(r == want_ret, "posix_memalign(%#zx, %#zx) = %d, want %d", al, n, r, want_ret);
    CHECKF(e == want_errno, "posix_memalign(%#zx, %#zx): errno %d, want %d", al, n, e, want_errno);
    if (r == 0) {
        CHECKF(((uintptr_t)out & (al - 1)) == 0, "posix_memalign(%#zx) misaligned %p", al, out);
        free(out);
    } else {
        CHECKF(out == (void *)&out, "posix_memalign(%#zx, %#zx) wrote *out on failure", al, n);
    }
}

/* fn(al, n) must fail with want_errno, or (want_errno 0) succeed aligned
 * to `aligned` */
static void memalign_case(const char *name, void *(*fn)(size_t, size_t), size_t al, size_t n,
                          int want_errno, size_t aligned) {
    errno = 1234;
    void *p = fn(al, n);
    int e = errno;
    if (want_errno) {
        CHECKF(p == NULL && e == want_errno, "%s(%#zx, %#zx) = %p errno %d, want NULL errno %d",
               name, al, n, p, e, want_errno);
    } else {
        CHECKF(p != NULL, "%s(%#zx, %#zx) = NULL errno %d", name, al, n, e);
        CHECKF(((uintptr_t)p & (aligned - 1)) == 0, "%s(%#zx) = %p not %#zx-aligned", name, al, p,
               aligned);
    }
    free(p);
}

static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void *(*volatile p_reallocarray)(void *, size_t, size_t) = reallocarray;

/* errno cleared after a small malloc and free, so that a failing call that
 * hands back a block the free cached, or sets no errno, shows */
static void fresh(void) {
    p_free_(p_malloc(16));
    errno = 0;
}

/* Every allocation API with an impossible size n fails with ENOMEM, after a
 * small block was freed (glibc bugs 22375 and 22343: a size rounded up past
 * SIZE_MAX returned the freed block), and a failed realloc keeps its block:
 * malloc, realloc, calloc and reallocarray with n split into 1-8 members,
 * and memalign, posix_memalign and aligned_alloc (n a multiple of the
 * alignment) at every power-of-two alignment, valloc and pvalloc. */
static void too_large(size_t n) {
    fresh();
    CHECKF(p_malloc(n) == NULL && errno == ENOMEM, "malloc(%#zx) errno %d", n, errno);
    char *keep = p_malloc(16);
    memcpy(keep, "kept", 5);
    fresh();
    CHECKF(p_realloc(keep, n) == NULL && errno == ENOMEM, "realloc(p, %#zx) errno %d", n, errno);
    for (size_t m = 1; m <= 8 && n % m == 0; m *= 2) {
        fresh();
        CHECKF(p_calloc(m, n / m) == NULL && errno == ENOMEM, "calloc(%zu, %#zx)", m, n / m);
        fresh();
        CHECKF(p_calloc(n / m, m) == NULL && errno == ENOMEM, "calloc(%#zx, %zu)", n / m, m);
        fresh();
        CHECKF(p_reallocarray(keep, m, n / m) == NULL && errno == ENOMEM,
               "reallocarray(p, %zu, %#zx)", m, n / m);
    }
    CHECKF(strcmp(keep, "kept") == 0, "a failed realloc of %#zx changed its block", n);
    free(keep);
    for (size_t al = 1; al; al <<= 1) {
        fresh();
        CHECKF(p_memalign(al, n) == NULL && errno == ENOMEM, "memalign(%#zx, %#zx) errno %d", al, n,
               errno);
        if (al % sizeof(void *) == 0) {
            void *out = NULL;
            fresh();
            int r = p_posix_memalign(&out, al, n);
            CHECKF(r == ENOMEM && out == NULL, "posix_memalign(%#zx, %#zx) = %d", al, n, r);
        }
        if (n % al == 0) {
            fresh();
            CHECKF(p_aligned_alloc(al, n) == NULL && errno == ENOMEM, "aligned_alloc(%#zx, %#zx)",
                   al, n);
        }
    }
    fresh();
    CHECKF(p_valloc(n) == NULL && errno == ENOMEM, "valloc(%#zx)", n);
    fresh();
    CHECKF(p_pvalloc(n) == NULL && errno == ENOMEM, "pvalloc(%#zx)", n);
}

/* glibc's tst-malloc-too-large, thinned: sizes near SIZE_MAX, above
 * PTRDIFF_MAX, and m << 50 (or with the low 50 bits set) */
static void too_large_sweep(void) {
    for (size_t i = 0; i < 64; i++) {
        too_large(SIZE_MAX - i);
        too_large((size_t)PTRDIFF_MAX + 1 + i);
    }
    for (long k = 16383; k >= 1; k -= k > 64 ? 97 : 1) {
        size_t m = (size_t)k;
        too_large((m << 50) | (((size_t)1 << 50) - 1));
        too_large(m << 50);
    }
}

int main(void) {
    tu_init("t_api_errno");
    const size_t huge = SIZE_MAX - 100;
    /* item 4: ENOMEM in the result and in errno */
    posix_case(64, huge, ENOMEM, ENOMEM);
    posix_case(8, huge, ENOMEM, ENOMEM);
    posix_case(4096, (size_t)1 << 62, ENOMEM, ENOMEM);
    posix_case((size_t)1 << 47, 1, ENOMEM, ENOMEM);
    posix_case((size_t)1 << 62, 1, ENOMEM, ENOMEM);
    posix_case((size_t)1 << 63, 1, ENOMEM, ENOMEM);
    /* EINVAL: errno untouched */
    posix_case(0, 1, EINVAL, 1234);
    posix_case(4, 1, EINVAL, 1234);
    posix_case(24, 1, EINVAL, 1234);
    posix_case(((size_t)1 << 63) + 8, 1, EINVAL, 1234);
    posix_case(SIZE_MAX, 1, EINVAL, 1234);
    posix_case(64, 100, 0, 1234); /* success leaves errno alone too */

    /* item 5: memalign */
    memalign_case("memalign", p_memalign, (size_t)1 << 63, 1, ENOMEM, 0);
    memalign_case("memalign", p_memalign, (size_t)1 << 62, 1, ENOMEM, 0);
    memalign_case("memalign", p_memalign, (size_t)1 << 47, 1, ENOMEM, 0);
    memalign_case("memalign", p_memalign, (size_t)3 << 61, 1, ENOMEM, 0); /* rounds to 2^63 */
    memalign_case("memalign", p_memalign, ((size_t)1 << 63) + 1, 1, EINVAL, 0);
    memalign_case("memalign", p_memalign, SIZE_MAX, 1, EINVAL, 0);
    memalign_case("memalign", p_memalign, 64, huge, ENOMEM, 0);
    memalign_case("memalign", p_memalign, 0, 10, 0, 16);
    memalign_case("memalign", p_memalign, 3, 10, 0, 16);
    memalign_case("memalign", p_memalign, 24, 10, 0, 32); /* rounded up to 32 */
    memalign_case("memalign", p_memalign, 100, 10, 0, 128);
    memalign_case("memalign", p_memalign, 5000, 10, 0, 8192);
    /* aligned_alloc: powers of two, every glibc agrees */
    memalign_case("aligned_alloc", p_aligned_alloc, (size_t)1 << 63, 1, ENOMEM, 0);
    memalign_case("aligned_alloc", p_aligned_alloc, (size_t)1 << 47, 1, ENOMEM, 0);
    memalign_case("aligned_alloc", p_aligned_alloc, 64, huge, ENOMEM, 0);
    memalign_case("aligned_alloc", p_aligned_alloc, 4096, 10, 0, 4096);

    errno = 0;
    CHECK(p_valloc(huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(p_pvalloc(huge) == NULL && errno == ENOMEM);

    too_large_sweep();
    /* again under an address-space limit (2^50, as glibc's test sets):
     * hakmem then maps blocks above 128 KiB alone (lib/hak_api.c) */
    struct rlimit rl = {((rlim_t)1 << 50) - 1, ((rlim_t)1 << 50) - 1};
    if (setrlimit(RLIMIT_AS, &rl) == 0) too_large_sweep();
    return tu_done();
}
