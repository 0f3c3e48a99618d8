/* policy.c — what hakmemd decides, as one table of rules:
 *     signal (from a process's record)  ->  action on one knob  ->  guardrails
 * read top to bottom like the knob table in shm/hakmem_shm.h. The code below
 * the table applies the guardrails every rule shares:
 *   - bounded steps: x2 / /2 (or one fixed value), clamped to the knob's
 *     range and to the config's limits;
 *   - hysteresis: a signal must hold `hold` ticks in a row; a changed knob is
 *     quiet for HAKD_QUIET ticks;
 *   - one experiment at a time per process: the changes of a tick are judged
 *     HAKD_QUIET ticks later by the objective (CPU ns per operation, priced
 *     by memory), and rolled back if it got worse by more than the measured
 *     noise; the step is then not retried for HAKD_BLOCK ticks;
 *   - a total memory budget for thread caches across all processes;
 *   - knobs owned by `manual` (hakctl set) or `env` (HAKMEM_* at start-up: a
 *     person chose them too) are never touched; hakctl reset hands them back;
 *   - phases (hottest size band x remote-free share) remember their best
 *     setting, so a program that returns to a phase gets it back at once.
 * Policies never touch a segment: they return decisions for apply.c. */
#include "hakd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HOT_OPS 1000.0     /* ops/s of a class worth tuning */
#define MISS 0.005         /* miss ratio above which a cache grows */
#define COLD_OPS 1.0       /* ops/s under which a class is cold */
#define IDLE_OPS 10.0      /* ops/s under which a process is idle */
#define CHURN_BPS (16e6)   /* bytes/s handed back to the OS that count as churn */
#define FAULTS_HIGH 5000.0 /* minor faults/s that count as refaulting */
#define PSI_HIGH 10.0      /* % of time some task stalled on memory */
#define MIB (1024.0 * 1024.0)
#define DRAIN_LAZY                                                                                 \
    64 /* drain_interval the daemon grows to at most: a return                                     \
        * of remote frees is answered by one step back to 1 */

typedef int signal_fn(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v);

/* Memory is tight for this process: PSI, its cgroup, or its budget. */
static int pressure(const struct hakd_state *st, const struct hakd_proc *p) {
    const struct hakd_rec *r = &p->rec;
    return st->psi_some10 >= PSI_HIGH || r->cg_high_events || r->cg_near > 0.9 ||
           (st->cfg.memory_budget_mb &&
            r->cached_total > 0.8 * (double)st->cfg.memory_budget_mb * MIB);
}

/* How tight, in %, for the reasons: PSI some avg10, the cgroup's use of
 * memory.high (100 on a new "high" event), the share of the budget cached. */
static double pressure_level(const struct hakd_state *st, const struct hakd_proc *p) {
    const struct hakd_rec *r = &p->rec;
    double v = st->psi_some10;
    if (r->cg_near * 100 > v) v = r->cg_near * 100;
    if (r->cg_high_events && v < 100) v = 100;
    if (st->cfg.memory_budget_mb) {
        double b = r->cached_total / ((double)st->cfg.memory_budget_mb * MIB) * 100;
        v = b > v ? b : v;
    }
    return v;
}

static int64_t knob(const struct hakd_proc *p, int k, int c) {
    return p->knobs.val[k][hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? c : 0];
}

static int above_default(const struct hakd_proc *p, int k, int c) {
    return knob(p, k, c) > hak_knob_default(k, c);
}

