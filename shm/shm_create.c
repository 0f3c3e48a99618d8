/* shm_create.c — the allocator's side: create, publish and clean up its own
 * segment. Runs inside malloc: no stdio, no malloc, only raw system calls.
 *
 * The segment is a memfd sealed against shrinking and growing, so no other
 * process (not even one of our uid) can truncate it under us, and it does
 * not live on the /dev/shm mount, so a full or small /dev/shm cannot make a
 * write to it fault. Only the pages written are made resident, before their
 * first write (hak_shm_reserve): a page that cannot be had is an error at
 * reservation, never a SIGBUS later.
 *
 * /dev/shm/hakmem.<pid> is a symlink whose text names it (HAK_SHM_LINK_FMT).
 * Readers never follow it: they check its owner and open /proc/<pid>/fd/<fd>
 * themselves. The pid namespace in the text tells a start-up clean-up in a
 * container sharing /dev/shm whether the pid in a name means anything here. */
#include "hak_sys.h"
#include "hakmem_shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define FD_FLOOR 1000 /* our fd sits above the numbers programs expect to use */

/* The segment this process created: its fd keeps it reachable for readers. */
static int own_fd = -1;
static struct hak_shm_header *own_base;
static uint64_t own_len;

/* Sets the segment we own. A fork from a signal handler can land anywhere
 * in hak_shm_create, and the child's hak_shm_release reads these three: so
 * the base is cleared first and set last (compiler fences, one thread),
 * and a base is never seen without its length and fd (t_fork_signal: an
 * own_len of 0 beside a new base made the child's remap fail). */
static void own_set(struct hak_shm_header *base, int fd, uint64_t len) {
    own_base = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    own_fd = fd;
    own_len = len;
    atomic_signal_fence(memory_order_seq_cst);
    own_base = base;
}
/* Its pages made resident so far, a bit each: a reservation of pages that
 * are (a heap's slot reserved when the segment appears and again by its
 * owner) makes no system call. Set only after the pages are resident;
 * threads racing on the same pages both populate, harmlessly. */
#define RESERVED_WORDS 10 /* 2.5 MiB of segment, above its 2.06 MiB (a larger one: EINVAL) */
static uint64_t own_reserved[RESERVED_WORDS];

static int reserved_all(uint64_t first, uint64_t last) {
    for (uint64_t p = first; p <= last; p++)
        if (!(__atomic_load_n(&own_reserved[p / 64], __ATOMIC_ACQUIRE) >> (p % 64) & 1)) return 0;
    return 1;
}

static void reserved_mark(uint64_t first, uint64_t last) {
    for (uint64_t p = first; p <= last; p++)
        __atomic_fetch_or(&own_reserved[p / 64], 1ull << (p % 64), __ATOMIC_RELEASE);
}

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
/* 3 not known yet, 1 direct, 2 through libc. Not zero, so in .data, whose
 * page the loader has written: a first read in a fresh .bss page costs the
 * zero page's fault and then the copy's. */
static int direct_state = 3;

static int near_mmap64(void *f) {
    uintptr_t a = (uintptr_t)f, b = (uintptr_t)(void *)&mmap64;
    return (a > b ? a - b : b - a) < 65536;
}

/* Direct calls only while mmap, munmap and madvise are all libc's. libc's
 * mmap has a public alias, mmap64, at the same address, which a program's
 * own mmap does not replace; munmap and madvise sit next to it in libc
 * (a libc laid out otherwise just keeps libc's calls). Taking their
 * addresses reads the GOT, not libc's text. Racing first callers agree. */
__attribute__((noinline)) static int direct_init(void) {
    int s = (void *)&mmap == (void *)&mmap64 && near_mmap64((void *)&munmap) &&
                    near_mmap64((void *)&madvise)
                ? 1
                : 2;
    __atomic_store_n(&direct_state, s, __ATOMIC_RELAXED);
    return s;
}

