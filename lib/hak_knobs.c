/* hak_knobs.c — the effective knob values: defaults and HAKMEM_* at start,
 * then whatever a tool writes into the segment, always clamped to the ranges
 * compiled in (the segment may hold any bytes). */
#include "hak_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct hak_knobs hak_knobs;
uint64_t hak_knob_gen_applied;
static hak_lock_t knob_lock;

static bool parse_i64(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* getenv without libc's getenv: fault-around maps up to 64 KiB of libc for
 * each page of it a process runs, and a small program (a shell, `true`)
 * may never call getenv itself. No strlen or strncmp either, for the same
 * reason (written so that the compiler does not make them calls). */
const char *hak_getenv(const char *name) {
    for (char **e = environ; e && *e; e++) {
        const char *s = *e, *n = name;
        while (*n && *s == *n) s++, n++;
        if (!*n && *s == '=') return s + 1;
    }
    return NULL;
}

/* The complaints: cold text (lib/hak_cold.ld), out of knob_set_env, which
 * runs in every process that has a HAKMEM_* variable and so is hot. */
static HAK_NOINLINE void knob_complain(const char *env, bool clamped) {
    hak_log(clamped ? "hakmem: " : "hakmem: ignoring ");
    hak_log(env);
    hak_log(clamped ? " out of range, clamped (see docs/allocator.md for the range)\n"
                    : ": not an integer\n");
}

static void knob_set_env(int k, int cls_from, int cls_to, const char *env) {
    int64_t v;
    const char *s = hak_getenv(env);
    if (!s) return;
    if (!parse_i64(s, &v)) {
        knob_complain(env, false);
        return;
    }
    int64_t c = hak_knob_clamp(k, v);
    if (c != v) knob_complain(env, true);
    for (int cls = cls_from; cls <= cls_to; cls++) {
        hak_knobs.val[hak_knob_slot(k, cls)] = (int32_t)c; /* clamped: fits */
        hak_knobs.owner[hak_knob_slot(k, cls)] = HAK_OWNER_ENV;
    }
}

/* The last class a knob has a value for: a global knob has one. */
static int knob_last_cls(int k) {
    return hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES - 1 : 0;
}

/* Whether any HAKMEM_* variable is set: most processes have none, and
 * each lookup is a walk of the environment (14 at start: 5.8 k instructions
 * in `sh -c true`). */
static bool any_hakmem_env(void) {
    for (char **e = environ; e && *e; e++) {
        const char *s = *e, *n = "HAKMEM_";
        while (*n && *s == *n) s++, n++;
        if (!*n) return true;
    }
    return false;
}

void hak_knobs_init(void) {
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        for (int c = 0; c <= knob_last_cls(k); c++) {
            /* a global knob's default once (STARTER_THREADS' is a system call) */
            hak_knobs.val[hak_knob_slot(k, c)] = (int32_t)hak_knob_default(k, c);
            hak_knobs.owner[hak_knob_slot(k, c)] = HAK_OWNER_DEFAULT;
        }
    if (!any_hakmem_env()) return;
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        knob_set_env(k, 0, knob_last_cls(k), hak_knob_defs[k].env);
    }
    /* the original's hot-class override: classes up to 128 B */
    knob_set_env(HAK_KNOB_REFILL_COUNT, 0, 7, "HAKMEM_TINY_REFILL_COUNT_HOT");
    int64_t v;
    if (parse_i64(hak_getenv("HAKMEM_SAFE_FREE"), &v)) hak_safe_free = v != 0;
    if (parse_i64(hak_getenv("HAKMEM_SHM"), &v)) hak_shm_enabled = v != 0;
}

static struct hak_shm_knob_val *seg_knob(struct hak_shm_header *shm, int k, int c) {
    return (struct hak_shm_knob_val *)((char *)shm + hak_layout.knob_val_off +
                                       ((size_t)hak_layout.knob_val_index[k] + (size_t)c) *
                                           sizeof(struct hak_shm_knob_val));
}

/* Writes the effective knobs into the (new) segment. */
void hak_publish_knobs(void) {
    if (!hak_shm) return;
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        for (int c = 0; c <= knob_last_cls(k); c++) {
            struct hak_shm_knob_val *kv = seg_knob(hak_shm, k, c);
            kv->value = hak_knobs.val[hak_knob_slot(k, c)];
            kv->owner = hak_knobs.owner[hak_knob_slot(k, c)];
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
            for (int c = 0; c <= knob_last_cls(k); c++) {
                struct hak_shm_knob_val *kv = seg_knob(hak_shm, k, c);
                int64_t v = hak_knob_clamp(k, kv->value);
                uint32_t o = kv->owner;
                hak_knobs.val[hak_knob_slot(k, c)] = (int32_t)v;
                hak_knobs.owner[hak_knob_slot(k, c)] =
                    (uint8_t)(o <= HAK_OWNER_MANUAL ? o : HAK_OWNER_MANUAL);
            }
        }
        HAK_SHM_STORE(knob_gen_seen, gen);
        __atomic_store_n(&hak_knob_gen_applied, gen, __ATOMIC_RELEASE);
        HAK_PROC_ADD(KNOB_RELOADS, 1);
        HAK_PROBE1(knob_reload, gen);
    }
    hak_unlock(&knob_lock);
}

/* Fork child: a reload lost half-way leaves a mix of old and new values,
 * each clamped and valid on its own, so only the lock needs releasing. */
void hak_knobs_after_fork(void) {
    if (hak_lock_take_orphan(&knob_lock)) hak_unlock(&knob_lock);
}

/* The daemon's lease ran out (hakmemd died or stopped managing us): every
 * knob the daemon set goes back to its default, so no stale tuning outlives
 * it. Called from the timed part of hak_heap_poll (every 64th slow path);
 * the CAS on lease_ns makes one thread do it, and loses to a renewal. */
void hak_knobs_lease_check(uint64_t now_ns) {
    if (!HAK_SHM_HAS(hak_shm->header_size, lease_ns)) return;
    uint64_t until = HAK_SHM_LOAD(lease_ns);
    if (until == 0 || now_ns < until) return;
    if (!__atomic_compare_exchange_n(&hak_shm->lease_ns, &until, 0, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return;
    struct timespec ts;
    hak_clock(CLOCK_REALTIME, &ts);
    hak_lock(&knob_lock);
    int changed = 0;
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        for (int c = 0; c <= knob_last_cls(k); c++) {
            struct hak_shm_knob_val *kv = seg_knob(hak_shm, k, c);
            if (kv->owner != HAK_OWNER_DAEMON) continue;
            kv->value = hak_knob_default(k, c);
            kv->owner = HAK_OWNER_DEFAULT;
            kv->set_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            memcpy(kv->reason, "daemon lease expired", sizeof "daemon lease expired");
            changed = 1;
        }
    }
    /* the reload below (next poll) applies the values like any tool's write */
    if (changed) __atomic_fetch_add(&hak_shm->knob_gen, 1, __ATOMIC_RELEASE);
    hak_unlock(&knob_lock);
}
