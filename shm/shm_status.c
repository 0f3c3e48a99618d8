/* shm_status.c — which segments exist and whether their process is still
 * the one that wrote them: it may have exited, its pid may belong to a later
 * process, or it may have exec'd a program without hakmem (same pid, same
 * start time, but its segment is no longer mapped). */
#include "shm_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pids we judge come from /proc or from segment names read through it,
 * so /proc has the last word: a process whose pid namespace is below the
 * one /proc was mounted for (`unshare -p -f` without --mount-proc) gets
 * ESRCH from kill() for every process /proc lists outside it, and gc would
 * call their segments stale. */
int shm_process_exists(pid_t pid) {
    if (kill(pid, 0) == 0 || errno != ESRCH) return 1;
    char path[32];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    return stat(path, &st) == 0;
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

/* Device and inode of the file mapped at addr in our own address space: the
 * identity of the segment a view maps, whatever name it was opened by (a
 * /dev/shm file, a file in a container's /dev/shm, a memfd). Maps lines are
 * "start-end perms offset major:minor inode path". */
static int mapped_id(pid_t pid, uintptr_t addr, unsigned *maj, unsigned *min,
                     unsigned long long *ino, int *found) {
    char path[64], *line = NULL;
    size_t cap = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    *found = 0;
    while (!*found && getline(&line, &cap, f) > 0) {
        unsigned long long lo, hi, off, i;
        unsigned a, b;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &a, &b, &i) != 7)
            continue;
        if (addr) { /* ours: the line that starts at addr */
            if (lo != addr) continue;
            *maj = a, *min = b, *ino = i, *found = 1;
        } else { /* theirs: any mapping of that file */
            *found = a == *maj && b == *min && i == *ino;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* 1 if the process no longer maps the segment v maps (it exec'd a program
 * without hakmem: same pid, same start time, frozen figures), 0 if it does,
 * -1 if we cannot tell (its maps are not ours to read). */
static int unmapped(const struct hak_shm_view *v, pid_t pid) {
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    int found = 0;
    if (mapped_id(getpid(), (uintptr_t)v->hdr, &maj, &min, &ino, &found) != 0 || !found) return -1;
    if (mapped_id(pid, 0, &maj, &min, &ino, &found) != 0) return -1;
    return !found;
}

/* When the maps are unreadable: 1 if /proc/PID/exe names another program
 * than the one that created the segment. An upgraded binary reads
 * "PATH (deleted)": the same program. */
static int exe_changed(const struct hak_shm_view *v, pid_t pid) {
    char path[64], now[sizeof v->hdr->exe_path + 16], was[sizeof v->hdr->exe_path];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, now, sizeof now - 1);
    memcpy(was, v->hdr->exe_path, sizeof was);
    was[sizeof was - 1] = 0;
    if (n <= 0 || !was[0] || strlen(was) >= sizeof was - 1) return 0; /* unknown, or cut */
    now[n] = 0;
    static const char del[] = " (deleted)";
    if ((size_t)n > sizeof del - 1 && strcmp(now + n - (sizeof del - 1), del) == 0)
        now[n - (sizeof del - 1)] = 0;
    return strcmp(now, was) != 0;
}

#define INIT_PID_NS 0xEFFFFFFCULL /* PROC_PID_INIT_INO: the host's pid namespace */

static uint64_t pid_ns_of(pid_t pid) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/ns/pid", pid);
    return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* The pid the process has in its own namespace (last NSpid field), 0 if
 * gone; *levels: how many namespaces the field lists (1: it is in ours). */
static pid_t inner_pid(pid_t pid, int *levels) {
    char path[64], line[256];
    pid_t inner = 0;
    *levels = 0;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "NSpid:", 6) == 0) {
            char *p = line + 6, *end;
            for (long x; (x = strtol(p, &end, 10)), end != p; p = end)
                if (x > 0 && x <= INT_MAX) inner = (pid_t)x, ++*levels;
            break;
        }
    fclose(f);
    return inner;
}

/* Our pid for the process that is `inner` in namespace ns. 0 if there is
 * none we can see; *proven says whether that proves it gone: only when we
 * are in the host namespace (we see every process) and could read the
 * namespace of every candidate. */
static pid_t find_in_ns(uint64_t ns, pid_t inner, int *proven) {
    DIR *d = opendir("/proc");
    pid_t found = 0;
    *proven = pid_ns_of(getpid()) == INIT_PID_NS;
    if (!d) return *proven = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        int levels;
        /* one level: a process of our own namespace, which is not ns */
        if (*end || p <= 0 || p > INT_MAX || inner_pid((pid_t)p, &levels) != inner || levels < 2)
            continue;
        uint64_t its = pid_ns_of((pid_t)p);
        if (its == ns) found = (pid_t)p;
        if (!its) *proven = 0; /* not ours to look at: cannot rule it out */
    }
    closedir(d);
    return found;
}

