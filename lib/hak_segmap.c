/* hak_segmap.c — the segment map (layout and reasons in hak_internal.h):
 * the authoritative two-level map, the fast path's window, and placing
 * segments inside the window.
 *
 * Writers are slow paths only: a segment or large mapping being created or
 * released (its creator or releaser is the only writer of its chunks). A
 * leaf is made by whoever first records a chunk of its 64 GiB; racing
 * makers CAS the top-level pointer and the loser unmaps its copy. The window
 * base is claimed (CAS) by the first segment mapped, before it is recorded,
 * so no SEG entry ever predates the base; a fork child inherits both maps
 * and the base as they are.
 *
 * HAKMEM_TEST_SEGWIN=N (tests only, read once with the first segment)
 * shrinks the window to N chunks (0: no window), so that segments fall
 * outside it and every free of theirs takes the slow path (tests/t_segwin.sh).
 * The fast path does not read it: chunks past N are simply never recorded. */
#include "hak_internal.h"

#include <stdlib.h>
#include <sys/mman.h>

uint8_t *hak_segmap_top[HAK_MAP_TOP_N - HAK_MAP_TOP_HI] HAK_SPARSE_BSS("hak_segmap_top");
uint8_t *hak_segmap_top_hi[HAK_MAP_TOP_HI];
uint8_t hak_pagewin[HAK_PAGEWIN_N] HAK_SPARSE_BSS("hak_pagewin");
uintptr_t hak_segwin_base = HAK_WIN_UNSET;
uintptr_t hak_pagewin_base = HAK_WIN_UNSET;
static uintptr_t win_n = HAK_WIN_N;     /* chunks of the window in use (test: fewer) */
static uintptr_t win_low = UINTPTR_MAX; /* lowest window chunk ever a segment: hint below it */
static uintptr_t hint_step = 1;         /* next try this far below win_low: doubles when taken */

static uintptr_t chunk_of(uintptr_t a) {
    return a >> HAK_SEG_SHIFT;
}

