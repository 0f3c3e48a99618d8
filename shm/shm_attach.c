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
#include "hakmem_shm.h"

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

/* Racy reads of fields another process writes: one untorn load each. */
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* Bounds that no sane segment exceeds; they keep every product below 2^63. */
#define MAX_CLASSES 1024
#define MAX_CSLOTS (MAX_CLASSES + 1)
#define MAX_KNOBS 1024
#define MAX_CTRS 1024
#define MAX_SLOTS 65536
#define MAX_PROCS 1024
#define MAX_LEN (1ULL << 32)
#define LOCK_STEAL_NS 100000000LL /* 100 ms: writers hold the lock for microseconds */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A table of n entries of stride bytes at off lies inside [hdr_size, len)
 * and is aligned to align. uint64 arithmetic: the bounds above keep n*stride
 * far from overflow. */
static int table_ok(uint64_t off, uint64_t n, uint64_t stride, uint64_t align, uint64_t hdr_size,
                    uint64_t len) {
    return off % align == 0 && off >= hdr_size && off <= len && n * stride <= len - off;
}

/* ------------------------------------------------------------ validation */

static int names_ok(const char *base, uint32_t off, uint32_t n, size_t stride) {
    for (uint32_t i = 0; i < n; i++)
        if (!memchr(base + off + (size_t)i * stride, 0, HAK_SHM_NAME_MAX)) return 0;
    return 1;
}

static int classes_ok(const char *base, const struct hak_shm_header *h) {
    uint32_t prev = 0;
    for (uint32_t c = 0; c < h->n_classes; c++) {
        uint32_t sz;
        memcpy(&sz, base + h->class_off + (size_t)c * 4, 4);
        if (sz <= prev) return 0; /* sizes strictly increase, none is 0 */
        prev = sz;
    }
    return 1;
}

static int knob_dir_ok(const char *base, const struct hak_shm_header *h) {
    for (uint32_t k = 0; k < h->n_knobs; k++) {
        struct hak_shm_knob_desc d;
        memcpy(&d, base + h->knob_dir_off + (size_t)k * sizeof d, sizeof d);
        if (!memchr(d.name, 0, sizeof d.name)) return 0;
        if ((d.scope != HAK_SCOPE_GLOBAL && d.scope != HAK_SCOPE_CLASS) || d.min > d.max) return 0;
    }
    return 1;
}

/* Geometry of a header copy: counts, alignments, every table inside len. */
static int geometry_ok(const struct hak_shm_header *h, uint64_t len, const char **why) {
    uint64_t hs = h->header_size;
    *why = "table counts out of bounds";
    if (h->n_classes == 0 || h->n_classes > MAX_CLASSES || h->n_knobs > MAX_KNOBS ||
        h->n_ctrs > MAX_CTRS || h->n_slots > MAX_SLOTS || h->n_proc > MAX_PROCS ||
        h->knob_cslots == 0 || h->knob_cslots > MAX_CSLOTS || h->ctr_cslots == 0 ||
        h->ctr_cslots > MAX_CSLOTS)
        return 0;
    *why = "strides out of bounds";
    if (h->knob_val_size < sizeof(struct hak_shm_knob_val) || h->knob_val_size % 8 ||
        h->knob_val_size > 4096 || h->slot_size % 8 || h->slot_ctr_off % 8 ||
        h->slot_ctr_off < sizeof(struct hak_shm_slot) ||
        (uint64_t)h->slot_ctr_off + (uint64_t)h->ctr_cslots * h->n_ctrs * 8 > h->slot_size)
        return 0;
    *why = "class table out of bounds";
    if (!table_ok(h->class_off, h->n_classes, 4, 4, hs, len)) return 0;
    *why = "knob directory out of bounds";
    if (!table_ok(h->knob_dir_off, h->n_knobs, sizeof(struct hak_shm_knob_desc), 8, hs, len))
        return 0;
    *why = "knob values out of bounds";
    if (!table_ok(h->knob_val_off, (uint64_t)h->n_knobs * h->knob_cslots, h->knob_val_size, 8, hs,
                  len))
        return 0;
    *why = "counter directory out of bounds";
    if (!table_ok(h->ctr_dir_off, h->n_ctrs, HAK_SHM_NAME_MAX, 1, hs, len)) return 0;
    *why = "counter slots out of bounds";
    if (!table_ok(h->slot_off, h->n_slots, h->slot_size, 8, hs, len)) return 0;
    *why = "process figures out of bounds";
    if (!table_ok(h->proc_dir_off, h->n_proc, HAK_SHM_NAME_MAX, 1, hs, len) ||
        !table_ok(h->proc_off, h->n_proc, 8, 8, hs, len))
        return 0;
    return 1;
}

