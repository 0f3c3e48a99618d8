/* t_mid_store — the heap's store of big-class blocks (lib/hak_store.c):
 * what a full thread cache of a class >= 5 KiB flushes waits there for the
 * next refill, under the heap lock, so that memory a sleeping thread
 * leaves there still goes back:
 *   1. idle: a thread fills and frees blocks of 16-32 KiB (thread cache cap
 *      2: every overflow moves a block to the store, which takes them all)
 *      and sleeps; with
 *      purge_delay_ms=50 the purger must give the store's blocks back to
 *      their spans and purge their pages within 3 s (resident memory falls
 *      by half their interiors, `purged_bytes` rises as much). Without the
 *      purger's reach, they would stay resident while the thread sleeps.
 *   2. trim: the same with the background purger off: malloc_trim(0) from
 *      another thread must return them.
 *   3. reuse: blocks that went through the store come back whole and
 *      distinct (every byte written and checked, no two overlapping), and
 *      the refill takes them before fresh memory (no page faults).
 *   4. shrink: fast_cap of the 32 KiB class goes from 8 to 2 (written into
 *      the segment, as hakctl does) while 8 blocks are cached: the 6 flushed
 *      go to the store as one batch, bigger than the refill of a cap of 2
 *      may take. The refill must take part of it (a whole one would leave 6
 *      blocks in a cache that counts 2: its room runs past its cap, and the
 *      thread's exit flush walks off the list). Every block is checked and
 *      distinct; the thread exits holding them (main frees them after).
 * Each case runs in a fresh process (this binary re-executed). */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { NCLS = 5, PER = 18, PAGE = 4096 };
static const size_t sizes[NCLS] = {16 << 10, 20 << 10, 24 << 10, 28 << 10, 32 << 10};
static void *blocks[NCLS][PER];

/* Blocks of class c: what its store holds (256 KiB of them, lib/hak_store.c)
 * and the thread cache's 2, so that every freed block is in one or the
 * other, none on its span: only the store's purge can return them. */
static int per(int c) {
    return (int)((256u << 10) / sizes[c]) + 2;
}
static int go_pipe[2], done_pipe[2];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* KiB of the stored blocks' interiors (past the header's OS page, which
 * stays while they are listed). */
static long store_interior_kib(void) {
    long kib = 0;
    for (int c = 0; c < NCLS; c++) kib += (long)(per(c) - 2) * (long)(sizes[c] - PAGE) / 1024;
    return kib;
}

static void fill_all(void) {
    for (int c = 0; c < NCLS; c++)
        for (int i = 0; i < per(c); i++) {
            blocks[c][i] = malloc(sizes[c]);
            REQUIRE(blocks[c][i]);
            memset(blocks[c][i], c * PER + i + 1, sizes[c]);
        }
}

static void free_all(void) {
    for (int c = 0; c < NCLS; c++)
        for (int i = 0; i < per(c); i++) free(blocks[c][i]);
}

/* The thread that fills and frees, then sleeps until told to finish. */
static void *worker(void *arg) {
    (void)arg;
    fill_all();
    char ch = 'f';
    REQUIRE(write(done_pipe[1], &ch, 1) == 1); /* filled: main reads RSS */
    while (read(go_pipe[0], &ch, 1) < 0) {
    }
    free_all();
    REQUIRE(write(done_pipe[1], &ch, 1) == 1); /* freed: now idle */
    while (read(go_pipe[0], &ch, 1) < 0) {
    }
    return NULL;
}

static void wait_done(void) {
    char ch;
    while (read(done_pipe[0], &ch, 1) < 0) {
    }
}

