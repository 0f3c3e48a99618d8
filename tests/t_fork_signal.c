/* t_fork_signal — fork() from a signal handler in a single-threaded process.
 *
 * The worker is single-threaded. Its main loop forks (the child mallocs and
 * _exit(0)s), mallocs, reallocs and frees small, mid and large blocks, and
 * fills, empties and trims a few segments (cache_cycle), non-stop. A second process sends it
 * SIGUSR1 at random moments (see start_sender); the handler calls fork() too, so it interrupts the
 * main loop anywhere: inside fork() (between the atfork handlers), inside malloc holding an
 * allocator lock, or in the fast path. Three of four handler children
 * _exit(0) at once; the fourth returns from the handler and finishes what
 * the signal interrupted, then mallocs and frees (verified) and exits 0, so
 * the allocator state the interrupted code completes in the child is checked
 * as well. glibc guarantees fork() from a handler works in a single-threaded
 * process. An allocator whose fork handler takes a lock the interrupted code
 * holds spins for ever. Hang detection: tests/fork_watch.h.
 * Usage: t_fork_signal [seconds]   (default 3)
 */
#include "fork_watch.h"
#include "testutil.h"

#include <malloc.h>
#include <stdlib.h>

#define MIN_SIGFORKS 10
#define EXTRA_S 20 /* within the worker's alarm (seconds + 30) */

static int R_FORK, R_ALLOC, R_SIGFORK;
static pid_t worker_pid;
static volatile sig_atomic_t handler_n;

static int status_ok(int st) {
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Appends v in base b to buf at *n (async-signal-safe). */
static void put_num(char *buf, size_t *n, size_t cap, unsigned long v, unsigned b) {
    char num[24];
    int k = (int)sizeof num;
    do num[--k] = "0123456789abcdef"[v % b];
    while ((v /= b) && k > 0);
    while (k < (int)sizeof num && *n < cap) buf[(*n)++] = num[k++];
}

static void put_str(char *buf, size_t *n, size_t cap, const char *s) {
    while (*s && *n < cap) buf[(*n)++] = *s++;
}

/* Counts a failure and says which check saw it: the child's pid and wait
 * status (exit 5: a resumed handler child found bad data; a signal: it
 * crashed), or errno when fork failed. Runs in the handler too, so it
 * formats by hand and writes with write(2). */
static void fail_note(const char *what, pid_t p, int st) {
    int e = errno;
    atomic_fetch_add(&fw_failures, 1);
    char buf[160];
    size_t n = 0;
    put_str(buf, &n, sizeof buf, "t_fork_signal: ");
    put_str(buf, &n, sizeof buf, what);
    if (p < 0) {
        put_str(buf, &n, sizeof buf, ": fork failed, errno ");
        put_num(buf, &n, sizeof buf, (unsigned long)e, 10);
    } else if (p > 0) {
        put_str(buf, &n, sizeof buf, ": child ");
        put_num(buf, &n, sizeof buf, (unsigned long)p, 10);
        put_str(buf, &n, sizeof buf, st == -1 ? ", waitpid failed, errno " : ", wait status 0x");
        put_num(buf, &n, sizeof buf, st == -1 ? (unsigned long)e : (unsigned)st,
                st == -1 ? 10 : 16);
    }
    put_str(buf, &n, sizeof buf, "\n");
    ssize_t w = write(2, buf, n);
    (void)w;
    errno = e;
}

static void on_usr1(int sig) {
    (void)sig;
    int e = errno;
    pid_t p = fork();
    if (p == 0) {
        if (++handler_n % 4 != 0) _exit(0);
        errno = e;
        return; /* the child resumes the interrupted code; the main loop ends it */
    }
    int st = p < 0 ? -1 : fw_wait(p);
    if (p < 0 || !status_ok(st)) fail_note("handler", p, st);
    handler_n++;
    fw_tick(R_SIGFORK);
    errno = e;
}

static char byte_at(size_t j, int seed) {
    return (char)(j * 7 + (size_t)seed);
}

/* Allocates, verifies and frees blocks of every kind; 0 if all was right. */
static int churn(uint64_t *rng, int rounds) {
    int bad = 0;
    for (int i = 0; i < rounds; i++) {
        size_t n = tu_stress_size(rng);
        char *p = malloc(n);
        if (!p) return 1;
        size_t keep = n / 2 + 1; /* realloc shrinks to this: these bytes stay */
        size_t checked = 256;
        if (keep < checked) checked = keep;
        for (size_t j = 0; j < checked; j++) p[j] = byte_at(j, i);
        char *q = realloc(p, keep);
        if (!q) return 1;
        for (size_t j = 0; j < checked; j++) bad |= q[j] != byte_at(j, i);
        char *z = calloc(1, 100);
        if (!z || z[99]) bad = 1;
        free(z);
        free(q);
    }
    return bad;
}

/* Fills a few segments with mid-size blocks, frees them and trims: the
 * emptied segments' pages are purged under the segment-cache lock, a long
 * locked region for a signal to land in (and the large-block and pool
 * locks are taken on the way). */
static int cache_cycle(void) {
    enum { N = 48, SIZE = 180000 };
    char *b[N];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        b[i] = malloc(SIZE);
        if (!b[i]) return 1;
        memset(b[i], i, SIZE);
    }
    for (int i = 0; i < N; i++) {
        bad |= b[i][SIZE - 1] != (char)i;
        free(b[i]);
    }
    malloc_trim(0);
    return bad;
}

