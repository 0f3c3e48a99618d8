/* hakmem_shm.h — the one definition of the hakmem live segment.
 *
 * Every process that loads libhakmem (and lives 50 ms: lib/hak_publish.c)
 * publishes a segment, a sealed memfd named by the link /dev/shm/hakmem.<pid>
 * (see the writer section): a header, the size-class table, a knob directory
 * + knob values, a counter directory and counter rows (one per heap and class
 * counted in, packed). libhakmem, hakctl and hakmemd all
 * include this file; nothing else defines the layout.
 *
 * Versioning: the segment describes itself. Readers find tables through the
 * offsets/counts/strides in the header and find knobs and counters BY NAME in
 * the directories, so a newer tool reads an older segment. Fields are only ever
 * appended; a change that breaks old readers bumps HAK_SHM_ABI_MAJOR, and
 * readers refuse a major they do not know. See docs/shm.md.
 *
 * Trust: the allocator never trusts what it reads back from its own segment
 * (anyone with write access may scribble on it): every knob is clamped to the
 * range compiled into the allocator. Readers validate every size and offset
 * against the mapped length before use (hak_shm_validate).
 */
#ifndef HAKMEM_SHM_H
#define HAKMEM_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HAK_SHM_MAGIC 0x314d454d4b4148ULL /* "HAKMEM1\0" little-endian */
#define HAK_SHM_ABI_MAJOR 4
#define HAK_SHM_ABI_MINOR 0
#define HAK_SHM_PREFIX "hakmem." /* /dev/shm/hakmem.<pid> */
#define HAK_SHM_NAME_MAX 24      /* knob / counter names, NUL-padded */
#define HAK_SHM_REASON_MAX 48
/* Counter rows in the segment: a heap takes one per class at the class's
 * first count (8 for a pool thread of 12 blocks of 16-1024 B), so 14400
 * rows (2 MB) are 1,700 such threads; heaps past them count privately. */
#define HAK_SHM_ROWS 14400

/* ---------------------------------------------------------------- classes
 * HAK_CLASS(index, block size, span pages of 64 KiB)
 * Sizes are multiples of 16 (every block is 16-byte aligned), four classes
 * per doubling above 128 B, so internal waste stays under 25 %, and eight
 * from 1 to 2 KiB and from 4 to 8 KiB, under 12.5 %: requests a size word
 * past a power of two (SQLite's 1032 and 4368 B) took 1280 and 5120 B
 * blocks, 1152 and 4608 B now (sqlite3 peak RSS 87.5 -> 79.1 MiB, glibc
 * 72.3; docs/allocator.md "Eight classes per doubling"). 2-4 KiB keeps
 * four: its eight would grow hak_tls by another 128 B, past the page its
 * thread's stack top shares (many_threads 17.5 -> 21.5 KiB a thread), for
 * nothing sqlite3 asks. Every class from 1 to 8 KiB is a multiple of 128
 * (hak_fine_cls). Spans leave under 2.5 % of their pages past the last
 * block: 6656 B takes 3 pages (2 pages: 3.5 %). Spans are at most 32 pages (2 MiB): the classes
 * above 128 KiB hold 2-12 blocks a span, so mid-size buffers are recycled through thread caches,
 * not mmap. The 40-64 KiB classes take 3-5 pages (4-8 blocks), not 16: a span empties, and its
 * pages serve the next class, sooner (realloc_grow-64k peak RSS 33 -> 29 MiB); 40 and 48 KiB fit
 * their spans exactly (4 pages of 40 KiB blocks left 16 KiB, 6 %, unused: 40000 B blocks under
 * ulimit -v 500000, 419 -> 450 MiB usable, glibc 477); 4-page spans for 20-32 KiB cost
 * mid_large_mt-8k-32k 7 -> 10 MiB (fewer free blocks purged), so those keep 8 (docs/allocator.md).
 * Blocks above the last class come from mmap (class HAK_CLASS_LARGE).      */
