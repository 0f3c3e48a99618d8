/* t_seg_resident — a new span goes where pages are still resident (issue 10,
 * item 7: thread_bins' peak RSS), not into never-touched pages beside them:
 *   1. within a heap: a thread fills one segment with 1 KiB blocks (and
 *      part of a second), writes them, frees those of the first segment but
 *      one (its pages stay resident: freed, not purged), then takes 30 pages
 *      of 2 KiB blocks (a class of its own, so no span of the first serves
 *      them) and writes them. Their spans must sit in the first segment's
 *      resident pages, not in the second's fresh ones (which the newest
 *      segment of the heap, searched first, offered): at least 90 % of the
 *      blocks in the first segment, and fewer page faults than a quarter of
 *      the OS pages written.
 *   2. across the segment cache: thread B's heap has a segment of its own
 *      with fresh pages free; thread A fills a segment with 1 KiB blocks,
 *      writes them, frees them all and exits (its empty segment goes to the
 *      cache, resident). B's next 30 pages of 2 KiB blocks must take A's
 *      segment's resident pages (checked as in 1).
 * Purges are kept out (purge delay 60 s, no background purger), so what
 * decides is placement alone; each part runs in a fresh process (this
 * binary re-executed with the part's name). Faults from getrusage
 * (RUSAGE_THREAD: the measuring thread's own). Under glibc: skipped. */
#include "testutil.h"

#include <pthread.h>
#include <sys/resource.h>

enum { SMALL = 1024, BIG = 2048, OS_PAGE = 4096, PAGE = 64 << 10, NEW_PAGES = 30 };
#define SEG_OF(p) ((uintptr_t)(p) >> 22)

static long thread_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt;
}

static void touch(char *p, size_t n) {
    for (size_t i = 0; i < n; i += OS_PAGE) ((volatile char *)p)[i] = 1;
    ((volatile char *)p)[n - 1] = 1;
}

/* NEW_PAGES pages of BIG blocks, written; checks they sit in segment seg
 * and cost few faults; frees them. */
static void take_new(uintptr_t seg, const char *part) {
    enum { N = NEW_PAGES * PAGE / BIG };
    static char *b[N];
    long f0 = thread_faults();
    int in = 0;
    for (int i = 0; i < N; i++) {
        REQUIRE((b[i] = malloc(BIG)) != NULL);
        touch(b[i], BIG);
        in += SEG_OF(b[i]) == seg;
    }
    long faults = thread_faults() - f0, pages = (long)N * BIG / OS_PAGE;
    printf("%s: %d of %d new blocks in the resident segment, %ld faults for %ld OS pages\n", part,
           in, N, faults, pages);
    CHECKF(in >= N * 9 / 10, "%s: %d of %d blocks placed in resident pages", part, in, N);
    CHECKF(faults < pages / 4, "%s: %ld faults writing %ld OS pages", part, faults, pages);
    for (int i = 0; i < N; i++) free(b[i]);
}

enum { MAXB = 3 * (4 << 20) / SMALL };
static char *blk[MAXB];

/* Fills the thread's first segment of SMALL blocks and `extra` blocks
 * beyond it; returns how many were taken, the first segment in *seg. */
static int fill(uintptr_t *seg, int extra) {
    int n = 0, beyond = 0;
    /* past the starter heap's budget (lib/hak_starter.c): blocks of the
     * thread's own heap from here on */
    for (int i = 0; i < 256; i++) free(malloc(SMALL));
    REQUIRE((blk[n] = malloc(SMALL)) != NULL);
    touch(blk[n], SMALL);
    *seg = SEG_OF(blk[n++]);
    while (beyond < extra && n < MAXB) {
        REQUIRE((blk[n] = malloc(SMALL)) != NULL);
        touch(blk[n], SMALL);
        beyond += SEG_OF(blk[n++]) != *seg;
    }
    REQUIRE(beyond == extra);
    return n;
}

static void *part_heap(void *arg) {
    (void)arg;
    uintptr_t seg;
    /* a second segment with 20 pages of blocks, 40-odd fresh pages free */
    int n = fill(&seg, 20 * PAGE / SMALL), kept = 0;
    for (int i = 0; i < n; i++) {
        if (SEG_OF(blk[i]) != seg) continue;
        if (!kept++) continue; /* one block keeps the segment in the heap */
        free(blk[i]);
        blk[i] = NULL;
    }
    take_new(seg, "heap");
    for (int i = 0; i < n; i++) free(blk[i]);
    return NULL;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;
static uintptr_t a_seg;

static void wait_stage(int s) {
    pthread_mutex_lock(&lock);
    while (stage < s) pthread_cond_wait(&cv, &lock);
    pthread_mutex_unlock(&lock);
}

static void set_stage(int s) {
    pthread_mutex_lock(&lock);
    stage = s;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lock);
}

/* B: a segment of its own, fresh pages free; then new spans after A left. */
static void *part_cache_b(void *arg) {
    (void)arg;
    uintptr_t seg;
    int n = fill(&seg, 0);
    set_stage(1);
    wait_stage(2);
    take_new(a_seg, "cache");
    for (int i = 0; i < n; i++) free(blk[i]);
    return NULL;
}

/* A: a segment filled, written, emptied; the thread exits. */
static void *part_cache_a(void *arg) {
    (void)arg;
    static char *own[(4 << 20) / SMALL];
    uintptr_t seg = 0;
    int n = 0;
    for (int i = 0; i < 256; i++) free(malloc(SMALL));
    for (; n < (int)(sizeof own / sizeof own[0]); n++) {
        REQUIRE((own[n] = malloc(SMALL)) != NULL);
        touch(own[n], SMALL);
        if (!n) seg = SEG_OF(own[0]);
        if (SEG_OF(own[n]) != seg) {
            n++;
            break;
        }
    }
    for (int i = 0; i < n; i++) free(own[i]);
    a_seg = seg;
    return NULL;
}

static int run_part(const char *part) {
    pthread_t a, b;
    if (!strcmp(part, "heap")) {
        REQUIRE(pthread_create(&a, NULL, part_heap, NULL) == 0);
        pthread_join(a, NULL);
    } else {
        REQUIRE(pthread_create(&b, NULL, part_cache_b, NULL) == 0);
        wait_stage(1);
        REQUIRE(pthread_create(&a, NULL, part_cache_a, NULL) == 0);
        pthread_join(a, NULL);
        set_stage(2);
        pthread_join(b, NULL);
    }
    return tu_done();
}

int main(int argc, char **argv) {
    if (argc > 1) {
        tu_init(argv[1]);
        return run_part(argv[1]);
    }
    tu_init("t_seg_resident");
    if (!hakmem_loaded()) return TU_SKIP;
    setenv("HAKMEM_PURGE_DELAY_MS", "60000", 1);
    setenv("HAKMEM_BACKGROUND", "0", 1);
    /* every thread carves its own from its first block: a thread started
     * once starter_threads threads live begins on the starter heap
     * (lib/hak_starter.c), and then A's cache hands the starter's blocks
     * out again after the fill's first own one, which ends the fill */
    setenv("HAKMEM_STARTER_THREADS", "1000", 1);
    const char *parts[] = {"heap", "cache"};
    for (int i = 0; i < 2; i++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "timeout -s KILL 60 %s %s", argv[0], parts[i]);
        int st = system(cmd);
        CHECKF(st == 0, "part %s: status %d", parts[i], st);
    }
    return tu_done();
}
