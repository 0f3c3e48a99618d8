/* discover.c — which processes hakmemd manages: inotify on /dev/shm plus a
 * periodic rescan (and containers' /dev/shm through /proc/PID/root, as
 * hakctl finds them), attach and detach through shm/ (no second parser), and
 * clean-up: the segment of a process that died without unlinking it is
 * removed as soon as its exit is seen (pidfd, or a BPF exit event).
 *
 * Nothing in a segment is trusted: attach validates it (shm/), a file that
 * fails is logged once and left alone (it is not ours to judge), and every
 * read of a mapped segment runs under the SIGBUS guard, since its owner may
 * truncate it under us. */
#include "hakd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__thread sigjmp_buf *hakd_bus_jmp;

/* A truncated segment faults on access: jump back to the guarded caller.
 * SA_NODEFER leaves SIGBUS unblocked in the handler, so the guards use
 * sigsetjmp(jb, 0): no signal-mask system call for every guarded read. */
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    if (hakd_bus_jmp) siglongjmp(*hakd_bus_jmp, 1);
    signal(sig, SIG_DFL); /* not in a guarded section: a real bug */
    raise(sig);
}

void hakd_bus_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, NULL);
}

/* hak_shm_attach and hak_shm_is_stale read the mapping (validation, the
 * header's start time): a file truncated at that moment faults there too. */
static int guarded_attach(pid_t pid, int writable, struct hak_shm_view *v, char *err, size_t n) {
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0)) {
        hakd_bus_jmp = NULL;
        memset(v, 0, sizeof *v); /* its mapping is lost to us: a rare, bounded leak */
        snprintf(err, n, "segment of pid %d truncated while being validated", pid);
        return HAK_SHM_ECORRUPT;
    }
    hakd_bus_jmp = &jb;
    int rc = hak_shm_attach(pid, writable, v, err, n);
    hakd_bus_jmp = NULL;
    return rc;
}

static int guarded_stale(struct hakd_proc *p) {
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0)) {
        hakd_bus_jmp = NULL;
        p->broken = 1;
        return 1;
    }
    hakd_bus_jmp = &jb;
    int stale = hak_shm_is_stale(&p->view);
    hakd_bus_jmp = NULL;
    return stale;
}

/* Whether the process's header still says live: it never reached its clean
 * exit (which clears the flag before unlinking), so it was killed. */
static int guarded_live(struct hakd_proc *p) {
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0)) {
        hakd_bus_jmp = NULL;
        return 0;
    }
    hakd_bus_jmp = &jb;
    int live = (__atomic_load_n(&p->view.hdr->flags, __ATOMIC_RELAXED) & HAK_SHM_F_LIVE) != 0;
    hakd_bus_jmp = NULL;
    return live;
}

/* ------------------------------------------------- files we do not manage
 * A file that is not ours to manage (excluded program, bad segment) is
 * remembered by pid, so it is judged and logged once, not every rescan;
 * /dev/shm may hold thousands of them. An open-addressing table keyed by
 * pid: a lookup is O(1); when it fills up it is emptied (files are then
 * judged once more). */
#define IGN_SIZE 16384 /* a power of two */
static struct ign {
    pid_t pid;     /* 0: empty */
    int by_config; /* excluded: holds while the file does (its bytes change) */
    ino_t ino;
    off_t size;
    struct timespec mtime; /* a bad file that changes is judged again */
} ign[IGN_SIZE];
static int n_ign;

static struct ign *ign_slot(pid_t pid) {
    for (uint32_t h = ((uint32_t)pid * 2654435761u) & (IGN_SIZE - 1);; h = (h + 1) & (IGN_SIZE - 1))
        if (ign[h].pid == pid || ign[h].pid == 0) return &ign[h];
}

static int ignored(pid_t pid, const struct stat *s) {
    const struct ign *g = ign_slot(pid);
    return g->pid == pid && g->ino == s->st_ino &&
           (g->by_config || (g->size == s->st_size && g->mtime.tv_sec == s->st_mtim.tv_sec &&
                             g->mtime.tv_nsec == s->st_mtim.tv_nsec));
}

static void ignore(pid_t pid, const struct stat *s, int by_config) {
    if (n_ign >= IGN_SIZE * 3 / 4) hakd_discover_forget();
    struct ign *g = ign_slot(pid);
    if (g->pid == 0) n_ign++;
    *g = (struct ign){pid, by_config, s->st_ino, s->st_size, s->st_mtim};
}

