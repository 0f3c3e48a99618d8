/* hakctl_stats.c — `hakctl stats PID`: process totals, then one row per
 * size class. Rates need two samples; --watch keeps sampling and redraws
 * in place (ANSI home + clear) until Ctrl-C or the process exits. */
#include "hakctl.h"

#include <getopt.h>
#include <string.h>

static const char *size_str(char *buf, uint32_t size) {
    if (size < 10000 || size % 1024)
        snprintf(buf, HK_NB, "%u", size);
    else
        snprintf(buf, HK_NB, "%uK", size / 1024);
    return buf;
}

static int64_t knob_val(const struct hak_shm_view *v, int k, int cls) {
    const struct hak_shm_knob_val *kv = hak_shm_knob(v, k, cls);
    return kv ? __atomic_load_n(&kv->value, __ATOMIC_RELAXED) : -1;
}

/* Per-class knob values "64/512", in table order. */
static void class_knobs(const struct hak_shm_view *v, int cls, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < HAK_NUM_KNOBS && len < n; k++) {
        if (hak_knob_defs[k].scope != HAK_SCOPE_CLASS) continue;
        int64_t x = knob_val(v, k, cls);
        if (x < 0)
            len += (size_t)snprintf(buf + len, n - len, "%s-", len ? "/" : "");
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%lld", len ? "/" : "", (long long)x);
    }
}

static void print_totals(const struct hak_shm_view *v, const struct hk_figs *f,
                         const struct hk_sample *s) {
    char a[HK_NB], b[HK_NB], c[HK_NB], exe[25], owners[64];
    struct hk_line l = {0, 0};
    hk_owner_summary(v, owners, sizeof owners);
    hk_line_add(&l, "pid %d", v->pid);
    hk_line_add(&l, "%s", hk_exe(v, exe, sizeof exe));
    hk_line_add(&l, "up %s", hk_dur(a, hk_uptime(v)));
    hk_line_add(&l, "threads %s", hk_num(b, s->proc[HAK_PROC_THREADS]));
    hk_line_add(&l, "knobs %s", owners);
    hk_line_end(&l);
    hk_line_add(&l, "in use %s", hk_bytes(a, f->in_use));
    hk_line_add(&l, "cached %s", hk_bytes(b, f->cached));
    hk_line_add(&l, "mapped %s", hk_bytes(c, s->proc[HAK_PROC_MAPPED]));
    hk_line_add(&l, "released %s", hk_bytes(a, s->proc[HAK_PROC_RELEASED]));
    hk_line_end(&l);
    hk_line_add(&l, "ops/s %s", hk_rate(a, f->ops_s));
    hk_line_add(&l, "alloc/s %s", hk_rate(b, f->alloc_s));
    hk_line_add(&l, "free/s %s", hk_rate(c, f->free_s));
    hk_line_add(&l, "fast-path hit %s%%", hk_pct(a, f->hit));
    hk_line_add(&l, "over %.2fs", f->interval);
    hk_line_end(&l);
    const struct hk_cls *L = &f->cl[f->ncls];
    hk_line_add(&l, "large: %s live blocks", hk_num(a, L->live));
    hk_line_add(&l, "%s in use", hk_bytes(b, f->large_in_use));
    hk_line_add(&l, "%s cached", hk_bytes(c, L->cached));
    hk_line_add(&l, "heaps %s", hk_num(a, s->proc[HAK_PROC_HEAPS]));
    hk_line_add(&l, "trims %s", hk_num(b, s->proc[HAK_PROC_TRIMS]));
    hk_line_add(&l, "invalid frees %s", hk_num(c, s->proc[HAK_PROC_DOUBLE_FREES]));
    hk_line_end(&l);
    hk_line_add(&l, "global knobs:");
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        if (hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL && hak_shm_knob(v, k, 0))
            hk_line_add(&l, "%s=%lld", hak_knob_defs[k].name, (long long)knob_val(v, k, 0));
    hk_line_end(&l);
}

static void print_class(const struct hak_shm_view *v, const struct hk_cls *c, int large,
                        uint32_t largest) {
    char cls[HK_NB], sz[HK_NB], al[HK_NB], fr[HK_NB], lv[HK_NB], as[HK_NB], fs[HK_NB], hit[HK_NB],
        rf[HK_NB], rm[HK_NB], ad[HK_NB], ca[HK_NB], knobs[64];
    if (large) {
        snprintf(cls, sizeof cls, "L");
        snprintf(sz, sizeof sz, ">%.8s", size_str(fr, largest));
        snprintf(knobs, sizeof knobs, "-");
    } else {
        snprintf(cls, sizeof cls, "%d", c->cls);
        size_str(sz, c->size);
        class_knobs(v, c->cls, knobs, sizeof knobs);
    }
    printf("%3s %5s %5s %5s %5s %5s %5s %4s %5s %5s %5s %6s %s\n", cls, sz,
           hk_num(al, c->c[HAK_CTR_ALLOCS]), hk_num(fr, c->c[HAK_CTR_FREES]), hk_num(lv, c->live),
           hk_rate(as, c->alloc_s), hk_rate(fs, c->free_s), large ? "-" : hk_pct(hit, c->hit),
           hk_num(rf, c->c[HAK_CTR_REFILLS]), hk_num(rm, c->c[HAK_CTR_REMOTE_FREES]),
           hk_num(ad, c->c[HAK_CTR_ADOPTED]), hk_bytes_short(ca, c->cached), knobs);
}