int hak_shm_validate(const void *base, size_t len, char *err, size_t errlen) {
    struct hak_shm_header h;
    const char *why;
    if (!base || len < sizeof h)
        return fail(err, errlen, HAK_SHM_ECORRUPT,
                    "segment truncated: %zu bytes, the header alone needs %zu", len, sizeof h);
    /* Work on a copy so a concurrent writer cannot change what we checked. */
    memcpy(&h, base, sizeof h);
    if (h.magic != HAK_SHM_MAGIC)
        return fail(err, errlen, HAK_SHM_ECORRUPT, "bad magic: not a hakmem segment");
    if (h.abi_major != HAK_SHM_ABI_MAJOR)
        return fail(err, errlen, HAK_SHM_EABI,
                    "segment ABI %u.%u is %s than this tool understands (%d.x)", h.abi_major,
                    h.abi_minor, h.abi_major > HAK_SHM_ABI_MAJOR ? "newer" : "older",
                    HAK_SHM_ABI_MAJOR);
    /* Minor versions only append, so a header is at least ours. */
    if (h.header_size < sizeof h || h.header_size % 8 || h.header_size > len)
        return fail(err, errlen, HAK_SHM_ECORRUPT, "bad header size %u", h.header_size);
    if (h.total_size != len)
        return fail(err, errlen, HAK_SHM_ECORRUPT,
                    "size mismatch: header says %llu bytes, segment has %zu",
                    (unsigned long long)h.total_size, len);
    if (h.pid <= 0) return fail(err, errlen, HAK_SHM_ECORRUPT, "bad pid %d", h.pid);
    if (!geometry_ok(&h, len, &why)) return fail(err, errlen, HAK_SHM_ECORRUPT, "%s", why);
    if (!classes_ok(base, &h))
        return fail(err, errlen, HAK_SHM_ECORRUPT, "class sizes are not increasing");
    if (!knob_dir_ok(base, &h))
        return fail(err, errlen, HAK_SHM_ECORRUPT, "corrupt knob directory");
    if (!names_ok(base, h.ctr_dir_off, h.n_ctrs, HAK_SHM_NAME_MAX) ||
        !names_ok(base, h.proc_dir_off, h.n_proc, HAK_SHM_NAME_MAX))
        return fail(err, errlen, HAK_SHM_ECORRUPT, "unterminated name in a directory");
    return HAK_SHM_OK;
}

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
    if (e == ENOENT || e == ENOTDIR) return fail(err, errlen, HAK_SHM_ENOENT, "no %s", path);
    if (e == ELOOP) return fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: it is a symlink", path);
    if (e == EISDIR || e == ENXIO) /* a directory (opened for writing), a socket */
        return fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: not a regular file", path);
    if (e == EACCES || e == EPERM) {
        int known = lstat(path, &st) == 0;
        if (known && st.st_uid != geteuid()) {
            char who[64];
            return fail(err, errlen, HAK_SHM_EACCES,
                        "permission denied: %s belongs to uid %u (%s); run as that user or root",
                        path, (unsigned)st.st_uid, hak_user_name(st.st_uid, who, sizeof who));
        }
        if (known)
            return fail(err, errlen, HAK_SHM_EACCES, "permission denied: %s is mode 0%03o%s", path,
                        (unsigned)(st.st_mode & 07777),
                        writable ? " (opening it for writing)" : "");
        return fail(err, errlen, HAK_SHM_EACCES, "permission denied: %s: %s", path, strerror(e));
    }
    fail(err, errlen, HAK_SHM_ESYS, "cannot open %s: %s", path, strerror(e));
    errno = e;
    return HAK_SHM_ESYS;
}

