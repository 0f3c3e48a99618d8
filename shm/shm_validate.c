/* shm_validate.c — checks every size, offset and stride of a mapped segment
 * against its length before any other field is trusted (see shm_attach.c
 * for the trust model). */
#include "shm_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int shm_fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ------------------------------------------------------------ validation */

static int names_ok(const char *base, uint32_t off, uint32_t n, size_t stride) {
    for (uint32_t i = 0; i < n; i++)
        if (!memchr(base + off + (size_t)i * stride, 0, HAK_SHM_NAME_MAX)) return 0;
    return 1;
}

static int classes_ok(const char *base, const struct hak_shm_header *h) {
    uint32_t prev = 0;
    for (uint32_t c = 0; c < h->n_classes; c++) {
        uint32_t sz;
        memcpy(&sz, base + h->class_off + (size_t)c * 4, 4);
        if (sz <= prev) return 0; /* sizes strictly increase, none is 0 */
        prev = sz;
    }
    return 1;
}

static int knob_dir_ok(const char *base, const struct hak_shm_header *h) {
    for (uint32_t k = 0; k < h->n_knobs; k++) {
        struct hak_shm_knob_desc d;
        memcpy(&d, base + h->knob_dir_off + (size_t)k * sizeof d, sizeof d);
        if (!memchr(d.name, 0, sizeof d.name)) return 0;
        if ((d.scope != HAK_SCOPE_GLOBAL && d.scope != HAK_SCOPE_CLASS) || d.min > d.max) return 0;
        /* its values inside the value table */
        uint64_t width = d.scope == HAK_SCOPE_CLASS ? h->knob_cslots : 1;
        if ((uint64_t)d.val_index + width > h->n_knob_vals) return 0;
    }
    return 1;
}

/* Geometry of a header copy: counts, alignments, every table inside len. */
static int geometry_ok(const struct hak_shm_header *h, uint64_t len, const char **why) {
    uint64_t hs = h->header_size;
    *why = "table counts out of bounds";
    if (h->n_classes == 0 || h->n_classes > MAX_CLASSES || h->n_knobs > MAX_KNOBS ||
        h->n_ctrs > MAX_CTRS || h->n_slots > MAX_SLOTS || h->n_proc > MAX_PROCS ||
        h->knob_cslots == 0 || h->knob_cslots > MAX_CSLOTS || h->ctr_cslots == 0 ||
        h->ctr_cslots > MAX_CSLOTS || h->n_knob_vals > (uint64_t)MAX_KNOBS * MAX_CSLOTS)
        return 0;
    *why = "strides out of bounds";
    if (h->knob_val_size < sizeof(struct hak_shm_knob_val) || h->knob_val_size % 8 ||
        h->knob_val_size > 4096 || h->slot_size % 8 ||
        !shm_row_ok(h->slot_ctr_off, h->n_ctrs, h->row_tag_off, h->slot_size))
        return 0;
    *why = "class table out of bounds";
    if (!shm_table_ok(h->class_off, h->n_classes, 4, 4, hs, len)) return 0;
    *why = "knob directory out of bounds";
    if (!shm_table_ok(h->knob_dir_off, h->n_knobs, sizeof(struct hak_shm_knob_desc), 8, hs, len))
        return 0;
    *why = "knob values out of bounds";
    if (!shm_table_ok(h->knob_val_off, h->n_knob_vals, h->knob_val_size, 8, hs, len)) return 0;
    *why = "counter directory out of bounds";
    if (!shm_table_ok(h->ctr_dir_off, h->n_ctrs, HAK_SHM_NAME_MAX, 1, hs, len)) return 0;
    *why = "counter rows out of bounds";
    if (!shm_table_ok(h->slot_off, h->n_slots, h->slot_size, 8, hs, len)) return 0;
    *why = "process figures out of bounds";
    if (!shm_table_ok(h->proc_dir_off, h->n_proc, HAK_SHM_NAME_MAX, 1, hs, len) ||
        !shm_table_ok(h->proc_off, h->n_proc, 8, 8, hs, len))
        return 0;
    return 1;
}

int hak_shm_validate(const void *base, size_t len, char *err, size_t errlen) {
    struct hak_shm_header h;
    const char *why;
    if (!base || len < HAK_SHM_HEADER_MIN_SIZE)
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT,
                        "segment truncated: %zu bytes, the header alone needs %zu", len,
                        (size_t)HAK_SHM_HEADER_MIN_SIZE);
    /* Work on a copy so a concurrent writer cannot change what we checked. */
    memset(&h, 0, sizeof h);
    memcpy(&h, base, len < sizeof h ? len : sizeof h);
    if (h.magic != HAK_SHM_MAGIC)
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "bad magic: not a hakmem segment");
    if (h.abi_major != HAK_SHM_ABI_MAJOR)
        return shm_fail(err, errlen, HAK_SHM_EABI,
                        "segment ABI %u.%u is %s than this tool understands (%d.x)", h.abi_major,
                        h.abi_minor, h.abi_major > HAK_SHM_ABI_MAJOR ? "newer" : "older",
                        HAK_SHM_ABI_MAJOR);
    /* Minor versions only append, so a header is at least ours. */
    if (h.header_size < HAK_SHM_HEADER_MIN_SIZE || h.header_size % 8 || h.header_size > len)
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "bad header size %u", h.header_size);
    if (h.total_size != len)
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT,
                        "size mismatch: header says %llu bytes, segment has %zu",
                        (unsigned long long)h.total_size, len);
    if (h.pid <= 0) return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "bad pid %d", h.pid);
    if (!geometry_ok(&h, len, &why)) return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "%s", why);
    if (!classes_ok(base, &h))
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "class sizes are not increasing");
    if (!knob_dir_ok(base, &h))
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "corrupt knob directory");
    if (!names_ok(base, h.ctr_dir_off, h.n_ctrs, HAK_SHM_NAME_MAX) ||
        !names_ok(base, h.proc_dir_off, h.n_proc, HAK_SHM_NAME_MAX))
        return shm_fail(err, errlen, HAK_SHM_ECORRUPT, "unterminated name in a directory");
    return HAK_SHM_OK;
}
