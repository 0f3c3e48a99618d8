/* hak_purger.c — the background purger: returns idle free memory to the OS
 * when no thread calls malloc any more (a program that frees and then
 * sleeps, waits for input or computes without allocating).
 *
 * One thread per process, started lazily: on a slow path (hak_heap_poll,
 * every 64th) after the first time memory went back to the allocator (a
 * span emptied, a large block freed), so processes that never free much
 * never start it; and never from inside a recursive malloc (the poll runs
 * at the top of a slow path, where the thread's heap is consistent and no
 * allocator lock is held; the malloc that pthread_create may do simply
 * works). It has no
 * heap and never allocates. Each pass purges what has been free for
 * purge_delay_ms: free pages of every heap's segments (try-lock: an owner
 * busy carving is skipped till the next pass), the segment cache and the
 * large cache. While something is left it sleeps half a purge delay; when
 * nothing is, it sleeps until woken. It sleeps on a futex on the segment's
 * trim_req word, so `hakctl trim` and the daemon wake it (FUTEX_WAKE on
 * that word; a trim request is also seen at the next pass), and frees that
 * leave memory to purge wake it once when it is idle.
 *
 * Only in programs that already run two or more threads with a heap: a
 * single-threaded program stays single-threaded (see hak_purger_tick).
 *
 * HAKMEM_BACKGROUND=0 (knob `background`) keeps it from starting; set to 0
 * later, it stops purging and sleeps. A fork child has no purger (threads
 * do not survive fork): hak_purger_after_fork lets the child start its own. */
#include "hak_internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { PURGER_OFF = 0, PURGER_STARTING, PURGER_RUNNING, PURGER_FAILED };
static atomic_int state;
static atomic_int idle;       /* 1 while sleeping with nothing to do */
static atomic_int pending;    /* something was freed since the pass began */
static uint32_t private_word; /* futex word without a segment */
static pthread_t thread;

static uint32_t *wait_word(void) {
    struct hak_shm_header *shm = hak_shm;
    /* the low half of trim_req (little-endian): bumped by every trim request */
    return shm ? (uint32_t *)&shm->trim_req : &private_word;
}

static void futex_wake(uint32_t *w, bool shared) {
    syscall(SYS_futex, w, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Something was freed that a purge will return: an idle purger looks again
 * (one wake per idle period; nothing at all while it is busy or absent). */
void hak_purger_wake_soon(void) {
    if (HAK_LIKELY(atomic_load_explicit(&pending, memory_order_relaxed))) return;
    /* seq_cst store then load, against the purger's store of idle then
     * load of pending: one of the two sees the other (no lost wake-up) */
    atomic_store(&pending, 1);
    if (atomic_load(&idle) && atomic_exchange(&idle, 0)) {
        uint32_t *w = wait_word();
        futex_wake(w, w != &private_word);
    }
}

/* One pass; returns whether memory is left for a later pass. */
static bool purge_pass(void) {
    if (hak_shm && HAK_SHM_LOAD(trim_req) != HAK_SHM_LOAD(trim_done)) {
        hak_trim_all(); /* purges every heap too */
        return false;
    }
    bool left = hak_segment_cache_trim(false);
    hak_large_cache_trim(false);
    left |= hak_large_cache_busy();
    left |= hak_heaps_purge_all(false);
    HAK_PROC_ADD(BG_PASSES, 1);
    return left;
}

static void *purger_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "hakmem-purge", 0, 0, 0);
    hak_tls.exited = 1; /* no heap, ever: a stray free goes to its owner */
    for (;;) {
        uint32_t *w = wait_word();
        uint32_t seen = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        atomic_store(&pending, 0);
        bool left = HAK_KNOB(BACKGROUND) && purge_pass();
        struct timespec ts, *tmo = NULL;
        if (!left) {
            atomic_store(&idle, 1);
            left = atomic_load(&pending); /* freed during the pass: look again later */
        }
        if (left) {
            uint64_t ns = (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 500000ull + 1000000ull;
            ts.tv_sec = (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            tmo = &ts;
        } /* else idle: a later free finds idle set and wakes us; a trim request changes
           * the word from `seen`, so it is never slept through */
        syscall(SYS_futex, w, w != &private_word ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, seen, tmo, NULL,
                0);
        atomic_store(&idle, 0);
    }
    return NULL;
}

/* Every 64th slow path: start the purger once memory has been given back
 * to the allocator (a span emptied, a large block freed: `pending`). */
void hak_purger_tick(void) {
    if (HAK_LIKELY(atomic_load_explicit(&state, memory_order_relaxed) != PURGER_OFF)) return;
    if (!atomic_load_explicit(&pending, memory_order_relaxed) || !HAK_KNOB(BACKGROUND)) return;
    /* Never make a single-threaded program multi-threaded: glibc's fork()
     * from a signal handler, unshare(CLONE_NEWUSER) and others are only
     * safe in single-threaded processes. Such a program returns idle
     * memory on its slow paths (purge delay) and on malloc_trim. */
    if (atomic_load_explicit(&hak_live_threads, memory_order_relaxed) < 2) return;
    int z = PURGER_OFF;
    if (!atomic_compare_exchange_strong(&state, &z, PURGER_STARTING)) return;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all); /* the program's signals are never delivered to it */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&thread, &attr, purger_main, NULL); /* may malloc: we are ready */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    atomic_store(&state, err ? PURGER_FAILED : PURGER_RUNNING);
}

/* Fork child: the purger thread stayed in the parent. */
void hak_purger_after_fork(void) {
    atomic_store(&idle, 0);
    atomic_store(&state, PURGER_OFF);
    hak_heaps_unlock_after_fork();
}
