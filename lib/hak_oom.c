/* hak_oom.c — out of memory: what a failing allocation tries, step by step
 * with a retry after each, before malloc returns NULL + ENOMEM.
 *
 * Memory the process holds but cannot hand out where the failure is:
 *   - this thread's cache and empty spans, the segment and large-block
 *     caches, abandoned heaps' remote frees: given back at once (a trim);
 *   - free pages in a dead thread's segments that a few live blocks pin
 *     (the segments cannot be given back): this thread takes that heap over
 *     and leaves its own in the pool (hak_heap_swap);
 *   - other live threads' caches, empty spans and remote frees: only their
 *     owners may touch them. The trim raised a new epoch, which each answers
 *     at its next slow path by giving them back; the failing thread waits
 *     for the answers, retrying in between, yielding and then sleeping
 *     briefly, never longer than OOM_WAIT_NS and holding no lock.
 * A thread that has not answered by then is taken for idle, and not waited
 * for again until it answers a trim, so a program that keeps running out of
 * memory with idle threads pays the wait once. */
#include "hak_internal.h"

#include <sched.h>
#include <time.h>

#define OOM_WAIT_NS (20 * 1000000ull) /* the longest wait for other threads */
#define OOM_YIELDS 8                  /* rounds that only yield; then short sleeps */
#define OOM_SLEEP_NS 100000           /* 0.1 ms */
#define OOM_ROUNDS_MAX 4096           /* a bound even if every swap were in vain */

static void oom_pause(int round) {
    if (round <= OOM_YIELDS) {
        hak_sys_sched_yield();
    } else {
        struct timespec ts = {0, OOM_SLEEP_NS};
        int cancel = hak_cancel_off(); /* a malloc does not end here */
        nanosleep(&ts, NULL);
        hak_cancel_restore(cancel);
    }
}

/* One recovery step: true if the caller should retry. *h may change
 * (the thread took another heap over). */
bool hak_oom_step(struct hak_oom *o, hak_heap **h, int cls) {
    if (o->round++ == 0) {
        HAK_PROBE1(oom_release, *h);
        o->epoch = hak_trim_all();
        o->deadline_ns = hak_now_ns() + OOM_WAIT_NS;
        return true;
    }
    if (o->last || o->round > OOM_ROUNDS_MAX) return false;
    if (cls >= 0) {
        hak_heap *a = hak_heap_swap(*h, cls);
        if (a) {
            *h = a;
            return true;
        }
    }
    bool waited_out = hak_now_ns() >= o->deadline_ns;
    if (!waited_out && hak_heaps_unanswered(o->epoch)) {
        oom_pause(o->round);
        hak_trim_release(); /* what answers brought to the caches and pools */
        return true;
    }
    if (waited_out) hak_heaps_mark_idle(o->epoch);
    o->last = true;
    hak_trim_release();
    return true;
}
