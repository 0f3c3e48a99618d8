/* t_heap_leave_light — an exiting thread that filled a segment's pages
 * leaves, for each class up to 1 KiB it used, its span with the heap, reset
 * to uncarved (hak_release_empty_reset):
 *   - a worker that fills 4 MiB with 8 KiB blocks, mallocs 4 blocks of
 *     256 B, frees everything and exits keeps its 256 B span: one carved,
 *     none given back; the next such worker carves none (it carves the kept
 *     one again), and neither does one of 200 blocks of 256 B;
 *   - a worker that fills less than a segment gives the span back.
 * Spans carved and given back are the counters spans_new and spans_freed of
 * the class, summed over the process's heaps, read from its own segment
 * through the shm library. Workers run one at a time, so each takes the
 * heap the last one left in the pool; the first spends the heap's starter
 * budget (a new thread's first 64 KiB come from the shared starter heap). */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLS 11 /* 256 B blocks: 256 to a 64 KiB span */
#define BIG 8192

static struct hak_shm_view view;
static size_t nbig;

static void *worker(void *arg) {
    static void *b[1024], *s[256];
    size_t n = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < nbig; i++) {
        b[i] = malloc(BIG);
        REQUIRE(b[i] != NULL);
        memset(b[i], (int)i, BIG);
    }
    for (size_t i = 0; i < n; i++) {
        s[i] = malloc(256);
        REQUIRE(s[i] != NULL);
        memset(s[i], (int)i, 256);
    }
    for (size_t i = 0; i < n; i++) free(s[i]);
    for (size_t i = 0; i < nbig; i++) free(b[i]);
    return NULL;
}

/* spans of CLS carved minus given back while a worker ran */
static long run(size_t big, size_t n, long *carved_out) {
    nbig = big;
    uint64_t n0 = hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_NEW);
    uint64_t f0 = hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_FREED);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, worker, (void *)(uintptr_t)n) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    long carved = (long)(hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_NEW) - n0);
    long freed = (long)(hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_FREED) - f0);
    printf("worker of %zu x 8 KiB and %zu x 256 B: %ld spans of class %d carved, %ld given back\n",
           big, n, carved, CLS, freed);
    *carved_out = carved;
    return carved - freed;
}

int main(void) {
    tu_init("t_heap_leave_light");
    if (!hakmem_loaded()) return TU_SKIP;
    REQUIRE(tu_attach_self(&view) == 0);
    long carved;
    run(16, 0, &carved); /* the starter budget */
    long kept = run(1024, 4, &carved);
    CHECKF(kept == 1, "a worker of 4 blocks kept %ld spans (carved %ld), not 1", kept, carved);
    kept = run(1024, 4, &carved);
    CHECKF(kept == 0 && carved == 0,
           "the next worker of 4 blocks carved %ld spans and kept %ld, not 0 and 0", carved, kept);
    kept = run(1024, 200, &carved);
    CHECKF(kept == 0 && carved == 0,
           "a worker of 200 blocks carved %ld spans and kept %ld, not 0 and 0", carved, kept);
    kept = run(16, 4, &carved);
    CHECKF(kept == -1, "a worker that filled 128 KiB kept %ld spans, not -1 (its span back)", kept);
    hak_shm_detach(&view);
    return tu_done();
}
