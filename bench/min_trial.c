/* min_trial — the fast path timed in short trials, for A/B of builds on a
 * noisy machine: each trial (about 8000 operations, 25-90 us) is shorter
 * than a scheduler slice, so the minimum over many trials is one that ran
 * undisturbed. The minimum is steady within a process (min to 10th
 * percentile 0.1-1 %) but lands on one of a few levels that differ between
 * processes of the same build (3.2, 3.75 or 4.8 ns a tiny_hot pair here),
 * so compare the distributions of many processes' minima, alternating
 * builds (docs/allocator.md, "What the counters cost").
 *
 *   min_trial [-p] [-d] MODE TRIALS
 *   e.g. min_trial t16 300;  min_trial -d fs16x400 300  (under the preload)
 *
 * MODE: t<size> tiny_hot's loop (batches of 100, LIFO); ms<size>
 * malloc_simple's FIFO rounds of N = 25, 100 and 400 at one size (2500 +
 * 2500 + 2800 pairs a trial; 1600 would leave the cache); fs<size>x<N> one
 * slice of malloc_simple (N <= 1600 blocks, FIFO, 8000 / N rounds a trial)
 * with no warm-up, so its first trials are the slice as malloc_simple
 * meets it; rm random_mixed's loop (working set 400, 8-128 bytes; rm<max>:
 * 8-max bytes, e.g. rm1024).
 * Result: min, p10 and median ns per operation (a pair for t, ms and fs, a
 * malloc or a free for rm), after 20 trials of warm-up (fs: none).
 * -p (fs only): first run what malloc_simple 2000000 runs before the slice
 * (sizes 16, 32, ... below it, then N = 25, 100, ... below N of it).
 * -d (not rm): hakmem's diagnostics, to tell a process on slow paths from
 * a layout effect (docs/allocator.md, "Bimodal processes"): slowops (the
 * class's alloc_slow + free_slow during the timed trials), fasttrials
 * (trials without one), the bin's cap, and the addresses: counter row, the
 * first / last of N blocks handed out after the trials (t: 100, ms: 400),
 * the lowest and highest, the pointer array, the loop's stack pointer.
 * Tied to hakmem's build: the bin is found from the thread pointer and the
 * GOT word of hak_tls that malloc's first add reads (the fast path,
 * lib/hak_alloc.h), its counter row through bin->ctr (shm/hakmem_shm.h's
 * counter order). Under another allocator they are zeros (the addresses
 * of blocks and stack aside). */
#include "bench_util.h"
#include <dlfcn.h>
#include <getopt.h>
#include <time.h>

static void *ptrs[1600];
static uintptr_t loop_rsp;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

__attribute__((noinline)) static uint64_t lifo(size_t size, int iters) {
    uint64_t bad = 0;
    __asm__ volatile("mov %%rsp, %0" : "=m"(loop_rsp));
    for (int it = 0; it < iters; it++) {
        for (size_t i = 0; i < 100; i++) {
            ptrs[i] = xmalloc(size);
            *(volatile uint32_t *)ptrs[i] = (uint32_t)i;
        }
        for (size_t i = 100; i-- > 0;) {
            if (*(volatile uint32_t *)ptrs[i] != (uint32_t)i) bad++;
            free(ptrs[i]);
        }
    }
    return bad;
}

__attribute__((noinline)) static uint64_t fifo(size_t size, size_t n, int rounds) {
    uint64_t bad = 0;
    __asm__ volatile("mov %%rsp, %0" : "=m"(loop_rsp));
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            ptrs[i] = xmalloc(size);
            *(volatile uint32_t *)ptrs[i] = (uint32_t)i;
        }
        for (size_t i = 0; i < n; i++) {
            if (*(volatile uint32_t *)ptrs[i] != (uint32_t)i) bad++;
            free(ptrs[i]);
        }
    }
    return bad;
}

/* -p: what malloc_simple 2000000 16 MAX runs before the slice (size, n) */
static uint64_t prefix(size_t size, size_t n) {
    uint64_t bad = 0;
    for (size_t s = 16; s < size; s *= 2)
        for (size_t c = 25; c <= 1600; c *= 4) bad += fifo(s, c, (int)(2000000 / c));
    for (size_t c = 25; c < n; c *= 4) bad += fifo(size, c, (int)(2000000 / c));
    return bad;
}

typedef struct {
    void *p;
    size_t size;
} slot_t;
static slot_t ws[400];

__attribute__((noinline)) static uint64_t mixed(rng_t *rng, int cycles, size_t hi) {
    uint64_t bad = 0;
    for (int i = 0; i < cycles; i++) {
        uint64_t r = rng_next(rng);
        slot_t *s = &ws[r % 400];
        if (s->p) {
            if (!tag_ok(s->p, (size_t)(s - ws), s->size)) bad++;
            free(s->p);
            s->p = NULL;
        } else {
            s->size = 8 + (size_t)((r >> 32) % (hi - 7));
            s->p = xmalloc(s->size);
            tag_block(s->p, (size_t)(s - ws), s->size);
        }
    }
    return bad;
}

/* -d: hakmem's bin of SIZE (16-byte classes up to 128 B), or NULL: malloc
 * starts with `add hak_tls@gottpoff(%rip),%rax` (48 03 05 disp32) */
