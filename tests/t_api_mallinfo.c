/* t_api_mallinfo — mallinfo2, malloc_stats, malloc_info and mallopt (issue 8
 * item 7).
 *  - malloc_stats writes glibc's layout to stderr ("Arena 0:", "system
 *    bytes", "in use bytes", "Total (incl. mmap):", "max mmap regions"), and
 *    with hakmem its figures are hakmem's: system bytes >= 10 MiB while 10
 *    MiB of small blocks are live;
 *  - malloc_info(0, fp) writes one <malloc version="1"> ... </malloc>
 *    document with <heap nr="0">, <total type="mmap" .../> and <system
 *    type="current" size="N"/>; malloc_info(1, fp) returns EINVAL;
 *  - mallopt returns 1 for glibc's options with valid values (M_TRIM_THRESHOLD,
 *    M_MMAP_THRESHOLD, M_ARENA_MAX, ...), 0 for M_MXFAST beyond 160; with
 *    hakmem also 0 for an unknown option (glibc 2.36 answers 1 there);
 *  - mallinfo2 with hakmem: with every byte of the process's shared segment
 *    (/dev/shm/hakmem.<pid>) after its header overwritten, the figures stay
 *    those of the process: uordblks >= 10 MiB while 10 MiB are live,
 *    uordblks <= arena, arena + hblkhd <= the process's address space.
 * Why: tools call these to look at a program's heap; hakmem's copies used to
 * be glibc's (describing an empty arena) or trusted a writable segment.
 */
#include "testutil.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void *(*volatile p_malloc)(size_t) = malloc;

/* malloc_stats' output, captured from fd 2 */
static void test_stats(int hak) {
    char path[] = "/tmp/t_api_mallinfo.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[2048] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    CHECKF(n > 0, "malloc_stats wrote nothing to stderr");
    printf("malloc_stats:\n%s", buf);
    unsigned long sys = 0, inuse = 0, tsys = 0, tinuse = 0, regions = 0, mbytes = 0;
    int got = sscanf(buf,
                     "Arena 0:\nsystem bytes = %lu\nin use bytes = %lu\nTotal (incl. mmap):\n"
                     "system bytes = %lu\nin use bytes = %lu\nmax mmap regions = %lu\n"
                     "max mmap bytes = %lu",
                     &sys, &inuse, &tsys, &tinuse, &regions, &mbytes);
    CHECKF(got == 6, "malloc_stats output not in glibc's layout (%d fields parsed)", got);
    CHECK(tsys >= sys && tinuse >= inuse && inuse <= sys);
    if (hak) CHECKF(sys >= (10u << 20), "system bytes %lu with 10 MiB live", sys);
}

static void test_info(void) {
    char *doc = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&doc, &len);
    REQUIRE(fp);
    CHECK(malloc_info(0, fp) == 0);
    fclose(fp);
    REQUIRE(doc);
    CHECKF(strncmp(doc, "<malloc version=\"1\">\n", 21) == 0, "malloc_info starts: %.40s", doc);
    CHECKF(len > 10 && strcmp(doc + len - 10, "</malloc>\n") == 0, "malloc_info ends: %s",
           len > 20 ? doc + len - 20 : doc);
    CHECK(strstr(doc, "<heap nr=\"0\">") != NULL);
    CHECK(strstr(doc, "<total type=\"mmap\" count=\"") != NULL);
    unsigned long cur = 0;
    const char *s = strstr(doc, "<system type=\"current\" size=\"");
    CHECK(s && sscanf(s, "<system type=\"current\" size=\"%lu\"/>", &cur) == 1 && cur > 0);
    free(doc);
    fp = fopen("/dev/null", "w");
    REQUIRE(fp);
    CHECK(malloc_info(1, fp) == EINVAL);
    fclose(fp);
}

static void test_mallopt(int hak) {
    CHECK(mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024) == 1);
    CHECK(mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1);
    CHECK(mallopt(M_ARENA_MAX, 4) == 1);
    CHECK(mallopt(M_ARENA_TEST, 2) == 1);
    CHECK(mallopt(M_TOP_PAD, 0) == 1);
    CHECK(mallopt(M_MMAP_MAX, 65536) == 1);
    CHECK(mallopt(M_MXFAST, 64) == 1);
    CHECK(mallopt(M_MXFAST, 100000) == 0);
    if (hak) CHECK(mallopt(4242, 1) == 0);
    /* back to defaults-ish: glibc's default trim threshold */
    CHECK(mallopt(M_TRIM_THRESHOLD, 128 * 1024) == 1);
}

/* Overwrites the process's shared segment after its header. */
static int scribble_segment(void) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/hakmem.%d", (int)getpid());
    int fd = open(path, O_RDWR);
    if (fd < 0) return 0;
    struct stat st;
    int ok = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 4096) {
        char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            memset(m + 4096, 0x7f, (size_t)st.st_size - 4096);
            munmap(m, (size_t)st.st_size);
            ok = 1;
        }
    }
    close(fd);
    return ok;
}

int main(void) {
    tu_init("t_api_mallinfo");
    int hak = hakmem_loaded();
    enum { N = 10 * 1024 * 1024 / 64 };
    void **v = malloc(N * sizeof *v);
    REQUIRE(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = p_malloc(64);
        REQUIRE(v[i]);
        memset(v[i], 1, 64);
    }
    test_stats(hak);
    test_info();
    test_mallopt(hak);
    if (hak) {
        int scribbled = scribble_segment();
        printf("segment %s\n", scribbled ? "overwritten" : "not found (HAKMEM_SHM=0?)");
        void *more = p_malloc(100); /* a slow path or two with the segment scribbled */
        free(more);
        struct mallinfo2 mi = mallinfo2();
        long vm = tu_vm_kib();
        printf("mallinfo2: arena %zu uordblks %zu fordblks %zu hblkhd %zu keepcost %zu; VmSize "
               "%ld KiB\n",
               mi.arena, mi.uordblks, mi.fordblks, mi.hblkhd, mi.keepcost, vm);
        CHECKF(mi.uordblks >= (10u << 20), "uordblks %zu with 10 MiB live", mi.uordblks);
        CHECKF(mi.uordblks <= mi.arena, "uordblks %zu > arena %zu", mi.uordblks, mi.arena);
        CHECKF(mi.arena + mi.hblkhd <= (size_t)vm * 1024, "arena %zu + hblkhd %zu > VmSize",
               mi.arena, mi.hblkhd);
        CHECK(mi.fordblks + mi.uordblks == mi.arena);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        struct mallinfo m1 = mallinfo(); /* the same figures as int */
#pragma GCC diagnostic pop
        CHECKF((size_t)m1.uordblks + (1u << 20) >= mi.uordblks &&
                   (size_t)m1.uordblks <= mi.uordblks + (1u << 20),
               "mallinfo uordblks %d, mallinfo2 %zu", m1.uordblks, mi.uordblks);
    }
    for (size_t i = 0; i < N; i++) free(v[i]);
    free(v);
    return tu_done();
}
