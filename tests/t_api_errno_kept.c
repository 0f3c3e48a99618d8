/* t_api_errno_kept — a call that succeeds leaves errno as it found it.
 *
 * Checks (any allocator; passes on glibc 2.36):
 *  - realloc growing a large block whose next pages are taken (a page is
 *    mapped right after the block first, so the mapping cannot grow where it
 *    lies and must move): success, contents kept, errno unchanged; the same
 *    over a buffer grown 100 B -> 256 MiB by a third each step (where the
 *    kernel's top-down placement leaves the next range taken by itself);
 *  - malloc, calloc, memalign and posix_memalign of sizes 1 B .. 64 MiB,
 *    free, a first malloc in a new thread, malloc_trim, mallopt, mallinfo2
 *    and malloc_info: errno unchanged.
 * Why: hakmem's realloc of a large block tried mremap in place first and
 * let its ENOMEM through when it then moved the mapping successfully: a
 * program that sets errno = 0 and checks it after a run of calls (or
 * reports strerror(errno) on an unrelated failure later) saw "Cannot
 * allocate memory" from a realloc that had worked.
 */
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define MARK 1789

/* errno read through a call the compiler cannot see into, so it cannot
 * assume an allocation function left errno alone */
__attribute__((noinline, weak)) int get_errno(void) {
    return errno;
}

static void *thread_first(void *arg) {
    (void)arg;
    errno = MARK;
    char *p = malloc(100);
    CHECKF(get_errno() == MARK, "a thread's first malloc: errno %d", errno);
    if (p) p[99] = 1;
    free(p);
    return NULL;
}

static void fill(unsigned char *p, size_t n, size_t seed) {
    for (size_t i = 0; i < n; i += 4093) p[i] = (unsigned char)(i / 4093 + seed);
    p[n - 1] = (unsigned char)seed;
}

static bool same(const unsigned char *p, size_t n, size_t seed) {
    for (size_t i = 0; i < n; i += 4093)
        if (p[i] != (unsigned char)(i / 4093 + seed)) return false;
    return p[n - 1] == (unsigned char)seed;
}

int main(void) {
    tu_init("t_api_errno_kept");
    long pg = sysconf(_SC_PAGESIZE);

    /* 1. the next pages taken: the in-place growth must fail, the move not */
    for (size_t n = (size_t)1 << 20; n <= ((size_t)64 << 20); n *= 2) {
        unsigned char *p = malloc(n);
        REQUIRE(p != NULL);
        fill(p, n, n >> 20);
        uintptr_t end =
            ((uintptr_t)p + malloc_usable_size(p) + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
        void *blocker = mmap((void *)end, (size_t)pg, PROT_READ,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (blocker != MAP_FAILED && blocker != (void *)end) {
            munmap(blocker, (size_t)pg); /* an old kernel took the address as a hint */
            blocker = MAP_FAILED;
        }
        errno = MARK;
        unsigned char *q = realloc(p, 3 * n);
        int e = get_errno();
        REQUIRE(q != NULL);
        CHECKF(e == MARK, "realloc(%zu MiB -> %zu MiB) next to a mapping: errno %d (%s)", n >> 20,
               3 * n >> 20, e, strerror(e));
        CHECKF(same(q, n, n >> 20), "realloc(%zu MiB) lost the contents", n >> 20);
        free(q);
        if (blocker != MAP_FAILED) munmap(blocker, (size_t)pg);
    }

    /* 2. a buffer grown by a third each step, then shrunk */
    for (int round = 0; round < 2; round++) {
        unsigned char *b = malloc(100);
        REQUIRE(b != NULL);
        for (size_t n = 100; n < ((size_t)256 << 20); n += n / 3 + 4096) {
            errno = MARK;
            unsigned char *nb = realloc(b, n);
            int e = get_errno();
            REQUIRE(nb != NULL);
            b = nb;
            b[n - 1] = 1;
            CHECKF(e == MARK, "realloc growing to %zu: errno %d (%s)", n, e, strerror(e));
        }
        for (size_t n = (size_t)256 << 20; n > 100; n /= 3) {
            errno = MARK;
            unsigned char *nb = realloc(b, n);
            int e = get_errno();
            REQUIRE(nb != NULL);
            b = nb;
            CHECKF(e == MARK, "realloc shrinking to %zu: errno %d", n, e);
        }
        errno = MARK;
        free(b);
        CHECKF(get_errno() == MARK, "free after realloc: errno %d", errno);
    }

    /* 3. the rest of the API, sizes 1 B .. 64 MiB */
    for (size_t n = 1; n <= ((size_t)64 << 20); n = n * 3 / 2 + 1) {
        void *p;
        errno = MARK;
        p = malloc(n);
        CHECKF(p && get_errno() == MARK, "malloc(%zu): errno %d", n, errno);
        errno = MARK;
        free(p);
        CHECKF(get_errno() == MARK, "free(%zu): errno %d", n, errno);
        errno = MARK;
        p = calloc(1, n);
        CHECKF(p && get_errno() == MARK, "calloc(%zu): errno %d", n, errno);
        free(p);
        errno = MARK;
        p = memalign(4096, n);
        CHECKF(p && get_errno() == MARK, "memalign(4096, %zu): errno %d", n, errno);
        free(p);
        errno = MARK;
        CHECK(posix_memalign(&p, 64, n) == 0);
        CHECKF(get_errno() == MARK, "posix_memalign(64, %zu): errno %d", n, errno);
        free(p);
    }
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_first, NULL) == 0);
    pthread_join(t, NULL);
    errno = MARK;
    malloc_trim(0);
    CHECKF(get_errno() == MARK, "malloc_trim: errno %d", errno);
    errno = MARK;
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    CHECKF(get_errno() == MARK, "mallopt: errno %d", errno);
    errno = MARK;
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    CHECKF(get_errno() == MARK, "mallinfo2: errno %d", errno);
    FILE *f = fopen("/dev/null", "w");
    REQUIRE(f != NULL);
    errno = MARK;
    CHECK(malloc_info(0, f) == 0);
    CHECKF(get_errno() == MARK, "malloc_info: errno %d", errno);
    fclose(f);
    return tu_done();
}