/* ------------------------------------------------------------- signals */
static int sig_alloc_miss(const struct hakd_state *st, const struct hakd_proc *p, int c,
                          double *v) {
    *v = p->rec.aslow[c] * 100;
    return p->rec.cls_ops[c] >= HOT_OPS && p->rec.aslow[c] > MISS;
}
static int sig_free_miss(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = p->rec.fslow[c] * 100;
    return p->rec.cls_ops[c] >= HOT_OPS && p->rec.fslow[c] > MISS;
}
/* a refill needs room in the cache: refill_count more than half of fast_cap */
static int sig_cap_room(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = (double)knob(p, HAK_KNOB_REFILL_COUNT, c);
    return p->rec.cls_ops[c] >= HOT_OPS && p->rec.aslow[c] > MISS &&
           2 * knob(p, HAK_KNOB_REFILL_COUNT, c) > knob(p, HAK_KNOB_FAST_CAP, c);
}
static int sig_cold_cap(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = p->rec.cached[c] / 1024;
    return p->rec.ops >= IDLE_OPS && p->rec.cls_ops[c] < COLD_OPS &&
           above_default(p, HAK_KNOB_FAST_CAP, c);
}
static int sig_cold_refill(const struct hakd_state *st, const struct hakd_proc *p, int c,
                           double *v) {
    *v = p->rec.cls_ops[c];
    return p->rec.ops >= IDLE_OPS && p->rec.cls_ops[c] < COLD_OPS &&
           above_default(p, HAK_KNOB_REFILL_COUNT, c);
}
static int sig_tight_cap(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = pressure_level(st, p);
    return pressure(st, p) && p->rec.cached[c] > MIB;
}
static int sig_over_budget(const struct hakd_state *st, const struct hakd_proc *p, int c,
                           double *v);
static int sig_remote_heavy(const struct hakd_state *st, const struct hakd_proc *p, int c,
                            double *v) {
    *v = p->rec.remote_share * 100;
    return p->rec.ops >= HOT_OPS && p->rec.remote_share > 0.10;
}
static int sig_remote_none(const struct hakd_state *st, const struct hakd_proc *p, int c,
                           double *v) {
    double refills = 0;
    for (int i = 0; i < HAK_NUM_CLASSES; i++) refills += p->rec.refills[i];
    *v = refills;
    return p->rec.ops >= HOT_OPS && p->rec.remote_share < 0.001 && refills > 1000 &&
           knob(p, HAK_KNOB_DRAIN_INTERVAL, 0) < DRAIN_LAZY;
}
static int sig_large_churn(const struct hakd_state *st, const struct hakd_proc *p, int c,
                           double *v) {
    const struct hakd_rec *r = &p->rec;
    double churn = r->munmap_bps > r->released_bps ? r->munmap_bps : r->released_bps;
    *v = churn / MIB;
    /* large blocks go back to the kernel as fast as they come: the cache is
     * too small for the working set of freed blocks */
    return !pressure(st, p) && r->large_ops > 2 && churn > CHURN_BPS;
}
static int sig_seg_churn(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    const struct hakd_rec *r = &p->rec;
    double faults = r->faults > r->minflt ? r->faults : r->minflt;
    *v = r->released_bps / MIB;
    return !pressure(st, p) && r->large_ops < 1 && r->released_bps > CHURN_BPS &&
           faults > FAULTS_HIGH;
}
static int sig_refault(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    const struct hakd_rec *r = &p->rec;
    double faults = r->faults > r->minflt ? r->faults : r->minflt;
    *v = faults;
    return !pressure(st, p) && faults > FAULTS_HIGH && r->released_bps > CHURN_BPS / 2;
}
static int sig_tight(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = pressure_level(st, p);
    return pressure(st, p);
}
static int sig_orphans(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = p->rec.published;
    return p->rec.published > 0 && knob(p, HAK_KNOB_ADOPT, 0) == 0;
}
static int sig_idle(const struct hakd_state *st, const struct hakd_proc *p, int c, double *v) {
    *v = p->rec.cached_total / MIB;
    return p->rec.ops < IDLE_OPS && p->rec.cached_total > MIB && !p->ps.trimmed;
}

/* --------------------------------------------------------------- the table
 * name, knob (-1 = trim request), per class, step (+1 x2, -1 /2, 0 = value),
 * floor at the default (shrinks that only undo growth), experiment (judged by
 * the objective and rolled back if worse), hold (ticks), fall (the signal
 * must fall 10 % after the step, else it is undone), signal, reason.      */
