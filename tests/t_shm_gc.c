/* t_shm_gc — the clean-up of dead processes' segments at publication
 * (hak_shm_gc_dead_in, shm/shm_create.c), in a private directory laid out
 * like /dev/shm, so no other process's scans or segments interfere:
 *   - a scan removes the link of a dead pid of our pid namespace once it is
 *     HAK_SHM_GC_AGE_S old, and keeps a live pid's, a young one and another
 *     namespace's; it leaves a stamp (a regular file of ours, 0600);
 *   - within HAK_SHM_GC_EVERY_NS of a scan no process scans again (the
 *     rate limit: a publication then costs one lstat), and a dead link
 *     stays until the next scan after that interval, which removes it;
 *   - a stamp in the future (the clock went back), one that is a symlink or
 *     another user's (planted to silence our clean-up) limits nothing, and
 *     the symlink's target is not touched;
 *   - another namespace's stamp no scan touched for HAK_SHM_GC_STAMP_AGE_S
 *     goes (stamps of short-lived containers do not pile up). */
#include "hakmem_shm.h"
#include "testutil.h"

#include <sys/stat.h>
#include <time.h>

static char dir[64], stamp[256];
static uint64_t ns;

/* a link as process pid of pid namespace pidns leaves it, age_s old */
static void mklink(pid_t pid, uint64_t pidns, long age_s) {
    char path[128], text[HAK_SHM_LINK_MAX];
    struct timespec t[2];
    snprintf(path, sizeof path, "%s/" HAK_SHM_PREFIX "%d", dir, (int)pid);
    hak_shm_link_format(text, pid, 1000, pidns);
    unlink(path);
    if (symlink(text, path) != 0) {
        perror("symlink");
        exit(2);
    }
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW);
}

static int exists(pid_t pid) {
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/" HAK_SHM_PREFIX "%d", dir, (int)pid);
    return lstat(path, &st) == 0;
}

/* sets the stamp's times to now + delta_s (no follow: a symlink's own) */
static void stamp_at(long delta_s) {
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec += delta_s;
    t[1] = t[0];
    CHECKF(utimensat(AT_FDCWD, stamp, t, AT_SYMLINK_NOFOLLOW) == 0, "utimensat(stamp): %s",
           strerror(errno));
}

static double stamp_age(void) {
    struct stat st;
    struct timespec now;
    if (lstat(stamp, &st) != 0) return -1e9;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)(now.tv_sec - st.st_mtim.tv_sec) +
           (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
}

