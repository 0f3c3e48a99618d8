/* t_shm_live — the live segment seen from another process, through the shm/
 * library only (what hakctl and hakmemd use):
 *   1. a multi-threaded workload under LD_PRELOAD holds a known number of
 *      blocks of one class; at that quiescent point allocs - frees of the
 *      class in its segment equals exactly what it holds;
 *   2. refill_count written from outside is obeyed: after the change, the
 *      blocks moved per refill (two samples of the counters) equal the knob;
 *   3. garbage written over the whole knob area and the control words does
 *      not harm the workload (it keeps verifying its blocks, exits 0);
 *   4. a forked child publishes its own, fresh segment; segments are gone
 *      after exit.
 * A process publishes once it has lived a while, at a slow path: the driver
 * makes the workload allocate until its segment is there (the threads that
 * hold blocks are blocked meanwhile: their counts must still be exact).
 * The workload is this same binary re-executed with "workload" (it inherits
 * LD_PRELOAD from tests/run); commands go over a pipe, one letter each. */
#include "hakmem_shm.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOLD_CLS HAK_CLS_20480 /* 20480-byte class: nothing else in the process uses it */
#define HOLD_SIZE 20000
#define HOLD_PER_THREAD 1000
#define BURST_CLS 19 /* 1024-byte class: 64 blocks per span */
#define BURST_SIZE 1000
#define THREADS 3

/* ------------------------------------------------------------ workload */
static void *held[THREADS][HOLD_PER_THREAD];
static pthread_barrier_t bar;

static void *hold_thread(void *arg) {
    void **mine = arg;
    for (int i = 0; i < HOLD_PER_THREAD; i++) {
        mine[i] = malloc(HOLD_SIZE);
        memset(mine[i], 0x5a, HOLD_SIZE);
    }
    pthread_barrier_wait(&bar); /* main reports "ready" */
    pthread_barrier_wait(&bar); /* main got "release" */
    for (int i = 0; i < HOLD_PER_THREAD; i++) free(mine[i]);
    return NULL;
}

/* blocks above every class: each is a slow path (a process publishes its
 * segment at a slow path), whatever the knobs (garbage in step 3) say */
static void *volatile sink; /* built without -fno-builtin: keep the pair */
static void slow_paths(void) {
    for (int i = 0; i < 16; i++) {
        sink = malloc(2 << 20);
        free(sink);
    }
}

/* alloc/free bursts of the burst class, checking every block's pattern */
static int bursts(int rounds) {
    enum { N = 2000 };
    static unsigned char *b[N];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            b[i] = malloc(BURST_SIZE);
            if (!b[i]) return 1;
            memset(b[i], (i + r) & 0xff, BURST_SIZE);
        }
        for (int i = 0; i < N; i++) {
            if (b[i][0] != ((i + r) & 0xff) || b[i][BURST_SIZE - 1] != ((i + r) & 0xff)) return 1;
            free(b[i]);
        }
    }
    return 0;
}