struct rule {
    const char *name;
    int knob, per_class, step;
    int64_t value;
    int floor_default, experiment, hold;
    /* the signal's value must fall by 10 % after the step, else the step is
     * undone as useless (e.g. a refill larger than a span gives no more) */
    int must_fall;
    signal_fn *signal;
    const char *reason; /* printf of the signal's value; shown by hakctl get */
};
#define K(id) HAK_KNOB_##id
/* clang-format off */
static const struct rule rules[] = {
 /* name          knob               cls step val flr exp hold       fall signal            reason */
 {"alloc_miss",   K(REFILL_COUNT),    1, +1, 0,  0,  1,  HAKD_HYST, 1, sig_alloc_miss,   "alloc_slow %.1f%% -> grow"},
 {"cap_room",     K(FAST_CAP),        1, +1, 0,  0,  1,  HAKD_HYST, 0, sig_cap_room,     "refill %.0f needs room -> grow"},
 {"free_miss",    K(FAST_CAP),        1, +1, 0,  0,  1,  HAKD_HYST, 1, sig_free_miss,    "free_slow %.1f%% -> grow"},
 {"over_budget",  K(FAST_CAP),        1, -1, 0,  1,  0,  1,         0, sig_over_budget,  "cache budget, %.0f KiB -> shrink"},
 {"tight_cap",    K(FAST_CAP),        1, -1, 0,  0,  0,  1,         0, sig_tight_cap,    "memory pressure %.0f%% -> shrink"},
 {"cold_cap",     K(FAST_CAP),        1, -1, 0,  1,  0,  10,        0, sig_cold_cap,     "cold, %.0f KiB cached -> shrink"},
 {"cold_refill",  K(REFILL_COUNT),    1, -1, 0,  1,  0,  10,        0, sig_cold_refill,  "cold, %.1f ops/s -> shrink"},
 {"remote_heavy", K(DRAIN_INTERVAL),  0,  0, 1,  0,  0,  HAKD_HYST, 0, sig_remote_heavy, "remote frees %.0f%% -> drain sooner"},
 {"remote_none",  K(DRAIN_INTERVAL),  0, +1, 0,  0,  1,  10,        0, sig_remote_none,  "no remote frees, %.0f refills/s -> drain less"},
 {"large_churn",  K(LARGE_CACHE_MB),  0, +1, 0,  0,  1,  HAKD_HYST, 1, sig_large_churn,  "unmap %.0f MiB/s -> grow"},
 {"seg_churn",    K(SEG_CACHE),       0, +1, 0,  0,  1,  HAKD_HYST, 1, sig_seg_churn,    "release %.0f MiB/s -> grow"},
 {"refault",      K(PURGE_DELAY_MS),  0, +1, 0,  0,  1,  HAKD_HYST, 1, sig_refault,      "%.0f faults/s -> purge later"},
 {"tight_large",  K(LARGE_CACHE_MB),  0, -1, 0,  0,  0,  1,         0, sig_tight,        "memory pressure %.0f%% -> shrink"},
 {"tight_seg",    K(SEG_CACHE),       0, -1, 0,  0,  0,  1,         0, sig_tight,        "memory pressure %.0f%% -> shrink"},
 {"tight_purge",  K(PURGE_DELAY_MS),  0, -1, 0,  0,  0,  1,         0, sig_tight,        "memory pressure %.0f%% -> purge sooner"},
 {"orphans",      K(ADOPT),           0,  0, 1,  0,  0,  HAKD_HYST, 0, sig_orphans,      "%.0f orphan spans/s -> adopt"},
 {"idle_trim",    -1,                 0,  0, 0,  0,  0,  0,         0, sig_idle,         "idle, %.1f MiB cached -> trim"},
};
/* clang-format on */
#define NRULES ((int)(sizeof rules / sizeof rules[0]))

static int is_pressure_rule(const struct rule *r) {
    return r->signal == sig_tight || r->signal == sig_tight_cap;
}
_Static_assert(NRULES <= HAKD_RULES_MAX, "HAKD_RULES_MAX too small");

const char *hakd_rule_name(int i) {
    return i >= 0 && i < NRULES ? rules[i].name
           : i == -1            ? "profile"
           : i == -2            ? "phase"
           : i == -4            ? "relief"
                                : "rollback";
}
int hakd_rule_count(void) {
    return NRULES;
}

/* ------------------------------------------------------- thread-cache budget
 * Estimated bytes all thread caches may hold: sum of fast_cap x size x
 * threads, over every managed process; computed once per tick. */
static double cache_estimate, cache_budget;

static double proc_cache_bytes(const struct hakd_proc *p) {
    double b = 0, th = p->rec.threads > 0 ? p->rec.threads : 1;
    for (int c = 0; c < HAK_NUM_CLASSES; c++)
        b += (double)p->knobs.val[HAK_KNOB_FAST_CAP][c] * hak_class_size[c];
    return b * th;
}

