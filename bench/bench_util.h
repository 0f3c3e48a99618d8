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
