/* shm_sum.c — all counters of a segment in one pass over its slots (for
 * hakmemd, which samples hundreds of processes a second; tools only, never
 * called inside the allocator).
 *
 * A segment is a tmpfs file whose never-used rows are holes; a read through
 * the mapping would allocate every one of them (2 MB a process). mincore()
 * tells which pages exist; a hole reads as zero, so it is skipped. */
#include "shm_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int hak_shm_ctr_sum_all(const struct hak_shm_view *v, const int *ctrs, int n, uint64_t *out,
                        int outcap, int *ncls_out) {
    if (!v || !v->hdr || n <= 0 || !out) return -EINVAL;
    const struct hak_shm_header *h = v->hdr;
    uint32_t n_ctrs = LOAD(&h->n_ctrs), cs = LOAD(&h->ctr_cslots);
    uint32_t off = LOAD(&h->slot_off), ns = LOAD(&h->n_slots), size = LOAD(&h->slot_size);
    uint32_t coff = LOAD(&h->slot_ctr_off), tag_off = LOAD(&h->row_tag_off);
    if (cs == 0 || cs > MAX_CSLOTS || n_ctrs > MAX_CTRS || ns > MAX_SLOTS ||
        !shm_row_ok(coff, n_ctrs, tag_off, size) ||
        !shm_table_ok(off, ns, size, 8, HAK_SHM_HEADER_MIN_SIZE, v->len))
        return HAK_SHM_ECORRUPT;
    if ((uint64_t)n * cs > (uint64_t)outcap) return -EINVAL;
    memset(out, 0, (size_t)n * cs * sizeof *out);
    if (ncls_out) *ncls_out = (int)cs;
    long pg = sysconf(_SC_PAGESIZE);
    size_t npages = (v->len + (size_t)pg - 1) / (size_t)pg;
    unsigned char *res = malloc(npages);
    if (!res) return HAK_SHM_ESYS;
    if (mincore(v->hdr, v->len, res) != 0) memset(res, 1, npages); /* unknown: read all */
    const char *b = (const char *)h;
    uint64_t upg = (uint64_t)pg;
    for (uint32_t s = 0; s < ns; s++) {
        uint64_t row = off + (uint64_t)s * size;
        /* a row never used is a hole (or its tag 0): skip it */
        if (!(res[(row + tag_off) / upg] & 1)) continue;
        uint32_t c = LOAD((const uint32_t *)(b + row + tag_off)) - 1;
        if (c >= cs) continue;
        const uint64_t *p = (const uint64_t *)(b + row + coff);
        for (int i = 0; i < n; i++) {
            int k = ctrs[i] >= 0 && ctrs[i] < HAK_NUM_CTRS ? v->ctr_map[ctrs[i]] : -1;
            if (k < 0 || (uint32_t)k >= n_ctrs) continue;
            if (res[(row + coff + (uint64_t)k * 8) / upg] & 1)
                out[(size_t)i * cs + c] += LOAD(p + k);
        }
    }
    free(res);
    return HAK_SHM_OK;
}
