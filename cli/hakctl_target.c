/* hakctl_target.c — turning a PID argument into a validated view, with
 * messages that say what went wrong and what to do about it. */
#include "hakctl.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

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
    int rc = hak_shm_attach(pid, writable, v, msg, sizeof msg), stale;
    if (rc != HAK_SHM_OK) { /* the message may quote a process's name */
        char text[sizeof msg * 4];
        hk_clean(text, sizeof text, msg, sizeof msg, 0);
        hk_err("%s%s", text, hint(rc, msg));
        return HK_ERR;
    }
    if ((stale = hak_shm_is_stale(v)) != 0) {
        static const char *const what[] = {
            "", "is gone", "is another program now (pid reused)",
            "exec'd a program without hakmem: its segment is no longer updated"};
        hk_err("process %d %s; /dev/shm/" HAK_SHM_PREFIX "%d is a stale segment "
               "(`hakctl gc` removes it)",
               pid, what[stale < 4 ? stale : 3], pid);
        hak_shm_detach(v);
        return HK_ERR;
    }
    return HK_OK;
}

const char *hk_exe(const struct hak_shm_view *v, char *buf, size_t n) {
    hk_clean(buf, n, v->hdr->exe, sizeof v->hdr->exe, 0); /* whole characters: n bounds it */
    if (!buf[0]) snprintf(buf, n, "?");
    return buf;
}

const char *hk_stale_why(int stale) {
    switch (stale) {
    case HAK_SHM_STALE_GONE:
        return "process gone";
    case HAK_SHM_STALE_REUSED:
        return "pid reused";
    default:
        return "exec'd without hakmem";
    }
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
