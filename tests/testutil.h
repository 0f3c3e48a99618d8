/* testutil.h — tiny shared helpers for hakmem's C tests.
 *
 * CHECK(expr) / CHECKF(expr, fmt, ...) record a failure (file:line, the
 * expression, optional context) and go on, so one run shows every broken
 * case. tu_init() names the test and the allocator serving it; tu_done()
 * returns the exit status (0 pass, 1 fail). A test that cannot apply returns
 * TU_SKIP (77).
 *
 * Allocator detection: hakmem exports hakmem_version(); dlsym(RTLD_DEFAULT)
 * finds it when the library is preloaded or linked in with -rdynamic. When
 * tests/run preloads hakmem it sets HAKMEM_TEST_EXPECT_HAKMEM=1 and tu_init()
 * fails the test if hakmem did not actually load (so a broken preload can not
 * silently test glibc instead).
 *
 * Patterns: pat_fill()/pat_check() write and verify bytes derived from the
 * block's address, size and a seed, so a block that was handed out twice,
 * overlaps another, or was scribbled on by the allocator is caught before
 * it is freed.
 */
#ifndef HAKMEM_TESTUTIL_H
#define HAKMEM_TESTUTIL_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TU_SKIP 77
#define TU_MAX_MSGS 60 /* failure lines printed; all are counted */

static int tu_failures;
static const char *tu_name = "test";

static inline void tu_fail(const char *file, int line, const char *expr, const char *ctx) {
    int n = __atomic_add_fetch(&tu_failures, 1, __ATOMIC_RELAXED);
    if (n <= TU_MAX_MSGS)
        fprintf(stderr, "%s:%d: CHECK failed: %s%s%s\n", file, line, expr, ctx ? "  -- " : "",
                ctx ? ctx : "");
    else if (n == TU_MAX_MSGS + 1)
        fprintf(stderr, "(further failures counted, not printed)\n");
}

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) tu_fail(__FILE__, __LINE__, #expr, NULL);                                     \
    } while (0)

#define CHECKF(expr, ...)                                                                          \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            char tu_ctx_[256];                                                                     \
            snprintf(tu_ctx_, sizeof tu_ctx_, __VA_ARGS__);                                        \
            tu_fail(__FILE__, __LINE__, #expr, tu_ctx_);                                           \
        }                                                                                          \
    } while (0)

/* Fatal variant: stops the test (used where going on would crash). */
#define REQUIRE(expr)                                                                              \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tu_fail(__FILE__, __LINE__, #expr, "(fatal)");                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline const char *hakmem_version_str(void) {
    const char *(*fn)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hakmem_version");
    return fn ? fn() : NULL;
}

static inline int hakmem_loaded(void) {
    return hakmem_version_str() != NULL;
}

/* Raw reads of /proc/self files, without malloc or stdio (for tests that
 * watch the allocator while it must stay idle): the file's text in buf,
 * NUL-terminated; false if unreadable. */
static inline bool tu_read_proc(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    return true;
}

/* Field i of /proc/self/statm (0: address space, 1: resident), KiB; -1 if
 * unknown. A raw read, no malloc: it works while memory is short. */
