/* t_idle_drain — memory that other threads freed into the heap of a thread
 * that sleeps goes back to the OS with no call from that thread (issue 10,
 * larson's main thread: lib/hak_purger.c, hak_heaps_drain_idle).
 *
 * The main thread writes 16 MiB of small blocks (48-256 B) and hands them
 * to a worker, which frees them all (remote frees: only the main thread's
 * heap could take them back), starts the background purger (large blocks
 * freed) and exits. The main thread then only sleeps and polls VmRSS from
 * /proc/self/statm (no malloc): within 2 s at least 12 of the 16 MiB must be
 * gone. Then it allocates and frees the same again, every block checked
 * (the heap the purger trimmed is whole). The same run in a child with
 * HAKMEM_BACKGROUND=0 must NOT return them (nothing else drains a sleeping
 * thread's heap): the check measures the purger and can fail. */
#include "testutil.h"

#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { TOTAL = 16 << 20, MAXN = TOTAL / 48 };
static char *blk[MAXN];
static int nblk;

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static size_t size_of(int i) {
    return 48 + (size_t)(i % 4) * 64; /* 48, 112, 176, 240 */
}

static void fill(void) {
    size_t got = 0;
    for (nblk = 0; got < TOTAL && nblk < MAXN; nblk++) {
        size_t n = size_of(nblk);
        blk[nblk] = malloc(n);
        REQUIRE(blk[nblk] != NULL);
        memset(blk[nblk], (int)(nblk & 0x7f) | 1, n);
        got += n;
    }
}

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < nblk; i++) {
        size_t n = size_of(i);
        CHECK(blk[i][0] == (char)((i & 0x7f) | 1) && blk[i][n - 1] == blk[i][0]);
        free(blk[i]);
        blk[i] = NULL;
    }
    for (int i = 0; i < 256; i++) { /* slow paths, memory given back: the purger starts */
        char *p = malloc(8 << 20);
        REQUIRE(p != NULL);
        p[0] = 1;
        free(p);
    }
    return NULL;
}

/* MiB given back within 2 s of sleeping, after the worker freed the blocks */
static long idle_drain(void) {
    fill();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, worker, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    long full = tu_rss_kib(), now = full;
    for (int k = 0; k < 40 && full - now < (12 << 10); k++) {
        nap_ms(50);
        now = tu_rss_kib();
    }
    /* awake again: the same blocks once more, from the trimmed heap */
    fill();
    for (int i = 0; i < nblk; i++) {
        size_t n = size_of(i);
        CHECK(blk[i][0] == (char)((i & 0x7f) | 1) && blk[i][n - 1] == blk[i][0]);
        free(blk[i]);
    }
    return (full - now) >> 10;
}

int main(int argc, char **argv) {
    tu_init("t_idle_drain");
    if (argc > 1) { /* the child: background purger off */
        long back = idle_drain();
        printf("background=0: %ld MiB back\n", back);
        return back >= 12 ? 1 : 0;
    }
    if (!hakmem_loaded()) {
        printf("not under hakmem: the purger is hakmem's\n");
        return TU_SKIP;
    }
    long back = idle_drain();
    printf("%ld MiB of 16 went back while the owner slept\n", back);
    CHECKF(back >= 12, "only %ld MiB of 16 went back within 2 s", back);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_BACKGROUND", "0", 1);
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "with HAKMEM_BACKGROUND=0 the memory went back too (status %d): the check "
           "does not measure the purger",
           st);
    return tu_done();
}
