/* hak_mallinfo.c — glibc's introspection API: mallinfo, mallinfo2,
 * malloc_stats, malloc_info, mallopt.
 *
 * The figures come from hak_usage, process-private atomics kept on the slow
 * paths that map, carve and give back memory, never from the shared segment
 * (any process of the user may write there). Their grain is the span: "in
 * use" is the bytes of spans carved for classes (blocks handed out plus the
 * free blocks of those spans), as glibc counts a chunk held by its tcache as
 * in use. Output is formatted into a stack buffer first and written with one
 * fwrite, outside every allocator lock, so a FILE that allocates its buffer
 * re-enters malloc safely. */
#include "hak_internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#ifdef HAK_API_PREFIX
#define HAK_API(name) hak_test_##name
#else
#define HAK_API(name) name
#endif

struct hak_usage hak_usage;

static void store_max(size_t *max, size_t v) {
    size_t m = __atomic_load_n(max, __ATOMIC_RELAXED);
    bool done = v <= m;
    while (!done) /* a failed exchange reloads m */
        done = v <= m ||
               __atomic_compare_exchange_n(max, &m, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void hak_usage_large(long n, long bytes) {
    size_t cn = __atomic_add_fetch(&hak_usage.large_n, (size_t)n, __ATOMIC_RELAXED);
    size_t cb = __atomic_add_fetch(&hak_usage.large_bytes, (size_t)bytes, __ATOMIC_RELAXED);
    store_max(&hak_usage.large_max_n, cn);
    store_max(&hak_usage.large_max_bytes, cb);
    store_max(&hak_usage.system_max, cb + __atomic_load_n(&hak_usage.seg_bytes, __ATOMIC_RELAXED));
}

void hak_usage_seg(long bytes) {
    size_t s = __atomic_add_fetch(&hak_usage.seg_bytes, (size_t)bytes, __ATOMIC_RELAXED);
    store_max(&hak_usage.system_max, s + __atomic_load_n(&hak_usage.large_bytes, __ATOMIC_RELAXED));
}

struct figures {
    size_t seg, span, large_n, large, max_n, max_bytes, system_max;
};

static struct figures figures(void) {
    struct figures f;
#define L(x) __atomic_load_n(&hak_usage.x, __ATOMIC_RELAXED)
    f.seg = L(seg_bytes);
    f.span = L(span_bytes);
    f.large_n = L(large_n);
    f.large = L(large_bytes);
    f.max_n = L(large_max_n);
    f.max_bytes = L(large_max_bytes);
    f.system_max = L(system_max);
#undef L
    if (f.span > f.seg) f.span = f.seg; /* read at different moments */
    return f;
}

/* arena: segments mapped; uordblks: spans carved; fordblks: the rest of
 * the segments (free pages, headers); hblks/hblkhd: large-block mappings
 * (live and cached); keepcost: what malloc_trim could give back at once,
 * the free pages of the segments. */
HAK_EXPORT struct mallinfo2 HAK_API(mallinfo2)(void) {
    struct figures f = figures();
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof(mi));
    mi.arena = f.seg;
    mi.ordblks = 1;
    mi.hblks = f.large_n;
    mi.hblkhd = f.large;
    mi.uordblks = f.span;
    mi.fordblks = f.seg - f.span;
    mi.keepcost = f.seg - f.span;
    return mi;
}

/* glibc's: the same figures, truncated to int. */
HAK_EXPORT struct mallinfo HAK_API(mallinfo)(void) {
    struct mallinfo2 m2 = HAK_API(mallinfo2)();
    struct mallinfo mi;
    mi.arena = (int)m2.arena;
    mi.ordblks = (int)m2.ordblks;
    mi.smblks = (int)m2.smblks;
    mi.hblks = (int)m2.hblks;
    mi.hblkhd = (int)m2.hblkhd;
    mi.usmblks = (int)m2.usmblks;
    mi.fsmblks = (int)m2.fsmblks;
    mi.uordblks = (int)m2.uordblks;
    mi.fordblks = (int)m2.fordblks;
    mi.keepcost = (int)m2.keepcost;
    return mi;
}

/* glibc's layout: one arena (the segments), then the total with mmap. */
HAK_EXPORT void HAK_API(malloc_stats)(void) {
    struct figures f = figures();
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "Arena 0:\n"
                     "system bytes     = %10zu\n"
                     "in use bytes     = %10zu\n"
                     "Total (incl. mmap):\n"
                     "system bytes     = %10zu\n"
                     "in use bytes     = %10zu\n"
                     "max mmap regions = %10zu\n"
                     "max mmap bytes   = %10zu\n",
                     f.seg, f.span, f.seg + f.large, f.span + f.large, f.max_n, f.max_bytes);
    if (n > 0) fwrite(buf, 1, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1, stderr);
}

