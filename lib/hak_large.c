/* hak_large.c — blocks above the largest class: one 4 MiB-aligned mapping
 * each, a header at its start (the user pointer min(align, 4 MiB) above it,
 * so in the header's 4 MiB chunk or the next: segmap value 2 or 3, and any
 * alignment the address space allows), and a cache of freed mappings so a program
 * that frees and allocates big buffers does not hit the kernel (mmap,
 * munmap, a page fault per page) each time. The mapping needs no owner; the
 * cache has its own lock.
 *
 * The cache keeps freed mappings with their pages (reused without faults)
 * in size buckets, four per doubling. A request takes the smallest cached
 * mapping that holds it, and the part beyond the next 4 MiB boundary is
 * split off and stays cached; failing that, it grows the largest smaller
 * one with mremap (the page tables move, the pages stay); failing that, it
 * maps. How much the cache may hold follows demand: the larger of
 * large_cache_mb and the recent peak of live large bytes, a peak that
 * decays by a quarter at every purge tick. Mappings unused for
 * purge_delay_ms are unmapped at the next tick (the background purger runs
 * the ticks when the program sleeps), so a program that stops allocating
 * gets its memory back within about two purge delays. */
#include "hak_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define LARGE_MAGIC 0x454752414c4b4148ull /* live */
#define LARGE_FREED 0x444545524b4b4148ull /* in the cache */
#define LARGE_CACHE_MAX 64                /* cached mappings, soft: splits may add a few */
#define LARGE_BUCKETS 128                 /* 4 per doubling from 64 KiB: reaches 2^47 */
#define LARGE_SPLIT_MIN (1ul << 20)       /* a tail worth keeping apart */

typedef struct hak_large {
    uint64_t magic;
    size_t map_size; /* bytes mapped, from the header */
    size_t offset;   /* user pointer - header */
    size_t req;      /* the size last asked for (malloc, realloc): shrinking or growing */
    uint64_t freed_ns;
    struct hak_large *next; /* bucket list */
} hak_large;

hak_lock_t hak_large_lock;
/* under hak_large_lock */
static hak_large *bucket[LARGE_BUCKETS];
static uint64_t bucket_nonempty[LARGE_BUCKETS / 64];
static int cache_n;
static size_t cache_bytes;
/* demand: relaxed atomics, statistics only (a lost update moves the limit
 * by one block for one tick) */
static size_t live_bytes, recent_peak;

static size_t round_page(size_t n) {
    return (n + 4095) & ~(size_t)4095;
}

static int bucket_of(size_t size) {
    if (size <= (1ul << 16)) return 0;
    size_t m = size - 1;
    int lg = 63 - __builtin_clzl(m); /* 2^lg <= m < 2^(lg+1), lg >= 16 */
    int b = (lg - 16) * 4 + (int)((m >> (lg - 2)) & 3) + 1;
    return b < LARGE_BUCKETS ? b : LARGE_BUCKETS - 1;
}

/* The header of a large block, or NULL if p is not the start of one. */
static hak_large *large_of(void *p) {
    uintptr_t a = (uintptr_t)p;
    if (a >> HAK_ADDR_BITS) return NULL;
    uint8_t v = hak_segmap_get(a);
    if (v < HAK_MAP_LARGE) return NULL;
    hak_large *l = (hak_large *)(((a >> HAK_SEG_SHIFT) - (v - HAK_MAP_LARGE)) << HAK_SEG_SHIFT);
    return (char *)l + l->offset == (char *)p ? l : NULL;
}

static void large_unmap(hak_large *l) {
    hak_usage_large(-1, -(long)l->map_size);
    hak_segmap_set((uintptr_t)l, HAK_MAP_NONE);
    hak_os_unmap(l, l->map_size);
}

