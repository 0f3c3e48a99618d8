/* daemon_phases — a workload for tests/t_daemon_phases.sh (not a t_* test
 * itself): one thread alternates two phases, each SEC seconds, CYCLES times:
 *   A: batches of BATCH 64-byte blocks (class 3, "tiny"),
 *   B: batches of BATCH 2048-byte blocks (class 23, "mid"),
 * both deep enough that the thread cache misses with the default knobs.
 * Prints "pid N" once running and "phase X" at each change.
 * Usage: daemon_phases [SEC] [CYCLES] [BATCH] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double sec = argc > 1 ? atof(argv[1]) : 4;
    int cycles = argc > 2 ? atoi(argv[2]) : 2, batch = argc > 3 ? atoi(argv[3]) : 20000;
    void **p = calloc((size_t)batch, sizeof *p);
    if (!p || sec <= 0 || cycles < 1) return 2;
    printf("pid %d\n", (int)getpid());
    for (int c = 0; c < 2 * cycles; c++) {
        size_t size = c % 2 ? 2048 : 64;
        printf("phase %c\n", c % 2 ? 'B' : 'A');
        fflush(stdout);
        for (double end = now() + sec; now() < end;) {
            for (int i = 0; i < batch; i++)
                if ((p[i] = malloc(size))) memset(p[i], i, 16);
            for (int i = 0; i < batch; i++) free(p[i]);
        }
    }
    free(p);
    return 0;
}
