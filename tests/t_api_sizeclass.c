/* t_api_sizeclass — size classes and malloc_usable_size.
 *
 * Any allocator: for every size 0..140000 (step 1 up to 8 KiB, then a prime
 * step plus every class boundary +-1) malloc_usable_size(malloc(n)) >= n, and
 * it is stable (same answer twice, same answer after writing the block).
 *
 * With hakmem loaded (the table is the one in shm/hakmem_shm.h):
 *  - every size 1..HAK_CLASS_MAX is served from the smallest class that fits:
 *    usable == class size (so internal waste stays under 25 % as documented);
 *    under an address-space limit (ulimit -v) sizes above 128 KiB are mapped
 *    alone instead (docs/allocator.md) and only get the large-block bound;
 *  - malloc(0) gets the smallest class;
 *  - the class table is increasing and made of multiples of 16;
 *  - sizes above HAK_CLASS_MAX get usable >= n with bounded slack
 *    (< n/8 + 128 KiB);
 *  - unless HAKMEM_SHM=0, /dev/shm/hakmem.<pid> appears once the process
 *    has lived ~50 ms and names our memfd, which carries the magic, ABI
 *    major, our pid, the LIVE flag and the same class table.
 * Why: the class table is shared by the allocator, hakctl and hakmemd; a
 * lookup-table off-by-one (e.g. at 1024/1025, the edge of the direct table)
 * wastes memory or, worse, under-sizes blocks.
 */
#include "testutil.h"
#include "hakmem_shm.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void *(*volatile p_malloc)(size_t) = malloc;

static const uint32_t classes[] = {
#define X(i, sz, span) sz,
    HAK_CLASS_TABLE(X)
#undef X
};
enum { NCLASS = sizeof classes / sizeof classes[0] };

static size_t class_for(size_t n) {
    for (int i = 0; i < NCLASS; i++)
        if (classes[i] >= n) return classes[i];
    return 0;
}

static int as_limited; /* RLIMIT_AS is finite */

static void check_size(size_t n, int hak) {
    void *p = p_malloc(n);
    CHECKF(p != NULL, "malloc(%zu) = NULL", n);
    if (!p) return;
    size_t us = malloc_usable_size(p);
    CHECKF(us >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, us);
    if (us >= n && us > 0) {
        ((volatile char *)p)[0] = 1;
        ((volatile char *)p)[us - 1] = 2;
    }
    size_t us2 = malloc_usable_size(p);
    CHECKF(us2 == us, "malloc_usable_size(%p) changed %zu -> %zu", p, us, us2);
    if (hak) {
        if (n <= HAK_CLASS_MAX && !(as_limited && n > (128u << 10))) {
            size_t want = class_for(n ? n : 1);
            CHECKF(us == want, "hakmem: malloc(%zu) usable %zu, want class size %zu", n, us, want);
        } else {
            CHECKF(us < n + n / 8 + (128u << 10), "hakmem: large malloc(%zu) usable %zu too big", n,
                   us);
        }
    }
    free(p);
}

