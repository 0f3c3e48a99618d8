/* hak_large.c — blocks above the largest class: one 4 MiB-aligned mapping
 * each, a header at its start (the user pointer min(align, 4 MiB) above it,
 * so in the header's 4 MiB chunk or the next: segmap value 2 or 3, and any
 * alignment the address space allows), and a bounded cache of freed mappings so a
 * program that frees and allocates big buffers does not hit the kernel each
 * time. The cache has its own lock; the mapping needs no owner. */
#include "hak_internal.h"

#include <string.h>
#include <sys/mman.h>

#define LARGE_MAGIC 0x454752414c4b4148ull /* live */
#define LARGE_FREED 0x444545524b4b4148ull /* in the cache */
#define LARGE_CACHE_MAX 64

typedef struct hak_large {
    uint64_t magic;
    size_t map_size; /* bytes mapped, from the header */
    size_t offset;   /* user pointer - header */
    uint64_t freed_ns;
    struct hak_large *next;
} hak_large;

hak_lock_t hak_large_lock;
static hak_large *cache;
static int cache_n;
static size_t cache_bytes;

static size_t round_page(size_t n) {
    return (n + 4095) & ~(size_t)4095;
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

/* *fresh (if given) tells whether the memory is a new, zeroed mapping. */
void *hak_large_alloc(size_t n, size_t align, bool *fresh) {
    if (align < 64) align = 64;
    if (n > (1ul << HAK_ADDR_BITS) || align > (1ul << HAK_ADDR_BITS)) return NULL;
    /* the header fits below the first aligned address; for alignments of
     * a chunk or more the map starts a chunk below an aligned address */
    size_t offset = align < HAK_SEG_SIZE ? align : HAK_SEG_SIZE;
    size_t need = round_page(offset + (n ? n : 1)); /* malloc(0) has a usable byte */
    hak_large *l = NULL;
    hak_lock(&hak_large_lock);
    for (hak_large **pp = &cache; *pp; pp = &(*pp)->next) {
        /* reuse a mapping that fits without wasting more than a quarter */
        if ((*pp)->map_size >= need && (*pp)->map_size - need <= need / 4 &&
            ((uintptr_t)*pp + offset) % align == 0) {
            l = *pp;
            *pp = l->next;
            cache_n--;
            cache_bytes -= l->map_size;
            HAK_PROC_SUB(LARGE_CACHED, l->map_size);
            break;
        }
    }
    hak_unlock(&hak_large_lock);
    if (fresh) *fresh = l == NULL;
    if (!l) {
        l = align > HAK_SEG_SIZE ? hak_os_map_offset(need, align, offset)
                                 : hak_os_map_aligned(need, HAK_SEG_SIZE);
        if (!l) return NULL;
        l->map_size = need;
        hak_usage_large(1, (long)need);
        hak_segmap_set((uintptr_t)l, HAK_MAP_LARGE);
    }
    l->magic = LARGE_MAGIC;
    l->offset = offset;
    char *p = (char *)l + offset;
    size_t k = ((uintptr_t)p >> HAK_SEG_SHIFT) - ((uintptr_t)l >> HAK_SEG_SHIFT);
    if (k) hak_segmap_set((uintptr_t)p, (uint8_t)(HAK_MAP_LARGE + k));
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_ALLOCS, 1);
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_LARGE_BYTES, l->map_size - offset);
    HAK_PROBE2(large_alloc, p, n);
    return p;
}

static void large_unmap(hak_large *l) {
    hak_usage_large(-1, -(long)l->map_size);
    hak_segmap_set((uintptr_t)l, HAK_MAP_NONE);
    hak_os_unmap(l, l->map_size);
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
    size_t limit = (size_t)HAK_KNOB(LARGE_CACHE_MB) << 20;
    hak_lock(&hak_large_lock);
    if (cache_n < LARGE_CACHE_MAX && cache_bytes + l->map_size <= limit) {
        l->next = cache;
        cache = l;
        cache_n++;
        cache_bytes += l->map_size;
        HAK_PROC_ADD(LARGE_CACHED, l->map_size);
        l = NULL;
    }
    hak_unlock(&hak_large_lock);
    if (l) large_unmap(l);
    return true;
}

size_t hak_large_usable(void *p) {
    hak_large *l = large_of(p);
    return l && l->magic == LARGE_MAGIC ? l->map_size - l->offset : 0;
}

/* Unmaps cached blocks older than purge_delay_ms (all if force). */
void hak_large_cache_trim(bool force) {
    uint64_t now = hak_now_ns(), delay = (uint64_t)HAK_KNOB(PURGE_DELAY_MS) * 1000000ull;
    hak_large *drop = NULL;
    hak_lock(&hak_large_lock);
    for (hak_large **pp = &cache; *pp;) {
        hak_large *l = *pp;
        if (force || now - l->freed_ns >= delay) {
            *pp = l->next;
            cache_n--;
            cache_bytes -= l->map_size;
            HAK_PROC_SUB(LARGE_CACHED, l->map_size);
            l->next = drop;
            drop = l;
        } else {
            pp = &l->next;
        }
    }
    hak_unlock(&hak_large_lock);
    while (drop) {
        hak_large *next = drop->next;
        large_unmap(drop);
        drop = next;
    }
}

/* realloc of a large block to n > HAK_CLASS_MAX bytes: in place when it
 * fits, else the pages move to a new aligned place with mremap (page tables,
 * not bytes). Returns NULL (p untouched) if that is not possible. */
void *hak_large_realloc(void *p, size_t n) {
    hak_large *l = large_of(p);
    if (!l || l->magic != LARGE_MAGIC || n > (1ul << HAK_ADDR_BITS)) return NULL;
    size_t old_size = l->map_size, old_usable = old_size - l->offset;
    size_t need = round_page(l->offset + n);
    if (need <= l->map_size) return p;
    if (((uintptr_t)p >> HAK_SEG_SHIFT) != ((uintptr_t)l >> HAK_SEG_SHIFT)) return NULL;
    void *to = mremap(l, l->map_size, need, 0); /* grow where it lies */
    if (to == MAP_FAILED) {
        char *target = hak_os_map_aligned(need, HAK_SEG_SIZE);
        if (!target) return NULL;
        to = mremap(l, old_size, need, MREMAP_MAYMOVE | MREMAP_FIXED, target);
        if (to == MAP_FAILED) {
            hak_os_unmap(target, need);
            return NULL;
        }
        HAK_PROC_SUB(MAPPED, old_size); /* the old range is gone; target was counted */
        hak_segmap_set((uintptr_t)p, HAK_MAP_NONE);
        l = to;
        hak_segmap_set((uintptr_t)l, HAK_MAP_LARGE);
    } else {
        HAK_PROC_ADD(MAPPED, need - old_size);
    }
    hak_usage_large(0, (long)(need - old_size));
    l->map_size = need;
    hak_ctr_add(HAK_CLASS_LARGE, HAK_CTR_LARGE_BYTES, (need - l->offset) - old_usable);
    return (char *)l + l->offset;
}

/* Fork child: a holder lost half-way may have left the cache list broken.
 * Forget the cached blocks: they stay mapped, unused (at most
 * large_cache_mb of address space leaked in the child). */
void hak_large_after_fork(void) {
    if (!hak_lock_take_orphan(&hak_large_lock)) return;
    HAK_PROC_SUB(LARGE_CACHED, cache_bytes);
    cache = NULL;
    cache_n = 0;
    cache_bytes = 0;
    hak_unlock(&hak_large_lock);
}
