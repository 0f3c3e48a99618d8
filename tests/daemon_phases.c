/* daemon_phases — a workload for tests/t_daemon_phases.sh and
 * t_daemon_remote.sh (not a t_* test itself): alternates two phases, each
 * SEC seconds, CYCLES times:
 *   A: one thread, batches of BATCH 64-byte blocks (class 3, "tiny"),
 *   B: batches of BATCH 2048-byte blocks (class 27, "mid"),
 * both deep enough that the thread cache misses with the default knobs.
 * With MODE "remote", B is instead a producer/consumer pair: two threads
 * send each other the same 64-byte blocks to free (every free a foreign
 * block; each thread's cache hands most of them to its own next batch, so
 * few reach the counters as remote frees: the classifier must still call
 * it remote, as bench/adaptive's prodcons phase).
 * Prints "pid N" once running and "phase X" at each change.
 * Usage: daemon_phases [SEC] [CYCLES] [BATCH] [MODE] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING 4096 /* power of two */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct ring { /* single producer, single consumer */
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
    void *slot[RING];
};
static struct ring rings[2]; /* rings[i]: blocks for thread i to free */
static atomic_int stop;

/* Sends up to 32 new blocks to the other thread, frees what it was sent. */
static void pass(int me) {
    struct ring *out = &rings[!me], *in = &rings[me];
    size_t h = atomic_load_explicit(&out->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&out->tail, memory_order_acquire);
    for (int k = 0; k < 32; k++) {
        void *b = malloc(64);
        if (!b) abort();
        memset(b, 1, 16);
        if (h - t >= RING)
            free(b); /* the other lags: a local free keeps both threads balanced */
        else
            out->slot[h++ & (RING - 1)] = b;
    }
    atomic_store_explicit(&out->head, h, memory_order_release);
    t = atomic_load_explicit(&in->tail, memory_order_relaxed);
    h = atomic_load_explicit(&in->head, memory_order_acquire);
    for (; t != h; t++) free(in->slot[t & (RING - 1)]);
    atomic_store_explicit(&in->tail, t, memory_order_release);
}

static void drain(int me) {
    struct ring *in = &rings[me];
    size_t t = atomic_load(&in->tail), h = atomic_load(&in->head);
    for (; t != h; t++) free(in->slot[t & (RING - 1)]);
    atomic_store(&in->tail, t);
}

static void *peer(void *arg) {
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_acquire)) pass(1);
    return NULL;
}

/* Phase B of mode remote: two threads pass blocks to each other. */
static void exchange(double sec) {
    pthread_t th;
    atomic_store(&stop, 0);
    if (pthread_create(&th, NULL, peer, NULL)) abort();
    for (double end = now() + sec; now() < end;) pass(0);
    atomic_store_explicit(&stop, 1, memory_order_release);
    pthread_join(th, NULL);
    drain(0);
    drain(1);
}

int main(int argc, char **argv) {
    double sec = argc > 1 ? atof(argv[1]) : 4;
    int cycles = argc > 2 ? atoi(argv[2]) : 2, batch = argc > 3 ? atoi(argv[3]) : 20000;
    int remote = argc > 4 && !strcmp(argv[4], "remote");
    void **p = calloc((size_t)batch, sizeof *p);
    if (!p || sec <= 0 || cycles < 1) return 2;
    printf("pid %d\n", (int)getpid());
    for (int c = 0; c < 2 * cycles; c++) {
        size_t size = c % 2 ? 2048 : 64;
        printf("phase %c\n", c % 2 ? 'B' : 'A');
        fflush(stdout);
        if (remote && c % 2) {
            exchange(sec);
            continue;
        }
        for (double end = now() + sec; now() < end;) {
            for (int i = 0; i < batch; i++)
                if ((p[i] = malloc(size))) memset(p[i], i, 16);
            for (int i = 0; i < batch; i++) free(p[i]);
        }
    }
    free(p);
    return 0;
}