/* ---- the cache: every function here runs under hak_large_lock ---- */
static void cache_push(hak_large *l) {
    int b = bucket_of(l->map_size);
    l->next = bucket[b];
    bucket[b] = l;
    bucket_nonempty[b / 64] |= 1ull << (b % 64);
    cache_n++;
    cache_bytes += l->map_size;
    HAK_PROC_ADD(LARGE_CACHED, l->map_size);
}

static void cache_unlink(int b, hak_large **pp) {
    hak_large *l = *pp;
    *pp = l->next;
    if (!bucket[b]) bucket_nonempty[b / 64] &= ~(1ull << (b % 64));
    cache_n--;
    cache_bytes -= l->map_size;
    HAK_PROC_SUB(LARGE_CACHED, l->map_size);
}

/* Next non-empty bucket at or after b, or LARGE_BUCKETS. */
static int bucket_next(int b) {
    for (; b < LARGE_BUCKETS; b = (b / 64 + 1) * 64) {
        uint64_t m = bucket_nonempty[b / 64] & (~0ull << (b % 64));
        if (m) return (b / 64) * 64 + __builtin_ctzll(m);
    }
    return LARGE_BUCKETS;
}

/* Smallest-bucket mapping of at least need bytes whose user pointer can be
 * aligned; else (*grow) the largest one below need, from a quarter of it. */
static hak_large *cache_take(size_t need, size_t offset, size_t align, hak_large **grow) {
    int b0 = bucket_of(need);
    *grow = NULL;
    for (int b = bucket_next(b0); b < LARGE_BUCKETS; b = bucket_next(b + 1))
        for (hak_large **pp = &bucket[b]; *pp; pp = &(*pp)->next)
            if ((*pp)->map_size >= need && ((uintptr_t)*pp + offset) % align == 0) {
                hak_large *l = *pp;
                cache_unlink(b, pp);
                return l;
            }
    if (align > HAK_SEG_SIZE) return NULL; /* a moved mapping is only 4 MiB-aligned */
    for (int b = b0; b >= 0 && b >= b0 - 8; b--)
        for (hak_large **pp = &bucket[b]; *pp; pp = &(*pp)->next)
            if ((*pp)->map_size < need && (*pp)->map_size >= need / 4) {
                *grow = *pp;
                cache_unlink(b, pp);
                return NULL;
            }
    return NULL;
}

/* Cuts what lies beyond the first 4 MiB boundary at or above need off l and
 * caches it as a mapping of its own (own header, own segmap entry). */
static void cache_split(hak_large *l, size_t need) {
    size_t keep = (need + HAK_SEG_MASK) & ~HAK_SEG_MASK;
    if (l->map_size < keep + LARGE_SPLIT_MIN) return;
    hak_large *t = (hak_large *)((char *)l + keep);
    if (!hak_segmap_prepare((uintptr_t)t)) return; /* no map leaf for the tail: it stays */
    t->magic = LARGE_FREED;
    t->map_size = l->map_size - keep;
    t->offset = 0;
    t->freed_ns = l->freed_ns;
    l->map_size = keep;
    hak_usage_large(1, 0); /* one mapping more, the same bytes */
    hak_segmap_set((uintptr_t)t, HAK_MAP_LARGE);
    cache_push(t);
    /* Under an address-space limit, what lies between need and the
     * boundary (neither the block nor cached) goes back now, or a big
     * mapping cut into small blocks would cost 4 MiB of it each. Without
     * one it stays with the block: its pages are warm for a later grow. */
    size_t used = round_page(need);
    if (keep > used && hak_as_limited()) {
        hak_os_unmap((char *)l + used, keep - used);
        hak_usage_large(0, -(long)(keep - used));
        l->map_size = used;
    }
}

/* Unlinks the cached mapping that starts at a, if there is one. */
static hak_large *cache_take_at(const void *a) {
    for (int b = bucket_next(0); b < LARGE_BUCKETS; b = bucket_next(b + 1))
        for (hak_large **pp = &bucket[b]; *pp; pp = &(*pp)->next)
            if ((const void *)*pp == a) {
                hak_large *l = *pp;
                cache_unlink(b, pp);
                return l;
            }
    return NULL;
}

