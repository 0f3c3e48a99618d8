/* sample.c — one record per process per tick: the deltas of its segment's
 * counters (per class), of /proc/PID/stat (minor faults, CPU time), of its
 * BPF counts when BPF is on, and its cgroup's memory events, as rates per
 * second; plus the knob values and owners now in force.
 *
 * Cheap for idle processes: a process whose CPU time did not move since the
 * last tick did no allocations worth counting, so its segment is not read
 * (its rates are zero). */
#include "hakd.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int ctr_ids[S_N] = {
    [S_ALLOCS] = HAK_CTR_ALLOCS,       [S_FREES] = HAK_CTR_FREES,
    [S_ASLOW] = HAK_CTR_ALLOC_SLOW,    [S_FSLOW] = HAK_CTR_FREE_SLOW,
    [S_REFILLS] = HAK_CTR_REFILLS,     [S_FLUSHES] = HAK_CTR_FLUSHES,
    [S_REMOTE] = HAK_CTR_REMOTE_FREES, [S_RBLK] = HAK_CTR_REFILL_BLOCKS,
    [S_FBLK] = HAK_CTR_FLUSH_BLOCKS,   [S_SPANBLK] = HAK_CTR_SPAN_BLOCKS,
    [S_PUBLISHED] = HAK_CTR_PUBLISHED,
};

static int read_file(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t k = read(fd, buf, n - 1);
    close(fd);
    if (k <= 0) return -1;
    buf[k] = 0;
    return 0;
}

/* Minor faults (field 10) and utime + stime (14, 15) in clock ticks. The
 * file stays open: one pread a tick instead of open, read and close. */
static int proc_stat(struct hakd_proc *p, uint64_t *minflt, uint64_t *cpu) {
    char buf[1024];
    unsigned long long mf, ut, stt;
    if (p->stat_fd < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", p->pid);
        p->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (p->stat_fd < 0) return -1;
    }
    ssize_t k = pread(p->stat_fd, buf, sizeof buf - 1, 0);
    if (k <= 0) return -1;
    buf[k] = 0;
    char *q = strrchr(buf, ')');
    if (!q || sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu", &mf, &ut,
                     &stt) != 3)
        return -1;
    *minflt = mf;
    *cpu = ut + stt;
    return 0;
}

double hakd_read_psi(const char *path) {
    char buf[512];
    double v = 0;
    if (read_file(path, buf, sizeof buf) == 0) {
        const char *s = strstr(buf, "some avg10=");
        if (s) v = strtod(s + 11, NULL);
    }
    return v;
}

/* cgroup v2: "high" events since the last tick, and how near memory.high.
 * The directory is the process's own cgroup, or the config's cgroup_dir. */
static void cgroup_sample(const struct hakd_state *st, struct hakd_proc *p) {
    char path[320], buf[1024];
    const char *dir = st->cfg.cgroup_dir[0] ? st->cfg.cgroup_dir : p->cgroup;
    p->rec.cg_high_events = 0;
    p->rec.cg_near = 0;
    if (!dir[0]) return;
    snprintf(path, sizeof path, "%s/memory.events", dir);
    if (read_file(path, buf, sizeof buf) == 0) {
        const char *s = strncmp(buf, "high ", 5) == 0 ? buf : strstr(buf, "\nhigh ");
        if (s) { /* stored + 1: 0 means not read yet */
            uint64_t high = strtoull(s + (*s == '\n' ? 6 : 5), NULL, 10) + 1;
            if (p->cg_high_prev && high > p->cg_high_prev) p->rec.cg_high_events = 1;
            p->cg_high_prev = high;
        }
    }
    char hi[64], cur[64];
    snprintf(path, sizeof path, "%s/memory.high", dir);
    if (read_file(path, hi, sizeof hi) != 0 || strncmp(hi, "max", 3) == 0) return;
    snprintf(path, sizeof path, "%s/memory.current", dir);
    if (read_file(path, cur, sizeof cur) != 0) return;
    double h = strtod(hi, NULL), c = strtod(cur, NULL);
    if (h > 0) p->rec.cg_near = c / h;
}

/* Knob values and owners in force. A value outside the compiled range means
 * the segment is not ready (the allocator fills its knobs in just after it
 * creates the file) or not sane: the process is not tuned until it is. */