static int direct(void) {
    int s = __atomic_load_n(&direct_state, __ATOMIC_RELAXED);
    return (__builtin_expect(s == 3, 0) ? direct_init() : s) == 1;
}

void *hak_sys_mmap(void *at, size_t len, int prot, int flags, int fd, off_t off) {
    if (!direct()) return mmap(at, len, prot, flags, fd, off);
    return (void *)HAK_SYS(SYS_mmap, at, len, prot, flags, fd, off);
}
int hak_sys_munmap(void *p, size_t len) {
    if (!direct()) return munmap(p, len);
    return (int)HAK_SYS(SYS_munmap, p, len, 0, 0, 0, 0);
}
int hak_sys_madvise(void *p, size_t len, int advice) {
    if (!direct()) return madvise(p, len, advice);
    return (int)HAK_SYS(SYS_madvise, p, len, advice, 0, 0, 0);
}
#else
void *hak_sys_mmap(void *at, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap(at, len, prot, flags, fd, off);
}
int hak_sys_munmap(void *p, size_t len) {
    return munmap(p, len);
}
int hak_sys_madvise(void *p, size_t len, int advice) {
    return madvise(p, len, advice);
}
#endif

/* ------------------------------------------------- names and link texts */

static char *put_u64(char *p, uint64_t v) {
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = d[--n];
    return p;
}

static char *put_str(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* "/dev/shm/hakmem.<pid>" without snprintf (it may allocate) */
static void shm_path(char *buf, pid_t pid) {
    *put_u64(put_str(buf, "/dev/shm/" HAK_SHM_PREFIX), (uint64_t)pid) = 0;
}

size_t hak_shm_link_format(char *buf, pid_t pid, int fd, uint64_t pidns) {
    char *p = put_str(buf, HAK_SHM_LINK_PID);
    p = put_u64(put_str(put_u64(p, (uint64_t)pid), HAK_SHM_LINK_FD), (uint64_t)fd);
    p = put_u64(put_str(p, HAK_SHM_LINK_NS), pidns);
    *p = 0;
    return (size_t)(p - buf);
}

/* A canonical decimal (no sign, no leading zero) up to max; advances *s. */
static int get_u64(const char **s, uint64_t max, uint64_t *v) {
    const char *p = *s;
    uint64_t x = 0;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (max - (uint64_t)(*p - '0')) / 10) return -1;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *s = p;
    *v = x;
    return 0;
}

static int get_lit(const char **s, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n) != 0) return -1;
    *s += n;
    return 0;
}

int hak_shm_link_parse(const char *text, pid_t *pid, int *fd, uint64_t *pidns) {
    uint64_t p, f, ns;
    if (get_lit(&text, HAK_SHM_LINK_PID) || get_u64(&text, 0x7fffffff, &p) || p == 0 ||
        get_lit(&text, HAK_SHM_LINK_FD) || get_u64(&text, 0x7fffffff, &f) ||
        get_lit(&text, HAK_SHM_LINK_NS) || get_u64(&text, UINT64_MAX, &ns) || *text)
        return -1;
    *pid = (pid_t)p;
    *fd = (int)f;
    *pidns = ns;
    return 0;
}

uint64_t hak_shm_pidns(const char *ns_path) {
    struct stat st;
    return stat(ns_path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* ------------------------------------------------------------ creation */

static void copy_name(char *dst, const char *src) {
    memset(dst, 0, HAK_SHM_NAME_MAX);
    strncpy(dst, src, HAK_SHM_NAME_MAX - 1);
}

static int memfd_open(void) {
    unsigned base = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    int fd = (int)hak_sys4(SYS_memfd_create, "hakmem", base | MFD_NOEXEC_SEAL, 0, 0);
    if (fd < 0 && errno == EINVAL) fd = (int)hak_sys4(SYS_memfd_create, "hakmem", base, 0, 0);
    if (fd < 0) return -1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > FD_FLOOR + 24) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, FD_FLOOR);
        if (high >= 0) {
            close(fd);
            fd = high;
        }
    }
    return fd;
}

