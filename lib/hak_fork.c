/* hak_fork.c — fork(): no allocator lock is held across it.
 *
 * glibc's fork() runs atfork prepare handlers before it takes its own locks
 * (stdio's list lock, ...), so a prepare handler that takes allocator locks
 * can deadlock against a thread that holds a stdio lock and mallocs (glibc
 * bug 19431), and a fork from a signal handler would wait for a lock the
 * interrupted code holds. So nothing happens before fork, and the child
 * (where only the forking thread exists) sorts every lock out by its holder
 * (the tid in the lock word, hak_os.c):
 *   - free: the structure is whole;
 *   - held by this thread: a signal handler forked while this thread was
 *     inside; the interrupted code completes its update and unlocks after
 *     the handler returns, as in the parent;
 *   - held by a thread that did not survive the fork: what it guards may be
 *     half-updated; it is reset to a safe empty state (the cached segments,
 *     cached large blocks, pooled heaps and arena tail are forgotten: a
 *     bounded leak in the child, which usually execs) and the lock released,
 *     or, for the starter heap, retired for good (HAK_LOCK_RETIRED: its
 *     waiters take a new starter).
 * Heap locks: a heap's own thread (or whoever took it from the pool) takes
 * its lock over from a lost holder as it waits (hak_heap_lock): such a
 * holder only purged. Other threads' heaps are retired
 * (hak_heaps_after_fork). A child made by the raw fork system call runs
 * none of this handler: every wait in hak_lock_as looks for lost holders
 * itself. docs/allocator.md "fork" has the whole argument.
 */
#include "hak_internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

/* The process whose child handler ran (or that started the allocator). */
static _Atomic pid_t handled_pid;

bool hak_fork_unhandled(void) {
    return getpid() != atomic_load_explicit(&handled_pid, memory_order_relaxed);
}

/* Every allocator lock but the heaps' (hak_heap_lock): each function takes
 * its lock over from a lost holder (hak_lock_take_orphan) and resets what
 * the lock guards. Also called by hak_lock after long waits, for an
 * application child handler that allocates before ours has run, or a raw
 * fork child. Safe to call any time, with any lock held. */
void hak_fork_reset_orphans(void) {
    hak_knobs_after_fork();
    hak_pool_after_fork();
    hak_segment_after_fork();
    hak_large_after_fork();
    hak_starter_after_fork();
}

/* The parent's segment stays mapped at its address in the child, as
 * private zero pages: counters of retired heaps point there, and so may
 * code that a signal handler's fork interrupted (it resumes in the child). */
static void keep_parent_segment(void *old, size_t size) {
    if (!old || old == hak_shm) return;
    void *p = mmap(old, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED && errno != EEXIST) /* EEXIST: still mapped, as good */
        hak_fatal("fork child: cannot keep the parent's segment range", old);
    if (p != MAP_FAILED && p != old) munmap(p, size); /* a kernel without NOREPLACE */
}

/* After-fork work of the components, in the child, once every lock is
 * usable. New hooks (a background thread to restart, ...) go here. */
static void after_fork_hooks(void) {
    hak_heaps_after_fork(true);
    hak_purger_after_fork();
}

static void fork_child(void) {
    /* a signal handler that forks again must not find this half-done */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    /* this thread's new identity; its locks from the parent are re-stamped */
    hak_tls.tid_in_parent = hak_tls.tid ? hak_tls.tid : -1; /* -1: held none, matches none */
    if (hak_tls.tid) hak_tls.tid = hak_gettid();
    /* first off the parent's segment (no allocator lock needed), so that
     * nothing below writes figures into it */
    void *old = hak_shm;
    hak_publish_after_fork();
    keep_parent_segment(old, hak_layout.total_size);
    hak_fork_reset_orphans();
    hak_tls.tid_in_parent = 0;
    atomic_store_explicit(&handled_pid, getpid(), memory_order_relaxed);
    after_fork_hooks();
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

void hak_fork_init(void) {
    atomic_store_explicit(&handled_pid, getpid(), memory_order_relaxed);
    pthread_atfork(NULL, NULL, fork_child);
}
