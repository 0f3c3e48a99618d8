/* t_stress_solo — a single-threaded program churns while its transient
 * ("solo") purger returns the free pages of its spans, small classes
 * included (lib/hak_purger.c: the owner locks small-class span work while
 * the purger may walk its lists).
 *
 * Each round: about 96 MiB of verified blocks (mostly 16 B-4 KiB, some
 * 5-32 KiB), 90 % freed at random (past background_solo_mb: the purger
 * starts), then 400 ms of churn that replaces random survivors (refills and
 * flushes of the classes the purger walks, blocks reused from purged pages)
 * and sleeps 1 ms every 256 steps so the purger runs in between. In the
 * second round a thread joins the churn for a while (the process stops and
 * starts being single-threaded under the purger). Every block is verified
 * when freed (stress.h); a block the purge zeroed or handed out twice fails.
 * Under hakmem the purger must have been seen (the process had 2+ threads
 * while single-threaded by itself). Also built as tests/bin/tsan_stress_solo. */
#include "stress.h"

#include <stdbool.h>
#include <time.h>
#include <unistd.h>

enum { NBLK = 96 * 1024 * 1024 / 1100 };
static struct blk *slot[NBLK];

static size_t solo_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    return r % 10 ? 16 + (size_t)(r >> 8) % 4081 : 5120 + (size_t)(r >> 8) % 27648;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *helper(void *arg) { /* its own blocks, 100 ms */
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    struct blk *mine[64] = {0};
    for (double end = now_s() + 0.1; now_s() < end;) {
        int i = (int)(tu_rand(&rng) % 64);
        blk_free(mine[i]);
        mine[i] = blk_new_n(solo_size(&rng));
    }
    for (int i = 0; i < 64; i++) blk_free(mine[i]);
    return NULL;
}

int main(void) {
    tu_init("t_stress_solo");
    uint64_t rng = 12345;
    int most = 1;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < NBLK; i++) slot[i] = blk_new_n(solo_size(&rng));
        for (int i = 0; i < NBLK; i++)
            if (tu_rand(&rng) % 10) {
                blk_free(slot[i]);
                slot[i] = NULL;
            }
        pthread_t t;
        /* the helper starts at step 2048, or at 0.1 s if the churn is slow
         * (TSAN on a loaded machine): joining at 0.2 s a thread never
         * started joined pthread_t 0 ("dup thread with used id 0x0") */
        bool started = r != 1, joined = r != 1;
        long step = 0;
        for (double t0 = now_s(), end = t0 + 0.4; now_s() < end; step++) {
            int i = (int)(tu_rand(&rng) % NBLK);
            blk_free(slot[i]);
            slot[i] = tu_rand(&rng) % 2 ? blk_new_n(solo_size(&rng)) : NULL;
            if (step % 256 == 0) {
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
                int n = tu_threads();
                if (n > most && joined) most = n; /* ours, not the helper's */
            }
            if (!started && (step == 2048 || now_s() > t0 + 0.1)) {
                REQUIRE(pthread_create(&t, NULL, helper, &rng) == 0);
                started = true;
            }
            if (!joined && started && now_s() > t0 + 0.2) {
                pthread_join(t, NULL);
                joined = true;
            }
        }
        if (!started) REQUIRE(pthread_create(&t, NULL, helper, &rng) == 0);
        if (!joined) pthread_join(t, NULL);
        for (int i = 0; i < NBLK; i++) {
            blk_free(slot[i]);
            slot[i] = NULL;
        }
    }
    printf("most threads seen while single-threaded: %d\n", most);
    if (hakmem_loaded() && getenv("HAKMEM_BACKGROUND_SOLO_MB") == NULL)
        CHECKF(most >= 2, "no solo purger ran (threads seen: %d): the test did not test it", most);
    return tu_done();
}
