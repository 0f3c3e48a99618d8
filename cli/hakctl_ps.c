/* hakctl_ps.c — `hakctl ps`, and the scan of every segment it shares with
 * top: attach each /dev/shm/hakmem.<pid> read-only, classify it (live,
 * stale, unreadable) and sample its counters. */
#include "hakctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct scan {
    struct hk_proc *p;
    int n, cap;
};

/* The process's name as /proc has it (raw: hk_clean before printing). */
static void comm_of(pid_t pid, char *buf, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    buf[0] = 0;
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(buf, (int)n, f)) buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

/* A one-phrase reason for a ps row; the full message goes to --json. */
static const char *short_why(int rc) {
    switch (rc) {
    case HAK_SHM_EACCES:
        return "permission denied";
    case HAK_SHM_EUNSAFE:
        return "unsafe file, refused";
    case HAK_SHM_ECORRUPT:
        return "corrupt segment";
    case HAK_SHM_EABI:
        return "other segment ABI"; /* newer or older: --json says which */
    default:
        return "cannot read";
    }
}

static void truncated(struct hk_proc *p) {
    p->state = HK_BAD;
    p->err = HAK_SHM_ECORRUPT;
    snprintf(p->why, sizeof p->why, "segment truncated while being read");
}

static void classify(struct hk_proc *p, const char *path) {
    char msg[256];
    struct stat st;
    if (lstat(path, &st) == 0) p->uid = st.st_uid;
    /* by pid: the library resolves how a segment is published */
    int rc = hak_shm_attach(p->pid, 0, &p->v, msg, sizeof msg);
    int alive = kill(p->pid, 0) == 0 || errno != ESRCH;
    if (rc != HAK_SHM_OK) {
        p->state = !alive ? HK_GONE : rc == HAK_SHM_ESTALE ? HK_STALE : HK_BAD;
        p->stale = !alive ? HAK_SHM_STALE_GONE : rc == HAK_SHM_ESTALE ? HAK_SHM_STALE_EXEC : 0;
        p->err = rc;
        snprintf(p->why, sizeof p->why, "%s", msg);
        snprintf(p->exe, sizeof p->exe, "?");
        if (alive) comm_of(p->pid, p->exe, sizeof p->exe);
        return;
    }
    snprintf(p->exe, sizeof p->exe, "%.*s", (int)sizeof p->v.hdr->exe, p->v.hdr->exe);
    if (!p->exe[0]) snprintf(p->exe, sizeof p->exe, "?");
    if ((p->stale = hak_shm_is_stale(&p->v)) != 0) {
        p->state = p->stale == HAK_SHM_STALE_GONE ? HK_GONE : HK_STALE;
    } else {
        p->state = HK_LIVE;
        hk_procs_sample(p, 1);
    }
}

static void classify_guarded(void *arg) {
    struct hk_proc *p = arg;
    classify(p, p->path);
}

