/* t_heap_park — an exiting thread's cache stays with its heap for the next
 * thread, and still goes back when nobody takes it (lib/hak_heap.c,
 * "Parking"). Counters are read from the process's own segment.
 *
 * 1. A thread mallocs K blocks of 3000 B (a class nothing else here uses),
 *    writes and frees them, and exits. Its exit flushes nothing of the class
 *    (flush_blocks unchanged), every block counts as freed (allocs - frees
 *    back where it was) and the span stays carved (span_blocks > 0: the
 *    parked blocks are cached bytes). The next thread's K mallocs of that
 *    size return exactly those blocks, most recently freed first, without a
 *    refill (refills unchanged), and their patterns check out. Without
 *    parking the exit flushes K blocks and the next thread refills.
 * 2. Another round, then malloc_trim(0): the parked blocks go back to their
 *    span (flush_blocks + K) and the span is given back (span_blocks 0).
 * 3. Another round, then the main thread only sleeps: within 3 s the parked
 *    blocks are flushed and the span given back with no call (the purger,
 *    started by some churn first; it must be running).
 * 4. A parked block freed again by another thread is a double free: the
 *    process (a child) aborts. */
#include "shm_self.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

enum { K = 6, SIZE = 3000 };

static void *blocks[K];

/* Mallocs K blocks (recorded), writes them, frees them in order: the last
 * freed is the head of the thread cache. */
static void *park_round(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < K; i++) {
        REQUIRE((blocks[i] = malloc(SIZE)) != NULL);
        pat_fill(blocks[i], SIZE, seed);
    }
    for (int i = 0; i < K; i++) {
        CHECK(pat_check(blocks[i], SIZE, seed) == (size_t)-1);
        free(blocks[i]);
    }
    return NULL;
}

static void *got[K];

/* Takes the heap over: the K blocks come back, newest first. */
static void *take_round(void *arg) {
    (void)arg;
    for (int i = 0; i < K; i++) {
        REQUIRE((got[i] = malloc(SIZE)) != NULL);
        pat_fill(got[i], SIZE, 99);
    }
    for (int i = 0; i < K; i++) {
        CHECK(pat_check(got[i], SIZE, 99) == (size_t)-1);
        free(got[i]);
    }
    return NULL;
}

static void run_thread(void *(*fn)(void *), uintptr_t arg) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, (void *)arg) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
}

static int cls;
#define CTR(v, id) hak_shm_ctr_sum(v, cls, HAK_CTR_##id)

/* Frees and mallocs of other sizes: spans empty (the purger is wanted) and
 * slow paths tick (one of them starts it). */
static void *churn(void *arg) {
    (void)arg;
    static void *p[64];
    for (int r = 0; r < 200; r++) {
        for (int i = 0; i < 64; i++) REQUIRE((p[i] = malloc(70000)) != NULL);
        for (int i = 0; i < 64; i++) free(p[i]);
    }
    return NULL;
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static void *free_it(void *p) {
    free(p);
    return NULL;
}

/* Child: a parked block freed again must abort the process. */
static void double_free_child(void) {
    run_thread(park_round, 5);
    pthread_t t; /* not the heap's owner: the free goes through this thread's cache */
    if (pthread_create(&t, NULL, free_it, blocks[K - 1]) == 0) pthread_join(t, NULL);
    _exit(0); /* survived: the test fails */
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    tu_init("t_heap_park");
    if (!hakmem_loaded()) return TU_SKIP;
    struct hak_shm_view v;
    if (tu_attach_self(&v) != 0) return tu_done();
    for (cls = 0; cls < hak_shm_nclasses(&v) && hak_shm_class_size(&v, cls) < SIZE; cls++) {
    }
    REQUIRE(cls < hak_shm_nclasses(&v));

    /* 1 */
    uint64_t fl0 = CTR(&v, FLUSH_BLOCKS), live0 = CTR(&v, ALLOCS) - CTR(&v, FREES);
    run_thread(park_round, 1);
    uint64_t fl1 = CTR(&v, FLUSH_BLOCKS), live1 = CTR(&v, ALLOCS) - CTR(&v, FREES);
    uint64_t spans1 = CTR(&v, SPAN_BLOCKS), refills1 = CTR(&v, REFILLS);
    printf("1: class %d (%u B): exit flushed %llu blocks, span_blocks %llu\n", cls,
           hak_shm_class_size(&v, cls), (unsigned long long)(fl1 - fl0),
           (unsigned long long)spans1);
    CHECKF(fl1 == fl0, "the exit flushed %llu blocks", (unsigned long long)(fl1 - fl0));
    CHECKF(live1 == live0, "allocs - frees %llu, was %llu", (unsigned long long)live1,
           (unsigned long long)live0);
    CHECKF(spans1 >= K, "span_blocks %llu: the span went back", (unsigned long long)spans1);
    run_thread(take_round, 0);
    for (int i = 0; i < K; i++)
        CHECKF(got[i] == blocks[K - 1 - i], "malloc %d gave %p, the parked block was %p", i, got[i],
               blocks[K - 1 - i]);
    CHECKF(CTR(&v, REFILLS) == refills1, "the next thread refilled %llu times",
           (unsigned long long)(CTR(&v, REFILLS) - refills1));

    /* 2 */
    run_thread(park_round, 2);
    uint64_t fl2 = CTR(&v, FLUSH_BLOCKS);
    CHECK(CTR(&v, SPAN_BLOCKS) >= K);
    malloc_trim(0);
    printf("2: trim flushed %llu blocks, span_blocks %llu\n",
           (unsigned long long)(CTR(&v, FLUSH_BLOCKS) - fl2),
           (unsigned long long)CTR(&v, SPAN_BLOCKS));
    CHECKF(CTR(&v, FLUSH_BLOCKS) - fl2 == K, "trim flushed %llu parked blocks",
           (unsigned long long)(CTR(&v, FLUSH_BLOCKS) - fl2));
    CHECKF(CTR(&v, SPAN_BLOCKS) == 0, "span_blocks %llu after trim",
           (unsigned long long)CTR(&v, SPAN_BLOCKS));

    /* 3 */
    run_thread(churn, 0);
    int threads = 0;
    for (int t = 0; t < 100 && (threads = tu_threads()) < 2; t++) nap_ms(20);
    CHECKF(threads >= 2, "no purger thread (%d threads)", threads);
    run_thread(park_round, 3);
    CHECK(CTR(&v, SPAN_BLOCKS) >= K);
    int ms = 0;
    for (; ms < 3000 && CTR(&v, SPAN_BLOCKS) != 0; ms += 20) nap_ms(20);
    printf("3: idle: span_blocks %llu after %d ms\n", (unsigned long long)CTR(&v, SPAN_BLOCKS), ms);
    CHECKF(CTR(&v, SPAN_BLOCKS) == 0, "parked blocks still held after %d ms idle", ms);
    CHECKF(CTR(&v, ALLOCS) == CTR(&v, FREES), "allocs %llu, frees %llu",
           (unsigned long long)CTR(&v, ALLOCS), (unsigned long long)CTR(&v, FREES));
    hak_shm_detach(&v);

    /* 4 */
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20);
        double_free_child();
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    printf("4: double free of a parked block: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "the child was not aborted (status %#x)",
           st);
    return tu_done();
}