/* clang-format off */
#define HAK_CLASS_TABLE(X) \
    X(0, 16, 1) X(1, 32, 1) X(2, 48, 1) X(3, 64, 1) X(4, 80, 1) X(5, 96, 1) X(6, 112, 1) X(7, 128, 1) \
    X(8, 160, 1) X(9, 192, 1) X(10, 224, 1) X(11, 256, 1) \
    X(12, 320, 1) X(13, 384, 1) X(14, 448, 1) X(15, 512, 1) \
    X(16, 640, 1) X(17, 768, 1) X(18, 896, 1) X(19, 1024, 1) \
    X(20, 1152, 1) X(21, 1280, 1) X(22, 1408, 1) X(23, 1536, 1) X(24, 1664, 1) X(25, 1792, 1) X(26, 1920, 1) X(27, 2048, 1) \
    X(28, 2560, 1) X(29, 3072, 1) X(30, 3584, 1) X(31, 4096, 1) \
    X(32, 4608, 2) X(33, 5120, 2) X(34, 5632, 2) X(35, 6144, 2) X(36, 6656, 3) X(37, 7168, 2) X(38, 7680, 2) X(39, 8192, 2) \
    X(40, 10240, 4) X(41, 12288, 4) X(42, 14336, 4) X(43, 16384, 4) \
    X(44, 20480, 8) X(45, 24576, 8) X(46, 28672, 8) X(47, 32768, 8) \
    X(48, 40960, 5) X(49, 49152, 3) X(50, 57344, 4) X(51, 65536, 4) \
    X(52, 81920, 32) X(53, 98304, 32) X(54, 114688, 32) X(55, 131072, 32) \
    X(56, 163840, 32) X(57, 196608, 32) X(58, 229376, 32) X(59, 262144, 32) \
    X(60, 327680, 32) X(61, 393216, 32) X(62, 458752, 32) X(63, 524288, 32) \
    X(64, 655360, 32) X(65, 786432, 32) X(66, 917504, 32) X(67, 1048576, 32)
/* clang-format on */

#define HAK_NUM_CLASSES 68
#define HAK_CLASS_LARGE HAK_NUM_CLASSES /* counters only: blocks from mmap */
#define HAK_NUM_CSLOTS (HAK_NUM_CLASSES + 1)
#define HAK_SMALL_MAX 1024    /* classes 0..19: direct lookup table */
#define HAK_FINE_MAX 8192     /* classes to here by 128 B (hak_fine_cls) */
#define HAK_CLASS_MAX 1048576 /* largest slab-served block */
#define HAK_PAGE_SHIFT 16     /* 64 KiB pages */
#define HAK_SEG_SHIFT 22      /* 4 MiB segments */

/* HAK_CLS_<size>: a class's index by its size, for the code that names one */
#define HAK_CLASS_INDEX(i, size, span) HAK_CLS_##size = i,
enum { HAK_CLASS_TABLE(HAK_CLASS_INDEX) HAK_CLS_COUNT };
_Static_assert(HAK_CLS_COUNT == HAK_NUM_CLASSES, "HAK_NUM_CLASSES: the table's length");
_Static_assert(HAK_CLS_1024 == 19, "hak_small_cls: four classes per doubling to 1 KiB");

extern const uint32_t hak_class_size[HAK_NUM_CLASSES];
extern const uint8_t hak_class_span[HAK_NUM_CLASSES];

/* ----------------------------------------------------------------- knobs
 * HAK_KNOB(id, name, scope, default, min, max, unit, env, help)
 * scope: HAK_SCOPE_GLOBAL (one value) or HAK_SCOPE_CLASS (one per class).
 * For per-class knobs a default of -1 means "class dependent"
 * (hak_knob_default). Adding a knob is one line here; ids are positions.   */
