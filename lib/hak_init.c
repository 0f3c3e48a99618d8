/* hak_init.c — process start-up, knobs (environment, segment), the segment
 * itself, fork and exit. Runs inside the first malloc: whatever it calls
 * that may allocate (pthread_atfork, pthread_key_create) comes after the
 * allocator is usable, so a recursive malloc simply works. */
#include "hak_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

uintptr_t hak_key;
int hak_safe_free;
struct hak_shm_header *hak_shm_ptr;
struct hak_shm_layout hak_layout;
atomic_int hak_ready;
struct hak_knobs hak_knobs;
uint64_t hak_proc_private[HAK_NUM_PROCS];
uint64_t *hak_proc = hak_proc_private;
uint64_t hak_knob_gen_applied;
pthread_key_t hak_tkey;
int hak_tkey_ready;
static atomic_int init_state; /* 0 not started, 1 running, 2 done */
static pid_t init_tid;
static hak_lock_t knob_lock;
static int shm_enabled = 1;
static pid_t hak_shm_pid; /* whose segment hak_shm is (not read back from it) */

static bool parse_i64(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static void knob_set_env(int k, int cls_from, int cls_to, const char *env) {
    int64_t v;
    const char *s = getenv(env);
    if (!s) return;
    if (!parse_i64(s, &v)) {
        hak_log("hakmem: ignoring ");
        hak_log(env);
        hak_log(": not an integer\n");
        return;
    }
    int64_t c = hak_knob_clamp(k, v);
    if (c != v) {
        hak_log("hakmem: ");
        hak_log(env);
        hak_log(" out of range, clamped (see docs/allocator.md for the range)\n");
    }
    for (int cls = cls_from; cls <= cls_to; cls++) {
        hak_knobs.val[k][cls] = c;
        hak_knobs.owner[k][cls] = HAK_OWNER_ENV;
    }
}

static void knobs_from_env(void) {
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        for (int c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_knobs.val[k][c] = hak_knob_default(k, c);
            hak_knobs.owner[k][c] = HAK_OWNER_DEFAULT;
        }
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        int last = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES - 1 : 0;
        knob_set_env(k, 0, last, hak_knob_defs[k].env);
    }
    /* the original's hot-class override: classes up to 128 B */
    knob_set_env(HAK_KNOB_REFILL_COUNT, 0, 7, "HAKMEM_TINY_REFILL_COUNT_HOT");
    int64_t v;
    if (parse_i64(getenv("HAKMEM_SAFE_FREE"), &v)) hak_safe_free = v != 0;
    if (parse_i64(getenv("HAKMEM_SHM"), &v)) shm_enabled = v != 0;
}

static struct hak_shm_knob_val *seg_knob(struct hak_shm_header *shm, int k, int c) {
    return (struct hak_shm_knob_val *)((char *)shm + hak_layout.knob_val_off +
                                       ((size_t)k * HAK_NUM_CLASSES + (size_t)c) *
                                           sizeof(struct hak_shm_knob_val));
}

/* Writes the effective knobs into the (new) segment. */
void hak_publish_knobs(void) {
    if (!hak_shm) return;
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        for (int c = 0; c < HAK_NUM_CLASSES; c++) {
            struct hak_shm_knob_val *kv = seg_knob(hak_shm, k, c);
            kv->value = hak_knobs.val[k][c];
            kv->owner = hak_knobs.owner[k][c];
        }
    uint64_t gen = HAK_SHM_LOAD(knob_gen);
    HAK_SHM_STORE(knob_gen_seen, gen);
    __atomic_store_n(&hak_knob_gen_applied, gen, __ATOMIC_RELEASE);
}

/* A tool changed knobs: take them, clamped to our compiled ranges (the
 * segment may hold any bytes). Whichever thread notices first does it. */
void hak_knobs_reload(void) {
    hak_lock(&knob_lock);
    uint64_t gen = __atomic_load_n(&hak_shm->knob_gen, __ATOMIC_ACQUIRE);
    if (gen != hak_knob_gen_applied) {
        for (int k = 0; k < HAK_NUM_KNOBS; k++) {
            int last = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES - 1 : 0;
            for (int c = 0; c <= last; c++) {
                struct hak_shm_knob_val *kv = seg_knob(hak_shm, k, c);
                int64_t v = hak_knob_clamp(k, kv->value);
                uint32_t o = kv->owner;
                hak_knobs.val[k][c] = v;
                hak_knobs.owner[k][c] = (uint8_t)(o <= HAK_OWNER_MANUAL ? o : HAK_OWNER_MANUAL);
            }
        }
        HAK_SHM_STORE(knob_gen_seen, gen);
        __atomic_store_n(&hak_knob_gen_applied, gen, __ATOMIC_RELEASE);
        HAK_PROC_ADD(KNOB_RELOADS, 1);
        HAK_PROBE1(knob_reload, gen);
    }
    hak_unlock(&knob_lock);
}

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

static void shm_open_own(void) {
    if (!shm_enabled) return;
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

/* fork: hold every allocator lock across fork so the child gets them free. */
static void fork_prepare(void) {
    hak_lock(&knob_lock);
    hak_lock(&hak_pool_lock);
    hak_segment_fork_lock(0);
    hak_lock(&hak_large_lock);
}
static void fork_parent(void) {
    hak_unlock(&hak_large_lock);
    hak_segment_fork_lock(1);
    hak_unlock(&hak_pool_lock);
    hak_unlock(&knob_lock);
}
static void fork_child(void) {
    fork_parent();
    /* The parent's segment stays the parent's: the child makes its own. */
    struct hak_shm_header *old = hak_shm;
    if (old) {
        for (int i = 0; i < HAK_NUM_PROCS; i++) hak_proc_private[i] = hak_proc[i];
        hak_proc = hak_proc_private;
        __atomic_store_n(&hak_shm_ptr, NULL, __ATOMIC_RELEASE);
        hak_orphan_bind();
        shm_open_own();
        munmap(old, hak_layout.total_size);
    }
    hak_heaps_after_fork(true);
}

static __attribute__((destructor)) void hak_fini(void) {
    if (hak_shm && hak_shm_pid == getpid()) {
        hak_shm->flags &= ~HAK_SHM_F_LIVE;
        hak_shm_unlink(getpid());
    }
}

void hak_init(void) {
    int z = 0;
    if (atomic_compare_exchange_strong(&init_state, &z, 1)) {
        init_tid = gettid();
        hak_class_init();
        hak_shm_layout_compute(&hak_layout);
        const uintptr_t *rnd = (const uintptr_t *)getauxval(AT_RANDOM);
        hak_key = (rnd ? rnd[0] ^ (rnd[1] << 1) : (uintptr_t)&z * 0x9e3779b97f4a7c15ull) | 1;
        knobs_from_env();
        atomic_store_explicit(
            &hak_ready, 1, memory_order_release); /* malloc works from here: the rest may recurse */
        shm_open_own();
        hak_tkey_ready = pthread_key_create(&hak_tkey, hak_thread_exit) == 0;
        pthread_atfork(fork_prepare, fork_parent, fork_child);
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
