/* shm_access.c — reading counters, figures and knobs from a validated view,
 * and writing knobs (owner, time, reason, generation). Every accessor
 * re-checks the header fields it uses: the segment may change under us. */
#include "shm_private.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* --------------------------------------------------------------- reading */

static const struct hak_shm_header *hdr_of(const struct hak_shm_view *v) {
    return v && v->hdr ? v->hdr : NULL;
}

int hak_shm_nclasses(const struct hak_shm_view *v) {
    const struct hak_shm_header *h = hdr_of(v);
    uint32_t n = h ? LOAD(&h->n_classes) : 0;
    return n <= MAX_CLASSES ? (int)n : 0;
}

uint32_t hak_shm_class_size(const struct hak_shm_view *v, int cls) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || cls < 0) return 0;
    uint32_t n = LOAD(&h->n_classes), off = LOAD(&h->class_off);
    if ((uint32_t)cls >= n || !shm_table_ok(off, n, 4, 4, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return 0;
    return LOAD((const uint32_t *)((const char *)h + off) + cls);
}

uint64_t hak_shm_ctr_sum(const struct hak_shm_view *v, int cls, int ctr) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || ctr < 0 || ctr >= HAK_NUM_CTRS || v->ctr_map[ctr] < 0 || cls < 0) return 0;
    uint32_t n_ctrs = LOAD(&h->n_ctrs), cslots = LOAD(&h->ctr_cslots);
    uint32_t off = LOAD(&h->slot_off), n = LOAD(&h->n_slots), size = LOAD(&h->slot_size);
    uint32_t coff = LOAD(&h->slot_ctr_off);
    uint64_t idx = HAK_CTR_INDEX(cls, v->ctr_map[ctr], cslots);
    if ((uint32_t)cls >= cslots || (uint32_t)v->ctr_map[ctr] >= n_ctrs || n > MAX_SLOTS ||
        coff % 8 || (uint64_t)coff + (idx + 1) * 8 > size ||
        !shm_table_ok(off, n, size, 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return 0;
    uint64_t sum = 0; /* wraps: per-slot differences (large bytes) sum correctly */
    for (uint32_t s = 0; s < n; s++)
        sum += LOAD((const uint64_t *)((const char *)h + off + (uint64_t)s * size + coff) + idx);
    return sum;
}

uint64_t hak_shm_proc(const struct hak_shm_view *v, int proc) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || proc < 0 || proc >= HAK_NUM_PROCS || v->proc_map[proc] < 0) return 0;
    uint32_t off = LOAD(&h->proc_off), n = LOAD(&h->n_proc);
    if ((uint32_t)v->proc_map[proc] >= n ||
        !shm_table_ok(off, n, 8, 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return 0;
    return LOAD((const uint64_t *)((const char *)h + off) + v->proc_map[proc]);
}

/* Directory entry of our knob in the segment, bounds re-checked. */
static const struct hak_shm_knob_desc *knob_desc(const struct hak_shm_view *v, int knob) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || knob < 0 || knob >= HAK_NUM_KNOBS || v->knob_map[knob] < 0) return NULL;
    uint32_t off = LOAD(&h->knob_dir_off), n = LOAD(&h->n_knobs);
    if ((uint32_t)v->knob_map[knob] >= n ||
        !shm_table_ok(off, n, sizeof(struct hak_shm_knob_desc), 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return NULL;
    return (const struct hak_shm_knob_desc *)((const char *)h + off) + v->knob_map[knob];
}

struct hak_shm_knob_val *hak_shm_knob(const struct hak_shm_view *v, int knob, int cls) {
    const struct hak_shm_knob_desc *d = knob_desc(v, knob);
    if (!d || cls < 0) return NULL;
    const struct hak_shm_header *h = v->hdr;
    uint32_t off = LOAD(&h->knob_val_off), n = LOAD(&h->n_knobs), cs = LOAD(&h->knob_cslots);
    uint32_t vs = LOAD(&h->knob_val_size), nc = LOAD(&h->n_classes);
    if (hak_knob_defs[knob].scope == HAK_SCOPE_GLOBAL)
        cls = 0; /* global: index 0 */
    else if ((uint32_t)cls >= nc)
        return NULL;
    if ((uint32_t)cls >= cs || cs > MAX_CSLOTS || vs < sizeof(struct hak_shm_knob_val) || vs % 8 ||
        !shm_table_ok(off, (uint64_t)n * cs, vs, 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return NULL;
    uint64_t i = (uint64_t)v->knob_map[knob] * cs + (uint64_t)cls;
    return (struct hak_shm_knob_val *)((char *)v->hdr + off + i * vs);
}

int hak_shm_knob_range(const struct hak_shm_view *v, int knob, int cls, int64_t *min, int64_t *max,
                       int64_t *def) {
    const struct hak_shm_knob_desc *d = knob_desc(v, knob);
    if (!d) return HAK_SHM_ENOENT;
    const struct hak_knob_def *o = &hak_knob_defs[knob];
    /* The stricter of the two ranges: the process's own and ours. */
    int64_t lo = LOAD(&d->min), hi = LOAD(&d->max), df = LOAD(&d->def);
    lo = lo > o->min ? lo : o->min;
    hi = hi < o->max ? hi : o->max;
    if (lo > hi) lo = hi = o->def >= 0 ? o->def : o->min; /* disjoint: a bad directory */
    if (df == -1) df = hak_knob_default(knob, cls < 0 ? 0 : cls);
    df = df < lo ? lo : df > hi ? hi : df;
    if (min) *min = lo;
    if (max) *max = hi;
    if (def) *def = df;
    return HAK_SHM_OK;
}

/* --------------------------------------------------------------- writing */

static int64_t now_ns(int clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int holder_dead(uint32_t holder) {
    return holder > INT_MAX || (kill((pid_t)holder, 0) != 0 && errno == ESRCH);
}

/* Takes writer_lock (our pid in it). A holder that died, or that holds it
 * longer than any writer should (~100 ms), loses it: knob values are only
 * hints the allocator clamps, so a rare overlap is harmless, a hang is not. */
static uint32_t lock_take(struct hak_shm_header *h) {
    uint32_t me = (uint32_t)getpid();
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + LOCK_STEAL_NS;
    for (;;) {
        uint32_t cur = 0;
        if (__atomic_compare_exchange_n(&h->writer_lock, &cur, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return me;
        if ((cur != me && holder_dead(cur)) || now_ns(CLOCK_MONOTONIC) > deadline) {
            if (__atomic_compare_exchange_n(&h->writer_lock, &cur, me, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return me;
            continue;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void lock_drop(struct hak_shm_header *h, uint32_t me) {
    /* only if still ours: a stealer's lock is not ours to release */
    __atomic_compare_exchange_n(&h->writer_lock, &me, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int hak_shm_knob_set(struct hak_shm_view *v, int knob, int cls, int64_t value, int owner,
                     const char *reason) {
    int64_t lo, hi;
    if (!v || !v->hdr || knob < 0 || knob >= HAK_NUM_KNOBS || owner < HAK_OWNER_DEFAULT ||
        owner > HAK_OWNER_MANUAL)
        return -EINVAL;
    if (!v->writable) return HAK_SHM_EACCES;
    if (hak_shm_knob_range(v, knob, cls, &lo, &hi, NULL) != HAK_SHM_OK) return HAK_SHM_ENOENT;
    if (value < lo || value > hi) return -ERANGE;
    int c0 = 0, c1 = 1; /* classes [c0, c1) */
    if (hak_knob_defs[knob].scope == HAK_SCOPE_CLASS) {
        int n = hak_shm_nclasses(v);
        if (cls >= n || cls < -1) return -EINVAL;
        if (cls >= 0)
            c0 = cls, c1 = cls + 1;
        else
            c1 = n;
    } else if (cls > 0 || cls < -1) {
        return -EINVAL;
    }
    uint64_t t = (uint64_t)now_ns(CLOCK_REALTIME);
    uint32_t me = lock_take(v->hdr);
    for (int c = c0; c < c1; c++) {
        struct hak_shm_knob_val *kv = hak_shm_knob(v, knob, c);
        if (!kv) continue;
        __atomic_store_n(&kv->value, value, __ATOMIC_RELAXED);
        __atomic_store_n(&kv->owner, (uint32_t)owner, __ATOMIC_RELAXED);
        __atomic_store_n(&kv->set_ns, t, __ATOMIC_RELAXED);
        /* display only; kept NUL-terminated at every instant */
        memset(kv->reason, 0, sizeof kv->reason);
        if (reason) memcpy(kv->reason, reason, strnlen(reason, sizeof kv->reason - 1));
    }
    /* release: a thread that sees the new generation sees the values */
    __atomic_fetch_add(&v->hdr->knob_gen, 1, __ATOMIC_RELEASE);
    lock_drop(v->hdr, me);
    return HAK_SHM_OK;
}

void hak_shm_request_trim(struct hak_shm_view *v) {
    if (!v || !v->hdr || !v->writable) return;
    __atomic_fetch_add(&v->hdr->trim_req, 1, __ATOMIC_RELEASE);
    /* wakes the process's background purger, asleep on the word's low half */
    syscall(SYS_futex, (uint32_t *)&v->hdr->trim_req, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