static int sig_over_budget(const struct hakd_state *st, const struct hakd_proc *p, int c,
                           double *v) {
    *v = (double)knob(p, HAK_KNOB_FAST_CAP, c) * hak_class_size[c] / 1024;
    return cache_budget > 0 && cache_estimate > cache_budget &&
           above_default(p, HAK_KNOB_FAST_CAP, c) && p->rec.cls_ops[c] < HOT_OPS;
}

/* ------------------------------------------------------------ guardrails */

static void range(const struct hakd_state *st, int k, int c, int64_t *lo, int64_t *hi) {
    *lo = hak_knob_defs[k].min;
    *hi = hak_knob_defs[k].max;
    const struct hakd_limit *l = &st->cfg.limit[k];
    if (l->set) {
        *lo = l->min > *lo ? l->min : *lo;
        *hi = l->max < *hi ? l->max : *hi;
    }
}

static int tunable(const struct hakd_proc *p, int k, int c) {
    int o = p->knobs.owner[k][c];
    return p->knobs.present[k] && (o == HAK_OWNER_DEFAULT || o == HAK_OWNER_DAEMON);
}

static int emit(struct hakd_decision *d, int *n, int max, struct hakd_proc *p, int rule, int k,
                int c, int64_t from, int64_t to, const char *reason) {
    if (*n >= max) return 0;
    struct hakd_decision *x = &d[(*n)++];
    x->proc = p;
    x->rule = rule;
    x->knob = k;
    x->cls = c;
    x->from = from;
    x->to = to;
    snprintf(x->reason, sizeof x->reason, "%s", reason);
    return 1;
}

/* Objective: CPU ns per operation, times a memory price that is 1 while
 * memory is plentiful and grows with pressure and with cached memory. */
static double objective(const struct hakd_state *st, const struct hakd_proc *p) {
    const struct hakd_rec *r = &p->rec;
    if (r->ops < IDLE_OPS) return 0;
    double ns = r->cpu * 1e9 / r->ops;
    double price = pressure(st, p) ? 1 + st->psi_some10 / 10 : 0;
    return ns * (1 + price * r->cached_total / (64 * MIB));
}

/* "tiny/local": the size band with the most operations and the remote
 * share. By band, not by the hottest class: a spread of sizes (the hakctl
 * tests' 16-2048 B) has classes of 128 sizes each in both "small" and
 * "mid" since 1-2 KiB has eight classes, and its hottest class flipped
 * between the two from one sample to the next. */
static void phase_key(const struct hakd_proc *p, char *out, size_t n) {
    static const char *const bands[] = {"tiny", "small", "mid", "big", "large"};
    const struct hakd_rec *r = &p->rec;
    double ops[5] = {0};
    for (int c = 0; c < HAKD_NCLS; c++) {
        uint32_t sz = c < HAK_NUM_CLASSES ? hak_class_size[c] : 0;
        int b = c >= HAK_NUM_CLASSES ? 4 : sz <= 128 ? 0 : sz <= 1024 ? 1 : sz <= 65536 ? 2 : 3;
        ops[b] += r->cls_ops[c];
    }
    int hot = 0;
    for (int b = 1; b < 5; b++)
        if (ops[b] > ops[hot]) hot = b;
    const char *band = bands[hot];
    /* a producer/consumer pair reads 35-50 %: half its frees hand a block
     * back to its owner after the other thread allocated it again */
    const char *rem = r->remote_share < 0.05   ? "local"
                      : r->remote_share < 0.25 ? "mixed"
                                               : "remote";
    if (r->ops < IDLE_OPS)
        snprintf(out, n, "idle");
    else
        snprintf(out, n, "%s/%s", band, rem);
}

static struct hakd_phase_mem *phase_find(struct hakd_proc *p, const char *key, int create) {
    struct hakd_pstate *s = &p->ps;
    for (int i = 0; i < s->nphases; i++)
        if (strcmp(s->phases[i].key, key) == 0) return &s->phases[i];
    if (!create) return NULL;
    int i = s->nphases < HAKD_PHASES ? s->nphases++ : HAKD_PHASES - 1; /* the last is reused */
    memset(&s->phases[i], 0, sizeof s->phases[i]);
    snprintf(s->phases[i].key, sizeof s->phases[i].key, "%s", key);
    return &s->phases[i];
}

