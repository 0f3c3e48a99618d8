/* hak_segment.c — segments and spans: carving 4 MiB segments into spans of
 * 64 KiB pages, giving empty spans back, purging free pages to the OS, and a
 * small cache of empty segments. Called by the heap's owner thread, except
 * the segment cache (its own lock) and the purge of a heap's free pages,
 * which the background purger may do too: a heap's segment list and masks
 * are under its seg_lock (taken once per span carved or given back, never
 * contended by another owner). */
#include "hak_internal.h"

#include <limits.h>
#include <string.h>

static hak_lock_t seg_cache_lock;
static hak_segment *seg_cache;
static int seg_cache_n;
/* Demand sizing (under seg_cache_lock): segments in heaps now, their recent
 * peak (decaying by a quarter per half purge delay towards the use) and
 * when it last decayed. */
static int seg_in_use, seg_peak;
static uint64_t seg_peak_ns;

/* How many empty segments the cache keeps. The seg_cache knob, or, while the
 * knob has its default value, what the recent peak of segments in use
 * exceeds the use now, if that is more: a demand that fell a moment ago
 * comes back (xbatch: producers run ahead of consumers and fall behind
 * again), and an unmapped segment costs munmap, mmap and the map updates
 * on top of the page faults a purged one costs. Segments beyond the knob
 * are purged as they enter (segment_free): the demand-sized part holds
 * address space, not resident memory. A set knob (environment, hakctl,
 * daemon) is kept as set. Caller holds seg_cache_lock. */
static int cache_cap_locked(void) {
    int knob = HAK_KNOB(SEG_CACHE);
    if (hak_knobs.owner[hak_knob_slot(HAK_KNOB_SEG_CACHE, 0)] != HAK_OWNER_DEFAULT) return knob;
    int extra = seg_peak - seg_in_use;
    if (extra > (int)hak_knob_defs[HAK_KNOB_SEG_CACHE].max)
        extra = (int)hak_knob_defs[HAK_KNOB_SEG_CACHE].max;
    return extra > knob ? extra : knob;
}

static void in_use_add_locked(int n) {
    seg_in_use += n;
    if (seg_in_use > seg_peak) seg_peak = seg_in_use;
}

static uint64_t span_bits(int first, int n) {
    return (n >= 64 ? ~0ull : ((1ull << n) - 1)) << first;
}

/* The heap lock: the owner (or an adopter) takes it per span carved or
 * given back, and around span work of big classes; it may nest (a refill
 * carving a span). The holder is known by its &hak_tls.
 * Fork child: a thread that waits here for a heap that is not the starter
 * owns it (or took it from the pool to adopt it), so any other holder was
 * a visitor that only purges under the lock (hak_segment_purge_try: the
 * purger, a trim), whose every step leaves the heap whole; a holder lost in
 * the fork is taken over. A visitor that drains (hak_heaps_drain_idle)
 * leaves span lists half-updated: the child retires that heap first
 * (hak_heaps_leave_parent) and its owner leaves it as it settles, before
 * its first lock (hak_heap_after_fork_self), so nobody waits here for it.
 * The starter's holders are its users, in the
 * middle of anything: a lost one retires it (hak_starter_after_fork) and
 * this returns false. */
bool hak_heap_lock(hak_heap *h) {
    void *me = &hak_tls;
    if (atomic_load_explicit(&h->lock_holder, memory_order_relaxed) == me) {
        h->lock_depth++;
        return true;
    }
    if (!hak_lock_as(&h->seg_lock, h->shared ? HAK_LOCK_MAY_RETIRE : HAK_LOCK_TAKE_LOST))
        return false;
    atomic_store_explicit(&h->lock_holder, me, memory_order_relaxed);
    h->lock_depth = 1;
    return true;
}

void hak_heap_unlock(hak_heap *h) {
    if (--h->lock_depth) return;
    atomic_store_explicit(&h->lock_holder, NULL, memory_order_relaxed);
    hak_unlock(&h->seg_lock);
}

bool hak_heap_trylock(hak_heap *h) {
    if (!hak_trylock(&h->seg_lock)) return false;
    atomic_store_explicit(&h->lock_holder, (void *)&hak_tls, memory_order_relaxed);
    h->lock_depth = 1;
    return true;
}

void hak_heap_lock_reset(hak_heap *h) {
    h->lock_depth = 0;
    atomic_store_explicit(&h->lock_holder, NULL, memory_order_relaxed);
    hak_unlock(&h->seg_lock);
}