/* The hsperfdata checks on an open file. */
static int file_ok(int fd, const char *path, struct stat *st, char *err, size_t errlen) {
    uid_t me = geteuid();
    if (fstat(fd, st) != 0)
        return fail(err, errlen, HAK_SHM_ESYS, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: not a regular file", path);
    if (st->st_nlink != 1)
        return fail(err, errlen, HAK_SHM_EUNSAFE, "refusing %s: it has %lu hard links, expected 1",
                    path, (unsigned long)st->st_nlink);
    if (me != 0 && st->st_uid != me) {
        char who[64];
        return fail(err, errlen, HAK_SHM_EACCES,
                    "permission denied: %s belongs to uid %u (%s), not to you (uid %u)", path,
                    (unsigned)st->st_uid, hak_user_name(st->st_uid, who, sizeof who), (unsigned)me);
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return fail(err, errlen, HAK_SHM_EACCES,
                    "refusing %s: mode 0%03o lets other users write it (expected 0600)", path,
                    (unsigned)(st->st_mode & 0777));
    if ((uint64_t)st->st_size < sizeof(struct hak_shm_header))
        return fail(err, errlen, HAK_SHM_ECORRUPT, "%s is truncated (%lld bytes)", path,
                    (long long)st->st_size);
    if ((uint64_t)st->st_size > MAX_LEN)
        return fail(err, errlen, HAK_SHM_ECORRUPT, "%s is implausibly large (%lld bytes)", path,
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
        rc = fail(err, errlen, HAK_SHM_ECORRUPT, "%s: cannot read its header", path);
    if (rc == HAK_SHM_OK && h.magic == HAK_SHM_MAGIC && h.abi_major == HAK_SHM_ABI_MAJOR &&
        h.total_size != (uint64_t)st.st_size)
        rc = fail(err, errlen, HAK_SHM_ECORRUPT,
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
        return fail(err, errlen, HAK_SHM_ESYS, "cannot map %s: %s", path, strerror(e));
    }
    rc = hak_shm_validate(base, len, msg, sizeof msg);
    if (rc != HAK_SHM_OK) {
        munmap(base, len);
        return fail(err, errlen, rc, "%s: %s", path, msg);
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

static int process_exists(pid_t pid) {
    return kill(pid, 0) == 0 || errno != ESRCH;
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
    if (pid <= 0) return fail(err, errlen, HAK_SHM_ENOENT, "invalid pid %d", (int)pid);
    snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", pid);
    rc = hak_shm_attach_path(path, writable, v, err, errlen);
    if (rc == HAK_SHM_ENOENT && other_dev_shm(pid)) { /* a process in a container */
        want = ns_pid(pid);
        snprintf(path, sizeof path, "/proc/%d/root/dev/shm/" HAK_SHM_PREFIX "%d", pid, want);
        rc = hak_shm_attach_path(path, writable, v, err, errlen);
    }
    if (rc == HAK_SHM_ENOENT) {
        char comm[32];
        if (!process_exists(pid))
            return fail(err, errlen, HAK_SHM_ENOENT, "no such process: %d", pid);
        comm_of(pid, comm, sizeof comm);
        return fail(err, errlen, HAK_SHM_ENOENT,
                    "process %d%s%s%s does not use hakmem (no /dev/shm/" HAK_SHM_PREFIX "%d)", pid,
                    comm[0] ? " (" : "", comm, comm[0] ? ")" : "", pid);
    }
    if (rc != HAK_SHM_OK) return rc;
    if (v->hdr->pid != want) {
        int other = v->hdr->pid;
        hak_shm_detach(v);
        return fail(err, errlen, HAK_SHM_ECORRUPT, "%s: written by pid %d, not %d", path, other,
                    want);
    }
    v->pid = pid; /* our pid namespace's number: the one kill() and /proc use */
    return HAK_SHM_OK;
}

void hak_shm_detach(struct hak_shm_view *v) {
    if (v && v->hdr) munmap(v->hdr, v->len);
    if (v) view_reset(v);
}

/* ---------------------------------------------------------------- status */

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
    if (!process_exists(v->pid)) return 1;
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

/* --------------------------------------------------------------- reading */

static const struct hak_shm_header *hdr_of(const struct hak_shm_view *v) {
    return v && v->hdr ? v->hdr : NULL;
}

int hak_shm_nclasses(const struct hak_shm_view *v) {
    const struct hak_shm_header *h = hdr_of(v);
    uint32_t n = h ? LOAD(&h->n_classes) : 0;
    return n <= MAX_CLASSES ? (int)n : 0;
}

uint32_t hak_shm_class_size(const struct hak_shm_view *v, int cls) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || cls < 0) return 0;
    uint32_t n = LOAD(&h->n_classes), off = LOAD(&h->class_off);
    if ((uint32_t)cls >= n || !table_ok(off, n, 4, 4, sizeof *h, v->len)) return 0;
    return LOAD((const uint32_t *)((const char *)h + off) + cls);
}

uint64_t hak_shm_ctr_sum(const struct hak_shm_view *v, int cls, int ctr) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || ctr < 0 || ctr >= HAK_NUM_CTRS || v->ctr_map[ctr] < 0 || cls < 0) return 0;
    uint32_t n_ctrs = LOAD(&h->n_ctrs), cslots = LOAD(&h->ctr_cslots);
    uint32_t off = LOAD(&h->slot_off), n = LOAD(&h->n_slots), size = LOAD(&h->slot_size);
    uint32_t coff = LOAD(&h->slot_ctr_off);
    uint64_t idx = HAK_CTR_INDEX(cls, v->ctr_map[ctr], cslots);
    if ((uint32_t)cls >= cslots || (uint32_t)v->ctr_map[ctr] >= n_ctrs || n > MAX_SLOTS ||
        coff % 8 || (uint64_t)coff + (idx + 1) * 8 > size ||
        !table_ok(off, n, size, 8, sizeof *h, v->len))
        return 0;
    uint64_t sum = 0; /* wraps: per-slot differences (large bytes) sum correctly */
    for (uint32_t s = 0; s < n; s++)
        sum += LOAD((const uint64_t *)((const char *)h + off + (uint64_t)s * size + coff) + idx);
    return sum;
}

uint64_t hak_shm_proc(const struct hak_shm_view *v, int proc) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || proc < 0 || proc >= HAK_NUM_PROCS || v->proc_map[proc] < 0) return 0;
    uint32_t off = LOAD(&h->proc_off), n = LOAD(&h->n_proc);
    if ((uint32_t)v->proc_map[proc] >= n || !table_ok(off, n, 8, 8, sizeof *h, v->len)) return 0;
    return LOAD((const uint64_t *)((const char *)h + off) + v->proc_map[proc]);
}