/* The phase's good setting: what the daemon has set now. */
static void phase_remember(struct hakd_proc *p, double obj) {
    if (!strcmp(p->ps.phase, "idle") || !p->ps.phase[0]) return;
    struct hakd_phase_mem *m = phase_find(p, p->ps.phase, 1);
    m->n = 0;
    m->best_obj = obj;
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        int last = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES : 1;
        for (int c = 0; c < last && m->n < HAKD_MAX_KEEP; c++)
            if (p->knobs.owner[k][c] == HAK_OWNER_DAEMON)
                m->keep[m->n++] = (struct hakd_keep){(uint8_t)k, (uint8_t)c, p->knobs.val[k][c]};
    }
}

static int phase_restore(const struct hakd_state *st, struct hakd_proc *p,
                         const struct hakd_phase_mem *m, int rule, const char *why,
                         struct hakd_decision *d, int *n, int max) {
    int emitted = 0;
    for (int i = 0; i < m->n; i++) {
        int k = m->keep[i].knob, c = m->keep[i].cls;
        int64_t lo, hi, v = m->keep[i].val;
        if (k >= HAK_NUM_KNOBS || c >= HAK_NUM_CLASSES || !tunable(p, k, c)) continue;
        range(st, k, c, &lo, &hi);
        v = v < lo ? lo : v > hi ? hi : v;
        if (v == p->knobs.val[k][c]) continue;
        char reason[HAK_SHM_REASON_MAX];
        snprintf(reason, sizeof reason, "%s %s: known setting", why, m->key);
        emitted += emit(d, n, max, p, rule, k, c, p->knobs.val[k][c], v, reason);
        p->ps.ks[k][c].quiet = HAKD_QUIET;
    }
    /* The memory is the whole setting: what the daemon set then, defaults
     * elsewhere. A knob the daemon moved since (for another phase) goes back
     * to its default, unless the memory was full and may have lost it. */
    for (int k = 0; k < HAK_NUM_KNOBS && m->n < HAKD_MAX_KEEP; k++) {
        int last = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES : 1;
        for (int c = 0; c < last; c++) {
            int64_t def = hak_knob_default(k, c);
            if (p->knobs.owner[k][c] != HAK_OWNER_DAEMON || !tunable(p, k, c) ||
                p->knobs.val[k][c] == def)
                continue;
            int kept = 0;
            for (int i = 0; i < m->n && !kept; i++)
                kept = m->keep[i].knob == k && m->keep[i].cls == c;
            if (kept) continue;
            char reason[HAK_SHM_REASON_MAX];
            snprintf(reason, sizeof reason, "%s %.20s: default", why, m->key);
            emitted += emit(d, n, max, p, rule, k, c, p->knobs.val[k][c], def, reason);
            p->ps.ks[k][c].quiet = HAKD_QUIET;
        }
    }
    return emitted;
}

void hakd_policy_seed(struct hakd_proc *p, const struct hakd_phase_mem *ph, int n) {
    p->ps.nphases = n < HAKD_PHASES ? n : HAKD_PHASES;
    memcpy(p->ps.phases, ph, (size_t)p->ps.nphases * sizeof *ph);
}

static void judge(const struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d, int *n,
                  int max);

/* Undoes the changes of the set still in force (someone else may have moved
 * one meanwhile); block: the step is not retried for HAKD_BLOCK ticks. */
static void undo_set(struct hakd_proc *p, const char *why, int block, struct hakd_decision *d,
                     int *n, int max) {
    struct hakd_pstate *s = &p->ps;
    for (int i = 0; i < s->nset; i++) {
        struct hakd_change *ch = &s->set[i];
        if (!tunable(p, ch->knob, ch->cls) || p->knobs.val[ch->knob][ch->cls] != ch->after)
            continue;
        emit(d, n, max, p, -3, ch->knob, ch->cls, ch->after, ch->before, why);
        if (block) s->ks[ch->knob][ch->cls].blocked[ch->after > ch->before] = HAKD_BLOCK;
        s->ks[ch->knob][ch->cls].quiet = HAKD_QUIET;
        p->knobs.val[ch->knob][ch->cls] = ch->before; /* what a phase memory keeps */
    }
}

