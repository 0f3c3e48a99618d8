/* hak_sys.h — the system calls a process makes at start-up and on its first
 * mallocs, without libc's wrappers (not installed).
 *
 * Why: the kernel maps a file's cached pages 64 KiB around each page fault
 * (fault-around), so each libc function the allocator calls that the
 * program would not is up to 16 pages of libc text resident. mmap, munmap,
 * madvise, syscall() and getauxval sit together in libc, apart from what a
 * small program (a shell) runs: one more window in about half of the
 * layouts ASLR picks (docs/allocator.md, "Fixed resident memory"). Each
 * wrapper behaves as libc's: -1 (MAP_FAILED) and errno on failure.
 *
 * Only on x86-64; elsewhere, and in the ThreadSanitizer build (whose
 * runtime must see every mmap and munmap), libc's functions. */
#ifndef HAK_SYS_H
#define HAK_SYS_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* mmap, munmap and madvise, out of line (shm_create.c): a program (or
 * another preloaded library) that defines one of them itself (to count or
 * fail them: tests do) gets the allocator's calls, as through libc. */
void *hak_sys_mmap(void *at, size_t len, int prot, int flags, int fd, off_t off);
int hak_sys_munmap(void *p, size_t len);
int hak_sys_madvise(void *p, size_t len, int advice);

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
static inline long hak_sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

/* libc's convention: -4095..-1 is -errno */
static inline long hak_sys_ret(long r) {
    if ((unsigned long)r > -4096ul) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

#define HAK_SYS(n, a, b, c, d, e, f)                                                               \
    hak_sys_ret(hak_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

/* getpid and gettid cannot fail */
static inline pid_t hak_sys_getpid(void) {
    return (pid_t)hak_sys6(SYS_getpid, 0, 0, 0, 0, 0, 0);
}
static inline pid_t hak_sys_gettid(void) {
    return (pid_t)hak_sys6(SYS_gettid, 0, 0, 0, 0, 0, 0);
}
static inline long hak_sys_sched_getaffinity(size_t len, unsigned long *mask) {
    return HAK_SYS(SYS_sched_getaffinity, 0, len, mask, 0, 0, 0);
}
/* the lock's and a successor's waits: libc's sched_yield sits alone in a
 * window of libc text that a program rarely runs (cache_scratch's workers
 * mapped it at their first free) */
static inline void hak_sys_sched_yield(void) {
    hak_sys6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
}
/* any other call of up to 4 arguments, as syscall() */
#define hak_sys4(n, a, b, c, d) HAK_SYS(n, a, b, c, d, 0, 0)
#else
static inline pid_t hak_sys_getpid(void) {
    return getpid();
}
static inline pid_t hak_sys_gettid(void) {
    return (pid_t)syscall(SYS_gettid);
}
static inline long hak_sys_sched_getaffinity(size_t len, unsigned long *mask) {
    return syscall(SYS_sched_getaffinity, 0, len, mask);
}
static inline void hak_sys_sched_yield(void) {
    sched_yield();
}
#define hak_sys4(n, a, b, c, d) syscall(n, a, b, c, d)
#endif

#endif
