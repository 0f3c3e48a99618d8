/* shm_access.c — reading counters, figures and knobs from a validated view,
 * and writing knobs (owner, time, reason, generation). Every accessor
 * re-checks the header fields it uses: the segment may change under us. */
#include "shm_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* The row table as the header describes it now, re-checked. */
struct slot_geo {
    uint32_t off, n, size, coff, cslots, n_ctrs, tag;
};

static int slot_geo(const struct hak_shm_view *v, struct slot_geo *g) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h) return -1;
    g->n_ctrs = LOAD(&h->n_ctrs), g->cslots = LOAD(&h->ctr_cslots);
    g->off = LOAD(&h->slot_off), g->n = LOAD(&h->n_slots), g->size = LOAD(&h->slot_size);
    g->coff = LOAD(&h->slot_ctr_off), g->tag = LOAD(&h->row_tag_off);
    if (g->n > MAX_SLOTS || g->cslots > MAX_CSLOTS || g->n_ctrs > MAX_CTRS ||
        !shm_row_ok(g->coff, g->n_ctrs, g->tag, g->size) ||
        !shm_table_ok(g->off, g->n, g->size, 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return -1;
    return 0;
}

/* Where the counters are read from without allocating the row table's
 * holes. The allocator gives rows out in order (as heaps first count in a
 * class; an exited thread's heap and rows, counts included, pass to the
 * next thread), so most of the table is pages no one ever wrote: holes of
 * the tmpfs file or memfd, which a read through the shared mapping would
 * allocate.
 *  - For all counters at once (hak_shm_ctr_sums), a copy by pread() of the
 *    extents that hold data (SEEK_DATA/SEEK_HOLE), holes left zero, when
 *    /proc/self/map_files gives us the mapped file (root: it needs
 *    CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE). Exact: a page swapped out is
 *    data, read back.
 *  - Else the mapping, skipping pages mincore() says are not in memory. A
 *    page swapped out reads as not in memory: its counts are missed until it
 *    is back.
 *  - Else (mincore failed) the whole mapping, as readers did before. */
struct slots {
    const char *base;     /* the slot table: in the copy, or in the mapping */
    uintptr_t origin;     /* where file offset 0 would be in that memory */
    char *copy;           /* the copy, or NULL: the mapping */
    unsigned char *vec;   /* a byte per file page from page0: bit 0 = holds data; */
    size_t page0, npages; /* NULL: read every page (mincore failed) */
    uintptr_t pg;
    unsigned char small[1024]; /* vec for up to 4 MB: no malloc per call */
};

/* The copy: 0, or -1 if it cannot be made (then the mapping is read). */
static int slots_copy(const struct hak_shm_view *v, const struct slot_geo *g, struct slots *r) {
    char path[80];
    uintptr_t lo = (uintptr_t)v->hdr, hi = lo + ((v->len + r->pg - 1) & ~(r->pg - 1));
    snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", (unsigned long)lo,
             (unsigned long)hi);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    off_t from = g->off, to = from + (off_t)g->n * g->size;
    r->copy = calloc(1, (size_t)(to - from) + 1);
    int ok = r->copy != NULL;
    for (off_t d = from, h; ok && d < to; d = h) {
        if ((d = lseek(fd, d, SEEK_DATA)) < 0) {
            ok = errno == ENXIO; /* no data past d; else SEEK_DATA unsupported */
            break;
        }
        if (d >= to) break;
        if ((h = lseek(fd, d, SEEK_HOLE)) < 0) ok = 0;
        if (h > to) h = to;
        /* a short read (the file shrank) leaves zeros */
        if (ok && pread(fd, r->copy + (d - from), (size_t)(h - d), d) < 0) ok = 0;
        for (size_t i = (size_t)d / r->pg; ok && i <= (size_t)(h - 1) / r->pg; i++)
            r->vec[i - r->page0] = 1;
    }
    close(fd);
    if (!ok) {
        free(r->copy);
        r->copy = NULL;
        return -1;
    }
    /* from here on, read the copy */
    r->base = r->copy;
    r->origin = (uintptr_t)r->copy - (uintptr_t)from;
    return 0;
}

/* copy: try the copy first (a pass over every counter: worth its system
 * calls; a single counter reads the mapping). */
static void slots_get(const struct hak_shm_view *v, const struct slot_geo *g, struct slots *r,
                      int copy) {
    memset(r, 0, sizeof *r);
    r->pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uint64_t from = g->off, to = from + (uint64_t)g->n * g->size;
    r->page0 = (size_t)(from / r->pg);
    r->npages = (size_t)((to + r->pg - 1) / r->pg) - r->page0;
    r->origin = (uintptr_t)v->hdr;
    r->base = (const char *)v->hdr + from;
    r->vec = r->npages <= sizeof r->small ? r->small : calloc(r->npages, 1);
    if (!r->vec) return; /* read every page */
    if (copy && slots_copy(v, g, r) == 0) return;
    memset(r->vec, 0, r->npages);
    if (mincore((char *)v->hdr + r->page0 * r->pg, r->npages * r->pg, r->vec) != 0) {
        if (r->vec != r->small) free(r->vec); /* cannot tell: read as before */
        r->vec = NULL;
    }
}

static void slots_put(struct slots *r) {
    free(r->copy);
    if (r->vec != r->small) free(r->vec);
}

