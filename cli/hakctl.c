/* hakctl.c — main, the command table, usage and help, shared helpers.
 * Commands return an exit status (0 ok, 1 error, 2 usage) and never exit():
 * `hakctl shell` runs them in the same process. */
#include "hakctl.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int hk_json_default;
int hk_in_shell;
volatile sig_atomic_t hk_interrupted;

/* A command is a line here; its function and option table (hakctl_args.c,
 * or its own file) are declared in hakctl.h. */
const struct hk_cmd hk_cmds[] = {
    {"ps", hk_cmd_ps, "[--json] [--interval SEC]", "list processes with a hakmem segment",
     "Lists every process that publishes a segment in /dev/shm: pid, user, executable,\n"
     "uptime, threads, bytes in use, bytes cached, operations per second (allocations\n"
     "plus frees, measured over --interval, default 0.25 s) and who owns its knobs\n"
     "(default, or env:N daemon:N manual:N knobs set by each). Segments left by a\n"
     "process that is gone, whose pid now belongs to another program, or that\n"
     "exec'd a program without hakmem are listed as stale; `hakctl gc` removes them.\n",
     hk_opts_ps, 0, 0},
    {"stats", hk_cmd_stats, "PID [--watch SEC] [--interval SEC] [--all] [--json]",
     "per-class counters of one process",
     "Process totals, then one row per size class in use (--all: every class):\n"
     "  CLS SIZE   class index and block size (L: blocks from mmap)\n"
     "  ALLOC FREE LIVE   blocks allocated, freed, in use\n"
     "  A/s F/s   allocations and frees per second between two samples\n"
     "  HIT%      allocations served by the thread cache (fast path)\n"
     "  REFIL RFREE ADOPT   cache refills, frees to another thread's slab, slabs adopted\n"
     "  CACHED    free bytes held in slabs and thread caches\n"
     "  KNOBS     the class's knob values (named under the table)\n"
     "--watch SEC refreshes every SEC seconds until Ctrl-C (with --json: one object a line).\n",
     hk_opts_stats, 1, 0},
    {"top", hk_cmd_top, "[--sort ops|mem] [--interval SEC] [--iterations N] [--json]",
     "live view of all processes",
     "Refreshes every --interval seconds (default 1), sorted by operations per second\n"
     "or by memory in use. Keys: q quits, m sorts by memory, o by ops/s.\n"
     "When standard output is not a terminal, prints --iterations frames (default 1).\n",
     hk_opts_top, 0, 0},
    {"get", hk_cmd_get, "PID [KNOB...] [--class N] [--classes] [--json]",
     "show knobs: value, range, owner, when and why set",
     "Shows each knob's value, allowed range, owner (default, env, daemon, manual),\n"
     "when it was set and why. Classes with the same value are grouped (0-19);\n"
     "--classes lists every class, --class N only class N.\n",
     hk_opts_get, 1, 1},
    {"set", hk_cmd_set, "PID KNOB=VALUE [KNOB=VALUE...] [--class N] [--reason TEXT]",
     "set knobs (owner manual)",
     "Sets knobs live; the process applies them on its next slow path. The owner\n"
     "becomes `manual`, which the daemon leaves alone until `hakctl reset`.\n"
     "A per-class knob is set for every class unless --class N is given.\n"
     "Boolean knobs take 0/1, on/off, true/false or yes/no.\n",
     hk_opts_set, 1, 1},
    {"reset", hk_cmd_reset, "PID [KNOB...] [--class N]",
     "hand knobs back to their defaults (and the daemon)",
     "Puts knobs (all of them when none is named) back to their built-in default\n"
     "with owner `default`, so the daemon may tune them again.\n",
     hk_opts_reset, 1, 1},
    {"trim", hk_cmd_trim, "PID [--wait SEC]", "ask a process to return cached memory",
     "Asks the process to return cached memory to the OS at its next allocator slow\n"
     "path and waits up to --wait seconds (default 1) for it to confirm.\n",
     hk_opts_trim, 1, 0},
    {"gc", hk_cmd_gc, "[--dry-run] [--verbose] [--json]", "remove stale segments",
     "Removes segments whose process is gone, whose pid was reused, or whose process\n"
     "exec'd without hakmem, and prints how many; --verbose lists each. Only segments\n"
     "the caller may remove (its own, or any as root) are removed; others are kept.\n"
     "Entries named like a segment that are none (a directory) are skipped in place.\n",
     hk_opts_gc, 0, 0},
    {"daemon", hk_cmd_daemon, "[--status FILE] [--json]", "is hakmemd up, and what is it doing",
     "Reads hakmemd's status file (default /run/hakmemd/status.json, else\n"
     "/var/lib/hakmemd/status.json): up or down, pid, processes managed, decisions\n"
     "in the last minute, BPF on or off. Exit status 0 if up, 1 if not.\n",
     hk_opts_daemon, 0, 0},
    {"shell", hk_cmd_shell, "", "interactive shell with completion",
     "A readline shell running the same commands (`help`, `exit`). Tab completes\n"
     "commands, pids and knob names; history is kept in ~/.hakctl_history.\n",
     hk_opts_help_only, 0, 0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
};

const struct hk_cmd *hk_cmd_find(const char *name) {
    for (const struct hk_cmd *c = hk_cmds; c->name; c++)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

void hk_err(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("hakctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int hk_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "hakctl%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'hakctl %s%s--help'\n", cmd ? cmd : "", cmd ? " " : "");
    return HK_USAGE;
}

static void usage(FILE *f) {
    fprintf(f, "usage: hakctl [--json] COMMAND [ARGS]\n"
               "       hakctl COMMAND --help | --help | --version\n\n"
               "Observe and tune processes that use the hakmem allocator.\n\ncommands:\n");
    for (const struct hk_cmd *c = hk_cmds; c->name; c++)
        fprintf(f, "  %-7s %s\n", c->name, c->summary);
    fprintf(f, "\nexit status: 0 success, 1 error, 2 usage. See hakctl(1).\n");
}

int hk_help(const char *cmd) {
    const struct hk_cmd *c = hk_cmd_find(cmd);
    if (!c) return HK_USAGE;
    printf("usage: hakctl %s %s\n\n%s\n%s", c->name, c->synopsis, c->summary, c->help);
    if (c->fn != hk_cmd_shell && c->fn != hk_cmd_set && c->fn != hk_cmd_reset &&
        c->fn != hk_cmd_trim)
        printf("--json prints JSON instead (schema in hakctl(1) and docs/hakctl.md).\n");
    return HK_OK;
}

int hk_bad_option(const char *cmd, int c, char **argv) {
    if (c == 'h') return hk_help(cmd) == HK_OK ? HK_HELPED : HK_USAGE;
    if (c == ':') return hk_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
    if (optopt) return hk_usage(cmd, "unknown option '-%c'", optopt);
    return hk_usage(cmd, "unknown option '%s'", argv[optind - 1]);
}

static void on_sigint(int sig) {
    (void)sig;
    hk_interrupted = 1;
}

/* No SA_RESTART: a sleeping --watch or top wakes up at once. */
void hk_catch_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static sigjmp_buf *bus_jmp; /* innermost hk_guard */

static void on_sigbus(int sig) {
    static const char msg[] = "hakctl: a segment shrank while being read (truncated by its "
                              "owner); try again\n";
    (void)sig;
    if (bus_jmp) siglongjmp(*bus_jmp, 1);
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) _exit(HK_ERR);
    _exit(HK_ERR);
}

void hk_catch_sigbus(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER; /* siglongjmp leaves the handler: SIGBUS stays usable */
    sigaction(SIGBUS, &sa, NULL);
}

int hk_guard(void (*fn)(void *), void *arg) {
    sigjmp_buf jb, *outer = bus_jmp;
    if (sigsetjmp(jb, 1) != 0) {
        bus_jmp = outer;
        return -1;
    }
    bus_jmp = &jb;
    fn(arg);
    bus_jmp = outer;
    return 0;
}

int hk_sleep(double sec) {
    struct timespec ts = {(time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9)};
    while (!hk_interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return hk_interrupted != 0;
}

int hk_dispatch(int argc, char **argv) {
    const struct hk_cmd *c = hk_cmd_find(argv[0]);
    if (!c) return hk_usage(NULL, "unknown command '%s'", argv[0]);
    optind = 0; /* full getopt reset: the shell runs many commands */
    hk_interrupted = 0;
    int rc = c->fn(argc, argv);
    return rc == HK_HELPED ? HK_OK : rc;
}

static int print_pid(pid_t pid, const char *path, void *arg) {
    (void)path, (void)arg;
    printf("%d\n", pid);
    return 0;
}

/* Words for bash completion, from the tables parsing uses, so completion
 * offers only what the grammar accepts: --list-commands, --list-options CMD,
 * --list-knobs, --list-pids (canonical segment names only). */
static int list_words(const char *what, const char *cmd) {
    const struct hk_cmd *c = cmd ? hk_cmd_find(cmd) : NULL;
    if (!strcmp(what, "commands")) {
        for (c = hk_cmds; c->name; c++) puts(c->name);
    } else if (!strcmp(what, "options") && c) {
        for (const struct option *o = c->opts; o->name; o++) printf("--%s\n", o->name);
    } else if (!strcmp(what, "knobs")) {
        for (int k = 0; k < HAK_NUM_KNOBS; k++) puts(hak_knob_defs[k].name);
    } else if (!strcmp(what, "pids")) {
        hak_shm_list(print_pid, NULL);
    } else {
        return hk_usage(NULL, "unknown option '--list-%s'", what);
    }
    return HK_OK;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HK_OK;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("hakctl %s (segment ABI %d.%d)\n", HAKCTL_VERSION, HAK_SHM_ABI_MAJOR,
                   HAK_SHM_ABI_MINOR);
            return HK_OK;
        }
        if (!strncmp(argv[i], "--list-", 7)) return list_words(argv[i] + 7, argv[i + 1]);
        if (!strcmp(argv[i], "--json")) {
            hk_json_default = 1;
            continue;
        }
        return hk_usage(NULL, "unknown option '%s'", argv[i]);
    }
    if (i == argc) {
        usage(stderr);
        return HK_USAGE;
    }
    /* only the character type: numbers stay in the C format scripts parse */
    setlocale(LC_CTYPE, "");
    hk_utf8_locale = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    hk_catch_sigbus();
    return hk_dispatch(argc - i, argv + i);
}
