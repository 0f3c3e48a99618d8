/* fork_watch.h — hang detection for the t_fork_* deadlock tests.
 *
 * fw_run(work, seconds) forks a worker process, in a process group of its
 * own, that runs work(seconds) and returns its exit status. The worker and
 * its children share a page of progress counters (one per role: "forks",
 * "lines", ...; fw_tick(role) bumps one). The supervisor polls them every
 * 10 ms: when a role that has started stops moving, the worker may be hung
 * (a deadlock spins or sleeps; a live worker ticks every role many times a
 * second). The supervisor then prints which role stopped and when (the
 * time to hang, measured from the start), kills the whole process group
 * with SIGKILL and fails (FW_DEBUG=1: after 120 s, to attach a debugger
 * first). alarm() in the worker is the backstop for a supervisor that is
 * itself stuck; tests/run's timeout is the last one.
 *
 * A stall is not a hang on a loaded machine. At a load average of 20-40
 * on two cores a fork round of t_fork_handlers (the prepare handler's
 * blocks, the fork of a big address space, the child's threads) took over
 * 2 s, and t_fork_signal's single-threaded worker and its children got 30
 * ms of CPU in 2 s, all of them runnable; gdb on every such "hang" found
 * each thread runnable, in its own work or waiting for a live holder, and
 * a worker left running (FW_DEBUG) went on and passed. So the supervisor
 * also looks at the worker's process group (every process in it: the
 * worker, its threads, its children) every 100 ms, and a role that has
 * stopped for FW_STALL_MS is hung only if, since it last moved,
 *   - one thread of the group got FW_STALL_CPU_MS of CPU
 *     (/proc/PID/task/TID/schedstat): the machine gave the group's threads
 *     that much each, and still nothing. A deadlock that spins (hak_lock_as
 *     yields in a loop), or one beside threads that still run, gets there
 *     as fast as the load lets any thread: on an idle machine within
 *     FW_STALL_MS, at a load of 40 in about 10 s. Starvation slows every
 *     thread alike, and a fork round needs far less of any one thread; or
 *   - the group has been asleep for FW_STALL_MS: no thread of it ran or
 *     waited to run for half of any 100 ms (schedstat: run + run-queue
 *     wait), and it got under a tenth of a core (/proc/PID/stat utime +
 *     stime + cutime + cstime: children too short-lived to be seen): a
 *     deadlock on futexes (glibc's locks) with nobody left to wake it. A
 *     starved thread waits to run the whole time: it keeps the group awake.
 * A deadlock that does neither (a sleeper beside a poller on a loaded
 * machine: the poller waits to run, and gets little) is left to the alarm
 * backstop. FW_WALL_ONLY=1 in the environment (or no schedstat): the wall
 * clock alone, as before.
 *
 * Why a separate supervisor: a deadlocked process can not report on itself,
 * and fork children that hang inside fork() never reach code that could arm
 * an alarm of their own.
 *
 * FW_PLANT=spin|sleep (tests of the watchdog itself): a fork child that
 * calls fw_plant() never returns from it, yielding in a loop like a lock
 * waiter or asleep like a futex waiter; the test must then fail.
 */
#ifndef HAKMEM_FORK_WATCH_H
#define HAKMEM_FORK_WATCH_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FW_MAX_ROLES 8
#define FW_STALL_MS 2000
#define FW_STALL_CPU_MS 500
#define FW_SAMPLE_MS 100

struct fw_shared {
    atomic_ulong ticks[FW_MAX_ROLES];
    const char *names[FW_MAX_ROLES]; /* static strings: same address in every process */
    int nroles;
    atomic_int done; /* the workload stopped: no more ticks, the worker is winding down */
};
static struct fw_shared *fw;

