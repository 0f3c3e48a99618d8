/* hakctl_model.c — the figures hakctl shows, derived in one place from the
 * raw counters (hak_shm_ctr_sums) so ps, stats, top and --json agree.
 *
 *   live blocks    = allocs - frees
 *   in use bytes   = sum(live * size) + large class LARGE_BYTES (current bytes)
 *   thread cache   = refill_blocks + frees - allocs - flush_blocks   (blocks)
 *   cached bytes   = (span_blocks - live) * size: free capacity of the class's
 *                    slabs plus thread caches; + large_cached_bytes
 *   fast-path hit% = (allocs - alloc_slow) / allocs
 *   rates          = counter deltas between two samples / elapsed time
 *
 * Slots are summed while their threads run, so a figure can be momentarily
 * inconsistent (a free counted before its alloc): differences clamp at 0. */
#include "hakctl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double hk_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t sub0(uint64_t a, uint64_t b) {
    return a > b ? a - b : 0;
}

int hk_sample_take(const struct hak_shm_view *v, struct hk_sample *s) {
    int n = hak_shm_nclasses(v);
    memset(s, 0, sizeof *s);
    s->size = calloc((size_t)n + 1, sizeof *s->size);
    s->ctr = calloc((size_t)n + 1, sizeof *s->ctr);
    if (!s->size || !s->ctr) {
        hk_sample_free(s);
        return -1;
    }
    s->ncls = n;
    s->t = hk_mono();
    for (int c = 0; c <= n; c++) s->size[c] = c < n ? hak_shm_class_size(v, c) : 0;
    /* one pass over the slots, reading only pages that hold counts */
    if (hak_shm_ctr_sums(v, n, s->ctr) != 0) {
        hk_sample_free(s);
        return -1;
    }
    for (int p = 0; p < HAK_NUM_PROCS; p++) s->proc[p] = hak_shm_proc(v, p);
    return 0;
}

void hk_sample_free(struct hk_sample *s) {
    free(s->size);
    free(s->ctr);
    s->size = NULL;
    s->ctr = NULL;
}

static void derive_cls(struct hk_cls *o, const struct hk_sample *cur, const struct hk_sample *prev,
                       int c, double dt) {
    const uint64_t *k = cur->ctr[c];
    uint64_t a = k[HAK_CTR_ALLOCS], f = k[HAK_CTR_FREES];
    o->cls = c;
    o->size = cur->size[c];
    o->c = k;
    o->live = sub0(a, f);
    o->tcache = sub0(k[HAK_CTR_REFILL_BLOCKS] + f, a + k[HAK_CTR_FLUSH_BLOCKS]);
    o->cached = sub0(k[HAK_CTR_SPAN_BLOCKS], o->live) * o->size;
    o->hit = a ? (double)sub0(a, k[HAK_CTR_ALLOC_SLOW]) * 100.0 / (double)a : -1;
    if (prev && dt > 0 && c <= prev->ncls) {
        const uint64_t *p = prev->ctr[c == cur->ncls ? prev->ncls : c];
        o->alloc_s = (double)sub0(a, p[HAK_CTR_ALLOCS]) / dt;
        o->free_s = (double)sub0(f, p[HAK_CTR_FREES]) / dt;
    }
}

int hk_derive(const struct hk_sample *prev, const struct hk_sample *cur, struct hk_figs *f) {
    int n = cur->ncls;
    uint64_t hits = 0, small_allocs = 0;
    memset(f, 0, sizeof *f);
    f->cl = calloc((size_t)n + 1, sizeof *f->cl);
    if (!f->cl) return -1;
    f->ncls = n;
    f->interval = prev ? cur->t - prev->t : 0;
    for (int c = 0; c <= n; c++) {
        struct hk_cls *o = &f->cl[c];
        derive_cls(o, cur, prev, c, f->interval);
        f->allocs += o->c[HAK_CTR_ALLOCS];
        f->frees += o->c[HAK_CTR_FREES];
        f->alloc_s += o->alloc_s;
        f->free_s += o->free_s;
        if (c == n) break;
        f->in_use += o->live * o->size;
        f->cached += o->cached;
        small_allocs += o->c[HAK_CTR_ALLOCS];
        hits += sub0(o->c[HAK_CTR_ALLOCS], o->c[HAK_CTR_ALLOC_SLOW]);
    }
    /* Large class: LARGE_BYTES is current bytes in use; per-slot values may
     * wrap (freed by another thread), their sum does not: read as signed. */
    int64_t lb = (int64_t)cur->ctr[n][HAK_CTR_LARGE_BYTES];
    f->large_in_use = lb > 0 ? (uint64_t)lb : 0;
    f->cl[n].cached = cur->proc[HAK_PROC_LARGE_CACHED];
    f->in_use += f->large_in_use;
    f->cached += f->cl[n].cached;
    f->hit = small_allocs ? (double)hits * 100.0 / (double)small_allocs : -1;
    f->ops_s = f->alloc_s + f->free_s;
    return 0;
}

void hk_figs_free(struct hk_figs *f) {
    free(f->cl);
    f->cl = NULL;
}

int hk_cls_active(const struct hk_cls *c) {
    return c->c[HAK_CTR_ALLOCS] || c->c[HAK_CTR_FREES] || c->c[HAK_CTR_SPAN_BLOCKS];
}

const char *hk_owner_name(uint32_t owner) {
    return owner <= HAK_OWNER_MANUAL ? hak_owner_names[owner] : "?";
}

/* "default", or e.g. "manual:1,env:2": how many knobs each owner set (a
 * per-class knob counts once per owner, however many classes it set). */
void hk_owner_summary(const struct hak_shm_view *v, char *buf, size_t n) {
    static const int order[] = {HAK_OWNER_MANUAL, HAK_OWNER_DAEMON, HAK_OWNER_ENV};
    int count[4] = {0}, ncls = hak_shm_nclasses(v);
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        int seen[4] = {0};
        int last = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? ncls : 1;
        for (int c = 0; c < last; c++) {
            const struct hak_shm_knob_val *kv = hak_shm_knob(v, k, c);
            uint32_t o = kv ? __atomic_load_n(&kv->owner, __ATOMIC_RELAXED) : 0;
            if (o <= HAK_OWNER_MANUAL) seen[o] = 1;
        }
        for (int o = 1; o < 4; o++) count[o] += seen[o];
    }
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < 3; i++)
        if (count[order[i]] && len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%s:%d", len ? "," : "",
                                    hak_owner_names[order[i]], count[order[i]]);
    if (!len) snprintf(buf, n, "default");
}

double hk_uptime(const struct hak_shm_view *v) {
    struct timespec ts;
    uint64_t c = __atomic_load_n(&v->hdr->created_ns, __ATOMIC_RELAXED);
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec / 1e9, t0 = (double)c / 1e9;
    return c && t0 <= now + 1 ? (now > t0 ? now - t0 : 0) : -1;
}
