/* fork_watch.h — hang detection for the t_fork_* deadlock tests.
 *
 * fw_run(work, seconds) forks a worker process, in a process group of its
 * own, that runs work(seconds) and returns its exit status. The worker and
 * its children share a page of progress counters (one per role: "forks",
 * "lines", ...; fw_tick(role) bumps one). The supervisor polls them every
 * 10 ms: when a role that has started stops moving for FW_STALL_MS, the
 * worker is hung (a deadlock spins or sleeps; a live worker ticks every role
 * many times a second). The supervisor then prints which role stopped and
 * when (the time to hang, measured from the start), kills the whole process
 * group with SIGKILL and fails (FW_DEBUG=1: after 120 s, to attach a
 * debugger first). alarm() in the worker is the backstop for a
 * supervisor that is itself stuck; tests/run's timeout is the last one.
 *
 * Why a separate supervisor: a deadlocked process can not report on itself,
 * and fork children that hang inside fork() never reach code that could arm
 * an alarm of their own.
 */
#ifndef HAKMEM_FORK_WATCH_H
#define HAKMEM_FORK_WATCH_H

#include <errno.h>
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
    unsigned long last[FW_MAX_ROLES] = {0};
    int done_seen = 0;
    double moved[FW_MAX_ROLES];
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
            for (int r = 0; r < FW_MAX_ROLES; r++) moved[r] = now;
        }
        for (int r = 0; r < fw->nroles; r++) {
            unsigned long t = fw_ticks(r);
            if (t != last[r] && !done) {
                last[r] = t;
                moved[r] = now;
            } else if ((now - moved[r]) * 1000 > FW_STALL_MS) {
                printf("HANG: role '%s' stopped at %.2f s after start (%lu ticks, %s for %d ms); "
                       "killing the process group\n",
                       fw->names[r], moved[r] - t0, t,
                       done ? "no exit after the end" : "no progress", FW_STALL_MS);
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

/* A child's wait status must be a clean exit 0; anything else counts. */
static inline void fw_check_child(pid_t p, int st, const char *what) {
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s child %d: status %#x\n", what, (int)p, st);
        atomic_fetch_add(&fw_failures, 1);
    }
}

/* A fork child's whole life: allocate, fill and free each size `rounds`
 * times, then _exit(0) (3 if malloc failed). */
static inline void fw_child_alloc_exit(const size_t *sizes, int n, int rounds, int byte) {
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
