/* shm_attach.c — the reader/writer side of the segment API (hakctl, hakmemd).
 *
 * A segment is memory of another process that anyone with its uid can
 * scribble on, so nothing in it is trusted. The file is opened the way the
 * JVM opens hsperfdata files (no symlink, one link, the caller's uid, not
 * group/other writable, size agreeing with the header before any other field
 * is read), then every offset, count and stride is checked against the mapped
 * length (hak_shm_validate). The header can still change under us after
 * that, so each accessor re-checks the few fields it uses: a hostile segment
 * gives wrong numbers, never a crash. (A segment file of an older hakmem
 * truncated by its owner after we mapped it can still raise SIGBUS; a
 * segment of this one is a memfd sealed against shrinking.)
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm_private.h"

/* ------------------------------------------------------- name resolution */

/* Compares a NUL-padded directory entry with our name without assuming the
 * entry is terminated (it may have changed since validation). */
static int name_eq(const char *ent, const char *ours) {
    size_t n = strlen(ours);
    return n < HAK_SHM_NAME_MAX && memcmp(ent, ours, n + 1) == 0;
}

static void map_names(struct hak_shm_view *v) {
    const char *b = (const char *)v->hdr;
    const struct hak_shm_header *h = v->hdr;
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        v->knob_map[k] = -1;
        for (uint32_t i = 0; i < h->n_knobs; i++) {
            const struct hak_shm_knob_desc *d =
                (const void *)(b + h->knob_dir_off + (size_t)i * sizeof *d);
            /* a knob whose scope changed is a different knob to us */
            if (name_eq(d->name, hak_knob_defs[k].name) && d->scope == hak_knob_defs[k].scope) {
                v->knob_map[k] = (int)i;
                break;
            }
        }
    }
    for (int c = 0; c < HAK_NUM_CTRS; c++) {
        v->ctr_map[c] = -1;
        for (uint32_t i = 0; i < h->n_ctrs; i++)
            if (name_eq(b + h->ctr_dir_off + (size_t)i * HAK_SHM_NAME_MAX, hak_ctr_names[c])) {
                v->ctr_map[c] = (int)i;
                break;
            }
    }
    for (int p = 0; p < HAK_NUM_PROCS; p++) {
        v->proc_map[p] = -1;
        for (uint32_t i = 0; i < h->n_proc; i++)
            if (name_eq(b + h->proc_dir_off + (size_t)i * HAK_SHM_NAME_MAX, hak_proc_names[p])) {
                v->proc_map[p] = (int)i;
                break;
            }
    }
}

/* ---------------------------------------------------------------- attach */

const char *hak_user_name(uid_t uid, char *buf, size_t n) {
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(buf, n, "%s", pw.pw_name);
    else
        snprintf(buf, n, "%u", (unsigned)uid);
    return buf;
}

/* open() failed: say why in words a user can act on. */
static int open_failed(const char *path, int writable, char *err, size_t errlen) {
    int e = errno;
    struct stat st;
    if (e == ENOENT || e == ENOTDIR) return shm_fail(err, errlen, HAK_SHM_ENOENT, "no %s", path);
    if (e == ELOOP)
        return shm_fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: it is a symlink", path);
    if (e == EISDIR || e == ENXIO) /* a directory (opened for writing), a socket */
        return shm_fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: not a regular file", path);
    if (e == EACCES || e == EPERM) {
        int known = lstat(path, &st) == 0;
        if (known && st.st_uid != geteuid()) {
            char who[64];
            return shm_fail(
                err, errlen, HAK_SHM_EACCES,
                "permission denied: %s belongs to uid %u (%s); run as that user or root", path,
                (unsigned)st.st_uid, hak_user_name(st.st_uid, who, sizeof who));
        }
        if (known)
            return shm_fail(err, errlen, HAK_SHM_EACCES, "permission denied: %s is mode 0%03o%s",
                            path, (unsigned)(st.st_mode & 07777),
                            writable ? " (opening it for writing)" : "");
        return shm_fail(err, errlen, HAK_SHM_EACCES, "permission denied: %s: %s", path,
                        strerror(e));
    }
    shm_fail(err, errlen, HAK_SHM_ESYS, "cannot open %s: %s", path, strerror(e));
    errno = e;
    return HAK_SHM_ESYS;
}

