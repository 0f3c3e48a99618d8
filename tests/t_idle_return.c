/* t_idle_return — memory comes back without a call, and big buffers are
 * reused rather than mapped again (issue 10, items 1 and 8).
 *
 * 1. Freed memory goes back to the OS while the program sleeps: 96 MiB of
 *    16 KiB blocks and 48 MiB of 6 MiB blocks are written, and all but every
 *    8th small block are freed (so every span keeps live blocks: only the
 *    pages inside free blocks can go back, 63 MiB of them). Then the thread
 *    only sleeps (no malloc, no stdio) and polls VmRSS from /proc/self/statm:
 *    within 3 s at least 96 of the 111 MiB must be gone.
 *    The same in a child started with HAKMEM_BACKGROUND=0 must NOT happen
 *    (nothing is returned without the background purger), which shows the
 *    check measures the purger and can fail.
 * 2. 5-25 MiB buffers allocated, written page by page and freed 150 times:
 *    minor page faults must stay under a quarter of the pages written (a
 *    fresh mapping per buffer faults every page).                        */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long rss_mib(void) {
    long kib = tu_statm_kib(1);
    return kib < 0 ? -1 : kib / 1024;
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* Fills 144 MiB and frees most of it; returns the MiB given back within 3 s
 * of idling. */
static long idle_return(void) {
    enum { SMALL = 96 * 64, LARGE = 8 };
    static char *s[SMALL], *l[LARGE];
    for (int i = 0; i < SMALL; i++) memset(s[i] = malloc(16384), 1, 16384);
    for (int i = 0; i < LARGE; i++) memset(l[i] = malloc(6 << 20), 2, 6 << 20);
    for (int i = 0; i < SMALL; i++)
        if (i % 8) free(s[i]);
    for (int i = 0; i < LARGE; i++) free(l[i]);
    long full = rss_mib(), now = full;
    for (int t = 0; t < 60 && full - now < 96; t++) {
        nap_ms(50);
        now = rss_mib();
    }
    for (int i = 0; i < SMALL; i += 8) free(s[i]);
    return full - now;
}

static void large_reuse(void) {
    struct rusage r0, r1;
    uint64_t x = 1, pages = 0;
    getrusage(RUSAGE_SELF, &r0);
    for (int i = 0; i < 150; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = (5ul << 20) + (size_t)((x >> 33) % (20ul << 20));
        char *p = malloc(n);
        REQUIRE(p);
        for (size_t o = 0; o < n; o += 4096) p[o] = (char)o;
        pages += n / 4096;
        free(p);
    }
    getrusage(RUSAGE_SELF, &r1);
    long faults = r1.ru_minflt - r0.ru_minflt;
    CHECKF(faults < (long)(pages / 4), "%ld page faults for %llu pages written", faults,
           (unsigned long long)pages);
}

/* A second thread that has allocated, then waits: the purger only runs in
 * programs that already have two threads (a single-threaded program must
 * stay single-threaded: see lib/hak_purger.c). */
static void *bystander(void *arg) {
    free(malloc(32));
    int fd = *(int *)arg;
    char c;
    while (read(fd, &c, 1) < 0 && errno == EINTR) {
    }
    return NULL;
}

static void start_bystander(void) {
    static int fds[2];
    pthread_t t;
    if (pipe(fds) == 0 && pthread_create(&t, NULL, bystander, &fds[0]) == 0) pthread_detach(t);
}

/* Threads of this process (entries of /proc/self/task), without malloc. */
static int thread_count(void) {
    int fd = open("/proc/self/status", O_RDONLY);
    char buf[4096];
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strstr(buf, "\nThreads:");
    return p ? atoi(p + 9) : -1;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--child")) {
        start_bystander();
        printf("%ld\n", idle_return());
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--single")) {
        idle_return(); /* frees, then sleeps: a purger would start now */
        printf("%d\n", thread_count());
        return 0;
    }
    tu_init("t_idle_return");
    if (!hakmem_loaded()) return TU_SKIP; /* hakmem's policy, not glibc's */
    start_bystander();
    large_reuse();
    long back = idle_return();
    CHECKF(back >= 96, "only %ld MiB of 111 came back within 3 s of idling", back);
    /* without the purger: nothing comes back while idle */
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        setenv("HAKMEM_BACKGROUND", "0", 1);
        execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[64] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    int st;
    waitpid(pid, &st, 0);
    CHECKF(n > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %d)", st);
    long child_back = n > 0 ? strtol(buf, NULL, 10) : -1;
    CHECKF(child_back >= 0 && child_back < 48,
           "HAKMEM_BACKGROUND=0 still gave back %ld MiB while idle", child_back);
    /* a single-threaded program never gets a purger thread */
    REQUIRE(pipe(fds) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/proc/self/exe", argv[0], "--single", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    memset(buf, 0, sizeof buf);
    n = read(fds[0], buf, sizeof buf - 1);
    waitpid(pid, &st, 0);
    CHECKF(n > 0 && strtol(buf, NULL, 10) == 1,
           "a single-threaded program has %s threads after idling (a purger started)", buf);
    return tu_done();
}