/* Joins l with the cached mappings right after it and right before it
 * (pieces of one split, or neighbours the kernel placed back to back), so
 * the cache holds few large mappings rather than many small ones. */
static hak_large *cache_merge(hak_large *l) {
    hak_large *r = cache_take_at((char *)l + l->map_size);
    if (r) {
        hak_segmap_set((uintptr_t)r, HAK_MAP_NONE);
        hak_usage_large(-1, 0);
        l->map_size += r->map_size;
        if (r->freed_ns > l->freed_ns) l->freed_ns = r->freed_ns;
    }
    for (int b = bucket_next(0); b < LARGE_BUCKETS; b = bucket_next(b + 1))
        for (hak_large **pp = &bucket[b]; *pp; pp = &(*pp)->next)
            if ((char *)*pp + (*pp)->map_size == (char *)l) {
                hak_large *q = *pp;
                cache_unlink(b, pp);
                hak_segmap_set((uintptr_t)l, HAK_MAP_NONE);
                hak_usage_large(-1, 0);
                q->map_size += l->map_size;
                if (l->freed_ns > q->freed_ns) q->freed_ns = l->freed_ns;
                return q;
            }
    return l;
}

/* The oldest cached mapping (unlinked), or NULL if the cache is empty. */
static hak_large *cache_evict_oldest(void) {
    hak_large **best = NULL;
    int best_b = 0;
    for (int b = bucket_next(0); b < LARGE_BUCKETS; b = bucket_next(b + 1))
        for (hak_large **pp = &bucket[b]; *pp; pp = &(*pp)->next)
            if (!best || (*pp)->freed_ns < (*best)->freed_ns) {
                best = pp;
                best_b = b;
            }
    if (!best) return NULL;
    hak_large *l = *best;
    cache_unlink(best_b, best);
    return l;
}

static size_t cache_limit(void) {
    size_t knob = (size_t)HAK_KNOB(LARGE_CACHE_MB) << 20;
    size_t peak = __atomic_load_n(&recent_peak, __ATOMIC_RELAXED);
    return knob == 0 ? 0 : (peak > knob ? peak : knob); /* 0 turns the cache off */
}
/* ---- end of the cache ---- */

/* A fresh 4 MiB-aligned mapping of need bytes. The kernel places a mapping
 * top-down next to the previous one, but a large block's size is rarely a
 * multiple of 4 MiB, so its pick is rarely aligned, and hak_os_map_aligned
 * then pays an mmap, a munmap, a failed try below and an over-map with two
 * trims: realloc_grow-1m made 3 munmap and 3 mmap calls per buffer. So the
 * first try is the aligned place right below the last fresh mapping (whose
 * chunk is ours alone: the rest of it is free or taken by other mappings),
 * with MAP_FIXED_NOREPLACE: one mmap when that place is free, one failed
 * call more when it is not. The hint is a guess: racing threads may lose an
 * update, and NOREPLACE never takes a place another mapping holds. */
static uintptr_t map_hint; /* relaxed: a 4 MiB-aligned address, 0: none yet */

static void *large_map(size_t need) {
    size_t span = (need + HAK_SEG_MASK) & ~HAK_SEG_MASK;
    uintptr_t hint = __atomic_load_n(&map_hint, __ATOMIC_RELAXED);
    void *p = hint > span ? hak_os_map_at((void *)(hint - span), need) : NULL;
    if (!p) p = hak_os_map_aligned(need, HAK_SEG_SIZE);
    if (p) __atomic_store_n(&map_hint, (uintptr_t)p, __ATOMIC_RELAXED);
    return p;
}

