/* t_fork_signal_threads — _Fork() from a signal handler in a multi-threaded
 * process (the shape of glibc's tst-mallocfork3).
 *
 * The worker's main thread frees and mallocs blocks of 0-70000 B in random
 * slots, and every 7th step first calls _Fork() itself. Five sender threads
 * signal it (SIGUSR1, pthread_kill) in lockstep with each step (a barrier
 * before and after it), so the signals land in fork, free and malloc; the
 * handler calls _Fork(), its child _exit(0)s, and it waits for the child.
 * _Fork runs no atfork handler (it is async-signal-safe, glibc 2.34): the
 * interrupted call may hold any allocator lock, and only its own thread
 * can release it. Two churn threads malloc and free blocks of every size
 * meanwhile, so those locks are taken all the time. Every child must exit
 * 0, every malloc must succeed, and nothing may hang (tests/fork_watch.h:
 * each role must keep moving). Passes on glibc too.
 * Usage: t_fork_signal_threads [seconds]   (default 2)
 */
#include "fork_watch.h"
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define SENDERS 5
#define SLOTS 1009
#define MAX_SIZE 70000

static int R_STEP, R_SIGFORK, R_CHURN;
static pthread_t main_thread;
static pthread_barrier_t lockstep;
static atomic_int senders_stop;

static void on_usr1(int sig) {
    (void)sig;
    int e = errno;
    pid_t p = _Fork();
    if (p == 0) _exit(0);
    int st = p < 0 ? -1 : fw_wait(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) atomic_fetch_add(&fw_failures, 1);
    fw_tick(R_SIGFORK);
    errno = e;
}

/* one signal per step, sent between the step's two barriers */
static void *sender(void *arg) {
    (void)arg;
    for (;;) {
        pthread_barrier_wait(&lockstep);
        if (atomic_load(&senders_stop)) return NULL;
        pthread_kill(main_thread, SIGUSR1);
        pthread_barrier_wait(&lockstep);
    }
}

static void *churn(void *arg) {
    uint64_t rng = (uintptr_t)arg;
    static _Thread_local char *b[64];
    while (fw_running()) {
        for (int i = 0; i < 64; i++) {
            size_t n = tu_rand(&rng) % (i & 7 ? 2048 : MAX_SIZE);
            free(b[i]);
            if (!(b[i] = malloc(n))) atomic_fetch_add(&fw_failures, 1);
            if (b[i] && n) b[i][n - 1] = 1;
        }
        fw_tick(R_CHURN);
    }
    for (int i = 0; i < 64; i++) free(b[i]);
    return NULL;
}

static int work(double seconds) {
    main_thread = pthread_self();
    fw_handle(SIGUSR1, on_usr1);
    REQUIRE(pthread_barrier_init(&lockstep, NULL, SENDERS + 1) == 0);
    pthread_t s[SENDERS], c[2];
    for (int i = 0; i < SENDERS; i++) REQUIRE(pthread_create(&s[i], NULL, sender, NULL) == 0);
    for (long i = 0; i < 2; i++) REQUIRE(pthread_create(&c[i], NULL, churn, (void *)(i + 3)) == 0);
    static void *obj[SLOTS];
    uint64_t rng = 1;
    double end = fw_now() + seconds;
    long steps = 0, own_forks = 0;
    while (fw_now() < end) {
        int slot = (int)(tu_rand(&rng) % SLOTS);
        size_t n = tu_rand(&rng) % MAX_SIZE;
        bool do_fork = tu_rand(&rng) % 7 == 0;
        pthread_barrier_wait(&lockstep);
        if (do_fork) {
            pid_t p = _Fork();
            if (p == 0) _exit(0);
            int st = p < 0 ? -1 : fw_wait(p);
            fw_check_child(p, st, "_Fork");
            own_forks++;
        }
        free(obj[slot]);
        obj[slot] = malloc(n);
        pthread_barrier_wait(&lockstep);
        if (!obj[slot]) atomic_fetch_add(&fw_failures, 1);
        steps++;
        fw_tick(R_STEP);
    }
    atomic_store(&senders_stop, 1);
    pthread_barrier_wait(&lockstep);
    for (int i = 0; i < SENDERS; i++) pthread_join(s[i], NULL);
    atomic_store(&fw_stop, 1);
    fw_done();
    for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
    for (int i = 0; i < SLOTS; i++) free(obj[i]);
    printf("steps %ld, own forks %ld, forks from the handler %lu, failures %ld\n", steps, own_forks,
           fw_ticks(R_SIGFORK), atomic_load(&fw_failures));
    return atomic_load(&fw_failures) || fw_ticks(R_SIGFORK) == 0 ? 1 : 0;
}

int main(int argc, char **argv) {
    tu_init("t_fork_signal_threads");
    R_STEP = fw_role("steps");
    R_SIGFORK = fw_role("sigforks");
    R_CHURN = fw_role("churn");
    if (fw_run(work, argc > 1 ? atof(argv[1]) : 2))
        tu_fail(__FILE__, __LINE__, "worker passed", NULL);
    return tu_done();
}
