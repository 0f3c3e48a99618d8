/* larson — server simulation after Larson & Krishnan (ISMM '98), written anew.
 *
 *   larson SECONDS MIN_SIZE MAX_SIZE CHUNKS_PER_THREAD ROUNDS SEED THREADS [pin]
 *   e.g. larson 2 8 128 1024 1 12345 4
 *
 * The main thread allocates CHUNKS_PER_THREAD blocks for each of THREADS
 * slots. Each slot is worked by one thread at a time: it repeatedly frees a
 * random block of its array and mallocs a new one of random size in
 * [MIN_SIZE, MAX_SIZE]. After ROUNDS * CHUNKS_PER_THREAD such steps the thread
 * starts a successor that inherits the array and exits, so blocks are freed
 * by threads other than the one that allocated them (and the first
 * generation frees what the main thread allocated). After SECONDS the main
 * thread raises a stop flag and waits for every slot to finish.
 *
 * Result: ops_per_sec = (free+malloc steps) / elapsed, like the original's
 * "operations per second" (sum of allocations / duration). With ROUNDS = 1
 * threads are replaced every CHUNKS steps, so on a busy machine the wait for
 * a CPU weighs in; cpu_ops_per_sec (steps / process CPU time) does not see
 * that wait (nor time spent blocked on locks).                              */
#include "bench_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>

typedef struct {
    char **blocks;
    size_t *sizes;
    size_t nblocks, min_size, max_size;
    uint64_t steps_per_life; /* ROUNDS * CHUNKS_PER_THREAD */
    rng_t rng;
    uint64_t steps, lives, bad_tags;
    uint64_t cpu_moves; /* lives that began on another CPU than the last one ended on */
    int last_cpu;
} slot_t;

static atomic_int stop_flag;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done_count;
static pthread_attr_t detached;

/* User+system CPU time of the whole process (all threads, live or exited). */
/* pin: every thread on the CPU main starts on. With one slot and ROUNDS = 1
 * a thread lives ~50 us; unpinned, the kernel starts its successor on the
 * other CPU whenever that one looks idler, so lives alternate between
 * CPUs with cold caches and wait behind other processes there: on 2 shared
 * CPUs 25 % of lives moved (cpu_moves) and the CPU rate was bimodal,
 * 0.9-2.0e7 steps/CPU-s for every allocator (93-112 % spread); pinned,
 * 1.8-2.1e7 (10-30 %). */
static void pin_here(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int cpu = sched_getcpu();
    CPU_SET(cpu < 0 ? 0 : cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
}

static double cpu_sec(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void *exercise_heap(void *arg) {
    slot_t *s = arg;
    for (;;) {
        s->lives++;
        int cpu = sched_getcpu();
        if (s->lives > 1 && cpu != s->last_cpu) s->cpu_moves++;
        for (uint64_t i = 0; i < s->steps_per_life; i++) {
            size_t v = (size_t)(rng_next(&s->rng) % s->nblocks);
            if (!tag_ok(s->blocks[v], v, s->sizes[v])) s->bad_tags++;
            free(s->blocks[v]);
            size_t sz = rng_range(&s->rng, s->min_size, s->max_size);
            s->blocks[v] = xmalloc(sz);
            s->sizes[v] = sz;
            tag_block(s->blocks[v], v, sz);
            s->steps++;
            if (atomic_load_explicit(&stop_flag, memory_order_relaxed)) break;
        }
        s->last_cpu = sched_getcpu();
        if (atomic_load(&stop_flag)) break;
        pthread_t next;
        if (pthread_create(&next, &detached, exercise_heap, s) == 0) return NULL;
        /* Could not start a successor (thread limit): carry on in this one. */
    }
    pthread_mutex_lock(&done_lock);
    done_count++;
    pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&done_lock);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 8) die("usage: larson SECONDS MIN_SIZE MAX_SIZE CHUNKS ROUNDS SEED THREADS");
    double seconds = arg_double(argc, argv, 1, 2, 0.01, 3600);
    size_t min_size = (size_t)arg_long(argc, argv, 2, 8, 1, 1 << 24);
    size_t max_size = (size_t)arg_long(argc, argv, 3, 128, (long)min_size, 1 << 24);
    size_t chunks = (size_t)arg_long(argc, argv, 4, 1024, 1, 1 << 24);
    long rounds = arg_long(argc, argv, 5, 1, 1, 1 << 20);
    long seed = arg_long(argc, argv, 6, 12345, 0, 1L << 62);
    int nthreads = (int)arg_long(argc, argv, 7, 4, 1, 256);
    int pin = argc > 8 && strcmp(argv[8], "pin") == 0;
    if (argc > 8 && !pin) die("larson: the 8th argument can only be 'pin'");
    if (pin) pin_here();

    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    slot_t *slots = xmalloc(sizeof(slot_t) * (size_t)nthreads);
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    for (int t = 0; t < nthreads; t++) {
        slot_t *s = &slots[t];
        *s = (slot_t){.nblocks = chunks,
                      .min_size = min_size,
                      .max_size = max_size,
                      .steps_per_life = (uint64_t)rounds * chunks};
        rng_seed(&s->rng, rng_next(&master));
        s->blocks = xmalloc(sizeof(char *) * chunks);
        s->sizes = xmalloc(sizeof(size_t) * chunks);
        for (size_t i = 0; i < chunks; i++) { /* warm-up: main thread allocates */
            s->sizes[i] = rng_range(&s->rng, min_size, max_size);
            s->blocks[i] = xmalloc(s->sizes[i]);
            tag_block(s->blocks[i], i, s->sizes[i]);
        }
    }

    double t0 = now_sec(), cpu0 = cpu_sec();
    for (int t = 0; t < nthreads; t++) {
        pthread_t th;
        if (pthread_create(&th, &detached, exercise_heap, &slots[t])) die("pthread_create");
    }
    struct timespec nap = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&nap, &nap) && errno == EINTR) {
    }
    atomic_store(&stop_flag, 1);
    pthread_mutex_lock(&done_lock);
    while (done_count < nthreads) pthread_cond_wait(&done_cv, &done_lock);
    pthread_mutex_unlock(&done_lock);
    double elapsed = now_sec() - t0, cpu = cpu_sec() - cpu0;

    uint64_t steps = 0, lives = 0, bad = 0, moves = 0;
    for (int t = 0; t < nthreads; t++) {
        slot_t *s = &slots[t];
        steps += s->steps;
        lives += s->lives;
        moves += s->cpu_moves;
        bad += s->bad_tags;
        for (size_t i = 0; i < chunks; i++) {
            if (!tag_ok(s->blocks[i], i, s->sizes[i])) bad++;
            free(s->blocks[i]);
        }
        free(s->blocks);
        free(s->sizes);
    }
    free(slots);
    printf("RESULT name=larson threads=%d pinned=%d min=%zu max=%zu chunks=%zu rounds=%ld seed=%ld "
           "steps=%llu thread_lives=%llu cpu_moves=%llu bad_tags=%llu elapsed=%.4f cpu=%.4f "
           "cpu_ops_per_sec=%.0f "
           "ops_per_sec=%.0f\n",
           nthreads, pin, min_size, max_size, chunks, rounds, seed, (unsigned long long)steps,
           (unsigned long long)lives, (unsigned long long)moves, (unsigned long long)bad, elapsed,
           cpu, (double)steps / cpu, (double)steps / elapsed);
    return bad ? 1 : 0;
}