/* large_grow's work; errno as the failed system calls left it. */
static hak_large *large_grow_1(hak_large *l, size_t need) {
    size_t old = l->map_size;
    void *to = mremap(l, old, need, 0); /* grow where it lies */
    if (to == MAP_FAILED) {
        /* target reserves the place; the move replaces it with one mapping
         * of need bytes (not the old pages plus a fresh tail: two mappings,
         * which the next in-place growth could not extend) */
        char *target = large_map(need);
        if (!target) return NULL;
        if (!hak_segmap_prepare((uintptr_t)target)) { /* the set below cannot fail */
            hak_os_unmap(target, need);
            return NULL;
        }
        /* cleared before the move: once mremap frees the old range, another
         * thread may map it and mark it in the segment map at once */
        hak_segmap_set((uintptr_t)l, HAK_MAP_NONE);
        to = mremap(l, old, need, MREMAP_MAYMOVE | MREMAP_FIXED, target);
        if (to == MAP_FAILED) {
            hak_segmap_set((uintptr_t)l, HAK_MAP_LARGE);
            hak_os_unmap(target, need);
            return NULL;
        }
        HAK_PROC_SUB(MAPPED, old); /* the old range is gone; target was counted */
        l = to;
        hak_segmap_set((uintptr_t)l, HAK_MAP_LARGE);
    } else {
        HAK_PROC_ADD(MAPPED, need - old);
    }
    hak_usage_large(0, (long)(need - old));
    l->map_size = need;
    return l;
}

/* Grows l (not cached, not live) to need bytes: in place, or moved with
 * mremap to a new 4 MiB-aligned range (page tables move, not bytes).
 * Returns the header, or NULL with l untouched. errno is left unchanged
 * either way: the in-place try fails with ENOMEM whenever the next range is
 * taken, and a realloc that then succeeds must not show it (glibc's does
 * not; a caller that fails sets ENOMEM itself). */
static hak_large *large_grow(hak_large *l, size_t need) {
    int e = errno;
    hak_large *g = large_grow_1(l, need);
    errno = e;
    return g;
}

/* A cached mapping for need bytes (split or grown to fit), or NULL. */
static hak_large *large_reuse(size_t need, size_t offset, size_t align) {
    hak_large *grow;
    hak_lock(&hak_large_lock);
    hak_large *l = cache_take(need, offset, align, &grow);
    if (l) cache_split(l, need);
    hak_unlock(&hak_large_lock);
    if (l) {
        HAK_PROC_ADD(LARGE_REUSED, 1);
    } else if (grow) {
        l = large_grow(grow, need);
        if (l)
            HAK_PROC_ADD(LARGE_GROWN, 1);
        else
            large_unmap(grow);
    }
    return l;
}

static void demand_add(size_t n) {
    size_t live = __atomic_add_fetch(&live_bytes, n, __ATOMIC_RELAXED);
    if (live > __atomic_load_n(&recent_peak, __ATOMIC_RELAXED))
        __atomic_store_n(&recent_peak, live, __ATOMIC_RELAXED);
}

/* *fresh (if given) tells whether the memory is a new, zeroed mapping. */
void *hak_large_alloc(size_t n, size_t align, bool *fresh) {
    if (align < 64) align = 64;
    if (n > (1ul << HAK_ADDR_BITS) || align > (1ul << HAK_ADDR_BITS)) return NULL;
    /* the header fits below the first aligned address; for alignments of
     * a chunk or more the map starts a chunk below an aligned address */
    size_t offset = align < HAK_SEG_SIZE ? align : HAK_SEG_SIZE;
    size_t need = round_page(offset + (n ? n : 1)); /* malloc(0) has a usable byte */
    hak_large *l = large_reuse(need, offset, align);
    if (fresh) *fresh = l == NULL;
    if (!l) {
        l = align > HAK_SEG_SIZE ? hak_os_map_offset(need, align, offset) : large_map(need);
        if (!l) return NULL;
        /* a mapping the map cannot record could never be freed: give it back */
        if (!hak_segmap_set((uintptr_t)l, HAK_MAP_LARGE)) {
            hak_os_unmap(l, need);
            return NULL;
        }
        l->map_size = need;
        hak_usage_large(1, (long)need);
    }
    char *p = (char *)l + offset;
    size_t k = ((uintptr_t)p >> HAK_SEG_SHIFT) - ((uintptr_t)l >> HAK_SEG_SHIFT);
    if (k && !hak_segmap_set((uintptr_t)p, (uint8_t)(HAK_MAP_LARGE + k))) {
        large_unmap(l);
        return NULL;
    }
    demand_add(l->map_size);
    l->magic = LARGE_MAGIC;
    l->offset = offset;
    l->req = n;
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_ALLOCS, 1);
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_LARGE_BYTES, l->map_size - offset);
    HAK_PROBE2(large_alloc, p, n);
    return p;
}

