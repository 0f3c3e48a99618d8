/* t_shm_validate — the reader side of the segment refuses what it must.
 *
 * A real segment is made with hak_shm_create under a pid no process can
 * have (> PID_MAX_LIMIT), copied, and then damaged one way at a time:
 * truncated, bad magic, newer/older ABI, counts and offsets out of range or
 * overflowing, misaligned, unterminated names, nonsense class sizes. Each
 * must be refused with the right code, never crash. Then the file checks of
 * hak_shm_attach_path (symlink, hard link, mode, FIFO, directory, size),
 * random damage to attached files with every accessor exercised, an older
 * segment that lacks a knob, hak_shm_knob_set (range, read-only, writer
 * lock stealing), staleness and the pid-based errors. */
#include "hakmem_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int failures, checks;
static char err[512];

static void check(int ok, const char *fmt, ...) {
    va_list ap;
    checks++;
    if (ok) return;
    failures++;
    printf("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" (last message: %s)\n", err);
}

static unsigned char *good;
static size_t glen;
static unsigned char *buf;
static char dir[64];

#define H(b) ((struct hak_shm_header *)(b))

/* Fresh copy of the good segment in buf. */
static struct hak_shm_header *fresh(void) {
    memcpy(buf, good, glen);
    return H(buf);
}

static void expect(int code, const char *what, const char *needle) {
    err[0] = 0;
    int rc = hak_shm_validate(buf, glen, err, sizeof err);
    check(rc == code, "%s: validate returned %d, want %d", what, rc, code);
    if (needle) check(strstr(err, needle) != NULL, "%s: message lacks '%s'", what, needle);
}

static void test_validate(void) {
    struct hak_shm_header *h;
    expect(HAK_SHM_OK, "valid segment", NULL);
    check(hak_shm_validate(NULL, 0, err, sizeof err) == HAK_SHM_ECORRUPT, "NULL base");
    check(hak_shm_validate(buf, 10, err, sizeof err) == HAK_SHM_ECORRUPT, "10 bytes");
    check(hak_shm_validate(buf, glen - 4096, err, sizeof err) == HAK_SHM_ECORRUPT, "truncated");
    check(hak_shm_validate(buf, glen, NULL, 0) == HAK_SHM_OK, "no err buffer");

    fresh()->magic ^= 1;
    expect(HAK_SHM_ECORRUPT, "bad magic", "magic");
    h = fresh(), h->abi_major = 5, h->abi_minor = 0;
    expect(HAK_SHM_EABI, "newer ABI", "segment ABI 5.0 is newer than this tool understands (4.x)");
    h = fresh(), h->abi_major = 1, h->abi_minor = 1; /* the layout before packed knobs */
    expect(HAK_SHM_EABI, "ABI 1 refused",
           "segment ABI 1.1 is older than this tool understands (4.x)");
    h = fresh(), h->abi_major = 2, h->abi_minor = 0; /* a counter slot per heap, not rows */
    expect(HAK_SHM_EABI, "ABI 2 refused",
           "segment ABI 2.0 is older than this tool understands (4.x)");
    h = fresh(), h->abi_major = 3, h->abi_minor = 0; /* the 60-class table */
    expect(HAK_SHM_EABI, "ABI 3 refused",
           "segment ABI 3.0 is older than this tool understands (4.x)");
    h = fresh(), h->abi_major = 0;
    expect(HAK_SHM_EABI, "older ABI", "older");
    h = fresh(), h->abi_minor = 7; /* newer minor: fine */
    expect(HAK_SHM_OK, "newer minor", NULL);
    fresh()->header_size = 8;
    expect(HAK_SHM_ECORRUPT, "small header_size", NULL);
    fresh()->header_size = 0xfffffff8u;
    expect(HAK_SHM_ECORRUPT, "huge header_size", NULL);
    fresh()->total_size += 4096;
    expect(HAK_SHM_ECORRUPT, "total_size mismatch", "size mismatch");
    fresh()->pid = 0;
    expect(HAK_SHM_ECORRUPT, "pid 0", NULL);

    /* counts */
    fresh()->n_classes = 0;
    expect(HAK_SHM_ECORRUPT, "no classes", NULL);
    fresh()->n_classes = 1025;
    expect(HAK_SHM_ECORRUPT, "1025 classes", NULL);
    fresh()->n_knobs = 1025;
    expect(HAK_SHM_ECORRUPT, "1025 knobs", NULL);
    fresh()->n_ctrs = 5000;
    expect(HAK_SHM_ECORRUPT, "5000 counters", NULL);
    fresh()->n_slots = 70000;
    expect(HAK_SHM_ECORRUPT, "70000 slots", NULL);
    fresh()->n_slots = 65536; /* within the bound, not within the file */
    expect(HAK_SHM_ECORRUPT, "65536 rows", "rows");
    fresh()->n_proc = 2000;
    expect(HAK_SHM_ECORRUPT, "2000 proc figures", NULL);
    fresh()->knob_cslots = 0;
    expect(HAK_SHM_ECORRUPT, "knob_cslots 0", NULL);
    fresh()->ctr_cslots = 100000;
    expect(HAK_SHM_ECORRUPT, "ctr_cslots huge", NULL);

    /* offsets and strides: out of range, overflowing, misaligned */
    uint32_t *fields[] = {&H(buf)->class_off,   &H(buf)->knob_dir_off, &H(buf)->knob_val_off,
                          &H(buf)->ctr_dir_off, &H(buf)->slot_off,     &H(buf)->proc_dir_off,
                          &H(buf)->proc_off};
    const char *names[] = {"class_off", "knob_dir_off", "knob_val_off", "ctr_dir_off",
                           "slot_off",  "proc_dir_off", "proc_off"};
    uint32_t bad[] = {0, 8, (uint32_t)glen, (uint32_t)glen - 8, 0xffffffffu, 0xffffffc0u};
    for (int f = 0; f < 7; f++)
        for (int i = 0; i < 6; i++) {
            fresh();
            *fields[f] = bad[i];
            char what[64];
            snprintf(what, sizeof what, "%s = %u", names[f], bad[i]);
            expect(HAK_SHM_ECORRUPT, what, NULL);
        }
    for (int f = 0; f < 7; f++) {
        if (f == 3 || f == 5) continue; /* name tables need no alignment */
        fresh();
        *fields[f] += 1;
        expect(HAK_SHM_ECORRUPT, names[f], NULL);
    }
    h = fresh(), h->slot_size = 0xfffffff8u, h->n_slots = 65536;
    expect(HAK_SHM_ECORRUPT, "slot table overflowing 2^32", NULL);
    fresh()->slot_size = 8;
    expect(HAK_SHM_ECORRUPT, "slot_size too small for counters", NULL);
    fresh()->slot_ctr_off = 0xfffffff8u;
    expect(HAK_SHM_ECORRUPT, "slot_ctr_off huge", NULL);
    fresh()->row_tag_off = 8;
    expect(HAK_SHM_ECORRUPT, "row tag inside the counters", NULL);
    fresh()->row_tag_off = 142;
    expect(HAK_SHM_ECORRUPT, "row tag past the row", NULL);
    fresh()->knob_val_size = 8;
    expect(HAK_SHM_ECORRUPT, "knob_val_size too small", NULL);
    fresh()->knob_val_size = 0xfffffff0u;
    expect(HAK_SHM_ECORRUPT, "knob_val_size huge", NULL);
    /* packed knob values (ABI 2): the table's count and each knob's place in it */
    fresh()->n_knob_vals = 0xfffffff0u;
    expect(HAK_SHM_ECORRUPT, "n_knob_vals huge", NULL);
    fresh()->n_knob_vals = 1;
    expect(HAK_SHM_ECORRUPT, "n_knob_vals below the directory's rows", "knob directory");
    for (uint32_t k = 0; k < H(good)->n_knobs; k++) {
        struct hak_shm_knob_desc *kd =
            (struct hak_shm_knob_desc *)(fresh()->knob_dir_off + (char *)buf) + k;
        kd->val_index = H(buf)->n_knob_vals; /* its values past the end */
        expect(HAK_SHM_ECORRUPT, "a knob's values past the table", "knob directory");
        kd = (struct hak_shm_knob_desc *)(fresh()->knob_dir_off + (char *)buf) + k;
        kd->val_index = 0xffffffffu; /* and overflowing */
        expect(HAK_SHM_ECORRUPT, "a knob's val_index overflowing", "knob directory");
    }

    /* contents of the tables */
    h = fresh();
    memset(buf + h->ctr_dir_off, 'x', HAK_SHM_NAME_MAX);
    expect(HAK_SHM_ECORRUPT, "unterminated counter name", "unterminated");
    h = fresh();
    memset(buf + h->proc_dir_off + HAK_SHM_NAME_MAX, 'x', HAK_SHM_NAME_MAX);
    expect(HAK_SHM_ECORRUPT, "unterminated proc name", "unterminated");
    h = fresh();
    struct hak_shm_knob_desc *kd = (void *)(buf + h->knob_dir_off);
    memset(kd[1].name, 'k', HAK_SHM_NAME_MAX);
    expect(HAK_SHM_ECORRUPT, "unterminated knob name", "knob directory");
    h = fresh(), kd = (void *)(buf + h->knob_dir_off), kd[0].scope = 7;
    expect(HAK_SHM_ECORRUPT, "knob scope 7", NULL);
    h = fresh(), kd = (void *)(buf + h->knob_dir_off), kd[0].min = 10, kd[0].max = 1;
    expect(HAK_SHM_ECORRUPT, "knob min > max", NULL);
    h = fresh();
    ((uint32_t *)(buf + h->class_off))[5] = 1;
    expect(HAK_SHM_ECORRUPT, "class sizes not increasing", "class");
}

/* ------------------------------------------------------------- files */

static void write_file(const char *path, const void *b, size_t n, mode_t mode) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0 || write(fd, b, n) != (ssize_t)n) perror(path), exit(2);
    fchmod(fd, mode);
    close(fd);
}

