/* hakctl_knobs.c — `get`, `set`, `reset`, `trim`: reading and writing a
 * process's knobs. Writes go through hak_shm_knob_set, which range-checks,
 * takes the segment's writer lock and bumps the knob generation; the process
 * applies the change on its next slow path. Every argument is checked before
 * anything is written, so a bad `set a=1 b=oops` changes nothing. */
#include "hakctl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct knob_opts {
    int json, classes, cls; /* cls -1: all classes */
    const char *reason;
    pid_t pid;
    int nargs;
    char **args; /* after PID */
};

/* get, set and reset: each its own option table (what completion offers). */
static int parse(const char *cmd, int argc, char **argv, struct knob_opts *o) {
    const struct hk_cmd *k = hk_cmd_find(cmd);
    long long x;
    int c, rc;
    while ((c = hk_getopt(argc, argv, k->opts)) != -1) {
        if (c == 'j') {
            o->json = 1;
        } else if (c == 'C') {
            o->classes = 1;
        } else if (c == 'r') {
            o->reason = optarg;
        } else if (c == 'c') {
            if ((rc = hk_parse_int(cmd, "--class", optarg, 0, HK_CLASS_ARG_MAX, &x)) != HK_OK)
                return rc;
            o->cls = (int)x;
        } else {
            return hk_bad_option(cmd, c, argv);
        }
    }
    if (optind >= argc) return hk_usage(cmd, "missing PID");
    rc = hk_parse_pid(cmd, argv[optind], &o->pid);
    o->args = argv + optind + 1;
    o->nargs = argc - optind - 1;
    return rc;
}

/* A knob name to our id; unknown names list the known ones. */
static int knob_id(const char *name, size_t len) {
    char nm[64];
    snprintf(nm, sizeof nm, "%.*s", (int)(len < 63 ? len : 63), name);
    int k = hak_knob_lookup(nm);
    if (k < 0) {
        char buf[512];
        hk_err("unknown knob '%s'; known knobs: %s", nm, hk_knob_list(buf, sizeof buf));
    }
    return k;
}

/* --class must name a class of the process. */
static int class_usable(const char *cmd, const struct hak_shm_view *v, int cls) {
    int n = hak_shm_nclasses(v);
    if (cls >= n)
        return hk_usage(cmd, "no class %d: process %d has classes 0..%d", cls, v->pid, n - 1);
    return HK_OK;
}

/* The knob must exist in the process's segment and --class must fit it. */
static int knob_usable(const char *cmd, const struct hak_shm_view *v, int k, int cls) {
    if (!hak_shm_knob(v, k, 0)) {
        hk_err("the hakmem of process %d has no knob '%s' (an older version)", v->pid,
               hak_knob_defs[k].name);
        return HK_ERR;
    }
    if (cls >= 0 && hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL)
        return hk_usage(cmd, "%s is a global knob: --class does not apply", hak_knob_defs[k].name);
    return class_usable(cmd, v, cls);
}

/* ------------------------------------------------------------------ get */

struct kv_row {
    int64_t value;
    uint32_t owner;
    uint64_t set_ns;
    char reason[HAK_SHM_REASON_MAX];
};

/* reason stays raw (NUL-terminated): cleaned where it is printed */
static void read_row(const struct hak_shm_knob_val *kv, struct kv_row *r) {
    memset(r, 0, sizeof *r);
    r->value = __atomic_load_n(&kv->value, __ATOMIC_RELAXED);
    r->owner = __atomic_load_n(&kv->owner, __ATOMIC_RELAXED);
    r->set_ns = __atomic_load_n(&kv->set_ns, __ATOMIC_RELAXED);
    memcpy(r->reason, kv->reason, sizeof r->reason - 1);
}

static int same_row(const struct kv_row *a, const struct kv_row *b) {
    return a->value == b->value && a->owner == b->owner && a->set_ns == b->set_ns &&
           strcmp(a->reason, b->reason) == 0;
}

static void print_row(const struct hak_shm_view *v, int k, const char *cls, int c0,
                      const struct kv_row *r) {
    char range[48], ago[HK_NB], why[HAK_SHM_REASON_MAX * 4]; /* the whole reason, escaped */
    int64_t lo = 0, hi = 0;
    hak_shm_knob_range(v, k, c0, &lo, &hi, NULL);
    snprintf(range, sizeof range, "%lld..%lld %s", (long long)lo, (long long)hi,
             hak_knob_defs[k].unit);
    printf("%-14s %-5s %6lld %-16s %-7s %-10s %s\n", hak_knob_defs[k].name, cls,
           (long long)r->value, range, hk_owner_name(r->owner), hk_ago(ago, r->set_ns),
           (hk_clean(why, sizeof why, r->reason, sizeof r->reason, 0), why));
}

