/* config.c — /etc/hakmemd.json (or --config FILE), read with libcjson:
 *   {
 *     "interval_ms": 1000,        tick, 50..60000
 *     "lease_ms": 10000,          daemon knobs revert this long after the daemon goes silent
 *     "profile_save_s": 60,       periodic profile save
 *     "rescan_ms": 5000,          full rescan of /dev/shm (inotify does the rest)
 *     "idle_trim_ticks": 3,       ticks at ~zero operations before a trim request
 *     "cache_budget_mb": 1024,    all thread caches of all managed processes
 *     "memory_budget_mb": 0,      per process: cached memory is priced above 80 % of it
 *     "max_procs": 500,
 *     "include": ["redis-server", "/opt/app/bin/app?"],   exe name or path (fnmatch); [] = all
 *     "exclude": ["sshd"],
 *     "knobs": { "fast_cap": { "min": 16, "max": 1024 } },
 *     "psi_path": "/proc/pressure/memory",   memory pressure ("some avg10=")
 *     "cgroup_dir": ""            memory.events / .high / .current for every
 *                                 process; "" = each process's own cgroup v2
 *   }
 * Every field is checked before anything is used; a bad one is an error
 * naming the field, and the daemon does not start. */
#include "hakd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hakd_config_defaults(struct hakd_config *c) {
    memset(c, 0, sizeof *c);
    c->interval_ms = 1000;
    c->lease_ms = 10000;
    c->profile_save_s = 60;
    c->rescan_ms = 5000;
    c->idle_trim_ticks = 3;
    c->cache_budget_mb = 1024;
    c->memory_budget_mb = 0;
    c->max_procs = HAKD_MAX_PROCS;
    snprintf(c->psi_path, sizeof c->psi_path, "/proc/pressure/memory");
}

static int bad(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int get_int(const cJSON *o, const char *name, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble)
        return bad(err, n, "field \"%s\": expected an integer", name);
    int64_t x = (int64_t)v->valuedouble;
    if (x < lo || x > hi)
        return bad(err, n, "field \"%s\": %lld is out of range %lld..%lld", name, (long long)x,
                   (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int get_patterns(const cJSON *o, const char *name, char (*out)[256], int *count, char *err,
                        size_t n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name), *e;
    if (!a) return 0;
    if (!cJSON_IsArray(a)) return bad(err, n, "field \"%s\": expected an array of strings", name);
    int i = 0;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) >= 256)
            return bad(err, n, "field \"%s[%d]\": expected a non-empty string under 256 bytes",
                       name, i);
        if (i >= HAKD_MAX_PATTERNS)
            return bad(err, n, "field \"%s\": more than %d patterns", name, HAKD_MAX_PATTERNS);
        snprintf(out[i++], 256, "%s", e->valuestring);
    }
    *count = i;
    return 0;
}

/* An absolute path under 256 bytes ("" allowed where empty means default). */
static int get_path(const cJSON *o, const char *name, int empty_ok, char *out, char *err,
                    size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v) return 0;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= 256 ||
        (v->valuestring[0] ? v->valuestring[0] != '/' : !empty_ok))
        return bad(err, n, "field \"%s\": expected an absolute path under 256 bytes%s", name,
                   empty_ok ? " or \"\"" : "");
    snprintf(out, 256, "%s", v->valuestring);
    return 0;
}

static int get_limits(const cJSON *o, struct hakd_config *c, char *err, size_t n) {
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(o, "knobs"), *k;
    if (!ks) return 0;
    if (!cJSON_IsObject(ks)) return bad(err, n, "field \"knobs\": expected an object");
    cJSON_ArrayForEach(k, ks) {
        int id = hak_knob_lookup(k->string);
        char f[96];
        if (id < 0) return bad(err, n, "field \"knobs.%s\": unknown knob", k->string);
        if (!cJSON_IsObject(k))
            return bad(err, n, "field \"knobs.%s\": expected an object", k->string);
        for (const cJSON *x = k->child; x; x = x->next)
            if (strcmp(x->string, "min") && strcmp(x->string, "max"))
                return bad(err, n, "field \"knobs.%s.%s\": unknown (min, max)", k->string,
                           x->string);
        const struct hak_knob_def *d = &hak_knob_defs[id];
        struct hakd_limit *l = &c->limit[id];
        l->set = 1;
        l->min = d->min;
        l->max = d->max;
        snprintf(f, sizeof f, "knobs.%s.min", k->string);
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(k, "min");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(k, "max");
        for (int i = 0; i < 2; i++) {
            const cJSON *v = i ? mx : mn;
            if (!v) continue;
            if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
                v->valuedouble < (double)d->min || v->valuedouble > (double)d->max)
                return bad(err, n, "field \"knobs.%s.%s\": expected an integer in %lld..%lld",
                           k->string, i ? "max" : "min", (long long)d->min, (long long)d->max);
            *(i ? &l->max : &l->min) = (int64_t)v->valuedouble;
        }
        if (l->min > l->max)
            return bad(err, n, "field \"knobs.%s\": min %lld is above max %lld", k->string,
                       (long long)l->min, (long long)l->max);
    }
    return 0;
}