static int attach(const char *path, int w, struct hak_shm_view *v) {
    err[0] = 0;
    return hak_shm_attach_path(path, w, v, err, sizeof err);
}

static void test_files(void) {
    struct hak_shm_view v;
    char f[128], l[128];
    snprintf(f, sizeof f, "%s/seg", dir);
    write_file(f, good, glen, 0600);
    check(attach(f, 0, &v) == HAK_SHM_OK, "attach a valid file");
    int all = 1;
    for (int k = 0; k < HAK_NUM_KNOBS; k++) all &= v.knob_map[k] >= 0;
    for (int c = 0; c < HAK_NUM_CTRS; c++) all &= v.ctr_map[c] >= 0;
    for (int p = 0; p < HAK_NUM_PROCS; p++) all &= v.proc_map[p] >= 0;
    check(all, "every knob, counter and figure found by name");
    check(hak_shm_nclasses(&v) == HAK_NUM_CLASSES, "nclasses");
    check(hak_shm_class_size(&v, 3) == hak_class_size[3], "class size");
    check(hak_shm_class_size(&v, HAK_NUM_CLASSES) == 0, "large class size 0");
    check(hak_shm_knob_set(&v, HAK_KNOB_ADOPT, -1, 0, HAK_OWNER_MANUAL, "x") == HAK_SHM_EACCES,
          "knob_set on a read-only view");
    hak_shm_request_trim(&v); /* read-only: must be a no-op, not a SIGSEGV */
    hak_shm_detach(&v);

    snprintf(l, sizeof l, "%s/link", dir);
    symlink(f, l);
    check(attach(l, 0, &v) == HAK_SHM_EUNSAFE && strstr(err, "symlink"), "symlink refused");
    unlink(l);
    link(f, l);
    check(attach(f, 0, &v) == HAK_SHM_EUNSAFE && strstr(err, "hard link"), "hard link refused");
    unlink(l);
    chmod(f, 0620);
    check(attach(f, 0, &v) == HAK_SHM_EACCES && strstr(err, "other users"),
          "group-writable refused");
    chmod(f, 0602);
    check(attach(f, 0, &v) == HAK_SHM_EACCES, "world-writable refused");
    chmod(f, 0600);
    check(attach(dir, 0, &v) == HAK_SHM_EUNSAFE && strstr(err, "regular"), "directory refused");
    snprintf(l, sizeof l, "%s/fifo", dir);
    mkfifo(l, 0600);
    check(attach(l, 0, &v) == HAK_SHM_EUNSAFE, "FIFO refused without hanging");
    snprintf(l, sizeof l, "%s/short", dir);
    write_file(l, good, 100, 0600);
    check(attach(l, 0, &v) == HAK_SHM_ECORRUPT && strstr(err, "truncated"), "short file refused");
    write_file(l, good, glen - 4096, 0600);
    check(attach(l, 0, &v) == HAK_SHM_ECORRUPT && strstr(err, "size mismatch"),
          "file shorter than its header says");
    snprintf(l, sizeof l, "%s/none", dir);
    check(attach(l, 0, &v) == HAK_SHM_ENOENT, "missing file");
    H(fresh())->abi_major = 5;
    write_file(l, buf, glen, 0600);
    check(attach(l, 0, &v) == HAK_SHM_EABI && strstr(err, "newer than this tool"),
          "newer ABI file");
    unlink(l);
}

