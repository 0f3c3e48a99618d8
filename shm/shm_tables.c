/* shm_tables.c — the tables generated from the X-macros in hakmem_shm.h, and
 * the computed layout of the segment this build writes. */
#include "hak_sys.h"
#include "hakmem_shm.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string.h>

#define HAK_CLASS_SIZE(i, size, span) [i] = size,
#define HAK_CLASS_SPAN(i, size, span) [i] = span,
const uint32_t hak_class_size[HAK_NUM_CLASSES] = {HAK_CLASS_TABLE(HAK_CLASS_SIZE)};
const uint8_t hak_class_span[HAK_NUM_CLASSES] = {HAK_CLASS_TABLE(HAK_CLASS_SPAN)};

/* The help texts (1.4 KiB) are read by hakctl and hakmemd, never by the
 * allocator: in a section of their own, which lib/hak_cold.ld puts in
 * libhakmem's cold segment, out of the hot one every process maps (as
 * string literals they would share .rodata.str* with the knobs' names,
 * which init reads). Elsewhere .rodata.* takes them as usual. */
#define HAK_HELP_SECTION __attribute__((section(".rodata.hak_help")))
#define HAK_KNOB_HELP(id, name, scope, def, min, max, unit, env, help)                             \
    static const char knob_help_##id[] HAK_HELP_SECTION = help;
HAK_KNOB_TABLE(HAK_KNOB_HELP)
#define HAK_KNOB_DEF(id, name, scope, def, min, max, unit, env, help)                              \
    [HAK_KNOB_##id] = {name, scope, def, min, max, unit, env, knob_help_##id},
const struct hak_knob_def hak_knob_defs[HAK_NUM_KNOBS] = {HAK_KNOB_TABLE(HAK_KNOB_DEF)};

#define HAK_CTR_HELP_TEXT(id, name, help) static const char ctr_help_##id[] HAK_HELP_SECTION = help;
HAK_CTR_TABLE(HAK_CTR_HELP_TEXT)
#define HAK_CTR_NAME(id, name, help) [HAK_CTR_##id] = name,
#define HAK_CTR_HELP(id, name, help) [HAK_CTR_##id] = ctr_help_##id,
const char *const hak_ctr_names[HAK_NUM_CTRS] = {HAK_CTR_TABLE(HAK_CTR_NAME)};
const char *const hak_ctr_help[HAK_NUM_CTRS] = {HAK_CTR_TABLE(HAK_CTR_HELP)};

#define HAK_PROC_NAME(id, name, help) [HAK_PROC_##id] = name,
const char *const hak_proc_names[HAK_NUM_PROCS] = {HAK_PROC_TABLE(HAK_PROC_NAME)};

const char *const hak_owner_names[4] = {"default", "env", "daemon", "manual"};

static uint32_t round64(uint64_t x) {
    return (uint32_t)((x + 63) & ~(uint64_t)63);
}

void hak_shm_layout_compute(struct hak_shm_layout *l) {
    uint64_t off = round64(sizeof(struct hak_shm_header));
    l->class_off = (uint32_t)off;
    off = round64(off + HAK_NUM_CLASSES * sizeof(uint32_t));
    l->knob_dir_off = (uint32_t)off;
    off = round64(off + HAK_NUM_KNOBS * sizeof(struct hak_shm_knob_desc));
    /* knob values, packed: the global knobs' single values first (together
     * in one page), then a row of HAK_NUM_CLASSES per class knob */
    uint32_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < HAK_NUM_KNOBS; k++) {
            int cls = hak_knob_defs[k].scope == HAK_SCOPE_CLASS;
            if (cls != pass) continue;
            l->knob_val_index[k] = n;
            n += cls ? HAK_NUM_CLASSES : 1;
        }
    l->n_knob_vals = n;
    l->knob_val_off = (uint32_t)off;
    off = round64(off + (uint64_t)n * sizeof(struct hak_shm_knob_val));
    l->ctr_dir_off = (uint32_t)off;
    off = round64(off + HAK_NUM_CTRS * HAK_SHM_NAME_MAX);
    l->proc_dir_off = (uint32_t)off;
    off = round64(off + HAK_NUM_PROCS * HAK_SHM_NAME_MAX);
    l->proc_off = (uint32_t)off;
    off = round64(off + HAK_NUM_PROCS * sizeof(uint64_t));
    l->slot_off = (uint32_t)off; /* the counter rows, packed */
    l->slot_ctr_off = (uint32_t)offsetof(struct hak_shm_row, ctr);
    l->row_tag_off = (uint32_t)offsetof(struct hak_shm_row, tag);
    l->slot_size = (uint32_t)sizeof(struct hak_shm_row);
    off += (uint64_t)HAK_SHM_ROWS * l->slot_size;
    l->total_size = (off + 4095) & ~(uint64_t)4095;
}

/* Class-dependent defaults: small blocks move in big batches (few slow-path
 * trips per byte), big blocks in small ones (little memory parked in caches). */
int64_t hak_knob_default(int knob, int cls) {
    const struct hak_knob_def *d = &hak_knob_defs[knob];
    if (d->def >= 0) return d->def;
    int64_t size = hak_class_size[cls < 0 ? 0 : cls % HAK_NUM_CLASSES], v = 1;
    switch (knob) {
    case HAK_KNOB_REFILL_COUNT:
        v = 32768 / size;
        if (v > 64) v = 64;
        if (v < 2) v = 2;
        break;
    case HAK_KNOB_FAST_CAP:
        v = 262144 / size; /* about 256 KiB per class, 2 blocks at least */
        if (v > 256) v = 256;
        if (v < 2) v = 2;
        break;
    case HAK_KNOB_STARTER_THREADS: { /* 1 per CPU this process may run on, >= 2 */
        /* the system call itself: the allocator's init may not malloc, and
         * libc's wrapper and CPU_COUNT are two pages of libc (64 KiB each by
         * fault-around) a small program would not otherwise run */
        unsigned long mask[16] = {0};
        long got = hak_sys_sched_getaffinity(sizeof mask, mask);
        int ncpu = 0;
        for (long i = 0; got > 0 && i < got / (long)sizeof mask[0]; i++)
            ncpu += __builtin_popcountl(mask[i]);
        if (ncpu < 1) ncpu = 1;
        v = ncpu > 2 ? ncpu : 2;
        break;
    }
    }
    return hak_knob_clamp(knob, v);
}

int hak_knob_lookup(const char *name) {
    for (int k = 0; k < HAK_NUM_KNOBS; k++)
        if (strcmp(hak_knob_defs[k].name, name) == 0) return k;
    return -1;
}
