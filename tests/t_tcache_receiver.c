/* t_tcache_receiver — a thread that only frees blocks another thread
 * malloc'd (a consumer) keeps few of them cached: a default cap starts at
 * 128 blocks (hak_tbin_cap_start), only a bin its thread ever refilled
 * grows from there (hak_tbin_grow). Before, a consumer held 128 to 256
 * blocks of every class it freed for good, and the producer carved fresh
 * ones to make up (xthread: +30 faulted pages). The blocks a thread keeps
 * cached are its frees minus its flushed blocks (it mallocs none); the
 * counters are read from the process's own segment through the shm
 * library, as hakctl reads them. A thread that mallocs the class too still
 * grows its cap to the knob and stops flushing (t_cache_grow: beyond it).
 * A cap set by the environment is taken as set: the test skips. */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 2000    /* class 0 blocks passed from producer to consumer */
#define START 128 /* hak_tbin_cap_start's HAK_TBIN_CAP_START */
#define ROUNDS 40 /* the churning thread's rounds */
#define CHURN 200 /* its blocks per round: under the knob (256), above START */

static struct hak_shm_view view;
static void *blocks[N];

static uint64_t ctr(int id) {
    return hak_shm_ctr_sum(&view, 0, id);
}

static void *producer(void *arg) {
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(16);
        memset(blocks[i], i & 0xff, 16);
    }
    return arg;
}

/* Frees every block; returns how many stayed in this thread's cache. */
static void *consumer(void *arg) {
    uint64_t f0 = ctr(HAK_CTR_FREES), b0 = ctr(HAK_CTR_FLUSH_BLOCKS);
    for (int i = 0; i < N; i++) {
        CHECK(((unsigned char *)blocks[i])[15] == (i & 0xff));
        free(blocks[i]);
    }
    uint64_t freed = ctr(HAK_CTR_FREES) - f0, flushed = ctr(HAK_CTR_FLUSH_BLOCKS) - b0;
    CHECKF(freed >= N, "frees not counted: %llu", (unsigned long long)freed);
    *(uint64_t *)arg = freed - flushed;
    return NULL;
}

/* malloc CHURN, free CHURN, ROUNDS times; returns the flushes of the last
 * half of the rounds (0: the cap grew past CHURN). */
static void *churner(void *arg) {
    static void *volatile b[CHURN];
    uint64_t f0 = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (r == ROUNDS / 2) f0 = ctr(HAK_CTR_FLUSHES);
        for (int i = 0; i < CHURN; i++) b[i] = malloc(16);
        for (int i = 0; i < CHURN; i++) free(b[i]);
    }
    *(uint64_t *)arg = ctr(HAK_CTR_FLUSHES) - f0;
    return NULL;
}

static uint64_t run(void *(*fn)(void *)) {
    uint64_t out = 0;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, &out) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    return out;
}

int main(void) {
    tu_init("t_tcache_receiver");
    if (!hakmem_loaded()) return TU_SKIP;
    if (getenv("HAKMEM_TINY_FAST_CAP")) return TU_SKIP; /* caps as set */
    REQUIRE(tu_attach_self(&view) == 0);

    run(producer);
    uint64_t cached = run(consumer);
    printf("consumer: %llu of %d freed blocks stayed cached (at most %d)\n",
           (unsigned long long)cached, N, START);
    CHECKF(cached <= START, "a consumer kept %llu blocks cached: its cap grew or started above %d",
           (unsigned long long)cached, START);

    uint64_t flushes = run(churner);
    printf("churner: %llu flushes in its last %d rounds of %d blocks\n",
           (unsigned long long)flushes, ROUNDS / 2, CHURN);
    CHECKF(flushes == 0, "a thread churning %d blocks still flushes: its cap did not grow", CHURN);
    hak_shm_detach(&view);
    return tu_done();
}