/* OS pages of free pages [first, first + n) that their last span's block
 * purges returned already (hak_span_note_purged); clears them when `take`. */
static uint64_t os_gone(hak_segment *seg, int first, int n, bool take) {
    uint64_t k = 0;
    for (int i = first; i < first + n; i++) {
        k += (uint64_t)__builtin_popcount(seg->os_purged[i]);
        if (take) seg->os_purged[i] = 0;
    }
    return k;
}

/* Returns the free pages in mask to the OS (they read as zero after).
 * purged_bytes counts what was resident: a page its span's block purges
 * returned in part counts the rest (every page counts once, as the carve
 * that takes it again counts it once: hak_span_alloc). */
static void purge_mask(hak_segment *seg, uint64_t mask) {
    seg->purged_mask |= mask;
    seg->touched_mask &= ~mask;
    while (mask) {
        int first = __builtin_ctzll(mask), n = 0;
        while (first + n < 64 && (mask >> (first + n) & 1)) n++;
        hak_os_purge((char *)seg + (size_t)first * HAK_PAGE_SIZE, (size_t)n * HAK_PAGE_SIZE);
        HAK_PROC_ADD(PURGES, 1);
        HAK_PROC_ADD(PURGED_BYTES,
                     (uint64_t)n * HAK_PAGE_SIZE - os_gone(seg, first, n, true) * HAK_OS_PAGE);
        mask &= ~span_bits(first, n);
    }
}

/* Links seg (empty: from the cache or just mapped) into h's segment list. */
static hak_segment *segment_attach(hak_heap *h, hak_segment *seg) {
    seg->heap = h;
    seg->used_mask = 1; /* page 0: this header */
    seg->prev = NULL;
    seg->next = h->segs;
    if (h->segs) h->segs->prev = seg;
    h->segs = seg;
    return seg;
}

/* A segment freshly mapped for h, or NULL. */
static hak_segment *segment_map(hak_heap *h) {
    hak_segment *seg = hak_segmap_map_segment();
    if (!seg) return NULL;
    seg->magic = HAK_SEG_MAGIC;
    /* page_cls only: pages[] is written as spans are carved (fresh
     * memory, its OS pages stay untouched until then) */
    memset(seg->page_cls, HAK_CLS_NONE, sizeof seg->page_cls);
    /* recorded once whole; a segment the map cannot record (no memory
     * for its leaf) could never be found again: give it back */
    if (!hak_segmap_set((uintptr_t)seg, HAK_MAP_SEG)) {
        hak_os_unmap(seg, HAK_SEG_SIZE);
        return NULL;
    }
    hak_usage_seg((long)HAK_SEG_SIZE);
    hak_lock(&seg_cache_lock);
    in_use_add_locked(1);
    hak_unlock(&seg_cache_lock);
    return segment_attach(h, seg);
}

static bool dirty_purge(hak_segment *seg, uint64_t now, uint64_t delay, bool force);

static void segment_free(hak_heap *h, hak_segment *seg) {
    if (seg->prev)
        seg->prev->next = seg->next;
    else
        h->segs = seg->next;
    if (seg->next) seg->next->prev = seg->prev;
    seg->heap = NULL;
    hak_lock(&seg_cache_lock);
    in_use_add_locked(-1);
    /* beyond the knob, a segment is cached for its address space only: its
     * pages go back now, so the demand-sized part never raises the peak.
     * Pooled heaps' segments kept for their spans (heap_leave) count in
     * the knob: resident and idle as cached ones are */
    bool extra = seg_cache_n + atomic_load(&hak_pinned_segs) >= HAK_KNOB(SEG_CACHE) &&
                 seg_cache_n < cache_cap_locked();
    hak_unlock(&seg_cache_lock);
    if (extra) dirty_purge(seg, 0, 0, true); /* ours alone: not cached yet */
    hak_lock(&seg_cache_lock);
    if (seg_cache_n < cache_cap_locked()) {
        /* a purged one goes under the resident ones: taken last */
        hak_segment **pp = &seg_cache;
        if (extra)
            while (*pp) pp = &(*pp)->next;
        seg->next = *pp;
        *pp = seg;
        seg_cache_n++;
        seg = NULL;
    }
    hak_unlock(&seg_cache_lock);
    if (seg) {
        hak_segmap_set((uintptr_t)seg, HAK_MAP_NONE);
        hak_os_unmap(seg, HAK_SEG_SIZE);
        hak_usage_seg(-(long)HAK_SEG_SIZE);
    }
}