/* An older allocator: its directories lack a knob and a counter. */
static void test_older(void) {
    struct hak_shm_view v;
    char f[128];
    struct hak_shm_header *h = fresh();
    struct hak_shm_knob_desc *kd = (void *)(buf + h->knob_dir_off);
    snprintf(kd[HAK_KNOB_SEG_CACHE].name, HAK_SHM_NAME_MAX, "retired_knob");
    snprintf((char *)buf + h->ctr_dir_off + HAK_CTR_ADOPTED * HAK_SHM_NAME_MAX, HAK_SHM_NAME_MAX,
             "old_ctr");
    snprintf(f, sizeof f, "%s/old", dir);
    write_file(f, buf, glen, 0600);
    check(attach(f, 1, &v) == HAK_SHM_OK, "older segment attaches");
    check(v.knob_map[HAK_KNOB_SEG_CACHE] == -1 && v.ctr_map[HAK_CTR_ADOPTED] == -1,
          "absent knob/counter map to -1");
    check(hak_shm_knob(&v, HAK_KNOB_SEG_CACHE, 0) == NULL, "absent knob has no value");
    check(hak_shm_ctr_sum(&v, 0, HAK_CTR_ADOPTED) == 0, "absent counter reads 0");
    check(hak_shm_knob_set(&v, HAK_KNOB_SEG_CACHE, -1, 1, HAK_OWNER_MANUAL, "") == HAK_SHM_ENOENT,
          "setting an absent knob");
    hak_shm_detach(&v);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_knob_set(void) {
    struct hak_shm_view v;
    char f[128];
    snprintf(f, sizeof f, "%s/knobs", dir);
    write_file(f, good, glen, 0600);
    check(attach(f, 1, &v) == HAK_SHM_OK, "attach read-write");
    uint64_t gen = v.hdr->knob_gen;
    check(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, -1, 513, HAK_OWNER_MANUAL, "") == -ERANGE,
          "refill_count 513 out of range");
    check(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, -1, 0, HAK_OWNER_MANUAL, "") == -ERANGE,
          "refill_count 0 out of range");
    check(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, 99, 5, HAK_OWNER_MANUAL, "") == -EINVAL,
          "class 99");
    check(hak_shm_knob_set(&v, HAK_KNOB_ADOPT, 3, 0, HAK_OWNER_MANUAL, "") == -EINVAL,
          "class given for a global knob");
    check(hak_shm_knob_set(&v, HAK_KNOB_ADOPT, -1, 0, 9, "") == -EINVAL, "bad owner");
    check(v.hdr->knob_gen == gen, "refused sets leave knob_gen alone");
    /* the segment's own range is narrower: it wins */
    struct hak_shm_knob_desc *kd = (void *)((char *)v.hdr + v.hdr->knob_dir_off);
    kd[v.knob_map[HAK_KNOB_FAST_CAP]].max = 100;
    check(hak_shm_knob_set(&v, HAK_KNOB_FAST_CAP, 0, 200, HAK_OWNER_MANUAL, "") == -ERANGE,
          "segment's narrower max enforced");
    check(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, -1, 7, HAK_OWNER_MANUAL,
                           "a reason longer than the field can ever hold, cut short") == 0,
          "set refill_count=7 for all classes");
    int all = 1;
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
        struct hak_shm_knob_val *kv = hak_shm_knob(&v, HAK_KNOB_REFILL_COUNT, c);
        all &= kv && kv->value == 7 && kv->owner == HAK_OWNER_MANUAL && kv->set_ns &&
               memchr(kv->reason, 0, sizeof kv->reason);
    }
    check(all, "every class set, owner manual, time and reason recorded");
    check(v.hdr->knob_gen == gen + 1 && v.hdr->writer_lock == 0, "gen bumped, lock released");
    check(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, 3, 9, HAK_OWNER_MANUAL, "m") == 0 &&
              hak_shm_knob(&v, HAK_KNOB_REFILL_COUNT, 3)->value == 9 &&
              hak_shm_knob(&v, HAK_KNOB_REFILL_COUNT, 4)->value == 7,
          "one class only");
    check(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, 3, 11, HAK_OWNER_DAEMON, "d") ==
                  HAK_SHM_PINNED &&
              hak_shm_knob(&v, HAK_KNOB_REFILL_COUNT, 3)->value == 9 &&
              hak_shm_knob(&v, HAK_KNOB_REFILL_COUNT, 3)->owner == HAK_OWNER_MANUAL,
          "the daemon's write leaves a person's pin alone");
    v.hdr->writer_lock = 0x7ffffff0; /* a holder that cannot exist */
    double t0 = now();
    check(hak_shm_knob_set(&v, HAK_KNOB_ADOPT, -1, 0, HAK_OWNER_MANUAL, "") == 0 &&
              now() - t0 < 0.05 && v.hdr->writer_lock == 0,
          "lock of a dead holder stolen at once");
    v.hdr->writer_lock = 1; /* init: alive, never lets go */
    t0 = now();
    int rc = hak_shm_knob_set(&v, HAK_KNOB_ADOPT, -1, 1, HAK_OWNER_MANUAL, "");
    double dt = now() - t0;
    check(rc == 0 && dt >= 0.09 && dt < 1 && v.hdr->writer_lock == 0,
          "lock of a stuck live holder stolen after ~100 ms (took %.3f s)", dt);
    uint64_t req = v.hdr->trim_req;
    hak_shm_request_trim(&v);
    check(v.hdr->trim_req == req + 1, "trim request bumps trim_req");
    /* the header changes under an attached view: accessors stay in bounds */
    v.hdr->slot_off = 0xffffffc0u;
    v.hdr->knob_val_off = 0xffffffc0u;
    v.hdr->class_off = 0xffffffc0u;
    v.hdr->proc_off = 0xffffffc0u;
    check(hak_shm_ctr_sum(&v, 0, HAK_CTR_ALLOCS) == 0 && !hak_shm_knob(&v, 0, 0) &&
              hak_shm_class_size(&v, 0) == 0 && hak_shm_proc(&v, 0) == 0,
          "accessors re-check a header changed after attach");
    hak_shm_detach(&v);
}

