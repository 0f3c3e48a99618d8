/* shm_status.c — which segments exist and whether their process is still
 * the one that wrote them (pid reuse, exit, exec). */
#include "shm_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int shm_process_exists(pid_t pid) {
    return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Process state and start time (fields 3 and 22 of /proc/PID/stat); the
 * command name (field 2) may hold spaces and parentheses: parse after the
 * last ')'. Returns 0, or -1 if the process has no /proc entry. */
static int proc_stat(pid_t pid, char *state, unsigned long long *start) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p ||
        sscanf(p + 1,
               " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
               state, start) != 2)
        return -1;
    return 0;
}

int hak_shm_is_stale(const struct hak_shm_view *v) {
    char state;
    unsigned long long start;
    if (!v || !v->hdr) return 1;
    if (!shm_process_exists(v->pid)) return 1;
    if (proc_stat(v->pid, &state, &start) != 0) return errno == ENOENT;
    if (state == 'Z' || state == 'X') return 1; /* dead, not yet reaped */
    uint64_t want = LOAD(&v->hdr->start_time);
    return want != 0 && want != start; /* 0: the allocator could not read it */
}

static int cmp_pid(const void *a, const void *b) {
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* "hakmem.<pid>" with a canonical decimal pid (no sign, no leading zero). */
static pid_t name_pid(const char *name) {
    size_t pl = strlen(HAK_SHM_PREFIX);
    const char *d = name + pl;
    if (strncmp(name, HAK_SHM_PREFIX, pl) != 0 || *d < '1' || *d > '9' || strlen(d) > 10) return 0;
    long long x = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9') return 0;
        x = x * 10 + (*d - '0');
    }
    return x <= INT_MAX ? (pid_t)x : 0;
}

int hak_shm_list(int (*fn)(pid_t pid, const char *path, void *arg), void *arg) {
    DIR *d = opendir("/dev/shm");
    pid_t *pids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!d) return HAK_SHM_ESYS;
    for (struct dirent *e; (e = readdir(d));) {
        pid_t p = name_pid(e->d_name);
        if (!p) continue;
        if (n == cap) {
            pid_t *np = realloc(pids, (cap = cap ? 2 * cap : 64) * sizeof *pids);
            if (!np) break;
            pids = np;
        }
        pids[n++] = p;
    }
    closedir(d);
    qsort(pids, n, sizeof *pids, cmp_pid); /* stable, readable order */
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[64];
        snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", pids[i]);
        rc = fn(pids[i], path, arg);
    }
    free(pids);
    return rc;
}