/* 1 and 2: returns the KiB resident memory fell by, waiting up to 3 s. */
static void idle_case(bool trim) {
    struct hak_shm_view v;
    REQUIRE(tu_attach_self(&v) == 0);
    REQUIRE(pipe(go_pipe) == 0 && pipe(done_pipe) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, worker, NULL) == 0);
    wait_done();
    long before = tu_rss_kib();
    uint64_t b0 = hak_shm_proc(&v, HAK_PROC_PURGED_BYTES);
    REQUIRE(write(go_pipe[1], "g", 1) == 1);
    wait_done();
    long want = store_interior_kib() / 2, gone = 0;
    if (trim) {
        usleep(100000);
        CHECKF(before - tu_rss_kib() < want, "memory went back without a trim (background off)");
        malloc_trim(0);
    }
    for (double end = now_s() + 3; now_s() < end && gone < want; usleep(20000))
        gone = before - tu_rss_kib();
    uint64_t purged = (hak_shm_proc(&v, HAK_PROC_PURGED_BYTES) - b0) >> 10;
    printf("%s: %ld KiB returned, %llu KiB purged (want %ld of the store's %ld)\n",
           trim ? "trim" : "idle", gone, (unsigned long long)purged, want, store_interior_kib());
    CHECKF(gone >= want && purged >= (uint64_t)want,
           "the store's blocks stayed resident while their thread slept: %ld KiB returned, "
           "%llu purged, want %ld",
           gone, (unsigned long long)purged, want);
    REQUIRE(write(go_pipe[1], "e", 1) == 1);
    pthread_join(t, NULL);
    hak_shm_detach(&v);
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* 3. the blocks come back through the store whole and distinct. */
static void reuse_case(void) {
    struct rusage ru;
    for (int round = 0; round < 50; round++) {
        fill_all();
        for (int c = 0; c < NCLS; c++)
            for (int i = 0; i < per(c); i++) {
                const unsigned char *p = blocks[c][i], want = (unsigned char)(c * PER + i + 1);
                CHECKF(p[0] == want && p[sizes[c] - 1] == want && p[sizes[c] / 2] == want,
                       "block %d/%d overwritten", c, i);
            }
        void *all[NCLS * PER] = {0};
        size_t end[NCLS * PER];
        int n = 0;
        for (int c = 0; c < NCLS; c++)
            for (int i = 0; i < per(c); i++) all[n++] = blocks[c][i];
        qsort(all, (size_t)n, sizeof all[0], cmp_ptr);
        for (int k = 0; k < n; k++) end[k] = (uintptr_t)all[k] + malloc_usable_size(all[k]);
        for (int k = 1; k < n; k++)
            CHECKF((uintptr_t)all[k] >= end[k - 1], "blocks %p and %p overlap", all[k - 1], all[k]);
        free_all();
        if (round == 0) getrusage(RUSAGE_SELF, &ru);
    }
    long flt0 = ru.ru_minflt;
    getrusage(RUSAGE_SELF, &ru);
    printf("reuse: %ld page faults in 49 rounds after the first\n", ru.ru_minflt - flt0);
    /* every round writes 1.3 MiB: fresh memory would fault ~330 pages a round */
    CHECKF(ru.ru_minflt - flt0 < 200, "freed blocks were not reused: %ld faults",
           ru.ru_minflt - flt0);
}

/* 4. a batch in the store bigger than the refill may take */
enum { SZ = 32 << 10, N = 16 };
static void *kept[N], *taken[N]; /* the worker's blocks, freed by main */
static void *volatile large_one; /* volatile: the malloc/free pair stays */

static void *shrink_worker(void *arg) {
    struct hak_shm_view *v = arg;
    for (int i = 0; i < N; i++) {
        kept[i] = malloc(SZ);
        REQUIRE(kept[i]);
        memset(kept[i], i + 1, SZ);
    }
    for (int i = 0; i < 8; i++) free(kept[i]); /* the cache: full (cap 8) */
    /* 32 KiB is class 39 (shm/hakmem_shm.h's class table) */
    REQUIRE(hak_shm_knob_set(v, HAK_KNOB_FAST_CAP, 39, 2, HAK_OWNER_MANUAL, "t_mid_store") == 0);
    large_one = malloc(4 << 20); /* a slow path: the new cap applies, 6 blocks flushed */
    free(large_one);
    for (int i = 0; i < 8; i++) {
        taken[i] = malloc(SZ);
        REQUIRE(taken[i]);
        memset(taken[i], 0x70 + i, SZ);
    }
    for (int i = 0; i < 8; i++) {
        const unsigned char *b = taken[i];
        CHECKF(b[0] == 0x70 + i && b[SZ - 1] == 0x70 + i, "block %d overwritten", i);
        for (int j = 0; j < i; j++)
            CHECKF(taken[i] != taken[j], "block %p handed out twice", taken[i]);
    }
    for (int i = 8; i < N; i++) {
        const unsigned char *b = kept[i];
        CHECKF(b[0] == i + 1 && b[SZ - 1] == i + 1, "live block %d overwritten", i);
    }
    /* exit with the 8 taken out: a cache that took a whole batch of 6 for a
     * cap of 2 has room 6 here, and the exit flush walks cap - room blocks */
    return NULL;
}

static void shrink_case(void) {
    struct hak_shm_view v;
    REQUIRE(tu_attach_self(&v) == 0);
    hak_shm_detach(&v);
    char err[200] = "";
    REQUIRE(hak_shm_attach(getpid(), 1, &v, err, sizeof err) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, shrink_worker, &v) == 0);
    pthread_join(t, NULL);
    for (int i = 0; i < 8; i++) free(taken[i]); /* remote frees now: the heap is in the pool */
    for (int i = 8; i < N; i++) free(kept[i]);
    hak_shm_detach(&v);
    printf("shrink: ok\n");
}

static int child(const char *mode, const char *background) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_PURGE_DELAY_MS", "50", 1);
        if (strcmp(mode, "shrink") != 0) setenv("HAKMEM_TINY_FAST_CAP", "2", 1);
        setenv("HAKMEM_BACKGROUND", background, 1);
        execl("/proc/self/exe", "t_mid_store", mode, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "case %s failed (status %d)", mode, st);
    return 0;
}

int main(int argc, char **argv) {
    tu_init("t_mid_store");
    if (!hakmem_loaded()) return TU_SKIP;
    if (argc > 1) {
        if (strcmp(argv[1], "idle") == 0) idle_case(false);
        if (strcmp(argv[1], "trim") == 0) idle_case(true);
        if (strcmp(argv[1], "reuse") == 0) reuse_case();
        if (strcmp(argv[1], "shrink") == 0) shrink_case();
        return tu_done();
    }
    child("idle", "1");
    child("trim", "0");
    child("reuse", "1");
    child("shrink", "1");
    return tu_done();
}
