/* t_fork_exec — starting programs from a multi-threaded process.
 *
 * Churn threads swap verified blocks of every size (so allocator locks are
 * taken all the time) while spawner threads start this same program again
 * (`t_fork_exec --exec-child`, which allocates from two threads, verifies
 * and exits 0) by fork()+execv(), vfork()+execv() and posix_spawn(), in
 * turn. LD_PRELOAD and HAKMEM_TEST_EXPECT_HAKMEM are inherited, so every
 * started program runs on hakmem too (it checks, exit 7 if not). Every
 * child must exit 0; a hang (in the child between fork and exec, or in the
 * exec'd program's start-up) is caught by tests/fork_watch.h.
 * Why: every program that runs subprocesses from threads does this, and
 * posix_spawn/vfork children share the parent's memory until exec.
 * Usage: t_fork_exec [seconds]   (default 2)
 */
#include "fork_watch.h"
#include "stress.h"
#include "fork_churn.h"

#include <fcntl.h>
#include <spawn.h>

#define NCHURN 3
#define NSPAWNERS 3

extern char **environ;
static int R_SPAWN;
static char self[4096];

/* The exec'd program. */
static void *exec_child_thread(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 200; i++) blk_free(blk_new(&rng));
    return NULL;
}

static int exec_child(void) {
    const char *e = getenv("HAKMEM_TEST_EXPECT_HAKMEM");
    if (e && *e == '1' && !hakmem_loaded()) return 7;
    pthread_t t;
    if (pthread_create(&t, NULL, exec_child_thread, (void *)1) != 0) return 3;
    exec_child_thread((void *)2);
    pthread_join(t, NULL);
    return tu_failures ? 1 : 0;
}

static char *child_argv[] = {self, "--exec-child", NULL};

static pid_t start(int how) {
    pid_t p = -1;
    if (how == 0) {
        p = fork();
        if (p == 0) {
            execv(self, child_argv);
            _exit(127);
        }
    } else if (how == 1) {
        p = vfork();
        if (p == 0) {
            execv(self, child_argv);
            _exit(127);
        }
    } else if (posix_spawn(&p, self, NULL, NULL, child_argv, environ) != 0) {
        p = -1;
    }
    return p;
}

static void *spawner(void *arg) {
    int how = (int)(uintptr_t)arg % 3;
    static const char *names[] = {"fork+exec", "vfork+exec", "posix_spawn"};
    while (fw_running()) {
        pid_t p = start(how);
        int st = p > 0 ? fw_wait(p) : -1;
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "%s: child %d status %#x\n", names[how], (int)p, st);
            atomic_fetch_add(&fw_failures, 1);
        }
        fw_tick(R_SPAWN);
        how = (how + 1) % 3;
    }
    return NULL;
}

static int work(double seconds) {
    /* the started programs' output would only clutter the log */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    pthread_t t[NCHURN + NSPAWNERS];
    int n = 0;
    for (int i = 0; i < NCHURN; i++)
        REQUIRE(pthread_create(&t[n++], NULL, fc_churn_thread, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < NSPAWNERS; i++)
        REQUIRE(pthread_create(&t[n++], NULL, spawner, (void *)(uintptr_t)i) == 0);
    fw_run_for(seconds);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    fc_drain();
    fprintf(stderr, "programs started %lu, churn rounds %lu, failures %ld\n", fw_ticks(R_SPAWN),
            fw_ticks(fc_role), atomic_load(&fw_failures));
    return atomic_load(&fw_failures) || tu_failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exec-child") == 0) return exec_child();
    tu_init("t_fork_exec");
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = 0;
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    R_SPAWN = fw_role("spawns");
    fc_role = fw_role("churn");
    if (fw_run(work, seconds)) tu_fail(__FILE__, __LINE__, "worker passed", NULL);
    return tu_done();
}