/* Directory entry of our knob in the segment, bounds re-checked. */
static const struct hak_shm_knob_desc *knob_desc(const struct hak_shm_view *v, int knob) {
    const struct hak_shm_header *h = hdr_of(v);
    if (!h || knob < 0 || knob >= HAK_NUM_KNOBS || v->knob_map[knob] < 0) return NULL;
    uint32_t off = LOAD(&h->knob_dir_off), n = LOAD(&h->n_knobs);
    if ((uint32_t)v->knob_map[knob] >= n ||
        !table_ok(off, n, sizeof(struct hak_shm_knob_desc), 8, sizeof *h, v->len))
        return NULL;
    return (const struct hak_shm_knob_desc *)((const char *)h + off) + v->knob_map[knob];
}

struct hak_shm_knob_val *hak_shm_knob(const struct hak_shm_view *v, int knob, int cls) {
    const struct hak_shm_knob_desc *d = knob_desc(v, knob);
    if (!d || cls < 0) return NULL;
    const struct hak_shm_header *h = v->hdr;
    uint32_t off = LOAD(&h->knob_val_off), n = LOAD(&h->n_knobs), cs = LOAD(&h->knob_cslots);
    uint32_t vs = LOAD(&h->knob_val_size), nc = LOAD(&h->n_classes);
    if (hak_knob_defs[knob].scope == HAK_SCOPE_GLOBAL)
        cls = 0; /* global: index 0 */
    else if ((uint32_t)cls >= nc)
        return NULL;
    if ((uint32_t)cls >= cs || cs > MAX_CSLOTS || vs < sizeof(struct hak_shm_knob_val) || vs % 8 ||
        !table_ok(off, (uint64_t)n * cs, vs, 8, sizeof *h, v->len))
        return NULL;
    uint64_t i = (uint64_t)v->knob_map[knob] * cs + (uint64_t)cls;
    return (struct hak_shm_knob_val *)((char *)v->hdr + off + i * vs);
}

