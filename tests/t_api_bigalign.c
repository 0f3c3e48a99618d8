/* t_api_bigalign — alignments of 4 MiB up to 4 GiB (issue 8 item 6).
 *
 * aligned_alloc, posix_memalign and memalign with alignments from 4 MiB to
 * 4 GiB and sizes 1 B to 9 MiB must succeed (the address space allows it: no
 * limit is set here), return memory aligned as asked, with usable size >=
 * requested, every page writable, malloc_usable_size and realloc working,
 * and free giving the mapping back (the same request repeated 200 times
 * must not grow the address space). Passes on glibc too.
 * Why: hakmem once refused alignments above 512 MiB (its segment map could
 * only point 253 chunks back), where glibc succeeds.
 */
#include "testutil.h"

#include <malloc.h>
#include <stdint.h>

static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_realloc)(void *, size_t) = realloc;

static void check_block(const char *api, char *p, size_t al, size_t n) {
    CHECKF(p != NULL, "%s(%#zx, %zu) = NULL, errno %d", api, al, n, errno);
    if (!p) return;
    CHECKF(((uintptr_t)p & (al - 1)) == 0, "%s(%#zx) = %p misaligned", api, al, (void *)p);
    size_t us = malloc_usable_size(p);
    CHECKF(us >= n, "%s(%#zx, %zu): usable %zu", api, al, n, us);
    for (size_t i = 0; i < n; i += 4096) p[i] = (char)i;
    p[n - 1] = 7;
    CHECK(p[n - 1] == 7);
}

int main(void) {
    tu_init("t_api_bigalign");
    const size_t sizes[] = {1, 4096, (9u << 20) + 5};
    for (size_t al = (size_t)4 << 20; al <= ((size_t)4 << 30); al <<= 1) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            char *a = p_aligned_alloc(al, n);
            check_block("aligned_alloc", a, al, n);
            char *m = p_memalign(al, n);
            check_block("memalign", m, al, n);
            void *q = NULL;
            int r = p_posix_memalign(&q, al, n);
            CHECKF(r == 0, "posix_memalign(%#zx, %zu) = %d", al, n, r);
            check_block("posix_memalign", q, al, n);
            if (a) { /* realloc keeps the contents (not necessarily the alignment) */
                char *b = p_realloc(a, n + (1u << 20));
                CHECKF(b != NULL && b[n - 1] == 7, "realloc of an %#zx-aligned block", al);
                a = b ? b : a;
            }
            free(a);
            free(m);
            free(q);
        }
    }
    /* free gives big-aligned mappings back */
    for (int i = 0; i < 3; i++) free(p_aligned_alloc((size_t)1 << 30, 1));
    long before = tu_vm_kib();
    for (int i = 0; i < 200; i++) {
        char *p = p_aligned_alloc((size_t)1 << 30, 1);
        check_block("aligned_alloc", p, (size_t)1 << 30, 1);
        free(p);
    }
    long after = tu_vm_kib();
    CHECKF(after - before < 64 * 1024,
           "200 x aligned_alloc(1 GiB) + free grew VmSize %ld -> %ld KiB", before, after);
    return tu_done();
}
