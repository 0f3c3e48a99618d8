/* hakctl_gc.c — `hakctl gc`: remove segments whose process is gone (killed
 * before it could unlink), whose pid now belongs to another program, or
 * whose process exec'd a program without hakmem.
 *
 * Only segments are judged: an entry under the name that is no segment (a
 * directory, a FIFO, a file of someone else's format) is skipped where it
 * is, so no one can block gc by planting one. A new process may get the
 * same pid and create its segment between our check and the unlink. So the
 * entry is first renamed to a private name of its own, checked to be the
 * very inode we judged stale, and only then unlinked; if a new segment took
 * its place meanwhile, it is put back. */
#include "hakctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct gc {
    int dry, verbose, json;
    int removed, kept, skipped, failed;
    cJSON *j_removed, *j_kept, *j_skipped, *j_failed;
};

static const char *type_name(mode_t m) {
    return S_ISDIR(m)    ? "a directory"
           : S_ISLNK(m)  ? "a symlink"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
                         : "a device";
}

/* A file hakctl cannot attach (damaged, newer ABI, another user's): stale
 * only when it is ours to judge by name: a segment's magic (or none yet: a
 * creation that died half-way), no foreign pid namespace recorded, its pid
 * gone, and, if we would remove it, untouched for HAK_SHM_GC_AGE_S (it may be
 * a segment being created). 1 stale, 0 live or unknown, -1 not a segment. */
static int unreadable_stale(pid_t pid, const char *path, const struct stat *st) {
    struct hak_shm_header h;
    memset(&h, 0, sizeof h);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        ssize_t n = pread(fd, &h, sizeof h, 0);
        close(fd);
        if (n >= (ssize_t)sizeof h.magic && h.magic != 0 && h.magic != HAK_SHM_MAGIC) return -1;
        if (n == (ssize_t)sizeof h && h.magic == HAK_SHM_MAGIC &&
            HAK_SHM_HAS(h.header_size, pid_ns) && h.pid_ns != 0)
            return 0; /* may belong to another pid namespace: not ours to call dead */
    }
    int gone = kill(pid, 0) != 0 && errno == ESRCH;
    int ours = geteuid() == 0 || st->st_uid == geteuid();
    return gone && (!ours || time(NULL) - st->st_mtime >= HAK_SHM_GC_AGE_S);
}

/* A link written in another pid namespace: its process is provably gone
 * when no process we can see lives in that namespace any more (as root we
 * see every namespace inode; otherwise we cannot tell: not stale). */
static int foreign_link_dead(const char *path) {
    char text[HAK_SHM_LINK_MAX], nspath[64];
    pid_t lpid;
    int lfd;
    uint64_t lns;
    ssize_t n = readlink(path, text, sizeof text - 1);
    if (n <= 0 || (text[n] = 0, hak_shm_link_parse(text, &lpid, &lfd, &lns) != 0)) return 0;
    if (lns == 0 || lns == hak_shm_pidns("/proc/self/ns/pid") || geteuid() != 0) return 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int seen = 0;
    for (struct dirent *e; !seen && (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(nspath, sizeof nspath, "/proc/%.20s/ns/pid", e->d_name);
        seen = hak_shm_pidns(nspath) == lns;
    }
    closedir(d);
    return !seen;
}

/* Why the segment is stale (enum hak_shm_stale), 0 if not, -1 if it is
 * not a segment at all. */
static int judge(pid_t pid, const char *path, const struct stat *st) {
    struct hak_shm_view v;
    char msg[256];
    int rc = hak_shm_attach(pid, 0, &v, msg, sizeof msg);
    if (rc == HAK_SHM_OK) {
        int s = hak_shm_is_stale(&v);
        hak_shm_detach(&v);
        return s;
    }
    if (rc == HAK_SHM_ENOENT) /* gone since listed, or another namespace's */
        return S_ISLNK(st->st_mode) && foreign_link_dead(path) ? HAK_SHM_STALE_GONE : 0;
    if (rc == HAK_SHM_ESTALE) /* a link whose process no longer holds the segment */
        return kill(pid, 0) == 0 || errno != ESRCH ? HAK_SHM_STALE_EXEC : HAK_SHM_STALE_GONE;
    if (rc == HAK_SHM_EUNSAFE && !S_ISREG(st->st_mode)) return -1;
    int s = unreadable_stale(pid, path, st);
    return s > 0 ? HAK_SHM_STALE_GONE : s;
}

static int remove_same(const char *path, const struct stat *judged) {
    static unsigned seq;
    char tmp[96];
    struct stat st;
    snprintf(tmp, sizeof tmp, "/dev/shm/.hakctl-gc.%d.%u", (int)getpid(), seq++);
    if (renameat2(AT_FDCWD, path, AT_FDCWD, tmp, RENAME_NOREPLACE) != 0)
        return errno == ENOENT ? 0 : -1; /* already gone: fine */
    if (lstat(tmp, &st) == 0 && st.st_ino == judged->st_ino && st.st_dev == judged->st_dev &&
        !S_ISDIR(st.st_mode))
        return unlink(tmp);
    /* something new took the name: give it back (never over a newer one) */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0 && !S_ISDIR(st.st_mode))
        unlink(tmp);
    errno = EAGAIN;
    return -1;
}