/* The config changed (SIGHUP): what it excluded may be included now. */
void hakd_discover_forget(void) {
    memset(ign, 0, sizeof ign);
    n_ign = 0;
}

static int rescan_soon; /* a young segment failed to attach: look again next tick */

static struct hakd_proc *find(struct hakd_state *st, pid_t pid) {
    for (int i = 0; i < st->nprocs; i++)
        if (st->procs[i]->pid == pid) return st->procs[i];
    return NULL;
}

/* ------------------------------------------------------------- clean-up */

/* Removes the segment file if it is still the very inode we attached: it is
 * renamed away first and checked, so a new process that took the pid and
 * the name meanwhile keeps its segment (as hakctl gc does). */
static int remove_segment(const char *path, dev_t dev, ino_t ino) {
    char tmp[160];
    struct stat s;
    const char *slash = strrchr(path, '/');
    if (!slash) return -1;
    snprintf(tmp, sizeof tmp, "%.*s/.hakmemd-gc.%d", (int)(slash - path), path, (int)getpid());
    if (rename(path, tmp) != 0) return errno == ENOENT ? 0 : -1;
    if (lstat(tmp, &s) == 0 && s.st_ino == ino && s.st_dev == dev) return unlink(tmp);
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) unlink(tmp);
    errno = EAGAIN;
    return -1;
}

static void drop(struct hakd_state *st, int i, const char *why) {
    struct hakd_proc *p = st->procs[i];
    if (p->dead && !st->dry_run) {
        struct stat s;
        if (lstat(p->path, &s) == 0 && s.st_ino == p->ino) {
            if (remove_segment(p->path, p->dev, p->ino) == 0) {
                st->removed_total++;
                hakd_log(HAKD_INFO, "pid %d (%s): exited without cleaning up: removed %s", p->pid,
                         p->exe, p->path);
            } else {
                hakd_log(HAKD_WARN, "pid %d: cannot remove %s: %s", p->pid, p->path,
                         strerror(errno));
            }
        } else if (guarded_live(p)) {
            /* killed, and its file gone (or another's now) before this
             * tick: someone else removed it (`hakctl gc`); said, so that
             * it is not taken for one we missed */
            hakd_log(HAKD_INFO, "pid %d (%s): exited without cleaning up: %s removed by another",
                     p->pid, p->exe, p->path);
        }
    }
    if (p->managed && p->ps.nphases) hakd_profile_save(st, p);
    hakd_log(HAKD_INFO, "pid %d (%s): detached (%s)", p->pid, p->exe, why);
    if (st->bpf_on) hakd_bpf_unwatch(p->pid);
    if (p->pidfd >= 0) close(p->pidfd);
    if (p->stat_fd >= 0) close(p->stat_fd);
    hak_shm_detach(&p->view);
    free(p);
    st->procs[i] = st->procs[--st->nprocs];
    st->detach_total++;
}

void hakd_discover_reap(struct hakd_state *st) {
    for (int i = st->nprocs - 1; i >= 0; i--) {
        struct hakd_proc *p = st->procs[i];
        if (p->broken) {
            drop(st, i, "segment became unreadable");
        } else if (p->dead || (p->pidfd < 0 && !st->bpf_on && guarded_stale(p))) {
            /* with a pidfd or BPF, an exit is signalled; else it is polled */
            p->dead = 1;
            drop(st, i, "process exited");
        }
    }
}

void hakd_discover_exit(struct hakd_state *st, pid_t pid) {
    struct hakd_proc *p = find(st, pid);
    if (p) p->dead = 1;
}

/* ---------------------------------------------------------------- attach */

static void read_link(const char *path, char *out, size_t n) {
    ssize_t k = readlink(path, out, n - 1);
    out[k > 0 ? k : 0] = 0;
}

static void read_first_line(const char *path, char *out, size_t n) {
    out[0] = 0;
    FILE *f = fopen(path, "re");
    if (!f) return;
    if (fgets(out, (int)n, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
}

static int guarded_copy(struct hakd_proc *p) {
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0)) {
        hakd_bus_jmp = NULL;
        return -1;
    }
    hakd_bus_jmp = &jb;
    const struct hak_shm_header *h = p->view.hdr;
    memcpy(p->exe, h->exe, sizeof p->exe - 1);
    memcpy(p->exe_path, h->exe_path, sizeof p->exe_path - 1);
    hakd_bus_jmp = NULL;
    p->exe[sizeof p->exe - 1] = p->exe_path[sizeof p->exe_path - 1] = 0;
    return 0;
}