/* Tracks the phase; on a confirmed change, a remembered setting comes back. */
static void phase_track(const struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d,
                        int *n, int max) {
    char key[24];
    phase_key(p, key, sizeof key);
    struct hakd_pstate *s = &p->ps;
    hakd_log(HAKD_DEBUG,
             "pid %d (%s): tick %s, remote %.1f%% (counted %.1f%% of frees), %.3g ops/s", p->pid,
             p->exe, key, p->rec.remote_share * 100, p->rec.remote_counted * 100, p->rec.ops);
    if (!strcmp(key, s->phase)) {
        s->phase_ticks++;
        snprintf(s->phase_next, sizeof s->phase_next, "%s", key);
        return;
    }
    if (strcmp(key, s->phase_next)) { /* seen once: wait for a second tick */
        snprintf(s->phase_next, sizeof s->phase_next, "%s", key);
        return;
    }
    /* A change with 2 ticks of its window seen is judged now, in the phase
     * it was made for (the window's last tick may be the new phase's first:
     * the median of 3 passes over it). */
    if (s->pending && s->nset && s->n_after >= 2) {
        judge(st, p, d, n, max);
        s->pending = 0;
    }
    /* A phase that ends before any change could be judged (short phases)
     * still leaves what it ran with, once, so that a return to it (and the
     * profile) starts from there; a judged setting replaces it later. */
    if (s->phase[0] && s->phase_ticks >= 1 && !phase_find(p, s->phase, 0))
        phase_remember(p, s->nhist ? s->hist[0] : 0);
    hakd_log(HAKD_INFO, "pid %d (%s): phase %s -> %s", p->pid, p->exe, s->phase[0] ? s->phase : "-",
             key);
    snprintf(s->phase_prev, sizeof s->phase_prev, "%s", s->phase[0] ? s->phase : "-");
    snprintf(s->phase, sizeof s->phase, "%s", key);
    if (!s->first_phase[0] && strcmp(key, "idle")) snprintf(s->first_phase, 24, "%s", key);
    s->phase_ticks = 0;
    const struct hakd_phase_mem *m = phase_find(p, key, 0);
    if (m) {
        phase_restore(st, p, m, -2, "phase", d, n, max);
    } else if (s->pending && s->nset) {
        /* a change the old phase never got to judge does not follow the
         * program into a new one (where it could cost, unjudged, for the
         * whole phase: a rollback needs a judged window); the old phase
         * keeps it in its memory above */
        char why[HAK_SHM_REASON_MAX];
        snprintf(why, sizeof why, "unjudged, %.12s -> %.12s", s->phase_prev, key);
        undo_set(p, why, 0, d, n, max);
    }
    s->pending = 0; /* a change across phases cannot be judged */
    s->nset = 0;
    s->nhist = 0;
}

/* The pending change set, HAKD_QUIET ticks on: keep it or roll it back.
 * Medians of the ticks before and after (judge.c); the tolerance is the
 * larger of 5 %, the measured noise, and the resolution of the CPU clock
 * over the window (2 clock ticks). 5 %, not less: on a shared machine the
 * cost per operation drifts by 3-4 % within seconds for reasons of its own
 * (seen in CI: three unrelated changes in a row each judged +3.6 % worse). */