/* Returns true if p was a large block (now freed). */
bool hak_large_free_checked(void *p) {
    hak_large *l = large_of(p);
    if (!l) return false;
    if (l->magic != LARGE_MAGIC)
        hak_fatal("double free or corruption (out); large block already free", p);
    size_t usable = l->map_size - l->offset;
    if (((uintptr_t)p >> HAK_SEG_SHIFT) != ((uintptr_t)l >> HAK_SEG_SHIFT))
        hak_segmap_set((uintptr_t)p, HAK_MAP_NONE);
    l->magic = LARGE_FREED;
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_FREES, 1);
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_LARGE_BYTES, -usable);
    l->freed_ns = hak_now_ns();
    __atomic_sub_fetch(&live_bytes, l->map_size, __ATOMIC_RELAXED);
    /* cached, making room by unmapping the oldest ones (after the lock) */
    hak_large *drop = NULL;
    hak_lock(&hak_large_lock);
    size_t limit = cache_limit();
    if (l->map_size <= limit) {
        l = cache_merge(l);
        while (cache_n && (cache_n >= LARGE_CACHE_MAX || cache_bytes + l->map_size > limit)) {
            hak_large *old = cache_evict_oldest();
            old->next = drop;
            drop = old;
        }
        if (cache_bytes + l->map_size <= limit) {
            cache_push(l);
            l = NULL;
        }
    }
    hak_unlock(&hak_large_lock);
    if (l) large_unmap(l);
    while (drop) {
        hak_large *next = drop->next;
        large_unmap(drop);
        drop = next;
    }
    hak_purger_wake_soon();
    return true;
}

size_t hak_large_usable(void *p) {
    hak_large *l = large_of(p);
    return l && l->magic == LARGE_MAGIC ? l->map_size - l->offset : 0;
}

/* A purge tick: the demand peak decays by a quarter (towards what is live
 * now); mappings unused for purge_delay_ms, and the oldest beyond the
 * limit, are unmapped. force: all of them. */