int main(void) {
    /* pids above PID_MAX_LIMIT: kill() says ESRCH, no process has them */
    const pid_t dead = 4194401, dead2 = 4194402, young = 4194403, other = 4194404;
    struct stat st;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    tu_init("t_shm_gc");
    ns = hak_shm_pidns("/proc/self/ns/pid");
    if (ns == 0) return printf("no /proc/self/ns/pid\n"), TU_SKIP;
    snprintf(dir, sizeof dir, "/tmp/t_shm_gc.XXXXXX");
    if (!mkdtemp(dir)) return perror("mkdtemp"), 2;
    snprintf(stamp, sizeof stamp, "%s/" HAK_SHM_GC_STAMP "%u.%llu", dir, (unsigned)geteuid(),
             (unsigned long long)ns);

    /* 1. first scan: removes what it must, keeps the rest, leaves the stamp */
    mklink(dead, ns, 120);
    mklink(young, ns, 0);
    mklink(other, ns + 1, 120);
    mklink(getpid(), ns, 120);
    rc = hak_shm_gc_dead_in(dir);
    CHECKF(rc == 1, "first call: %d, expected a scan (1)", rc);
    CHECKF(!exists(dead), "a dead link of our namespace, 2 minutes old, was kept");
    CHECKF(exists(young), "a dead link younger than HAK_SHM_GC_AGE_S was removed");
    CHECKF(exists(other), "a link of another pid namespace was removed");
    CHECKF(exists(getpid()), "a live process's link was removed");
    CHECKF(lstat(stamp, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
               (st.st_mode & 0777) == 0600,
           "no stamp, or not a regular 0600 file of ours");
    printf("ok: a scan removed the dead link, kept live/young/other-namespace ones, left %s\n",
           stamp);

    /* 2. within the interval: no scan; a dead link waits for the next one */
    mklink(dead2, ns, 120);
    for (int i = 0; i < 100; i++) {
        rc = hak_shm_gc_dead_in(dir);
        if (rc != 0) break;
    }
    CHECKF(rc == 0 && stamp_age() < 1.0, "a call within the interval scanned (%d)", rc);
    CHECKF(exists(dead2), "a dead link was removed within the interval (no scan should run)");
    printf("ok: 100 calls within %.0f ms of a scan: none scanned\n", 1000 * stamp_age());
    stamp_at(-2);
    rc = hak_shm_gc_dead_in(dir);
    CHECKF(rc == 1, "a call 2 s after the last scan did not scan (%d)", rc);
    CHECKF(!exists(dead2),
           "the dead link left by the skipped call was not removed by the next scan");
    CHECKF(stamp_age() >= 0 && stamp_age() < 1.0, "the scan did not claim the stamp (age %.3f s)",
           stamp_age());
    printf("ok: the first call after the interval scanned and removed it\n");

    /* 3. a stamp in the future limits nothing */
    stamp_at(3600);
    mklink(dead, ns, 120);
    rc = hak_shm_gc_dead_in(dir);
    CHECKF(rc == 1 && !exists(dead), "a stamp in the future stopped the scan (%d)", rc);
    CHECKF(stamp_age() >= 0 && stamp_age() < 1.0, "the future stamp was not set back to now");
    printf("ok: a stamp in the future (the clock went back) does not stop a scan\n");

    /* 4. a stamp that is a symlink: not trusted, not followed */
    char target[128];
    snprintf(target, sizeof target, "%s/target", dir);
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    close(fd);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    utimensat(AT_FDCWD, target, old, 0);
    unlink(stamp);
    CHECKF(symlink(target, stamp) == 0, "symlink(stamp)");
    for (int i = 0; i < 2; i++) {
        mklink(dead, ns, 120);
        rc = hak_shm_gc_dead_in(dir);
        CHECKF(rc == 1 && !exists(dead), "call %d with a symlink stamp did not scan (%d)", i, rc);
    }
    CHECKF(stat(target, &st) == 0 && st.st_mtim.tv_sec == 1000000000,
           "the symlink stamp's target was touched");
    printf("ok: a symlink stamp limits nothing and its target is untouched\n");
    unlink(stamp);

    /* 5. another user's stamp limits nothing */
    if (geteuid() == 0) {
        fd = open(stamp, O_WRONLY | O_CREAT, 0666);
        CHECKF(fd >= 0 && fchown(fd, 65534, 65534) == 0, "chown(stamp)");
        close(fd);
        stamp_at(0);
        for (int i = 0; i < 2; i++) {
            mklink(dead, ns, 120);
            rc = hak_shm_gc_dead_in(dir);
            CHECKF(rc == 1 && !exists(dead), "call %d with another user's stamp did not scan (%d)",
                   i, rc);
        }
        printf("ok: another user's fresh stamp limits nothing\n");
        unlink(stamp);
    } else {
        printf("note: not root: the other user's stamp part is skipped\n");
    }

    /* 6. stamps of other pid namespaces: one no scan touched for a day and
     * more goes (its namespace is gone), a recent one stays */
    char gone_ns[128], live_ns[128];
    snprintf(gone_ns, sizeof gone_ns, "%s/" HAK_SHM_GC_STAMP "%u.%llu", dir, (unsigned)geteuid(),
             (unsigned long long)ns + 7);
    snprintf(live_ns, sizeof live_ns, "%s/" HAK_SHM_GC_STAMP "%u.%llu", dir, (unsigned)geteuid(),
             (unsigned long long)ns + 8);
    const char *const stamps[] = {gone_ns, live_ns};
    for (int i = 0; i < 2; i++) {
        fd = open(stamps[i], O_WRONLY | O_CREAT, 0600);
        close(fd);
        struct timespec t[2];
        clock_gettime(CLOCK_REALTIME, &t[0]);
        t[0].tv_sec -= i == 0 ? HAK_SHM_GC_STAMP_AGE_S + 60 : 3600;
        t[1] = t[0];
        utimensat(AT_FDCWD, stamps[i], t, 0);
    }
    unlink(stamp); /* (gone after 5 as root) ours made anew: a scan is due */
    rc = hak_shm_gc_dead_in(dir);
    CHECKF(rc == 1, "a call with no stamp of ours did not scan (%d)", rc);
    CHECKF(lstat(gone_ns, &st) != 0, "another namespace's stamp untouched for a day was kept");
    CHECKF(lstat(live_ns, &st) == 0, "another namespace's stamp an hour old was removed");
    CHECKF(lstat(stamp, &st) == 0, "our own stamp was removed");
    printf("ok: a day-old stamp of another namespace removed, an hour-old one and ours kept\n");
    unlink(live_ns);

    /* 7. a directory that is not there */
    char gone[96];
    snprintf(gone, sizeof gone, "%s/none", dir);
    CHECKF(hak_shm_gc_dead_in(gone) == -1, "a missing directory did not say -1");

    /* clean up */
    char path[128];
    const pid_t all[] = {dead, dead2, young, other, getpid()};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        snprintf(path, sizeof path, "%s/" HAK_SHM_PREFIX "%d", dir, (int)all[i]);
        unlink(path);
    }
    unlink(stamp);
    unlink(target);
    rmdir(dir);
    return tu_done();
}