/* glibc's <malloc version="1"> document: one heap (the segments), the
 * large mappings as "mmap". options must be 0 (glibc: EINVAL). */
HAK_EXPORT int HAK_API(malloc_info)(int options, FILE *fp) {
    if (options != 0) return EINVAL;
    struct figures f = figures();
    size_t free_b = f.seg - f.span;
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "<malloc version=\"1\">\n"
                     "<heap nr=\"0\">\n"
                     "<sizes>\n"
                     "</sizes>\n"
                     "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                     "<total type=\"rest\" count=\"%d\" size=\"%zu\"/>\n"
                     "<system type=\"current\" size=\"%zu\"/>\n"
                     "<system type=\"max\" size=\"%zu\"/>\n"
                     "<aspace type=\"total\" size=\"%zu\"/>\n"
                     "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                     "</heap>\n"
                     "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                     "<total type=\"rest\" count=\"%d\" size=\"%zu\"/>\n"
                     "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
                     "<system type=\"current\" size=\"%zu\"/>\n"
                     "<system type=\"max\" size=\"%zu\"/>\n"
                     "<aspace type=\"total\" size=\"%zu\"/>\n"
                     "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                     "</malloc>\n",
                     free_b != 0, free_b, f.seg, f.system_max, f.seg, f.seg, free_b != 0, free_b,
                     f.large_n, f.large, f.seg + f.large, f.system_max, f.seg + f.large,
                     f.seg + f.large);
    if (n <= 0 || (size_t)n >= sizeof buf) return EINVAL;
    return fwrite(buf, 1, (size_t)n, fp) == (size_t)n ? 0 : -1;
}

/* Sets a global knob as a manual setting of this process, and publishes it
 * so hakctl shows it (and a reload from the segment keeps it). */
static void knob_set(int k, int64_t v) {
    hak_fork_check(); /* a fork child publishes into its own segment, not its parent's */
    if (hak_shm) hak_knobs_reload(); /* take a tool's pending change first */
    hak_knobs.val[hak_knob_slot(k, 0)] = (int32_t)hak_knob_clamp(k, v);
    hak_knobs.owner[hak_knob_slot(k, 0)] = HAK_OWNER_MANUAL;
    hak_publish_knobs();
}

/* glibc's options, mapped onto hakmem where one has a meaning:
 *   M_TRIM_THRESHOLD  free memory kept mapped: seg_cache = value / 4 MiB
 *                     (empty segments kept for reuse; a negative value, as
 *                     glibc's "never trim", keeps the most the knob allows)
 *   M_MXFAST          glibc's range check (0..160), no effect: no fastbins
 * and accepted as documented no-ops (returning 1, the values glibc takes):
 *   M_TOP_PAD, M_MMAP_THRESHOLD (blocks above 1 MiB are always mapped
 *   alone, below from classes), M_MMAP_MAX, M_CHECK_ACTION (invalid frees
 *   always abort), M_PERTURB, M_ARENA_TEST and M_ARENA_MAX (a heap per
 *   thread, no arenas).
 * Unknown options return 0. */
HAK_EXPORT int HAK_API(mallopt)(int param, int value) {
    if (!HAK_READY()) hak_init();
    switch (param) {
    case M_TRIM_THRESHOLD:
        knob_set(HAK_KNOB_SEG_CACHE,
                 value < 0 ? INT64_MAX : (int64_t)value / (int64_t)HAK_SEG_SIZE);
        return 1;
    case M_MXFAST:
        return value >= 0 && value <= 80 * (int)sizeof(size_t) / 4;
    case M_TOP_PAD:
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_PERTURB:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
        return 1;
    default:
        return 0;
    }
}
