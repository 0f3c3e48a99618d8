/* t_idle_thread_exit — what threads freed before they exited goes back
 * while the thread they leave only sleeps (issue 10, item 8).
 *
 * 4 threads each write and free ten 2 MiB blocks (the large cache) and
 * exit; the main thread joins them and then only sleeps (no malloc, no
 * stdio), polling VmRSS and its thread count:
 *  - within 3 s at least 3/4 of what the threads added is gone. The large
 *    cache held it for as long as the program slept: ten mallocs a thread
 *    are no 64th slow path, where the purger starts, and the exits started
 *    none (lib/hak_purger.c, hak_purger_thread_exit);
 *  - within 3 s more the process is single-threaded again (the purger ends
 *    once nothing is left and it is alone);
 *  - the program has 160 KiB of static TLS, which glibc puts on every
 *    thread's stack: the purger's 64 KiB stack was too small for it and
 *    pthread_create failed (EINVAL), so such a program never had a purger.
 * Skips under glibc (it keeps what it freed; nothing to test). */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

enum { THREADS = 4, BIG = 10, BIG_SIZE = 2 << 20, TLS = 160 << 10 };

static __thread char scratch[TLS]; /* static TLS: on every thread's stack */

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *work(void *arg) {
    void *big[BIG];
    for (int i = 0; i < BIG; i++) {
        REQUIRE((big[i] = malloc(BIG_SIZE)) != NULL);
        memset(big[i], i + 1, BIG_SIZE);
        scratch[i * 4096] = (char)i;
    }
    for (int i = 0; i < BIG; i++) free(big[i]);
    return arg;
}

int main(void) {
    tu_init("t_idle_thread_exit");
    if (!hakmem_loaded()) {
        printf("SKIP: hakmem is not loaded\n");
        return 77;
    }
    long base = tu_rss_kib();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) REQUIRE(pthread_create(&t[i], NULL, work, NULL) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    long joined = tu_rss_kib(), now = joined, want = (joined - base) * 3 / 4;
    int ms = 0;
    for (; ms < 3000 && joined - now < want; ms += 20) {
        nap_ms(20);
        now = tu_rss_kib();
    }
    int back_ms = ms, threads = tu_threads();
    for (ms = 0; ms < 3000 && (threads = tu_threads()) > 1; ms += 20) nap_ms(20);
    printf("rss %ld KiB before the threads, %ld after the joins, %ld after %d ms asleep; "
           "%d thread(s) %d ms later\n",
           base, joined, now, back_ms, threads, ms);
    CHECKF(joined - base > 40 << 10 && scratch[0] == 0, "the threads added only %ld KiB",
           joined - base);
    CHECKF(joined - now >= want,
           "%ld of the %ld KiB the exited threads left came back in 3 s asleep (want %ld)",
           joined - now, joined - base, want);
    CHECKF(threads == 1, "%d threads 3 s after the return: the purger did not end", threads);
    return tu_done();
}
