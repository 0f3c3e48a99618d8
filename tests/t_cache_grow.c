/* t_cache_grow — a thread cache that is churned through (malloc N blocks of
 * one size, free them in the same order, repeat; N above the default cap)
 * grows its cap (hak_tbin_grow), so after a few rounds its blocks stop
 * going back to their spans: the class's flush counter stops rising while
 * its allocations go on. Class 0 (16 B, cap 256) grows to 2048. No cache
 * grows past about 256 KiB of blocks: the 32 KiB class (cap 8, 256 KiB)
 * keeps its cap and goes on flushing, as a cache is the one place no purge
 * reaches while its thread sleeps (hak_class.c). A cap set by the
 * environment (HAKMEM_TINY_FAST_CAP) stays as set, and the flushes go on.
 * The counters are read from the process's own segment through the shm
 * library, as hakctl reads them. The last case is this binary re-executed
 * with the knob set. */
#include "hakmem_shm.h"
#include "shm_self.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NMAX 1600 /* blocks per round: above class 0's default cap (256) */
#define ROUNDS 50

/* a churned class: its size, blocks per round, index */
struct churn_case {
    const char *name;
    size_t size;
    int n, cls;
};
static const struct churn_case tiny = {"16 B", 16, 1600, 0}; /* cap 256, grows to 2048 */
static const struct churn_case mid = {"32 KiB", 32768, 24,
                                      HAK_CLS_32768}; /* cap 8: 256 KiB already */

static void *volatile blocks[NMAX]; /* volatile: no malloc/free pair folded away */
static void *volatile sink;

static void churn(const struct churn_case *c, int rounds) {
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < c->n; i++) {
            blocks[i] = malloc(c->size);
            memset(blocks[i], i & 0xff, c->size);
        }
        for (int i = 0; i < c->n; i++) {
            CHECK(((unsigned char *)blocks[i])[c->size - 1] == (i & 0xff));
            free(blocks[i]);
        }
    }
}

/* Returns 0 if the class stopped flushing (grown), 1 if it still flushes. */
static int run_case(const struct churn_case *c, const char *name) {
    struct hak_shm_view v;
    if (tu_attach_self(&v) != 0) return -1;
    churn(c, ROUNDS); /* the cap grows in the first rounds, if it does */
    uint64_t a0 = hak_shm_ctr_sum(&v, c->cls, HAK_CTR_ALLOCS);
    uint64_t f0 = hak_shm_ctr_sum(&v, c->cls, HAK_CTR_FLUSHES);
    churn(c, ROUNDS);
    uint64_t a1 = hak_shm_ctr_sum(&v, c->cls, HAK_CTR_ALLOCS);
    uint64_t f1 = hak_shm_ctr_sum(&v, c->cls, HAK_CTR_FLUSHES);
    hak_shm_detach(&v);
    printf("%s, %s: class %d allocs %llu -> %llu, flushes %llu -> %llu\n", c->name, name, c->cls,
           (unsigned long long)a0, (unsigned long long)a1, (unsigned long long)f0,
           (unsigned long long)f1);
    CHECKF(a1 - a0 >= (uint64_t)ROUNDS * c->n, "allocations not counted: %llu",
           (unsigned long long)(a1 - a0));
    return f1 != f0;
}

int main(int argc, char **argv) {
    tu_init("t_cache_grow");
    if (!hakmem_loaded()) return TU_SKIP;
    if (argc > 1 && strcmp(argv[1], "fixed") == 0) {
        int flushing = run_case(&tiny, "fast_cap=256 (environment)");
        return tu_failures ? 2 : flushing; /* 1: still flushing, as it should */
    }

    CHECKF(run_case(&tiny, "default cap") == 0,
           "class 0 still flushes: its default cap did not grow");
    CHECKF(run_case(&mid, "default cap") == 1,
           "the 32 KiB class stopped flushing: its cache grew past 256 KiB, which stays "
           "resident while its thread sleeps");

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HAKMEM_TINY_FAST_CAP", "256", 1);
        execl("/proc/self/exe", argv[0], "fixed", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1,
           "with fast_cap set by the environment class 0 should go on flushing (status %d)", st);
    return tu_done();
}