#define HAK_KNOB_TABLE(X)                                                                          \
    X(REFILL_COUNT, "refill_count", HAK_SCOPE_CLASS, -1, 1, 512, "blocks",                         \
      "HAKMEM_TINY_REFILL_COUNT", "blocks moved from a slab to the thread cache per refill")       \
    X(FAST_CAP, "fast_cap", HAK_SCOPE_CLASS, -1, 1, 4096, "blocks", "HAKMEM_TINY_FAST_CAP",        \
      "thread-cache capacity; a free beyond it flushes half back to slabs")                        \
    X(ADOPT, "adopt", HAK_SCOPE_GLOBAL, 1, 0, 1, "bool", "HAKMEM_TINY_SS_ADOPT",                   \
      "reclaim slabs of exited threads on the slow path")                                          \
    X(DRAIN_INTERVAL, "drain_interval", HAK_SCOPE_GLOBAL, 1, 1, 1024, "refills",                   \
      "HAKMEM_DRAIN_INTERVAL", "drain remote frees at least every N refills")                      \
    X(PURGE_DELAY_MS, "purge_delay_ms", HAK_SCOPE_GLOBAL, 250, 0, 60000, "ms",                     \
      "HAKMEM_PURGE_DELAY_MS", "empty memory is returned to the OS after this delay")              \
    X(SEG_CACHE, "seg_cache", HAK_SCOPE_GLOBAL, 16, 0, 256, "segments", "HAKMEM_SEG_CACHE",        \
      "empty 4 MiB segments kept mapped for reuse")                                                \
    X(LARGE_CACHE_MB, "large_cache_mb", HAK_SCOPE_GLOBAL, 64, 0, 4096, "MiB",                      \
      "HAKMEM_LARGE_CACHE_MB", "freed large blocks kept mapped for reuse, per process")            \
    X(BACKGROUND, "background", HAK_SCOPE_GLOBAL, 1, 0, 1, "bool", "HAKMEM_BACKGROUND",            \
      "a background thread returns idle free memory after the purge delay")                        \
    X(BACKGROUND_SOLO_MB, "background_solo_mb", HAK_SCOPE_GLOBAL, 64, 0, 65536, "MiB",             \
      "HAKMEM_BACKGROUND_SOLO_MB",                                                                 \
      "single-threaded programs: a transient purger starts once this much is freed (0: never)")    \
    X(STARTER_THREADS, "starter_threads", HAK_SCOPE_GLOBAL, -1, 0, 1000000, "threads",             \
      "HAKMEM_STARTER_THREADS",                                                                    \
      "with this many threads live, a new one starts on the shared starter heap (-1: 4 per CPU, "  \
      ">= 8)")                                                                                     \
    X(TCACHE_GC, "tcache_gc", HAK_SCOPE_GLOBAL, 4096, 0, 1 << 20, "blocks", "HAKMEM_TCACHE_GC",    \
      "thread caches give back what stayed unused, looked at every N blocks refilled/flushed (0: " \
      "never)")

enum { HAK_SCOPE_GLOBAL = 0, HAK_SCOPE_CLASS = 1 };

enum hak_knob_id {
#define HAK_KNOB_ENUM(id, ...) HAK_KNOB_##id,
    HAK_KNOB_TABLE(HAK_KNOB_ENUM)
#undef HAK_KNOB_ENUM
        HAK_NUM_KNOBS
};

struct hak_knob_def {
    const char *name;
    int scope;
    int64_t def, min, max;
    const char *unit, *env, *help;
};
extern const struct hak_knob_def hak_knob_defs[HAK_NUM_KNOBS];

/* Who set a knob last. The daemon never overrides OWNER_MANUAL. */
enum hak_owner { HAK_OWNER_DEFAULT = 0, HAK_OWNER_ENV, HAK_OWNER_DAEMON, HAK_OWNER_MANUAL };
extern const char *const hak_owner_names[4];

/* -------------------------------------------------------------- counters
 * HAK_CTR(id, name, help): per heap slot, per class, uint64, only ever
 * written by the thread that owns the heap (plain stores).                */
#define HAK_CTR_TABLE(X)                                                                           \
    X(ALLOCS, "allocs", "blocks allocated")                                                        \
    X(FREES, "frees", "blocks freed")                                                              \
    X(ALLOC_SLOW, "alloc_slow", "allocations that missed the thread cache")                        \
    X(FREE_SLOW, "free_slow", "frees that found the thread cache full")                            \
    X(REFILLS, "refills", "thread-cache refills from slabs")                                       \
    X(REFILL_BLOCKS, "refill_blocks", "blocks moved by refills")                                   \
    X(FLUSHES, "flushes", "thread-cache flushes to slabs")                                         \
    X(FLUSH_BLOCKS, "flush_blocks", "blocks moved by flushes (local + remote)")                    \
    X(REMOTE_FREES, "remote_frees", "blocks freed to a slab of another thread")                    \
    X(REMOTE_DRAINED, "remote_drained", "remote-freed blocks drained by the owner")                \
    X(SPANS_NEW, "spans_new", "slabs carved for this class")                                       \
    X(SPANS_FREED, "spans_freed", "empty slabs given back")                                        \
    X(SPAN_BLOCKS, "span_blocks", "block capacity of slabs carved (minus given back)")             \
    X(PUBLISHED, "published", "slabs left by an exiting thread for adoption")                      \
    X(ADOPTED, "adopted", "slabs of exited threads adopted")                                       \
    X(LARGE_BYTES, "large_bytes", "bytes of large blocks allocated (large class)")                 \
    X(REALLOC_COPIES, "realloc_copies", "reallocs that moved a block of the class by copying it")