/* ftruncate with SIGXFSZ blocked in this thread (where the kernel sends it):
 * a file-size limit is an error here, never a signal to the program. The
 * caller checked RLIMIT_FSIZE already; this covers a limit lowered since. */
static int grow(int fd, uint64_t size) {
    uint64_t block = 1ull << (SIGXFSZ - 1), old = 0;
    hak_sys4(SYS_rt_sigprocmask, SIG_BLOCK, &block, &old, sizeof block);
    int rc = ftruncate(fd, (off_t)size), e = errno;
    if (rc != 0 && !(old & block)) {
        struct timespec zero = {0, 0};
        hak_sys4(SYS_rt_sigtimedwait, &block, NULL, &zero, sizeof block); /* consume ours */
    }
    hak_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof block);
    errno = e;
    return rc;
}

/* hak_shm_reserve's fallback: the file's pages allocated, if the fd is
 * still ours. Out of line (lib/hak_cold.py: cold): kernels before 5.14 and
 * filters that refuse madvise only. fallocate is the system call itself:
 * libc's is a cancellation point, and rows are reserved inside malloc. */
static __attribute__((noinline)) int reserve_by_fallocate(uint64_t off, uint64_t end) {
    struct stat st;
    if (fstat(own_fd, &st) != 0 || (uint64_t)st.st_size != own_len) return errno = EBADF, -1;
    return hak_sys4(SYS_fallocate, own_fd, 0, (long)off, (long)(end - off)) != 0 ? -1 : 0;
}

int hak_shm_reserve(struct hak_shm_header *h, uint64_t off, uint64_t len) {
    if (!h || h != own_base || off >= own_len) return errno = EINVAL, -1;
    uint64_t end = off + len > own_len ? own_len : off + len;
    off &= ~(uint64_t)4095;
    end = (end + 4095) & ~(uint64_t)4095;
    uint64_t first = off / 4096, last = end / 4096 - 1;
    if (last / 64 >= RESERVED_WORDS) return errno = EINVAL, -1;
    if (reserved_all(first, last)) return 0;
    if (hak_sys_madvise((char *)h + off, end - off, MADV_POPULATE_WRITE) != 0) {
        /* EINVAL: kernels before 5.14; EPERM, ENOSYS: a seccomp filter that
         * refuses madvise. Then allocate the file's pages, if the fd is still
         * ours. Else (ENOMEM, EFAULT: no memory for them) say out of memory. */
        if ((errno != EINVAL && errno != EPERM && errno != ENOSYS) || own_fd < 0)
            return errno = ENOMEM, -1;
        if (reserve_by_fallocate(off, end) != 0) return -1;
    }
    reserved_mark(first, last);
    return 0;
}