static int workload(void) {
    pthread_t t[THREADS];
    pthread_barrier_init(&bar, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hold_thread, held[i]);
    pthread_barrier_wait(&bar);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("R\n");
    int c, bad = 0;
    while ((c = getchar()) != EOF) {
        switch (c) {
        case 'b':
            bad |= bursts(20);
            printf("B\n");
            break;
        case 's':
            slow_paths();
            printf("S\n");
            break;
        case 'r':
            pthread_barrier_wait(&bar);
            for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
            printf("F\n");
            break;
        case 'f': {
            pid_t k = fork();
            if (k == 0) {
                char me[64];
                struct stat st;
                snprintf(me, sizeof me, "/dev/shm/hakmem.%d", (int)getpid());
                bad |= bursts(1);
                for (int i = 0; i < 500 && lstat(me, &st) != 0; i++) { /* 5 s deadline */
                    usleep(10000);
                    slow_paths();
                }
                printf("C %d\n", (int)getpid());
                sleep(1);
                exit(bad);
            }
            int st;
            waitpid(k, &st, 0);
            printf("K %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 99);
            break;
        }
        case 'q':
            return bad;
        }
    }
    return bad;
}

/* -------------------------------------------------------------- driver */
static FILE *to_w, *from_w;

static void cmd(char c, char expect, char *line, size_t len) {
    fputc(c, to_w);
    fflush(to_w);
    do {
        if (!fgets(line, (int)len, from_w)) {
            line[0] = 0;
            return;
        }
    } while (line[0] != expect && !(expect == 'C' && line[0] == 'K'));
}

static int64_t ctr(struct hak_shm_view *v, int cls, int c) {
    return (int64_t)hak_shm_ctr_sum(v, cls, c);
}

static double per_refill(struct hak_shm_view *v, char *line, size_t len) {
    int64_t r0 = ctr(v, BURST_CLS, HAK_CTR_REFILLS), b0 = ctr(v, BURST_CLS, HAK_CTR_REFILL_BLOCKS);
    cmd('b', 'B', line, len);
    int64_t r1 = ctr(v, BURST_CLS, HAK_CTR_REFILLS), b1 = ctr(v, BURST_CLS, HAK_CTR_REFILL_BLOCKS);
    return r1 > r0 ? (double)(b1 - b0) / (double)(r1 - r0) : -1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "workload") == 0) return workload();
    tu_init("t_shm_live");
    if (!getenv("LD_PRELOAD") || !strstr(getenv("LD_PRELOAD"), "libhakmem")) {
        printf("SKIP: needs LD_PRELOAD=lib/libhakmem.so (run through tests/run)\n");
        return 77;
    }
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0);
    pid_t w = fork();
    if (w == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl("/proc/self/exe", argv[0], "workload", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_w = fdopen(in[1], "w");
    from_w = fdopen(out[0], "r");
    char line[128], err[200];
    CHECK(fgets(line, sizeof line, from_w) && line[0] == 'R');

    struct hak_shm_view v;
    int rc = -1;
    for (int i = 0; i < 500 && rc != 0; i++) { /* the workload publishes after ~50 ms */
        usleep(10000);
        cmd('s', 'S', line, sizeof line);
        rc = hak_shm_attach(w, 1, &v, err, sizeof err);
    }
    CHECKF(rc == 0, "attach: %s", err);
    if (rc != 0) return tu_done();
    CHECK(v.hdr->pid == w);

    /* 1. exact live count at a quiescent point */
    int64_t live = ctr(&v, HOLD_CLS, HAK_CTR_ALLOCS) - ctr(&v, HOLD_CLS, HAK_CTR_FREES);
    CHECKF(live == THREADS * HOLD_PER_THREAD, "live blocks %lld, held %d", (long long)live,
           THREADS * HOLD_PER_THREAD);
    CHECK(hak_shm_proc(&v, HAK_PROC_THREADS) >= THREADS + 1);
    cmd('r', 'F', line, sizeof line);
    live = ctr(&v, HOLD_CLS, HAK_CTR_ALLOCS) - ctr(&v, HOLD_CLS, HAK_CTR_FREES);
    CHECKF(live == 0, "live blocks after release %lld", (long long)live);

    /* 2. refill_count set from outside is obeyed */
    CHECK(hak_shm_knob_set(&v, HAK_KNOB_FAST_CAP, BURST_CLS, 256, HAK_OWNER_MANUAL, "t_shm_live") ==
          0);
    int knob_values[] = {5, 11};
    for (int k = 0; k < 2; k++) {
        CHECK(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, BURST_CLS, knob_values[k],
                               HAK_OWNER_MANUAL, "t_shm_live") == 0);
        per_refill(&v, line, sizeof line); /* the first burst after the change applies it */
        double avg = per_refill(&v, line, sizeof line);
        printf("refill_count=%d: %.2f blocks per refill\n", knob_values[k], avg);
        CHECKF(avg > knob_values[k] * 0.9 && avg <= knob_values[k], "avg %.2f for knob %d", avg,
               knob_values[k]);
    }
    CHECK(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, BURST_CLS, 100000, HAK_OWNER_MANUAL, "x") ==
          -ERANGE);
    /* the daemon's write never overrides a person's pin (checked under the
     * writers' lock): skipped, said so, value and owner kept */
    {
        const struct hak_shm_knob_val *pin = hak_shm_knob(&v, HAK_KNOB_REFILL_COUNT, BURST_CLS);
        uint64_t gen = v.hdr->knob_gen;
        CHECK(pin != NULL);
        CHECK(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, BURST_CLS, 7, HAK_OWNER_DAEMON, "d") ==
              HAK_SHM_PINNED);
        CHECK(pin && pin->value == 11 && pin->owner == HAK_OWNER_MANUAL);
        CHECK(v.hdr->knob_gen == gen);
        /* a default-owned class next to it is the daemon's to set */
        CHECK(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, BURST_CLS + 1, 7, HAK_OWNER_DAEMON,
                               "d") == HAK_SHM_OK);
        CHECK(hak_shm_knob_set(&v, HAK_KNOB_REFILL_COUNT, BURST_CLS + 1, 64, HAK_OWNER_DEFAULT,
                               "reset") == HAK_SHM_OK);
    }

    /* 3. garbage over the knob values and the control words */
    srand(42);
    for (int round = 0; round < 5; round++) {
        unsigned char *kv = (unsigned char *)v.hdr + v.hdr->knob_val_off;
        size_t n = (size_t)v.hdr->n_knob_vals * v.hdr->knob_val_size;
        for (size_t i = 0; i < n; i++) kv[i] = (unsigned char)rand();
        v.hdr->trim_req = (uint64_t)rand();
        __atomic_add_fetch(&v.hdr->knob_gen, 1 + (uint64_t)rand(), __ATOMIC_RELEASE);
        cmd('b', 'B', line, sizeof line);
        CHECKF(line[0] == 'B', "workload died after garbage round %d", round);
    }
    CHECK(kill(w, 0) == 0);

    /* 4. a forked child gets its own fresh segment; gone after its exit */
    cmd('f', 'C', line, sizeof line);
    int child = 0;
    CHECK(sscanf(line, "C %d", &child) == 1);
    if (child > 0) {
        struct hak_shm_view cv;
        rc = hak_shm_attach(child, 0, &cv, err, sizeof err);
        CHECKF(rc == 0, "attach child: %s", err);
        if (rc == 0) {
            CHECK(cv.hdr->pid == child && cv.hdr != v.hdr);
            CHECKF(hak_shm_ctr_sum(&cv, HOLD_CLS, HAK_CTR_ALLOCS) == 0, "child counters not fresh");
            CHECK(hak_shm_ctr_sum(&cv, BURST_CLS, HAK_CTR_ALLOCS) >= 2000);
            hak_shm_detach(&cv);
        }
        CHECK(fgets(line, sizeof line, from_w) && strcmp(line, "K 0\n") == 0);
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/dev/shm/hakmem.%d", child);
        CHECKF(lstat(path, &st) != 0, "%s left behind", path);
    }
    cmd('q', 'x', line, sizeof line);
    int st;
    waitpid(w, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "workload status %d", st);
    hak_shm_detach(&v);
    char path[64];
    struct stat sb;
    snprintf(path, sizeof path, "/dev/shm/hakmem.%d", (int)w);
    CHECKF(lstat(path, &sb) != 0, "%s left behind after exit", path);
    return tu_done();
}