/* Random damage to the header and directories of attached files. */
static void test_fuzz(void) {
    char f[128];
    struct hak_shm_view v;
    uint64_t x = 88172645463325252ull;
    int attached = 0;
    snprintf(f, sizeof f, "%s/fuzz", dir);
    size_t span = H(good)->slot_off + 256; /* header, tables, first slot */
    for (int i = 0; i < 1500; i++) {
        fresh();
        for (int n = 1 + i % 8; n--;) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (x >> 8) % (i % 2 ? 512 : span);
            buf[at] ^= (unsigned char)(1u << (x % 8));
            if (x % 5 == 0) buf[at] = 0xff;
        }
        write_file(f, buf, glen, 0600);
        if (attach(f, 1, &v) != HAK_SHM_OK) continue;
        attached++;
        int n = hak_shm_nclasses(&v);
        uint64_t s = 0, sums[HAK_NUM_CLASSES + 1][HAK_NUM_CTRS];
        /* hak_shm_ctr_sum walks every row: all classes x counters x 1500
         * segments took 4 minutes, so the per-class walk takes the edges
         * and the middle, and hak_shm_ctr_sums every class in one pass */
        const int probe[] = {-1, 0, 1, n / 2, n - 1, n, n + 1};
        for (size_t j = 0; j < sizeof probe / sizeof *probe; j++)
            for (int k = -1; k <= HAK_NUM_CTRS; k++) s += hak_shm_ctr_sum(&v, probe[j], k);
        if (hak_shm_ctr_sums(&v, HAK_NUM_CLASSES, sums) == 0) s += sums[0][0];
        for (int c = -1; c <= n + 1; c++) {
            s += hak_shm_class_size(&v, c);
            for (int k = -1; k <= HAK_NUM_KNOBS; k++) {
                struct hak_shm_knob_val *kv = hak_shm_knob(&v, k, c);
                if (kv) s += (uint64_t)kv->value + kv->owner;
            }
        }
        for (int p = -1; p <= HAK_NUM_PROCS; p++) s += hak_shm_proc(&v, p);
        hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, -1, 5, HAK_OWNER_MANUAL, "fuzz");
        (void)hak_shm_is_stale(&v);
        (void)s;
        hak_shm_detach(&v);
    }
    printf("fuzz: 1500 damaged segments, %d still valid, no crash\n", attached);
    check(1, "fuzz");
}

