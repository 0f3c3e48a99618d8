/* shm_attach.c — the reader/writer side of the segment API (hakctl, hakmemd).
 *
 * A segment is memory of another process that anyone with its uid can
 * scribble on, so nothing in it is trusted. The file is opened the way the
 * JVM opens hsperfdata files (no symlink, one link, the caller's uid, not
 * group/other writable, size agreeing with the header before any other field
 * is read), then every offset, count and stride is checked against the mapped
 * length (hak_shm_validate). The header can still change under us after
 * that, so each accessor re-checks the few fields it uses: a hostile segment
 * gives wrong numbers, never a crash. (A file truncated by its owner after we
 * mapped it can still raise SIGBUS; only that uid or root can do that.)
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

/* The hsperfdata checks on an open file. */
static int file_ok(int fd, const char *path, struct stat *st, char *err, size_t errlen) {
    uid_t me = geteuid();
    if (fstat(fd, st) != 0)
        return shm_fail(err, errlen, HAK_SHM_ESYS, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return shm_fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: not a regular file", path);
    if (st->st_nlink != 1)
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

static void view_reset(struct hak_shm_view *v) {
    memset(v, 0, sizeof *v);
    for (int i = 0; i < HAK_NUM_KNOBS; i++) v->knob_map[i] = -1;
    for (int i = 0; i < HAK_NUM_CTRS; i++) v->ctr_map[i] = -1;
    for (int i = 0; i < HAK_NUM_PROCS; i++) v->proc_map[i] = -1;
}

int hak_shm_attach_path(const char *path, int writable, struct hak_shm_view *v, char *err,
                        size_t errlen) {
    struct stat st;
    struct hak_shm_header h;
    char msg[256];
    int rc;
    view_reset(v);
    /* O_NONBLOCK: opening a FIFO planted under the name must not hang us. */
    int fd =
        open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return open_failed(path, writable, err, errlen);
    rc = file_ok(fd, path, &st, err, errlen);
    if (rc == HAK_SHM_OK && pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        rc = shm_fail(err, errlen, HAK_SHM_ECORRUPT, "%s: cannot read its header", path);
    if (rc == HAK_SHM_OK && h.magic == HAK_SHM_MAGIC && h.abi_major == HAK_SHM_ABI_MAJOR &&
        h.total_size != (uint64_t)st.st_size)
        rc = shm_fail(err, errlen, HAK_SHM_ECORRUPT,
                      "%s: size mismatch: header says %llu bytes, file has %lld", path,
                      (unsigned long long)h.total_size, (long long)st.st_size);
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

int hak_shm_attach(pid_t pid, int writable, struct hak_shm_view *v, char *err, size_t errlen) {
    char path[96];
    pid_t want = pid;
    int rc;
    view_reset(v);
    if (pid <= 0) return shm_fail(err, errlen, HAK_SHM_ENOENT, "invalid pid %d", (int)pid);
    snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", pid);
    rc = hak_shm_attach_path(path, writable, v, err, errlen);
    if (rc == HAK_SHM_ENOENT && other_dev_shm(pid)) { /* a process in a container */
        want = ns_pid(pid);
        snprintf(path, sizeof path, "/proc/%d/root/dev/shm/" HAK_SHM_PREFIX "%d", pid, want);
        rc = hak_shm_attach_path(path, writable, v, err, errlen);
    }
    if (rc == HAK_SHM_ENOENT) {
        char comm[32];
        if (!shm_process_exists(pid))
            return shm_fail(err, errlen, HAK_SHM_ENOENT, "no such process: %d", pid);
        comm_of(pid, comm, sizeof comm);
        return shm_fail(err, errlen, HAK_SHM_ENOENT,
                        "process %d%s%s%s does not use hakmem (no /dev/shm/" HAK_SHM_PREFIX "%d)",
                        pid, comm[0] ? " (" : "", comm, comm[0] ? ")" : "", pid);
    }
    if (rc != HAK_SHM_OK) return rc;
    if (v->hdr->pid != want) {
        int other = v->hdr->pid;
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