static void fill_header(struct hak_shm_header *h, const struct hak_shm_layout *l, pid_t pid,
                        uint64_t start_time, const char *exe, const char *exe_path) {
    char *b = (char *)h;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->abi_major = HAK_SHM_ABI_MAJOR;
    h->abi_minor = HAK_SHM_ABI_MINOR;
    h->header_size = sizeof(*h);
    h->total_size = l->total_size;
    h->pid = pid;
    h->flags = HAK_SHM_F_LIVE;
    h->start_time = start_time;
    h->pid_ns = hak_shm_pidns("/proc/self/ns/pid");
    h->created_ns = h->heartbeat_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    strncpy(h->exe, exe ? exe : "", sizeof(h->exe) - 1);
    strncpy(h->exe_path, exe_path ? exe_path : "", sizeof(h->exe_path) - 1);

    h->class_off = l->class_off;
    h->n_classes = HAK_NUM_CLASSES;
    memcpy(b + l->class_off, hak_class_size, sizeof(hak_class_size));

    h->knob_dir_off = l->knob_dir_off;
    h->n_knobs = HAK_NUM_KNOBS;
    h->knob_val_off = l->knob_val_off;
    h->knob_val_size = sizeof(struct hak_shm_knob_val);
    h->knob_cslots = HAK_NUM_CLASSES;
    h->n_knob_vals = l->n_knob_vals;
    struct hak_shm_knob_desc *kd = (void *)(b + l->knob_dir_off);
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        copy_name(kd[k].name, hak_knob_defs[k].name);
        kd[k].scope = hak_knob_defs[k].scope;
        kd[k].val_index = l->knob_val_index[k];
        kd[k].def = hak_knob_defs[k].def;
        kd[k].min = hak_knob_defs[k].min;
        kd[k].max = hak_knob_defs[k].max;
    }
    h->ctr_dir_off = l->ctr_dir_off;
    h->n_ctrs = HAK_NUM_CTRS;
    for (int i = 0; i < HAK_NUM_CTRS; i++)
        copy_name(b + l->ctr_dir_off + i * HAK_SHM_NAME_MAX, hak_ctr_names[i]);
    h->proc_dir_off = l->proc_dir_off;
    h->proc_off = l->proc_off;
    h->n_proc = HAK_NUM_PROCS;
    for (int i = 0; i < HAK_NUM_PROCS; i++)
        copy_name(b + l->proc_dir_off + i * HAK_SHM_NAME_MAX, hak_proc_names[i]);
    h->slot_off = l->slot_off;
    h->n_slots = HAK_SHM_ROWS;
    h->slot_size = l->slot_size;
    h->slot_ctr_off = l->slot_ctr_off;
    h->row_tag_off = l->row_tag_off;
    h->ctr_cslots = HAK_NUM_CSLOTS;
    /* The magic goes last: a reader that sees it sees a complete header. */
    __atomic_store_n(&h->magic, HAK_SHM_MAGIC, __ATOMIC_RELEASE);
}

/* Whether entry name of dir (st: its lstat) was written by a process of our
 * user with pid in pid namespace ns. For our own pid: its writer is gone (or was us
 * before an exec) and the name is ours to take. Anything else, a
 * neighbour's live segment in a container sharing /dev/shm above all, is
 * left alone. */
static int written_in(int dir, const char *name, const struct stat *st, pid_t pid, uint64_t ns) {
    pid_t p;
    int fd;
    uint64_t pns;
    if (ns == 0 || st->st_uid != geteuid()) return 0; /* another user's is never ours */
    if (S_ISLNK(st->st_mode)) {
        char text[HAK_SHM_LINK_MAX];
        ssize_t n = readlinkat(dir, name, text, sizeof text - 1);
        if (n <= 0) return 0;
        text[n] = 0;
        return hak_shm_link_parse(text, &p, &fd, &pns) == 0 && p == pid && pns == ns;
    }
    if (!S_ISREG(st->st_mode)) return 0;
    /* a segment file of an older hakmem: its header says whose it was */
    struct hak_shm_header h;
    fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = pread(fd, &h, sizeof h, 0);
    close(fd);
    return n == (ssize_t)sizeof h && h.magic == HAK_SHM_MAGIC && h.pid == pid &&
           HAK_SHM_HAS(h.header_size, pid_ns) && h.pid_ns == ns;
}

static int publish(pid_t pid, int fd, uint64_t ns) {
    char path[64], text[HAK_SHM_LINK_MAX];
    shm_path(path, pid);
    hak_shm_link_format(text, pid, fd, ns);
    if (symlink(text, path) == 0) return 0;
    if (errno != EEXIST) return -1;
    struct stat st;
    if (lstat(path, &st) != 0 || !written_in(AT_FDCWD, path, &st, pid, ns))
        return errno = EEXIST, -1;
    if (unlink(path) != 0 && errno != ENOENT) return -1;
    return symlink(text, path);
}

