/* hak_os.c — the OS layer: aligned mappings, purge, time, locks. */
#include "hak_internal.h"

#include <elf.h>
#include <sys/auxv.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char *map_anon(void *at, size_t len, int flags) {
    char *p = hak_sys_mmap(at, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static bool fits(size_t off, size_t align, const char *p) {
    return (((uintptr_t)p + off) & (align - 1)) == 0;
}

/* Maps size bytes at a p with p + off a multiple of align (a power of two
 * >= the page size; off a multiple of the page size). Address space is
 * taken no faster than needed, because under an address-space limit
 * (ulimit -v) a transient over-map fails where the mapping itself fits:
 *   1. the exact size: the kernel places mappings top-down next to the
 *      previous one, so after one aligned segment the next usually is too;
 *   2. else move it down to the aligned address below it: unmapped first,
 *      then mapped there (MAP_FIXED_NOREPLACE; a kernel without it may
 *      return another address, which is checked), so the move costs no
 *      address space: the range below the kernel's pick is usually free;
 *   3. else over-map by align and trim.
 * Addresses beyond the segment map are refused. On failure errno is
 * mmap's (ENOMEM when out of address space); on success it is unchanged. */
void *hak_os_map_offset(size_t size, size_t align, size_t off) {
    int e = errno;
    if (size > (1ul << HAK_ADDR_BITS) || align > (1ul << HAK_ADDR_BITS)) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = map_anon(NULL, size, 0), *a = NULL;
    if (!p) return NULL;
    if (fits(off, align, p)) {
        a = p;
    } else {
        uintptr_t base = ((uintptr_t)p + off) & ~(uintptr_t)(align - 1); /* < p + off */
        char *lo = base >= off + 65536 ? (char *)(base - off) : NULL;
        hak_sys_munmap(p, size);
        char *got = lo ? map_anon(lo, size, MAP_FIXED_NOREPLACE) : NULL;
        if (got == lo && lo) {
            a = lo;
        } else {
            if (got) hak_sys_munmap(got, size); /* placed elsewhere */
            size_t len = size + align;
            if (len < size) return NULL;
            p = map_anon(NULL, len, 0);
            if (!p) return NULL;
            a = p + ((align - (((uintptr_t)p + off) & (align - 1))) & (align - 1));
            if (a > p) hak_sys_munmap(p, (size_t)(a - p));
            size_t tail = (size_t)((p + len) - (a + size));
            if (tail) hak_sys_munmap(a + size, tail);
        }
    }
    if (((uintptr_t)a + size) >> HAK_ADDR_BITS) {
        hak_sys_munmap(a, size);
        errno = ENOMEM;
        return NULL;
    }
    HAK_PROC_ADD(MAPPED, size);
    errno = e;
    return a;
}

void *hak_os_map_aligned(size_t size, size_t align) {
    return hak_os_map_offset(size, align, 0);
}

/* Maps size bytes exactly at at (page-aligned) if that range is free;
 * never replaces a mapping. NULL otherwise; errno is left unchanged. */
void *hak_os_map_at(void *at, size_t size) {
    int e = errno;
    char *p = map_anon(at, size, MAP_FIXED_NOREPLACE);
    if (p && p != at) { /* a kernel without NOREPLACE took it as a hint */
        hak_sys_munmap(p, size);
        p = NULL;
    }
    errno = e;
    if (p) HAK_PROC_ADD(MAPPED, size);
    return p;
}

void hak_os_unmap(void *p, size_t size) {
    hak_sys_munmap(p, size);
    HAK_PROC_SUB(MAPPED, size);
    HAK_PROC_ADD(RELEASED, size);
}

/* Gives the pages back; the range stays mapped and reads as zero. */
void hak_os_purge(void *p, size_t size) {
    int e = errno; /* never leak a syscall's errno into the caller's */
    hak_sys_madvise(p, size, MADV_DONTNEED);
    errno = e;
    HAK_PROC_ADD(RELEASED, size);
    HAK_PROBE2(purge, p, size);
}

/* Zeroes [p, p + n) of a private anonymous mapping without faulting in
 * what is not resident: calloc's block from the large cache. The cache
 * keeps the pages the last block wrote, but not the ones nobody did (the
 * tail of a split mapping, the headroom of a realloc that moved, a purged
 * range), and a memset faulted all of them in: a loop of calloc(3 MiB),
 * realloc to 9 MiB and free took 512 faults and 23 ms a calloc (glibc:
 * none; its block is a fresh mapping). Per run of pages, as mincore()
 * finds them: resident ones are cleared with memset, others dropped with
 * MADV_DONTNEED (then they read as zero). Correct whatever happens between
 * the look and the clear: a resident page swapped out meanwhile is faulted
 * back by the memset, and a page not resident (never touched, or swapped
 * out) is discarded. Any failure: memset. */
void hak_os_zero(void *p, size_t n) {
    char *a = p, *end = a + n;
    char *pa = (char *)(((uintptr_t)a + 4095) & ~(uintptr_t)4095);
    char *pe = (char *)((uintptr_t)end & ~(uintptr_t)4095);
    /* HAKMEM_SHM=0 with HAKMEM_BACKGROUND=0: glibc's system calls only
     * (a sandbox that kills on any other, docs/allocator.md "Sandboxes") */
    if (n < HAK_ZERO_PROBE_MIN || pe <= pa || (!hak_shm_enabled && !HAK_KNOB(BACKGROUND))) {
        memset(p, 0, n);
        return;
    }
    memset(a, 0, (size_t)(pa - a));
    memset(pe, 0, (size_t)(end - pe));
    int e = errno;
    unsigned char vec[512]; /* 2 MiB a look */
    while (pa < pe) {
        size_t pages = (size_t)(pe - pa) >> 12;
        if (pages > sizeof vec) pages = sizeof vec;
        if (hak_sys4(SYS_mincore, pa, pages << 12, vec, 0) != 0) { /* no import: malloc stays put */
            memset(pa, 0, pages << 12);
        } else {
            for (size_t i = 0, j; i < pages; i = j) {
                int in = vec[i] & 1;
                for (j = i + 1; j < pages && (vec[j] & 1) == in;) j++;
                char *r = pa + (i << 12);
                if (in || hak_sys_madvise(r, (j - i) << 12, MADV_DONTNEED) != 0)
                    memset(r, 0, (j - i) << 12);
            }
        }
        pa += pages << 12;
    }
    errno = e;
}

/* The clock without libc's clock_gettime: its page is in a 64 KiB
 * fault-around window of libc that a program which reads no clock (a
 * shell) would not map, 16 pages resident for the allocator's stamps. The
 * vDSO's own __vdso_clock_gettime, found in its dynamic symbols (DT_HASH
 * gives their number) once; libc's if anything there is unexpected. */
typedef int (*clock_fn)(clockid_t, struct timespec *);
static clock_fn clock_impl; /* NULL until looked up; racing lookups agree */

static bool name_is(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

/* Out of line: a young process (a shell) reads the clock by the system call
 * only (below), so the lookup's code stays out of the hot text. */
static HAK_NOINLINE clock_fn vdso_clock(void) {
    const unsigned char *base = (const unsigned char *)hak_auxv(AT_SYSINFO_EHDR);
    if (!base) return clock_gettime;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (eh->e_ident[EI_MAG0] != ELFMAG0 || eh->e_ident[EI_MAG1] != ELFMAG1 ||
        eh->e_ident[EI_MAG2] != ELFMAG2 || eh->e_ident[EI_MAG3] != ELFMAG3 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64)
        return clock_gettime;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    const Elf64_Dyn *dyn = NULL;
    uintptr_t bias = 0;
    bool loaded = false;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !loaded) {
            bias = (uintptr_t)base + ph[i].p_offset - ph[i].p_vaddr;
            loaded = true;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (const Elf64_Dyn *)(base + ph[i].p_offset);
        }
    }
    if (!loaded || !dyn) return clock_gettime;
    const Elf64_Sym *sym = NULL;
    const char *str = NULL;
    const Elf32_Word *hash = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB) sym = (const Elf64_Sym *)(bias + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_STRTAB) str = (const char *)(bias + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_HASH) hash = (const Elf32_Word *)(bias + dyn->d_un.d_ptr);
    }
    if (!sym || !str || !hash) return clock_gettime;
    for (Elf32_Word i = 0; i < hash[1]; i++) /* hash[1]: the number of symbols */
        if (ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC && sym[i].st_shndx != SHN_UNDEF &&
            sym[i].st_value && name_is(str + sym[i].st_name, "__vdso_clock_gettime"))
            return (clock_fn)(bias + sym[i].st_value);
    return clock_gettime;
}

