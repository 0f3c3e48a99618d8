/* hak_init.c — process start-up. Runs inside the first malloc (or the
 * constructor, whichever comes first): whatever it calls that may allocate
 * (pthread_atfork, pthread_key_create) comes after the allocator is usable,
 * so a recursive malloc simply works. */
#include "hak_internal.h"

#include <sys/auxv.h>
#include <unistd.h>

uintptr_t hak_key;
int hak_safe_free;
atomic_int hak_ready;
pthread_key_t hak_tkey;
int hak_tkey_ready;
static atomic_int init_state; /* 0 not started, 1 running, 2 done */
static pid_t init_tid;

void hak_init(void) {
    int z = 0;
    if (atomic_compare_exchange_strong(&init_state, &z, 1)) {
        init_tid = gettid();
        hak_class_init();
        hak_shm_layout_compute(&hak_layout);
        const uintptr_t *rnd = (const uintptr_t *)getauxval(AT_RANDOM);
        hak_key = (rnd ? rnd[0] ^ (rnd[1] << 1) : (uintptr_t)&z * 0x9e3779b97f4a7c15ull) | 1;
        hak_knobs_init();
        atomic_store_explicit(
            &hak_ready, 1, memory_order_release); /* malloc works from here: the rest may recurse */
        hak_publish_init();
        hak_tkey_ready = pthread_key_create(&hak_tkey, hak_thread_exit) == 0;
        hak_fork_init();
        /* a heap made during the recursion above counts in the segment too */
        if (hak_tls.heap) {
            hak_heap_bind_counters(hak_tls.heap, false);
            hak_tls.ctr = hak_tls.heap->ctr;
            hak_knobs_apply_tls(); /* rebinds the bins' counter rows */
            if (hak_tkey_ready) pthread_setspecific(hak_tkey, hak_tls.heap);
        }
        atomic_store(&init_state, 2);
        return;
    }
    if (init_tid == gettid()) return; /* recursion from inside init */
    while (atomic_load(&init_state) != 2) sched_yield();
}

/* Initialise before main() even if nothing allocated yet, so threads the
 * program starts never race to be first. */
static __attribute__((constructor)) void hak_ctor(void) {
    hak_init();
}

HAK_EXPORT const char *hakmem_version(void) {
    return "hakmem 0.1 (segment ABI 1)";
}
