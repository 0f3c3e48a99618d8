/* oom_helper — out-of-memory behaviour under an address-space limit; driven
 * by tests/t_oom.sh and used by hand to measure (docs/allocator.md). Run it
 * under `ulimit -v KIB`; not a test by itself, hence not named t_*.
 *
 *   oom_helper fill SIZE THREADS BIG_MIB
 *       THREADS threads allocate blocks of SIZE bytes until malloc returns
 *       NULL (each must say errno ENOMEM); prints the usable MiB. Then frees
 *       everything, tries malloc(BIG_MIB MiB) (0: skip) and fills again, to
 *       show the memory came back:
 *         usable_mib=N errno_ok=1 big_ok=1 refill_mib=M
 *   oom_helper pinned SIZE
 *       one thread fills the limit with SIZE-byte blocks and exits; all its
 *       blocks are freed but one in each 4 MiB of address space (a dead
 *       thread's memory kept by a few live blocks); then a thread that
 *       already had a heap fills:  freed_mib=F refill_mib=R errno_ok=1
 *   oom_helper mixed LIVE_MIB
 *       random live blocks of 100 KB-900 KB up to LIVE_MIB MiB, then 20000
 *       random replacements; prints the largest growth of the address space
 *       (VmSize) in MiB: mapped_mib=N
 *   oom_helper aligned SIZE COUNT
 *       COUNT x posix_memalign(64, SIZE), free them all, COUNT x malloc(SIZE):
 *       prints how many of the malloc'd addresses were freed aligned blocks
 *       and how much address space the mallocs added:
 *         reused=N of COUNT new_mib=M
 * Exit status 0 when every allocation failure was NULL + ENOMEM, else 1.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*volatile p_malloc)(size_t) = malloc;
static void (*volatile p_free)(void *) = free;
static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;

static pthread_barrier_t start; /* every thread exists before any fills */

/* The blocks a thread holds, in 64 KiB chunks: a bookkeeping array grown
 * by realloc would need twice its size in one piece now and then, and its
 * failure, not malloc(SIZE)'s, would end the fill. */
#define CHUNK_SLOTS ((65536 - 2 * sizeof(void *)) / sizeof(void *))
struct chunk {
    struct chunk *next;
    size_t n;
    void *p[CHUNK_SLOTS];
};

struct filler {
    pthread_t t;
    size_t size;
    struct chunk *blocks;
    size_t n;
    int bad_errno;
};

/* Allocates until NULL; one write a page keeps the block honest without
 * making the whole limit resident. */
static void fill_blocks(struct filler *f) {
    for (;;) {
        if (!f->blocks || f->blocks->n == CHUNK_SLOTS) {
            errno = 0;
            struct chunk *c = malloc(sizeof(*c));
            if (!c) {
                if (errno != ENOMEM) f->bad_errno = 1;
                break;
            }
            c->next = f->blocks;
            c->n = 0;
            f->blocks = c;
        }
        errno = 0;
        char *p = p_malloc(f->size);
        if (!p) {
            if (errno != ENOMEM) f->bad_errno = 1;
            break;
        }
        p[0] = 1;
        p[f->size - 1] = 1;
        f->blocks->p[f->blocks->n++] = p;
        f->n++;
    }
}

static void *fill(void *arg) {
    pthread_barrier_wait(&start);
    fill_blocks(arg);
    return NULL;
}

static double run_fill(struct filler *f, int threads, size_t size, int *bad) {
    double mib = 0;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        memset(&f[i], 0, sizeof(f[i]));
        f[i].size = size;
        if (pthread_create(&f[i].t, NULL, fill, &f[i])) {
            fprintf(stderr, "pthread_create failed\n");
            exit(2);
        }
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(f[i].t, NULL);
        mib += (double)f[i].n * (double)size / 1048576.0;
        *bad |= f[i].bad_errno;
    }
    pthread_barrier_destroy(&start);
    return mib;
}

static void free_all(struct filler *f, int threads) {
    for (int i = 0; i < threads; i++) {
        for (struct chunk *c = f[i].blocks, *next; c; c = next) {
            for (size_t j = 0; j < c->n; j++) p_free(c->p[j]);
            next = c->next;
            free(c);
        }
        f[i].blocks = NULL;
        f[i].n = 0;
    }
}

static int mode_fill(size_t size, int threads, size_t big_mib) {
    struct filler f[64];
    int bad = 0;
    if (threads < 1 || threads > 64) return 2;
    double mib = run_fill(f, threads, size, &bad);
    free_all(f, threads);
    int big_ok = 1;
    if (big_mib) {
        errno = 0;
        char *p = p_malloc(big_mib << 20);
        big_ok = p != NULL;
        if (!p && errno != ENOMEM) bad = 1;
        if (p) p[0] = 1;
        p_free(p);
    }
    double again = run_fill(f, threads, size, &bad);
    free_all(f, threads);
    printf("usable_mib=%.0f errno_ok=%d big_ok=%d refill_mib=%.0f\n", mib, !bad, big_ok, again);
    return bad;
}

struct mixed {
    void *slot[4096];
    size_t size[4096], live;
    uint64_t rnd;
    long peak_kib;
};

static uint64_t next_rnd(struct mixed *m) {
    m->rnd ^= m->rnd << 13, m->rnd ^= m->rnd >> 7, m->rnd ^= m->rnd << 17;
    return m->rnd;
}

