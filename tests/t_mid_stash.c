/* t_mid_stash — the stash of big-class blocks (lib/hak_store.c): a full
 * thread cache of 8 KiB-32 KiB blocks (default caps: 32, 16, 8) moves its
 * colder half there whole, without the heap lock, and an empty one takes a
 * batch back. The thread cache is out of every purge's reach; the stash
 * must not be:
 *   1. idle: a thread frees twice its caches' worth of 8, 16 and 32 KiB
 *      blocks and sleeps. Its caches keep one cap each; the rest is in its
 *      stashes (and, for the class whose overflow came first, half a cap in
 *      the store, which that overflow makes). With purge_delay_ms=50 the
 *      purger must take the stashes of the sleeping thread and purge the
 *      blocks' pages within 3 s: resident memory falls by at least 3/4 of
 *      those blocks' interiors (past the header page). Without the
 *      stash's purge only the store's half cap of one class would go.
 *   2. trim: the same with the background purger off: malloc_trim(0) from
 *      another thread must take them.
 *   3. cross: the blocks were allocated by the main thread and freed by
 *      the worker: its stashes hold another heap's blocks, which go back to
 *      their owner (remote frees) when the purger takes the stashes; the
 *      memory must come back as in 1.
 *   4. reuse: 50 rounds of fill and free: blocks that went through the
 *      stash come back whole and distinct, without page faults.
 *   5. shrink: fast_cap of the 8 KiB class goes from 32 to 8 (written into
 *      the segment, as hakctl does) while the stash holds two batches of
 *      16: an empty cache of cap 8 cannot take one. The batches go to
 *      their spans (checked) and the refill takes blocks from there: every
 *      block intact and distinct.
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

enum { NCLS = 3, MAXPER = 64, PAGE = 4096 };
static const size_t sizes[NCLS] = {8 << 10, 16 << 10, 32 << 10};
static void *blocks[NCLS][MAXPER];

/* the default cap (256 KiB of blocks), twice over: a cache and a stash */
static int cap(int c) {
    return (int)((256u << 10) / sizes[c]);
}
static int per(int c) {
    return 2 * cap(c);
}
static int go_pipe[2], done_pipe[2];
static bool cross; /* case 3: main allocates, the worker frees */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* KiB of the interiors of the blocks past the caches (the stashes' and the
 * store's): the header's OS page stays while a block is listed. */
static long reach_interior_kib(void) {
    long kib = 0;
    for (int c = 0; c < NCLS; c++) kib += (long)(per(c) - cap(c)) * (long)(sizes[c] - PAGE) / 1024;
    return kib;
}

static void fill_all(void) {
    for (int c = 0; c < NCLS; c++)
        for (int i = 0; i < per(c); i++) {
            blocks[c][i] = malloc(sizes[c]);
            REQUIRE(blocks[c][i]);
            memset(blocks[c][i], c * MAXPER + i + 1, sizes[c]);
        }
}

/* class by class, the 8 KiB class first: its first overflow makes the
 * heap's stores (a flush to the store), the other classes' go to stashes */
static void free_all(void) {
    for (int c = 0; c < NCLS; c++)
        for (int i = 0; i < per(c); i++) free(blocks[c][i]);
}

static void wait_done(void) {
    char ch;
    while (read(done_pipe[0], &ch, 1) < 0) {
    }
}

static void wait_go(void) {
    char ch;
    while (read(go_pipe[0], &ch, 1) < 0) {
    }
}

/* Slow paths (large blocks), so that the purger runs: it starts at a
 * heap's 64th slow path after something was freed (hak_purger_tick), and
 * the stash's moves are no slow path of that kind. */
static void start_purger(void) {
    for (int i = 0; i < 256; i++) {
        void *volatile p = malloc(4 << 20);
        free(p);
    }
}

/* The thread that fills (unless cross) and frees, then sleeps until told
 * to finish. */
static void *worker(void *arg) {
    (void)arg;
    start_purger();
    if (!cross) fill_all();
    REQUIRE(write(done_pipe[1], "f", 1) == 1); /* filled: main reads RSS */
    wait_go();
    free_all();
    REQUIRE(write(done_pipe[1], "d", 1) == 1); /* freed: now idle */
    wait_go();
    return NULL;
}

/* 1, 2 and 3 */
static void idle_case(bool trim) {
    struct hak_shm_view v;
    REQUIRE(tu_attach_self(&v) == 0);
    REQUIRE(pipe(go_pipe) == 0 && pipe(done_pipe) == 0);
    if (cross) fill_all();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, worker, NULL) == 0);
    wait_done();
    long before = tu_rss_kib();
    uint64_t b0 = hak_shm_proc(&v, HAK_PROC_PURGED_BYTES);
    REQUIRE(write(go_pipe[1], "g", 1) == 1);
    wait_done();
    long want = reach_interior_kib() * 3 / 4, gone = 0;
    if (trim) {
        usleep(100000);
        CHECKF(before - tu_rss_kib() < want, "memory went back without a trim (background off)");
        malloc_trim(0);
    }
    double t0 = now_s();
    for (double end = t0 + 3; now_s() < end && gone < want; usleep(20000))
        gone = before - tu_rss_kib();
    double took = now_s() - t0;
    uint64_t purged = (hak_shm_proc(&v, HAK_PROC_PURGED_BYTES) - b0) >> 10;
    printf("%s%s: %ld KiB returned in %.2f s, %llu KiB purged (want %ld of %ld past the "
           "caches)\n",
           trim ? "trim" : "idle", cross ? " (cross)" : "", gone, took, (unsigned long long)purged,
           want, reach_interior_kib());
    CHECKF(gone >= want && purged >= (uint64_t)want,
           "the stashed blocks stayed resident while their thread slept: %ld KiB returned, "
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

/* 4. the blocks come back through the stash whole and distinct. */
static void reuse_case(void) {
    struct rusage ru;
    for (int round = 0; round < 50; round++) {
        fill_all();
        void *all[NCLS * MAXPER] = {0};
        size_t end[NCLS * MAXPER];
        int n = 0;
        for (int c = 0; c < NCLS; c++)
            for (int i = 0; i < per(c); i++) {
                const unsigned char *p = blocks[c][i], want = (unsigned char)(c * MAXPER + i + 1);
                CHECKF(p[0] == want && p[sizes[c] - 1] == want && p[sizes[c] / 2] == want,
                       "block %d/%d overwritten", c, i);
                all[n++] = blocks[c][i];
            }
        qsort(all, (size_t)n, sizeof all[0], cmp_ptr);
        for (int k = 0; k < n; k++) end[k] = (uintptr_t)all[k] + malloc_usable_size(all[k]);
        for (int k = 1; k < n; k++)
            CHECKF((uintptr_t)all[k] >= end[k - 1], "blocks %p and %p overlap", all[k - 1], all[k]);
        /* half in the order they came, half the other way: the stash's
         * batches then hold blocks of both orders */
        for (int c = 0; c < NCLS; c++)
            for (int i = 0; i < per(c); i++) free(blocks[c][round & 1 ? per(c) - 1 - i : i]);
        if (round == 0) getrusage(RUSAGE_SELF, &ru);
    }
    long flt0 = ru.ru_minflt;
    getrusage(RUSAGE_SELF, &ru);
    printf("reuse: %ld page faults in 49 rounds after the first\n", ru.ru_minflt - flt0);
    /* every round writes 1.5 MiB: fresh memory would fault ~380 pages a round */
    CHECKF(ru.ru_minflt - flt0 < 200, "freed blocks were not reused: %ld faults",
           ru.ru_minflt - flt0);
}

/* 5. batches in the stash bigger than an empty cache may take */
enum { SZ = 8 << 10, N = 80, TAKE = 40 };
static void *kept[N], *taken[TAKE]; /* the worker's blocks, freed by main */
static void *volatile large_one;    /* volatile: the malloc/free pair stays */

static void *shrink_worker(void *arg) {
    struct hak_shm_view *v = arg;
    for (int i = 0; i < N; i++) {
        kept[i] = malloc(SZ);
        REQUIRE(kept[i]);
        memset(kept[i], i + 1, SZ);
    }
    /* cap 32: the first overflow flushes 16 to the store (and makes it),
     * the next two move 16 each to the stash */
    for (int i = 0; i < 65; i++) free(kept[i]);
    /* 8 KiB is class 31 (shm/hakmem_shm.h's class table) */
    REQUIRE(hak_shm_knob_set(v, HAK_KNOB_FAST_CAP, 31, 8, HAK_OWNER_MANUAL, "t_mid_stash") == 0);
    large_one = malloc(4 << 20); /* a slow path: the new cap applies */
    free(large_one);
    for (int i = 0; i < TAKE; i++) {
        taken[i] = malloc(SZ);
        REQUIRE(taken[i]);
        memset(taken[i], 0x70 + i, SZ);
    }
    for (int i = 0; i < TAKE; i++) {
        const unsigned char *b = taken[i];
        CHECKF(b[0] == 0x70 + i && b[SZ - 1] == 0x70 + i, "block %d overwritten", i);
        for (int j = 0; j < i; j++)
            CHECKF(taken[i] != taken[j], "block %p handed out twice", taken[i]);
    }
    for (int i = 65; i < N; i++) {
        const unsigned char *b = kept[i];
        CHECKF(b[0] == i + 1 && b[SZ - 1] == i + 1, "live block %d overwritten", i);
        for (int j = 0; j < TAKE; j++) CHECKF(taken[j] != kept[i], "live block %d handed out", i);
    }
    return NULL; /* exits holding them: its exit flush empties its stash */
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
    for (int i = 0; i < TAKE; i++) free(taken[i]); /* remote frees: the heap is in the pool */
    for (int i = 65; i < N; i++) free(kept[i]);
    hak_shm_detach(&v);
    printf("shrink: ok\n");
}

static int child(const char *mode, const char *background) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_PURGE_DELAY_MS", "50", 1);
        setenv("HAKMEM_BACKGROUND", background, 1);
        execl("/proc/self/exe", "t_mid_stash", mode, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "case %s failed (status %d)", mode, st);
    return 0;
}

int main(int argc, char **argv) {
    tu_init("t_mid_stash");
    if (!hakmem_loaded()) return TU_SKIP;
    if (argc > 1) {
        cross = strcmp(argv[1], "cross") == 0;
        if (strcmp(argv[1], "idle") == 0 || cross) idle_case(false);
        if (strcmp(argv[1], "trim") == 0) idle_case(true);
        if (strcmp(argv[1], "reuse") == 0) reuse_case();
        if (strcmp(argv[1], "shrink") == 0) shrink_case();
        return tu_done();
    }
    child("idle", "1");
    child("trim", "0");
    child("cross", "1");
    child("reuse", "1");
    child("shrink", "1");
    return tu_done();
}