/* Free pages age in two generations: dirty_new holds those freed since
 * dirty_ns, the rest of dirty_mask those freed before. Once the generation
 * is a purge delay old, the older pages (free at least that long) go back
 * and the newer ones become the older generation: a page goes back between
 * one and two delays after it was freed, never one freed a moment ago.
 * Caller: the heap lock (or the cache lock for a cached segment). Returns
 * whether dirty pages remain. */
static void dirty_add(hak_segment *seg, uint64_t bits) {
    if (!seg->dirty_mask) seg->dirty_ns = hak_now_ns();
    seg->dirty_new |= bits;
    __atomic_store_n(&seg->dirty_mask, seg->dirty_mask | bits, __ATOMIC_RELAXED);
}

static bool dirty_purge(hak_segment *seg, uint64_t now, uint64_t delay, bool force) {
    if (!seg->dirty_mask) return false;
    if (force) {
        purge_mask(seg, seg->dirty_mask);
        seg->dirty_new = 0;
        __atomic_store_n(&seg->dirty_mask, 0, __ATOMIC_RELAXED); /* find_run's hint */
        return false;
    }
    if (now - seg->dirty_ns >= delay) {
        uint64_t old = seg->dirty_mask & ~seg->dirty_new;
        if (old) purge_mask(seg, old);
        __atomic_store_n(&seg->dirty_mask, seg->dirty_new, __ATOMIC_RELAXED);
        seg->dirty_new = 0;
        seg->dirty_ns = now;
    }
    return seg->dirty_mask != 0;
}

/* Purges the free pages of cached segments that have been dirty for the
 * purge delay (all of them if force). Under the cache lock: nobody can take
 * a segment while its pages go. */
static bool cache_purge(bool force) {
    uint64_t now = hak_now_ns(), delay = hak_purge_delay_ns();
    bool left = false;
    hak_lock(&seg_cache_lock);
    for (hak_segment *seg = seg_cache; seg; seg = seg->next)
        left |= dirty_purge(seg, now, delay, force);
    hak_unlock(&seg_cache_lock);
    return left;
}

/* Where n free pages in the segment cost the fewest page faults: the run
 * with the most pages still resident (free, not purged, written by a span's
 * carved blocks: touched_mask), the lowest among equals (a small heap's
 * spans stay low: the header's second OS page is the high pages'
 * descriptors). -1 if no run fits; the run's resident pages in *warm.
 * Caller: the heap lock (or the cache lock for a cached segment): the
 * purger changes the masks. Mask work only: a refill that needs a span
 * pays it on every segment it looks at. */
static int find_run(hak_segment *seg, int n, int *warm) {
    uint64_t fr = ~seg->used_mask, r = fr;
    for (int i = 1; i < n && r; i++) r &= fr >> i;
    uint64_t wd = seg->dirty_mask & seg->touched_mask & fr, full = wd;
    *warm = 0;
    if (!r) return -1;
    if (!wd) return __builtin_ctzll(r);
    for (int i = 1; i < n && full; i++) full &= wd >> i;
    if (full) { /* resident throughout */
        *warm = n;
        return __builtin_ctzll(full);
    }
    /* else the run that starts or ends on a resident page holding most */
    int best = __builtin_ctzll(r), best_warm = 0;
    for (uint64_t c = r & (wd | wd >> (n - 1)); c; c &= c - 1) {
        int i = __builtin_ctzll(c), w = __builtin_popcountll(wd & span_bits(i, n));
        if (w > best_warm) {
            best = i;
            best_warm = w;
        }
    }
    *warm = best_warm;
    return best;
}

/* Pages a heap's peak may pass its last owner's by (hak_span_alloc). */
enum { GROW_SLACK = 8 };

/* Free pages of seg still resident (written since their last purge). */
static int resident_free(const hak_segment *seg) {
    return __builtin_popcountll(seg->dirty_mask & seg->touched_mask & ~seg->used_mask);
}

/* A cached segment whose best run of n pages holds more resident pages than
 * `beat` (-1: h has no room left), taken out of the cache for h, or NULL;
 * its run in *first. A heap that would fault fresh pages uses the pages an
 * exited heap left resident instead: they cost no fault and no new resident
 * memory, and would otherwise wait out the purge delay while the fresh ones
 * fault in (threads that come and go, each touching other pages of the
 * segments that circulate through the cache). But a segment comes whole:
 * of its resident free pages, h uses those it grows into (`grow`, see
 * hak_span_alloc; INT_MAX: unknown) and holds the rest idle, where no other
 * heap may carve them. So each counts for what h will use less what it
 * would leave idle; with room left, only a segment that gains is taken,
 * without, the best one (from the cache rather than a new one, whose pages
 * would join those in circulation). Unknown growth: the warmest run, the
 * most resident among equals. Caller holds h's heap lock. */
