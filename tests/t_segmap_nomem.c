/* t_segmap_nomem — the segment map cannot grow: a leaf of the authoritative
 * map (16 KiB, mapped when a chunk of a new 64 GiB region is first recorded,
 * lib/hak_segmap.c) fails to map. The segment or large mapping it was for
 * must be given back and the allocation fail with NULL + ENOMEM; memory the
 * map could not record must never be handed out (free() could not find it).
 *
 * This program defines mmap() itself (exported: -rdynamic, tests.mk), so
 * the preloaded allocator's mmap calls come here: while fail_leaves is set,
 * anonymous 16 KiB mappings fail with ENOMEM (nothing else hakmem maps has
 * that size). A PROT_NONE reservation of 80 GiB first pushes the next
 * mappings into a 64 GiB region no leaf covers yet. Then, with leaves
 * failing:
 *   - small blocks: malloc(1000) until NULL (the heap's segments fill, the
 *     next one cannot be recorded): NULL with errno ENOMEM, and 20 more
 *     failing calls leave the address space (VmSize) as it was;
 *   - large blocks (2 MiB) and 8 MiB-aligned ones: the same (those that
 *     still find room in a region the map covers succeed, and are kept);
 * and once leaves map again, all of them succeed, and every block (those
 * from before the failures too) keeps its contents and frees cleanly.
 * hakmem only (skips without it). */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEAF_BYTES 16384
#define MAXBLK 200000

static volatile int fail_leaves;
static volatile long failed_leaves;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (fail_leaves && len == LEAF_BYTES && (flags & MAP_ANONYMOUS)) {
        failed_leaves++;
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static char *blk[MAXBLK];
static size_t nblk;

static void check_all(void) {
    for (size_t i = 0; i < nblk; i++) {
        size_t bad = pat_check_sparse(blk[i], 1000, 7);
        CHECKF(bad == (size_t)-1, "block %p corrupted at %zu", (void *)blk[i], bad);
    }
}

/* Large blocks (aligned if align) until NULL, kept (freed, they would be
 * cached and handed out again); returns how many. */
#define MAXLARGE 2000
static char *large[MAXLARGE];
static size_t nlarge_all;
static size_t fill_large(size_t n, size_t align) {
    size_t got = 0;
    while (nlarge_all < MAXLARGE) {
        char *p = align ? aligned_alloc(align, n) : malloc(n);
        if (!p) break;
        p[0] = p[(1u << 20) - 1] = 3;
        large[nlarge_all++] = p;
        got++;
    }
    REQUIRE(nlarge_all < MAXLARGE); /* the address space around is not endless */
    return got;
}

/* count calls of f that must fail with ENOMEM; the address space must not grow */
#define EXPECT_NOMEM(what, expr)                                                                   \
    do {                                                                                           \
        long vm0 = tu_vm_kib();                                                                    \
        for (int k = 0; k < 20; k++) {                                                             \
            errno = 0;                                                                             \
            void *q_ = (expr);                                                                     \
            CHECKF(q_ == NULL && errno == ENOMEM, "%s: %p errno %d, want NULL ENOMEM", what, q_,   \
                   errno);                                                                         \
            free(q_);                                                                              \
        }                                                                                          \
        long vm1 = tu_vm_kib();                                                                    \
        CHECKF(vm1 <= vm0, "%s: address space grew %ld -> %ld KiB over 20 failures", what, vm0,    \
               vm1);                                                                               \
        printf("ok: %s fails with ENOMEM, VmSize %ld -> %ld KiB\n", what, vm0, vm1);               \
    } while (0)

int main(void) {
    tu_init("t_segmap_nomem");
    if (!hakmem_loaded()) {
        printf("SKIP: hakmem not loaded\n");
        return TU_SKIP;
    }
    /* what the heap holds from before: must survive everything below */
    for (nblk = 0; nblk < 1000; nblk++) {
        blk[nblk] = malloc(1000);
        REQUIRE(blk[nblk]);
        pat_fill_sparse(blk[nblk], 1000, 7);
    }
    /* the live segment (a 2 MiB memfd mapping) is made at the first slow
     * path after 50 ms: let that happen now, not inside a VmSize check below
     * (a loaded machine reached them after 50 ms: "address space grew") */
    usleep(60 * 1000);
    char *volatile first = malloc(3000); /* a class not used yet: a slow path */
    REQUIRE(first);
    first[0] = 1;
    free(first);
    void *hole =
        mmap(NULL, 80ul << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(hole != MAP_FAILED);

    fail_leaves = 1;
    size_t before = nblk;
    for (; nblk < MAXBLK; nblk++) {
        errno = 0;
        blk[nblk] = malloc(1000);
        if (!blk[nblk]) break;
        pat_fill_sparse(blk[nblk], 1000, 7);
    }
    REQUIRE(nblk < MAXBLK); /* else no segment was ever needed: nothing tested */
    CHECKF(errno == ENOMEM, "malloc(1000) = NULL with errno %d", errno);
    printf("ok: %zu more small blocks, then NULL (%ld leaf mappings refused)\n", nblk - before,
           (long)failed_leaves);
    CHECK(failed_leaves > 0);
    EXPECT_NOMEM("malloc(1000)", malloc(1000));
    size_t nlarge = fill_large(2u << 20, 0);
    EXPECT_NOMEM("malloc(2 MiB)", malloc(2u << 20));
    nlarge += fill_large(1u << 20, 8u << 20);
    EXPECT_NOMEM("aligned_alloc(8 MiB, 1 MiB)", aligned_alloc(8u << 20, 1u << 20));
    printf("ok: %zu large blocks found room in covered regions first\n", nlarge);
    fail_leaves = 0;

    /* the map grows again: everything works, nothing was lost */
    void *big = malloc(2u << 20), *al = aligned_alloc(8u << 20, 1u << 20);
    CHECK(big != NULL && al != NULL && ((uintptr_t)al & ((8u << 20) - 1)) == 0);
    if (big) memset(big, 1, 2u << 20);
    if (al) memset(al, 2, 1u << 20);
    for (int k = 0; k < 20000 && nblk < MAXBLK; k++, nblk++) {
        blk[nblk] = malloc(1000);
        REQUIRE(blk[nblk]);
        pat_fill_sparse(blk[nblk], 1000, 7);
    }
    check_all();
    for (size_t i = 0; i < nlarge; i++) {
        CHECKF(large[i][0] == 3 && large[i][(1u << 20) - 1] == 3, "large block %p lost its bytes",
               (void *)large[i]);
        free(large[i]);
    }
    free(big);
    free(al);
    for (size_t i = 0; i < nblk; i++) free(blk[i]);
    munmap(hole, 80ul << 30);
    return tu_done();
}
