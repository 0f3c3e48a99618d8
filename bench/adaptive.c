/* adaptive.c — a phase-shifting workload: what a live tuner (hakmemd) is
 * worth against fixed knobs. It cycles through phases whose best allocator
 * settings differ, and prints throughput and RSS every 0.5 s:
 *
 *   small     small-object churn (16-512 B, random slots): defaults are right
 *   prodcons  producer/consumer, most frees cross-thread (32-256 B)
 *   mid       8-64 KiB buffers, touched
 *   big       64 KiB-4 MiB buffers, touched
 *   huge      5-25 MiB blocks allocated, touched and freed in a loop: each
 *             miss of the large-block cache is an mmap, page faults, munmap
 *   idle      a large burst (allocated, written, freed), then a trickle:
 *             how fast does the memory go back to the OS?
 *
 * Usage: adaptive [--quick] [--phase-s S] [--cycles N] [--threads T]
 *                 [--seed N] [--burst-mb M] [--only PHASE]
 * --only runs one phase per cycle (small, prodcons, ...): to measure one
 * phase's rate under a configuration without the others around it.
 * Output (stdout, whitespace-separated, one record a line):
 *   # adaptive seed=.. threads=.. phase_s=.. idle_s=.. cycles=.. start_epoch=..
 *   tick  T PHASE OPS_PER_S RSS_MIB CPUS      every 0.5 s (T from the start)
 *   burst T RSS_MIB                           idle phase: burst just freed
 *   phase NAME CYCLE T_START T_END OPS CPU_S  one per phase run
 * CPUS is the process's CPU time in the tick over the tick's length (cores
 * busy), CPU_S the CPU seconds of the phase: on a shared machine ops per CPU
 * second is the figure other processes disturb least.
 *   RESULT ops=.. secs=.. rss_mib_s=..
 * An op is one allocation freed again (a trickle op in idle, a whole touched
 * block in mid/big/huge). Ops of different phases are not comparable: compare
 * a phase with itself under another configuration. */
#include "bench_util.h"

#include <stdatomic.h>
#include <sys/time.h>
#include <unistd.h>

enum { P_SMALL, P_PRODCONS, P_MID, P_BIG, P_HUGE, P_IDLE, P_N };
static const char *phase_name[P_N] = {"small", "prodcons", "mid", "big", "huge", "idle"};

#define MAX_THREADS 16
#define RING_CAP 4096 /* power of two */
#define TICK_S 0.5

struct ring { /* single producer, single consumer */
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
    void *slot[RING_CAP];
};

struct worker {
    _Alignas(64) atomic_uint_fast64_t ops; /* written by its worker only */
    int id;
    uint64_t seed;
};

static atomic_int g_phase = P_SMALL;
static atomic_int g_stop;
static atomic_int g_pc_active;   /* prodcons: workers still producing */
static atomic_int g_burst_freed; /* idle: workers whose burst is freed (reset per run) */
static int g_threads = 2;
static size_t g_burst_bytes; /* per worker */
static struct ring *g_ring;  /* g_ring[w]: blocks sent to worker w */
static struct worker g_worker[MAX_THREADS];
static long g_page;

static double rss_mib(void) {
    long size, res;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    return n == 2 ? (double)res * (double)g_page / 1048576.0 : 0;
}

static int phase_is(int p) {
    return atomic_load_explicit(&g_phase, memory_order_relaxed) == p &&
           !atomic_load_explicit(&g_stop, memory_order_relaxed);
}

static void count(struct worker *w, uint64_t *ops, uint64_t n) {
    *ops += n;
    atomic_store_explicit(&w->ops, *ops, memory_order_relaxed);
}

/* Writes a byte on every page: fresh memory costs its page faults. */
static void touch(char *p, size_t n) {
    for (size_t i = 0; i < n; i += (size_t)g_page) p[i] = (char)i;
    p[n - 1] = 1;
}

/* Random-slot churn: free a slot, allocate a new size there, touch it. */
static void churn(struct worker *w, uint64_t *ops, rng_t *r, int p, int nslots, size_t lo,
                  size_t hi, int touch_pages) {
    void **slot = calloc((size_t)nslots, sizeof(void *));
    if (!slot) die("calloc");
    while (phase_is(p)) {
        for (int k = 0; k < 64; k++) {
            int i = (int)(rng_next(r) % (uint64_t)nslots);
            size_t n = rng_range(r, lo, hi);
            free(slot[i]);
            char *b = xmalloc(n);
            if (touch_pages)
                touch(b, n);
            else
                b[0] = (char)n;
            slot[i] = b;
        }
        count(w, ops, 64);
    }
    for (int i = 0; i < nslots; i++) free(slot[i]);
    free(slot);
}