static cJSON *entry(pid_t pid, const char *path, const char *key, const char *val) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", pid);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, key, val);
    return o;
}

static void note(struct gc *g, cJSON *list, cJSON *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note(struct gc *g, cJSON *list, cJSON *o, const char *fmt, ...) {
    if (g->json) {
        cJSON_AddItemToArray(list, o);
        return;
    }
    cJSON_Delete(o);
    if (!g->verbose) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static int gc_one(pid_t pid, const char *path, void *arg) {
    struct gc *g = arg;
    struct stat st;
    uid_t me = geteuid();
    if (lstat(path, &st) != 0) return 0;
    int s = judge(pid, path, &st);
    if (s < 0) {
        const char *what = S_ISREG(st.st_mode) ? "not a hakmem segment" : type_name(st.st_mode);
        g->skipped++;
        note(g, g->j_skipped, entry(pid, path, "reason", what), "skipped %s: %s", path, what);
        return 0;
    }
    if (s == 0) return 0;
    const char *why = hk_stale_why(s);
    if (me != 0 && st.st_uid != me) {
        char user[64];
        hk_user(st.st_uid, user, sizeof user);
        cJSON *o = entry(pid, path, "reason", why);
        cJSON_AddStringToObject(o, "owner", user);
        g->kept++;
        note(g, g->j_kept, o,
             "kept %s (%s): it belongs to %s; only that user or root may remove it", path, why,
             user);
    } else if (g->dry || remove_same(path, &st) == 0) {
        g->removed++;
        note(g, g->j_removed, entry(pid, path, "reason", why), "%s %s (%s)",
             g->dry ? "would remove" : "removed", path, why);
    } else {
        const char *e = errno == EAGAIN ? "a new process took it over" : strerror(errno);
        g->failed++;
        if (g->json)
            cJSON_AddItemToArray(g->j_failed, entry(pid, path, "error", e));
        else
            hk_err("cannot remove %s: %s", path, e);
    }
    return 0;
}

static void summary(const struct gc *g) {
    const char *more = g->verbose ? "" : " (--verbose lists them)";
    if (g->removed)
        printf("%s %d stale segment%s\n", g->dry ? "would remove" : "removed", g->removed,
               g->removed == 1 ? "" : "s");
    if (g->kept)
        printf("kept %d stale segment%s of other users: only their owner or root may remove "
               "them%s\n",
               g->kept, g->kept == 1 ? "" : "s", more);
    if (g->skipped)
        printf("skipped %d entr%s named like a segment that %s not one%s\n", g->skipped,
               g->skipped == 1 ? "y" : "ies", g->skipped == 1 ? "is" : "are", more);
    if (!g->removed && !g->kept && !g->failed) printf("no stale segments\n");
}

int hk_cmd_gc(int argc, char **argv) {
    struct gc g;
    int c;
    memset(&g, 0, sizeof g);
    g.json = hk_json_default;
    while ((c = hk_getopt(argc, argv, hk_opts_gc)) != -1) {
        if (c == 'n')
            g.dry = 1;
        else if (c == 'v')
            g.verbose = 1;
        else if (c == 'j')
            g.json = 1;
        else
            return hk_bad_option("gc", c, argv);
    }
    if (optind < argc) return hk_usage("gc", "unexpected argument '%s'", argv[optind]);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "dry_run", g.dry);
    cJSON_AddItemToObject(j, "removed", g.j_removed = cJSON_CreateArray());
    cJSON_AddItemToObject(j, "kept", g.j_kept = cJSON_CreateArray());
    cJSON_AddItemToObject(j, "skipped", g.j_skipped = cJSON_CreateArray());
    cJSON_AddItemToObject(j, "failed", g.j_failed = cJSON_CreateArray());
    if (hak_shm_list(gc_one, &g) < 0) {
        cJSON_Delete(j);
        hk_err("cannot read /dev/shm: %s", strerror(errno));
        return HK_ERR;
    }
    if (g.json)
        hk_json_print(j, 0);
    else {
        cJSON_Delete(j);
        summary(&g);
    }
    return g.failed ? HK_ERR : HK_OK;
}
