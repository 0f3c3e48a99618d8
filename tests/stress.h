/* stress.h — verified blocks shared by the t_stress_* tests.
 *
 * A struct blk describes one allocation: the block itself (size drawn from
 * tu_stress_size: mostly small, some mid, a few large) patterned from its
 * address and size, and the descriptor (also malloc'd, 32 bytes) carrying a
 * checksum of its own fields. blk_free() verifies both before freeing both,
 * so any block handed out twice, written by the allocator while live, or
 * freed into the wrong place and reused shows up as a failed CHECK with the
 * address, size and offset.
 */
#ifndef HAKMEM_STRESS_H
#define HAKMEM_STRESS_H

#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

struct blk {
    void *p;
    size_t n;
    uint64_t chk;
    struct blk *next; /* for lists/batches handed between threads */
};

static inline uint64_t blk_sum(const struct blk *b) {
    return tu_mix((uint64_t)(uintptr_t)b->p ^ tu_mix(b->n) ^ (uint64_t)(uintptr_t)b);
}

static inline struct blk *blk_new_n(size_t n) {
    struct blk *b = malloc(sizeof *b);
    REQUIRE(b != NULL);
    void *p = malloc(n);
    CHECKF(p != NULL, "malloc(%zu) = NULL", n);
    if (!p) {
        free(b);
        return NULL;
    }
    if (n >= 16) CHECKF(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p misaligned", n, p);
    pat_fill_sparse(p, n, 0);
    b->p = p;
    b->n = n;
    b->next = NULL;
    b->chk = blk_sum(b);
    return b;
}

static inline struct blk *blk_new(uint64_t *rng) {
    return blk_new_n(tu_stress_size(rng));
}

static inline void blk_free(struct blk *b) {
    if (!b) return;
    if (b->chk != blk_sum(b)) {
        CHECKF(0, "descriptor %p corrupted (p=%p n=%zu)", (void *)b, b->p, b->n);
        return; /* leak rather than free garbage */
    }
    size_t bad = pat_check_sparse(b->p, b->n, 0);
    CHECKF(bad == (size_t)-1, "block %p (size %zu) corrupted at offset %zu before free", b->p, b->n,
           bad);
    free(b->p);
    b->chk = 0;
    free(b);
}

#endif