struct hak_shm_header *hak_shm_create(pid_t pid, uint64_t start_time, const char *exe,
                                      const char *exe_path) {
    struct hak_shm_layout l;
    struct rlimit rl;
    hak_shm_layout_compute(&l);
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < l.total_size)
        return errno = EFBIG, NULL;
    int fd = memfd_open();
    if (fd < 0) return NULL;
    void *base = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && grow(fd, l.total_size) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        base = hak_sys_mmap(NULL, l.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    if (base == MAP_FAILED) {
        close(fd);
        return errno = e, NULL;
    }
    struct hak_shm_header *prev_base = own_base;
    int prev_fd = own_fd;
    uint64_t prev_len = own_len;
    uint64_t prev_reserved[RESERVED_WORDS];
    memcpy(prev_reserved, own_reserved, sizeof own_reserved);
    memset(own_reserved, 0, sizeof own_reserved);
    own_set(base, fd, l.total_size);
    uint64_t ns = hak_shm_pidns("/proc/self/ns/pid");
    /* header, tables and directories, and the first rows (to the end of
     * their page) in the same call: the publishing heap's first rows make
     * no system call of their own */
    if (hak_shm_reserve(base, 0, ((uint64_t)l.slot_off + l.slot_size + 4095) & ~4095ull) == 0) {
        fill_header(base, &l, pid, start_time, exe, exe_path);
        if (publish(pid, fd, ns) == 0) return base;
    }
    e = errno;
    hak_sys_munmap(base, l.total_size);
    close(fd);
    own_set(prev_base, prev_fd, prev_len);
    memcpy(own_reserved, prev_reserved, sizeof own_reserved);
    return errno = e, NULL;
}

int hak_shm_release(void) {
    int r = 0;
    /* in place, in one step: never a moment when the range is unmapped */
    if (own_base &&
        hak_sys_mmap(own_base, own_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
        r = -1;
    int fd = own_fd;
    own_set(NULL, -1, 0);
    if (fd >= 0) close(fd);
    memset(own_reserved, 0, sizeof own_reserved);
    return r;
}

void hak_shm_unlink(pid_t pid) {
    char path[64], text[HAK_SHM_LINK_MAX];
    pid_t p;
    int fd;
    uint64_t ns;
    shm_path(path, pid);
    ssize_t n = readlink(path, text, sizeof text - 1);
    if (n <= 0) return;
    text[n] = 0;
    /* only our own link: another process may have taken the name since */
    if (hak_shm_link_parse(text, &p, &fd, &ns) == 0 && p == pid && fd == own_fd) unlink(path);
}

/* ------------------------------------------------------------------ gc */

/* The gc is rate-limited across processes: the mtime of
 * /dev/shm/hakmem-gc.<uid>.<pidns> is when a process of our user and pid
 * namespace last scanned (only that user can remove those segments, and only
 * from that namespace can kill() judge their pids). A scan claims the stamp
 * by setting it to now; a process that finds it younger than
 * HAK_SHM_GC_EVERY_NS does not scan. What that scan could not remove yet (a
 * process that died since, a segment not yet HAK_SHM_GC_AGE_S old) the next
 * publication after the interval removes: the interval only delays it. A
 * stamp that is not a regular file of ours (planted by another user to
 * silence ours) or whose time is in the future (the clock went back) does not
 * limit anything. No snprintf, no malloc: this runs inside malloc. */
static int gc_due(const char *dir, uint64_t ns) {
    char path[HAK_SHM_GC_DIR_MAX + 64];
    struct stat st;
    struct timespec now;
    uid_t uid = geteuid();
    char *p = put_str(put_str(put_str(path, dir), "/"), HAK_SHM_GC_STAMP);
    *put_u64(put_str(put_u64(p, (uint64_t)uid), "."), ns) = 0;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) return 1;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd); /* made now: its mtime is this scan's */
        return 1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != uid) return 1;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age =
        (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000000000 + (now.tv_nsec - st.st_mtim.tv_nsec);
    if (age >= 0 && age < HAK_SHM_GC_EVERY_NS) return 0;
    utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW); /* claimed: now */
    return 1;
}