static int has_data(const struct slots *r, const void *p) {
    size_t i = ((uintptr_t)p - r->origin) / r->pg - r->page0;
    return !r->vec || (i < r->npages && (r->vec[i] & 1));
}

uint64_t hak_shm_ctr_sum(const struct hak_shm_view *v, int cls, int ctr) {
    struct slot_geo g;
    struct slots r;
    if (!hdr_of(v) || ctr < 0 || ctr >= HAK_NUM_CTRS || v->ctr_map[ctr] < 0 || cls < 0 ||
        slot_geo(v, &g) != 0 || (uint32_t)cls >= g.cslots || (uint32_t)v->ctr_map[ctr] >= g.n_ctrs)
        return 0;
    slots_get(v, &g, &r, 0);
    uint64_t sum = 0; /* wraps: per-row differences (large bytes) sum correctly */
    for (uint32_t s = 0; s < g.n; s++) {
        const char *row = r.base + (uint64_t)s * g.size;
        const uint32_t *tag = (const uint32_t *)(row + g.tag);
        if (!has_data(&r, tag) || LOAD(tag) != (uint32_t)cls + 1) continue;
        const uint64_t *p = (const uint64_t *)(row + g.coff) + v->ctr_map[ctr];
        if (has_data(&r, p)) sum += LOAD(p);
    }
    slots_put(&r);
    return sum;
}

int hak_shm_ctr_sums(const struct hak_shm_view *v, int ncls, uint64_t (*sums)[HAK_NUM_CTRS]) {
    struct slot_geo g;
    struct slots r;
    if (ncls < 0 || !sums) return -1;
    memset(sums, 0, sizeof *sums * ((size_t)ncls + 1));
    if (slot_geo(v, &g) != 0) return 0; /* nothing readable: zeros, as hak_shm_ctr_sum */
    slots_get(v, &g, &r, 1);
    for (uint32_t s = 0; s < g.n; s++) {
        const char *row = r.base + (uint64_t)s * g.size;
        const uint64_t *ctr = (const uint64_t *)(row + g.coff);
        const uint32_t *tag = (const uint32_t *)(row + g.tag);
        if (!has_data(&r, tag)) continue;
        uint32_t c = LOAD(tag) - 1; /* an unused row (0) wraps past every class */
        if (c > (uint32_t)ncls || c >= g.cslots) continue;
        for (int k = 0; k < HAK_NUM_CTRS; k++) {
            int i = v->ctr_map[k];
            if (i < 0 || (uint32_t)i >= g.n_ctrs) continue;
            if (has_data(&r, ctr + i)) sums[c][k] += LOAD(ctr + i);
        }
    }
    slots_put(&r);
    return 0;
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
    uint32_t off = LOAD(&h->knob_val_off), n = LOAD(&h->n_knob_vals), cs = LOAD(&h->knob_cslots);
    uint32_t vs = LOAD(&h->knob_val_size), nc = LOAD(&h->n_classes), at = LOAD(&d->val_index);
    /* the values the segment's directory gives the knob: a row, or one */
    uint32_t width = LOAD(&d->scope) == HAK_SCOPE_CLASS ? cs : 1;
    if (hak_knob_defs[knob].scope == HAK_SCOPE_GLOBAL)
        cls = 0; /* global: index 0 */
    else if ((uint32_t)cls >= nc)
        return NULL;
    if ((uint32_t)cls >= width || cs > MAX_CSLOTS || (uint64_t)at + width > n ||
        vs < sizeof(struct hak_shm_knob_val) || vs % 8 ||
        !shm_table_ok(off, n, vs, 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return NULL;
    uint64_t i = (uint64_t)at + (uint64_t)cls;
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
    int written = 0, pinned = 0;
    for (int c = c0; c < c1; c++) {
        struct hak_shm_knob_val *kv = hak_shm_knob(v, knob, c);
        if (!kv) continue;
        uint32_t was = __atomic_load_n(&kv->owner, __ATOMIC_RELAXED);
        if (owner == HAK_OWNER_DAEMON && was != HAK_OWNER_DEFAULT && was != HAK_OWNER_DAEMON) {
            pinned++;
            continue;
        }
        written++;
        __atomic_store_n(&kv->value, value, __ATOMIC_RELAXED);
        __atomic_store_n(&kv->owner, (uint32_t)owner, __ATOMIC_RELAXED);
        __atomic_store_n(&kv->set_ns, t, __ATOMIC_RELAXED);
        /* display only; kept NUL-terminated at every instant */
        memset(kv->reason, 0, sizeof kv->reason);
        if (reason) memcpy(kv->reason, reason, strnlen(reason, sizeof kv->reason - 1));
    }
    /* release: a thread that sees the new generation sees the values */
    if (written) __atomic_fetch_add(&v->hdr->knob_gen, 1, __ATOMIC_RELEASE);
    lock_drop(v->hdr, me);
    return pinned && !written ? HAK_SHM_PINNED : HAK_SHM_OK;
}

void hak_shm_request_trim(struct hak_shm_view *v) {
    if (!v || !v->hdr || !v->writable) return;
    __atomic_fetch_add(&v->hdr->trim_req, 1, __ATOMIC_RELEASE);
    /* wakes the process's background purger, asleep on the word's low half */
    syscall(SYS_futex, (uint32_t *)&v->hdr->trim_req, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
