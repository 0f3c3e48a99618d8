/* hakctl_json.c — the --json objects shared by ps, stats and top. The keys
 * are a documented interface (docs/hakctl.md): add, never rename. Counter
 * and process-figure keys come from the tables in hakmem_shm.h. Numbers are
 * JSON doubles: exact up to 2^53. */
#include "hakctl.h"

#include <stdlib.h>

void hk_json_print(cJSON *j, int compact) {
    char *s = compact ? cJSON_PrintUnformatted(j) : cJSON_Print(j);
    if (s) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    cJSON_Delete(j);
}

static void num_or_null(cJSON *o, const char *key, double v, int ok) {
    if (ok)
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *hk_json_proc(const struct hak_shm_view *v) {
    cJSON *o = cJSON_CreateObject();
    char buf[sizeof v->hdr->exe_path * 4 + 1], owners[64];
    cJSON_AddNumberToObject(o, "pid", v->pid);
    hk_clean(buf, sizeof buf, v->hdr->exe, sizeof v->hdr->exe, 1);
    cJSON_AddStringToObject(o, "exe", buf);
    hk_clean(buf, sizeof buf, v->hdr->exe_path, sizeof v->hdr->exe_path, 1);
    cJSON_AddStringToObject(o, "exe_path", buf);
    snprintf(buf, sizeof buf, "%u.%u", v->hdr->abi_major, v->hdr->abi_minor);
    cJSON_AddStringToObject(o, "abi", buf);
    double up = hk_uptime(v);
    num_or_null(o, "uptime_s", up, up >= 0);
    hk_owner_summary(v, owners, sizeof owners);
    cJSON_AddStringToObject(o, "knob_owners", owners);
    cJSON_AddNumberToObject(o, "knob_gen",
                            (double)__atomic_load_n(&v->hdr->knob_gen, __ATOMIC_RELAXED));
    return o;
}

cJSON *hk_json_figs_totals(const struct hk_figs *f, const struct hk_sample *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bytes_in_use", (double)f->in_use);
    cJSON_AddNumberToObject(o, "bytes_cached", (double)f->cached);
    cJSON_AddNumberToObject(o, "large_bytes_in_use", (double)f->large_in_use);
    cJSON_AddNumberToObject(o, "allocs", (double)f->allocs);
    cJSON_AddNumberToObject(o, "frees", (double)f->frees);
    num_or_null(o, "alloc_per_s", f->alloc_s, f->interval > 0);
    num_or_null(o, "free_per_s", f->free_s, f->interval > 0);
    num_or_null(o, "ops_per_s", f->ops_s, f->interval > 0);
    num_or_null(o, "fast_hit_pct", f->hit, f->hit >= 0);
    cJSON_AddNumberToObject(o, "interval_s", f->interval);
    for (int p = 0; p < HAK_NUM_PROCS; p++)
        cJSON_AddNumberToObject(o, hak_proc_names[p], (double)s->proc[p]);
    return o;
}

cJSON *hk_json_cls(const struct hk_cls *c, const struct hak_shm_view *v) {
    cJSON *o = cJSON_CreateObject(), *ctr, *knobs;
    cJSON_AddNumberToObject(o, "class", c->cls);
    cJSON_AddNumberToObject(o, "size", c->size);
    cJSON_AddNumberToObject(o, "allocs", (double)c->c[HAK_CTR_ALLOCS]);
    cJSON_AddNumberToObject(o, "frees", (double)c->c[HAK_CTR_FREES]);
    cJSON_AddNumberToObject(o, "live", (double)c->live);
    cJSON_AddNumberToObject(o, "alloc_per_s", c->alloc_s);
    cJSON_AddNumberToObject(o, "free_per_s", c->free_s);
    num_or_null(o, "fast_hit_pct", c->hit, c->hit >= 0);
    cJSON_AddNumberToObject(o, "refills", (double)c->c[HAK_CTR_REFILLS]);
    cJSON_AddNumberToObject(o, "remote_frees", (double)c->c[HAK_CTR_REMOTE_FREES]);
    cJSON_AddNumberToObject(o, "adopted", (double)c->c[HAK_CTR_ADOPTED]);
    cJSON_AddNumberToObject(o, "bytes_cached", (double)c->cached);
    cJSON_AddNumberToObject(o, "thread_cache_blocks", (double)c->tcache);
    cJSON_AddItemToObject(o, "counters", ctr = cJSON_CreateObject());
    for (int k = 0; k < HAK_NUM_CTRS; k++)
        cJSON_AddNumberToObject(ctr, hak_ctr_names[k], (double)c->c[k]);
    cJSON_AddItemToObject(o, "knobs", knobs = cJSON_CreateObject());
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        const struct hak_shm_knob_val *kv;
        if (hak_knob_defs[k].scope != HAK_SCOPE_CLASS || !(kv = hak_shm_knob(v, k, c->cls)))
            continue;
        cJSON_AddNumberToObject(knobs, hak_knob_defs[k].name,
                                (double)__atomic_load_n(&kv->value, __ATOMIC_RELAXED));
    }
    return o;
}