/* Rows of one knob; runs of classes with equal settings share a row. */
static void print_knob(const struct hak_shm_view *v, int k, int only, int each) {
    int n = hak_knob_defs[k].scope == HAK_SCOPE_CLASS ? hak_shm_nclasses(v) : 1;
    int first = only >= 0 ? only : 0, last = only >= 0 ? only + 1 : n;
    struct kv_row r, next;
    char label[HK_NB];
    for (int c = first; c < last;) {
        const struct hak_shm_knob_val *kv = hak_shm_knob(v, k, c);
        if (!kv) break;
        read_row(kv, &r);
        int end = c + 1;
        for (; !each && only < 0 && end < n && (kv = hak_shm_knob(v, k, end)); end++) {
            read_row(kv, &next);
            if (!same_row(&r, &next)) break;
        }
        if (hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL)
            snprintf(label, sizeof label, "-");
        else if (c == 0 && end == n && n > 1)
            snprintf(label, sizeof label, "all");
        else if (end == c + 1)
            snprintf(label, sizeof label, "%d", c);
        else
            snprintf(label, sizeof label, "%d-%d", c, end - 1);
        print_row(v, k, label, c, &r);
        c = end;
    }
}

static void json_time(cJSON *o, uint64_t ns) {
    char when[32];
    struct tm tm;
    time_t t = (time_t)(ns / 1000000000u);
    if (!ns || !gmtime_r(&t, &tm)) {
        cJSON_AddNullToObject(o, "set_ns");
        cJSON_AddNullToObject(o, "set_time");
        return;
    }
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddNumberToObject(o, "set_ns", (double)ns);
    cJSON_AddStringToObject(o, "set_time", when);
}

static void json_knob(cJSON *arr, const struct hak_shm_view *v, int k, int only) {
    int global = hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL;
    int n = global ? 1 : hak_shm_nclasses(v);
    for (int c = only >= 0 ? only : 0; c < (only >= 0 ? only + 1 : n); c++) {
        const struct hak_shm_knob_val *kv = hak_shm_knob(v, k, c);
        struct kv_row r;
        int64_t lo = 0, hi = 0, def = 0;
        if (!kv) break;
        read_row(kv, &r);
        hak_shm_knob_range(v, k, c, &lo, &hi, &def);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", hak_knob_defs[k].name);
        cJSON_AddStringToObject(o, "scope", global ? "global" : "class");
        if (global)
            cJSON_AddNullToObject(o, "class");
        else
            cJSON_AddNumberToObject(o, "class", c);
        cJSON_AddNumberToObject(o, "value", (double)r.value);
        cJSON_AddNumberToObject(o, "min", (double)lo);
        cJSON_AddNumberToObject(o, "max", (double)hi);
        cJSON_AddNumberToObject(o, "default", (double)def);
        cJSON_AddStringToObject(o, "unit", hak_knob_defs[k].unit);
        cJSON_AddStringToObject(o, "owner", hk_owner_name(r.owner));
        json_time(o, r.set_ns);
        char why[sizeof r.reason * 4];
        hk_clean(why, sizeof why, r.reason, sizeof r.reason, 1);
        cJSON_AddStringToObject(o, "reason", why);
        cJSON_AddItemToArray(arr, o);
    }
}

/* The knob ids named in args (all knobs when none): HK_OK or a status. */
static int pick(const char *cmd, const struct hak_shm_view *v, const struct knob_opts *o, int *ids,
                int *n) {
    int rc = class_usable(cmd, v, o->cls);
    *n = 0;
    if (rc != HK_OK) return rc;
    for (int i = 0; i < o->nargs; i++) {
        int k = knob_id(o->args[i], strlen(o->args[i]));
        if (k < 0) return HK_ERR;
        if ((rc = knob_usable(cmd, v, k, o->cls)) != HK_OK) return rc;
        ids[(*n)++] = k;
    }
    for (int k = 0; !o->nargs && k < HAK_NUM_KNOBS; k++)
        if (hak_shm_knob(v, k, 0) && (o->cls < 0 || hak_knob_defs[k].scope == HAK_SCOPE_CLASS))
            ids[(*n)++] = k;
    return HK_OK;
}

