/* t_fork_raw_counters — a child made by the raw fork system call (no atfork
 * handler runs) must not count into its parent's segment: from its first
 * slow path on it counts in memory of its own (lib/hak_fork.c,
 * hak_fork_settle), and in its own segment once that is published.
 *
 * The parent publishes its segment, reads the counters of three classes it
 * never uses, raw-forks and waits. The child takes a slow path first (a
 * block above every class), then allocates and frees blocks of those three
 * classes through refills and flushes, then publishes its own segment and
 * checks its churn is counted there. The parent's figures for those classes
 * must not have moved. Before the fix the child's counts (its thread cache's
 * counter pointers and its heap's slot still pointed into the parent's
 * shared segment) showed up in the parent's.
 * Each child has an alarm of its own; the parent kills it past a deadline.
 * hakmem only (skips without it). */
#include "shm_self.h"
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_DEADLINE_S 20
#define ROUNDS 2000
#define BATCH 64

static const size_t sizes[] = {700, 1500, 2600}; /* classes the parent never touches */
enum { NSIZES = sizeof sizes / sizeof sizes[0] };
static int cls[NSIZES];

/* Smallest class of the view that holds n bytes. */
static int class_of(const struct hak_shm_view *v, size_t n) {
    int best = -1;
    for (int c = 0; c < hak_shm_nclasses(v); c++) {
        uint32_t s = hak_shm_class_size(v, c);
        if (s >= n && (best < 0 || s < hak_shm_class_size(v, best))) best = c;
    }
    return best;
}

static uint64_t churn_figure(const struct hak_shm_view *v) {
    static const int ids[] = {HAK_CTR_ALLOCS, HAK_CTR_FREES, HAK_CTR_REFILLS, HAK_CTR_FLUSHES};
    uint64_t sum = 0;
    for (int i = 0; i < NSIZES; i++)
        for (int k = 0; k < 4; k++) sum += hak_shm_ctr_sum(v, cls[i], ids[k]);
    return sum;
}

static void churn(void) {
    static void *volatile p[BATCH];
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < NSIZES; i++) {
            for (int k = 0; k < BATCH; k++)
                if (!(p[k] = malloc(sizes[i]))) _exit(3);
            for (int k = 0; k < BATCH; k++) free(p[k]);
        }
}

/* The raw fork child: 0, or 3 malloc failed, 4 no segment of its own,
 * 5 its churn is not counted in its own segment. */
static void child(void) {
    alarm(CHILD_DEADLINE_S); /* its own guard: alarms are not inherited */
    static void *volatile big;
    big = malloc(4 << 20); /* the first call: a slow path, which settles */
    free(big);
    churn();
    struct hak_shm_view v;
    char err[200] = "";
    int attached = -1;
    for (int i = 0; i < 500 && attached != 0; i++) {
        big = malloc(2 << 20); /* slow paths: the child publishes its own segment */
        free(big);
        attached = hak_shm_attach(getpid(), 0, &v, err, sizeof err);
        if (attached != 0) usleep(10000);
    }
    if (attached != 0) _exit(4);
    uint64_t own = churn_figure(&v);
    hak_shm_detach(&v);
    _exit(own >= (uint64_t)ROUNDS * BATCH * NSIZES * 2 ? 0 : 5);
}

int main(int argc, char **argv) {
    (void)argc;
    /* one thread: the raw fork child's only (knobs read at start) */
    tu_reexec_with(argv, (const char *const[]){"HAKMEM_BACKGROUND", "0", NULL});
    tu_init("t_fork_raw_counters");
    if (!hakmem_loaded()) {
        printf("t_fork_raw_counters: hakmem only (counters live in its segment)\n");
        return TU_SKIP;
    }
    struct hak_shm_view v;
    if (tu_attach_self(&v) != 0) return tu_done();
    for (int i = 0; i < NSIZES; i++) {
        cls[i] = class_of(&v, sizes[i]);
        REQUIRE(cls[i] >= 0);
    }
    uint64_t before = churn_figure(&v);
    /* nothing allocates from here to the second read: the figures are the
     * parent's own, which does nothing meanwhile */
    pid_t pid = (pid_t)syscall(SYS_fork);
    if (pid == 0) child();
    REQUIRE(pid > 0);
    int st = tu_wait_child(pid, CHILD_DEADLINE_S);
    uint64_t after = churn_figure(&v);
    hak_shm_detach(&v);
    printf("parent's figure for classes %d %d %d: %llu before the raw fork child, %llu after; "
           "child status %#x\n",
           cls[0], cls[1], cls[2], (unsigned long long)before, (unsigned long long)after, st);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "raw fork child status %#x (exit 3: malloc failed, 4: no segment of its own, "
           "5: its churn not counted there; killed: hung)",
           st);
    CHECKF(after == before, "the raw fork child counted %llu into its parent's segment",
           (unsigned long long)(after - before));
    return tu_done();
}
