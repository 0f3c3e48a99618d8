/* hak_publish.c — the process's own segment: created once the allocator
 * works (never from inside a recursive malloc), figures and counters moved
 * into it, unlinked at a clean exit; a fork child makes its own. */
#include "hak_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct hak_shm_header *hak_shm_ptr;
struct hak_shm_layout hak_layout;
uint64_t hak_proc_private[HAK_NUM_PROCS];
uint64_t *hak_proc = hak_proc_private;
int hak_shm_enabled = 1;
static pid_t hak_shm_pid; /* whose segment hak_shm is (not read back from it) */

static uint64_t read_start_time(void) {
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p) return 0;
    for (int field = 2; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

void hak_publish_init(void) {
    if (!hak_shm_enabled) return;
    char path[256] = {0}, comm[64] = {0};
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n < 0) path[0] = 0;
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, comm, sizeof(comm) - 1);
        if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
        close(fd);
    }
    struct hak_shm_header *shm = hak_shm_create(getpid(), read_start_time(), comm, path);
    if (!shm) return;
    hak_shm_pid = getpid();
    hak_orphan_bind();
    hak_shm_gc_dead(); /* what `sh -c` & co left behind: they end with _exit() */
    uint64_t *proc = (uint64_t *)((char *)shm + hak_layout.proc_off);
    /* figures counted before the segment existed move into it (an add racing
     * with the switch may be lost: these are statistics) */
    for (int i = 0; i < HAK_NUM_PROCS; i++)
        proc[i] = __atomic_load_n(&hak_proc[i], __ATOMIC_RELAXED);
    __atomic_store_n(&hak_proc, proc, __ATOMIC_RELEASE);
    __atomic_store_n(&hak_shm_ptr, shm, __ATOMIC_RELEASE);
    hak_publish_knobs();
}

/* Fork child: the parent's segment stays the parent's; the child makes its
 * own, with the figures it inherited. */
void hak_publish_after_fork(void) {
    struct hak_shm_header *old = hak_shm;
    if (!old) return;
    for (int i = 0; i < HAK_NUM_PROCS; i++) hak_proc_private[i] = hak_proc[i];
    hak_proc = hak_proc_private;
    __atomic_store_n(&hak_shm_ptr, NULL, __ATOMIC_RELEASE);
    hak_orphan_bind();
    hak_publish_init();
    munmap(old, hak_layout.total_size);
}

static __attribute__((destructor)) void hak_fini(void) {
    if (hak_shm && hak_shm_pid == getpid()) {
        hak_shm->flags &= ~HAK_SHM_F_LIVE;
        hak_shm_unlink(getpid());
    }
}