/* The uid process pid runs as (effective: the one its files get), or -1. */
static int proc_uid(pid_t pid, uid_t *uid) {
    char path[64], line[256];
    int found = -1;
    unsigned r, e;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    while (found < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %u %u", &r, &e) == 2) *uid = e, found = 0;
    fclose(f);
    return found;
}

/* The hsperfdata rule: a segment of process pid is a file of pid's user.
 * Anyone else (another user forging "live" figures for root's processes,
 * or a file for root's `hakctl set` to write into) is refused. */
static int owner_ok(uid_t owner, pid_t pid, const char *path, char *err, size_t errlen) {
    uid_t uid;
    char who[64], whose[64];
    if (pid <= 0 || proc_uid(pid, &uid) != 0 || owner == uid) return HAK_SHM_OK;
    return shm_fail(err, errlen, HAK_SHM_EACCES,
                    "refusing %s: it belongs to uid %u (%s) but process %d runs as uid %u (%s); "
                    "only the process's own user can have made its segment",
                    path, (unsigned)owner, hak_user_name(owner, who, sizeof who), (int)pid,
                    (unsigned)uid, hak_user_name(uid, whose, sizeof whose));
}

/* The hsperfdata checks on an open file. memfd: the file behind a link
 * (no name of its own, so no link count to check). */
static int file_ok(int fd, const char *path, int memfd, struct stat *st, char *err, size_t errlen) {
    uid_t me = geteuid();
    if (fstat(fd, st) != 0)
        return shm_fail(err, errlen, HAK_SHM_ESYS, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return shm_fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: not a regular file", path);
    if (!memfd && st->st_nlink != 1)
        return shm_fail(err, errlen, HAK_SHM_EUNSAFE,
                        "refusing %s: it has %lu hard links, expected 1", path,
                        (unsigned long)st->st_nlink);
    if (me != 0 && st->st_uid != me) {
        char who[64];
        return shm_fail(err, errlen, HAK_SHM_EACCES,
                        "permission denied: %s belongs to uid %u (%s), not to you (uid %u)", path,
                        (unsigned)st->st_uid, hak_user_name(st->st_uid, who, sizeof who),
                        (unsigned)me);
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return shm_fail(err, errlen, HAK_SHM_EACCES,
                        "refusing %s: mode 0%03o lets other users write it (expected 0600)", path,
                        (unsigned)(st->st_mode & 0777));
    if ((uint64_t)st->st_size < sizeof(struct hak_shm_header))
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "%s is truncated (%lld bytes)", path,
                        (long long)st->st_size);
    if ((uint64_t)st->st_size > MAX_LEN)
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "%s is implausibly large (%lld bytes)", path,
                        (long long)st->st_size);
    return HAK_SHM_OK;
}

/* End of the furthest table the header describes: a file larger than that
 * (rounded to a page) is padding no writer makes, and mapping it would let
 * a forged segment make us fault in memory for nothing. 0 if a count is
 * beyond the ABI's bounds (validation then says which). */
static uint64_t tables_end(const struct hak_shm_header *h) {
    if (h->n_classes > MAX_CLASSES || h->n_knobs > MAX_KNOBS || h->knob_cslots > MAX_CSLOTS ||
        h->n_ctrs > MAX_CTRS || h->n_slots > MAX_SLOTS || h->n_proc > MAX_PROCS ||
        h->knob_val_size > 4096 || h->slot_size > MAX_LEN ||
        h->n_knob_vals > (uint64_t)MAX_KNOBS * MAX_CSLOTS)
        return 0;
    uint64_t t[] =
        {
            h->header_size,
            h->class_off + (uint64_t)h->n_classes * 4,
            h->knob_dir_off + (uint64_t)h->n_knobs * sizeof(struct hak_shm_knob_desc),
            h->knob_val_off + (uint64_t)h->n_knob_vals * h->knob_val_size,
            h->ctr_dir_off + (uint64_t)h->n_ctrs * HAK_SHM_NAME_MAX,
            h->proc_dir_off + (uint64_t)h->n_proc * HAK_SHM_NAME_MAX,
            h->proc_off + (uint64_t)h->n_proc * 8,
            h->slot_off + (uint64_t)h->n_slots * h->slot_size,
        },
             end = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] > end) end = t[i];
    return (end + 4095) & ~(uint64_t)4095;
}

static void view_reset(struct hak_shm_view *v) {
    memset(v, 0, sizeof *v);
    for (int i = 0; i < HAK_NUM_KNOBS; i++) v->knob_map[i] = -1;
    for (int i = 0; i < HAK_NUM_CTRS; i++) v->ctr_map[i] = -1;
    for (int i = 0; i < HAK_NUM_PROCS; i++) v->proc_map[i] = -1;
}

/* Where a link made by hak_shm_create points: the memfd of its process,
 * opened through /proc/<host>/fd/<fd> (host: that process's pid in our pid
 * namespace, 0 to take the link's own, which must then be of our
 * namespace). Never followed: a link is only a pointer its owner wrote, so
 * its owner must be the process's user, and the fd must be a hakmem memfd. */
