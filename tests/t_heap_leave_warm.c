/* t_heap_leave_warm — what an exiting thread's heap keeps of a class whose
 * blocks all came back (hak_release_empty_warm, hak_heap_holds_blocks):
 *   - a heap other threads still hold blocks of, in 8 spans or more (a
 *     working set passed on: larson's slots), keeps the class's empty span
 *     carved furthest for its next owner, whose carve would otherwise fault
 *     fresh pages in elsewhere: one span fewer given back than carved;
 *   - a heap held by one stray block gives every empty span back, so its
 *     segments can go (kept spans of an ownerless heap are never purged):
 *     as many spans given back as carved.
 * Spans carved and given back are the counters spans_new and spans_freed of
 * the class, summed over the process's heaps, read from its own segment
 * through the shm library. */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLS 3      /* 64 B blocks: 1,024 to a 64 KiB span */
#define N 3000     /* of them: three spans */
#define HELD_MAX 8 /* classes 0-2 and 4-8: one block held in each */

static struct hak_shm_view view;
static const size_t held_size[HELD_MAX] = {16, 32, 48, 80, 96, 112, 128, 160};
static void *held[HELD_MAX];
static int nheld;

static void *worker(void *arg) {
    static void *b[N];
    for (int i = 0; i < nheld; i++) held[i] = malloc(held_size[i]);
    for (int i = 0; i < N; i++) {
        b[i] = malloc(64);
        memset(b[i], i & 0xff, 64);
    }
    for (int i = 0; i < N; i++) free(b[i]);
    return arg;
}

/* Spans of CLS carved minus given back while a worker holding `held_n`
 * blocks of other classes ran and exited. */
static long kept_spans(int held_n) {
    nheld = held_n;
    uint64_t n0 = hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_NEW);
    uint64_t f0 = hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_FREED);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, worker, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    uint64_t carved = hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_NEW) - n0;
    uint64_t freed = hak_shm_ctr_sum(&view, CLS, HAK_CTR_SPANS_FREED) - f0;
    printf("holding %d blocks: %llu spans of class %d carved, %llu given back\n", held_n,
           (unsigned long long)carved, CLS, (unsigned long long)freed);
    CHECKF(carved >= 2, "the worker's %d blocks took %llu spans", N, (unsigned long long)carved);
    for (int i = 0; i < held_n; i++) free(held[i]); /* remote frees to the pooled heap */
    return (long)carved - (long)freed;
}

int main(void) {
    tu_init("t_heap_leave_warm");
    if (!hakmem_loaded()) return TU_SKIP;
    REQUIRE(tu_attach_self(&view) == 0);
    long stray = kept_spans(1);
    CHECKF(stray == 0, "a heap held by one stray block kept %ld empty spans", stray);
    long warm = kept_spans(HELD_MAX);
    CHECKF(warm == 1, "a heap others hold blocks of in %d spans kept %ld empty spans, not 1",
           HELD_MAX, warm);
    hak_shm_detach(&view);
    return tu_done();
}
