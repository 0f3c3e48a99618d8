/* hakctl_daemon.c — `hakctl daemon`: is hakmemd up and what is it doing,
 * from the status file it rewrites every tick; and the mark `ps` puts on
 * processes hakmemd manages (a live lease in their segment). */
#include "hakctl.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

pid_t hk_daemon_mark(const struct hak_shm_view *v, char *buf, size_t n) {
    pid_t d;
    size_t len = strlen(buf);
    if (hak_shm_lease_get(v, &d, NULL) != 1) return 0;
    if (len < n) snprintf(buf + len, n - len, "*");
    return d;
}

void hk_daemon_json(const struct hak_shm_view *v, cJSON *o) {
    pid_t d;
    if (hak_shm_lease_get(v, &d, NULL) == 1) cJSON_AddNumberToObject(o, "managed_by", d);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    char *buf = malloc(65536);
    size_t len = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

/* Up: the file says so, its pid is a running hakmemd, and it was
 * rewritten within three intervals (at least 5 s). */
static int is_up(const cJSON *o, const char **why) {
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(o, "up");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "pid");
    const cJSON *upd = cJSON_GetObjectItemCaseSensitive(o, "updated");
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(o, "interval_ms");
    char path[64], comm[32] = "";
    if (!cJSON_IsTrue(up)) return *why = "stopped", 0;
    if (!cJSON_IsNumber(pid) || !cJSON_IsNumber(upd)) return *why = "status file incomplete", 0;
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid->valuedouble);
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
        fclose(f);
    }
    if (strncmp(comm, "hakmemd", 7) != 0) return *why = "not running (died without cleaning up)", 0;
    double stale = cJSON_IsNumber(iv) ? 3 * iv->valuedouble / 1000 : 3;
    if (stale < 5) stale = 5;
    if ((double)time(NULL) - upd->valuedouble > stale) return *why = "not responding", 0;
    return 1;
}

static double num(const cJSON *o, const char *name) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(x) ? x->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *name) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(x) ? x->valuestring : "";
}

int hk_cmd_daemon(int argc, char **argv) {
    char mine[512] = "";
    const char *home = getenv("HOME");
    if (home && home[0]) snprintf(mine, sizeof mine, "%s/.local/state/hakmemd/status.json", home);
    const char *paths[] = {"/run/hakmemd/status.json", "/var/lib/hakmemd/status.json",
                           mine[0] ? mine : NULL, NULL};
    const char *path = NULL, *why = "";
    int json = hk_json_default, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:jh", hk_opts_daemon, NULL)) != -1) {
        if (c == 's')
            path = optarg;
        else if (c == 'j')
            json = 1;
        else
            return hk_bad_option("daemon", c, argv);
    }
    if (optind < argc) return hk_usage("daemon", "unexpected argument '%s'", argv[optind]);
    char *text = NULL;
    if (path) {
        text = read_text(path);
    } else {
        for (int i = 0; paths[i] && !text; i++) text = read_text(path = paths[i]);
    }
    if (!text) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddBoolToObject(o, "up", 0);
            cJSON_AddStringToObject(o, "reason", "no status file");
            hk_json_print(o, 0);
        } else {
            printf("hakmemd: down (no status file%s%s)\n", path ? " " : "", path ? path : "");
        }
        return HK_ERR;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        hk_err("%s: not a hakmemd status file", path);
        return HK_ERR;
    }
    int up = is_up(o, &why);
    if (json) {
        cJSON_ReplaceItemInObject(o, "up", cJSON_CreateBool(up));
        if (!up) cJSON_AddStringToObject(o, "reason", why);
        cJSON_AddStringToObject(o, "status_file", path);
        hk_json_print(o, 0);
        return up ? HK_OK : HK_ERR;
    }
#define NUM(name) num(o, name)
#define STR(name) str(o, name)
    if (up)
        printf("hakmemd: up (pid %d, %.0f s)%s\n", (int)NUM("pid"), NUM("uptime_s"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "dry_run")) ? ", dry run" : "");
    else
        printf("hakmemd: down (%s; last pid %d)\n", why, (int)NUM("pid"));
    printf("processes managed:     %.0f\n", NUM("processes"));
    if (NUM("processes_of_other_daemons") > 0)
        printf("left to other daemons: %.0f (another hakmemd holds their lease)\n",
               NUM("processes_of_other_daemons"));
    printf("decisions last minute: %.0f (%.0f in all)\n", NUM("decisions_last_minute"),
           NUM("decisions_total"));
    printf("BPF:                   %s%s%s\n",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "bpf")) ? "on" : "off",
           STR("bpf_reason")[0] ? " - " : "", STR("bpf_reason"));
    printf("state:                 %s\n", STR("state_dir"));
    printf("status file:           %s\n", path);
#undef NUM
#undef STR
    cJSON_Delete(o);
    return up ? HK_OK : HK_ERR;
}
