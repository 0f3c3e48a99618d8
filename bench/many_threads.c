/* many_threads — what each live thread costs: resident and address space.
 *
 *   many_threads THREADS BLOCKS MIN_SIZE MAX_SIZE SEED [LATE_MS]
 *   e.g. many_threads 1000 12 16 1024 1
 * LATE_MS (default 0): the threads start after that long, and a few
 * mallocs, as a server's pool does once the program runs (hakmem's live
 * segment appears 50 ms after start, at a malloc).
 *
 * Starts THREADS threads (128 KiB stacks, the same for every allocator);
 * each mallocs BLOCKS blocks of random size in [MIN, MAX], writes them and
 * waits. Once all hold their blocks, the main thread reads VmRSS and VmSize
 * from /proc/self/status, then lets them free their blocks and exit. A
 * server with a pool of hundreds of mostly idle threads pays this.
 * Result (KiB): rss_delta_kb and vm_delta_kb, the growth over the values
 * read before the first thread started; per_thread_kb = rss_delta / THREADS;
 * anon_delta_kb and shmem_delta_kb split rss_delta into private memory and
 * shared-memory mappings (RssAnon, RssShmem: hakmem's counter slots). */
#include "bench_util.h"

#include <unistd.h>

typedef struct {
    size_t blocks, lo, hi;
    rng_t rng;
    uint64_t bad;
} task_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;

static long status_kb(const char *key) {
    char line[256];
    long kb = -1;
    size_t k = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) die("open /proc/self/status");
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') kb = strtol(line + k + 1, NULL, 10);
    fclose(f);
    return kb;
}

static void *worker(void *arg) {
    task_t *t = arg;
    char *p[64];
    size_t n[64];
    for (size_t i = 0; i < t->blocks; i++) {
        n[i] = rng_range(&t->rng, t->lo, t->hi);
        p[i] = xmalloc(n[i]);
        memset(p[i], (int)tag_of(i, n[i]), n[i]);
    }
    pthread_mutex_lock(&lock);
    ready++;
    pthread_cond_broadcast(&cv);
    while (!go) pthread_cond_wait(&cv, &lock);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < t->blocks; i++) {
        t->bad += !tag_ok(p[i], i, n[i]);
        free(p[i]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: many_threads THREADS BLOCKS MIN_SIZE MAX_SIZE SEED [LATE_MS]");
    int nthreads = (int)arg_long(argc, argv, 1, 1000, 1, 100000);
    size_t blocks = (size_t)arg_long(argc, argv, 2, 12, 1, 64);
    size_t lo = (size_t)arg_long(argc, argv, 3, 16, 1, 1 << 24);
    size_t hi = (size_t)arg_long(argc, argv, 4, 1024, (long)lo, 1 << 24);
    long seed = arg_long(argc, argv, 5, 1, 0, 1L << 62);
    long late_ms = argc > 6 ? arg_long(argc, argv, 6, 0, 0, 60000) : 0;
    if (late_ms) {
        usleep((useconds_t)late_ms * 1000);
        for (size_t sz = 16; sz <= 4096; sz *= 2) free(xmalloc(sz));
    }
    task_t *tasks = xmalloc(sizeof(task_t) * (size_t)nthreads);
    pthread_t *th = xmalloc(sizeof(pthread_t) * (size_t)nthreads);
    rng_t master;
    rng_seed(&master, (uint64_t)seed);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 << 10);
    long rss0 = status_kb("VmRSS"), vm0 = status_kb("VmSize"), anon0 = status_kb("RssAnon"),
         shm0 = status_kb("RssShmem");
    double t0 = now_sec();
    for (int i = 0; i < nthreads; i++) {
        tasks[i] = (task_t){.blocks = blocks, .lo = lo, .hi = hi};
        rng_seed(&tasks[i].rng, rng_next(&master));
        if (pthread_create(&th[i], &attr, worker, &tasks[i])) die("pthread_create");
    }
    pthread_mutex_lock(&lock);
    while (ready < nthreads) pthread_cond_wait(&cv, &lock);
    pthread_mutex_unlock(&lock);
    long rss1 = status_kb("VmRSS"), vm1 = status_kb("VmSize"), anon1 = status_kb("RssAnon"),
         shm1 = status_kb("RssShmem");
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lock);
    uint64_t bad = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        bad += tasks[i].bad;
    }
    double elapsed = now_sec() - t0;
    free(tasks);
    free(th);
    printf("RESULT name=many_threads threads=%d blocks=%zu min=%zu max=%zu seed=%ld bad_tags=%llu "
           "rss_before_kb=%ld vm_before_kb=%ld rss_delta_kb=%ld vm_delta_kb=%ld "
           "anon_delta_kb=%ld shmem_delta_kb=%ld per_thread_kb=%.1f elapsed=%.4f "
           "ops_per_sec=%.1f\n",
           nthreads, blocks, lo, hi, seed, (unsigned long long)bad, rss0, vm0, rss1 - rss0,
           vm1 - vm0, anon1 - anon0, shm1 - shm0, (double)(rss1 - rss0) / nthreads, elapsed,
           nthreads / elapsed);
    return bad ? 1 : 0;
}