static HAK_NOINLINE hak_segment *cache_take_warm(hak_heap *h, int n, int beat, int grow,
                                                 int *first) {
    hak_lock(&seg_cache_lock);
    hak_segment **bestp = NULL;
    long best_key = beat < 0 || grow == INT_MAX ? LONG_MIN : 0;
    for (hak_segment **pp = &seg_cache; *pp; pp = &(*pp)->next) {
        int w, f = find_run(*pp, n, &w);
        if (f < 0 || w <= beat) continue;
        long res = resident_free(*pp), key;
        if (grow == INT_MAX)
            key = (long)w << 8 | res;
        else /* used warm, less left idle; the warmer run among equals */
            key = (res <= grow ? res : 2l * grow - res) * 256 + w;
        if (key > best_key) {
            bestp = pp;
            best_key = key;
            *first = f;
        }
    }
    hak_segment *seg = bestp ? *bestp : NULL;
    if (seg) {
        *bestp = seg->next;
        seg_cache_n--;
        in_use_add_locked(1);
    }
    hak_unlock(&seg_cache_lock);
    return seg ? segment_attach(h, seg) : NULL;
}

/* Longest run of free pages in the segment (its start in *first), 0 if none. */
static int longest_run(hak_segment *seg, int *first) {
    uint64_t r = ~seg->used_mask, prev = 0;
    int len = 0;
    while (r) {
        prev = r;
        r &= r >> 1;
        len++;
    }
    if (len) *first = __builtin_ctzll(prev);
    return len;
}

/* Pages that n pages' worth of blocks of cls really cover. */
static int pages_for(int cls, int n) {
    size_t size = hak_class_size[cls], blocks = (size_t)n * HAK_PAGE_SIZE / size;
    return (int)((blocks * size + HAK_PAGE_SIZE - 1) / HAK_PAGE_SIZE);
}

/* A span of the class's length in a segment of the heap; failing that, a
 * shorter one (at least one block) in the longest free run of a segment the
 * heap already has, before a new segment is mapped. The big classes' 32-page
 * spans fit once in the 63 pages a segment offers, and without the shorter
 * spans the other 31 pages would stay empty: address space mapped for
 * nothing, which is what runs out first under an address-space limit. */
