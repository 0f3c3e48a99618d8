/* floor_alloc.so — the least an allocator can do, as a lower bound for a
 * single-threaded workload's time: what a row takes with it is the
 * workload's own part (its loop, its misses, its branches), which no
 * allocator removes. Not an allocator to use: one thread only, no checks,
 * nothing ever unmapped, large blocks never reused.
 *
 *   LD_PRELOAD=bench/bin/floor_alloc.so bench/bin/min_trial rm1024 300
 *
 * malloc of at most 1 KiB: pop the list of its 16-byte class (12
 * instructions); free: the class from a byte per 64 KiB chunk, push (14).
 * A chunk holds blocks of one class, carved in address order, as the
 * allocators it stands in for do. Bigger blocks take whole chunks.
 * docs/allocator.md, "random_mixed and mid_large_mt: what is left".        */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define REGION (1ull << 34) /* reserved, not committed */
#define CHUNK_SHIFT 16
#define NCHUNKS (REGION >> CHUNK_SHIFT)
#define SMALL_MAX 1024
#define BIG 255

typedef struct blk {
    struct blk *next;
} blk;

static char *base;
static unsigned char cls_of[NCHUNKS];
static size_t big_size[NCHUNKS];
static size_t next_chunk;
static blk *head[SMALL_MAX / 16 + 1];
static char *cur[SMALL_MAX / 16 + 1], *end[SMALL_MAX / 16 + 1];

static int init(void) {
    char *p = mmap(NULL, REGION + (1ull << CHUNK_SHIFT), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return -1;
    base = (char *)(((uintptr_t)p + (1ull << CHUNK_SHIFT) - 1) & ~((1ull << CHUNK_SHIFT) - 1));
    return 0;
}

static void *carve(size_t n) {
    if (!base && init()) return NULL;
    if (n <= SMALL_MAX) {
        unsigned c = n ? (unsigned)((n + 15) >> 4) : 1;
        if (cur[c] + c * 16 > end[c]) {
            if (next_chunk >= NCHUNKS) return NULL;
            cur[c] = base + (next_chunk << CHUNK_SHIFT);
            end[c] = cur[c] + (1u << CHUNK_SHIFT);
            cls_of[next_chunk++] = (unsigned char)c;
        }
        void *p = cur[c];
        cur[c] += c * 16;
        return p;
    }
    size_t k = (n + (1u << CHUNK_SHIFT) - 1) >> CHUNK_SHIFT;
    if (k > NCHUNKS - next_chunk) return NULL;
    void *p = base + (next_chunk << CHUNK_SHIFT);
    cls_of[next_chunk] = BIG;
    big_size[next_chunk] = k << CHUNK_SHIFT;
    next_chunk += k;
    return p;
}

static __attribute__((noinline)) void *slow(size_t n) {
    void *p = carve(n);
    if (!p) errno = ENOMEM;
    return p;
}

void *malloc(size_t n) {
    if (__builtin_expect(n <= SMALL_MAX, 1)) {
        blk *b = head[(n + 15) >> 4];
        if (__builtin_expect(b != NULL, 1)) {
            head[(n + 15) >> 4] = b->next;
            return b;
        }
    }
    return slow(n); /* a tail call: no frame on the path above */
}

void free(void *p) {
    size_t i = (size_t)((uintptr_t)p - (uintptr_t)base) >> CHUNK_SHIFT;
    if (__builtin_expect(i < NCHUNKS, 1)) { /* NULL and foreign pointers fall outside */
        unsigned c = cls_of[i];
        if (c != BIG) {
            ((blk *)p)->next = head[c];
            head[c] = p;
        }
    }
}

size_t malloc_usable_size(void *p) {
    size_t i = (size_t)((uintptr_t)p - (uintptr_t)base) >> CHUNK_SHIFT;
    if (i >= NCHUNKS) return 0; /* NULL too */
    unsigned c = cls_of[i];
    return c != BIG ? c * 16u : big_size[i] - (size_t)((char *)p - (base + (i << CHUNK_SHIFT)));
}

void *calloc(size_t a, size_t b) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void *realloc(void *p, size_t n) {
    if (!p) return malloc(n);
    size_t u = malloc_usable_size(p);
    if (n <= u) return p;
    void *q = malloc(n);
    if (q) {
        memcpy(q, p, u);
        free(p);
    }
    return q;
}

/* up to the chunk's alignment: a big block starts a chunk */
void *memalign(size_t al, size_t n) {
    if (al <= 16) return malloc(n);
    if (al > (1u << CHUNK_SHIFT)) {
        errno = EINVAL;
        return NULL;
    }
    return slow(n > SMALL_MAX ? n : SMALL_MAX + 1);
}
int posix_memalign(void **r, size_t al, size_t n) {
    void *p = memalign(al, n);
    if (!p) return errno;
    *r = p;
    return 0;
}
void *aligned_alloc(size_t al, size_t n) {
    return memalign(al, n);
}
void *valloc(size_t n) {
    return memalign(4096, n);
}
void *pvalloc(size_t n) {
    return memalign(4096, (n + 4095) & ~(size_t)4095);
}
