/* status.c — the status file `hakctl daemon` reads (JSON, replaced
 * atomically every tick): up, pid, processes managed, decisions in the last
 * minute, BPF on/off and why. */
#include "hakd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The daemon a status file names (pid and lease tag), if it is gone; else
 * pid 0. Its leases are this daemon's to take over at once: same status
 * file, same daemon, restarted (apply.c, claim). */
void hakd_status_predecessor(const char *path, pid_t *pid, uint32_t *tag) {
    *pid = 0;
    *tag = 0;
    FILE *f = fopen(path, "re");
    if (!f) return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *o = cJSON_Parse(buf);
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(o, "pid");
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(o, "lease_tag");
    pid_t p = cJSON_IsNumber(jp) && jp->valuedouble > 1 && jp->valuedouble < 1 << 30
                  ? (pid_t)jp->valuedouble
                  : 0;
    /* a status file from before the tag: the pid alone, as then */
    uint32_t t = cJSON_IsNumber(jt) && jt->valuedouble >= 0 && jt->valuedouble < 4294967296.0
                     ? (uint32_t)jt->valuedouble
                     : 0;
    cJSON_Delete(o);
    if (p == getpid() || (p && kill(p, 0) == 0) || (p && errno != ESRCH)) return; /* alive */
    *pid = p;
    *tag = t;
}

int hakd_count_managed(const struct hakd_state *st, int *others) {
    int managed = 0;
    *others = 0;
    for (int i = 0; i < st->nprocs; i++) {
        managed += st->procs[i]->managed;
        *others += st->procs[i]->other_daemon != 0;
    }
    return managed;
}

static int last_minute(const struct hakd_state *st) {
    uint64_t now = hakd_now_ns();
    int n = 0;
    for (unsigned i = 0; i < 256; i++) /* the ring: 0 = never used */
        if (st->decision_times[i] && now - st->decision_times[i] < 60000000000ull) n++;
    return n;
}

void hakd_status_write(struct hakd_state *st, int up) {
    char tmp[600];
    int others, managed = hakd_count_managed(st, &others);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "hakmemd_status", 1);
    cJSON_AddBoolToObject(o, "up", up);
    cJSON_AddNumberToObject(o, "pid", getpid());
    cJSON_AddNumberToObject(o, "lease_tag", st->lease_tag);
    cJSON_AddNumberToObject(o, "updated", (double)time(NULL));
    cJSON_AddNumberToObject(o, "uptime_s", (double)(hakd_now_ns() - st->started_ns) / 1e9);
    cJSON_AddNumberToObject(o, "interval_ms", st->cfg.interval_ms);
    cJSON_AddNumberToObject(o, "processes", managed);
    cJSON_AddNumberToObject(o, "processes_of_other_daemons", others);
    cJSON_AddNumberToObject(o, "decisions_last_minute", last_minute(st));
    cJSON_AddNumberToObject(o, "decisions_total", (double)st->decisions_total);
    cJSON_AddNumberToObject(o, "segments_removed", (double)st->removed_total);
    cJSON_AddBoolToObject(o, "bpf", st->bpf_on);
    cJSON_AddStringToObject(o, "bpf_reason", st->bpf_why);
    cJSON_AddStringToObject(o, "bpf_syscalls", hakd_bpf_syscalls());
    cJSON_AddBoolToObject(o, "bpf_faults", hakd_bpf_faults());
    cJSON_AddBoolToObject(o, "dry_run", st->dry_run);
    cJSON_AddStringToObject(o, "state_dir", st->state_dir);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return;
    snprintf(tmp, sizeof tmp, "%s.tmp", st->status_path);
    FILE *f = fopen(tmp, "we");
    if (f) {
        int bad = fputs(text, f) < 0;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, st->status_path) != 0) unlink(tmp);
    }
    free(text);
}