hak_span *hak_span_alloc(hak_heap *h, int cls) {
    int n = pages_for(cls, hak_class_span[cls]), first = -1, warm = -1;
    int min = hak_span_min_pages(cls);
    hak_segment *seg = NULL, *best = NULL;
    int best_len = 0, best_first = -1;
    hak_heap_lock(h); /* the masks: the background purger writes dirty_mask */
    if (HAK_UNLIKELY(!hak_heap_partial_make(h))) {
        hak_heap_unlock(h);
        return NULL;
    }
    /* a new owner: expect the last one's peak */
    if (h->pages_tid != h->owner) {
        if (h->pages_peak) h->pages_expect = h->pages_peak;
        h->pages_peak = h->pages_now;
        h->pages_tid = h->owner;
    }
    /* The pages the heap is expected to grow into beyond this span, for
     * cache_take_warm: thread_bins' heaps peak at about 190 pages, a span
     * more than three segments hold, and each took a fourth resident
     * segment for it, leaving ~60 pages idle that the next thread then
     * faulted in elsewhere. Without a history (a heap's first owner):
     * unknown. */
    int grow =
        h->pages_expect ? (int)h->pages_expect - (int)h->pages_now - n + GROW_SLACK : INT_MAX;
    /* the run with the most resident pages in any of the heap's segments */
    for (hak_segment *s = h->segs; s && warm < n; s = s->next) {
        int nfree = 64 - __builtin_popcountll(s->used_mask), w, f = -1;
        if (nfree >= n && (f = find_run(s, n, &w)) >= 0) {
            if (w > warm) {
                seg = s;
                first = f;
                warm = w;
            }
            continue;
        }
        int len = nfree > best_len && nfree >= min ? longest_run(s, &f) : 0;
        if (len >= min && len > best_len) {
            best = s;
            best_len = len;
            best_first = f;
        }
    }
    /* pages that would fault: a cached segment's resident ones first (out
     * of line: a small process, whose cache stays empty, never runs it) */
    hak_segment *cached = warm < n && hak_segment_cached()
                              ? cache_take_warm(h, n, seg ? warm : (best ? 0 : -1), grow, &first)
                              : NULL;
    if (cached) {
        seg = cached;
    } else if (!seg && best) {
        seg = best;
        first = best_first;
        n = pages_for(cls, best_len < n ? best_len : n);
    }
    if (!seg) {
        seg = segment_map(h);
        if (!seg) {
            hak_heap_unlock(h);
            return NULL;
        }
        first = find_run(seg, n, &warm);
    }
    uint64_t bits = span_bits(first, n);
    seg->used_mask |= bits;
    seg->dirty_mask &= ~bits;
    seg->dirty_new &= ~bits;
    uint64_t refault = seg->purged_mask & bits,
             bytes = (uint64_t)__builtin_popcountll(refault) * HAK_PAGE_SIZE;
    seg->purged_mask &= ~bits;
    h->pages_now += (uint32_t)n;
    if (h->pages_now > h->pages_peak) h->pages_peak = h->pages_now;
    hak_heap_unlock(h);
    /* pages purged whole, and the OS pages of the others that an earlier
     * span's block purges returned (os_purged, cleared below) */
    for (int i = first; i < first + n; i++)
        if (!(refault >> i & 1)) bytes += os_gone(seg, i, 1, false) * HAK_OS_PAGE;
    if (bytes) HAK_PROC_ADD(REFAULT_BYTES, bytes);
    hak_span *s = &seg->pages[first];
    memset(s, 0, sizeof(*s));
    memset(&seg->os_purged[first], 0, (size_t)n * sizeof seg->os_purged[0]); /* earlier spans' */
    s->pages = (uint8_t)n;
    s->capacity = (uint32_t)((size_t)n * HAK_PAGE_SIZE / hak_class_size[cls]);
    for (int i = 0; i < n; i++) {
        s[i].head_off = (uint8_t)i;
        s[i].cls = seg->page_cls[first + i] = (uint8_t)cls;
    }
    hak_pagewin_set(seg, first, n, (uint8_t)(cls + 1));
    HAK_USAGE_SPAN((size_t)n * HAK_PAGE_SIZE);
    HAK_CTR(cls, SPANS_NEW)++;
    HAK_CTR(cls, SPAN_BLOCKS) += s->capacity;
    HAK_PROBE2(span_new, cls, s->capacity);
    return s;
}

/* Out of line for the slow paths that meet a span (hak_cls_span_color): the
 * hot segment's room. */
uintptr_t hak_span_color_call(const hak_span *s, int cls) {
    return hak_span_color_of(s, cls);
}

/* The span is empty (used == 0, so nobody can push remote frees to it). */
void hak_span_release(hak_heap *h, hak_span *s) {
    hak_segment *seg = hak_seg_of(s);
    int first = (int)(s - seg->pages), n = s->pages, cls = s->cls;
    hak_span_note_purged(s);
    HAK_USAGE_SPAN(-(long)((size_t)n * HAK_PAGE_SIZE));
    HAK_CTR(cls, SPANS_FREED)++;
    HAK_CTR(cls, SPAN_BLOCKS) -= s->capacity;
    hak_pagewin_set(seg, first, n, 0);
    for (int i = 0; i < n; i++) {
        s[i].cls = seg->page_cls[first + i] = HAK_CLS_NONE;
        s[i].head_off = 0;
    }
    uint64_t bits = span_bits(first, n);
    /* the carved blocks' pages were written; those past them stay as
     * touched_mask says (resident from an earlier span, or never touched) */
    int carved = (int)(((uint64_t)s->carved * hak_class_size[cls] + HAK_PAGE_SIZE - 1 +
                        /* a colour (below an OS page) may push the end a page on */
                        (s->carved && hak_cls_colored(cls) ? HAK_OS_PAGE : 0)) /
                       HAK_PAGE_SIZE);
    hak_heap_lock(h);
    seg->used_mask &= ~bits;
    h->pages_now -= (uint32_t)n;
    if (carved) seg->touched_mask |= span_bits(first, carved < n ? carved : n);
    if (cls >= HAK_PURGE_CLS_MIN) /* pages its block purges returned in part: not resident */
        for (int i = first; i < first + n; i++)
            if (seg->os_purged[i]) seg->touched_mask &= ~(1ull << i);
    dirty_add(seg, bits);
    if (seg->used_mask == 1) segment_free(h, seg); /* pages purged by the cache's timer */
    hak_heap_unlock(h);
    hak_purger_wake_soon();
}

