/* t_api_realloc_grow — a buffer grown by small reallocs stops being copied.
 *
 * Checks (hakmem only; the counters come from the process's own segment):
 *  - a buffer grown from 4 KiB to 16 MiB in 4 KiB steps keeps every byte;
 *  - it is copied only while it is small: once past 64 KiB it is a mapping
 *    of its own that grows by mremap (realloc_copies of every class stays
 *    at the class steps below 64 KiB, plus the one move out);
 *  - the mapping grows with headroom: a few mremaps per doubling, not one
 *    per page (realloc_remaps);
 *  - shrinking it below half gives the tail back: the address space drops.
 * Why: copying a growing buffer at every size class step costs a copy of
 * the whole buffer every 20 % of growth, and leaves a block behind in every
 * class it passes (peak RSS); a system call per 4 KiB step is as bad.
 */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <malloc.h>
#include <stdint.h>
#include <unistd.h>

/* through pointers: the compiler may not drop a malloc/free pair */
static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;

#define STEP ((size_t)4096)
#define TOP ((size_t)16 << 20)

static uint8_t byte_at(size_t i) {
    return (uint8_t)(tu_mix(i >> 3) >> ((i & 7) * 8));
}

/* Sum of realloc_copies over every class and the large class. */
static uint64_t copies(const struct hak_shm_view *v) {
    uint64_t n = 0;
    for (int c = 0; c <= HAK_CLASS_LARGE; c++) n += hak_shm_ctr_sum(v, c, HAK_CTR_REALLOC_COPIES);
    return n;
}

int main(void) {
    tu_init("t_api_realloc_grow");
    if (!hakmem_loaded()) {
        printf("SKIP: the counters are hakmem's (run through tests/run)\n");
        return TU_SKIP;
    }
    struct hak_shm_view v;
    REQUIRE(tu_attach_self(&v) == 0);
    /* this thread's counters move into its slot at its next slow path */
    free(p_malloc((size_t)2 << 20));
    uint64_t c0 = copies(&v), r0 = hak_shm_proc(&v, HAK_PROC_REALLOC_REMAPS);

    uint8_t *p = NULL;
    size_t len = 0, bad = SIZE_MAX;
    uint64_t copies_small = 0;
    for (size_t n = STEP; n <= TOP; n += STEP) {
        p = p_realloc(p, n);
        REQUIRE(p != NULL);
        if (len == 0) p[len++] = byte_at(0);
        if (bad == SIZE_MAX && (p[0] != byte_at(0) || p[len - 1] != byte_at(len - 1))) bad = len;
        for (size_t i = len; i < n; i++) p[i] = byte_at(i);
        len = n;
        if (n == (size_t)64 << 10) copies_small = copies(&v) - c0;
    }
    for (size_t i = 0; i < len && bad == SIZE_MAX; i++)
        if (p[i] != byte_at(i)) bad = i;
    CHECKF(bad == SIZE_MAX, "byte %zu lost while growing", bad);
    uint64_t c = copies(&v) - c0, r = hak_shm_proc(&v, HAK_PROC_REALLOC_REMAPS) - r0;
    printf("copies up to 64 KiB %llu, in all %llu; remaps %llu\n", (unsigned long long)copies_small,
           (unsigned long long)c, (unsigned long long)r);
    CHECKF(copies_small > 0, "no copy counted below 64 KiB: counters not read");
    CHECKF(c <= copies_small + 1, "copied %llu times past 64 KiB",
           (unsigned long long)(c - copies_small));
    CHECKF(r >= 1 && r <= 40, "%llu mremaps for 64 KiB -> 16 MiB", (unsigned long long)r);

    /* shrink below half: the tail goes back to the OS */
    long vm0 = tu_vm_kib();
    uint8_t *q = p_realloc(p, (size_t)2 << 20);
    REQUIRE(q != NULL);
    long vm1 = tu_vm_kib();
    for (size_t i = 0; i < ((size_t)2 << 20) && bad == SIZE_MAX; i++)
        if (q[i] != byte_at(i)) bad = i;
    CHECKF(bad == SIZE_MAX, "byte %zu lost by the shrink", bad);
    CHECKF(vm0 > 0 && vm0 - vm1 >= 12 << 10, "address space %ld -> %ld KiB after 16 -> 2 MiB", vm0,
           vm1);
    free(q);
    hak_shm_detach(&v);
    return tu_done();
}