/* a's leaf, mapped if make and missing; NULL if there is none. */
static uint8_t *leaf_of(uintptr_t a, bool make) {
    uint8_t **slot = hak_segmap_slot(a);
    uint8_t *leaf = NULL;
    if (!make) return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    /* a compare-exchange (a write) reads it: the top level's page, fresh,
     * then faults once, not as a read (the zero page) and then a write */
    __atomic_compare_exchange_n(slot, &leaf, NULL, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE);
    if (leaf) return leaf;
    uint8_t *fresh = hak_sys_mmap(NULL, HAK_MAP_LEAF_N, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fresh == MAP_FAILED) return NULL; /* errno ENOMEM: the caller's retry path */
    if (__atomic_compare_exchange_n(slot, &leaf, fresh, false, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
        return fresh;
    hak_sys_munmap(fresh, HAK_MAP_LEAF_N); /* another thread published one first */
    return leaf;
}

bool hak_segmap_prepare(uintptr_t a) {
    return (a >> HAK_ADDR_BITS) == 0 && leaf_of(a, true) != NULL;
}

static uintptr_t window_size(void) {
    return __atomic_load_n(&win_n, __ATOMIC_RELAXED);
}

/* The window's base, claimed around chunk c if there is none yet; UNSET
 * when the test turned the window off. */
static uintptr_t window_claim(uintptr_t c) {
    uintptr_t base = __atomic_load_n(&hak_segwin_base, __ATOMIC_ACQUIRE);
    if (base != HAK_WIN_UNSET) return base;
    uintptr_t n = HAK_WIN_N;
    const char *t = hak_getenv("HAKMEM_TEST_SEGWIN");
    if (t && *t) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if (*end == 0 && v < n) n = v;
    }
    __atomic_store_n(&win_n, n, __ATOMIC_RELAXED); /* racing claimers store the same */
    if (n == 0) return HAK_WIN_UNSET;
    /* centred on c (mmap goes down or up from here), kept below 2^47 */
    uintptr_t want = c > n / 2 ? c - n / 2 : 0;
    if (want > HAK_MAP_CHUNKS - n) want = HAK_MAP_CHUNKS - n;
    if (__atomic_compare_exchange_n(&hak_segwin_base, &base, want, false, __ATOMIC_RELEASE,
                                    __ATOMIC_ACQUIRE)) {
        /* before any entry is written: entries are written by span makers,
         * after hak_segmap_set recorded their segment */
        __atomic_store_n(&hak_pagewin_base, want << (HAK_SEG_SHIFT - HAK_PAGE_SHIFT),
                         __ATOMIC_RELEASE);
        return want;
    }
    return base; /* another segment claimed it first */
}

/* c's index in the window, or HAK_WIN_N if it is outside. */
static uintptr_t window_index(uintptr_t c) {
    uintptr_t idx = c - __atomic_load_n(&hak_segwin_base, __ATOMIC_ACQUIRE);
    return idx < window_size() ? idx : HAK_WIN_N;
}

static void note_low(uintptr_t c) {
    uintptr_t low = __atomic_load_n(&win_low, __ATOMIC_RELAXED);
    while (c < low && !__atomic_compare_exchange_n(&win_low, &low, c, true, __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED)) {
    }
}

bool hak_segmap_set(uintptr_t a, uint8_t v) {
    if (a >> HAK_ADDR_BITS) return v == HAK_MAP_NONE; /* hak_os maps nothing there */
    uint8_t *leaf = leaf_of(a, v != HAK_MAP_NONE);
    if (!leaf) return v == HAK_MAP_NONE; /* nothing was recorded there */
    uintptr_t c = chunk_of(a), idx = window_index(c);
    uint8_t old = __atomic_exchange_n(&leaf[c & (HAK_MAP_LEAF_N - 1)], v, __ATOMIC_RELEASE);
    if (idx < HAK_WIN_N) {
        /* no span in the chunk now (a segment recorded or released, a large
         * mapping): its pages' entries are 0, whatever lay there before */
        uint8_t *e = &hak_pagewin[idx * HAK_SEG_PAGES];
        for (int i = 0; i < HAK_SEG_PAGES; i++) __atomic_store_n(&e[i], 0, __ATOMIC_RELAXED);
        if (v == HAK_MAP_SEG) note_low(c);
    } else if ((v == HAK_MAP_SEG) != (old == HAK_MAP_SEG)) {
        if (v == HAK_MAP_SEG)
            HAK_PROC_ADD(SEGS_OUTSIDE, 1);
        else
            HAK_PROC_SUB(SEGS_OUTSIDE, 1);
    }
    return true;
}

uint8_t *hak_pagewin_of(const void *seg) {
    uintptr_t idx = window_index(chunk_of((uintptr_t)seg));
    return idx < HAK_WIN_N ? &hak_pagewin[idx * HAK_SEG_PAGES] : NULL;
}

/* A 4 MiB-aligned segment, not recorded yet. The kernel places it next to
 * the previous mappings, so normally in the window. Outside it (more than
 * 32 GiB of other mappings in between, or a bottom-up layout grown past the
 * window), tries below the lowest segment in the window, at a distance that
 * doubles while the spot is taken (within this call and the next ones) and
 * starts again at 1 once one was free. In a bottom-up layout the libraries
 * lie right below the first segment and free space below them: the tries
 * walk past them in one call (a single try per call left each taken spot a
 * segment outside, 10 of 18 in one t_segwin run). In a top-down one the
 * kernel already picked the highest free gap, so the tries fail and stop
 * once the distance leaves the window: at most log2(HAK_WIN_N) failed
 * mappings in the process's life. Either way the segment works; outside the
 * window it is only slower to free to. */
/* The tries below the window for seg, which landed outside it (out of
 * line: only a segment outside the window runs it). */
static HAK_NOINLINE void *map_below_window(char *seg, uintptr_t base) {
    for (;;) {
        uintptr_t low = __atomic_load_n(&win_low, __ATOMIC_RELAXED);
        uintptr_t step = __atomic_load_n(&hint_step, __ATOMIC_RELAXED);
        if (low == UINTPTR_MAX || low < base + step)
            return seg; /* the try would leave the window */
        uintptr_t want = low - step;
        char *at = hak_os_map_at((void *)(want << HAK_SEG_SHIFT), HAK_SEG_SIZE);
        /* racing threads may lose an update: the distance is only a guess */
        __atomic_store_n(&hint_step, at ? 1 : step * 2, __ATOMIC_RELAXED);
        if (at) {
            note_low(want); /* the next try goes below this one (set records it too) */
            hak_os_unmap(seg, HAK_SEG_SIZE);
            return at;
        }
    }
}

void *hak_segmap_map_segment(void) {
    char *seg = hak_os_map_aligned(HAK_SEG_SIZE, HAK_SEG_SIZE);
    if (!seg) return NULL;
    uintptr_t base = window_claim(chunk_of((uintptr_t)seg));
    if (base == HAK_WIN_UNSET || window_index(chunk_of((uintptr_t)seg)) < HAK_WIN_N) return seg;
    return map_below_window(seg, base);
}