enum hak_ctr_id {
#define HAK_CTR_ENUM(id, ...) HAK_CTR_##id,
    HAK_CTR_TABLE(HAK_CTR_ENUM)
#undef HAK_CTR_ENUM
        HAK_NUM_CTRS
};
extern const char *const hak_ctr_names[HAK_NUM_CTRS];
/* Counter i of class c in a flat array of n_ctrs counters per class
 * (class-major): the allocator's private arrays (orphan and purger counts). */
#define HAK_CTR_INDEX(c, i, n_ctrs) ((uint64_t)(c) * (n_ctrs) + (uint64_t)(i))
extern const char *const hak_ctr_help[HAK_NUM_CTRS];

/* Process-wide figures, updated with relaxed atomics on slow paths.
 * HAK_PROC(id, name, help)                                                */
#define HAK_PROC_TABLE(X)                                                                          \
    X(MAPPED, "mapped_bytes", "bytes mapped from the OS (segments + large)")                       \
    X(RELEASED, "released_bytes", "bytes returned to the OS with madvise/munmap, total")           \
    X(LARGE_CACHED, "large_cached_bytes", "bytes of freed large blocks kept for reuse")            \
    X(THREADS, "threads", "threads with a heap")                                                   \
    X(HEAPS, "heaps", "heaps created (live + abandoned)")                                          \
    X(TRIMS, "trims", "trim requests served")                                                      \
    X(KNOB_RELOADS, "knob_reloads", "knob generations applied")                                    \
    X(DOUBLE_FREES, "invalid_frees", "invalid or double frees detected")                           \
    X(PURGES, "purges", "madvise calls that returned free pages of spans, blocks")                 \
    X(REFAULT_BYTES, "refault_bytes", "purged pages taken into spans again (they fault back in)")  \
    X(PURGED_BYTES, "purged_bytes", "bytes of free span and segment pages purged (madvise)")       \
    X(PURGE_DELAY_NOW, "purge_delay_now_ms",                                                       \
      "purge delay in effect: purge_delay_ms, x2 to x4 while refaulting")                          \
    X(LARGE_REUSED, "large_reused", "large blocks served from a cached mapping")                   \
    X(LARGE_GROWN, "large_grown", "large blocks served by growing a smaller cached mapping")       \
    X(REALLOC_REMAPS, "realloc_remaps", "reallocs that grew a large mapping (mremap, no copy)")    \
    X(BG_PASSES, "bg_passes", "background purger passes")                                          \
    X(SEGS_OUTSIDE, "segs_outside", "segments outside free()'s fast-path window (slower frees)")   \
    X(BG_SOLO_STARTS, "bg_solo_starts", "transient purgers started in a single-threaded program")  \
    X(BG_SOLO_EXITS, "bg_solo_exits", "transient purgers that ended, their work done")

enum hak_proc_id {
#define HAK_PROC_ENUM(id, ...) HAK_PROC_##id,
    HAK_PROC_TABLE(HAK_PROC_ENUM)
#undef HAK_PROC_ENUM
        HAK_NUM_PROCS
};
extern const char *const hak_proc_names[HAK_NUM_PROCS];

/* ---------------------------------------------------------------- layout
 * All offsets are from the segment base; all tables 64-byte aligned.       */
