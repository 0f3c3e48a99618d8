/* shm_create.c — the allocator's side: create and fill in its own segment.
 * Runs inside malloc: no stdio, no malloc, only raw system calls. */
#include "hakmem_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void shm_path(char *buf, pid_t pid) {
    /* "/dev/shm/hakmem.<pid>" without snprintf (it may allocate) */
    static const char pre[] = "/dev/shm/" HAK_SHM_PREFIX;
    char digits[16];
    int n = 0;
    unsigned long v = (unsigned long)pid;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 15);
    memcpy(buf, pre, sizeof(pre) - 1);
    char *p = buf + sizeof(pre) - 1;
    while (n) *p++ = digits[--n];
    *p = 0;
}

void hak_shm_unlink(pid_t pid) {
    char path[64];
    shm_path(path, pid);
    unlink(path);
}

static void copy_name(char *dst, const char *src) {
    memset(dst, 0, HAK_SHM_NAME_MAX);
    strncpy(dst, src, HAK_SHM_NAME_MAX - 1);
}

struct hak_shm_header *hak_shm_create(pid_t pid, uint64_t start_time, const char *exe,
                                      const char *exe_path) {
    char path[64];
    shm_path(path, pid);
    struct hak_shm_layout l;
    hak_shm_layout_compute(&l);

    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* Left by a dead process with our pid (or by our pre-exec image). */
        unlink(path);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0) return NULL;
    if (ftruncate(fd, (off_t)l.total_size) != 0) {
        close(fd);
        unlink(path);
        return NULL;
    }
    void *base = mmap(NULL, l.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        unlink(path);
        return NULL;
    }
    char *b = base;
    struct hak_shm_header *h = base;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->abi_major = HAK_SHM_ABI_MAJOR;
    h->abi_minor = HAK_SHM_ABI_MINOR;
    h->header_size = sizeof(*h);
    h->total_size = l.total_size;
    h->pid = pid;
    h->flags = HAK_SHM_F_LIVE;
    h->start_time = start_time;
    h->created_ns = h->heartbeat_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    strncpy(h->exe, exe ? exe : "", sizeof(h->exe) - 1);
    strncpy(h->exe_path, exe_path ? exe_path : "", sizeof(h->exe_path) - 1);

    h->class_off = l.class_off;
    h->n_classes = HAK_NUM_CLASSES;
    memcpy(b + l.class_off, hak_class_size, sizeof(hak_class_size));

    h->knob_dir_off = l.knob_dir_off;
    h->n_knobs = HAK_NUM_KNOBS;
    h->knob_val_off = l.knob_val_off;
    h->knob_val_size = sizeof(struct hak_shm_knob_val);
    h->knob_cslots = HAK_NUM_CLASSES;
    struct hak_shm_knob_desc *kd = (void *)(b + l.knob_dir_off);
    for (int k = 0; k < HAK_NUM_KNOBS; k++) {
        copy_name(kd[k].name, hak_knob_defs[k].name);
        kd[k].scope = hak_knob_defs[k].scope;
        kd[k].def = hak_knob_defs[k].def;
        kd[k].min = hak_knob_defs[k].min;
        kd[k].max = hak_knob_defs[k].max;
    }
    h->ctr_dir_off = l.ctr_dir_off;
    h->n_ctrs = HAK_NUM_CTRS;
    for (int i = 0; i < HAK_NUM_CTRS; i++)
        copy_name(b + l.ctr_dir_off + i * HAK_SHM_NAME_MAX, hak_ctr_names[i]);
    h->proc_dir_off = l.proc_dir_off;
    h->proc_off = l.proc_off;
    h->n_proc = HAK_NUM_PROCS;
    for (int i = 0; i < HAK_NUM_PROCS; i++)
        copy_name(b + l.proc_dir_off + i * HAK_SHM_NAME_MAX, hak_proc_names[i]);
    h->slot_off = l.slot_off;
    h->n_slots = HAK_SHM_SLOTS;
    h->slot_size = l.slot_size;
    h->slot_ctr_off = l.slot_ctr_off;
    h->ctr_cslots = HAK_NUM_CSLOTS;
    /* The magic goes last: a reader that sees it sees a complete header. */
    __atomic_store_n(&h->magic, HAK_SHM_MAGIC, __ATOMIC_RELEASE);
    return h;
}

/* Removes segments of processes that are gone (HAK_SHM_GC_AGE_S): those that ended with _exit()
 * (every `sh -c`) or a signal never unlink theirs. Called when a process
 * creates its own; reads /dev/shm with getdents64 into a stack buffer (no
 * malloc), looks at a bounded number of entries, and unlinks only what the
 * kernel lets us (the sticky /dev/shm: our own files). */
void hak_shm_gc_dead(void) {
    int fd = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    int seen = 0;
    long n;
    while (seen < 4096 && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            off += d->reclen;
            seen++;
            if (strncmp(d->name, HAK_SHM_PREFIX, sizeof(HAK_SHM_PREFIX) - 1) != 0) continue;
            const char *p = d->name + sizeof(HAK_SHM_PREFIX) - 1;
            long pid = 0;
            while (*p >= '0' && *p <= '9' && pid < (1l << 31)) pid = pid * 10 + (*p++ - '0');
            if (*p || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
            /* only files that have been dead a while: a tool (or a test) may
             * be looking at a segment whose process just ended */
            struct stat st;
            if (fstatat(fd, d->name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
                time(NULL) - st.st_mtime < HAK_SHM_GC_AGE_S)
                continue;
            unlinkat(fd, d->name, 0);
        }
    }
    close(fd);
}
