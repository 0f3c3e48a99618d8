/* hakctl_gc.c — `hakctl gc`: remove segments whose process is gone (killed
 * before it could unlink) or whose pid now belongs to another program.
 *
 * A new process may get the same pid and create its segment between our
 * check and the unlink. So the file is first renamed to a private name,
 * checked to be the very inode we judged stale, and only then unlinked; if
 * a new segment took its place meanwhile, it is put back. */
#include "hakctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct gc {
    int dry, removed, kept, failed;
};

/* Stale if the process is gone, or the segment says it is (pid reused).
 * An unreadable segment of a live pid is not ours to judge. */
static int stale(pid_t pid, const char *path, const char **why) {
    struct hak_shm_view v;
    char msg[256];
    int alive = kill(pid, 0) == 0 || errno != ESRCH;
    *why = "process gone";
    if (!alive) return 1;
    int rc = hak_shm_attach_path(path, 0, &v, msg, sizeof msg);
    if (rc != HAK_SHM_OK) return *why = "its process no longer holds it", rc == HAK_SHM_ESTALE;
    int s = v.pid != pid || hak_shm_is_stale(&v);
    hak_shm_detach(&v);
    *why = "pid reused";
    return s;
}

static int remove_same(const char *path, const struct stat *judged) {
    char tmp[96];
    struct stat st;
    snprintf(tmp, sizeof tmp, "/dev/shm/.hakctl-gc.%d", (int)getpid());
    if (rename(path, tmp) != 0) return errno == ENOENT ? 0 : -1; /* already gone: fine */
    if (lstat(tmp, &st) == 0 && st.st_ino == judged->st_ino && st.st_dev == judged->st_dev)
        return unlink(tmp);
    /* a new segment took the name: give it back (never over a newer one) */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) unlink(tmp);
    errno = EAGAIN;
    return -1;
}

static int gc_one(pid_t pid, const char *path, void *arg) {
    struct gc *g = arg;
    struct stat st;
    const char *why;
    uid_t me = geteuid();
    if (lstat(path, &st) != 0 || !stale(pid, path, &why)) return 0;
    if (me != 0 && st.st_uid != me) {
        char user[64];
        printf("kept %s (%s): it belongs to %s; only that user or root may remove it\n", path, why,
               hk_user(st.st_uid, user, sizeof user));
        g->kept++;
    } else if (g->dry) {
        printf("would remove %s (%s)\n", path, why);
        g->removed++;
    } else if (remove_same(path, &st) == 0) {
        printf("removed %s (%s)\n", path, why);
        g->removed++;
    } else {
        hk_err("cannot remove %s: %s", path,
               errno == EAGAIN ? "a new process took it over" : strerror(errno));
        g->failed++;
    }
    return 0;
}

int hk_cmd_gc(int argc, char **argv) {
    static const struct option lo[] = {
        {"dry-run", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    struct gc g = {0, 0, 0, 0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":nh", lo, NULL)) != -1) {
        if (c != 'n') return hk_bad_option("gc", c, argv);
        g.dry = 1;
    }
    if (optind < argc) return hk_usage("gc", "unexpected argument '%s'", argv[optind]);
    if (hak_shm_list(gc_one, &g) < 0) {
        hk_err("cannot read /dev/shm: %s", strerror(errno));
        return HK_ERR;
    }
    if (!g.removed && !g.kept && !g.failed) printf("no stale segments\n");
    return g.failed ? HK_ERR : HK_OK;
}