struct hak_shm_header {
    uint64_t magic;
    uint16_t abi_major, abi_minor;
    uint32_t header_size; /* sizeof(struct hak_shm_header) of the writer */
    uint64_t total_size;  /* bytes of the segment (== file size) */
    int32_t pid;
    uint32_t flags;                 /* HAK_SHM_F_* */
    uint64_t start_time;            /* /proc/PID/stat field 22, clock ticks */
    uint64_t created_ns;            /* CLOCK_REALTIME */
    volatile uint64_t heartbeat_ns; /* CLOCK_REALTIME of the last slow-path publish */
    char exe[64];                   /* comm-like name */
    char exe_path[256];             /* /proc/self/exe at creation */
    /* classes: n_classes x uint32 block size */
    uint32_t class_off, n_classes;
    /* knob directory: n_knobs x struct hak_shm_knob_desc */
    uint32_t knob_dir_off, n_knobs;
    /* knob values (ABI 2: packed): n_knob_vals x knob_val_size from knob_val_off;
     * knob k, class c at knob_val_off + (dir[k].val_index + c) * knob_val_size, c <
     * knob_cslots for a class knob, c = 0 for a global one (one value: the global
     * knobs share a page, not one each at a stride of knob_cslots) */
    uint32_t knob_val_off, knob_val_size, knob_cslots, n_knob_vals;
    /* counter directory: n_ctrs x char[HAK_SHM_NAME_MAX] */
    uint32_t ctr_dir_off, n_ctrs;
    /* counter rows (ABI 3; ABI 2 had per-heap slots here): n_slots rows of slot_size
     * bytes from slot_off; in a row, counter i (< n_ctrs) at slot_ctr_off + 8 i, and
     * at row_tag_off a uint32 tag: 0 an unused row, else 1 + its class (< ctr_cslots).
     * A counter of a class is the sum over the rows of that class. */
    uint32_t slot_off, n_slots, slot_size, slot_ctr_off, ctr_cslots, row_tag_off;
    /* process figures: n_proc x uint64, directory n_proc x char[NAME_MAX] */
    uint32_t proc_dir_off, proc_off, n_proc, _pad2;
    /* control, written by tools */
    volatile uint64_t knob_gen; /* bumped by a writer after changing knob values */
    volatile uint64_t trim_req; /* bumped to ask for a trim; allocator echoes in trim_done */
    volatile uint64_t trim_done;
    volatile uint32_t writer_lock; /* 0 free, else pid of a tool writing knobs */
    uint32_t _pad3;
    uint64_t knob_gen_seen; /* last generation the allocator applied */
    /* ---- ABI 1.1 (readers check header_size before using these: HAK_SHM_HAS) */
    uint64_t pid_ns; /* inode of the writer's /proc/self/ns/pid; 0 unknown */
    /* The daemon's lease: hakmemd renews it while it manages the process.
     * When CLOCK_MONOTONIC passes lease_ns, the allocator hands every knob
     * whose owner is daemon back to its default, so a dead daemon leaves no
     * stale tuning. 0 = no lease. */
    volatile int32_t daemon_pid;
    /* Which daemon that is: a random tag it draws at start (0: one that
     * predates the tag, in what was padding). A pid alone does not say:
     * daemons in different pid namespaces can have the same one. */
    volatile uint32_t daemon_tag;
    volatile uint64_t lease_ns;
};
/* Size of an ABI 1.0 header: the smallest a reader accepts. */
#define HAK_SHM_HEADER_MIN_SIZE offsetof(struct hak_shm_header, pid_ns)
/* Whether the segment's header (of header_size bytes) has field f. */
#define HAK_SHM_HAS(hdr_size, f)                                                                   \
    ((uint64_t)(hdr_size) >=                                                                       \
     offsetof(struct hak_shm_header, f) + sizeof(((struct hak_shm_header *)0)->f))

#define HAK_SHM_F_LIVE 1u /* set at creation, cleared at clean exit */

struct hak_shm_knob_desc {
    char name[HAK_SHM_NAME_MAX];
    int32_t scope;
    uint32_t val_index;    /* its first value: knob_val_off + val_index * knob_val_size */
    int64_t def, min, max; /* def is -1 for class-dependent defaults */
};

struct hak_shm_knob_val {
    volatile int64_t value;
    volatile uint32_t owner; /* enum hak_owner */
    uint32_t _pad;
    volatile uint64_t set_ns; /* CLOCK_REALTIME */
    char reason[HAK_SHM_REASON_MAX];
};