/* A young process reads the clock by the system call: the vDSO's first
 * read faults in its two data pages ([vvar], [vvar_vclock]), which a
 * program that reads no clock itself (a shell) would never touch. On this
 * machine a fault is about 15 us and the call 1.6 us (docs/allocator.md,
 * "Round five"); `sh -c true` reads the clock 3 times (the publishing
 * delay's stamp and polls). From the 17th read on, the vDSO. The count is
 * a hint: racing threads at worst make a few calls more. */
#define CLOCK_SYSCALLS 16
static int clock_reads HAK_LOADED_PAGE; /* read at the first stamp: no page of its own */

int hak_clock(clockid_t c, struct timespec *ts) {
    clock_fn f = __atomic_load_n(&clock_impl, __ATOMIC_RELAXED);
    if (HAK_UNLIKELY(!f)) {
        int n = __atomic_load_n(&clock_reads, __ATOMIC_RELAXED);
        if (n < CLOCK_SYSCALLS) {
            __atomic_store_n(&clock_reads, n + 1, __ATOMIC_RELAXED);
            if (hak_sys4(SYS_clock_gettime, c, ts, 0, 0) == 0) return 0;
        }
        f = vdso_clock();
        __atomic_store_n(&clock_impl, f, __ATOMIC_RELAXED);
    }
    return f(c, ts);
}

