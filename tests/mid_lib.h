/* mid_lib.h — what t_mid_store and t_mid_stash share: blocks of the big
 * classes filled with a pattern, freed by a thread that then sleeps (the
 * idle and trim cases), checked whole and distinct (the reuse and shrink
 * cases), each case in a child of its own.
 *
 * Define before including: NCLS, sizes[NCLS], blocks[NCLS][stride] (block
 * i of class c is filled with c * stride + i + 1), per(c) (blocks of class
 * c a round) and cap(c) (how many of them the thread cache keeps: the rest
 * is where the purger must reach). Include after testutil.h and
 * shm_self.h. */
#ifndef HAKMEM_MID_LIB_H
#define HAKMEM_MID_LIB_H

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

enum { MID_PAGE = 4096, MID_STRIDE = (int)(sizeof blocks[0] / sizeof blocks[0][0]) };

static int mid_go[2], mid_done[2];

static inline double mid_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* KiB of the interiors of the blocks past the caches: the header's OS page
 * stays while a block is listed. */
static inline long mid_reach_kib(void) {
    long kib = 0;
    for (int c = 0; c < NCLS; c++)
        kib += (long)(per(c) - cap(c)) * (long)(sizes[c] - MID_PAGE) / 1024;
    return kib;
}

static inline void mid_fill_all(void) {
    for (int c = 0; c < NCLS; c++)
        for (int i = 0; i < per(c); i++) {
            blocks[c][i] = malloc(sizes[c]);
            REQUIRE(blocks[c][i]);
            memset(blocks[c][i], c * MID_STRIDE + i + 1, sizes[c]);
        }
}

/* class by class, in order; reversed: each class's blocks the other way */
static inline void mid_free_all(bool reversed) {
    for (int c = 0; c < NCLS; c++)
        for (int i = 0; i < per(c); i++) free(blocks[c][reversed ? per(c) - 1 - i : i]);
}

static inline void mid_wait(const int *p) {
    char ch;
    while (read(p[0], &ch, 1) < 0) {
    }
}

static void *volatile mid_large; /* volatile: the malloc/free pairs stay */

/* Slow paths (large blocks), so that the purger runs: it starts at a
 * heap's 64th slow path after something was freed (hak_purger_tick), and
 * the stash's moves are no slow path of that kind. */
static inline void mid_start_purger(void) {
    for (int i = 0; i < 256; i++) {
        mid_large = malloc(4 << 20);
        free(mid_large);
    }
}

struct mid_idle {
    const char *what;  /* whose blocks stayed resident, for the failure */
    const char *where; /* where the reachable blocks are, for the log */
    int num, den;      /* the share of mid_reach_kib() that must go back */
    bool cross;        /* main allocates, the worker frees */
    bool kick;         /* the worker starts the purger first */
};

/* The thread that fills (unless cross) and frees, then sleeps until told
 * to finish. */
static void *mid_worker(void *arg) {
    const struct mid_idle *o = arg;
    if (o->kick) mid_start_purger();
    if (!o->cross) mid_fill_all();
    REQUIRE(write(mid_done[1], "f", 1) == 1); /* filled: main reads RSS */
    mid_wait(mid_go);
    mid_free_all(false);
    REQUIRE(write(mid_done[1], "d", 1) == 1); /* freed: now idle */
    mid_wait(mid_go);
    return NULL;
}

/* idle (trim false) and trim (the background purger off): resident memory
 * must fall by o->num / o->den of the blocks' interiors past the caches,
 * and purged_bytes rise as much, within 3 s of the thread's going idle. */
static inline void mid_idle_case(const struct mid_idle *o, bool trim) {
    struct hak_shm_view v;
    REQUIRE(tu_attach_self(&v) == 0);
    REQUIRE(pipe(mid_go) == 0 && pipe(mid_done) == 0);
    if (o->cross) mid_fill_all();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, mid_worker, (void *)o) == 0);
    mid_wait(mid_done);
    long before = tu_rss_kib();
    uint64_t b0 = hak_shm_proc(&v, HAK_PROC_PURGED_BYTES);
    REQUIRE(write(mid_go[1], "g", 1) == 1);
    mid_wait(mid_done);
    long want = mid_reach_kib() * o->num / o->den, gone = 0;
    if (trim) {
        usleep(100000);
        CHECKF(before - tu_rss_kib() < want, "memory went back without a trim (background off)");
        malloc_trim(0);
    }
    double t0 = mid_now_s();
    for (double end = t0 + 3; mid_now_s() < end && gone < want; usleep(20000))
        gone = before - tu_rss_kib();
    double took = mid_now_s() - t0;
    uint64_t purged = (hak_shm_proc(&v, HAK_PROC_PURGED_BYTES) - b0) >> 10;
    printf("%s%s: %ld KiB returned in %.2f s, %llu KiB purged (want %ld of %ld %s)\n",
           trim ? "trim" : "idle", o->cross ? " (cross)" : "", gone, took,
           (unsigned long long)purged, want, mid_reach_kib(), o->where);
    CHECKF(gone >= want && purged >= (uint64_t)want,
           "%s stayed resident while their thread slept: %ld KiB returned, %llu purged, want %ld",
           o->what, gone, (unsigned long long)purged, want);
    REQUIRE(write(mid_go[1], "e", 1) == 1);
    pthread_join(t, NULL);
    hak_shm_detach(&v);
}

static inline int mid_cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* reuse: 50 rounds of fill, check and free (every other round each class
 * the other way when both_orders): the blocks come back whole and distinct,
 * and from what was freed, not fresh memory (page faults). */
