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
 * In programs that already run two or more threads with a heap it starts
 * on the first free (or when a thread that freed exits) and stays while
 * they run. A single-threaded program gets a transient one ("solo") only
 * once a lot has been freed since its last purge (background_solo_mb, 64
 * MiB). Either purges, and once the process is single-threaded and nothing
 * new came for a purge delay, exits: the program is single-threaded again.
 * Why not always, or never: docs/allocator.md "Idle memory".
 *
 * HAKMEM_BACKGROUND=0 (knob `background`) keeps it from starting; set to 0
 * later, it stops purging and sleeps. A fork child has no purger (threads
 * do not survive fork): hak_purger_after_fork lets the child start its own. */
#include "hak_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { PURGER_OFF = 0, PURGER_RUNNING, PURGER_FAILED };
static atomic_int state;
/* Solo mode: the least "held but not live" figure seen since the last solo
 * purger finished (all of it was purged or reused then); UINT64_MAX: none */
static _Atomic uint64_t solo_floor = UINT64_MAX;
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

/* The purge delay in effect is purge_delay_ms scaled by the refault rate:
 * pages that were purged and then taken again fault back in (zeroed by the
 * kernel), so a program whose freed memory comes back after a while longer
 * than the delay pays a madvise and the faults for nothing. Over each window
 * the purger compares refault_bytes with purged_bytes: when at least half of
 * what it purged came back, the delay doubles, up to 4x; when less than an
 * eighth did, it halves back towards the knob. A window lasts four delays
 * and until 1 MiB was purged or refaulted (the evidence), at most 32 delays:
 * the volume a delay's worth of churn purges depends on the span sizes and
 * the thread caches (a 4-page span of 40 KiB blocks gives back 256 KiB, a
 * 32-page one 2 MiB), so a fixed-length window with a volume floor missed a
 * steady refault of 0.5 MiB a round. A window closed by its length alone
 * (too little to matter) may only halve the delay. The knob stays the
 * floor: a user's or the daemon's setting is the least the allocator waits.
 * Only the purger thread changes the scale. */
enum { DELAY_SHIFT_MAX = 2, WINDOW_DELAYS = 4, WINDOW_DELAYS_MAX = 32 };
#define WINDOW_EVIDENCE (1ull << 20)
static atomic_int delay_shift;
static uint64_t window_t0, window_purged0, window_refault0; /* the purger's */