/* Opens the target and picks the knobs for get and reset. */
static int open_pick(const char *cmd, struct knob_opts *o, int writable, struct hak_shm_view *v,
                     int **ids, int *n) {
    int rc = hk_open(o->pid, writable, v);
    if (rc != HK_OK) return rc;
    *ids = calloc((size_t)o->nargs + HAK_NUM_KNOBS, sizeof **ids);
    rc = *ids ? pick(cmd, v, o, *ids, n) : HK_ERR;
    if (rc != HK_OK) {
        free(*ids);
        hak_shm_detach(v);
    }
    return rc;
}

int hk_cmd_get(int argc, char **argv) {
    struct knob_opts o = {hk_json_default, 0, -1, NULL, 0, 0, NULL};
    struct hak_shm_view v;
    int n, *ids;
    int rc = parse("get", argc, argv, &o);
    if (rc != HK_OK || (rc = open_pick("get", &o, 0, &v, &ids, &n)) != HK_OK) return rc;
    if (o.json) {
        cJSON *j = hk_json_proc(&v), *arr;
        cJSON_AddItemToObject(j, "knobs", arr = cJSON_CreateArray());
        for (int i = 0; i < n; i++) json_knob(arr, &v, ids[i], o.cls);
        hk_json_print(j, 0);
    } else {
        printf("%-14s %-5s %6s %-16s %-7s %-10s %s\n", "KNOB", "CLASS", "VALUE", "RANGE", "OWNER",
               "SET", "REASON");
        for (int i = 0; i < n; i++) print_knob(&v, ids[i], o.cls, o.classes);
    }
    free(ids);
    hak_shm_detach(&v);
    return HK_OK;
}

/* ------------------------------------------------------------ set/reset */

/* A whole number (hk_num_parse: overflow is HK_NUM_RANGE), or on/off,
 * true/false, yes/no for boolean knobs. */
static int parse_value(const char *s, int k, int64_t *out) {
    static const char *const words[] = {"off", "on", "false", "true", "no", "yes"};
    long long x;
    if (strcmp(hak_knob_defs[k].unit, "bool") == 0)
        for (int i = 0; i < 6; i++)
            if (strcasecmp(s, words[i]) == 0) {
                *out = i % 2;
                return 0;
            }
    int rc = hk_num_parse(s, LLONG_MIN, LLONG_MAX, &x);
    if (rc == 0) *out = x;
    return rc;
}

/* " (all classes)", " (class 3)", or "" for a global knob. */
static const char *class_word(int k, int cls, char *buf, size_t n) {
    if (hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL) return "";
    if (cls < 0) return " (all classes)";
    snprintf(buf, n, " (class %d)", cls);
    return buf;
}

static int out_of_range(const struct hak_shm_view *v, int k, const char *value) {
    int64_t lo = 0, hi = 0;
    hak_shm_knob_range(v, k, 0, &lo, &hi, NULL);
    hk_err("%s is out of range for %s: %lld..%lld %s", value, hak_knob_defs[k].name, (long long)lo,
           (long long)hi, hak_knob_defs[k].unit);
    return HK_ERR;
}

static int set_failed(const struct hak_shm_view *v, int k, int rc, int64_t x) {
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)x);
    if (rc == -ERANGE) return out_of_range(v, k, num);
    hk_err("cannot set %s in process %d (error %d)", hak_knob_defs[k].name, v->pid, rc);
    return HK_ERR;
}

/* Checks one KNOB=VALUE against the process: HK_OK or a status. */
static int check_pair(const struct hak_shm_view *v, const char *arg, int cls, int *id,
                      int64_t *val) {
    const char *eq = strchr(arg, '=');
    int64_t lo, hi;
    int rc;
    if ((*id = knob_id(arg, (size_t)(eq - arg))) < 0) return HK_ERR;
    if ((rc = knob_usable("set", v, *id, cls)) != HK_OK) return rc;
    rc = parse_value(eq + 1, *id, val);
    if (rc == HK_NUM_SYNTAX)
        return hk_usage("set", "'%s' is not a value for %s (a whole number%s)", eq + 1,
                        hak_knob_defs[*id].name,
                        strcmp(hak_knob_defs[*id].unit, "bool") ? "" : " or on/off");
    if (rc == HK_NUM_RANGE ||
        (hak_shm_knob_range(v, *id, 0, &lo, &hi, NULL) == 0 && (*val < lo || *val > hi)))
        return out_of_range(v, *id, eq + 1);
    return HK_OK;
}

