/* t_heap_start — a thread's first blocks cost little (issue 10, item 6).
 *
 * 1. 300 threads (64 KiB stacks) each malloc 12 blocks of 16..1024 B,
 *    write them and wait; with all of them waiting, the growth of VmSize
 *    and VmRSS (/proc/self/statm) over the value before the first thread,
 *    minus the stacks, must stay under 256 KiB and 21 KiB per thread
 *    (RssAnon: the counter slots of the live segment, RssShmem, are
 *    bounded apart, 12 KiB a thread: whether a heap has one depends on
 *    whether the segment appeared, 50 ms after start, before it). A
 *    heap that claims its own 4 MiB segment per thread (and a span per
 *    class it touches) costs 4 MiB and about 60 KiB (lib/hak_starter.c);
 *    a heap struct with its decay history and big-class stores in it, and
 *    private counters spread over two pages, 26 KiB (85aabd1; 20-21 KiB
 *    with the struct and its counters in one page, glibc 15 KiB; 20.0
 *    with the starter's slower start, which hands an idle thread the
 *    blocks it asked for and not the next power of two: 21.6 before).
 *    Then each frees its blocks (checked patterns) and exits.
 * 2. Busy threads pass the starter: 3 rounds of 4 threads that each hold
 *    3000 blocks of 16..1024 B at once (past the starter's budget), with a
 *    quarter of them freed by the next thread of the round (cross-thread
 *    frees of starter blocks and own blocks), every pattern checked.
 * malloc_trim runs between the parts, and (1) runs again after the last.
 * Under glibc the bounds of (1) are not checked (its arenas reserve 64 MiB
 * of address space each). */
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>

enum { IDLE = 300, IDLE_BLOCKS = 12, STACK = 64 << 10, BUSY = 4, BUSY_BLOCKS = 3000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;

/* A line of /proc/self/status, KiB; -1 if unknown. */
static long status_kib(const char *key) {
    char buf[4096];
    const char *p = tu_read_proc("/proc/self/status", buf, sizeof buf) ? strstr(buf, key) : NULL;
    return p ? atol(p + strlen(key)) : -1;
}

static size_t size_of(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return 16 + (size_t)((*x >> 33) % 1009);
}

static void *idle_worker(void *arg) {
    uint64_t x = (uintptr_t)arg;
    void *p[IDLE_BLOCKS];
    size_t n[IDLE_BLOCKS];
    for (int i = 0; i < IDLE_BLOCKS; i++) {
        n[i] = size_of(&x);
        REQUIRE((p[i] = malloc(n[i])) != NULL);
        pat_fill(p[i], n[i], 7);
    }
    pthread_mutex_lock(&lock);
    ready++;
    pthread_cond_broadcast(&cv);
    while (!go) pthread_cond_wait(&cv, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < IDLE_BLOCKS; i++) {
        CHECK(pat_check(p[i], n[i], 7) == (size_t)-1);
        free(p[i]);
    }
    return NULL;
}

static void idle_threads(void) {
    static pthread_t th[IDLE];
    ready = go = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK);
    long vm0 = tu_vm_kib(), rss0 = status_kib("\nRssAnon:"), shm0 = status_kib("\nRssShmem:");
    for (int i = 0; i < IDLE; i++)
        REQUIRE(pthread_create(&th[i], &attr, idle_worker, (void *)(uintptr_t)(i + 1)) == 0);
    pthread_mutex_lock(&lock);
    while (ready < IDLE) pthread_cond_wait(&cv, &lock);
    pthread_mutex_unlock(&lock);
    long vm = tu_vm_kib() - vm0, rss = status_kib("\nRssAnon:") - rss0,
         shm = status_kib("\nRssShmem:") - shm0;
    long stack_kib = (STACK >> 10) + 4; /* and its guard page */
    long vm_per = vm / IDLE - stack_kib;
    printf("per idle thread: address space %ld KiB beyond its stack, resident %.1f KiB private, "
           "%ld KiB shared (counter slots)\n",
           vm_per, (double)rss / IDLE, shm / IDLE);
    if (hakmem_loaded()) {
        CHECKF(vm_per < 256, "address space per thread %ld KiB (a segment each?)", vm_per);
        CHECKF(rss < 21 * IDLE,
               "resident per thread %.1f KiB (a span per class each? a heap in more pages? "
               "blocks the starter handed out unasked?)",
               (double)rss / IDLE);
        CHECKF(shm / IDLE < 12, "counter slots per thread %ld KiB", shm / IDLE);
    }
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < IDLE; i++) pthread_join(th[i], NULL);
    pthread_attr_destroy(&attr);
}

/* Each busy thread fills its own array, then frees the first quarter of
 * the next thread's (after that one has filled it: a barrier) and the rest
 * of its own. */
struct busy {
    void *p[BUSY_BLOCKS];
    size_t n[BUSY_BLOCKS];
    int id;
};
static struct busy busy[BUSY];
static pthread_barrier_t bar;

static void *busy_worker(void *arg) {
    struct busy *b = arg, *next = &busy[(b->id + 1) % BUSY];
    uint64_t x = (uint64_t)b->id * 977 + 5;
    for (int i = 0; i < BUSY_BLOCKS; i++) {
        b->n[i] = size_of(&x);
        REQUIRE((b->p[i] = malloc(b->n[i])) != NULL);
        pat_fill(b->p[i], b->n[i], (uint64_t)b->id);
    }
    pthread_barrier_wait(&bar);
    for (int i = 0; i < BUSY_BLOCKS / 4; i++) {
        CHECK(pat_check(next->p[i], next->n[i], (uint64_t)next->id) == (size_t)-1);
        free(next->p[i]);
    }
    for (int i = BUSY_BLOCKS / 4; i < BUSY_BLOCKS; i++) {
        CHECK(pat_check(b->p[i], b->n[i], (uint64_t)b->id) == (size_t)-1);
        free(b->p[i]);
    }
    return NULL;
}

static void busy_rounds(void) {
    for (int r = 0; r < 3; r++) {
        pthread_t th[BUSY];
        REQUIRE(pthread_barrier_init(&bar, NULL, BUSY) == 0);
        for (int i = 0; i < BUSY; i++) {
            busy[i].id = i + r * BUSY;
            REQUIRE(pthread_create(&th[i], NULL, busy_worker, &busy[i]) == 0);
        }
        for (int i = 0; i < BUSY; i++) pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
    }
}

int main(void) {
    tu_init("t_heap_start");
    free(malloc(64)); /* the main thread's heap exists before the others start */
    idle_threads();
    malloc_trim(0); /* gives back the starter's emptied spans, the last ones too */
    busy_rounds();
    malloc_trim(0);
    idle_threads(); /* a starter after a trim serves again */
    return tu_done();
}