/* Where cgroup v2 is mounted (/sys/fs/cgroup, or .../unified on a hybrid
 * system), from our mountinfo; "" if it is not. */
static const char *cgroup2_root(void) {
    static char root[200];
    static int done;
    if (done) return root;
    done = 1;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char mnt[200], fstype[32];
        const char *dash = strstr(line, " - ");
        if (dash && sscanf(dash, " - %31s", fstype) == 1 && !strcmp(fstype, "cgroup2") &&
            sscanf(line, "%*s %*s %*s %*s %199s", mnt) == 1) {
            snprintf(root, sizeof root, "%s", mnt);
            break;
        }
    }
    if (f) fclose(f);
    return root;
}

/* The cgroup v2 directory of a process, for memory.events / memory.high. */
static void cgroup_of(pid_t pid, char *out, size_t n) {
    char path[64], line[240];
    out[0] = 0;
    snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
    FILE *f = fopen(path, "re");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "0::/", 4) == 0 && cgroup2_root()[0]) {
            line[strcspn(line, "\n")] = 0;
            size_t k = strlen(cgroup2_root());
            if (k + strlen(line + 3) < n) {
                memcpy(out, cgroup2_root(), k);
                memcpy(out + k, line + 3, strlen(line + 3) + 1);
            }
        }
    if (f) fclose(f);
}

/* The process has exited: no such pid, or a zombie (its files, the memfd
 * among them, are closed already; kill() still finds it). */
static int gone(pid_t pid) {
    char path[64], buf[256];
    if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *q = strrchr(buf, ')');
    return q && (q[2] == 'Z' || q[2] == 'X');
}

static int young_and_alive(pid_t pid, const struct stat *s) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec - s->st_mtim.tv_sec < 2 && !gone(pid);
}

/* A link that names pid in our pid namespace (a neighbour's pid means
 * nothing to kill() here): the segment of that process of ours. */
static int dead_link_ours(const char *path, pid_t pid) {
    char text[HAK_SHM_LINK_MAX];
    pid_t lp;
    int fd;
    uint64_t ns;
    ssize_t n = readlink(path, text, sizeof text - 1);
    if (n <= 0) return 0;
    text[n] = 0;
    return hak_shm_link_parse(text, &lp, &fd, &ns) == 0 && lp == pid &&
           ns == hak_shm_pidns("/proc/self/ns/pid");
}

/* Attaches pid (found as path); files we must not or cannot manage are
 * remembered and skipped from then on. */