/* A handler child that returned: the interrupted code is done by now. */
static void child_resumed(void) {
    uint64_t rng = (uint64_t)getpid();
    _exit(churn(&rng, 200) ? 5 : 0);
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};
    nanosleep(&ts, NULL);
}

/* Waits (bounded) until role r moves past `seen`. */
static void wait_tick(int r, unsigned long seen, int max_ms) {
    for (int i = 0; i < max_ms * 10 && fw_ticks(r) == seen && !atomic_load(&fw->done); i++)
        sleep_us(100);
}

/* Signals at random moments, one handler fork in flight at a time, 0-300 us
 * (one in four: 0-3 ms) after the previous one is done. A signal restarts a
 * fork() the kernel is in the middle of, so after four signals in one main
 * loop iteration the sender waits for the iteration to end: the main loop
 * keeps forking and allocating between signals and is caught at every kind
 * of point. */
static pid_t start_sender(void) {
    pid_t s = fork();
    if (s != 0) return s;
    uint64_t rng = 7;
    unsigned long main_seen = fw_ticks(R_ALLOC);
    int signals_this_round = 0;
    while (!atomic_load(&fw->done) && getppid() == worker_pid) {
        if (signals_this_round >= 4) wait_tick(R_ALLOC, main_seen, 1000);
        if (fw_ticks(R_ALLOC) != main_seen) {
            main_seen = fw_ticks(R_ALLOC);
            signals_this_round = 0;
        }
        signals_this_round++;
        unsigned long seen = fw_ticks(R_SIGFORK);
        kill(worker_pid, SIGUSR1);
        wait_tick(R_SIGFORK, seen, 1000);
        uint64_t r = tu_rand(&rng);
        sleep_us((long)(r % 4 == 0 ? (r >> 8) % 3000 : (r >> 8) % 300));
    }
    _exit(0);
}

static int work(double seconds) {
    worker_pid = getpid();
    fw_handle(SIGUSR1, on_usr1);
    pid_t sender = start_sender();
    REQUIRE(sender > 0);
    uint64_t rng = 1;
    /* a loaded machine: the run goes on (up to EXTRA_S) until MIN_SIGFORKS
     * handler forks came, or the race would not have been exercised */
    double end = fw_now() + seconds;
    for (long i = 0;
         fw_now() < end || (fw_ticks(R_SIGFORK) < MIN_SIGFORKS && fw_now() < end + EXTRA_S); i++) {
        if (i % 4 == 0) {
            pid_t p = fork();
            if (p == 0) {
                fw_plant();
                char *b = malloc(5000);
                _exit(b ? 0 : 3);
            }
            if (getpid() != worker_pid) child_resumed();
            int st = p < 0 ? -1 : fw_wait(p);
            if (getpid() == worker_pid && (p < 0 || !status_ok(st))) fail_note("main-loop", p, st);
            if (getpid() != worker_pid) child_resumed();
            fw_tick(R_FORK);
        }
        int bad_churn = churn(&rng, 20), bad_cycle = cache_cycle();
        if (getpid() == worker_pid && (bad_churn || bad_cycle))
            fail_note(bad_churn ? "churn found bad data" : "cache_cycle found bad data", 0, 0);
        if (getpid() != worker_pid) child_resumed();
        fw_tick(R_ALLOC);
    }
    signal(SIGUSR1, SIG_IGN); /* no handler forks from here */
    /* a handler child may have resumed right before the loop ended */
    if (getpid() != worker_pid) child_resumed();
    fw_done();
    int st = fw_wait(sender);
    printf("forks %lu, churn rounds %lu, forks from the handler %lu, failures %ld, sender %s\n",
           fw_ticks(R_FORK), fw_ticks(R_ALLOC), fw_ticks(R_SIGFORK), atomic_load(&fw_failures),
           status_ok(st) ? "ok" : "failed");
    if (fw_ticks(R_SIGFORK) < MIN_SIGFORKS) {
        printf("too few signals arrived (%lu): the race was not exercised\n", fw_ticks(R_SIGFORK));
        return 1;
    }
    return atomic_load(&fw_failures) || !status_ok(st) ? 1 : 0;
}

int main(int argc, char **argv) {
    tu_init("t_fork_signal");
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    R_FORK = fw_role("forks");
    R_ALLOC = fw_role("churn");
    R_SIGFORK = fw_role("sigforks");
    if (fw_run(work, seconds)) tu_fail(__FILE__, __LINE__, "worker passed", NULL);
    return tu_done();
}