static inline double fw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Declares a role before fw_run; returns its index for fw_tick. */
static inline int fw_role(const char *name) {
    if (!fw) {
        fw = mmap(NULL, sizeof *fw, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (fw == MAP_FAILED) {
            perror("fork_watch: mmap");
            exit(2);
        }
    }
    fw->names[fw->nroles] = name;
    return fw->nroles++;
}

static inline void fw_tick(int role) {
    atomic_fetch_add_explicit(&fw->ticks[role], 1, memory_order_relaxed);
}

/* The workload is over; from here the worker has FW_STALL_MS to exit. */
static inline void fw_done(void) {
    atomic_store(&fw->done, 1);
}

static inline unsigned long fw_ticks(int role) {
    return atomic_load_explicit(&fw->ticks[role], memory_order_relaxed);
}

/* waitpid that retries on EINTR; returns the status or -1. */
static inline int fw_wait(pid_t pid) {
    int st;
    pid_t r;
    do r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

/* The supervisor's view of the worker's process group (fw_sample): its
 * threads, by tid, with their times from /proc/PID/task/TID/schedstat. */
#define FW_MAX_TASKS 512
struct fw_task {
    pid_t tid;
    int seen;
    unsigned long long run, busy;            /* ns run; ns run or waiting to run */
    unsigned long long run_at[FW_MAX_ROLES]; /* run when the role last moved */
};
static struct fw_task fw_tasks[FW_MAX_TASKS];
static int fw_ntasks, fw_schedstat = 1;

static inline int fw_read(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return 0;
}

/* Updates the records of process pid's threads; returns whether one was
 * busy (ran or waited to run) for more than half of the last period_ns. */
static inline int fw_tasks_look(const char *pid, unsigned long long period_ns) {
    char path[96], buf[128];
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    int busy = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long run, wait;
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/task/%s/schedstat", pid, e->d_name);
        if (fw_read(path, buf, sizeof buf) || sscanf(buf, "%llu %llu", &run, &wait) != 2) {
            if (access("/proc/self/schedstat", R_OK)) fw_schedstat = 0; /* not this kernel */
            continue;
        }
        pid_t tid = atoi(e->d_name);
        int i = 0;
        while (i < fw_ntasks && fw_tasks[i].tid != tid) i++;
        if (i == FW_MAX_TASKS) continue;
        struct fw_task *t = &fw_tasks[i];
        if (i == fw_ntasks) { /* new: it began since the last look (all of its
                               * life counts), or this is the first look */
            fw_ntasks++;
            memset(t, 0, sizeof *t);
            t->tid = tid;
            if (!period_ns) t->busy = run + wait;
            for (int r = 0; r < FW_MAX_ROLES; r++) t->run_at[r] = period_ns ? 0 : run;
        }
        if ((run + wait - t->busy) * 2 > period_ns) busy = 1;
        t->run = run, t->busy = run + wait, t->seen = 1;
    }
    closedir(d);
    return busy;
}

/* One look at process group pg: *cpu_ms gets its CPU time (threads dead or
 * alive, children reaped: a child reaped between two looks moves its time
 * to its parent's, the sum keeps it), *busy whether one of its threads ran
 * or waited to run for half of the period since the last look (period_ns;
 * 0 at the first). -1 without /proc. */
static inline int fw_sample(pid_t pg, unsigned long long period_ns, long *cpu_ms, int *busy) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    long ticks = 0, hz = sysconf(_SC_CLK_TCK);
    *busy = 0;
    for (int i = 0; i < fw_ntasks; i++) fw_tasks[i].seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[64], buf[512];
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (fw_read(path, buf, sizeof buf)) continue;
        char *p = strrchr(buf, ')'); /* the name may hold spaces */
        int pgrp;
        long ut, st, cut, cst;
        if (!p ||
            sscanf(p + 2, "%*c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld %ld %ld", &pgrp, &ut,
                   &st, &cut, &cst) != 5 ||
            pgrp != pg)
            continue;
        ticks += ut + st + cut + cst;
        if (fw_schedstat && fw_tasks_look(e->d_name, period_ns)) *busy = 1;
    }
    closedir(d);
    for (int i = 0; i < fw_ntasks;) /* threads gone */
        if (!fw_tasks[i].seen)
            fw_tasks[i] = fw_tasks[--fw_ntasks];
        else
            i++;
    *cpu_ms = hz > 0 ? ticks * 1000 / hz : 0;
    return fw_schedstat ? 0 : -1;
}

/* The most CPU time (ms) one thread of the group got since role r moved. */
static inline long fw_task_cpu_ms(int r) {
    unsigned long long most = 0;
    for (int i = 0; i < fw_ntasks; i++)
        if (fw_tasks[i].run - fw_tasks[i].run_at[r] > most)
            most = fw_tasks[i].run - fw_tasks[i].run_at[r];
    return (long)(most / 1000000);
}

/* FW_PLANT (see the header): a deadlock planted in a fork child. */
static inline void fw_plant(void) {
    const char *k = getenv("FW_PLANT");
    if (!k) return;
    if (!strcmp(k, "spin"))
        for (;;) sched_yield();
    if (!strcmp(k, "sleep"))
        for (;;) pause();
}

