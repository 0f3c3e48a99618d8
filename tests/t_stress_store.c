/* t_stress_store — the heap stores of big classes (lib/hak_store.c) under
 * the background purger: two threads churn verified blocks of 5 KiB-256 KiB
 * (thread-cache overflows go to their heap's store, refills take whole
 * batches back) and pause a dozen times for longer than the purge
 * delay (20 ms here), so the purger returns their stores to the spans and
 * purges the pages while the other thread keeps churning, and the owner
 * refills again right after. Now and then a thread frees a batch of the
 * other's blocks (remote frees beside the stores). Every block is verified
 * when freed (stress.h): a block the purge zeroed, or one handed out twice
 * (a store and a span both listing it), fails. The process re-executes
 * itself with purge_delay_ms=20. Also built as tests/bin/tsan_stress_store. */
#include "stress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 96, HANDOFF = 16 };
static struct blk *_Atomic handoff[2];

static size_t store_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    return r % 8 ? 5120 + (size_t)(r >> 8) % (60 << 10)
                 : (64 << 10) + (size_t)(r >> 8) % (192 << 10);
}

static void *worker(void *arg) {
    int me = (int)(uintptr_t)arg;
    uint64_t rng = 777 + (uint64_t)me;
    struct blk *slot[SLOTS] = {0};
    long steps = tu_scale(6000), pause = steps / 12 > 40 ? steps / 12 : 40; /* 12 pauses */
    for (long s = 0; s < steps; s++) {
        int i = (int)(tu_rand(&rng) % SLOTS);
        blk_free(slot[i]);
        slot[i] = tu_rand(&rng) % 2 ? blk_new_n(store_size(&rng)) : NULL;
        if (s % pause == pause - 1) { /* idle past the purge delay: the purger takes the store */
            struct timespec ts = {0, 45 * 1000000};
            nanosleep(&ts, NULL);
        }
        if (s % 997 == 0) { /* a batch for the other thread to free */
            struct blk *list = NULL;
            for (int k = 0; k < HANDOFF; k++) {
                struct blk *b = blk_new_n(store_size(&rng));
                b->next = list;
                list = b;
            }
            list = atomic_exchange(&handoff[!me], list);
            while (list) {
                struct blk *next = list->next;
                blk_free(list);
                list = next;
            }
        }
        struct blk *mine = atomic_exchange(&handoff[me], NULL);
        while (mine) {
            struct blk *next = mine->next;
            blk_free(mine);
            mine = next;
        }
    }
    for (int i = 0; i < SLOTS; i++) blk_free(slot[i]);
    return NULL;
}

int main(int argc, char **argv) {
    (void)argc;
    tu_reexec_with(argv, (const char *const[]){"HAKMEM_PURGE_DELAY_MS", "20", NULL});
    tu_init("t_stress_store");
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        struct blk *list = atomic_exchange(&handoff[i], NULL);
        while (list) {
            struct blk *next = list->next;
            blk_free(list);
            list = next;
        }
    }
    return tu_done();
}
