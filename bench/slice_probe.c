/* slice_probe — one slice of malloc_simple (SIZE, N: malloc N blocks, free
 * them in the same order), timed in many short trials in one process, with
 * the thread cache's slow paths counted per trial. Written to classify
 * processes as fast or slow (docs/allocator.md, "Bimodal processes").
 *
 *   slice_probe SIZE N TRIALS PAIRS_PER_TRIAL PREFIX
 *   e.g. slice_probe 16 400 300 8000 1      (under LD_PRELOAD=libhakmem.so)
 *
 * PREFIX 1 first runs what malloc_simple 2000000 runs before this slice
 * (smaller sizes, then N = 25, 100, ... of this size); 0 starts with it.
 * Prints one line: slowops (the class's alloc_slow + free_slow during the
 * trials), fasttrials (trials without one), min / p10 / med ns a pair (wall
 * clock), cpu_ns_pair (thread CPU time over all trials), the bin's cap, and
 * the addresses: counter row, first / last block handed out, the lowest and
 * highest, the pointer array, the loop's stack pointer.
 * hakmem only, and tied to its build: the bin is found from the thread
 * pointer and the GOT word of hak_tls that malloc's first add reads (the
 * fast path, lib/hak_alloc.h), its counter row through bin->ctr
 * (shm/hakmem_shm.h's counter order). Under another allocator it prints
 * the times and zeros. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uintptr_t loop_rsp;

__attribute__((noinline)) static uint64_t loop(void **arr, size_t size, size_t n, uint64_t rounds) {
    uint64_t bad = 0;
    __asm__ volatile("mov %%rsp, %0" : "=m"(loop_rsp));
    for (uint64_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            arr[i] = malloc(size);
            *(volatile uint32_t *)arr[i] = (uint32_t)i;
        }
        for (size_t i = 0; i < n; i++) {
            if (*(volatile uint32_t *)arr[i] != (uint32_t)i) bad++;
            free(arr[i]);
        }
    }
    return bad;
}

/* hakmem's bin of SIZE (16-byte classes up to 128 B), or NULL: malloc
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

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: slice_probe SIZE N TRIALS PAIRS_PER_TRIAL PREFIX\n");
        return 2;
    }
    size_t size = strtoul(argv[1], 0, 0), n = strtoul(argv[2], 0, 0);
    int trials = atoi(argv[3]);
    uint64_t pairs = strtoull(argv[4], 0, 0);
    int prefix = atoi(argv[5]);
    if (n < 1 || n > 1600 || trials < 10 || size < 1) return 2;
    void **arr = malloc(sizeof(void *) * 1600);
    uint64_t bad = 0;
    if (prefix) {
        for (size_t s = 16; s < size; s *= 2)
            for (size_t c = 25; c <= 1600; c *= 4) bad += loop(arr, s, c, 2000000 / c);
        for (size_t c = 25; c < n; c *= 4) bad += loop(arr, size, c, 2000000 / c);
    }
    uint64_t rounds = (pairs / n) ? (pairs / n) : 1, slowops = 0, fast = 0;
    double *t = malloc(sizeof(double) * (size_t)trials);
    volatile uint32_t *bin = find_bin(size);
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    for (int k = 0; k < trials; k++) {
        /* counter row: bin->ctr; ALLOC_SLOW, FREE_SLOW are counters 2, 3 */
        const volatile uint64_t *row = bin ? *(uint64_t *volatile *)(bin + 2) : NULL;
        uint64_t s0 = row ? row[2] + row[3] : 0;
        double t0 = now_ns();
        bad += loop(arr, size, n, rounds);
        t[k] = (now_ns() - t0) / (double)(rounds * n);
        uint64_t s = row ? row[2] + row[3] - s0 : 0;
        slowops += s;
        fast += s == 0;
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
    qsort(t, (size_t)trials, sizeof *t, cmpd);
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        arr[i] = malloc(size);
        uintptr_t a = (uintptr_t)arr[i];
        if (a < lo) lo = a;
        if (a > hi) hi = a;
    }
    uintptr_t first = (uintptr_t)arr[0], last = (uintptr_t)arr[n - 1];
    for (size_t i = 0; i < n; i++) free(arr[i]);
    printf("slowops=%llu fasttrials=%llu min=%.3f p10=%.3f med=%.3f cpu_ns_pair=%.3f cap=%u "
           "ctr=%lx first=%lx last=%lx lo=%lx hi=%lx arr=%lx rsp=%lx bad=%llu\n",
           (unsigned long long)slowops, (unsigned long long)fast, t[0], t[trials / 10],
           t[trials / 2], cpu / (double)((uint64_t)trials * rounds * n), bin ? bin[5] : 0,
           bin ? (unsigned long)*(uint64_t *volatile *)(bin + 2) : 0UL, (unsigned long)first,
           (unsigned long)last, (unsigned long)lo, (unsigned long)hi, (unsigned long)arr,
           (unsigned long)loop_rsp, (unsigned long long)bad);
    free(t);
    free(arr);
    return bad ? 1 : 0;
}