static void read_knobs(struct hakd_proc *p) {
    int nc = hak_shm_nclasses(&p->view);
    p->knobs_ok = 1;
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        int last = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES : 1;
        p->knobs.present[k] = 0;
        for (int c = 0; c < last; c++) {
            struct hak_shm_knob_val *kv = c < nc || last == 1 ? hak_shm_knob(&p->view, k, c) : NULL;
            if (!kv) {
                p->knobs.owner[k][c] = HAK_OWNER_MANUAL; /* absent: never touched */
                continue;
            }
            p->knobs.present[k] = 1;
            p->knobs.val[k][c] = __atomic_load_n(&kv->value, __ATOMIC_RELAXED);
            if (p->knobs.val[k][c] < hak_knob_defs[k].min ||
                p->knobs.val[k][c] > hak_knob_defs[k].max)
                p->knobs_ok = 0;
            uint32_t o = __atomic_load_n(&kv->owner, __ATOMIC_RELAXED);
            p->knobs.owner[k][c] = o <= HAK_OWNER_MANUAL ? (uint8_t)o : HAK_OWNER_MANUAL;
        }
    }
}

static double delta(uint64_t now, uint64_t before) {
    return now >= before ? (double)(now - before) : 0; /* a reset reads as no change */
}

/* The share of frees that free another thread's block. The allocator counts
 * a foreign block only when it leaves the freeing thread's cache (a flush
 * to its owner's span, REMOTE_FREES); a foreign block that the freeing
 * thread allocates again from its cache is never counted. In a producer /
 * consumer pair the consumer's frees are foreign and mostly served again by
 * its own cache: remote / frees reads 1-3 %, a "local" program. The flushed
 * blocks are a sample of what passed through the caches, so remote / flushed
 * estimates the share, once enough blocks were flushed to judge; below that
 * (a program whose caches absorb all its frees) remote / frees. Blocks freed
 * after the freeing thread's heap is gone count as remote without a flush:
 * the share is capped at 1. */
#define SHARE_MIN_FLUSHED 256.0
double hakd_remote_share(double frees, double flushed, double remote) {
    if (flushed >= SHARE_MIN_FLUSHED) return remote >= flushed ? 1 : remote / flushed;
    return frees > 0 ? (remote >= frees ? 1 : remote / frees) : 0;
}

static void rates(struct hakd_proc *p, const struct hakd_raw *a, const struct hakd_raw *b) {
    struct hakd_rec *r = &p->rec;
    double dt = (double)(b->t_ns - a->t_ns) / 1e9;
    long hz = sysconf(_SC_CLK_TCK);
    int nc = hak_shm_nclasses(&p->view);
    memset(r, 0, offsetof(struct hakd_rec, cg_high_events));
    if (dt <= 0) return;
    r->valid = 1;
    r->dt = dt;
    r->cpu = delta(b->cpu_ticks, a->cpu_ticks) / (double)(hz > 0 ? hz : 100) / dt;
    r->minflt = delta(b->minflt, a->minflt) / dt;
    if (a->bpf_ok && b->bpf_ok) {
        r->faults = delta(b->bpf.faults, a->bpf.faults) / dt;
        r->mmap_calls = delta(b->bpf.mmap_calls, a->bpf.mmap_calls) / dt;
        r->munmap_calls = delta(b->bpf.munmap_calls, a->bpf.munmap_calls) / dt;
        r->munmap_bps = delta(b->bpf.munmap_bytes, a->bpf.munmap_bytes) / dt;
        r->madvise_calls = delta(b->bpf.madvise_calls, a->bpf.madvise_calls) / dt;
    }
    r->released_bps = delta(b->released, a->released) / dt;
    r->large_cached = (double)b->large_cached;
    r->threads = (double)b->threads;
    double frees = 0, remote = 0, flushed = 0;
    for (int c = 0; c < HAKD_NCLS && c <= nc; c++) {
        double al = delta(b->ctr[S_ALLOCS][c], a->ctr[S_ALLOCS][c]);
        double fr = delta(b->ctr[S_FREES][c], a->ctr[S_FREES][c]);
        r->cls_ops[c] = (al + fr) / dt;
        r->aslow[c] = al > 0 ? delta(b->ctr[S_ASLOW][c], a->ctr[S_ASLOW][c]) / al : 0;
        r->fslow[c] = fr > 0 ? delta(b->ctr[S_FSLOW][c], a->ctr[S_FSLOW][c]) / fr : 0;
        r->refills[c] = delta(b->ctr[S_REFILLS][c], a->ctr[S_REFILLS][c]) / dt;
        r->flushes[c] = delta(b->ctr[S_FLUSHES][c], a->ctr[S_FLUSHES][c]) / dt;
        r->remote[c] = delta(b->ctr[S_REMOTE][c], a->ctr[S_REMOTE][c]) / dt;
        r->published += delta(b->ctr[S_PUBLISHED][c], a->ctr[S_PUBLISHED][c]) / dt;
        r->ops += r->cls_ops[c];
        frees += fr;
        remote += r->remote[c] * dt;
        flushed += delta(b->ctr[S_FBLK][c], a->ctr[S_FBLK][c]);
        if (c < nc) { /* free room of existing spans, thread caches included */
            double live = (double)(b->ctr[S_ALLOCS][c] - b->ctr[S_FREES][c]);
            double room = (double)b->ctr[S_SPANBLK][c] - live;
            r->cached[c] = room > 0 ? room * hak_shm_class_size(&p->view, c) : 0;
        } else {
            r->large_ops = r->cls_ops[c];
            r->cached[c] = r->large_cached;
        }
        r->cached_total += r->cached[c];
    }
    r->remote_share = hakd_remote_share(frees, flushed, remote);
    r->remote_counted = frees > 0 ? remote / frees : 0;
}