static void test_shm_segment(void) {
    const char *e = getenv("HAKMEM_SHM");
    if (e && strcmp(e, "0") == 0) {
        printf("HAKMEM_SHM=0: segment check skipped\n");
        return;
    }
    char path[64], text[128], file[64];
    struct stat ls;
    snprintf(path, sizeof path, "/dev/shm/" HAK_SHM_PREFIX "%d", (int)getpid());
    /* published once the process has lived ~50 ms, at a slow path (large
     * blocks always take it) */
    for (int i = 0; i < 500 && lstat(path, &ls) != 0; i++) {
        usleep(10000);
        free(malloc(2 << 20));
    }
    /* a link naming our memfd: "/proc/<pid>/fd/<fd>:pidns=<inode>" */
    ssize_t tn = readlink(path, text, sizeof text - 1);
    CHECKF(tn > 0, "hakmem loaded but %s is not there (%s)", path, strerror(errno));
    if (tn <= 0) return;
    text[tn] = 0;
    int memfd = -1;
    CHECKF(sscanf(text, "/proc/%*d/fd/%d:pidns=", &memfd) == 1, "%s -> %s", path, text);
    snprintf(file, sizeof file, "/proc/self/fd/%d", memfd);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    CHECKF(fd >= 0, "%s -> %s: cannot open %s (%s)", path, text, file, strerror(errno));
    if (fd < 0) return;
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    CHECKF((size_t)st.st_size >= sizeof(struct hak_shm_header), "%s: size %lld", path,
           (long long)st.st_size);
    CHECKF((st.st_mode & 077) == 0, "%s: mode %o is accessible to others", path,
           (unsigned)st.st_mode & 0777);
    if ((size_t)st.st_size < sizeof(struct hak_shm_header)) {
        close(fd);
        return;
    }
    const unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    REQUIRE(m != MAP_FAILED);
    const struct hak_shm_header *h = (const struct hak_shm_header *)m;
    CHECKF(h->magic == HAK_SHM_MAGIC, "segment magic %#llx", (unsigned long long)h->magic);
    CHECKF(h->abi_major == HAK_SHM_ABI_MAJOR, "segment abi_major %u", h->abi_major);
    CHECKF(h->pid == (int32_t)getpid(), "segment pid %d, ours %d", h->pid, (int)getpid());
    CHECKF(h->flags & HAK_SHM_F_LIVE, "segment flags %#x lack LIVE", h->flags);
    CHECKF(h->total_size == (uint64_t)st.st_size, "total_size %llu, file %lld",
           (unsigned long long)h->total_size, (long long)st.st_size);
    CHECKF(h->n_classes == NCLASS, "segment n_classes %u, want %d", h->n_classes, NCLASS);
    if (h->n_classes == NCLASS &&
        (uint64_t)h->class_off + NCLASS * sizeof(uint32_t) <= (uint64_t)st.st_size) {
        const uint32_t *cs = (const uint32_t *)(m + h->class_off);
        for (int i = 0; i < NCLASS; i++)
            CHECKF(cs[i] == classes[i], "segment class %d = %u, header says %u", i, cs[i],
                   classes[i]);
    }
    munmap((void *)m, (size_t)st.st_size);
}

int main(void) {
    tu_init("t_api_sizeclass");
    struct rlimit rl;
    as_limited = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    int hak = hakmem_loaded();

    /* the table itself (compiled from the shared header) */
    CHECK(NCLASS == HAK_NUM_CLASSES);
    CHECK(classes[NCLASS - 1] == HAK_CLASS_MAX);
    for (int i = 0; i < NCLASS; i++) {
        CHECKF(classes[i] % 16 == 0, "class %d size %u not a multiple of 16", i, classes[i]);
        if (classes[i] > HAK_SMALL_MAX && classes[i] <= HAK_FINE_MAX)
            CHECKF(classes[i] % 128 == 0, "class %d size %u not a multiple of 128", i, classes[i]);
        if (i) CHECKF(classes[i] > classes[i - 1], "class %d not increasing", i);
        if (i && classes[i - 1] >= 128)
            CHECKF(classes[i] - classes[i - 1] <= classes[i - 1] / 4,
                   "class %d (%u) more than 25 %% above class %d", i, classes[i], i - 1);
        /* eight per doubling where requests a size word past 1 and 4 KiB land */
        if (i && ((classes[i - 1] >= 1024 && classes[i] <= 2048) ||
                  (classes[i - 1] >= 4096 && classes[i] <= 8192)))
            CHECKF(classes[i] - classes[i - 1] <= classes[i - 1] / 8,
                   "class %d (%u) more than 12.5 %% above class %d", i, classes[i], i - 1);
    }

    for (size_t n = 0; n <= 8192; n++) check_size(n, hak);
    for (size_t n = 8193; n <= 140000; n += 61) check_size(n, hak);
    for (int i = 0; i < NCLASS; i++) {
        check_size(classes[i] - 1, hak);
        check_size(classes[i], hak);
        check_size(classes[i] + 1, hak);
    }
    const size_t large[] = {131073,   135000,         200000,   262144,
                            1u << 20, (1u << 20) + 1, 7u << 20, (32u << 20) + 5};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) check_size(large[i], hak);

    if (hak)
        test_shm_segment();
    else
        printf("hakmem not loaded: class-exactness and segment checks skipped\n");
    return tu_done();
}
