/* frag_rss — how much memory comes back after a scattered mass free.
 *
 *   frag_rss TOTAL_MIB KEEP_PERCENT SLEEP_MS SEED
 *   e.g. frag_rss 300 10 1500 1
 *
 * Mallocs about TOTAL_MIB of mixed sizes (by count 70 % 16-256 B, 25 %
 * 257 B-4 KiB, 5 % 4-32 KiB) and writes every byte, then frees all blocks
 * but a random KEEP_PERCENT (the survivors are scattered over the whole
 * heap, like a long-lived cache after a burst). Resident memory is read
 * right after the free, after sleeping SLEEP_MS (allocators that purge on a
 * timer or from a background thread), and after malloc_trim(0) when the
 * process has that symbol (looked up with dlsym, so the preloaded
 * allocator's own one is used if it exports one).
 * Results (KiB): peak_rss_kb (VmHWM), live_kb (bytes still allocated),
 * rss_after_free_kb, rss_after_sleep_kb, rss_after_trim_kb; ops_per_sec counts
 * the mallocs and frees of the fill and free phases.                       */
#include "bench_util.h"

#include <dlfcn.h>
#include <unistd.h>

static long rss_kb(void) {
    long pages_total, pages_resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) die("read statm");
    fclose(f);
    return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long hwm_kb(void) {
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) die("open status");
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static size_t pick_size(rng_t *r) {
    uint64_t c = rng_next(r) % 100;
    if (c < 70) return rng_range(r, 16, 256);
    if (c < 95) return rng_range(r, 257, 4096);
    return rng_range(r, 4097, 32768);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    if (argc < 5) die("usage: frag_rss TOTAL_MIB KEEP_PERCENT SLEEP_MS SEED");
    size_t total = (size_t)arg_long(argc, argv, 1, 300, 1, 1 << 16) << 20;
    long keep_pct = arg_long(argc, argv, 2, 10, 0, 100);
    long nap_ms = arg_long(argc, argv, 3, 1500, 0, 60000);
    long seed = arg_long(argc, argv, 4, 1, 0, 1L << 62);

    /* Pass 1 only counts the blocks, so the pointer arrays are sized once. */
    rng_t sizes, keeps;
    size_t n = 0;
    rng_seed(&sizes, (uint64_t)seed);
    for (size_t sum = 0; sum < total; n++) sum += pick_size(&sizes);
    char **blk = xmalloc(n * sizeof(*blk));
    unsigned *len = xmalloc(n * sizeof(*len));

    double t0 = now_sec();
    rng_seed(&sizes, (uint64_t)seed);
    for (size_t i = 0; i < n; i++) {
        len[i] = (unsigned)pick_size(&sizes);
        blk[i] = xmalloc(len[i]);
        memset(blk[i], (int)tag_of(i, len[i]), len[i]);
    }
    long rss_full = rss_kb();

    size_t live = 0, bad = 0, freed = 0;
    rng_seed(&keeps, (uint64_t)seed ^ 0x5eed);
    for (size_t i = 0; i < n; i++) {
        if ((long)(rng_next(&keeps) % 100) < keep_pct) {
            live += len[i];
            continue;
        }
        bad += !tag_ok(blk[i], i, len[i]);
        free(blk[i]);
        blk[i] = NULL;
        freed++;
    }
    double elapsed = now_sec() - t0;
    long rss_free = rss_kb();
    sleep_ms(nap_ms);
    long rss_sleep = rss_kb();

    int (*trim)(size_t) = (int (*)(size_t))dlsym(RTLD_DEFAULT, "malloc_trim");
    const char *trim_lib = "none";
    Dl_info info;
    if (trim) {
        trim(0);
        if (dladdr((void *)trim, &info) && info.dli_fname)
            trim_lib =
                strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
    }
    long rss_trim = rss_kb();
    long peak = hwm_kb();

    for (size_t i = 0; i < n; i++) {
        if (!blk[i]) continue;
        bad += !tag_ok(blk[i], i, len[i]);
        free(blk[i]);
    }
    free(blk);
    free(len);
    printf("RESULT name=frag_rss total_mib=%zu keep_pct=%ld sleep_ms=%ld seed=%ld blocks=%zu "
           "bad_tags=%zu trim=%s live_kb=%zu rss_full_kb=%ld peak_rss_kb=%ld rss_after_free_kb=%ld "
           "rss_after_sleep_kb=%ld rss_after_trim_kb=%ld elapsed=%.4f ops_per_sec=%.0f\n",
           total >> 20, keep_pct, nap_ms, seed, n, bad, trim_lib, live >> 10, rss_full, peak,
           rss_free, rss_sleep, rss_trim, elapsed, (double)(n + freed) / elapsed);
    return bad ? 1 : 0;
}