static int scan_one(pid_t pid, const char *path, void *arg) {
    struct scan *s = arg;
    if (s->n == s->cap) {
        struct hk_proc *np =
            realloc(s->p, (size_t)(s->cap = s->cap ? 2 * s->cap : 16) * sizeof *np);
        if (!np) return 1;
        s->p = np;
    }
    struct hk_proc *p = &s->p[s->n++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->path = path;
    if (hk_guard(classify_guarded, p) != 0) {
        truncated(p);
        hak_shm_detach(&p->v);
    }
    if (p->err == HAK_SHM_ENOENT) s->n--; /* unlinked since listed: exited cleanly */
    return 0;
}

int hk_procs_scan(struct hk_proc **out, int *n) {
    struct scan s = {NULL, 0, 0};
    int rc = hak_shm_list(scan_one, &s);
    *out = s.p;
    *n = s.n;
    if (rc < 0) hk_err("cannot read /dev/shm: %s", strerror(errno));
    return rc < 0 ? -1 : 0;
}

static void sample_one(void *arg) {
    struct hk_proc *p = arg;
    if (hk_sample_take(&p->v, &p->cur) != 0) {
        p->nsamples = 0; /* out of memory: shown as "cannot sample" */
        return;
    }
    p->nsamples++;
    hk_figs_free(&p->f);
    hk_derive(p->nsamples > 1 ? &p->prev : NULL, &p->cur, &p->f);
}

void hk_procs_sample(struct hk_proc *p, int n) {
    for (int i = 0; i < n; i++, p++) {
        if (p->state != HK_LIVE) continue;
        if (p->nsamples) {
            if (p->nsamples > 1) hk_sample_free(&p->prev);
            p->prev = p->cur;
            memset(&p->cur, 0, sizeof p->cur);
        }
        if (hk_guard(sample_one, p) != 0) { /* truncated under us */
            hk_sample_free(&p->cur);
            if (p->nsamples) hk_sample_free(&p->prev);
            hk_figs_free(&p->f);
            p->nsamples = 0;
            truncated(p);
        }
    }
}

int hk_procs_live(const struct hk_proc *p, int n) {
    int live = 0;
    for (int i = 0; i < n; i++) live += p[i].state == HK_LIVE;
    return live;
}

void hk_procs_free(struct hk_proc *p, int n) {
    for (int i = 0; i < n; i++) {
        if (p[i].nsamples > 1) hk_sample_free(&p[i].prev);
        if (p[i].nsamples) hk_sample_free(&p[i].cur);
        hk_figs_free(&p[i].f);
        hak_shm_detach(&p[i].v);
    }
    free(p);
}

static const char *const state_names[] = {"live", "stale", "stale", "error"};

static cJSON *json_entry(const struct hk_proc *p);

struct json_entry {
    const struct hk_proc *p;
    cJSON *o;
};

static void json_entry_guarded(void *arg) {
    struct json_entry *e = arg;
    e->o = json_entry(e->p);
}

/* The entry, or a bare error entry when the segment shrank under us. */
cJSON *hk_json_ps_entry(const struct hk_proc *p) {
    struct json_entry e = {p, NULL};
    if (hk_guard(json_entry_guarded, &e) == 0) return e.o;
    cJSON_Delete(e.o);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", p->pid);
    cJSON_AddStringToObject(o, "exe", "");
    cJSON_AddStringToObject(o, "state", "error");
    cJSON_AddStringToObject(o, "error", "segment truncated while being read");
    return o;
}

static cJSON *json_entry(const struct hk_proc *p) {
    char user[64];
    cJSON *o = p->v.hdr ? hk_json_proc(&p->v) : cJSON_CreateObject();
    if (!p->v.hdr) {
        char exe[sizeof p->exe * 4 + 1];
        cJSON_AddNumberToObject(o, "pid", p->pid);
        hk_clean(exe, sizeof exe, p->exe, sizeof p->exe, 1);
        cJSON_AddStringToObject(o, "exe", p->state == HK_BAD ? exe : "");
    }
    cJSON_ReplaceItemInObject(o, "pid", cJSON_CreateNumber(p->pid));
    cJSON_AddStringToObject(o, "user", hk_user(p->uid, user, sizeof user));
    cJSON_AddStringToObject(o, "state", state_names[p->state]);
    if (p->state == HK_STALE || p->state == HK_GONE)
        cJSON_AddStringToObject(o, "stale_reason", hk_stale_why(p->stale));
    if (p->why[0]) {
        char why[sizeof p->why * 4 + 1];
        hk_clean(why, sizeof why, p->why, sizeof p->why, 1);
        cJSON_AddStringToObject(o, "error", why);
    }
    if (p->state == HK_LIVE && p->nsamples) {
        cJSON_AddNumberToObject(o, "threads", (double)p->cur.proc[HAK_PROC_THREADS]);
        cJSON_AddItemToObject(o, "totals", hk_json_figs_totals(&p->f, &p->cur));
        cJSON_AddNumberToObject(o, "bytes_in_use", (double)p->f.in_use);
        cJSON_AddNumberToObject(o, "bytes_cached", (double)p->f.cached);
        hk_daemon_json(&p->v, o);
        if (p->f.interval > 0)
            cJSON_AddNumberToObject(o, "ops_per_s", p->f.ops_s);
        else
            cJSON_AddNullToObject(o, "ops_per_s");
    }
    return o;
}

static void print_row(const struct hk_proc *p);

/* Daemons whose lease manages a listed process: rows carry "*" in KNOBS and
 * the table ends with one footnote per daemon (rows stay within 80 columns). */
static pid_t managers[8];
static int nmanagers;

static void note_manager(pid_t d) {
    for (int i = 0; i < nmanagers; i++)
        if (managers[i] == d) return;
    if (nmanagers < (int)(sizeof managers / sizeof *managers)) managers[nmanagers++] = d;
}

static void print_row_guarded(void *arg) {
    const struct hk_proc *p = arg;
    print_row(p);
}

/* "manual:2,daemon:5,env:3*" -> "m:2,d:5,e:3*": the KNOBS column where the
 * long form would push the row past 80 columns (--json has the whole story). */
static void abbreviate_owners(char *s) {
    char *w = s;
    for (const char *r = s; *r;) {
        if (*r >= 'a' && *r <= 'z') {
            *w++ = *r;
            while (*r >= 'a' && *r <= 'z') r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
}

static void print_row(const struct hk_proc *p) {
    char user[64], up[HK_NB], thr[HK_NB], use[HK_NB], cache[HK_NB], ops[HK_NB], owners[64];
    char exe[15]; /* the column: whole characters or escapes only */
    hk_user(p->uid, user, sizeof user);
    hk_clean(exe, sizeof exe, p->exe, sizeof p->exe, 0);
    if (p->state == HK_STALE || p->state == HK_GONE) {
        char now[16] = "";
        if (p->state == HK_STALE) { /* the program the pid runs now */
            char raw[64];
            comm_of(p->pid, raw, sizeof raw);
            hk_clean(now, sizeof now, raw, sizeof raw, 0);
        }
        const char *why = hk_stale_why(p->stale);
        const char *sep = !now[0] ? "" : p->stale == HAK_SHM_STALE_REUSED ? " by " : ", now ";
        /* 32 columns before "stale: ": the rest of 80 for the reason */
        int room = 80 - 32 - 7 - (int)strlen(why) - (int)strlen(sep);
        printf("%7d %-8.8s %-14s stale: %s%s%.*s\n", p->pid, user, exe, why, sep,
               room > 0 ? room : 0, now);
        return;
    }
    if (p->state == HK_BAD || !p->nsamples) {
        printf("%7d %-8.8s %-14s ? %s\n", p->pid, user, exe,
               p->err ? short_why(p->err) : "cannot sample");
        return;
    }
    hk_owner_summary(&p->v, owners, sizeof owners);
    pid_t d = hk_daemon_mark(&p->v, owners, sizeof owners);
    if (d) note_manager(d);
    if (strlen(owners) > 15) abbreviate_owners(owners); /* 65 columns before it */
    printf("%7d %-8.8s %-14s %6s %3s %6s %6s %6s %s\n", p->pid, user, exe,
           hk_dur(up, hk_uptime(&p->v)), hk_num(thr, p->cur.proc[HAK_PROC_THREADS]),
           hk_bytes_short(use, p->f.in_use), hk_bytes_short(cache, p->f.cached),
           p->f.interval > 0 ? hk_rate(ops, p->f.ops_s) : "-", owners);
}

int hk_cmd_ps(int argc, char **argv) {
    int json = hk_json_default, c, rc;
    double interval = 0.25;
    while ((c = hk_getopt(argc, argv, hk_opts_ps)) != -1) {
        if (c == 'j')
            json = 1;
        else if (c == 'i') {
            if ((rc = hk_parse_sec("ps", optarg, &interval)) != HK_OK) return rc;
        } else
            return hk_bad_option("ps", c, argv);
    }
    if (optind < argc) return hk_usage("ps", "unexpected argument '%s'", argv[optind]);
    struct hk_proc *p;
    int n;
    if (hk_procs_scan(&p, &n) != 0) return HK_ERR;
    if (hk_procs_live(p, n)) { /* rates need a second sample */
        hk_catch_sigint();
        hk_sleep(interval);
        hk_procs_sample(p, n);
    }
    if (json) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, hk_json_ps_entry(&p[i]));
        hk_json_print(a, 0);
    } else if (n == 0) {
        printf("no process uses hakmem (no /dev/shm/" HAK_SHM_PREFIX "* segment)\n");
    } else {
        printf("%7s %-8s %-14s %6s %3s %6s %6s %6s %s\n", "PID", "USER", "EXE", "UPTIME", "THR",
               "IN USE", "CACHED", "OPS/s", "KNOBS");
        for (int i = 0; i < n; i++)
            if (hk_guard(print_row_guarded, &p[i]) != 0)
                printf("%7d ? segment truncated while being read\n", p[i].pid);
        for (int i = 0; i < nmanagers; i++) printf("* managed by hakmemd %d\n", (int)managers[i]);
    }
    hk_procs_free(p, n);
    return HK_OK;
}