static void judge(const struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d, int *n,
                  int max) {
    struct hakd_pstate *s = &p->ps;
    double cpu_ticks = s->cpu_after * (double)sysconf(_SC_CLK_TCK);
    double min_tol = cpu_ticks > 0 && 2 / cpu_ticks > 0.05 ? 2 / cpu_ticks : 0.05;
    if (s->noise > min_tol) min_tol = s->noise; /* the last estimate: few ticks since a judge */
    struct hakd_verdict v;
    int verdict = hakd_judge(s->before, s->nbefore, s->after, s->n_after, min_tol, &v);
    double obj = v.after;
    hakd_log(HAKD_DEBUG,
             "pid %d (%s): judged %d changes: %.1f -> %.1f ns/op, noise %.1f%%, tol %.1f%%: %s",
             p->pid, p->exe, s->nset, v.before, v.after, v.noise * 100, v.tol * 100,
             verdict == HAKD_WORSE  ? "worse"
             : verdict == HAKD_KEEP ? "keep"
                                    : "unclear");
    if (verdict == HAKD_UNCLEAR) {
        /* the workload changed under the experiment; nothing can be concluded */
    } else if (verdict == HAKD_WORSE) {
        char why[HAK_SHM_REASON_MAX];
        snprintf(why, sizeof why, "rollback: %.1f ns/op > %.1f (+%.0f%%)", v.after, v.before,
                 v.tol * 100);
        undo_set(p, why, 1, d, n, max);
    } else if (obj > 0) {
        for (int i = 0; i < s->nset; i++) { /* kept, unless it did nothing */
            struct hakd_change *ch = &s->set[i];
            const struct rule *r = &rules[ch->rule];
            double now = 0;
            if (!r->must_fall || !tunable(p, ch->knob, ch->cls) ||
                p->knobs.val[ch->knob][ch->cls] != ch->after)
                continue;
            r->signal(st, p, ch->cls, &now);
            if (now < 0.9 * ch->signal) continue;
            char why[HAK_SHM_REASON_MAX];
            snprintf(why, sizeof why, "no effect: %s %.1f -> %.1f", r->name, ch->signal, now);
            emit(d, n, max, p, -3, ch->knob, ch->cls, ch->after, ch->before, why);
            s->ks[ch->knob][ch->cls].blocked[ch->after > ch->before] = HAKD_BLOCK;
            s->ks[ch->knob][ch->cls].quiet = HAKD_QUIET;
            p->knobs.val[ch->knob][ch->cls] = ch->before; /* what the phase keeps */
        }
        phase_remember(p, obj);
    }
    s->nset = 0;
    s->nhist = 0;
}

/* Noise: relative spread of the objective over recent unchanged ticks
 * (median absolute deviation: judge.c). */
static void noise_track(struct hakd_pstate *s, double obj) {
    if (obj <= 0) return;
    memmove(s->hist + 1, s->hist, sizeof s->hist - sizeof s->hist[0]);
    s->hist[0] = obj;
    if (s->nhist < 8) s->nhist++;
    if (s->nhist >= 3) s->noise = hakd_noise(s->hist, s->nhist); /* else the last estimate */
}

/* Pressure rules shrink fast and remember what they shrank (the first value
 * of each knob); once no pressure was seen for HAKD_RELIEF ticks, all of it
 * comes back in one tick (Senpai's "retreat fast", in the other direction:
 * pressure cost the program its caches only while it lasted). A knob someone
 * else moved meanwhile (a person, a growth rule past the old value) is left
 * alone. */
#define HAKD_RELIEF 5
static void relief_note(struct hakd_pstate *s, int k, int c, int64_t before) {
    for (int i = 0; i < s->nrelief; i++)
        if (s->relief[i].knob == k && s->relief[i].cls == c) return; /* the first value counts */
    if (s->nrelief < HAKD_MAX_KEEP)
        s->relief[s->nrelief++] = (struct hakd_keep){(uint8_t)k, (uint8_t)c, before};
}

static void relief(const struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d,
                   int *n, int max) {
    struct hakd_pstate *s = &p->ps;
    if (pressure(st, p)) {
        s->calm_ticks = 0;
        return;
    }
    if (!s->nrelief || ++s->calm_ticks < HAKD_RELIEF) return;
    for (int i = 0; i < s->nrelief; i++) {
        int k = s->relief[i].knob, c = s->relief[i].cls;
        int64_t v = s->relief[i].val, cur = p->knobs.val[k][c];
        if (!tunable(p, k, c) || p->knobs.owner[k][c] != HAK_OWNER_DAEMON || cur >= v) continue;
        char why[HAK_SHM_REASON_MAX];
        snprintf(why, sizeof why, "no memory pressure for %d ticks -> back", s->calm_ticks);
        emit(d, n, max, p, -4, k, c, cur, v, why);
        s->ks[k][c].quiet = HAKD_QUIET;
    }
    s->nrelief = s->calm_ticks = 0;
}