/* Unlinks name (a gc stamp) if it is a regular file of ours that no scan
 * touched for HAK_SHM_GC_STAMP_AGE_S (ours was just claimed: never that
 * old). */
static void stale_stamp(int dirfd, const char *name) {
    struct stat st;
    struct timespec now;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == geteuid() && clock_gettime(CLOCK_REALTIME, &now) == 0 &&
        now.tv_sec - st.st_mtime > HAK_SHM_GC_STAMP_AGE_S)
        unlinkat(dirfd, name, 0);
}

/* Removes what processes that are gone left (those that ended with _exit()
 * or a signal never unlink theirs): only entries written in our pid
 * namespace (a neighbour's pid means nothing to kill() here), whose pid
 * kill() says is gone, unchanged for HAK_SHM_GC_AGE_S (a tool may be looking
 * at a segment whose process just ended). Reads /dev/shm with getdents64
 * into a stack buffer (no malloc), looks at a bounded number of entries, and
 * unlinks only what the kernel lets us (the sticky /dev/shm: our own). At
 * most one scan per HAK_SHM_GC_EVERY_NS per user and pid namespace
 * (gc_due). */
static __attribute__((noinline)) int gc_scan(const char *dir, uint64_t ns) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    /* 512 bytes, not 4 KiB: this runs on the stack of whichever thread
     * publishes, within its first 2 pages only if small (a page more for
     * the thread's life otherwise); a name is at most 255 bytes, so a read
     * still returns an entry, only more reads of a long directory, once a
     * second at most */
    char buf[512];
    int seen = 0;
    long n;
    while (seen < 4096 && (n = hak_sys4(SYS_getdents64, fd, buf, sizeof buf, 0)) > 0) {
        for (long off = 0; off < n;) {
            /* the kernel's record (struct linux_dirent64) is glibc's
             * struct dirent64 up to d_name, whose NUL ends within d_reclen */
            const struct dirent64 *d = (const void *)(buf + off);
            off += d->d_reclen;
            seen++;
            if (strncmp(d->d_name, HAK_SHM_GC_STAMP, sizeof(HAK_SHM_GC_STAMP) - 1) == 0) {
                stale_stamp(fd, d->d_name);
                continue;
            }
            if (strncmp(d->d_name, HAK_SHM_PREFIX, sizeof(HAK_SHM_PREFIX) - 1) != 0) continue;
            const char *p = d->d_name + sizeof(HAK_SHM_PREFIX) - 1;
            uint64_t pid;
            if (get_u64(&p, 0x7fffffff, &pid) || *p || pid == 0 || kill((pid_t)pid, 0) == 0 ||
                errno != ESRCH)
                continue;
            struct stat st;
            struct timespec now; /* not time(): its libc page is one more 64 KiB
                                  * fault-around window resident (docs/allocator.md) */
            if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                clock_gettime(CLOCK_REALTIME, &now) != 0 ||
                now.tv_sec - st.st_mtime < HAK_SHM_GC_AGE_S)
                continue;
            if (written_in(fd, d->d_name, &st, (pid_t)pid, ns)) unlinkat(fd, d->d_name, 0);
        }
    }
    close(fd);
    return 1;
}

/* The checks apart from the scan: gc_due's frame (and its callees') would
 * lie below the scan's buffer, touching the stack that deep even when no
 * scan is due (most publications). */
int hak_shm_gc_dead_in(const char *dir) {
    uint64_t ns = hak_shm_pidns("/proc/self/ns/pid");
    if (ns == 0 || strlen(dir) > HAK_SHM_GC_DIR_MAX) return -1;
    if (!gc_due(dir, ns)) return 0;
    return gc_scan(dir, ns);
}

void hak_shm_gc_dead(void) {
    hak_shm_gc_dead_in("/dev/shm");
}
