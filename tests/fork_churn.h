/* fork_churn.h — the churn threads of the t_fork_* tests: they swap
 * verified blocks of every size (stress.h) in a shared slot array non-stop,
 * so allocator locks are taken all the time while other threads fork.
 * Include after fork_watch.h and stress.h; set fc_role = fw_role("churn"). */
#ifndef HAKMEM_FORK_CHURN_H
#define HAKMEM_FORK_CHURN_H

#define FC_SLOTS 256

static int fc_role;
static _Atomic(struct blk *) fc_slots[FC_SLOTS];

/* arg: a seed distinct per thread */
static void *fc_churn_thread(void *arg) {
    uint64_t rng = 99 + (uint64_t)(uintptr_t)arg;
    while (fw_running()) {
        for (int i = 0; i < 32; i++)
            blk_free(atomic_exchange(&fc_slots[tu_rand(&rng) % FC_SLOTS], blk_new(&rng)));
        fw_tick(fc_role);
    }
    return NULL;
}

/* After the threads are joined: every block verified and freed. */
static inline void fc_drain(void) {
    for (int s = 0; s < FC_SLOTS; s++) blk_free(atomic_exchange(&fc_slots[s], NULL));
}

#endif