static inline long tu_statm_kib(int i) {
    char buf[128];
    const char *p = tu_read_proc("/proc/self/statm", buf, sizeof buf) ? buf : NULL;
    for (; i > 0 && p; i--) p = strchr(p + 1, ' ');
    return p ? strtol(p, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

/* The process's address space (VmSize), KiB; -1 if unknown. */
static inline long tu_vm_kib(void) {
    return tu_statm_kib(0);
}

/* Resident memory (VmRSS), KiB; -1 if unknown. */
static inline long tu_rss_kib(void) {
    return tu_statm_kib(1);
}

/* Threads of this process (Threads: of /proc/self/status); -1 if unknown. */
static inline int tu_threads(void) {
    char buf[4096];
    const char *p =
        tu_read_proc("/proc/self/status", buf, sizeof buf) ? strstr(buf, "\nThreads:") : NULL;
    return p ? atoi(p + 9) : -1;
}

/* The allocator reads its knobs at start: a test that needs some set runs
 * itself again, once, with them. env: name, value, name, value, ..., NULL;
 * its first name set means this is that run, and the call returns. */
static inline void tu_reexec_with(char **argv, const char *const *env) {
    if (getenv(env[0])) return;
    for (int i = 0; env[i]; i += 2) setenv(env[i], env[i + 1], 1);
    execv("/proc/self/exe", argv);
    perror("execv /proc/self/exe");
    _exit(127);
}

/* Waits for child pid, polling every 2 ms, at most deadline_s seconds:
 * its wait status; -1 if it was still running then (it is killed and
 * reaped: a hung child fails the test, never outlives it); -2 if waitpid
 * failed. */
static inline int tu_wait_child(pid_t pid, int deadline_s) {
    struct timespec nap = {0, 2000000};
    for (long waited = 0;; waited++) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0 && errno != EINTR) return -2;
        if (waited > deadline_s * 500L) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
}

static inline void tu_init(const char *name) {
    tu_name = name;
    const char *v = hakmem_version_str();
    printf("%s: allocator %s%s\n", name, v ? "hakmem " : "glibc (hakmem not loaded)", v ? v : "");
    fflush(stdout);
    const char *e = getenv("HAKMEM_TEST_EXPECT_HAKMEM");
    if (e && *e == '1' && !v) {
        fprintf(stderr,
                "%s: HAKMEM_TEST_EXPECT_HAKMEM=1 but hakmem_version() is not "
                "visible: the preload did not take\n",
                name);
        exit(1);
    }
}

static inline int tu_done(void) {
    if (tu_failures) {
        printf("%s: FAILED (%d failed checks)\n", tu_name, tu_failures);
        return 1;
    }
    printf("%s: ok\n", tu_name);
    return 0;
}

/* Scale factor for iteration counts, percent (HAKMEM_TEST_SCALE, default
 * 100); the TSAN runs turn it down. Never used for timing decisions. */
static inline long tu_scale(long n) {
    const char *s = getenv("HAKMEM_TEST_SCALE");
    long pct = s ? atol(s) : 100;
    if (pct <= 0) pct = 100;
    long r = n * pct / 100;
    return r > 0 ? r : 1;
}

/* ------------------------------------------------------------- patterns
 * Not instrumented under TSAN: byte-wise pattern loops would dominate the
 * run time, and they are checks of their own (a block handed out twice is
 * caught by its pattern). */
#ifdef __SANITIZE_THREAD__
#define TU_PATFN static __attribute__((no_sanitize_thread, noinline, unused))
#else
#define TU_PATFN static inline
#endif

static inline uint64_t tu_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t pat_key(const void *p, size_t n, uint64_t seed) {
    return tu_mix((uint64_t)(uintptr_t)p ^ (n * 0x9e3779b97f4a7c15ULL) ^ seed);
}

static inline uint8_t pat_byte_k(uint64_t k, size_t i) {
    return (uint8_t)(k >> ((i & 7) * 8)) ^ (uint8_t)(i >> 3) ^ (uint8_t)(i >> 11);
}

static inline uint8_t pat_byte(const void *p, size_t n, uint64_t seed, size_t i) {
    return pat_byte_k(pat_key(p, n, seed), i);
}

/* Full fill: every byte. */
TU_PATFN void pat_fill(void *p, size_t n, uint64_t seed) {
    uint8_t *b = (uint8_t *)p;
    uint64_t k = pat_key(p, n, seed);
    for (size_t i = 0; i < n; i++) b[i] = pat_byte_k(k, i);
}

/* Returns the first bad offset, or (size_t)-1 if the block is intact. */
TU_PATFN size_t pat_check(const void *p, size_t n, uint64_t seed) {
    const uint8_t *b = (const uint8_t *)p;
    uint64_t k = pat_key(p, n, seed);
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat_byte_k(k, i)) return i;
    return (size_t)-1;
}

/* Sparse variant for big blocks in stress tests: head and tail 256 bytes and
 * one byte every 4 KiB are patterned, so every page of the block is touched. */
#define PAT_EDGE 256
TU_PATFN void pat_fill_sparse(void *p, size_t n, uint64_t seed) {
    if (n <= 4 * PAT_EDGE) {
        pat_fill(p, n, seed);
        return;
    }
    uint8_t *b = (uint8_t *)p;
    uint64_t k = pat_key(p, n, seed);
    for (size_t i = 0; i < PAT_EDGE; i++) b[i] = pat_byte_k(k, i);
    for (size_t i = n - PAT_EDGE; i < n; i++) b[i] = pat_byte_k(k, i);
    for (size_t i = 4096; i < n - PAT_EDGE; i += 4096) b[i] = pat_byte_k(k, i);
}

TU_PATFN size_t pat_check_sparse(const void *p, size_t n, uint64_t seed) {
    if (n <= 4 * PAT_EDGE) return pat_check(p, n, seed);
    const uint8_t *b = (const uint8_t *)p;
    uint64_t k = pat_key(p, n, seed);
    for (size_t i = 0; i < PAT_EDGE; i++)
        if (b[i] != pat_byte_k(k, i)) return i;
    for (size_t i = n - PAT_EDGE; i < n; i++)
        if (b[i] != pat_byte_k(k, i)) return i;
    for (size_t i = 4096; i < n - PAT_EDGE; i += 4096)
        if (b[i] != pat_byte_k(k, i)) return i;
    return (size_t)-1;
}

/* Small fast PRNG (per thread state). */
static inline uint64_t tu_rand(uint64_t *s) {
    *s += 0x9e3779b97f4a7c15ULL;
    return tu_mix(*s);
}

/* Size mix for stress tests: mostly small, some mid, a few large. */
static inline size_t tu_stress_size(uint64_t *s) {
    uint64_t r = tu_rand(s);
    unsigned pick = (unsigned)(r % 1000);
    r >>= 10;
    if (pick < 800) return (size_t)(r % 1025);                   /* 0..1024 */
    if (pick < 980) return 1025 + (size_t)(r % (131072 - 1024)); /* up to the last slab class */
    if (pick < 998) return 131073 + (size_t)(r % (1 << 20));     /* large, < 1.2 MiB */
    return (2u << 20) + (size_t)(r % (2u << 20));                /* 2..4 MiB */
}

#endif
