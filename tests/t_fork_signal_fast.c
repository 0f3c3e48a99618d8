/* t_fork_signal_fast — fork() from a signal handler that interrupted the
 * fast path, and every child resumes it.
 *
 * The single-threaded worker mallocs and frees bursts of small blocks in a
 * tight loop, so a signal lands in malloc's or free's fast path most of the
 * time, often between its read and its write of the bin. Its bursts are
 * larger than a bin's starting cap, so the caps have grown (hak_tbin_grow)
 * when the signals come. A second process sends SIGUSR1 at short random
 * intervals; the handler forks, and every child returns from the handler:
 * it finishes the interrupted malloc or free, then gives every cached block
 * back (malloc_trim: each bin's count is walked), allocates, fills and
 * checks again, and exits 0. The fork child handler once re-applied the
 * knobs to the bins under the interrupted code: the free wrote its stale
 * room back over a shrunk cap, the count read 2^32 - 1, and the trim's
 * flush walked off the list (SIGSEGV; tests/t_fork_signal hit it in 3 of
 * 60 runs under load, docs/allocator.md "fork"). Hang detection:
 * tests/fork_watch.h.
 * Usage: t_fork_signal_fast [seconds]   (default 2)
 */
#include "fork_watch.h"
#include "testutil.h"

#include <malloc.h>
#include <stdlib.h>

#define MIN_SIGFORKS 40
#define EXTRA_S 20 /* within the worker's alarm (seconds + 30) */
#define BURST 400  /* above a small bin's starting cap: the caps grow */

static int R_LOOP, R_SIGFORK;
static pid_t worker_pid;
/* set in a handler child: a load in the loop, not a getpid() system call
 * (the signals must land in malloc and free, not in a system call) */
static volatile sig_atomic_t in_child;

static void on_usr1(int sig) {
    (void)sig;
    int e = errno;
    pid_t p = fork();
    if (p == 0) {
        in_child = 1;
        errno = e;
        return; /* resume the interrupted malloc or free; the loop ends the child */
    }
    int st = p < 0 ? -1 : fw_wait(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        /* async-signal-safe: the status as one hex digit pair is enough */
        char msg[] = "t_fork_signal_fast: handler child failed, status 0x..\n";
        unsigned s = st == -1 ? 0xffu : (unsigned)st & 0xffu;
        msg[sizeof msg - 4] = "0123456789abcdef"[s >> 4];
        msg[sizeof msg - 3] = "0123456789abcdef"[s & 15];
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        atomic_fetch_add(&fw_failures, 1);
    }
    fw_tick(R_SIGFORK);
    errno = e;
}

/* A resumed child: every cached block back to its span, then blocks of
 * every small class again, filled and checked. */
static void child_check(void) {
    malloc_trim(0);
    static char *b[BURST];
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < BURST; i++) {
            size_t n = 16 + (size_t)(i % 64) * 16;
            if (!(b[i] = malloc(n))) _exit(3);
            memset(b[i], i & 0xff, n);
        }
        for (int i = 0; i < BURST; i++) {
            if ((unsigned char)b[i][15] != (i & 0xff)) _exit(5);
            free(b[i]);
        }
    }
    malloc_trim(0);
    _exit(0);
}

/* Signals at random moments 0-200 us apart, one handler fork in flight. */
static pid_t start_sender(void) {
    pid_t s = fork();
    if (s != 0) return s;
    uint64_t rng = 11;
    while (!atomic_load(&fw->done) && getppid() == worker_pid) {
        unsigned long seen = fw_ticks(R_SIGFORK);
        kill(worker_pid, SIGUSR1);
        for (int i = 0; i < 10000 && fw_ticks(R_SIGFORK) == seen && !atomic_load(&fw->done); i++) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        struct timespec ts = {0, (long)(tu_rand(&rng) % 200) * 1000};
        nanosleep(&ts, NULL);
    }
    _exit(0);
}

static int work(double seconds) {
    worker_pid = getpid();
    static void *b[BURST];
    /* grow the caps before the first signal */
    for (int r = 0; r < 50; r++) {
        for (int i = 0; i < BURST; i++) b[i] = malloc(32);
        for (int i = 0; i < BURST; i++) free(b[i]);
    }
    fw_handle(SIGUSR1, on_usr1);
    pid_t sender = start_sender();
    REQUIRE(sender > 0);
    double end = fw_now() + seconds;
    while (fw_now() < end || (fw_ticks(R_SIGFORK) < MIN_SIGFORKS && fw_now() < end + EXTRA_S)) {
        for (int r = 0; r < 20; r++) {
            size_t n = r & 1 ? 32 : 48;
            for (int i = 0; i < BURST; i++) {
                b[i] = malloc(n);
                if (in_child) child_check();
            }
            for (int i = 0; i < BURST; i++) {
                free(b[i]);
                if (in_child) child_check();
            }
        }
        fw_tick(R_LOOP);
    }
    signal(SIGUSR1, SIG_IGN);
    if (in_child) child_check();
    fw_done();
    int st = fw_wait(sender);
    printf("loops %lu, forks from the handler %lu, failures %ld\n", fw_ticks(R_LOOP),
           fw_ticks(R_SIGFORK), atomic_load(&fw_failures));
    if (fw_ticks(R_SIGFORK) < MIN_SIGFORKS) {
        printf("too few signals arrived (%lu): the race was not exercised\n", fw_ticks(R_SIGFORK));
        return 1;
    }
    return atomic_load(&fw_failures) || st == -1 ? 1 : 0;
}

int main(int argc, char **argv) {
    tu_init("t_fork_signal_fast");
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    R_LOOP = fw_role("loops");
    R_SIGFORK = fw_role("sigforks");
    if (fw_run(work, seconds)) tu_fail(__FILE__, __LINE__, "worker passed", NULL);
    return tu_done();
}