static char fake_path[64];
static int found_pid;
static int list_cb(pid_t pid, const char *path, void *arg) {
    if (pid == *(pid_t *)arg && strstr(path, HAK_SHM_PREFIX)) found_pid = 1;
    return 0;
}

static unsigned long long my_start(void) {
    char b[1024];
    unsigned long long st = 0;
    FILE *fp = fopen("/proc/self/stat", "r");
    if (fp && fgets(b, sizeof b, fp)) {
        char *p = strrchr(b, ')');
        if (p)
            sscanf(
                p + 2,
                "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
                &st);
    }
    if (fp) fclose(fp);
    return st;
}

/* The link of a dead pid is fair game for every hakmem process's clean-up
 * (hak_shm_gc_dead) and for hakmemd: on a machine where others run, it may
 * go between our creating and our checking it. Then it is made again and
 * the checks run again (a few times): what is checked is what a reader
 * sees of a dead pid's link while it exists. */
static void test_stale_and_pids(pid_t fake) {
    struct hak_shm_view v;
    char f[128];
    bool stale = false, stale_path = false;
    struct stat st;
    for (int tries = 0; tries < 5; tries++) {
        if (lstat(fake_path, &st) != 0) {
            struct hak_shm_header *again =
                hak_shm_create(fake, 0, "t_shm_validate", "/t_shm_validate");
            if (!again) break;
            (void)again; /* mapped till exit, as the first */
        }
        stale = hak_shm_attach(fake, 0, &v, err, sizeof err) == HAK_SHM_ESTALE &&
                strstr(err, "is gone");
        stale_path = hak_shm_attach_path(fake_path, 0, &v, err, sizeof err) == HAK_SHM_ESTALE &&
                     strstr(err, "is gone");
        found_pid = 0;
        hak_shm_list(list_cb, &fake);
        if (lstat(fake_path, &st) == 0) break; /* still there: the answers stand */
        printf("note: %s was removed by another process's clean-up; again\n", fake_path);
    }
    check(stale, "a pid that cannot exist: its segment is stale");
    check(stale_path, "the link of a pid that cannot exist: stale (%s)", err);
    check(found_pid, "hak_shm_list finds the segment");
    /* a copy that claims to be ours: live with our start time, stale without */
    struct hak_shm_header *h = fresh();
    h->pid = getpid();
    h->start_time = my_start();
    snprintf(f, sizeof f, "%s/self", dir);
    write_file(f, buf, glen, 0600);
    check(attach(f, 0, &v) == 0 && !hak_shm_is_stale(&v), "our own pid and start time: live");
    hak_shm_detach(&v);
    h->start_time += 12345;
    write_file(f, buf, glen, 0600);
    check(attach(f, 0, &v) == 0 && hak_shm_is_stale(&v), "start time differs: pid reused, stale");
    hak_shm_detach(&v);
    check(hak_shm_attach(0x7ffffff0, 0, &v, err, sizeof err) == HAK_SHM_ENOENT &&
              strstr(err, "no such process"),
          "no such process");
    /* pid 1 (init) does not use hakmem; a container's pid 1 sharing our
     * /dev/shm may have published hakmem.1, which must not pass for it */
    int r1 = hak_shm_attach(1, 0, &v, err, sizeof err);
    if (lstat("/dev/shm/" HAK_SHM_PREFIX "1", &st) == 0)
        check(r1 != 0 && strstr(err, "another pid namespace"),
              "pid 1: another namespace's hakmem.1 is refused (%s)", err);
    else
        check(r1 == HAK_SHM_ENOENT && strstr(err, "does not use hakmem"),
              "pid 1 does not use hakmem");
    check(hak_shm_attach(-5, 0, &v, err, sizeof err) == HAK_SHM_ENOENT, "negative pid");
}

int main(void) {
    pid_t fake = 5000000 + getpid() % 1000000; /* above PID_MAX_LIMIT (4194304) */
    struct hak_shm_header *h = hak_shm_create(fake, 0, "t_shm_validate", "/t_shm_validate");
    snprintf(fake_path, sizeof fake_path, "/dev/shm/" HAK_SHM_PREFIX "%d", (int)fake);
    if (!h) {
        printf("SKIP: cannot create a segment in /dev/shm: %s\n", strerror(errno));
        return 77;
    }
    glen = h->total_size;
    good = aligned_alloc(4096, glen);
    buf = aligned_alloc(4096, glen);
    snprintf(dir, sizeof dir, "/tmp/t_shm_validate.XXXXXX");
    if (!good || !buf || !mkdtemp(dir)) return 2;
    memcpy(good, h, glen);
    fresh();

    test_validate();
    test_files();
    test_older();
    test_knob_set();
    test_fuzz();
    test_stale_and_pids(fake);

    hak_shm_unlink(fake);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
