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
/* In .data, whose page the loader has already written (it zeroes the start
 * of .bss there): read first in a fresh .bss page they would cost two faults,
 * the zero page's and the copy's. */
static _Atomic pid_t init_pid HAK_LOADED_PAGE; /* 0 not started, else the process init runs in */
static atomic_int init_done HAK_LOADED_PAGE;
static __thread int init_here; /* this thread is in init (survives fork, unlike a tid) */

static void init_run(pid_t me);

/* An entry of the auxiliary vector, read above the initial stack's argv
 * and envp, found from __libc_stack_end (argc's address): libc's getauxval
 * sits with mmap and madvise in a 64 KiB fault-around window of libc a
 * small program does not map otherwise (shm/hak_sys.h). Anything
 * unexpected there (a program that rewrote its argument vectors):
 * getauxval. 0 if there is no such entry. */
extern void *__libc_stack_end;
unsigned long hak_auxv(unsigned long type) {
    const long *sp = __libc_stack_end;
    if (sp && sp[0] >= 0 && sp[0] < (1 << 20)) {
        const char *const *v = (const char *const *)(sp + 1);
        long n = sp[0] + 1, limit = 1 << 20; /* argv and its NULL */
        if (v[n - 1] == NULL) {
            while (n < limit && v[n]) n++; /* envp */
            const unsigned long *aux = (const unsigned long *)(v + n + 1);
            for (int i = 0; n < limit && i < 64; i++) {
                if (aux[2 * i] == type) return aux[2 * i + 1];
                if (aux[2 * i] == AT_NULL) return 0;
            }
        }
    }
    return getauxval(type);
}

/* The 16 random bytes the kernel gave the process: on the stack, above
 * argc (the strings), or getauxval's answer. */
static const uintptr_t *at_random(void) {
    const char *r = (const char *)hak_auxv(AT_RANDOM), *lo = __libc_stack_end;
    if (r > lo && r + 16 <= lo + (8 << 20)) return (const uintptr_t *)r;
    return (const uintptr_t *)getauxval(AT_RANDOM);
}

void hak_init(void) {
    if (init_here) return; /* recursion from inside init */
    pid_t me = hak_sys_getpid();
    while (!atomic_load(&init_done)) {
        pid_t p = atomic_load(&init_pid);
        /* p not 0 nor us: a fork child whose initializer was another thread,
         * which does not exist here. Before hak_ready it had touched nothing
         * shared, so start over; after, malloc works and the rest (segment,
         * thread key, fork handler) was the lost thread's: go without. */
        if (p != 0 && p != me && HAK_READY()) return;
        if (p != me && atomic_compare_exchange_strong(&init_pid, &p, me)) {
            init_here = 1;
            init_run(me);
            init_here = 0;
            atomic_store(&init_done, 1);
            return;
        }
        hak_sys_sched_yield();
    }
}

static void init_run(pid_t me) {
    {
        int z = 0;
        hak_forkpage_init(me); /* before anything that may take a lock or a slow path */
        hak_class_init();
        hak_shm_layout_compute(&hak_layout);
        const uintptr_t *rnd = at_random();
        hak_key = (rnd ? rnd[0] ^ (rnd[1] << 1) : (uintptr_t)&z * 0x9e3779b97f4a7c15ull) | 1;
        hak_knobs_init();
        atomic_store_explicit(
            &hak_ready, 1, memory_order_release); /* malloc works from here: the rest may recurse */
        hak_publish_init();
        hak_tkey_ready = pthread_key_create(&hak_tkey, hak_thread_exit) == 0;
        hak_fork_init(me);
        /* a heap made during the recursion above counts in the segment too */
        if (hak_tls.heap) {
            hak_heap_bind_counters(hak_tls.heap, false);
            hak_knobs_apply_tls(); /* rebinds the bins' counter rows */
            if (hak_tkey_ready) pthread_setspecific(hak_tkey, hak_tls.heap);
        }
    }
}

/* Initialise before main() even if nothing allocated yet, so threads the
 * program starts never race to be first. */
static __attribute__((constructor)) void hak_ctor(void) {
    hak_init();
}

#define HAK_STR_(x) #x
#define HAK_STR(x) HAK_STR_(x)
HAK_EXPORT const char *hakmem_version(void) {
    return "hakmem 0.1 (segment ABI " HAK_STR(HAK_SHM_ABI_MAJOR) ")";
}