static inline void mid_reuse_case(bool both_orders) {
    struct rusage ru;
    for (int round = 0; round < 50; round++) {
        mid_fill_all();
        void *all[NCLS * MID_STRIDE] = {0};
        size_t end[NCLS * MID_STRIDE];
        int n = 0;
        for (int c = 0; c < NCLS; c++)
            for (int i = 0; i < per(c); i++) {
                const unsigned char *p = blocks[c][i],
                                    want = (unsigned char)(c * MID_STRIDE + i + 1);
                CHECKF(p[0] == want && p[sizes[c] - 1] == want && p[sizes[c] / 2] == want,
                       "block %d/%d overwritten", c, i);
                all[n++] = blocks[c][i];
            }
        qsort(all, (size_t)n, sizeof all[0], mid_cmp_ptr);
        for (int k = 0; k < n; k++) end[k] = (uintptr_t)all[k] + malloc_usable_size(all[k]);
        for (int k = 1; k < n; k++)
            CHECKF((uintptr_t)all[k] >= end[k - 1], "blocks %p and %p overlap", all[k - 1], all[k]);
        mid_free_all(both_orders && (round & 1));
        if (round == 0) getrusage(RUSAGE_SELF, &ru);
    }
    long flt0 = ru.ru_minflt;
    getrusage(RUSAGE_SELF, &ru);
    printf("reuse: %ld page faults in 49 rounds after the first\n", ru.ru_minflt - flt0);
    /* every round writes about 1.5 MiB: fresh memory would fault ~350
     * pages a round */
    CHECKF(ru.ru_minflt - flt0 < 200, "freed blocks were not reused: %ld faults",
           ru.ru_minflt - flt0);
}

/* shrink: a thread allocates n blocks of sz (kept, block i filled with
 * i + 1) and frees the first nfree; fast_cap of their class (cls) goes to
 * cap, written into the segment as hakctl does, and a slow path applies it;
 * then it takes ntaken (taken, filled from 0x70). Every block taken must be
 * intact and distinct, every live one intact and not handed out. The
 * thread exits holding them; main frees them after (remote frees: the
 * heap is in the pool). */
enum { MID_SHRINK_MAX = 128 };
static struct mid_shrink {
    size_t sz;
    int n, nfree, ntaken, cls, cap;
    void *kept[MID_SHRINK_MAX], *taken[MID_SHRINK_MAX];
    struct hak_shm_view v;
} mid_shrink;

static inline void mid_alloc_n(void **p, int n, size_t sz, int first) {
    for (int i = 0; i < n; i++) {
        p[i] = malloc(sz);
        REQUIRE(p[i]);
        memset(p[i], first + i, sz);
    }
}

static void *mid_shrink_worker(void *arg) {
    struct mid_shrink *o = arg;
    void **kept = o->kept, **taken = o->taken;
    mid_alloc_n(kept, o->n, o->sz, 1);
    for (int i = 0; i < o->nfree; i++) free(kept[i]);
    REQUIRE(hak_shm_knob_set(&o->v, HAK_KNOB_FAST_CAP, o->cls, o->cap, HAK_OWNER_MANUAL, tu_name) ==
            0);
    mid_large = malloc(4 << 20); /* a slow path: the new cap applies */
    free(mid_large);
    mid_alloc_n(taken, o->ntaken, o->sz, 0x70);
    for (int i = 0; i < o->ntaken; i++) {
        const unsigned char *b = taken[i];
        CHECKF(b[0] == 0x70 + i && b[o->sz - 1] == 0x70 + i, "block %d overwritten", i);
        for (int j = 0; j < i; j++)
            CHECKF(taken[i] != taken[j], "block %p handed out twice", taken[i]);
    }
    for (int i = o->nfree; i < o->n; i++) {
        const unsigned char *b = kept[i];
        CHECKF(b[0] == i + 1 && b[o->sz - 1] == i + 1, "live block %d overwritten", i);
        for (int j = 0; j < o->ntaken; j++)
            CHECKF(taken[j] != kept[i], "live block %d handed out", i);
    }
    return NULL;
}

static inline void mid_shrink_case(size_t sz, int n, int nfree, int ntaken, int cls, int cap) {
    struct mid_shrink *o = &mid_shrink;
    REQUIRE(n <= MID_SHRINK_MAX && ntaken <= MID_SHRINK_MAX);
    *o = (struct mid_shrink){
        .sz = sz, .n = n, .nfree = nfree, .ntaken = ntaken, .cls = cls, .cap = cap};
    REQUIRE(tu_attach_self(&o->v) == 0);
    hak_shm_detach(&o->v);
    char err[200] = "";
    REQUIRE(hak_shm_attach(getpid(), 1, &o->v, err, sizeof err) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, mid_shrink_worker, o) == 0);
    pthread_join(t, NULL);
    for (int i = 0; i < o->ntaken; i++) free(o->taken[i]);
    for (int i = o->nfree; i < o->n; i++) free(o->kept[i]);
    hak_shm_detach(&o->v);
    printf("shrink: ok\n");
}

/* Runs case mode in a fresh process (argv[0] name, this binary re-executed)
 * with purge_delay_ms=50, HAKMEM_BACKGROUND=background and, unless NULL,
 * HAKMEM_TINY_FAST_CAP=fast_cap. */
static inline void mid_child(const char *name, const char *mode, const char *background,
                             const char *fast_cap) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_PURGE_DELAY_MS", "50", 1);
        if (fast_cap) setenv("HAKMEM_TINY_FAST_CAP", fast_cap, 1);
        setenv("HAKMEM_BACKGROUND", background, 1);
        execl("/proc/self/exe", name, mode, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "case %s failed (status %d)", mode, st);
}

#endif