static void prodcons(struct worker *w, uint64_t *ops, rng_t *r) {
    struct ring *out = &g_ring[(w->id + 1) % g_threads], *in = &g_ring[w->id];
    int producing = 1;
    if (!phase_is(P_PRODCONS)) return;
    atomic_fetch_add(&g_pc_active, 1);
    for (;;) {
        if (producing && !phase_is(P_PRODCONS)) {
            producing = 0;
            atomic_fetch_sub(&g_pc_active, 1);
        }
        if (producing) { /* up to 32 blocks for the next worker to free */
            size_t h = atomic_load_explicit(&out->head, memory_order_relaxed);
            size_t t = atomic_load_explicit(&out->tail, memory_order_acquire);
            for (int k = 0; k < 32; k++) {
                void *b = xmalloc(rng_range(r, 32, 256));
                *(char *)b = 1;
                if (h - t >= RING_CAP) {
                    free(b); /* the consumer lags: a local free (the minority) */
                    count(w, ops, 1);
                    continue;
                }
                out->slot[h & (RING_CAP - 1)] = b;
                h++;
            }
            atomic_store_explicit(&out->head, h, memory_order_release);
        }
        size_t t = atomic_load_explicit(&in->tail, memory_order_relaxed);
        size_t h = atomic_load_explicit(&in->head, memory_order_acquire);
        int n = 0;
        for (; t != h && n < 64; t++, n++) free(in->slot[t & (RING_CAP - 1)]);
        atomic_store_explicit(&in->tail, t, memory_order_release);
        if (n) count(w, ops, (uint64_t)n);
        /* done when no one produces any more and our ring is empty (a worker
         * that joins late leaves at most a batch for the next run) */
        if (!producing && n == 0 && atomic_load(&g_pc_active) == 0 &&
            atomic_load_explicit(&in->head, memory_order_acquire) == t)
            return;
    }
}

static void huge(struct worker *w, uint64_t *ops, rng_t *r) {
    while (phase_is(P_HUGE)) {
        size_t n = rng_range(r, 5u << 20, 25u << 20);
        char *b = xmalloc(n);
        touch(b, n);
        free(b);
        count(w, ops, 1);
    }
}

static void idle(struct worker *w, uint64_t *ops, rng_t *r) {
    size_t cap = g_burst_bytes / 1024 + 1, n = 0, bytes = 0;
    void **keep = xmalloc(cap * sizeof(void *));
    while (bytes < g_burst_bytes && n < cap && phase_is(P_IDLE)) {
        size_t sz = rng_range(r, 1024, 32768);
        keep[n] = xmalloc(sz);
        memset(keep[n++], 7, sz);
        bytes += sz;
    }
    for (size_t i = 0; i < n; i++) free(keep[i]);
    free(keep);
    atomic_fetch_add(&g_burst_freed, 1);
    /* an idle service still allocates a little: timers, logging */
    while (phase_is(P_IDLE)) {
        for (int k = 0; k < 16; k++) {
            char *b = xmalloc(rng_range(r, 16, 65536));
            b[0] = 1;
            free(b);
        }
        count(w, ops, 16);
        usleep(20000);
    }
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    uint64_t ops = 0;
    rng_t r;
    rng_seed(&r, w->seed);
    while (!atomic_load(&g_stop)) {
        switch (atomic_load(&g_phase)) {
        case P_SMALL:
            churn(w, &ops, &r, P_SMALL, 4096, 16, 512, 0);
            break;
        case P_PRODCONS:
            prodcons(w, &ops, &r);
            break;
        case P_MID:
            churn(w, &ops, &r, P_MID, 256, 8u << 10, 64u << 10, 1);
            break;
        case P_BIG:
            churn(w, &ops, &r, P_BIG, 8, 64u << 10, 4u << 20, 1);
            break;
        case P_HUGE:
            huge(w, &ops, &r);
            break;
        case P_IDLE:
            idle(w, &ops, &r);
            break;
        }
    }
    return NULL;
}

static uint64_t total_ops(void) {
    uint64_t s = 0;
    for (int i = 0; i < g_threads; i++)
        s += atomic_load_explicit(&g_worker[i].ops, memory_order_relaxed);
    return s;
}

static double cpu_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
    double d = t - now_sec();
    if (d > 0) usleep((useconds_t)(d * 1e6));
}