/* Runs work(seconds) in a watched worker; returns 0 on a clean pass. */
static inline int fw_run(int (*work)(double seconds), double seconds) {
    double t0 = fw_now();
    pid_t w = fork();
    if (w < 0) {
        perror("fork_watch: fork");
        return 1;
    }
    if (w == 0) {
        setpgid(0, 0);
        alarm((unsigned)seconds + 30);
        int rc = work(seconds);
        fflush(stdout);
        _exit(rc);
    }
    setpgid(w, w); /* both sides: no race on who runs first */
    int by_cpu = !getenv("FW_WALL_ONLY");
    unsigned long last[FW_MAX_ROLES] = {0};
    int done_seen = 0, rebase[FW_MAX_ROLES] = {0};
    double moved[FW_MAX_ROLES], sampled = 0, awake = t0; /* awake: the last busy look */
    long cpu = 0, task_cpu[FW_MAX_ROLES] = {0};
    for (int r = 0; r < FW_MAX_ROLES; r++) moved[r] = t0;
    for (;;) {
        int st;
        pid_t got = waitpid(w, &st, WNOHANG);
        if (got == w) {
            kill(-w, SIGKILL); /* children the worker may have left */
            if (WIFSIGNALED(st)) {
                printf("FAIL: worker killed by signal %d (%s)%s\n", WTERMSIG(st),
                       strsignal(WTERMSIG(st)),
                       WTERMSIG(st) == SIGALRM ? ": alarm backstop, it hung" : "");
                return 1;
            }
            return WEXITSTATUS(st);
        }
        if (got < 0 && errno != EINTR) {
            perror("fork_watch: waitpid");
            return 1;
        }
        double now = fw_now();
        int done = atomic_load(&fw->done);
        if (done && !done_seen) { /* the exit gets its own window */
            done_seen = 1;
            for (int r = 0; r < FW_MAX_ROLES; r++) moved[r] = now, rebase[r] = 1;
        }
        if (by_cpu && (now - sampled) * 1000 >= FW_SAMPLE_MS) {
            long c;
            int busy;
            unsigned long long period = sampled ? (unsigned long long)((now - sampled) * 1e9) : 0;
            if (fw_sample(w, period, &c, &busy)) {
                by_cpu = 0; /* no /proc, or no schedstat: the wall clock alone */
            } else {
                /* asleep: no thread busy, and (children too short-lived to
                 * be seen) under a tenth of a core */
                if (busy || !period || (c - cpu) * 10 > (now - sampled) * 1000) awake = now;
                if (c > cpu) cpu = c; /* never back: a process may leave between looks */
                for (int r = 0; r < fw->nroles; r++) {
                    if (rebase[r]) /* moved since the last look: counts from here */
                        for (int i = 0; i < fw_ntasks; i++) fw_tasks[i].run_at[r] = fw_tasks[i].run;
                    rebase[r] = 0;
                    task_cpu[r] = fw_task_cpu_ms(r);
                }
            }
            sampled = now;
        }
        for (int r = 0; r < fw->nroles; r++) {
            unsigned long t = fw_ticks(r);
            double stalled = (now - moved[r]) * 1000,
                   asleep = (now - (awake > moved[r] ? awake : moved[r])) * 1000;
            if (t != last[r] && !done) {
                last[r] = t;
                moved[r] = now;
                rebase[r] = 1, task_cpu[r] = 0;
            } else if (stalled > FW_STALL_MS &&
                       (!by_cpu || task_cpu[r] >= FW_STALL_CPU_MS || asleep > FW_STALL_MS)) {
                printf("HANG: role '%s' stopped at %.2f s after start (%lu ticks, %s for %.0f ms; "
                       "a thread got %ld ms of CPU since%s); killing the process group\n",
                       fw->names[r], moved[r] - t0, t,
                       done ? "no exit after the end" : "no progress", stalled, task_cpu[r],
                       !by_cpu                          ? " (not counted)"
                       : task_cpu[r] >= FW_STALL_CPU_MS ? ": it ran and got nowhere"
                                                        : ", the group asleep");
                for (int q = 0; q < fw->nroles; q++)
                    printf("  %-10s %lu\n", fw->names[q], fw_ticks(q));
                fflush(stdout);
                if (getenv("FW_DEBUG")) { /* leave the hung processes to a debugger a while */
                    printf("FW_DEBUG: worker %d (process group %d) left hung for 120 s\n", (int)w,
                           (int)w);
                    fflush(stdout);
                    sleep(120);
                }
                kill(-w, SIGKILL);
                fw_wait(w);
                return 1;
            }
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- the workload's side: shared by the t_fork_* programs ---- */

/* Set when the run is over; every workload thread polls it. */
static atomic_int fw_stop;
/* Problems the workload saw (a child's bad status, a failed call). */
static atomic_long fw_failures;

static inline int fw_running(void) {
    return !atomic_load_explicit(&fw_stop, memory_order_relaxed);
}

/* The main thread of work(): lets the threads run for `seconds`, then stops
 * them and starts the exit window (join them after this). */
static inline void fw_run_for(double seconds) {
    double end = fw_now() + seconds;
    while (fw_now() < end) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&fw_stop, 1);
    fw_done();
}

/* Installs handler for sig, restarting interrupted system calls. */
static inline void fw_handle(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

/* A child's wait status must be a clean exit 0; anything else counts. */
static inline void fw_check_child(pid_t p, int st, const char *what) {
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s child %d: status %#x\n", what, (int)p, st);
        atomic_fetch_add(&fw_failures, 1);
    }
}

/* A fork child's whole life (after fw_plant): allocate, fill and free each size `rounds`
 * times, then _exit(0) (3 if malloc failed). */
static inline void fw_child_alloc_exit(const size_t *sizes, int n, int rounds, int byte) {
    fw_plant();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
            char *p = malloc(sizes[i]);
            if (!p) _exit(3);
            memset(p, byte, sizes[i]);
            free(p);
        }
    _exit(0);
}

#endif