int hk_cmd_set(int argc, char **argv) {
    struct knob_opts o = {0, 0, -1, NULL, 0, 0, NULL};
    struct hak_shm_view v;
    char why[HAK_SHM_REASON_MAX], cw[32];
    int rc = parse("set", argc, argv, &o);
    if (rc != HK_OK) return rc;
    if (o.nargs == 0) return hk_usage("set", "missing KNOB=VALUE");
    for (int i = 0; i < o.nargs; i++) /* syntax first: usage errors touch nothing */
        if (!strchr(o.args[i], '=') || o.args[i][0] == '=')
            return hk_usage("set", "expected KNOB=VALUE, got '%s'", o.args[i]);
    if ((rc = hk_open(o.pid, 1, &v)) != HK_OK) return rc;
    int ids[o.nargs];
    int64_t vals[o.nargs];
    for (int i = 0; i < o.nargs && rc == HK_OK; i++)
        rc = check_pair(&v, o.args[i], o.cls, &ids[i], &vals[i]);
    snprintf(why, sizeof why, "%s", o.reason ? o.reason : "hakctl set");
    for (int i = 0; i < o.nargs && rc == HK_OK; i++) {
        int r = hak_shm_knob_set(&v, ids[i], o.cls, vals[i], HAK_OWNER_MANUAL, why);
        if (r != HAK_SHM_OK)
            rc = set_failed(&v, ids[i], r, vals[i]);
        else
            printf("pid %d: %s = %lld%s, owner manual\n", o.pid, hak_knob_defs[ids[i]].name,
                   (long long)vals[i], class_word(ids[i], o.cls, cw, sizeof cw));
    }
    hak_shm_detach(&v);
    return rc;
}

int hk_cmd_reset(int argc, char **argv) {
    struct knob_opts o = {0, 0, -1, NULL, 0, 0, NULL};
    struct hak_shm_view v;
    char cw[32];
    int n, *ids;
    int rc = parse("reset", argc, argv, &o);
    if (rc != HK_OK || (rc = open_pick("reset", &o, 1, &v, &ids, &n)) != HK_OK) return rc;
    for (int i = 0; i < n && rc == HK_OK; i++) {
        int k = ids[i], global = hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL;
        int c0 = o.cls >= 0 ? o.cls : 0;
        int c1 = o.cls >= 0 ? o.cls + 1 : global ? 1 : hak_shm_nclasses(&v);
        /* one write per class: class-dependent defaults differ by class */
        for (int c = c0; c < c1 && rc == HK_OK; c++) {
            int64_t def = 0;
            hak_shm_knob_range(&v, k, c, NULL, NULL, &def);
            int r =
                hak_shm_knob_set(&v, k, global ? -1 : c, def, HAK_OWNER_DEFAULT, "hakctl reset");
            if (r != HAK_SHM_OK) rc = set_failed(&v, k, r, def);
        }
        if (rc == HK_OK)
            printf("pid %d: %s reset to default%s\n", o.pid, hak_knob_defs[k].name,
                   class_word(k, o.cls, cw, sizeof cw));
    }
    free(ids);
    hak_shm_detach(&v);
    return rc;
}

/* ------------------------------------------------------------------ trim */

int hk_cmd_trim(int argc, char **argv) {
    double wait = 1;
    int c, rc;
    pid_t pid;
    struct hak_shm_view v;
    while ((c = hk_getopt(argc, argv, hk_opts_trim)) != -1) {
        if (c != 'w') return hk_bad_option("trim", c, argv);
        if ((rc = hk_parse_sec("trim", optarg, &wait)) != HK_OK) return rc;
    }
    if (optind >= argc) return hk_usage("trim", "missing PID");
    if (optind + 1 < argc) return hk_usage("trim", "unexpected argument '%s'", argv[optind + 1]);
    if ((rc = hk_parse_pid("trim", argv[optind], &pid)) != HK_OK ||
        (rc = hk_open(pid, 1, &v)) != HK_OK)
        return rc;
    uint64_t released = hak_shm_proc(&v, HAK_PROC_RELEASED);
    hak_shm_request_trim(&v);
    uint64_t want = __atomic_load_n(&v.hdr->trim_req, __ATOMIC_ACQUIRE);
    hk_catch_sigint();
    /* the process serves it on its next slow path: a busy one at once */
    double end = hk_mono() + wait;
    int done = 0;
    while (!done && hk_mono() < end && !hk_sleep(0.01))
        done = __atomic_load_n(&v.hdr->trim_done, __ATOMIC_ACQUIRE) >= want;
    if (done) {
        char b[HK_NB];
        uint64_t now = hak_shm_proc(&v, HAK_PROC_RELEASED);
        printf("pid %d: trimmed, %s returned to the OS\n", pid,
               hk_bytes(b, now > released ? now - released : 0));
    } else {
        printf("pid %d: trim requested; the process serves it at its next allocation slow path\n",
               pid);
    }
    hak_shm_detach(&v);
    return HK_OK;
}
