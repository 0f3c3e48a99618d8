/* publish_us — what a process pays to publish its segment: it sleeps past
 * the publishing delay (60 ms > 50), then times its first malloc of an
 * unused class: a slow path, which publishes (segment, knobs, and the clean-up
 * of dead processes' segments in /dev/shm, hak_shm_gc_dead). Run it under
 * LD_PRELOAD=libhakmem.so (bench/publish_cost.sh).
 *   publish_us          prints "publish_us=X cpu_us=Y published=0|1"
 *   publish_us hold     publishes, then waits until killed (a live segment)
 * X is wall-clock, Y this thread's CPU time (the scan's syscalls run on it;
 * it does not count waiting for a CPU on a loaded machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double us(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    struct timespec nap = {0, 60 * 1000 * 1000};
    char path[64];
    struct stat st;
    nanosleep(&nap, NULL);
    double w0 = us(CLOCK_MONOTONIC), c0 = us(CLOCK_THREAD_CPUTIME_ID);
    char *p = malloc(3000); /* a class nothing used yet: a slow path */
    double c1 = us(CLOCK_THREAD_CPUTIME_ID), w1 = us(CLOCK_MONOTONIC);
    if (p) ((volatile char *)p)[0] = 1; /* kept: the compiler may not drop the pair */
    free(p);
    snprintf(path, sizeof path, "/dev/shm/hakmem.%d", (int)getpid());
    int published = lstat(path, &st) == 0;
    if (argc > 1 && strcmp(argv[1], "hold") == 0) {
        printf("published=%d\n", published);
        fflush(stdout);
        pause();
        return 0;
    }
    printf("publish_us=%.1f cpu_us=%.1f published=%d\n", w1 - w0, c1 - c0, published);
    return 0;
}