/* A counter row as this build writes it (readers go by the header's
 * slot_ctr_off and row_tag_off): the counters first, so that allocs and
 * frees share a cache line (rows are 144 B from a 64-byte aligned table),
 * the tag last, written once before the row's first count. */
struct hak_shm_row {
    uint64_t ctr[HAK_NUM_CTRS];
    volatile uint32_t tag; /* 1 + class; 0: unused */
    uint32_t _pad;
};
#define HAK_SHM_ROW_WORDS (sizeof(struct hak_shm_row) / 8)

/* Layout of the segment this build writes (computed once; shm_tables.c).
 * Global knobs' values come first, then the class knobs' rows. */
struct hak_shm_layout {
    uint32_t class_off, knob_dir_off, knob_val_off, ctr_dir_off, slot_off, slot_size, slot_ctr_off,
        row_tag_off, proc_dir_off, proc_off, n_knob_vals;
    uint32_t knob_val_index[HAK_NUM_KNOBS];
    uint64_t total_size;
};
void hak_shm_layout_compute(struct hak_shm_layout *l);

/* Class-dependent knob default (for defs with def == -1). */
int64_t hak_knob_default(int knob, int cls);
/* v within knob's range. Inline: the allocator clamps environment values
 * at start in hot text, and a call would map a cold page for it. */
static inline int64_t hak_knob_clamp(int knob, int64_t v) {
    const struct hak_knob_def *d = &hak_knob_defs[knob];
    return v < d->min ? d->min : v > d->max ? d->max : v;
}

/* ---------------------------------------------------- writer (allocator)
 * Async-signal-free, malloc-free: safe inside the allocator.
 *
 * The segment is a memfd (sealed: it cannot shrink or grow), published as
 * the symlink /dev/shm/hakmem.<pid> whose text is
 *   "/proc/<pid>/fd/<fd>:pidns=<inode of the writer's /proc/self/ns/pid>"
 * Readers never follow it: they open /proc/<pid>/fd/<fd> (with the host's
 * pid for a process in a container), after checking who owns the link.
 * Followed blindly, it names nothing, and nothing can be created there
 * (procfs): a tool that follows it fails instead of writing a stray file. */
#define HAK_SHM_LINK_PID "/proc/"
#define HAK_SHM_LINK_FD "/fd/"
#define HAK_SHM_LINK_NS ":pidns="
#define HAK_SHM_LINK_MAX 80
/* Writes the link text (buf of HAK_SHM_LINK_MAX); returns its length. */
size_t hak_shm_link_format(char *buf, pid_t pid, int fd, uint64_t pidns);
/* Parses a link text strictly (canonical decimals, nothing more): 0 or -1. */
int hak_shm_link_parse(const char *text, pid_t *pid, int *fd, uint64_t *pidns);
/* Inode of a pid namespace file ("/proc/self/ns/pid"), 0 if unknown. */
uint64_t hak_shm_pidns(const char *ns_path);
/* Creates the memfd, makes its header, tables and slot 0 (the first heap's:
 * publishing runs on a heap's slow path) resident in one call, fills them
 * in and publishes /dev/shm/hakmem.<pid> (a link of a dead process of our
 * pid namespace with our pid is replaced; anything else under the name is
 * left alone: EEXIST). Returns the mapped base, or NULL with errno (EFBIG
 * beyond RLIMIT_FSIZE, never SIGXFSZ; ENOMEM; the symlink's errors). */
struct hak_shm_header *hak_shm_create(pid_t pid, uint64_t start_time, const char *exe,
                                      const char *exe_path);
/* Makes [off, off + len) of the segment hak_shm_create returned resident, so
 * that no write to it can fault: 0, or -1 (ENOMEM) and nothing changed.
 * Pages it made resident before cost no system call again. */
int hak_shm_reserve(struct hak_shm_header *h, uint64_t off, uint64_t len);
/* A fork child drops its parent's segment: the range becomes private zero
 * pages at the same address, in one step (threads of a raw fork child may
 * still write counters through pointers into it: they stay valid and reach
 * nothing shared), and the fd is closed. 0, or -1 if the range could not be
 * replaced (it is still the parent's then). */