static volatile uint32_t *find_bin(size_t size) {
    const unsigned char *m = (const unsigned char *)dlsym(RTLD_DEFAULT, "malloc");
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    if (!m || size % 16 || size > 128) return NULL;
    for (int i = 0; i < 40; i++)
        if (m[i] == 0x48 && m[i + 1] == 0x03 && m[i + 2] == 0x05) {
            int32_t d;
            long off;
            memcpy(&d, m + i + 3, 4);
            memcpy(&off, m + i + 7 + d, sizeof off);
            /* bins[c] is entry c + 1 (bin_none first), 32 bytes each */
            return (volatile uint32_t *)(tp + (uintptr_t)off + 32 * (size / 16));
        }
    return NULL;
}

/* the class's counter row (bin->ctr; it moves when the process publishes)
 * and its slow paths so far: ALLOC_SLOW + FREE_SLOW, counters 2 and 3 */
static const volatile uint64_t *ctr_row(volatile uint32_t *bin) {
    return bin ? *(uint64_t *volatile *)(bin + 2) : NULL;
}

static uint64_t slow_of(const volatile uint64_t *row) {
    return row ? row[2] + row[3] : 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *usage = "usage: min_trial [-p] [-d] t<size>|ms<size>|fs<size>x<N>|rm[<max>] TRIALS";
    int pre = 0, diag = 0;
    for (int o; (o = getopt(argc, argv, "pd")) != -1;) {
        if (o == 'p')
            pre = 1;
        else if (o == 'd')
            diag = 1;
        else
            die(usage);
    }
    if (argc - optind < 2) die(usage);
    const char *mode = argv[optind];
    int trials = (int)arg_long(argc, argv, optind + 1, 300, 1, 1000000);
    char k = mode[0], *end = "";
    size_t size = 0, n = 0, hi = 128;
    if (k == 't')
        size = strtoul(mode + 1, &end, 10), n = 100;
    else if (!strncmp(mode, "ms", 2))
        size = strtoul(mode + 2, &end, 10), n = 400;
    else if (!strncmp(mode, "fs", 2) && (size = strtoul(mode + 2, &end, 10), *end == 'x'))
        n = strtoul(end + 1, &end, 10);
    else if (!strncmp(mode, "rm", 2) && mode[2])
        hi = strtoul(mode + 2, &end, 10);
    else if (strcmp(mode, "rm"))
        die(usage);
    if (*end || (k == 'f' && (n < 1 || n > 1600)))
        die("min_trial: MODE is t<size>, ms<size>, fs<size>x<N> (N <= 1600), rm or rm<max>");
    if (hi < 8 || hi > 1 << 20) die("min_trial: rm<max> needs 8 <= max <= 1048576");
    if (k != 'r' && (size < 1 || size > 1 << 20)) die("min_trial: size must be 1-1048576");
    if ((pre && k != 'f') || (diag && k == 'r')) die("min_trial: -p is for fs, -d not for rm");
    double *v = xmalloc(sizeof(double) * (size_t)trials);
    rng_t rng;
    rng_seed(&rng, 1);
    uint64_t bad = pre ? prefix(size, n) : 0, slowops = 0, fast = 0;
    int rounds = n ? (int)(8000 / n) : 0; /* fs */
    volatile uint32_t *bin = diag ? find_bin(size) : NULL;
    for (int t = k == 'f' ? 0 : -20; t < trials; t++) { /* t < 0: warm-up */
        const volatile uint64_t *row = ctr_row(bin);
        uint64_t s0 = slow_of(row);
        double t0 = now_ns(), ops;
        if (k == 't') {
            bad += lifo(size, 80);
            ops = 8000;
        } else if (k == 'm') {
            bad += fifo(size, 25, 100) + fifo(size, 100, 25) + fifo(size, 400, 7);
            ops = 2500 + 2500 + 2800;
        } else if (k == 'f') {
            bad += fifo(size, n, rounds);
            ops = (double)rounds * (double)n;
        } else {
            bad += mixed(&rng, 8000, hi);
            ops = 8000;
        }
        if (t < 0) continue;
        v[t] = (now_ns() - t0) / ops;
        uint64_t slow = slow_of(row) - s0;
        slowops += slow;
        fast += slow == 0;
    }
    qsort(v, (size_t)trials, sizeof(double), cmp);
    printf("RESULT name=min_trial mode=%s trials=%d bad_tags=%llu min=%.3f p10=%.3f med=%.3f", mode,
           trials, (unsigned long long)bad, v[0], v[trials / 10], v[trials / 2]);
    if (pre) printf(" prefix=1");
    if (diag) {
        uintptr_t lo = UINTPTR_MAX, top = 0;
        for (size_t i = 0; i < n; i++) {
            uintptr_t a = (uintptr_t)(ptrs[i] = xmalloc(size));
            lo = a < lo ? a : lo;
            top = a > top ? a : top;
        }
        printf(" slowops=%llu fasttrials=%llu cap=%u ctr=%lx first=%lx last=%lx lo=%lx hi=%lx "
               "arr=%lx rsp=%lx",
               (unsigned long long)slowops, (unsigned long long)fast, bin ? bin[5] : 0,
               (unsigned long)(uintptr_t)ctr_row(bin), (unsigned long)(uintptr_t)ptrs[0],
               (unsigned long)(uintptr_t)ptrs[n - 1], (unsigned long)lo, (unsigned long)top,
               (unsigned long)(uintptr_t)ptrs, (unsigned long)loop_rsp);
        for (size_t i = 0; i < n; i++) free(ptrs[i]);
    }
    printf("\n");
    free(v);
    return bad ? 1 : 0;
}