/* Fills empty slots with 100 KB-900 KB blocks until target bytes are live. */
static int mixed_fill(struct mixed *m, size_t target) {
    while (m->live < target) {
        uint64_t r = next_rnd(m);
        size_t i = r % 4096, n = 100000 + (r >> 20) % 800001;
        if (m->slot[i]) continue;
        char *p = p_malloc(n);
        if (!p) {
            printf("malloc(%zu) failed at live %zu MiB\n", n, m->live >> 20);
            return 1;
        }
        p[0] = 1;
        m->slot[i] = p;
        m->size[i] = n;
        m->live += n;
        long vm = tu_vm_kib();
        if (vm > m->peak_kib) m->peak_kib = vm;
    }
    return 0;
}

static int mode_mixed(size_t live_mib) {
    static struct mixed m = {.rnd = 88172645463325252ull};
    size_t target = live_mib << 20;
    long base = tu_vm_kib();
    m.peak_kib = base;
    if (mixed_fill(&m, target)) return 1;
    for (int op = 0; op < 20000; op++) { /* replace a random live block */
        size_t i = next_rnd(&m) % 4096;
        if (!m.slot[i]) continue;
        p_free(m.slot[i]);
        m.slot[i] = NULL;
        m.live -= m.size[i];
        if (mixed_fill(&m, target)) return 1;
    }
    printf("mapped_mib=%ld live_mib=%zu\n", (m.peak_kib - base) >> 10, m.live >> 20);
    return 0;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int mode_aligned(size_t size, size_t count) {
    void **v = calloc(count, sizeof(void *));
    if (!v) return 2;
    for (size_t i = 0; i < count; i++) {
        if (p_posix_memalign(&v[i], 64, size)) return 1;
        memset(v[i], 1, 64);
    }
    for (size_t i = 0; i < count; i++) p_free(v[i]);
    qsort(v, count, sizeof(void *), cmp_ptr);
    size_t reused = 0;
    long vm0 = tu_vm_kib();
    void **w = calloc(count, sizeof(void *));
    if (!w) return 2;
    for (size_t i = 0; i < count; i++) {
        w[i] = p_malloc(size);
        if (!w[i]) return 1;
        if (bsearch(&w[i], v, count, sizeof(void *), cmp_ptr)) reused++;
    }
    long grown = tu_vm_kib() - vm0;
    for (size_t i = 0; i < count; i++) p_free(w[i]);
    printf("reused=%zu of %zu new_mib=%ld\n", reused, count, grown >> 10);
    free(v);
    free(w);
    return 0;
}

/* mode pinned: a thread whose heap exists before the first filler exits,
 * and which fills only after that one's blocks were freed */
static pthread_barrier_t ready, go;
static void *late_filler(void *arg) {
    struct filler *f = arg;
    p_free(p_malloc(f->size)); /* a heap of its own */
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&go);
    fill_blocks(f);
    return NULL;
}

static void *first_filler(void *arg) {
    fill_blocks(arg);
    return NULL;
}

static int mode_pinned(size_t size) {
    static struct filler a, b;
    a.size = b.size = size;
    p_free(p_malloc(1)); /* main's heap is its own, not the first filler's once it exits */
    pthread_barrier_init(&ready, NULL, 2);
    pthread_barrier_init(&go, NULL, 2);
    pthread_t ta, tb;
    if (pthread_create(&tb, NULL, late_filler, &b)) return 2;
    pthread_barrier_wait(&ready);
    if (pthread_create(&ta, NULL, first_filler, &a)) return 2;
    pthread_join(ta, NULL);
    /* all but the first block in each 4 MiB of address space: a few live
     * blocks keep a dead thread's memory */
    size_t freed = 0;
    char seen[1 << 15] = {0}; /* a bit per 4 MiB of a 47-bit address space, hashed */
    for (struct chunk *c = a.blocks; c; c = c->next) {
        for (size_t j = 0; j < c->n; j++) {
            uintptr_t k = ((uintptr_t)c->p[j] >> 22) % (sizeof(seen) * 8);
            if (!(seen[k / 8] & (1 << (k % 8)))) {
                seen[k / 8] |= (char)(1 << (k % 8));
                continue;
            }
            p_free(c->p[j]);
            c->p[j] = NULL;
            freed++;
        }
    }
    pthread_barrier_wait(&go);
    pthread_join(tb, NULL);
    printf("freed_mib=%.0f refill_mib=%.0f errno_ok=%d\n", (double)freed * (double)size / 1048576.0,
           (double)b.n * (double)size / 1048576.0, !(a.bad_errno | b.bad_errno));
    return a.bad_errno | b.bad_errno;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[1], "fill") == 0)
        return mode_fill(strtoul(argv[2], NULL, 0), atoi(argv[3]), strtoul(argv[4], NULL, 0));
    if (argc >= 3 && strcmp(argv[1], "mixed") == 0) return mode_mixed(strtoul(argv[2], NULL, 0));
    if (argc >= 3 && strcmp(argv[1], "pinned") == 0) return mode_pinned(strtoul(argv[2], NULL, 0));
    if (argc >= 4 && strcmp(argv[1], "aligned") == 0)
        return mode_aligned(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
    fprintf(stderr, "usage: oom_helper fill SIZE THREADS BIG_MIB | pinned SIZE | mixed LIVE_MIB | "
                    "aligned SIZE COUNT\n");
    return 2;
}
