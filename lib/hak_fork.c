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
 * holder only purged. Except the purger in the middle of draining a heap
 * (hak_heaps_drain_idle: span lists change): the first thread to settle
 * in the child retires that heap, lock and all (hak_heaps_leave_parent;
 * the purger names it, `draining`, before its first write and after its
 * last), and its owner leaves it as it settles, before any lock, for a new
 * heap (hak_heap_after_fork_self); its cached blocks go back to the
 * retired heap as remote frees. Other threads' heaps are retired
 * (hak_heaps_after_fork). A child made by the raw fork system call runs
 * none of this handler: every wait in hak_lock_as looks for lost holders
 * itself, and the fork page (below) tells its threads they are in a new
 * process. docs/allocator.md "fork" has the whole argument.
 */
#include "hak_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The process whose child handler ran (or that started the allocator). */
static _Atomic pid_t handled_pid;

bool hak_fork_unhandled(void) {
    return hak_sys_getpid() != atomic_load_explicit(&handled_pid, memory_order_relaxed);
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

/* The fork page: zero in every fork child (MADV_WIPEONFORK), raw or not.
 * 4 KiB resident per process (written once at start): the price of telling
 * a new process with a load. Without it (getpid is a system call, and
 * glibc no longer caches it) a raw fork child's thread cannot know it
 * forked, and nothing else that it reads tells: its parent's stale tid in
 * a lock word looks exactly like a lost thread's (docs/allocator.md). A
 * mapping, not .bss: a page-aligned object there moves every other
 * variable of .bss to new pages (12 KiB more resident, t_fixed_rss). */
/* until mapped, or for good (read only if the mapping failed: sparse .bss) */
static struct hak_forkpage forkpage_static HAK_SPARSE_BSS("forkpage_static");
struct hak_forkpage *hak_forkpage_ptr = &forkpage_static;
static bool forkpage_wiped; /* the kernel wipes it (4.14 and later) */

HAK_COLD void hak_forkpage_init(pid_t me) {
    int e = errno;
    struct hak_forkpage *p =
        hak_sys_mmap(NULL, HAK_OS_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) { /* not wiped (madvise fails): fork_child clears it */
        forkpage_wiped = hak_sys_madvise(p, HAK_OS_PAGE, MADV_WIPEONFORK) == 0;
        __atomic_store_n(&hak_forkpage_ptr, p, __ATOMIC_RELEASE);
    }
    errno = e;
    struct hak_forkpage *fp = HAK_FORKPAGE();
    atomic_store_explicit(&fp->ident, me, memory_order_relaxed);
    atomic_store_explicit(&fp->settled, me, memory_order_release);
}

HAK_COLD pid_t hak_tid_refresh(void) {
    struct hak_forkpage *fp = HAK_FORKPAGE();
    pid_t id = atomic_load_explicit(&fp->ident, memory_order_relaxed);
    if (!id) { /* the first thread in a new process: all of them read the same pid */
        id = hak_sys_getpid();
        atomic_store_explicit(&fp->ident, id, memory_order_relaxed);
    }
    hak_tls.tid_ident = id;
    return hak_tls.tid = hak_gettid();
}

/* A new process leaves what it shares with its parent: its figures and
 * counters stop reaching the parent's segment (its range becomes private
 * zero pages in place, hak_publish_after_fork), locks of lost holders are
 * freed, every heap counts afresh. In a raw fork child other threads may
 * run meanwhile (ones it started): the heaps change under the pool lock. */
HAK_COLD static void leave_parent(bool others_run) {
    hak_publish_after_fork(); /* first: nothing below writes figures into it */
    hak_fork_reset_orphans();
    hak_heaps_leave_parent(others_run);
}

/* hak_fork_check found this thread's settled stale: the thread is new, or
 * the process is (a fork child: the page reads zero). The first thread in a
 * new process leaves the parent's state for all (once: under the page's
 * lock, free in a child); a thread that came through the fork (it had
 * settled in the parent) takes its heap as its own again. A raw fork
 * child gets here at its first slow path; until then the forking thread's
 * fast path still counts in its parent's segment slot. */
HAK_COLD void hak_fork_settle(void) {
    struct hak_forkpage *fp = HAK_FORKPAGE();
    pid_t s = atomic_load_explicit(&fp->settled, memory_order_acquire);
    if (!s) {
        hak_lock(&fp->lock);
        s = atomic_load_explicit(&fp->settled, memory_order_acquire);
        if (!s) {
            leave_parent(!hak_tls.tid_in_parent); /* set: in our child handler, alone */
            s = hak_sys_getpid();
            atomic_store_explicit(&fp->settled, s, memory_order_release);
        }
        hak_unlock(&fp->lock);
    }
    pid_t was = hak_tls.settled;
    hak_tls.settled = s;
    if (was && was != s) hak_heap_after_fork_self();
}

/* After-fork work of the components, in the child, once every lock is
 * usable. New hooks (a background thread to restart, ...) go here. */
static void after_fork_hooks(void) {
    hak_heaps_after_fork(true);
    hak_purger_after_fork();
}

HAK_COLD static void fork_child(void) {
    /* a signal handler that forks again must not find this half-done */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    if (!forkpage_wiped) /* an old kernel: as if it had been (one thread here) */
        memset(HAK_FORKPAGE(), 0, sizeof(struct hak_forkpage));
    /* this thread's new identity; its locks from the parent are re-stamped
     * (hak_fork_reset_orphans, in the settling and again below: an
     * application child handler before ours may have settled already) */
    hak_tls.tid_in_parent = hak_tls.tid ? hak_tls.tid : -1; /* -1: held none, matches none */
    if (hak_tls.tid) hak_tid_refresh();
    hak_fork_settle();
    hak_fork_reset_orphans();
    hak_tls.tid_in_parent = 0;
    atomic_store_explicit(&handled_pid, hak_sys_getpid(), memory_order_relaxed);
    after_fork_hooks();
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

void hak_fork_init(pid_t me) {
    atomic_store_explicit(&handled_pid, me, memory_order_relaxed);
    pthread_atfork(NULL, NULL, fork_child);
}
