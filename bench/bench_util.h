/* bench_util.h — small helpers shared by the workload programs in bench/.
 *
 * Every workload is one C file that includes this header, takes its
 * parameters on the command line and prints exactly one line starting with
 * "RESULT " (key=value pairs) on stdout. Exit status is non-zero when the
 * workload's own self-check failed. Everything is deterministic given the
 * seed argument (thread interleavings aside).                               */
#ifndef HAKMEM_BENCH_UTIL_H
#define HAKMEM_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Monotonic wall clock in seconds. */
static inline double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User+system CPU time of the whole process (every thread), in seconds. */
static inline double bench_cpu_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: tiny, fast, good enough for picking slots and sizes. */
typedef struct {
    uint64_t s;
} rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed) {
    r->s = seed * 0x9E3779B97F4A7C15ULL + 1;
}

static inline uint64_t rng_next(rng_t *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (inclusive). */
static inline size_t rng_range(rng_t *r, size_t lo, size_t hi) {
    return lo + (size_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static inline void die(const char *what) {
    fprintf(stderr, "%s\n", what);
    exit(2);
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(3);
    }
    return p;
}

/* Bytes a multithreaded workload holds, summed over its threads: each thread
 * keeps a private delta (malloced minus freed bytes) and adds it here now
 * and then; the peak of the sum is set against the peak RSS, so an
 * allocator's overhead is told from what the program held.                 */
typedef struct {
    atomic_llong total, peak;
} bench_live_t;

static inline void bench_live_report(bench_live_t *l, int64_t *delta) {
    long long now = atomic_fetch_add(&l->total, *delta) + *delta;
    long long peak = atomic_load(&l->peak);
    while (now > peak && !atomic_compare_exchange_weak(&l->peak, &peak, now)) {
    }
    *delta = 0;
}

/* A thread's mailbox of batches of blocks that another thread malloced and
 * that it is to free. At most BENCH_MAIL_MAX batches wait in one: a sender
 * that finds the receiver's box full empties its own (wait(arg)) until
 * there is room, so what is in flight does not depend on how long the
 * scheduler lets a sender run while its receiver waits for a CPU (without
 * the bound, peak RSS measured the scheduler). A closed box (its thread has
 * ended) takes mail without a wait; whoever outlives it empties it.        */
enum { BENCH_MAIL_MAX = 4 };

typedef struct bench_batch {
    struct bench_batch *next;
    size_t count;
    void *blocks[];
} bench_batch_t;

typedef struct {
    _Atomic(bench_batch_t *) head;
    atomic_int pending, closed;
} bench_mailbox_t;

static inline bench_batch_t *bench_batch_new(size_t count) {
    bench_batch_t *b = xmalloc(sizeof(bench_batch_t) + count * sizeof(void *));
    b->count = count;
    return b;
}

static inline bench_batch_t *bench_mail_take(bench_mailbox_t *m) {
    bench_batch_t *b = atomic_exchange(&m->head, NULL);
    for (bench_batch_t *x = b; x; x = x->next) atomic_fetch_sub(&m->pending, 1);
    return b;
}

/* Empties m: drop(ctx, block) for every block of every batch in it, then
 * frees the batches. Returns how many batches there were.                 */
static inline size_t bench_mail_empty(bench_mailbox_t *m, void (*drop)(void *, void *), void *ctx) {
    size_t n = 0;
    for (bench_batch_t *b = bench_mail_take(m), *next; b; b = next, n++) {
        next = b->next;
        for (size_t i = 0; i < b->count; i++) drop(ctx, b->blocks[i]);
        free(b);
    }
    return n;
}

static inline void bench_mail_send(bench_mailbox_t *to, bench_batch_t *b, void (*wait)(void *),
                                   void *arg) {
    while (atomic_load(&to->pending) >= BENCH_MAIL_MAX && !atomic_load(&to->closed)) {
        wait(arg);
        sched_yield();
    }
    atomic_fetch_add(&to->pending, 1);
    b->next = atomic_load(&to->head);
    while (!atomic_compare_exchange_weak(&to->head, &b->next, b)) {
    }
}

/* Parse argv[i] as an integer in [lo, hi], or use def when argc <= i. */
/* Runs fn on n threads, thread i getting (char *)args + i * stride, and
 * returns the wall time from the first start to the last join. */
static inline double run_threads(int n, void *(*fn)(void *), void *args, size_t stride) {
    pthread_t *th = xmalloc(sizeof(pthread_t) * (size_t)n);
    double t0 = now_sec();
    for (int t = 0; t < n; t++)
        if (pthread_create(&th[t], NULL, fn, (char *)args + (size_t)t * stride))
            die("pthread_create");
    for (int t = 0; t < n; t++) pthread_join(th[t], NULL);
    double elapsed = now_sec() - t0;
    free(th);
    return elapsed;
}

static inline long arg_long(int argc, char **argv, int i, long def, long lo, long hi) {
    if (i >= argc) return def;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 0);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: argument %d '%s' must be an integer in [%ld, %ld]\n", argv[0], i,
                argv[i], lo, hi);
        exit(2);
    }
    return v;
}

static inline double arg_double(int argc, char **argv, int i, double def, double lo, double hi) {
    if (i >= argc) return def;
    char *end;
    errno = 0;
    double v = strtod(argv[i], &end);
    if (errno || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: argument %d '%s' must be a number in [%g, %g]\n", argv[0], i, argv[i],
                lo, hi);
        exit(2);
    }
    return v;
}

/* Cheap self-check: a tag byte at both ends of a block, derived from the slot
 * and the size. Written after malloc, verified before free.                  */
static inline unsigned char tag_of(size_t slot, size_t size) {
    return (unsigned char)(slot * 131u + size * 7u + 1u);
}

static inline void tag_block(void *p, size_t slot, size_t size) {
    unsigned char t = tag_of(slot, size);
    ((volatile unsigned char *)p)[0] = t;
    ((volatile unsigned char *)p)[size - 1] = t;
}

static inline int tag_ok(const void *p, size_t slot, size_t size) {
    unsigned char t = tag_of(slot, size);
    return ((const volatile unsigned char *)p)[0] == t &&
           ((const volatile unsigned char *)p)[size - 1] == t;
}

/* Prevent the compiler from proving a malloc/free pair dead. */
static inline void escape(void *p) {
    __asm__ volatile("" : : "g"(p) : "memory");
}

#endif