int hak_shm_release(void);
/* Removes /dev/shm/hakmem.<pid> if it is the link to our segment. */
void hak_shm_unlink(pid_t pid);
/* Unlinks segments of processes of our pid namespace that no longer exist
 * and were last modified more than HAK_SHM_GC_AGE_S ago (malloc-free). At
 * most once per HAK_SHM_GC_EVERY_NS per user and pid namespace: the mtime
 * of /dev/shm/hakmem-gc.<uid>.<pidns> says when one of them last scanned. */
#define HAK_SHM_GC_AGE_S 30
#define HAK_SHM_GC_EVERY_NS 1000000000ll /* 1 s */
#define HAK_SHM_GC_STAMP "hakmem-gc."    /* not HAK_SHM_PREFIX: no reader takes it */
/* Another pid namespace's stamp of our user untouched this long: its
 * namespace is gone (or idle: its next publication makes it again). A scan
 * removes it, so stamps of short-lived containers do not pile up. */
#define HAK_SHM_GC_STAMP_AGE_S 86400
void hak_shm_gc_dead(void);
/* The same in directory dir (tests: a private one): 1 if it scanned, 0 if
 * another scan was too recent, -1 if it could not look. */
#define HAK_SHM_GC_DIR_MAX 160
int hak_shm_gc_dead_in(const char *dir);

/* ----------------------------------------------------- readers / writers
 * For hakctl and hakmemd. A view is a validated mapping of another
 * process's segment.                                                      */
struct hak_shm_view {
    struct hak_shm_header *hdr;
    size_t len;
    int writable;
    pid_t pid;
    /* resolved from the directories (name lookup), -1 if absent */
    int knob_map[HAK_NUM_KNOBS]; /* our knob id -> index in the segment */
    int ctr_map[HAK_NUM_CTRS];
    int proc_map[HAK_NUM_PROCS];
};

enum hak_shm_err {
    HAK_SHM_OK = 0,
    HAK_SHM_ENOENT = -1,   /* no segment: process does not use hakmem (or is gone) */
    HAK_SHM_EACCES = -2,   /* permission denied (owner, mode) */
    HAK_SHM_EUNSAFE = -3,  /* symlink, hard links, wrong type */
    HAK_SHM_ECORRUPT = -4, /* bad magic, sizes or offsets */
    HAK_SHM_EABI = -5,     /* ABI major we do not understand */
    HAK_SHM_ESYS = -6,     /* other system error (errno kept) */
    HAK_SHM_ESTALE = -7,   /* a link whose process is gone or no longer holds the segment */
    HAK_SHM_PINNED = 1,    /* hak_shm_knob_set by the daemon: env or person owns it, left alone */
};

/* Attach to pid's segment (via /proc/PID/root/dev/shm if not in /dev/shm).
 * writable: map read-write (to set knobs). err gets a human message. */
int hak_shm_attach(pid_t pid, int writable, struct hak_shm_view *v, char *err, size_t errlen);
/* Attach to an explicit path (used by gc and tests). */
int hak_shm_attach_path(const char *path, int writable, struct hak_shm_view *v, char *err,
                        size_t errlen);
void hak_shm_detach(struct hak_shm_view *v);
/* Checks every size/offset in a mapped segment. 0 or negative hak_shm_err. */
int hak_shm_validate(const void *base, size_t len, char *err, size_t errlen);
/* Whether the process that wrote the segment is no longer there to update
 * it: 0 if it is (or cannot be proven gone: a segment of another pid
 * namespace whose process we cannot see), else why not. */
enum hak_shm_stale {
    HAK_SHM_STALE_GONE = 1,   /* no such process (exited, killed, zombie) */
    HAK_SHM_STALE_REUSED = 2, /* the pid belongs to a process started later */
    HAK_SHM_STALE_EXEC = 3,   /* same process, but it no longer maps the segment
                                 (it exec'd a program without hakmem) */
};
int hak_shm_is_stale(const struct hak_shm_view *v);
/* Calls fn(pid, path) for every /dev/shm/hakmem.<n>, in pid order; stops
 * when fn returns non-zero. pid is n, or, for a link written in another pid
 * namespace that shares our /dev/shm (a pod, --ipc=host), that process's
 * pid in ours when we can see it (one pass over /proc, only then). */
int hak_shm_list(int (*fn)(pid_t pid, const char *path, void *arg), void *arg);