void hak_large_cache_trim(bool force) {
    uint64_t now = hak_now_ns(), delay = (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 1000000ull;
    size_t live = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
    size_t peak = __atomic_load_n(&recent_peak, __ATOMIC_RELAXED);
    peak -= peak / 4;
    __atomic_store_n(&recent_peak, force || peak < live ? live : peak, __ATOMIC_RELAXED);
    hak_large *drop = NULL;
    hak_lock(&hak_large_lock);
    for (int b = bucket_next(0); b < LARGE_BUCKETS; b = bucket_next(b + 1)) {
        for (hak_large **pp = &bucket[b]; *pp;) {
            hak_large *l = *pp;
            if (force || now - l->freed_ns >= delay) {
                cache_unlink(b, pp);
                l->next = drop;
                drop = l;
            } else {
                pp = &l->next;
            }
        }
    }
    for (size_t limit = cache_limit(); cache_bytes > limit;) {
        hak_large *l = cache_evict_oldest();
        l->next = drop;
        drop = l;
    }
    hak_unlock(&hak_large_lock);
    while (drop) {
        hak_large *next = drop->next;
        large_unmap(drop);
        drop = next;
    }
}

/* Whether the cache holds anything (for the background purger). */
bool hak_large_cache_busy(void) {
    hak_lock(&hak_large_lock);
    bool busy = cache_n != 0;
    hak_unlock(&hak_large_lock);
    return busy;
}

/* The mapping a large block of need bytes grows to: half again, so a buffer
 * grown by small steps costs a system call per 1.5x rather than per page
 * (the headroom is address space only: its pages are not touched). Under
 * an address-space limit, the exact size. */
static size_t grow_target(size_t need) {
    size_t want = round_page(need + need / 2);
    return want >> HAK_ADDR_BITS || hak_as_limited() ? need : want;
}

/* Cuts l (live) down to need bytes: the tail goes back to the OS. */
static void large_shrink(hak_large *l, size_t need) {
    size_t cut = l->map_size - need;
    hak_os_unmap((char *)l + need, cut);
    hak_usage_large(0, -(long)cut);
    __atomic_sub_fetch(&live_bytes, cut, __ATOMIC_RELAXED);
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_LARGE_BYTES, -cut);
    l->map_size = need;
}

/* realloc of a large block to n bytes (the caller keeps blocks above
 * 64 KiB mappings). In place when it fits; shrunk below half of its
 * mapping (smaller than asked last time), the tail is unmapped; grown, the mapping grows where it
 * lies or its pages move to a new aligned place with mremap (page tables, not bytes), with headroom
 * (grow_target). Returns NULL (p untouched) if that is not possible. */
void *hak_large_realloc(void *p, size_t n) {
    hak_large *l = large_of(p);
    if (!l || l->magic != LARGE_MAGIC || n > (1ul << HAK_ADDR_BITS)) return NULL;
    size_t old_size = l->map_size, old_usable = old_size - l->offset;
    size_t need = round_page(l->offset + n);
    if (need <= l->map_size) {
        /* shrinking below half: the tail goes; growing into the headroom
         * (or a bigger cached mapping it was given): it stays */
        if (n < l->req && need < l->map_size / 2) large_shrink(l, need);
        l->req = n;
        return p;
    }
    if (((uintptr_t)p >> HAK_SEG_SHIFT) != ((uintptr_t)l >> HAK_SEG_SHIFT)) return NULL;
    hak_large *g = large_grow(l, grow_target(need));
    if (!g && grow_target(need) != need) g = large_grow(l, need);
    if (!g) return NULL;
    g->req = n;
    demand_add(g->map_size - old_size);
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_LARGE_BYTES, (g->map_size - g->offset) - old_usable);
    HAK_PROC_ADD(REALLOC_REMAPS, 1);
    return (char *)g + g->offset;
}

/* A new large block for a class block growing to n bytes: with the same
 * headroom, so that its next growth needs no copy and no system call. */
void *hak_large_alloc_growing(size_t n) {
    if (n >> HAK_ADDR_BITS) return NULL; /* more than the address space (no wrap below) */
    size_t room = grow_target(round_page(n + 64)) - 64;
    void *p = hak_large_alloc(room, 0, NULL);
    if (!p) return hak_large_alloc(n, 0, NULL);
    large_of(p)->req = n; /* what was asked, not the headroom */
    return p;
}

/* Fork child: a holder lost half-way may have left the cache list broken.
 * Forget the cached blocks: they stay mapped, unused (at most
 * large_cache_mb of address space leaked in the child). */
void hak_large_after_fork(void) {
    if (!hak_lock_take_orphan(&hak_large_lock)) return;
    HAK_PROC_SUB(LARGE_CACHED, cache_bytes);
    memset(bucket, 0, sizeof bucket);
    memset(bucket_nonempty, 0, sizeof bucket_nonempty);
    cache_n = 0;
    cache_bytes = 0;
    hak_unlock(&hak_large_lock);
}