static int open_link(const char *path, const struct stat *ls, pid_t *host, int flags, char *err,
                     size_t errlen) {
    char text[HAK_SHM_LINK_MAX], fdpath[64], target[64];
    pid_t lpid;
    int lfd;
    uint64_t lns;
    ssize_t n = readlink(path, text, sizeof text - 1);
    if (n <= 0 || (text[n] = 0, hak_shm_link_parse(text, &lpid, &lfd, &lns) != 0))
        return shm_fail(err, errlen, HAK_SHM_EUNSAFE,
                        "refusing %s: it is a symlink, and not one hakmem makes", path);
    if (geteuid() != 0 && ls->st_uid != geteuid()) {
        char who[64];
        return shm_fail(err, errlen, HAK_SHM_EACCES,
                        "permission denied: %s belongs to uid %u (%s); run as that user or root",
                        path, (unsigned)ls->st_uid, hak_user_name(ls->st_uid, who, sizeof who));
    }
    if (*host == 0) {
        if (lns != hak_shm_pidns("/proc/self/ns/pid"))
            return shm_fail(err, errlen, HAK_SHM_ENOENT,
                            "%s: written in another pid namespace; `hakctl stats PID` with the "
                            "process's pid here reads it",
                            path);
        *host = lpid;
    }
    snprintf(fdpath, sizeof fdpath, "/proc/%d/ns/pid", (int)*host);
    /* ns 0: we may not look at the process's namespace (a protected pid 1);
     * then only a link of our own namespace can be its. lns 0: the writer
     * had no /proc. */
    uint64_t ns = hak_shm_pidns(fdpath);
    if (ns == 0) ns = hak_shm_pidns("/proc/self/ns/pid");
    if (ns != 0 && lns != 0 && lns != ns)
        return shm_fail(err, errlen, HAK_SHM_ENOENT,
                        "%s belongs to a process of another pid namespace, not to process %d", path,
                        (int)*host);
    int rc = owner_ok(ls->st_uid, *host, path, err, errlen);
    if (rc != HAK_SHM_OK) return rc;
    if (!shm_process_exists(*host))
        return shm_fail(err, errlen, HAK_SHM_ESTALE,
                        "process %d is gone; %s is a stale segment (`hakctl gc` removes it)",
                        (int)*host, path);
    snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", (int)*host, lfd);
    n = readlink(fdpath, target, sizeof target - 1);
    if (n < 0 && (errno == EACCES || errno == EPERM))
        return shm_fail(err, errlen, HAK_SHM_EACCES,
                        "permission denied: cannot look into process %d; run as its user or root",
                        (int)*host);
    if (n <= 0 || (target[n] = 0, strncmp(target, "/memfd:hakmem", 13) != 0))
        return shm_fail(err, errlen, HAK_SHM_ESTALE,
                        "%s is a stale segment: process %d no longer holds it (it exec'd a "
                        "program without hakmem, or the pid was reused; `hakctl gc` removes it)",
                        path, (int)*host);
    int fd = open(fdpath, flags);
    if (fd < 0) return open_failed(fdpath, flags & O_RDWR, err, errlen);
    return fd;
}

/* host: the writer's pid in our namespace, or 0 to take it from the file. */
static int attach_at(const char *path, pid_t host, int writable, struct hak_shm_view *v, char *err,
                     size_t errlen) {
    struct stat st, ls;
    struct hak_shm_header h;
    char msg[256];
    int rc, fd, memfd = 0;
    /* O_NONBLOCK: opening a FIFO planted under the name must not hang us. */
    int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    view_reset(v);
    if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
        fd = open_link(path, &ls, &host, flags, err, errlen);
        memfd = 1;
    } else {
        fd = open(path, flags | O_NOFOLLOW);
        if (fd < 0) return open_failed(path, writable, err, errlen);
    }
    if (fd < 0) return fd;
    rc = file_ok(fd, path, memfd, &st, err, errlen);
    if (rc == HAK_SHM_OK && pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        rc = shm_fail(err, errlen, HAK_SHM_ECORRUPT, "%s: cannot read its header", path);
    if (rc == HAK_SHM_OK && h.magic == HAK_SHM_MAGIC && h.abi_major == HAK_SHM_ABI_MAJOR) {
        uint64_t end = tables_end(&h);
        if (h.total_size != (uint64_t)st.st_size)
            rc = shm_fail(err, errlen, HAK_SHM_ECORRUPT,
                          "%s: size mismatch: header says %llu bytes, file has %lld", path,
                          (unsigned long long)h.total_size, (long long)st.st_size);
        else if (end && h.total_size > end)
            rc = shm_fail(err, errlen, HAK_SHM_ECORRUPT,
                          "%s: %llu bytes, but its tables end at %llu: refusing to map it", path,
                          (unsigned long long)h.total_size, (unsigned long long)end);
        else if (h.pid > 0)
            rc = owner_ok(st.st_uid, host ? host : h.pid, path, err, errlen);
    }
    if (rc != HAK_SHM_OK) {
        close(fd);
        return rc;
    }
    size_t len = (size_t)st.st_size;
    void *base = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) {
        errno = e;
        return shm_fail(err, errlen, HAK_SHM_ESYS, "cannot map %s: %s", path, strerror(e));
    }
    rc = hak_shm_validate(base, len, msg, sizeof msg);
    if (rc != HAK_SHM_OK) {
        munmap(base, len);
        return shm_fail(err, errlen, rc, "%s: %s", path, msg);
    }
    v->hdr = base;
    v->len = len;
    v->writable = writable;
    v->pid = ((const struct hak_shm_header *)base)->pid;
    map_names(v);
    return HAK_SHM_OK;
}