static void print_stats(const struct hak_shm_view *v, const struct hk_figs *f,
                        const struct hk_sample *s, int all) {
    print_totals(v, f, s);
    printf("\n%3s %5s %5s %5s %5s %5s %5s %4s %5s %5s %5s %6s %s\n", "CLS", "SIZE", "ALLOC", "FREE",
           "LIVE", "A/s", "F/s", "HIT%", "REFIL", "RFREE", "ADOPT", "CACHED", "KNOBS");
    for (int c = 0; c < f->ncls; c++)
        if (all || hk_cls_active(&f->cl[c])) print_class(v, &f->cl[c], 0, 0);
    if (all || hk_cls_active(&f->cl[f->ncls]))
        print_class(v, &f->cl[f->ncls], 1, f->ncls ? f->cl[f->ncls - 1].size : 0);
    printf("KNOBS =");
    for (int k = 0, n = 0; k < HAK_NUM_KNOBS; k++)
        if (hak_knob_defs[k].scope == HAK_SCOPE_CLASS)
            printf("%s%s", n++ ? "/" : " ", hak_knob_defs[k].name);
    printf("   (hakctl stats --help explains the columns)\n");
}

static cJSON *stats_json(const struct hak_shm_view *v, const struct hk_figs *f,
                         const struct hk_sample *s) {
    cJSON *o = hk_json_proc(v), *cls, *knobs, *large;
    cJSON_AddItemToObject(o, "totals", hk_json_figs_totals(f, s));
    cJSON_AddItemToObject(o, "classes", cls = cJSON_CreateArray());
    for (int c = 0; c < f->ncls; c++) cJSON_AddItemToArray(cls, hk_json_cls(&f->cl[c], v));
    large = hk_json_cls(&f->cl[f->ncls], v);
    cJSON_DeleteItemFromObject(large, "size");
    cJSON_DeleteItemFromObject(large, "thread_cache_blocks");
    cJSON_AddNumberToObject(large, "bytes_in_use", (double)f->large_in_use);
    cJSON_AddItemToObject(o, "large", large);
    cJSON_AddItemToObject(o, "knobs", knobs = cJSON_CreateObject());
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        if (hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL && hak_shm_knob(v, k, 0))
            cJSON_AddNumberToObject(knobs, hak_knob_defs[k].name, (double)knob_val(v, k, 0));
    return o;
}

struct stats_opts {
    int json, all;
    double watch, interval;
    pid_t pid;
};

static int parse(int argc, char **argv, struct stats_opts *o) {
    int c, rc;
    while ((c = hk_getopt(argc, argv, hk_opts_stats)) != -1) {
        if (c == 'j')
            o->json = 1;
        else if (c == 'a')
            o->all = 1;
        else if (c == 'w' || c == 'i') {
            if ((rc = hk_parse_sec("stats", optarg, c == 'w' ? &o->watch : &o->interval)) != HK_OK)
                return rc;
        } else
            return hk_bad_option("stats", c, argv);
    }
    if (optind >= argc) return hk_usage("stats", "missing PID");
    if (optind + 1 < argc) return hk_usage("stats", "unexpected argument '%s'", argv[optind + 1]);
    return hk_parse_pid("stats", argv[optind], &o->pid);
}

int hk_cmd_stats(int argc, char **argv) {
    struct stats_opts o = {hk_json_default, 0, 0, 0.5, 0};
    struct hak_shm_view v;
    struct hk_sample s0, s1;
    struct hk_figs f;
    int rc = parse(argc, argv, &o);
    if (rc != HK_OK || (rc = hk_open(o.pid, 0, &v)) != HK_OK) return rc;
    hk_catch_sigint();
    int clear = o.watch > 0 && !o.json && hk_tty();
    if (hk_sample_take(&v, &s0) != 0) {
        hak_shm_detach(&v);
        return HK_ERR;
    }
    for (;;) {
        if (hk_sleep(o.watch > 0 ? o.watch : o.interval) || hk_sample_take(&v, &s1) != 0) break;
        hk_derive(&s0, &s1, &f);
        if (clear) fputs("\033[H\033[J", stdout);
        if (o.json)
            hk_json_print(stats_json(&v, &f, &s1), o.watch > 0);
        else
            print_stats(&v, &f, &s1, o.all);
        hk_figs_free(&f);
        hk_sample_free(&s0);
        s0 = s1;
        if (o.watch <= 0) break;
        int stale = hak_shm_is_stale(&v);
        if (stale) {
            printf("process %d %s\n", o.pid,
                   stale == HAK_SHM_STALE_EXEC ? "exec'd a program without hakmem" : "exited");
            break;
        }
        if (!clear && !o.json) putchar('\n');
    }
    hk_sample_free(&s0);
    hak_shm_detach(&v);
    return HK_OK;
}