/* A SIGBUS while reading p's segment: someone truncated the file. */
void hakd_segment_lost(struct hakd_state *st, struct hakd_proc *p) {
    hakd_log(HAKD_WARN, "pid %d: segment %s truncated under us (SIGBUS): dropping it", p->pid,
             p->path);
    p->broken = 1;
    st->errors_total++;
}

void hakd_sample(struct hakd_state *st, struct hakd_proc *p) {
    struct hakd_raw *prev = &p->raw[p->cur], *now = &p->raw[!p->cur];
    sigjmp_buf jb;
    if (proc_stat(p, &now->minflt, &now->cpu_ticks) != 0) {
        p->dead = 1;
        return;
    }
    now->t_ns = hakd_now_ns();
    if (sigsetjmp(jb, 0)) {
        hakd_bus_jmp = NULL;
        hakd_segment_lost(st, p);
        return;
    }
    hakd_bus_jmp = &jb;
    int idle = prev->valid && now->cpu_ticks == prev->cpu_ticks;
    uint64_t gen = __atomic_load_n(&p->view.hdr->knob_gen, __ATOMIC_ACQUIRE);
    if (!idle || !p->knobs_ok || gen != p->knob_gen) { /* an idle process: when written */
        read_knobs(p);
        p->knob_gen = gen;
    }
    if (idle) { /* nothing moved: keep the last reading, rates are zero */
        uint64_t t = now->t_ns, mf = now->minflt, cpu = now->cpu_ticks;
        memcpy(now, prev, sizeof *now);
        now->t_ns = t, now->minflt = mf, now->cpu_ticks = cpu;
    } else {
        int ncls = 0;
        now->valid = hak_shm_ctr_sum_all(&p->view, ctr_ids, S_N, &now->ctr[0][0], S_N * HAKD_NCLS,
                                         &ncls) == HAK_SHM_OK &&
                     ncls <= HAKD_NCLS;
        if (now->valid && ncls < HAKD_NCLS) /* fewer classes: rows to our stride */
            for (int i = S_N - 1; i >= 0; i--) {
                memmove(now->ctr[i], &now->ctr[0][0] + (size_t)i * ncls, ncls * sizeof(uint64_t));
                memset(now->ctr[i] + ncls, 0, (HAKD_NCLS - ncls) * sizeof(uint64_t));
            }
        now->released = hak_shm_proc(&p->view, HAK_PROC_RELEASED);
        now->large_cached = hak_shm_proc(&p->view, HAK_PROC_LARGE_CACHED);
        now->threads = hak_shm_proc(&p->view, HAK_PROC_THREADS);
    }
    hakd_bus_jmp = NULL;
    now->bpf_ok = st->bpf_on && hakd_bpf_read(p->pid, &now->bpf) == 0;
    if (prev->valid && now->valid) {
        rates(p, prev, now);
        if (idle) {
            p->rec.ops = 0;
            memset(p->rec.cls_ops, 0, sizeof p->rec.cls_ops);
        } else {
            cgroup_sample(st, p);
        }
    } else {
        p->rec.valid = 0;
    }
    p->cur = !p->cur;
}
