/* startup — the cost of starting a small program with the allocator loaded.
 *
 *   startup RUNS COMMAND [ARGS...]
 *   e.g. startup 200 sh -c true
 *
 * Runs COMMAND RUNS times one after another (posix_spawnp, environment
 * inherited: LD_PRELOAD reaches every child) and times each from spawn to
 * exit. Shells and build tools start thousands of short processes, and
 * every one of them pays the allocator's start-up (library load, its own
 * initialisation, first mappings).
 * Result: median_us, p90_us and min_us of one run; ops_per_sec = runs/s. */
#include "bench_util.h"

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) die("usage: startup RUNS COMMAND [ARGS...]");
    long runs = arg_long(argc, argv, 1, 200, 1, 1000000);
    double *us = xmalloc(sizeof(double) * (size_t)runs);
    long failed = 0;
    double t0 = now_sec();
    for (long i = 0; i < runs; i++) {
        pid_t pid;
        int st;
        double s = now_sec();
        if (posix_spawnp(&pid, argv[2], NULL, NULL, &argv[2], environ)) die("posix_spawnp");
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) die("waitpid");
        us[i] = (now_sec() - s) * 1e6;
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    double elapsed = now_sec() - t0;
    qsort(us, (size_t)runs, sizeof(double), cmp_double);
    printf("RESULT name=startup runs=%ld failed=%ld min_us=%.1f median_us=%.1f p90_us=%.1f "
           "elapsed=%.4f ops_per_sec=%.1f\n",
           runs, failed, us[0], us[runs / 2], us[runs * 9 / 10], elapsed, runs / elapsed);
    free(us);
    return failed ? 1 : 0;
}
