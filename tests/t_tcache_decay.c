/* t_tcache_decay — a thread cache gives back what the thread stopped using
 * (lib/hak_tcache.c), within a bounded number of slow paths.
 *
 * Phase A churns 1600 blocks of 128 B (class 7): its cap grows and its
 * cache ends up holding them all, in four spans. Phase C bursts 1600 blocks
 * of 64 B (class 3; a few hundred stay cached) and then keeps using 8 of
 * them at a time: the thread only ever takes the top of that cache. Phase B
 * churns 1600 blocks of 256 B (class 11, cap 1024: refills and overflows
 * every round), a round at a time, the 8 blocks of C interleaved. Checked:
 *   - class 7 ends with no block outside the program's own (span_blocks -
 *     live < one span: its cache went back, and its emptied spans, the last
 *     one too) within 160 slow paths (refills + frees that found the cache
 *     full) of B and C; a round of B takes ~30;
 *   - class 3's cache decays to a quarter (+8) of what the burst left: the
 *     low water of a bin the thread never overflows.
 * The counters are read from the process's own segment, as hakctl reads
 * them. With HAKMEM_TCACHE_GC=0 (this binary re-executed) nothing goes
 * back in 100 rounds: it is the decay that gives them back. */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 1600
#define CLS_A 7    /* 128 B */
#define CLS_B 11   /* 256 B */
#define CLS_C 3    /* 64 B */
#define SPAN_A 512 /* blocks of 128 B in a 64 KiB span */
#define MAX_SLOW 160
#define MAX_ROUNDS 100

static void *volatile blocks[N]; /* volatile: no malloc/free pair folded away */
static void *volatile keep[8];

static void churn(size_t size, int n, int rounds) {
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            blocks[i] = malloc(size);
            memset(blocks[i], i & 0xff, size);
        }
        for (int i = 0; i < n; i++) {
            CHECK(((unsigned char *)blocks[i])[size - 1] == (i & 0xff));
            free(blocks[i]);
        }
    }
}

static uint64_t ctr(struct hak_shm_view *v, int cls, int id) {
    return hak_shm_ctr_sum(v, cls, id);
}

/* class cls's blocks in spans that the program does not hold */
static int64_t held(struct hak_shm_view *v, int cls) {
    int64_t live = (int64_t)(ctr(v, cls, HAK_CTR_ALLOCS) - ctr(v, cls, HAK_CTR_FREES));
    return (int64_t)ctr(v, cls, HAK_CTR_SPAN_BLOCKS) - live;
}

/* class cls's blocks in the thread cache (no remote frees here) */
static int64_t cached(struct hak_shm_view *v, int cls) {
    int64_t live = (int64_t)(ctr(v, cls, HAK_CTR_ALLOCS) - ctr(v, cls, HAK_CTR_FREES));
    return (int64_t)(ctr(v, cls, HAK_CTR_REFILL_BLOCKS) - ctr(v, cls, HAK_CTR_FLUSH_BLOCKS)) - live;
}

/* slow paths of the classes the thread moved on to */
static uint64_t slow_paths(struct hak_shm_view *v) {
    return ctr(v, CLS_B, HAK_CTR_REFILLS) + ctr(v, CLS_B, HAK_CTR_FREE_SLOW) +
           ctr(v, CLS_C, HAK_CTR_REFILLS) + ctr(v, CLS_C, HAK_CTR_FREE_SLOW);
}

/* Returns the slow paths of B and C it took for class A to go, or -1
 * (never); *c_left: what C's cache kept of its burst. */
static int run(int64_t *c_left) {
    struct hak_shm_view v;
    if (tu_attach_self(&v) != 0) return -2;
    churn(128, N, 20); /* the cap grows; the cache keeps all 1600 */
    int64_t a0 = held(&v, CLS_A);
    uint64_t s0 = slow_paths(&v);
    churn(64, N, 1); /* a burst of C, kept cached */
    int64_t c0 = cached(&v, CLS_C);
    printf("after its phase class %d holds %lld blocks; class %d's burst left %lld cached\n", CLS_A,
           (long long)a0, CLS_C, (long long)c0);
    CHECKF(a0 >= N, "class %d's cache should hold the phase's %d blocks: %lld", CLS_A, N,
           (long long)a0);
    CHECKF(c0 >= 256, "class %d's burst should leave blocks cached: %lld", CLS_C, (long long)c0);
    int slow = -1;
    for (int r = 0; r < MAX_ROUNDS && (slow < 0 || cached(&v, CLS_C) > c0 / 4 + 8); r++) {
        for (int i = 0; i < 8; i++) keep[i] = malloc(64);
        churn(256, N, 1);
        for (int i = 0; i < 8; i++) free(keep[i]);
        if (slow < 0 && held(&v, CLS_A) < SPAN_A) slow = (int)(slow_paths(&v) - s0);
    }
    *c_left = cached(&v, CLS_C);
    printf("class %d: %s after %d slow paths of the others; class %d keeps %lld of %lld\n", CLS_A,
           slow >= 0 ? "given back" : "still held", slow, CLS_C, (long long)*c_left, (long long)c0);
    hak_shm_detach(&v);
    *c_left = *c_left * 4 <= c0 + 32 ? 0 : *c_left; /* 0: decayed to a quarter (+8) */
    return slow;
}

int main(int argc, char **argv) {
    tu_init("t_tcache_decay");
    if (!hakmem_loaded()) return TU_SKIP;
    int64_t c_left = 0;
    if (argc > 1 && strcmp(argv[1], "off") == 0) {
        int slow = run(&c_left);
        /* 1: nothing went back, as it should */
        return tu_failures ? 2 : slow == -1 && c_left ? 1 : 0;
    }
    int slow = run(&c_left);
    CHECKF(slow >= 0 && slow <= MAX_SLOW,
           "class %d's cache should go back within %d slow paths of the next classes (took %d)",
           CLS_A, MAX_SLOW, slow);
    CHECKF(c_left == 0, "class %d's unused cached blocks should decay to a quarter (%lld left)",
           CLS_C, (long long)c_left);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_TCACHE_GC", "0", 1);
        execl("/proc/self/exe", argv[0], "off", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1,
           "with HAKMEM_TCACHE_GC=0 the caches should keep their blocks (status %d)", st);
    return tu_done();
}