int hak_shm_is_stale(const struct hak_shm_view *v) {
    char state;
    unsigned long long start;
    if (!v || !v->hdr) return HAK_SHM_STALE_GONE;
    pid_t pid = v->pid;
    /* A segment from another pid namespace (a container sharing /dev/shm)
     * names its process by that namespace's number: find it among ours
     * before judging, and call it gone only when that is proven. */
    uint64_t ns = HAK_SHM_HAS(LOAD(&v->hdr->header_size), pid_ns) ? LOAD(&v->hdr->pid_ns) : 0;
    pid_t inner = LOAD(&v->hdr->pid);
    int proven, levels;
    if (ns && ns != pid_ns_of(getpid()) &&
        !(pid_ns_of(pid) == ns && inner_pid(pid, &levels) == inner)) {
        if (!(pid = find_in_ns(ns, inner, &proven))) return proven ? HAK_SHM_STALE_GONE : 0;
    }
    if (!shm_process_exists(pid)) return HAK_SHM_STALE_GONE;
    if (proc_stat(pid, &state, &start) != 0) return errno == ENOENT ? HAK_SHM_STALE_GONE : 0;
    if (state == 'Z' || state == 'X') return HAK_SHM_STALE_GONE; /* dead, not yet reaped */
    uint64_t want = LOAD(&v->hdr->start_time);
    if (want != 0 && want != start) return HAK_SHM_STALE_REUSED; /* 0: the allocator lacked it */
    int gone = unmapped(v, pid);
    if (gone < 0) gone = exe_changed(v, pid);
    return gone ? HAK_SHM_STALE_EXEC : 0;
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

/* Host pids of processes that live in pid namespaces below ours, by
 * (namespace, pid there): built with one pass over /proc when hak_shm_list
 * first meets a link written in another namespace (a container sharing our
 * /dev/shm: a pod, --ipc=host). Most systems have none, and pay nothing. */
struct ns_proc {
    uint64_t ns;
    pid_t inner, host;
};

static size_t ns_procs_scan(struct ns_proc **out) {
    size_t n = 0, cap = 0;
    *out = NULL;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        int levels;
        if (*end || p <= 0 || p > INT_MAX) continue;
        pid_t inner = inner_pid((pid_t)p, &levels);
        uint64_t ns;
        if (levels < 2 || !(ns = pid_ns_of((pid_t)p))) continue;
        if (n == cap) {
            struct ns_proc *np = realloc(*out, (cap = cap ? 2 * cap : 32) * sizeof *np);
            if (!np) break;
            *out = np;
        }
        (*out)[n++] = (struct ns_proc){ns, inner, (pid_t)p};
    }
    closedir(d);
    return n;
}

/* The pid to name the process behind /dev/shm/<name> by: the one in the
 * name if the link was written in our namespace (or is no link), else that
 * process's pid here when we can see it; 0 when it is in another namespace
 * and not found (its segment is judged by gc, not listed). */
static pid_t listed_pid(pid_t named, uint64_t self_ns, struct ns_proc **tab, size_t *ntab,
                        int *scanned) {
    char path[64], text[HAK_SHM_LINK_MAX];
    pid_t lpid;
    int lfd;
    uint64_t lns;
    snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", named);
    ssize_t k = readlink(path, text, sizeof text - 1);
    if (k <= 0 || (text[k] = 0, hak_shm_link_parse(text, &lpid, &lfd, &lns) != 0) || !lns ||
        !self_ns || lns == self_ns || lpid != named)
        return named;
    if (!*scanned) {
        *ntab = ns_procs_scan(tab);
        *scanned = 1;
    }
    for (size_t i = 0; i < *ntab; i++)
        if ((*tab)[i].ns == lns && (*tab)[i].inner == named) return (*tab)[i].host;
    return 0;
}

int hak_shm_list(int (*fn)(pid_t pid, const char *path, void *arg), void *arg) {
    DIR *d = opendir("/dev/shm");
    struct {
        pid_t pid, named;
    } *pids = NULL;
    size_t n = 0, cap = 0, ntab = 0;
    struct ns_proc *tab = NULL;
    int rc = 0, scanned = 0;
    uint64_t self_ns = hak_shm_pidns("/proc/self/ns/pid");
    if (!d) return HAK_SHM_ESYS;
    for (struct dirent *e; (e = readdir(d));) {
        pid_t p = name_pid(e->d_name);
        if (!p) continue;
        pid_t host = listed_pid(p, self_ns, &tab, &ntab, &scanned);
        if (!host) host = p; /* not found: gc judges it by its namespace */
        if (n == cap) {
            void *np = realloc(pids, (cap = cap ? 2 * cap : 64) * sizeof *pids);
            if (!np) break;
            pids = np;
        }
        pids[n].pid = host;
        pids[n++].named = p;
    }
    closedir(d);
    free(tab);
    qsort(pids, n, sizeof *pids, cmp_pid); /* by pid (the first member): a readable order */
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[64];
        snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", pids[i].named);
        rc = fn(pids[i].pid, path, arg);
    }
    free(pids);
    return rc;
}
