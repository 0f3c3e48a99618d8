/* t_fork_stdio — fork() from threads against stdio's locks (glibc bug 19431).
 *
 * Three kinds of threads, for a few seconds:
 *  - forkers: fork(); the child mallocs/frees a few sizes (small, mid,
 *    large) and _exit(0)s; the parent requires exit status 0;
 *  - readers: getline() over a file of short and very long lines (up to
 *    1.5 MiB, past the largest size class), freeing the buffer every line,
 *    so malloc/realloc run while the FILE lock is held;
 *  - a flusher: fflush(NULL) in a loop (stdio's list lock, then each FILE's
 *    lock).
 * glibc's fork() runs the atfork prepare handlers before it takes the stdio
 * list lock. An allocator that takes its own locks in prepare deadlocks:
 * forker holds allocator lock, waits for the list lock; the flusher holds the
 * list lock, waits for a FILE lock; a reader holds that FILE lock and waits in
 * realloc for the allocator lock. Hang detection: tests/fork_watch.h (every
 * role must keep making progress; the time to hang is printed).
 * Usage: t_fork_stdio [seconds]   (default 3)
 */
#include "fork_watch.h"
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>

#define NFORKERS 2
#define NREADERS 3

static int R_FORK, R_LINE, R_FLUSH;
static char path[256];

/* Lines: mostly short, every 16th 100-300 KB, every 64th 1.2-1.5 MiB. */
static int write_file(void) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    uint64_t rng = 42;
    for (int i = 0; i < 512; i++) {
        size_t n = 1 + tu_rand(&rng) % 200;
        if (i % 16 == 5) n = 100000 + tu_rand(&rng) % 200000;
        if (i % 64 == 9) n = 1200000 + tu_rand(&rng) % 300000;
        for (size_t k = 0; k < n; k++) putc('a' + (int)(k % 26), f);
        putc('\n', f);
    }
    return fclose(f);
}

static void pause_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void *reader(void *arg) {
    (void)arg;
    FILE *f = fopen(path, "r");
    if (!f) {
        atomic_fetch_add(&fw_failures, 1);
        return NULL;
    }
    while (fw_running()) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) {
            rewind(f);
        } else if (line[0] != 'a' || line[n - 1] != '\n') {
            atomic_fetch_add(&fw_failures, 1);
        }
        free(line);
        fw_tick(R_LINE);
        /* glibc's FILE and list locks are not fair: a pause now and then
         * lets fork() in (a stall of seconds would look like a hang) */
        if ((fw_ticks(R_LINE) & 7) == 0) pause_us(50);
    }
    fclose(f);
    return NULL;
}

static void *flusher(void *arg) {
    (void)arg;
    while (fw_running()) {
        fflush(NULL);
        fw_tick(R_FLUSH);
        pause_us(100);
    }
    return NULL;
}

static void child(void) {
    static const size_t sizes[] = {24, 1000, 70000, 3 << 20};
    fw_child_alloc_exit(sizes, 4, 1, 0x5a);
}

static void *forker(void *arg) {
    (void)arg;
    while (fw_running()) {
        double t0 = fw_now();
        pid_t p = fork();
        if (p == 0) child();
        double t1 = fw_now();
        if (p < 0) {
            atomic_fetch_add(&fw_failures, 1);
            continue;
        }
        int st = fw_wait(p);
        double t2 = fw_now();
        /* not a failure; shown to tell lock starvation (fork() waiting for
         * the unfair stdio list lock) from a hang */
        if (t2 - t0 > 0.5) fprintf(stderr, "slow fork %.3f s, wait %.3f s\n", t1 - t0, t2 - t1);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d: status %#x\n", (int)p, st);
            atomic_fetch_add(&fw_failures, 1);
        }
        fw_tick(R_FORK);
    }
    return NULL;
}

static int work(double seconds) {
    if (write_file() != 0) {
        perror(path);
        return 2;
    }
    pthread_t t[NFORKERS + NREADERS + 1];
    int n = 0;
    for (int i = 0; i < NREADERS; i++) REQUIRE(pthread_create(&t[n++], NULL, reader, NULL) == 0);
    REQUIRE(pthread_create(&t[n++], NULL, flusher, NULL) == 0);
    for (int i = 0; i < NFORKERS; i++) REQUIRE(pthread_create(&t[n++], NULL, forker, NULL) == 0);
    fw_run_for(seconds);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    unlink(path);
    printf("forks %lu, lines %lu, flushes %lu, failures %ld\n", fw_ticks(R_FORK), fw_ticks(R_LINE),
           fw_ticks(R_FLUSH), atomic_load(&fw_failures));
    return atomic_load(&fw_failures) || tu_failures ? 1 : 0;
}

int main(int argc, char **argv) {
    tu_init("t_fork_stdio");
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    snprintf(path, sizeof path, "%s/t_fork_stdio.%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    R_FORK = fw_role("forks");
    R_LINE = fw_role("lines");
    R_FLUSH = fw_role("flushes");
    int rc = fw_run(work, seconds);
    unlink(path);
    if (rc) tu_fail(__FILE__, __LINE__, "worker passed", NULL);
    return tu_done();
}