/* Reading: summed over all slots. cls in [0, n_classes] (n_classes = large).
 * Only pages of the slot table that hold data are read: a page no thread
 * ever wrote reads as zero without being touched (a read fault on a shared
 * mapping would allocate it). hak_shm_ctr_sums fills sums[c][k] for every
 * class c in [0, ncls] (ncls = hak_shm_nclasses) in one pass; 0 or -1. As
 * root it copies the data with pread, so pages swapped out count; without
 * that, and for hak_shm_ctr_sum, a page swapped out reads as zero until it
 * is back in memory (see shm_access.c). */
uint64_t hak_shm_ctr_sum(const struct hak_shm_view *v, int cls, int ctr);
int hak_shm_ctr_sums(const struct hak_shm_view *v, int ncls, uint64_t (*sums)[HAK_NUM_CTRS]);
uint64_t hak_shm_proc(const struct hak_shm_view *v, int proc);
uint32_t hak_shm_class_size(const struct hak_shm_view *v, int cls);
int hak_shm_nclasses(const struct hak_shm_view *v);
/* Knob value pointer for (knob, cls) or NULL if the segment lacks it. */
struct hak_shm_knob_val *hak_shm_knob(const struct hak_shm_view *v, int knob, int cls);
/* Effective range of a knob in this segment: the stricter of the segment's
 * directory and our compiled table; def is the default for class cls
 * (class-dependent defaults resolved). 0, or HAK_SHM_ENOENT if the segment
 * lacks the knob. Any out pointer may be NULL. */
int hak_shm_knob_range(const struct hak_shm_view *v, int knob, int cls, int64_t *min, int64_t *max,
                       int64_t *def);
/* Sets a knob (range-checked: -ERANGE if outside hak_shm_knob_range), records
 * owner, time and reason, and bumps knob_gen. cls -1 = every class (a global
 * knob takes -1 or 0). Other returns: HAK_SHM_EACCES (view not writable),
 * HAK_SHM_ENOENT (segment lacks the knob), -EINVAL (bad knob, class, owner).
 * Owner HAK_OWNER_DAEMON never overrides a knob owned by the environment or
 * a person (HAK_OWNER_ENV, HAK_OWNER_MANUAL): such classes are skipped,
 * checked under the writers' lock (a pin set between the daemon's sample
 * and its write stays), and HAK_SHM_PINNED if every class was. */
int hak_shm_knob_set(struct hak_shm_view *v, int knob, int cls, int64_t value, int owner,
                     const char *reason);
/* Finds a knob by name; -1 if unknown. */
int hak_knob_lookup(const char *name);
/* The user's name, or the uid in decimal if it has none. */
const char *hak_user_name(uid_t uid, char *buf, size_t n);
/* Asks the process to trim (return cached memory) at its next slow path. */
void hak_shm_request_trim(struct hak_shm_view *v);
/* The daemon's lease (ABI 1.1; HAK_SHM_ENOENT for an older segment):
 * renew it for lease_ms from now (0 ends it at once; *until_ns, if given,
 * gets the value written), or read it: 1 valid, 0 expired or none; daemon
 * pid, milliseconds left and, if given, the daemon's tag and the raw
 * lease_ns (which daemon wrote it last: each renewal writes a value of its
 * own). shm_lease.c */
int hak_shm_lease_renew(struct hak_shm_view *v, pid_t daemon, uint32_t tag, uint64_t lease_ms,
                        uint64_t *until_ns);
int hak_shm_lease_get(const struct hak_shm_view *v, pid_t *daemon, uint64_t *left_ms);
int hak_shm_lease_read(const struct hak_shm_view *v, pid_t *daemon, uint32_t *tag,
                       uint64_t *until_ns);
/* Every counter in ctrs[0..n) of every class, summed over all slots in one
 * pass: out[i * cslots + c], cslots = *ncls_out (classes + large). Pages of
 * the segment that were never written (tmpfs holes) are skipped, not read:
 * reading one would allocate it. 0 or a negative hak_shm_err. shm_sum.c */
int hak_shm_ctr_sum_all(const struct hak_shm_view *v, const int *ctrs, int n, uint64_t *out,
                        int outcap, int *ncls_out);

#endif