static void consider(struct hakd_state *st, pid_t pid, const char *path) {
    struct stat s;
    char err[256], exe[256] = "";
    if (find(st, pid) || lstat(path, &s) != 0 || ignored(pid, &s)) return;
    int alive = kill(pid, 0) == 0 || errno != ESRCH;
    if (alive) { /* judge by /proc first: no need to map what we exclude */
        char tmp[64], comm[64] = "";
        snprintf(tmp, sizeof tmp, "/proc/%d/comm", pid);
        read_first_line(tmp, comm, sizeof comm);
        snprintf(tmp, sizeof tmp, "/proc/%d/exe", pid);
        read_link(tmp, exe, sizeof exe);
        if (exe[0] && !hakd_config_wants(&st->cfg, comm, exe)) {
            ignore(pid, &s, 1);
            hakd_log(HAKD_DEBUG, "pid %d (%s): not included by the config", pid, comm);
            return;
        }
    }
    if (st->nprocs >= st->cfg.max_procs) {
        static uint64_t said;
        if (st->ticks - said > 60 || !said)
            hakd_log(HAKD_WARN, "managing %d processes already (max_procs): pid %d waits",
                     st->nprocs, pid);
        said = st->ticks ? st->ticks : 1;
        return;
    }
    static struct hakd_proc tmpl; /* filled first; allocated once it is wanted */
    struct hakd_proc *p = &tmpl;
    memset(p, 0, offsetof(struct hakd_proc, raw));
    int rc = guarded_attach(pid, !st->dry_run, &p->view, err, sizeof err);
    if (rc != HAK_SHM_OK) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (rc == HAK_SHM_ECORRUPT && now.tv_sec - s.st_mtim.tv_sec < 2) {
            /* a segment being created (the allocator sizes and fills it in
             * place): judged again at the next ticks, logged once it is old */
            hakd_log(HAKD_DEBUG, "pid %d: segment not ready yet: %s", pid, err);
            rescan_soon = 1;
        } else if (rc == HAK_SHM_ESTALE && S_ISLNK(s.st_mode) && gone(pid) &&
                   dead_link_ours(path, pid)) {
            /* killed before we saw it alive: its link to a memfd that is
             * gone with it; the same clean-up as for one we watched */
            if (!st->dry_run && remove_segment(path, s.st_dev, s.st_ino) == 0) {
                st->removed_total++;
                hakd_log(HAKD_INFO,
                         "pid %d: exited without cleaning up (before we saw it): "
                         "removed %s",
                         pid, path);
            } else {
                ignore(pid, &s, 0);
            }
        } else if (rc != HAK_SHM_ENOENT) { /* ENOENT: it went away meanwhile */
            /* another user's segment is expected when running unprivileged */
            hakd_log(rc == HAK_SHM_EACCES && geteuid() != 0 ? HAKD_DEBUG : HAKD_WARN,
                     "pid %d: skipping segment: %s", pid, err);
            st->errors_total++;
            ignore(pid, &s, 0);
        }
        return;
    }
    if (guarded_copy(p) != 0) {
        hakd_log(HAKD_WARN, "pid %d: %s faulted while reading its header (truncated)", pid, path);
        hak_shm_detach(&p->view);
        ignore(pid, &s, 0);
        return;
    }
    if ((!alive || !exe[0]) && /* judged by the segment's own names */
        !hakd_config_wants(&st->cfg, p->exe, p->exe_path)) {
        hak_shm_detach(&p->view);
        ignore(pid, &s, 1);
        return;
    }
    if (!(p = calloc(1, sizeof *p))) {
        hak_shm_detach(&tmpl.view);
        return;
    }
    memcpy(p, &tmpl, offsetof(struct hakd_proc, raw));
    p->pid = pid;
    p->pidfd = p->stat_fd = -1;
    p->dev = s.st_dev;
    p->ino = s.st_ino;
    snprintf(p->path, sizeof p->path, "%s", path);
    if (exe[0]) snprintf(p->exe_path, sizeof p->exe_path, "%s", exe);
    p->managed = 1;
    st->procs[st->nprocs++] = p;
    st->attach_total++;
    /* the pidfd after the staleness check would race; before it, a pid
     * reused meanwhile is caught by the check itself */
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int stale = guarded_stale(p);
    if (stale && young_and_alive(pid, &s)) {
        /* a live process that does not map its new segment yet (it is
         * being published): not ours to remove; judged again soon */
        hakd_log(HAKD_DEBUG, "pid %d: segment not mapped by its process yet", pid);
        rescan_soon = 1;
        st->procs[--st->nprocs] = NULL;
        st->attach_total--;
        if (p->pidfd >= 0) close(p->pidfd);
        hak_shm_detach(&p->view);
        free(p);
        return;
    }
    if (stale) {
        p->dead = 1;
        hakd_log(HAKD_INFO, "pid %d (%s): segment of a process that is gone", pid, p->exe);
        return; /* reaped (and removed) this tick */
    }
    hakd_profile_key(pid, p->exe_path, p->key, sizeof p->key);
    cgroup_of(pid, p->cgroup, sizeof p->cgroup);
    if (st->bpf_on) hakd_bpf_watch(pid);
    hakd_log(HAKD_INFO, "pid %d (%s): attached %s%s", pid, p->exe, path,
             st->dry_run ? " (read-only: dry run)" : "");
}

static int list_one(pid_t pid, const char *path, void *arg) {
    consider(arg, pid, path);
    return 0;
}

/* Processes in another mount namespace (containers): their /dev/shm is
 * reached through /proc/PID/root; hak_shm_attach finds the segment there. */
