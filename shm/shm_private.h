/* shm_private.h — what the reader-side files of shm/ share (not installed). */
#ifndef SHM_PRIVATE_H
#define SHM_PRIVATE_H

#include "hakmem_shm.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Racy reads of fields another process writes: one untorn load each. */
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* Bounds that no sane segment exceeds; they keep every product below 2^63. */
#define MAX_CLASSES 1024
#define MAX_CSLOTS (MAX_CLASSES + 1)
#define MAX_KNOBS 1024
#define MAX_CTRS 1024
#define MAX_SLOTS 65536
#define MAX_PROCS 1024
#define MAX_LEN (64ULL << 20)     /* 32 times the segment this ABI writes */
#define LOCK_STEAL_NS 100000000LL /* 100 ms: writers hold the lock for microseconds */

/* Formats a message into err (if given) and returns code. */
int shm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A table of n entries of stride bytes at off lies inside [hdr_size, len)
 * and is aligned to align. uint64 arithmetic: the bounds above keep n*stride
 * far from overflow. */
static inline int shm_table_ok(uint64_t off, uint64_t n, uint64_t stride, uint64_t align,
                               uint64_t hdr_size, uint64_t len) {
    return off % align == 0 && off >= hdr_size && off <= len && n * stride <= len - off;
}

/* A counter row (ABI 3) of size bytes: n_ctrs counters from coff and a
 * uint32 tag at tag_off, both inside it and apart. */
static inline int shm_row_ok(uint64_t coff, uint64_t n_ctrs, uint64_t tag_off, uint64_t size) {
    return coff % 8 == 0 && tag_off % 4 == 0 && coff + n_ctrs * 8 <= size && tag_off + 4 <= size &&
           (tag_off + 4 <= coff || tag_off >= coff + n_ctrs * 8);
}

/* 1 unless kill(pid, 0) says there is no such process. */
int shm_process_exists(pid_t pid);

#endif
