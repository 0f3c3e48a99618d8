/* t_purge_fresh — the purge returns what has been free for the purge delay,
 * not what was freed a moment ago (issue 10, items 2 and 3; xbatch's
 * madvise churn):
 *   1. churn: 64 blocks of 40 KiB (a big class: they go back to their spans,
 *      past the thread cache) are allocated, written page by page and freed,
 *      then the thread naps 2 ms, for 1.5 s (six purge delays). The blocks
 *      sit free on their spans most of the time, but never for long: the
 *      `purges` counter (madvise calls of the span and segment purges) must
 *      stay near zero. Before per-block free times, a span's oldest free
 *      time decided for all its blocks, and every background pass purged
 *      them again (60+ calls here).
 *   2. idle memory still goes back: every other block of 64 is freed and
 *      the thread only sleeps; within 3 s the purger must return their
 *      pages (`purges` rises, resident memory falls by half of them).
 *   3. refaults are counted: taking those purged blocks again raises
 *      `refault_bytes` by at least half their size.
 *   4. a delay sized by refaults: memory freed and taken again every three
 *      delays is purged and faulted back at first; then the delay in effect
 *      grows (purge_delay_now_ms) and the purges stop (this binary
 *      re-executed with purge_delay_ms=50).
 * Counters are read from the process's own segment through the shm library,
 * as hakctl and the daemon read them. A second thread with a heap makes
 * this the multi-threaded purger's case.                                  */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N = 64, SIZE = 40 << 10, PAGE = 4096 };

static void *volatile blocks[N];
static void *volatile sink;
static int stop_pipe[2];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(int i) {
    blocks[i] = malloc(SIZE);
    REQUIRE(blocks[i]);
    for (size_t j = 0; j < SIZE; j += PAGE) ((volatile char *)blocks[i])[j] = (char)i;
}

/* A second thread with a heap, idle until the end. */
static void *idler(void *arg) {
    (void)arg;
    sink = malloc(64);
    free(sink);
    char c;
    while (read(stop_pipe[0], &c, 1) < 0) {
    }
    return NULL;
}

/* 4. (re-executed with purge_delay_ms=50) memory freed and taken again
 * every 150 ms, three delays: the first rounds purge it and fault it back;
 * then the delay in effect grows (purge_delay_now_ms) and the purges stop. */
static void periodic(struct hak_shm_view *v) {
    enum { ROUNDS = 16 };
    uint64_t calls[ROUNDS], most = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t p0 = hak_shm_proc(v, HAK_PROC_PURGES);
        uint64_t b0 = hak_shm_proc(v, HAK_PROC_PURGED_BYTES),
                 f0 = hak_shm_proc(v, HAK_PROC_REFAULT_BYTES);
        for (int i = 0; i < N; i++) fill(i);
        for (int i = 0; i < N; i++) free(blocks[i]);
        usleep(150000);
        calls[r] = hak_shm_proc(v, HAK_PROC_PURGES) - p0;
        uint64_t d = hak_shm_proc(v, HAK_PROC_PURGE_DELAY_NOW);
        if (d > most) most = d;
        /* the purger's evidence: what it purged and what came back */
        uint64_t b = hak_shm_proc(v, HAK_PROC_PURGED_BYTES) - b0,
                 f = hak_shm_proc(v, HAK_PROC_REFAULT_BYTES) - f0;
        printf("round %d: %llu purge calls (%llu KiB), %llu KiB refaulted, delay now %llu ms\n", r,
               (unsigned long long)calls[r], (unsigned long long)b >> 10,
               (unsigned long long)f >> 10, (unsigned long long)d);
    }
    uint64_t first = calls[0] + calls[1] + calls[2] + calls[3],
             last = calls[ROUNDS - 4] + calls[ROUNDS - 3] + calls[ROUNDS - 2] + calls[ROUNDS - 1];
    CHECKF(first > 0, "nothing purged in the first rounds: the case does not test anything");
    CHECKF(most >= 100, "the delay in effect never grew: %llu ms", (unsigned long long)most);
    CHECKF(last * 4 <= first, "purges went on while the memory kept coming back: %llu then %llu",
           (unsigned long long)first, (unsigned long long)last);
}

int main(int argc, char **argv) {
    tu_init("t_purge_fresh");
    if (!hakmem_loaded()) return TU_SKIP;
    REQUIRE(pipe(stop_pipe) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, idler, NULL) == 0);
    struct hak_shm_view v;
    REQUIRE(tu_attach_self(&v) == 0);
    if (argc > 1 && strcmp(argv[1], "periodic") == 0) {
        periodic(&v);
        hak_shm_detach(&v);
        return tu_done();
    }

    /* 1. churn: freed and taken again within milliseconds */
    uint64_t p0 = hak_shm_proc(&v, HAK_PROC_PURGES);
    long rounds = 0;
    for (double end = now_s() + 1.5; now_s() < end; rounds++) {
        for (int i = 0; i < N; i++) fill(i);
        for (int i = 0; i < N; i++) free(blocks[i]);
        usleep(2000);
    }
    uint64_t churn = hak_shm_proc(&v, HAK_PROC_PURGES) - p0;
    printf("churn: %ld rounds, %llu purge calls\n", rounds, (unsigned long long)churn);
    CHECKF(churn <= 4, "blocks freed a moment ago were purged: %llu madvise calls",
           (unsigned long long)churn);

    /* 2. idle: every other block stays free, the thread sleeps */
    for (int i = 0; i < N; i++) fill(i);
    long before = tu_rss_kib();
    for (int i = 0; i < N; i += 2) free(blocks[i]);
    uint64_t p1 = hak_shm_proc(&v, HAK_PROC_PURGES);
    long want = (long)(N / 2) * (SIZE - PAGE) / 1024 / 2, gone = 0; /* KiB: half the interiors */
    for (double end = now_s() + 3; now_s() < end && gone < want; usleep(20000))
        gone = before - tu_rss_kib();
    uint64_t idle = hak_shm_proc(&v, HAK_PROC_PURGES) - p1;
    printf("idle: %llu purge calls, %ld KiB returned (want %ld)\n", (unsigned long long)idle, gone,
           want);
    CHECKF(idle > 0 && gone >= want, "idle blocks not returned: %llu calls, %ld of %ld KiB",
           (unsigned long long)idle, gone, want);

    /* 3. refaults: the purged blocks are taken again */
    uint64_t r0 = hak_shm_proc(&v, HAK_PROC_REFAULT_BYTES);
    for (int i = 0; i < N; i += 2) fill(i);
    uint64_t refault = hak_shm_proc(&v, HAK_PROC_REFAULT_BYTES) - r0;
    printf("refault_bytes +%llu\n", (unsigned long long)refault);
    CHECKF(refault >= (uint64_t)(N / 2) * SIZE / 2, "purged blocks taken again not counted: %llu",
           (unsigned long long)refault);
    for (int i = 0; i < N; i++) free(blocks[i]);

    hak_shm_detach(&v);
    REQUIRE(write(stop_pipe[1], "x", 1) == 1);
    pthread_join(t, NULL);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_PURGE_DELAY_MS", "50", 1);
        execl("/proc/self/exe", "t_purge_fresh", "periodic", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "periodic reuse case failed (status %d)", st);
    return tu_done();
}