static void scan_containers(struct hakd_state *st) {
    struct stat ours, theirs;
    if (stat("/dev/shm", &ours) != 0) return;
    DIR *d = opendir("/proc");
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        char *end, path[160];
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid > INT_MAX || find(st, (pid_t)pid)) continue;
        snprintf(path, sizeof path, "/proc/%ld/root/dev/shm", pid);
        if (stat(path, &theirs) != 0) continue;
        if (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) continue;
        /* the segment is named by the pid inside the namespace: any
         * hakmem.* there may be this process's; attach sorts it out */
        DIR *c = opendir(path);
        if (!c) continue;
        int has = 0;
        for (struct dirent *f; (f = readdir(c));)
            if (strncmp(f->d_name, HAK_SHM_PREFIX, strlen(HAK_SHM_PREFIX)) == 0) has = 1;
        closedir(c);
        if (has) {
            char ns_pid[32] = "", line[256], st_path[64];
            snprintf(st_path, sizeof st_path, "/proc/%ld/status", pid);
            FILE *f = fopen(st_path, "re");
            while (f && fgets(line, sizeof line, f))
                if (strncmp(line, "NSpid:", 6) == 0) {
                    char *last = strrchr(line, '\t');
                    snprintf(ns_pid, sizeof ns_pid, "%s", last ? last + 1 : "");
                    ns_pid[strcspn(ns_pid, "\n")] = 0;
                }
            if (f) fclose(f);
            snprintf(path, sizeof path, "/proc/%ld/root/dev/shm/" HAK_SHM_PREFIX "%s", pid, ns_pid);
            struct stat ls; /* lstat: a segment is published as a link (never followed) */
            if (ns_pid[0] && lstat(path, &ls) == 0) consider(st, (pid_t)pid, path);
        }
    }
    closedir(d);
}

/* ----------------------------------------------------------------- inotify */
static int inotify_fd = -1;

int hakd_discover_open(struct hakd_state *st) {
    inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd >= 0 && inotify_add_watch(inotify_fd, "/dev/shm",
                                             IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE |
                                                 IN_MOVED_FROM | IN_ONLYDIR) < 0) {
        hakd_log(HAKD_WARN, "inotify on /dev/shm: %s; finding processes by rescan only",
                 strerror(errno));
        close(inotify_fd);
        inotify_fd = -1;
    }
    return inotify_fd;
}

static pid_t name_pid(const char *name) {
    size_t pl = strlen(HAK_SHM_PREFIX);
    if (strncmp(name, HAK_SHM_PREFIX, pl) != 0) return 0;
    char *end;
    long v = strtol(name + pl, &end, 10);
    return *end || v <= 0 || v > INT_MAX || name[pl] == '0' ? 0 : (pid_t)v;
}

void hakd_discover_inotify(struct hakd_state *st) {
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(inotify_fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *q = buf; q < buf + n;) {
            const struct inotify_event *ev = (const void *)q;
            q += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) rescan_soon = 1; /* events lost: look at all */
            pid_t pid = ev->len ? name_pid(ev->name) : 0;
            if (!pid) continue;
            char path[64];
            snprintf(path, sizeof path, "/dev/shm/%s", ev->name);
            struct hakd_proc *known = find(st, pid);
            struct stat now;
            if (known && strcmp(known->path, path) == 0) {
                int exists = lstat(path, &now) == 0;
                if (!exists || now.st_ino != known->ino) {
                    /* unlinked (a clean exit), or another file under the name
                     * (the program exec'd and made a new segment): drop ours;
                     * a new one is attached by the rescan of the next tick */
                    known->dead = 1;
                    if (exists) rescan_soon = 1;
                }
            } else if (ev->mask & (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO)) {
                consider(st, pid, path);
            }
        }
    }
}

void hakd_discover_tick(struct hakd_state *st, int force_rescan) {
    static uint64_t last_scan;
    uint64_t now = hakd_now_ns();
    if (force_rescan || inotify_fd < 0 || rescan_soon ||
        now - last_scan >= (uint64_t)st->cfg.rescan_ms * 1000000ull) {
        last_scan = now;
        rescan_soon = 0;
        hak_shm_list(list_one, st);
        static uint64_t scans; /* containers: every 5th rescan */
        if (scans++ % 5 == 0) scan_containers(st);
    }
}

void hakd_discover_close(struct hakd_state *st) {
    while (st->nprocs) {
        st->procs[st->nprocs - 1]->dead = 0; /* alive: keep their segments */
        drop(st, st->nprocs - 1, "daemon stopping");
    }
    if (inotify_fd >= 0) close(inotify_fd);
    inotify_fd = -1;
}