int main(int argc, char **argv) {
    double phase_s = 15, idle_s = -1;
    int cycles = 2, quick = 0, only = -1;
    long seed = 1, burst_mb = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            quick = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: adaptive [--quick] [--phase-s S] [--cycles N] [--threads T] "
                            "[--seed N] [--burst-mb M] [--only PHASE]\n");
            return 2;
        }
        if (!strcmp(a, "--phase-s"))
            phase_s = atof(v);
        else if (!strcmp(a, "--cycles"))
            cycles = atoi(v);
        else if (!strcmp(a, "--threads"))
            g_threads = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = atol(v);
        else if (!strcmp(a, "--burst-mb"))
            burst_mb = atol(v);
        else if (!strcmp(a, "--only")) {
            for (int p = 0; p < P_N; p++)
                if (!strcmp(v, phase_name[p])) only = p;
            if (only < 0) {
                fprintf(stderr, "adaptive: unknown phase %s\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "adaptive: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (quick && phase_s == 15) phase_s = 4;
    if (phase_s < 1 || phase_s > 600 || cycles < 1 || cycles > 100 || g_threads < 1 ||
        g_threads > MAX_THREADS || burst_mb < 1 || burst_mb > 65536) {
        fprintf(stderr, "adaptive: parameter out of range\n");
        return 2;
    }
    /* the idle phase lasts long enough to see the memory go back (>= 6 s) */
    idle_s = phase_s < 6 ? 6 : phase_s;
    phase_s = (double)(long)(phase_s / TICK_S) * TICK_S;
    g_page = sysconf(_SC_PAGESIZE);
    g_burst_bytes = (size_t)burst_mb * 1048576 / (size_t)g_threads;
    g_ring = calloc((size_t)g_threads, sizeof(struct ring));
    if (!g_ring) die("calloc");
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("# adaptive pid=%d seed=%ld threads=%d phase_s=%.1f idle_s=%.1f cycles=%d burst_mb=%ld "
           "start_epoch=%.3f\n",
           (int)getpid(), seed, g_threads, phase_s, idle_s, cycles, burst_mb,
           (double)tv.tv_sec + tv.tv_usec / 1e6);
    pthread_t th[MAX_THREADS];
    if (only >= 0) atomic_store(&g_phase, only); /* workers start in it */
    for (int i = 0; i < g_threads; i++) {
        g_worker[i].id = i;
        g_worker[i].seed = (uint64_t)seed * 1000003u + (uint64_t)i;
        if (pthread_create(&th[i], NULL, worker_main, &g_worker[i])) die("pthread_create");
    }

    double t0 = now_sec(), next = t0, rss_s = 0, last_cpu = cpu_sec();
    uint64_t last_ops = 0, all_ops = 0;
    int bursts_seen = 0;
    for (int c = 1; c <= cycles; c++) {
        for (int p = 0; p < P_N; p++) {
            if (only >= 0 && p != only) continue;
            double len = p == P_IDLE ? idle_s : phase_s;
            double start = next - t0;
            uint64_t phase_ops = 0;
            double phase_cpu = 0;
            if (p == P_IDLE) atomic_store(&g_burst_freed, 0);
            atomic_store(&g_phase, p);
            for (int k = 0; k < (int)(len / TICK_S + 0.5); k++) {
                next += TICK_S;
                while (now_sec() < next) {
                    /* the burst's end is an event worth its own timestamp */
                    if (p == P_IDLE && bursts_seen < c &&
                        atomic_load(&g_burst_freed) >= g_threads) {
                        bursts_seen = c;
                        printf("burst %.3f %.1f\n", now_sec() - t0, rss_mib());
                    }
                    double until = now_sec() + 0.01;
                    sleep_until(until < next ? until : next);
                }
                uint64_t ops = total_ops();
                double rss = rss_mib(), cpu = cpu_sec();
                printf("tick %.2f %s %.0f %.1f %.3f\n", next - t0, phase_name[p],
                       (double)(ops - last_ops) / TICK_S, rss, (cpu - last_cpu) / TICK_S);
                phase_cpu += cpu - last_cpu;
                last_cpu = cpu;
                rss_s += rss * TICK_S;
                phase_ops += ops - last_ops;
                last_ops = ops;
            }
            all_ops += phase_ops;
            printf("phase %s %d %.2f %.2f %llu %.3f\n", phase_name[p], c, start, next - t0,
                   (unsigned long long)phase_ops, phase_cpu);
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < g_threads; i++) pthread_join(th[i], NULL);
    printf("RESULT ops=%llu secs=%.2f rss_mib_s=%.0f\n", (unsigned long long)all_ops,
           now_sec() - t0, rss_s);
    return 0;
}