int hak_shm_attach_path(const char *path, int writable, struct hak_shm_view *v, char *err,
                        size_t errlen) {
    return attach_at(path, 0, writable, v, err, errlen);
}

/* The pid of a process as its own pid namespace sees it (last NSpid field):
 * that is the number in the name of the segment it created. */
static pid_t ns_pid(pid_t pid) {
    char path[64], line[256];
    pid_t inner = pid;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (!f) return pid;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "NSpid:", 6) == 0) {
            char *p = line + 6, *end;
            for (long x; (x = strtol(p, &end, 10)), end != p; p = end)
                if (x > 0 && x <= INT_MAX) inner = (pid_t)x;
            break;
        }
    fclose(f);
    return inner;
}

/* 1 if /proc/PID/root/dev/shm is another directory than our /dev/shm (the
 * process runs in another mount namespace) and we may look into it. */
static int other_dev_shm(pid_t pid) {
    char path[64];
    struct stat a, b;
    snprintf(path, sizeof path, "/proc/%d/root/dev/shm", pid);
    if (stat(path, &a) != 0 || stat("/dev/shm", &b) != 0) return 0;
    return a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

static void comm_of(pid_t pid, char *buf, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    buf[0] = 0;
    FILE *f = fopen(path, "re");
    if (!f) return;
    if (fgets(buf, (int)n, f)) buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

/* A process publishes under the pid its own namespace gives it, in the
 * /dev/shm it sees: /proc/PID/root/dev/shm for one in a container with its
 * own /dev/shm, ours (shared, as in a pod) otherwise. */
int hak_shm_attach(pid_t pid, int writable, struct hak_shm_view *v, char *err, size_t errlen) {
    char path[96];
    int rc;
    view_reset(v);
    if (pid <= 0) return shm_fail(err, errlen, HAK_SHM_ENOENT, "invalid pid %d", (int)pid);
    pid_t want = ns_pid(pid);
    if (other_dev_shm(pid))
        snprintf(path, sizeof path, "/proc/%d/root/dev/shm/" HAK_SHM_PREFIX "%d", pid, want);
    else
        snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", want);
    rc = attach_at(path, pid, writable, v, err, errlen);
    if (rc == HAK_SHM_ENOENT && !shm_process_exists(pid))
        return shm_fail(err, errlen, HAK_SHM_ENOENT, "no such process: %d", pid);
    if (rc == HAK_SHM_ENOENT && strncmp(err ? err : "", "no ", 3) == 0) {
        char comm[32];
        comm_of(pid, comm, sizeof comm);
        return shm_fail(err, errlen, HAK_SHM_ENOENT, "process %d%s%s%s does not use hakmem (no %s)",
                        pid, comm[0] ? " (" : "", comm, comm[0] ? ")" : "", path);
    }
    if (rc != HAK_SHM_OK) return rc;
    const struct hak_shm_header *h = v->hdr;
    char nspath[64];
    snprintf(nspath, sizeof nspath, "/proc/%d/ns/pid", pid);
    uint64_t ns = hak_shm_pidns(nspath);
    if (ns == 0) ns = hak_shm_pidns("/proc/self/ns/pid"); /* as in open_link */
    if (h->pid != want ||
        (HAK_SHM_HAS(h->header_size, pid_ns) && h->pid_ns && ns && LOAD(&h->pid_ns) != ns)) {
        int other = h->pid;
        hak_shm_detach(v);
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "%s: written by pid %d, not %d", path, other,
                        want);
    }
    v->pid = pid; /* our pid namespace's number: the one kill() and /proc use */
    return HAK_SHM_OK;
}

void hak_shm_detach(struct hak_shm_view *v) {
    if (v && v->hdr) munmap(v->hdr, v->len);
    if (v) view_reset(v);
}