static const char *const known[] = {
    "interval_ms",     "lease_ms",         "profile_save_s", "rescan_ms", "idle_trim_ticks",
    "cache_budget_mb", "memory_budget_mb", "max_procs",      "include",   "exclude",
    "knobs",           "psi_path",         "cgroup_dir",     NULL};

static int parse(const char *text, struct hakd_config *c, char *err, size_t n) {
    const char *where = NULL;
    cJSON *o = cJSON_ParseWithOpts(text, &where, 1);
    int rc = 0;
    int64_t v;
    if (!o) {
        int line = 1;
        for (const char *q = text; where && q < where; q++) line += *q == '\n';
        return bad(err, n, "not valid JSON (near line %d)", line);
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return bad(err, n, "expected a JSON object at the top");
    }
    for (const cJSON *x = o->child; x && !rc; x = x->next) {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= !strcmp(x->string, known[i]);
        if (!ok) rc = bad(err, n, "field \"%s\": unknown", x->string);
    }
#define INT_FIELD(name, lo, hi)                                                                    \
    if (!rc && (v = c->name, rc = get_int(o, #name, lo, hi, &v, err, n)) == 0) c->name = v;
    INT_FIELD(interval_ms, 50, 60000)
    INT_FIELD(lease_ms, 100, 86400000)
    INT_FIELD(profile_save_s, 1, 86400)
    INT_FIELD(rescan_ms, 100, 600000)
    INT_FIELD(idle_trim_ticks, 1, 3600)
    INT_FIELD(cache_budget_mb, 0, 1 << 20)
    INT_FIELD(memory_budget_mb, 0, 1 << 24)
    INT_FIELD(max_procs, 1, HAKD_MAX_PROCS)
#undef INT_FIELD
    if (!rc) rc = get_patterns(o, "include", c->include, &c->n_include, err, n);
    if (!rc) rc = get_patterns(o, "exclude", c->exclude, &c->n_exclude, err, n);
    if (!rc) rc = get_limits(o, c, err, n);
    if (!rc) rc = get_path(o, "psi_path", 0, c->psi_path, err, n);
    if (!rc) rc = get_path(o, "cgroup_dir", 1, c->cgroup_dir, err, n);
    cJSON_Delete(o);
    return rc;
}

int hakd_config_load(const char *path, int must_exist, struct hakd_config *c, char *err,
                     size_t errlen) {
    char msg[256];
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT && !must_exist) return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *t = realloc(text, cap = cap ? cap * 2 : 8192);
            if (!t) break;
            text = t;
        }
        size_t k = fread(text + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0 || len > (1 << 20)) break;
    }
    fclose(f);
    if (!text) return bad(err, errlen, "%s: out of memory", path);
    text[len] = 0;
    struct hakd_config tmp = *c; /* nothing changes unless all of it is good */
    int rc = len > (1 << 20) ? bad(msg, sizeof msg, "larger than 1 MiB")
                             : parse(text, &tmp, msg, sizeof msg);
    free(text);
    if (rc) return bad(err, errlen, "%s: %s", path, msg);
    *c = tmp;
    return 0;
}

static int match(const char (*pats)[256], int n, const char *exe, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (int i = 0; i < n; i++)
        if ((exe[0] && fnmatch(pats[i], exe, 0) == 0) ||
            (path[0] && fnmatch(pats[i], path, 0) == 0) ||
            (base[0] && fnmatch(pats[i], base, 0) == 0))
            return 1;
    return 0;
}

int hakd_config_wants(const struct hakd_config *c, const char *exe, const char *path) {
    if (match(c->exclude, c->n_exclude, exe, path)) return 0;
    return c->n_include == 0 || match(c->include, c->n_include, exe, path);
}