uint64_t hak_purge_delay_ns(void) {
    int shift = atomic_load_explicit(&delay_shift, memory_order_relaxed);
    return (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 1000000ull << shift;
}

static void delay_adapt(void) {
    uint64_t now = hak_now_ns(), purged = HAK_PROC_GET(PURGED_BYTES),
             refault = HAK_PROC_GET(REFAULT_BYTES);
    int shift = atomic_load_explicit(&delay_shift, memory_order_relaxed);
    uint64_t knob = (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 1000000ull, age = now - window_t0,
             dp = purged - window_purged0, dr = refault - window_refault0;
    bool evidence = dp >= WINDOW_EVIDENCE || dr >= WINDOW_EVIDENCE;
    if (window_t0 && (age < WINDOW_DELAYS * knob || (!evidence && age < WINDOW_DELAYS_MAX * knob)))
        return;
    if (window_t0) {
        if (evidence && dr * 2 >= dp && shift < DELAY_SHIFT_MAX)
            shift++;
        else if (dr * 8 < dp && shift > 0)
            shift--;
        atomic_store_explicit(&delay_shift, shift, memory_order_relaxed);
    }
    window_t0 = now, window_purged0 = purged, window_refault0 = refault;
    __atomic_store_n(&HAK_PROC_PTR()[HAK_PROC_PURGE_DELAY_NOW], hak_purge_delay_ns() / 1000000ull,
                     __ATOMIC_RELAXED);
}

/* The segment has just been published: a purger started before sleeps on
 * the private word, where `hakctl trim` and the daemon cannot reach it (and,
 * idle in a process whose threads live in their caches, would stay there).
 * Moves it to the segment's trim_req: the bump makes a wait about to start
 * on the old word return at once (its value changed), the wake ends one
 * under way; the purger reads wait_word() again at the top of its loop. */
void hak_purger_published(void) {
    __atomic_fetch_add(&private_word, 1, __ATOMIC_RELEASE);
    futex_wake(&private_word, false);
}

/* One pass; returns whether memory is left for a later pass. */
static bool purge_pass(void) {
    delay_adapt();
    if (hak_shm && HAK_SHM_LOAD(trim_req) != HAK_SHM_LOAD(trim_done)) {
        hak_trim_all(); /* purges every heap too */
        return false;
    }
    bool left = hak_segment_cache_trim(false);
    hak_large_cache_trim(false);
    left |= hak_large_cache_busy();
    left |= hak_heaps_drain_idle();
    left |= hak_heaps_purge_all(false);
    HAK_PROC_ADD(BG_PASSES, 1);
    return left;
}

/* Bytes the allocator holds beyond what is live: mapped segments and large
 * mappings (live and cached) less the live bytes the counters show. It
 * counts purged pages too: solo_due compares it with its floor. */
static uint64_t held_not_live(void) {
    uint64_t live, cached;
    hak_heap_sum_ctr(&live, &cached);
    uint64_t held = __atomic_load_n(&hak_usage.seg_bytes, __ATOMIC_RELAXED) +
                    __atomic_load_n(&hak_usage.large_bytes, __ATOMIC_RELAXED);
    return held > live ? held - live : 0;
}

static void set_timeout(struct timespec *ts, uint64_t ns) {
    ts->tv_sec = (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* A purger ends when it slept a whole linger (one purge delay) with
 * nothing freed and no trim request, and its process is still
 * single-threaded (else it stays while the threads do). */
static bool solo_done(bool lingered, uint32_t *w, uint32_t seen) {
    return lingered && !atomic_load(&pending) && __atomic_load_n(w, __ATOMIC_ACQUIRE) == seen &&
           atomic_load(&hak_live_threads) < 2;
}

/* No argument: a solo purger and one started among threads run and end
 * alike (solo only counts the start, purger_spawn). */
static void *purger_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "hakmem-purge", 0, 0, 0);
    /* its own cwd/root/umask: the program's thread then holds the only
     * reference, so setns() into a mount namespace keeps working while we
     * live (it needs fs->users == 1) */
    syscall(SYS_unshare, CLONE_FS);
    hak_tls.exited = 1; /* no heap, ever: a stray free goes to its owner */
    /* no rows either: what it counts outside a heap's drain (which points
     * the bins at its own rows) goes to the orphan rows (hak_ctr_row_make) */
    for (int c = 0; c < HAK_NUM_CSLOTS; c++) hak_tls.bins[c].ctr = hak_ctr_sink;
    for (;;) {
        uint32_t *w = wait_word();
        uint32_t seen = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        atomic_store(&pending, 0);
        bool left = HAK_KNOB(BACKGROUND) && purge_pass(), linger = false;
        struct timespec ts, *tmo = NULL;
        if (!left) {
            atomic_store(&idle, 1);
            left = atomic_load(&pending); /* freed during the pass: look again later */
        }
        if (left) {
            set_timeout(&ts, hak_purge_delay_ns() / 2 + 1000000ull);
            tmo = &ts;
        } else if (atomic_load(&hak_live_threads) < 2) {
            /* idle and alone: wait one purge delay for more, then end. Any
             * purger: one started while threads ran ends too once they are
             * gone, so the program is single-threaded again (a later big
             * free starts a solo one, hak_purger_tick) */
            set_timeout(&ts, (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 1000000ull + 50000000ull);
            tmo = &ts;
            linger = true;
        } /* else idle: a later free finds idle set and wakes us; a trim request changes
           * the word from `seen`, so it is never slept through */
        syscall(SYS_futex, w, w != &private_word ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, seen, tmo, NULL,
                0);
        atomic_store(&idle, 0);
        if (solo_done(linger, w, seen)) break;
    }
    /* everything due went back: what is held now is the new floor, taken at
     * the owner's next tick (the counters are the owner's to read without a
     * race). Nothing of ours is touched after the state store (a new purger
     * may start). */
    atomic_store(&solo_floor, UINT64_MAX);
    HAK_PROC_ADD(BG_SOLO_EXITS, 1);
    atomic_store(&state, PURGER_OFF);
    return NULL;
}

/* Single-threaded program: whether background_solo_mb more than the floor
 * is held beyond the live bytes (freed since the last solo purge, net of
 * what was reused). The floor follows the figure down, so memory purged
 * long ago, or taken again, never counts. */
static bool solo_due(void) {
    uint64_t mb = (uint64_t)HAK_KNOB(BACKGROUND_SOLO_MB);
    if (!mb) return false;
    uint64_t now = held_not_live(), floor = atomic_load_explicit(&solo_floor, memory_order_relaxed);
    if (now < floor) {
        atomic_store_explicit(&solo_floor, now, memory_order_relaxed);
        return false;
    }
    return now - floor >= mb << 20;
}

/* Small-class span lists change only under the heap lock from here on, so
 * the solo purger may purge their free pages too (the program's thread is
 * asleep: it cannot do it). Spans already holding free blocks count as
 * freed now. At a safe point of the owner (no span work under way). */
static void small_lock_begin(hak_heap *h) {
    uint64_t now = hak_now_ns();
    hak_heap_lock(h);
    for (int c = 0; c < HAK_PURGE_CLS_MIN; c++)
        for (hak_span *s = h->partial[c]; s; s = s->next)
            if (s->free && !s->free_dirty_ns) s->free_dirty_ns = now;
    h->lock_small = true;
    hak_tls.lock_small = 1;
    hak_heap_unlock(h);
}

/* The owner stops locking small-class work: no purger relies on it. */
static void small_lock_end(hak_heap *h) {
    hak_heap_lock(h);
    h->lock_small = false;
    hak_heap_unlock(h);
    hak_tls.lock_small = 0;
}

/* Starts the thread; the caller moved state OFF -> RUNNING (so a solo
 * purger that ends at once stores OFF after this, never before). */
static void purger_spawn(bool solo) {
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all); /* the program's signals are never delivered to it */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* may malloc: we are ready */
    int err = pthread_create(&thread, &attr, purger_main, NULL);
    if (err == EINVAL) {
        /* glibc puts the program's static TLS on every thread's stack: with
         * more than about 60 KiB of it, 64 KiB is too small, and the purger
         * never started (PURGER_FAILED for good). The default size then:
         * address space, its untouched pages never resident */
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        err = pthread_create(&thread, &attr, purger_main, NULL);
    }
    if (!err && solo) HAK_PROC_ADD(BG_SOLO_STARTS, 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err) atomic_store(&state, PURGER_FAILED);
}

/* Thread exit, before the heap goes to the pool (still ours: the malloc
 * pthread_create may do works). A pooled heap has no owner to lock for.
 * Threads that freed and exit start no slow path of anyone's, and the
 * main thread they leave may only sleep: 8 threads that each freed ten 2
 * MiB blocks left 128 MiB in the large cache for as long as it slept (the
 * ticks that start the purger come every 64th slow path). So a thread that
 * leaves freed memory behind starts the purger if none runs, as a solo one
 * without the owner's small-class locking: it returns the caches and the
 * pooled heaps, stays while threads remain, and ends once the process is
 * single-threaded and idle (as the solo purger does), so a program that
 * ran its threads and went back to one is single-threaded again. */
void hak_purger_thread_exit(hak_heap *h) {
    if (hak_tls.lock_small) small_lock_end(h);
    if (atomic_load_explicit(&state, memory_order_acquire) != PURGER_OFF || !HAK_KNOB(BACKGROUND) ||
        !atomic_load_explicit(&pending, memory_order_relaxed) || hak_fork_unhandled())
        return;
    int z = PURGER_OFF;
    if (atomic_compare_exchange_strong(&state, &z, PURGER_RUNNING)) purger_spawn(true);
}

/* Every 64th slow path: start the purger once memory has been given back
 * to the allocator (a span emptied, a large block freed: `pending`). */
void hak_purger_tick(hak_heap *h) {
    int st = atomic_load_explicit(&state, memory_order_acquire);
    /* the solo purger is gone (it stored OFF after its last walk): stop locking */
    if (HAK_UNLIKELY(hak_tls.lock_small) && st != PURGER_RUNNING) small_lock_end(h);
    if (HAK_LIKELY(st != PURGER_OFF)) return;
    if (!HAK_KNOB(BACKGROUND)) return;
    /* A single-threaded program gets a thread only for a big idle return:
     * glibc's fork() from a signal handler is only safe in a process that
     * never had a thread, and unshare(CLONE_NEWUSER) fails while one lives.
     * Small programs return idle memory on their slow paths (purge delay)
     * and on malloc_trim, and stay single-threaded. */
    bool solo = atomic_load_explicit(&hak_live_threads, memory_order_relaxed) < 2;
    if (solo ? !solo_due() : !atomic_load_explicit(&pending, memory_order_relaxed)) return;
    if (hak_fork_unhandled()) return; /* a raw fork child: no thread (hak_fork.c) */
    int z = PURGER_OFF;
    /* RUNNING before the thread exists: a solo purger that ends at once
     * stores OFF after this, never before */
    if (!atomic_compare_exchange_strong(&state, &z, PURGER_RUNNING)) return;
    if (solo) small_lock_begin(h); /* before the thread: it sees the flag */
    purger_spawn(solo);
}

/* Fork child: the purger thread (solo or not) stayed in the parent. */
void hak_purger_after_fork(void) {
    /* the child's counters start from zero while the parent's blocks stay
     * mapped: measure what the child frees from its first figure on */
    atomic_store(&solo_floor, UINT64_MAX);
    atomic_store(&idle, 0);
    window_t0 = 0; /* the child's counters start from zero: a new window */
    atomic_store(&state, PURGER_OFF);
    hak_heaps_unlock_after_fork();
}
