/* hakctl_target.c — turning a PID argument into a validated view, with
 * messages that say what went wrong and what to do about it. */
#include "hakctl.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

int hk_parse_pid(const char *cmd, const char *s, pid_t *pid) {
    char *end;
    errno = 0;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s) return hk_usage(cmd, "missing PID");
    if (errno || end == s || *end || x <= 0 || x > INT_MAX)
        return hk_usage(cmd, "'%s' is not a process id", s);
    *pid = (pid_t)x;
    return HK_OK;
}

int hk_parse_sec(const char *cmd, const char *s, double *sec) {
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !(x > 0) || x > 86400)
        return hk_usage(cmd, "'%s' is not a number of seconds (0 < SEC <= 86400)", s);
    *sec = x;
    return HK_OK;
}

/* Adds to the library's message the next step for the user. */
static const char *hint(int rc, const char *msg) {
    switch (rc) {
    case HAK_SHM_ENOENT:
        return strncmp(msg, "no such process", 15) == 0
                   ? "; `hakctl ps` lists the processes that use hakmem"
                   : "; start it with LD_PRELOAD=libhakmem.so to observe it";
    case HAK_SHM_EABI:
        return "; use the hakctl that came with that process's hakmem";
    case HAK_SHM_ECORRUPT:
        return "; the segment is damaged, not trusted";
    default:
        return "";
    }
}

int hk_open(pid_t pid, int writable, struct hak_shm_view *v) {
    char msg[512];
    int rc = hak_shm_attach(pid, writable, v, msg, sizeof msg);
    if (rc != HAK_SHM_OK) {
        hk_err("%s%s", msg, hint(rc, msg));
        return HK_ERR;
    }
    if (hak_shm_is_stale(v)) {
        int gone = kill(pid, 0) != 0 && errno == ESRCH;
        hk_err("process %d %s; /dev/shm/" HAK_SHM_PREFIX "%d is a stale segment "
               "(`hakctl gc` removes it)",
               pid, gone ? "is gone" : "is another program now (pid reused)", pid);
        hak_shm_detach(v);
        return HK_ERR;
    }
    return HK_OK;
}

const char *hk_exe(const struct hak_shm_view *v, char *buf, size_t n) {
    hk_clean(buf, n, v->hdr->exe, sizeof v->hdr->exe, 0);
    if (!buf[0]) snprintf(buf, n, "?");
    return buf;
}

const char *hk_user(uid_t uid, char *buf, size_t n) {
    return hak_user_name(uid, buf, n);
}

const char *hk_knob_list(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < HAK_NUM_KNOBS && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", k ? " " : "", hak_knob_defs[k].name);
    return buf;
}