/* Purges free pages that have been free longer than purge_delay_ms (all if
 * force), and the pages inside free blocks of big classes; the caller holds
 * the heap lock. Returns whether dirty pages remain. */
static bool purge_locked(hak_heap *h, bool force, bool owner) {
    uint64_t now = hak_now_ns(), delay = hak_purge_delay_ns();
    bool left = hak_stash_purge(h, force); /* force: a trim, an idle owner's drain */
    /* the owner's small classes: on force (trim), or while it stamps them */
    left |= hak_store_purge(h, now, delay, force); /* its blocks: due at once */
    left |= hak_span_purge_free(h, now, delay, force, owner && (force || h->lock_small));
    for (hak_segment *seg = h->segs; seg; seg = seg->next)
        left |= dirty_purge(seg, now, delay, force);
    return left;
}

void hak_segment_purge(hak_heap *h, bool force) {
    hak_heap_lock(h);
    purge_locked(h, force, true);
    hak_heap_unlock(h);
}

/* The background purger's way in: never waits for the owner (it will be
 * back at the next pass). Returns whether dirty pages remain (or the heap
 * was busy). */
bool hak_segment_purge_try(hak_heap *h, bool force) {
    if (!hak_heap_trylock(h)) return true;
    /* small classes too when the owner, alive, locks their lists; a retired
     * (-1) or pooled (0) heap's are left to whoever owns it next */
    bool left = purge_locked(h, force, h->lock_small && (h->owner > 0 || (h->shared && !h->owner)));
    hak_heap_unlock(h);
    return left;
}

/* Empty segments in the cache: a hint, read without the lock (an aligned
 * int, untorn; the sanitizer is told it is racy by design). */
__attribute__((no_sanitize_thread)) int hak_segment_cached(void) {
    return *(volatile int *)&seg_cache_n;
}

/* Unmaps cached empty segments beyond the seg_cache knob (all if force)
 * and purges the pages of the rest once they have been free long enough. */
bool hak_segment_cache_trim(bool force) {
    bool left = cache_purge(force);
    uint64_t now = hak_now_ns();
    hak_lock(&seg_cache_lock);
    if (force || now - seg_peak_ns >= hak_purge_delay_ns() / 2) { /* the demand peak decays */
        seg_peak -= seg_peak / 4;
        if (force || seg_peak < seg_in_use) seg_peak = seg_in_use;
        seg_peak_ns = now;
    }
    hak_unlock(&seg_cache_lock);
    for (;;) {
        hak_lock(&seg_cache_lock);
        hak_segment *seg = NULL;
        if (seg_cache && (force || seg_cache_n > cache_cap_locked())) {
            seg = seg_cache;
            seg_cache = seg->next;
            seg_cache_n--;
        }
        hak_unlock(&seg_cache_lock);
        if (!seg) return left;
        hak_segmap_set((uintptr_t)seg, HAK_MAP_NONE);
        hak_os_unmap(seg, HAK_SEG_SIZE);
        hak_usage_seg(-(long)HAK_SEG_SIZE);
    }
}

#define SPAN_PAGES_MAX 32 /* the class table's longest span */

/* Pages the shortest span of cls takes (one block's worth). */
int hak_span_min_pages(int cls) {
    return pages_for(cls, (int)((hak_class_size[cls] + HAK_PAGE_SIZE - 1) / HAK_PAGE_SIZE));
}

/* Longest run of free pages in the heap's segments, capped at the longest
 * span: what a thread taking the heap over can carve without mapping. The
 * caller owns the heap (it is about to go to the pool). */
int hak_segment_free_run(hak_heap *h) {
    int best = 0, first;
    for (hak_segment *seg = h->segs; seg && best < SPAN_PAGES_MAX; seg = seg->next) {
        int len = longest_run(seg, &first);
        if (len > best) best = len;
    }
    return best;
}

/* Fork child: a holder lost half-way may have left the cache list broken.
 * Forget the cached segments: they stay mapped, unused (a leak of at most
 * seg_cache x 4 MiB of address space in the child). */
void hak_segment_after_fork(void) {
    if (!hak_lock_take_orphan(&seg_cache_lock)) return;
    seg_cache = NULL;
    seg_cache_n = 0;
    seg_peak = seg_in_use; /* the heaps' segments stay mapped (and counted) in the child */
    hak_unlock(&seg_cache_lock);
}
