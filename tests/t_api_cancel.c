/* t_api_cancel — the allocator never acts on a pending pthread_cancel.
 *
 * malloc, free, realloc and fork are no cancellation points (POSIX), and
 * glibc's never act on one (its malloc uses non-cancellable I/O inside,
 * tst-malloc-stats-cancellation). A thread cancels itself (the request
 * stays pending until a cancellation point) and then:
 *  - waits, without a cancellation point, past the segment's publishing
 *    delay (50 ms), then allocates blocks of every size range, frees and
 *    reallocs them: every call must return; only its pthread_testcancel()
 *    afterwards may end it. With hakmem the process's segment must then be
 *    published (/dev/shm/hakmem.<pid>, unless HAKMEM_SHM=0): the
 *    publication opens and reads /proc files, which are cancellation
 *    points; a thread unwound out of it left it half-done for good;
 *  - forks (in a process of its own, its segment published): the child
 *    must return from fork() and exit 7. hakmem's fork child handler closed its copy of the
 *    parent's segment (close: a cancellation point), so the child's only
 *    thread ended inside fork(), exit status 0.
 * Passes on glibc. */
#include "testutil.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double start_s;
static volatile int calls_done;

static void *allocating(void *arg) {
    (void)arg;
    pthread_cancel(pthread_self()); /* pending: acted on at a cancellation point */
    while (now_s() - start_s < 0.08) {
    } /* clock_gettime is none */
    static const size_t sizes[] = {16, 100, 1000, 5000, 40000, 300000, 3u << 20};
    for (int r = 0; r < 200; r++) {
        for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            char *p = malloc(sizes[i]);
            if (!p) return NULL;
            p[0] = 1;
            char *q = realloc(p, sizes[i] * 2);
            if (!q) return NULL;
            free(q);
        }
    }
    calls_done = 1;
    pthread_testcancel();
    return NULL; /* not reached: the cancel was pending */
}

static void *forking(void *arg) {
    (void)arg;
    pthread_cancel(pthread_self());
    pid_t p = fork();
    if (p == 0) _exit(7);
    calls_done = 1;
    return (void *)(intptr_t)p; /* main waits for it (waitpid is a cancellation point) */
}

static bool shm_wanted(void) {
    const char *e = getenv("HAKMEM_SHM");
    return !(e && strcmp(e, "0") == 0);
}

static bool segment_link_exists(void) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/hakmem.%d", (int)getpid());
    return lstat(path, &st) == 0;
}

/* In a process of its own (the main one's publication is the cancelled
 * one): the segment published first, then a thread with a pending cancel
 * forks. */
static int fork_phase(void) {
    if (hakmem_loaded() && shm_wanted())
        for (int i = 0; i < 2000 && !segment_link_exists(); i++) {
            free(malloc(5u << 20));
            struct timespec nap = {0, 1000000};
            nanosleep(&nap, NULL);
        }
    calls_done = 0;
    pthread_t t;
    void *res = NULL;
    REQUIRE(pthread_create(&t, NULL, forking, NULL) == 0);
    pthread_join(t, &res);
    CHECKF(calls_done, "a pending cancel ended the parent's thread inside fork()");
    pid_t child = (pid_t)(intptr_t)res;
    if (res != PTHREAD_CANCELED && child > 0) {
        int st = tu_wait_child(child, 20);
        CHECKF(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
               "fork child: status %#x, want exit 7 (fork() did not return in the child)", st);
    }
    return tu_failures ? 1 : 0;
}

int main(void) {
    tu_init("t_api_cancel");
    start_s = now_s();
    fflush(stdout);
    pid_t sub = fork();
    REQUIRE(sub >= 0);
    if (sub == 0) _exit(fork_phase());

    pthread_t t;
    void *res = NULL;
    REQUIRE(pthread_create(&t, NULL, allocating, NULL) == 0);
    pthread_join(t, &res);
    CHECKF(calls_done, "a pending cancel ended the thread inside malloc, free or realloc");
    CHECK(res == PTHREAD_CANCELED);
    if (hakmem_loaded() && shm_wanted()) {
        for (int i = 0; i < 100 && !segment_link_exists(); i++) free(malloc(5u << 20));
        CHECKF(segment_link_exists(), "no segment published after the cancelled publication");
    }
    int st = tu_wait_child(sub, 60);
    CHECKF(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the fork phase: status %#x", st);
    return tu_done();
}