uint64_t hak_now_ns(void) {
    struct timespec ts;
    hak_clock(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The cached tid, if it is this process's: after a fork of any kind the
 * fork page reads zero, so the thread that forked (the child's only one)
 * never stamps a lock with its tid in the parent, which the threads the
 * child starts would take for a holder lost in the fork (hak_lock_as). */
pid_t hak_self_tid(void) {
    pid_t t = hak_tls.tid;
    if (HAK_UNLIKELY(t == 0 || hak_tls.tid_ident != atomic_load_explicit(&HAK_FORKPAGE()->ident,
                                                                         memory_order_relaxed)))
        t = hak_tid_refresh();
    return t;
}

/* Whether tid is no thread of this process (lost in a fork). */
static bool tid_lost(pid_t tid) {
    int e = errno;
    bool lost = syscall(SYS_tgkill, hak_sys_getpid(), tid, 0) != 0 && errno == ESRCH;
    errno = e;
    return lost;
}

#define LOST_LOOK_NS (10 * 1000000ull) /* 10 ms */

bool hak_lock_as(hak_lock_t *l, int how) {
    uint64_t look = 0;
    for (unsigned spins = 0;; spins++) {
        /* the tid read each turn: a signal handler's fork may give this
         * thread a new one while it waits (hak_fork.c re-stamps its locks) */
        int z = 0, v = atomic_load_explicit(&l->v, memory_order_relaxed);
        if (v == 0 && atomic_compare_exchange_weak_explicit(
                          &l->v, &z, hak_self_tid(), memory_order_acquire, memory_order_relaxed))
            return true;
        if (HAK_UNLIKELY(v == HAK_LOCK_RETIRED)) {
            if (how & HAK_LOCK_MAY_RETIRE) return false;
            hak_fatal("waiting for a lock retired in a fork child", l);
        }
        if (spins < 64) {
            __builtin_ia32_pause();
            continue;
        }
        hak_sys_sched_yield();
        /* Normally hak_fork.c's child handler frees the locks of threads lost
         * in a fork. A child made without it (the raw fork system call), or
         * an application child handler that runs before ours and allocates,
         * would wait here for ever: look for a lost holder every
         * LOST_LOOK_NS of waiting. By time, not by yields: under load a yield
         * may last a time slice (1024 of them took seconds). A live holder
         * never looks lost: every stamp is the holder's tid in this process
         * (hak_self_tid). The reset may retire l: seen above at the next turn. */
        uint64_t now = hak_now_ns();
        if (spins == 64) {
            look = now + LOST_LOOK_NS;
        } else if (now >= look) {
            look = now + LOST_LOOK_NS;
            int h = atomic_load_explicit(&l->v, memory_order_relaxed);
            if (h != 0 && h != HAK_LOCK_RETIRED && tid_lost(h)) {
                hak_fork_reset_orphans();
                if ((how & HAK_LOCK_TAKE_LOST) && hak_lock_take_orphan(l)) return true;
            }
        }
    }
}

bool hak_trylock(hak_lock_t *l) {
    int z = 0;
    return atomic_compare_exchange_strong_explicit(&l->v, &z, hak_self_tid(), memory_order_acquire,
                                                   memory_order_relaxed);
}

bool hak_lock_take_orphan(hak_lock_t *l) {
    int v = atomic_load_explicit(&l->v, memory_order_acquire);
    pid_t me = hak_self_tid();
    if (v == 0 || v == me || v == HAK_LOCK_RETIRED) return false; /* free, ours, given up */
    /* set only in the fork child handler: this thread's tid in the parent */
    pid_t was_me = hak_tls.tid_in_parent;
    if (v == was_me) {
        /* held by this thread in the parent: a signal handler forked while it
         * was inside; the interrupted code finishes and unlocks after the
         * handler returns, now under this thread's new tid */
        atomic_compare_exchange_strong(&l->v, &v, me);
        return false;
    }
    /* Is the holder a thread of this process? After a fork only if an
     * application child handler that ran before ours started it. In the
     * child handler a tgkill that a sandbox refuses also means lost. */
    int e = errno;
    bool lost = syscall(SYS_tgkill, hak_sys_getpid(), v, 0) != 0 && (errno == ESRCH || was_me);
    errno = e;
    return lost && atomic_compare_exchange_strong_explicit(&l->v, &v, me, memory_order_acquire,
                                                           memory_order_relaxed);
}