static void decide_proc(const struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d,
                        int *n, int max) {
    struct hakd_pstate *s = &p->ps;
    double obj = objective(st, p);
    int nc = hak_shm_nclasses(&p->view);
    p->rec.obj = obj;
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        for (int c = 0; c < HAK_NUM_CLASSES; c++) {
            struct hakd_kstate *ks = &s->ks[k][c];
            if (ks->quiet) ks->quiet--;
            if (ks->blocked[0]) ks->blocked[0]--;
            if (ks->blocked[1]) ks->blocked[1]--;
        }
    phase_track(st, p, d, n, max);
    if (s->pending && s->pending <= HAKD_QUIET && obj > 0 &&
        s->n_after < HAKD_QUIET + 1) { /* the window after the change */
        s->after[s->n_after++] = obj;
        s->cpu_after += p->rec.cpu * p->rec.dt;
    }
    if (s->pending && --s->pending == 0)
        judge(st, p, d, n, max);
    else if (!s->pending) {
        noise_track(s, obj);
        if (s->phase_ticks == 10) phase_remember(p, obj); /* steady: this is how it runs */
    }
    if (p->rec.ops >= IDLE_OPS) s->trimmed = 0;
    relief(st, p, d, n, max);
    int nset = 0;
    for (int i = 0; i < NRULES; i++) {
        const struct rule *r = &rules[i];
        int last = r->per_class ? (nc < HAK_NUM_CLASSES ? nc : HAK_NUM_CLASSES) : 1;
        for (int c = 0; c < last; c++) {
            double v = 0;
            char why[HAK_SHM_REASON_MAX];
            uint8_t *streak = &s->streak[i][c];
            if (!r->signal(st, p, c, &v)) {
                *streak = 0;
                continue;
            }
            if (*streak < 255) (*streak)++;
            if (*streak < r->hold) continue;
            snprintf(why, sizeof why, r->reason, v);
            if (r->knob < 0) { /* trim request */
                if (emit(d, n, max, p, i, -1, 0, 0, 0, why)) s->trimmed = 1;
                continue;
            }
            int k = r->knob;
            struct hakd_kstate *ks = &s->ks[k][c];
            /* one experiment at a time; memory-saving rules may act meanwhile */
            if (!tunable(p, k, c) || ks->quiet ||
                (r->experiment && (s->pending || nset == HAKD_SET_MAX)))
                continue; /* the set is full: the rest wait for the next one */
            int64_t cur = p->knobs.val[k][c], lo, hi, to;
            range(st, k, c, &lo, &hi);
            to = r->step > 0 ? cur * 2 : r->step < 0 ? cur / 2 : r->value;
            if (r->floor_default && to < hak_knob_default(k, c)) to = hak_knob_default(k, c);
            to = to < lo ? lo : to > hi ? hi : to;
            if (to == cur || ks->blocked[to > cur]) continue;
            if (k == HAK_KNOB_FAST_CAP && to > cur) { /* the thread-cache budget */
                double th = p->rec.threads > 0 ? p->rec.threads : 1;
                double more = (double)(to - cur) * hak_class_size[c] * th;
                if (cache_budget > 0 && cache_estimate + more > cache_budget) continue;
                cache_estimate += more;
            }
            if (!emit(d, n, max, p, i, k, c, cur, to, why)) return;
            if (is_pressure_rule(r)) relief_note(s, k, c, cur);
            *streak = 0;
            ks->quiet = HAKD_QUIET;
            if (r->experiment)
                s->set[nset++] =
                    (struct hakd_change){(uint8_t)k, (uint8_t)c, (uint8_t)i, cur, to, v};
        }
    }
    if (nset) { /* judged HAKD_QUIET ticks from now against the recent level */
        s->nset = nset;
        s->pending = HAKD_QUIET + 1;
        s->cpu_after = 0;
        s->n_after = 0;
        /* the level before: the recent steady ticks (this one if none) */
        s->nbefore = s->nhist ? s->nhist : 1;
        memcpy(s->before, s->nhist ? s->hist : &obj, (size_t)s->nbefore * sizeof obj);
    }
}

int hakd_policy(struct hakd_state *st, struct hakd_decision *d, int max) {
    int n = 0;
    cache_budget = (double)st->cfg.cache_budget_mb * MIB;
    cache_estimate = 0;
    for (int i = 0; i < st->nprocs; i++)
        if (st->procs[i]->managed) cache_estimate += proc_cache_bytes(st->procs[i]);
    for (int i = 0; i < st->nprocs; i++) {
        struct hakd_proc *p = st->procs[i];
        if (!p->managed || p->dead || p->broken || !p->rec.valid || !p->knobs_ok) continue;
        decide_proc(st, p, d, &n, max < n + 16 ? max : n + 16); /* at most 16 a process a tick */
    }
    return n;
}
