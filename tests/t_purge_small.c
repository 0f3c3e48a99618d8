/* t_purge_small — malloc_trim gives back the free OS pages inside partly
 * used spans (blocks of 16 B - 64 KiB: pages full of block headers, pages
 * inside blocks, header pages between free blocks), and the blocks in those
 * pages are reused correctly afterwards (issue 10, item 8).
 *
 * Each of two threads, five rounds: fills 32 MiB with blocks (pick_size),
 * each written with a pattern of its index; frees all but a random 10 %
 * (so nearly every span keeps live blocks); malloc_trim(0); checks every
 * survivor's pattern; then allocates as many blocks again (malloc, or
 * calloc checked to be zero) into the purged spans, patterns and checks
 * them all, and frees them all. The blocks that started in purged pages are
 * off the free lists while purged: a lost or duplicated block shows up as a
 * wrong pattern, a non-zero calloc block or an invalid-free abort.
 * Single-threaded first, with a resident-memory check: after the trim at
 * most half of the freed bytes may stay resident (before this purge the
 * spans of the small classes kept them all).                                  */
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

enum { FILL = 32 << 20, MAXN = FILL / 16 };

struct blk {
    unsigned char *p;
    uint32_t n, tag;
};

/* 7 in 8 from 16 B-4 KiB (every OS page holds headers), the rest up to
 * 64 KiB (pages inside blocks, and header pages between free blocks) */
static size_t pick_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    return r % 8 ? 16 + (size_t)(r >> 3) % 4081 : 4097 + (size_t)(r >> 3) % 61440;
}

static void fill(struct blk *b, uint32_t tag, size_t n, bool zero) {
    b->p = zero ? calloc(1, n) : malloc(n);
    REQUIRE(b->p);
    b->n = (uint32_t)n;
    b->tag = tag;
    if (zero)
        for (size_t j = 0; j < n; j += 61) CHECKF(b->p[j] == 0, "calloc block not zero at %zu", j);
    for (size_t j = 0; j < n; j++) b->p[j] = (unsigned char)(tag * 31 + j);
}

static long bad_blocks(const struct blk *b, size_t n) {
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b[i].p) continue;
        for (size_t j = 0; j < b[i].n; j++)
            if (b[i].p[j] != (unsigned char)(b[i].tag * 31 + j)) {
                bad++;
                break;
            }
    }
    return bad;
}

/* One thread's rounds; returns the largest share (%) of freed bytes still
 * resident right after a trim (single-threaded calls only). */
static void *rounds(void *arg) {
    bool measure = (uintptr_t)arg != 0;
    uint64_t rng = (uint64_t)(uintptr_t)&rng;
    struct blk *b = calloc(MAXN, sizeof *b);
    REQUIRE(b);
    long worst = 0;
    for (int r = 0; r < 5; r++) {
        size_t n = 0, freed = 0;
        for (size_t sum = 0; sum < FILL; n++) {
            size_t sz = pick_size(&rng);
            fill(&b[n], (uint32_t)(r * MAXN + n), sz, false);
            sum += sz;
        }
        long full = tu_rss_kib();
        for (size_t i = 0; i < n; i++)
            if (tu_rand(&rng) % 10) {
                freed += b[i].n;
                free(b[i].p);
                b[i].p = NULL;
            }
        malloc_trim(0);
        long kept = full - tu_rss_kib(); /* KiB given back */
        long stay = freed >> 10 ? 100 - kept * 100 / (long)(freed >> 10) : 0;
        if (stay > worst) worst = stay;
        CHECKF(bad_blocks(b, n) == 0, "round %d: survivors damaged by the trim", r);
        for (size_t i = 0; i < n; i++) /* refill the holes, some with calloc */
            if (!b[i].p)
                fill(&b[i], (uint32_t)(r * MAXN + i) ^ 0x5a5a, pick_size(&rng), i % 3 == 0);
        CHECKF(bad_blocks(b, n) == 0, "round %d: blocks reused after the trim overlap", r);
        for (size_t i = 0; i < n; i++) {
            free(b[i].p);
            b[i].p = NULL;
        }
    }
    free(b);
    if (measure)
        CHECKF(worst <= 50, "after malloc_trim up to %ld %% of the freed bytes stayed resident",
               worst);
    printf("%s: at most %ld %% of the freed bytes stayed resident after a trim\n",
           measure ? "one thread" : "a thread of two", worst);
    return NULL;
}

int main(void) {
    tu_init("t_purge_small");
    if (!hakmem_loaded()) return TU_SKIP; /* hakmem's purge, not glibc's */
    rounds((void *)1);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&t[i], NULL, rounds, NULL) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    return tu_done();
}
