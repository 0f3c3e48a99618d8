/* hak_fork.c — fork(): what the allocator does around it. */
#include "hak_internal.h"

/* fork: hold every allocator lock across fork so the child gets them free. */
static void fork_prepare(void) {
    hak_knobs_fork_lock(0);
    hak_lock(&hak_pool_lock);
    hak_segment_fork_lock(0);
    hak_lock(&hak_large_lock);
}
static void fork_parent(void) {
    hak_unlock(&hak_large_lock);
    hak_segment_fork_lock(1);
    hak_unlock(&hak_pool_lock);
    hak_knobs_fork_lock(1);
}
static void fork_child(void) {
    fork_parent();
    hak_publish_after_fork();
    hak_heaps_after_fork(true);
    hak_purger_after_fork();
}

void hak_fork_init(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