int hak_shm_knob_range(const struct hak_shm_view *v, int knob, int cls, int64_t *min, int64_t *max,
                       int64_t *def) {
    const struct hak_shm_knob_desc *d = knob_desc(v, knob);
    if (!d) return HAK_SHM_ENOENT;
    const struct hak_knob_def *o = &hak_knob_defs[knob];
    /* The stricter of the two ranges: the process's own and ours. */
    int64_t lo = LOAD(&d->min), hi = LOAD(&d->max), df = LOAD(&d->def);
    lo = lo > o->min ? lo : o->min;
    hi = hi < o->max ? hi : o->max;
    if (lo > hi) lo = hi = o->def >= 0 ? o->def : o->min; /* disjoint: a bad directory */
    if (df == -1) df = hak_knob_default(knob, cls < 0 ? 0 : cls);
    df = df < lo ? lo : df > hi ? hi : df;
    if (min) *min = lo;
    if (max) *max = hi;
    if (def) *def = df;
    return HAK_SHM_OK;
}

/* --------------------------------------------------------------- writing */

static int64_t now_ns(int clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int holder_dead(uint32_t holder) {
    return holder > INT_MAX || (kill((pid_t)holder, 0) != 0 && errno == ESRCH);
}

/* Takes writer_lock (our pid in it). A holder that died, or that holds it
 * longer than any writer should (~100 ms), loses it: knob values are only
 * hints the allocator clamps, so a rare overlap is harmless, a hang is not. */
static uint32_t lock_take(struct hak_shm_header *h) {
    uint32_t me = (uint32_t)getpid();
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + LOCK_STEAL_NS;
    for (;;) {
        uint32_t cur = 0;
        if (__atomic_compare_exchange_n(&h->writer_lock, &cur, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return me;
        if ((cur != me && holder_dead(cur)) || now_ns(CLOCK_MONOTONIC) > deadline) {
            if (__atomic_compare_exchange_n(&h->writer_lock, &cur, me, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return me;
            continue;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void lock_drop(struct hak_shm_header *h, uint32_t me) {
    /* only if still ours: a stealer's lock is not ours to release */
    __atomic_compare_exchange_n(&h->writer_lock, &me, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int hak_shm_knob_set(struct hak_shm_view *v, int knob, int cls, int64_t value, int owner,
                     const char *reason) {
    int64_t lo, hi;
    if (!v || !v->hdr || knob < 0 || knob >= HAK_NUM_KNOBS || owner < HAK_OWNER_DEFAULT ||
        owner > HAK_OWNER_MANUAL)
        return -EINVAL;
    if (!v->writable) return HAK_SHM_EACCES;
    if (hak_shm_knob_range(v, knob, cls, &lo, &hi, NULL) != HAK_SHM_OK) return HAK_SHM_ENOENT;
    if (value < lo || value > hi) return -ERANGE;
    int c0 = 0, c1 = 1; /* classes [c0, c1) */
    if (hak_knob_defs[knob].scope == HAK_SCOPE_CLASS) {
        int n = hak_shm_nclasses(v);
        if (cls >= n || cls < -1) return -EINVAL;
        if (cls >= 0)
            c0 = cls, c1 = cls + 1;
        else
            c1 = n;
    } else if (cls > 0 || cls < -1) {
        return -EINVAL;
    }
    uint64_t t = (uint64_t)now_ns(CLOCK_REALTIME);
    uint32_t me = lock_take(v->hdr);
    for (int c = c0; c < c1; c++) {
        struct hak_shm_knob_val *kv = hak_shm_knob(v, knob, c);
        if (!kv) continue;
        __atomic_store_n(&kv->value, value, __ATOMIC_RELAXED);
        __atomic_store_n(&kv->owner, (uint32_t)owner, __ATOMIC_RELAXED);
        __atomic_store_n(&kv->set_ns, t, __ATOMIC_RELAXED);
        /* display only; kept NUL-terminated at every instant */
        memset(kv->reason, 0, sizeof kv->reason);
        if (reason) memcpy(kv->reason, reason, strnlen(reason, sizeof kv->reason - 1));
    }
    /* release: a thread that sees the new generation sees the values */
    __atomic_fetch_add(&v->hdr->knob_gen, 1, __ATOMIC_RELEASE);
    lock_drop(v->hdr, me);
    return HAK_SHM_OK;
}

void hak_shm_request_trim(struct hak_shm_view *v) {
    if (v && v->hdr && v->writable) __atomic_fetch_add(&v->hdr->trim_req, 1, __ATOMIC_RELEASE);
}
