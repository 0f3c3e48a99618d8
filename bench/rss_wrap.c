/* rss_wrap — run a command and report its peak RSS, used by bench/run.
 *
 *   rss_wrap OUT_FILE PRELOAD -- COMMAND [ARGS...]
 *
 * Forks COMMAND with LD_PRELOAD=PRELOAD (empty: none), waits for it and writes
 * "maxrss_kb=N minflt=F majflt=M status=exit:C" (or "status=signal:S") to
 * OUT_FILE (minflt/majflt: the page faults of the command and its waited-for
 * children, from the same rusage). Its exit
 * status mirrors the command's (128+S when killed by a signal).
 *
 * Why a wrapper: ru_maxrss survives exec, so a child forked straight from the
 * Python runner would report at least the runner's own RSS. This process is
 * tiny, so the high-water mark its child starts from is negligible.         */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: rss_wrap OUT_FILE PRELOAD -- COMMAND [ARGS...]\n");
        return 2;
    }
    /* ld.so only warns about a preload it cannot open and runs the command
     * on glibc: a missing peer library would be measured as glibc */
    if (argv[2][0] && access(argv[2], R_OK) != 0) {
        fprintf(stderr, "rss_wrap: %s: %s (bash scripts/deps.sh bench installs the peers)\n",
                argv[2], strerror(errno));
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        if (argv[2][0])
            setenv("LD_PRELOAD", argv[2], 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[4], &argv[4]);
        perror(argv[4]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("wait4");
            return 2;
        }
    }
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    if (WIFSIGNALED(status))
        fprintf(f, "maxrss_kb=%ld minflt=%ld majflt=%ld status=signal:%d\n", ru.ru_maxrss,
                ru.ru_minflt, ru.ru_majflt, WTERMSIG(status));
    else
        fprintf(f, "maxrss_kb=%ld minflt=%ld majflt=%ld status=exit:%d\n", ru.ru_maxrss,
                ru.ru_minflt, ru.ru_majflt, WEXITSTATUS(status));
    fclose(f);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
