/* hakctl_workload — a program for the hakctl tests to observe (not a t_*
 * test itself): threads that allocate a batch of blocks, touch them and free
 * them, in a loop, for a while. Run it under LD_PRELOAD=libhakmem.so.
 *
 *   hakctl_workload [-t THREADS] [-s SECONDS] [-z SIZE] [-n BATCH] [-L] [-i IDLE] [-c HOT] [-e SEC]
 *     -z SIZE   every block SIZE bytes (default: mixed 16..2048 and a few large)
 *     -n BATCH  blocks held at once per thread (default 1000): a big batch
 *               of one size drains the thread cache, so refills run in full
 *     -L        also keep 4 large blocks (4 MiB, above every class) alive
 *     -i IDLE   after the work, stay idle (no allocation) for IDLE seconds
 *     -c HOT    after the work (and IDLE), HOT seconds of malloc/free of one
 *               48-byte block in a loop: busy, yet every call a thread-cache
 *               hit, so no slow path (prints "hot" when it starts)
 *     -e SEC    at the end, exec `sleep SEC` without hakmem (LD_PRELOAD
 *               removed): the pid lives on, its segment is left behind
 * Prints "pid N" on stdout once running, then works until SECONDS pass (or
 * forever with -s 0) or it is killed. Built with -fno-builtin so the compiler
 * cannot fold a malloc/free pair away. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t fixed_size;
static int batch = 1000;
static volatile int stop;

static void *work(void *arg) {
    uint64_t x = (uintptr_t)arg * 2654435761u + 1;
    void **p = calloc((size_t)batch, sizeof *p);
    if (!p) return NULL;
    while (!stop) {
        for (int i = 0; i < batch; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t sz = fixed_size ? fixed_size : (x % 97 == 0 ? 256 << 10 : 16 + x % 2033);
            p[i] = malloc(sz);
            if (p[i]) memset(p[i], (int)i, sz < 64 ? sz : 64);
        }
        for (int i = 0; i < batch; i++) free(p[i]);
    }
    free(p);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = 2, c, large = 0;
    double secs = 10, idle = 0, hot = 0;
    const char *exec_sleep = NULL;
    void *keep[4] = {0};
    while ((c = getopt(argc, argv, "t:s:z:n:Li:c:e:")) != -1) {
        if (c == 't')
            threads = atoi(optarg);
        else if (c == 's')
            secs = atof(optarg);
        else if (c == 'z')
            fixed_size = (size_t)atol(optarg);
        else if (c == 'n')
            batch = atoi(optarg);
        else if (c == 'L')
            large = 1;
        else if (c == 'i')
            idle = atof(optarg);
        else if (c == 'c')
            hot = atof(optarg);
        else if (c == 'e')
            exec_sleep = optarg;
        else {
            fprintf(stderr,
                    "usage: %s [-t THREADS] [-s SECONDS] [-z SIZE] [-n BATCH] [-L] [-i IDLE] [-c "
                    "HOT] [-e SEC]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || batch < 1) return 2;
    for (int i = 0; large && i < 4; i++)
        if ((keep[i] = malloc(4 << 20))) memset(keep[i], 1, 4 << 20); /* above every class */
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1));
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    struct timespec ts = {0, 50000000};
    for (double left = secs; secs <= 0 || left > 0; left -= 0.05) nanosleep(&ts, NULL);
    stop = 1;
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) free(keep[i]);
    for (double left = idle; left > 0; left -= 0.05) nanosleep(&ts, NULL);
    if (hot > 0) {
        struct timespec t0, t1;
        printf("hot\n");
        fflush(stdout);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            for (int i = 0; i < 100000; i++) {
                char *b = malloc(48);
                if (b) ((volatile char *)b)[0] = (char)i; /* kept: not folded away */
                free(b);
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
        } while ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 < hot);
    }
    if (exec_sleep) {
        unsetenv("LD_PRELOAD");
        execlp("sleep", "sleep", exec_sleep, (char *)NULL);
        perror("exec sleep");
        return 1;
    }
    return 0;
}
