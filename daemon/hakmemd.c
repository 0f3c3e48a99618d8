/* hakmemd.c — the daemon's flags, main loop, signals, logging and sd_notify.
 *
 *   hakmemd [--foreground] [--config FILE] [--state-dir DIR] [--interval-ms N]
 *           [--once] [--dry-run] [--no-bpf] [--metrics ADDR] [--log-level L]
 *
 * One thread, one poll(): signals (signalfd), inotify on /dev/shm, process
 * exits (pidfds, or the BPF exit ring), metrics clients, and the tick. A tick
 * runs discover -> sample -> policy -> apply, then leases, status, watchdog.
 * SIGTERM/SIGINT: profiles saved, leases ended, clean exit. SIGHUP: the
 * config is read again (a bad one is logged and the old one kept). */
#include "hakd.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/hakmemd.json"
#define DEFAULT_STATE "/var/lib/hakmemd"

int hakd_log_level = HAKD_INFO;
static int log_prefix; /* journald: "<N>" syslog level prefixes */

uint64_t hakd_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void hakd_log(int level, const char *fmt, ...) {
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    static const int syslog_level[] = {3, 4, 6, 7};
    char line[1024];
    va_list ap;
    if (level > hakd_log_level) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_prefix)
        fprintf(stderr, "<%d>%s\n", syslog_level[level], line);
    else
        fprintf(stderr, "hakmemd: %s: %s\n", tag[level], line);
}

/* ------------------------------------------------------------ sd_notify
 * The protocol is one datagram of text to $NOTIFY_SOCKET ('@' = abstract). */
static void sd_notify(const char *msg) {
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !path[0] || strlen(path) >= sizeof sa.sun_path) return;
    memcpy(sa.sun_path, path, strlen(path));
    if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
    close(fd);
}

/* ----------------------------------------------------------------- flags */
struct opts {
    int foreground, once, dry_run, no_bpf, interval_ms;
    const char *config, *state_dir, *metrics, *status;
};

static void usage(FILE *f) {
    fprintf(f, "usage: hakmemd [--foreground] [--config FILE] [--state-dir DIR] "
               "[--interval-ms N]\n"
               "               [--once] [--dry-run] [--no-bpf] [--metrics ADDR] "
               "[--log-level error|warning|info|debug]\n"
               "               [--status FILE]\n"
               "Tunes the knobs of every process running with hakmem, live. See hakmemd(8).\n");
}

static int parse_level(const char *s) {
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static int parse_args(int argc, char **argv, struct opts *o) {
    static const struct option lo[] = {{"foreground", no_argument, 0, 'f'},
                                       {"config", required_argument, 0, 'c'},
                                       {"state-dir", required_argument, 0, 's'},
                                       {"interval-ms", required_argument, 0, 'i'},
                                       {"once", no_argument, 0, '1'},
                                       {"dry-run", no_argument, 0, 'n'},
                                       {"no-bpf", no_argument, 0, 'B'},
                                       {"metrics", required_argument, 0, 'm'},
                                       {"log-level", required_argument, 0, 'l'},
                                       {"status", required_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "fc:s:i:1nBm:l:S:h", lo, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->foreground = 1;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 's':
            o->state_dir = optarg;
            break;
        case 'i':
            o->interval_ms = (int)strtol(optarg, &end, 10);
            if (*end || o->interval_ms < 50 || o->interval_ms > 60000) {
                fprintf(stderr, "hakmemd: --interval-ms %s: expected 50..60000\n", optarg);
                return 2;
            }
            break;
        case '1':
            o->once = 1;
            break;
        case 'n':
            o->dry_run = 1;
            break;
        case 'B':
            o->no_bpf = 1;
            break;
        case 'm':
            o->metrics = optarg;
            break;
        case 'S':
            o->status = optarg;
            break;
        case 'l':
            if ((hakd_log_level = parse_level(optarg)) < 0) {
                fprintf(stderr, "hakmemd: --log-level %s: expected error, warning, info or debug\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hakmemd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

/* ------------------------------------------------------------------ tick */
static struct hakd_decision decisions[HAKD_MAX_DECISIONS];

/* This daemon's identity in a lease beside its pid (apply.c, claim): pids
 * repeat across pid namespaces, 32 random bits practically do not. */
static uint32_t draw_lease_tag(void) {
    uint32_t t = 0;
    if (getrandom(&t, sizeof t, GRND_NONBLOCK) != (ssize_t)sizeof t)
        t = (uint32_t)(hakd_now_ns() ^ ((uint64_t)getpid() << 16));
    return t ? t : 1;
}

static void proc_exited(pid_t pid, void *arg) {
    hakd_discover_exit(arg, pid);
}

static int tick(struct hakd_state *st) {
    int n = 0;
    st->ticks++;
    hakd_discover_inotify(st);
    hakd_discover_tick(st, 0);
    hakd_discover_reap(st);
    st->psi_some10 = hakd_read_psi(st->cfg.psi_path);
    hakd_apply_claims(st);
    for (int i = 0; i < st->nprocs; i++) {
        struct hakd_proc *p = st->procs[i];
        if (p->dead || p->broken) continue;
        hakd_sample(st, p);
        /* a new process of a known program starts with what was learned */
        if (!p->ps.profile_applied && p->managed && !p->dead && !p->broken && p->knobs_ok) {
            int k = hakd_profile_load(st, p, decisions + n, HAKD_MAX_DECISIONS - n);
            n += k > 0 ? k : 0;
        }
    }
    n += hakd_policy(st, decisions + n, HAKD_MAX_DECISIONS - n);
    int done = hakd_apply(st, decisions, n);
    hakd_apply_leases(st);
    hakd_discover_reap(st); /* what this tick found dead or broken */
    return done;
}

static volatile sig_atomic_t stop;

int main(int argc, char **argv) {
    struct opts o = {0};
    char err[512];
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    log_prefix = getenv("JOURNAL_STREAM") != NULL && !o.once;

    static struct hakd_state st;
    hakd_config_defaults(&st.cfg);
    const char *config = o.config ? o.config : DEFAULT_CONFIG;
    if (hakd_config_load(config, o.config != NULL, &st.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "hakmemd: bad config: %s\n", err);
        return 1;
    }
    if (o.interval_ms) st.cfg.interval_ms = o.interval_ms;
    if (st.cfg.lease_ms < 2 * st.cfg.interval_ms) { /* it would lapse between renewals */
        fprintf(
            stderr,
            "hakmemd: bad config: %s: field \"lease_ms\": %d is less than two intervals (%d ms)\n",
            config, st.cfg.lease_ms, 2 * st.cfg.interval_ms);
        return 1;
    }
    st.dry_run = o.dry_run;
    st.once = o.once;
    /* a user running it for their own processes keeps its state at home */
    static char user_state[512];
    const char *home = getenv("HOME");
    if (!o.state_dir && geteuid() != 0 && home && home[0]) {
        snprintf(user_state, sizeof user_state, "%s/.local/state/hakmemd", home);
        char parent[512];
        snprintf(parent, sizeof parent, "%s/.local", home);
        mkdir(parent, 0700);
        snprintf(parent, sizeof parent, "%s/.local/state", home);
        mkdir(parent, 0700);
        o.state_dir = user_state;
    }
    st.state_dir = o.state_dir ? o.state_dir : DEFAULT_STATE;
    if (mkdir(st.state_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "hakmemd: state directory %s: %s\n", st.state_dir, strerror(errno));
        return 1;
    }
    /* the status file: /run/hakmemd when running as the system service
     * (default state dir), else beside the state */
    static char status_path[512];
    if (o.status)
        snprintf(status_path, sizeof status_path, "%s", o.status);
    else if (!o.state_dir && (mkdir("/run/hakmemd", 0755) == 0 || errno == EEXIST) &&
             access("/run/hakmemd", W_OK) == 0)
        snprintf(status_path, sizeof status_path, "/run/hakmemd/status.json");
    else
        snprintf(status_path, sizeof status_path, "%s/status.json", st.state_dir);
    st.status_path = status_path;
    hakd_status_predecessor(status_path, &st.predecessor, &st.predecessor_tag);
    st.lease_tag = draw_lease_tag();

    int lfd = -1;
    if (o.metrics && (lfd = hakd_metrics_open(o.metrics, err, sizeof err)) < 0) {
        fprintf(stderr, "hakmemd: %s\n", err);
        return 1;
    }
    if (!o.foreground && !o.once) { /* classic daemon: detach from the terminal */
        if (daemon(0, 1) != 0) {
            fprintf(stderr, "hakmemd: cannot detach: %s\n", strerror(errno));
            return 1;
        }
    }
    struct rlimit rl = {4096, 4096}; /* a pidfd per process */
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    hakd_bus_install();
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);

    st.started_ns = hakd_now_ns();
    if (o.no_bpf)
        snprintf(st.bpf_why, sizeof st.bpf_why, "BPF off: --no-bpf");
    else
        st.bpf_on = hakd_bpf_open(st.bpf_why, sizeof st.bpf_why) == 0 && hakd_bpf_on();
    hakd_log(st.bpf_on ? HAKD_INFO : HAKD_WARN, "%s%s", st.bpf_on ? "BPF on: " : "", st.bpf_why);
    hakd_discover_open(&st);
    hakd_log(HAKD_INFO, "started: pid %d, interval %d ms, lease %d ms, state %s, status %s%s%s%s",
             getpid(), st.cfg.interval_ms, st.cfg.lease_ms, st.state_dir, st.status_path,
             st.dry_run ? ", dry run" : "", o.metrics ? ", metrics on " : "",
             o.metrics ? o.metrics : "");
    hakd_discover_tick(&st, 1);

    if (o.once) { /* observe long enough for the hysteresis, then decide once */
        int total = 0;
        for (int t = 0; t <= HAKD_HYST; t++) {
            if (t) {
                struct timespec ts = {st.cfg.interval_ms / 1000,
                                      (long)(st.cfg.interval_ms % 1000) * 1000000};
                nanosleep(&ts, NULL);
            }
            total += tick(&st);
        }
        printf("hakmemd --once: %d process(es), %d decision(s)%s\n", st.nprocs, total,
               st.dry_run ? " (dry run: nothing written)" : "");
        hakd_profile_save_all(&st);
        hakd_discover_close(&st);
        return 0;
    }

    hakd_status_write(&st, 1);
    uint64_t watchdog_us = getenv("WATCHDOG_USEC") ? strtoull(getenv("WATCHDOG_USEC"), 0, 10) : 0;
    if (watchdog_us && watchdog_us / 2000 < (uint64_t)st.cfg.interval_ms)
        hakd_log(HAKD_WARN, "WatchdogSec is shorter than two intervals: pings between ticks");
    sd_notify("READY=1\nSTATUS=starting");
    uint64_t next = hakd_now_ns(), last_save = next, last_ping = 0;
    while (!stop) {
        uint64_t now = hakd_now_ns();
        if (now >= next) {
            tick(&st);
            hakd_status_write(&st, 1);
            next = now + (uint64_t)st.cfg.interval_ms * 1000000ull;
            if (now - last_save >= (uint64_t)st.cfg.profile_save_s * 1000000000ull) {
                hakd_profile_save_all(&st);
                last_save = now;
            }
            char msg[160];
            snprintf(msg, sizeof msg, "STATUS=%d processes, %llu decisions, BPF %s", st.nprocs,
                     (unsigned long long)st.decisions_total, st.bpf_on ? "on" : "off");
            sd_notify(msg);
        }
        if (watchdog_us && now - last_ping >= watchdog_us * 1000 / 2) {
            sd_notify("WATCHDOG=1");
            last_ping = now;
        }
        /* poll set: signals, inotify, BPF exits, metrics, pidfds */
        static struct pollfd pf[HAKD_MAX_PROCS + 32];
        static struct hakd_proc *owner[HAKD_MAX_PROCS + 32];
        int n = 0, bfd = st.bpf_on ? hakd_bpf_exit_fd() : -1, cfds[8];
        pf[n++] = (struct pollfd){sfd, POLLIN, 0};
        /* inotify is drained at each tick, not polled: the churn of other
         * programs' segments must not wake the daemon between ticks */
        pf[n++] = (struct pollfd){-1, POLLIN, 0};
        pf[n++] = (struct pollfd){bfd, POLLIN, 0};
        pf[n++] = (struct pollfd){lfd, POLLIN, 0};
        int nc = lfd >= 0 ? hakd_metrics_fds(cfds, 8) : 0;
        for (int i = 0; i < nc; i++) pf[n++] = (struct pollfd){cfds[i], POLLIN, 0};
        int base = n;
        for (int i = 0; i < st.nprocs; i++)
            if (st.procs[i]->pidfd >= 0 && !st.procs[i]->dead) {
                owner[n] = st.procs[i];
                pf[n++] = (struct pollfd){st.procs[i]->pidfd, POLLIN, 0};
            }
        uint64_t wake = next;
        if (watchdog_us && last_ping + watchdog_us * 500 < wake)
            wake = last_ping + watchdog_us * 500;
        now = hakd_now_ns();
        int timeout = wake > now ? (int)((wake - now) / 1000000) + 1 : 0;
        if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR) break;
        if (pf[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    struct hakd_config c = st.cfg;
                    if (hakd_config_load(config, 1, &c, err, sizeof err) != 0) {
                        hakd_log(HAKD_ERR, "SIGHUP: config not reloaded: %s", err);
                    } else {
                        if (o.interval_ms) c.interval_ms = o.interval_ms;
                        st.cfg = c;
                        hakd_discover_forget();
                        hakd_log(HAKD_INFO, "SIGHUP: config %s reloaded", config);
                    }
                } else {
                    hakd_log(HAKD_INFO, "signal %d: stopping", (int)si.ssi_signo);
                    stop = 1;
                }
            }
        }
        if (pf[2].revents) hakd_bpf_drain_exits(proc_exited, &st);
        if (pf[3].revents) hakd_metrics_accept(&st, lfd);
        for (int i = 4; i < base; i++)
            if (pf[i].revents) hakd_metrics_serve(&st, pf[i].fd);
        int exited = 0;
        for (int i = base; i < n; i++)
            if (pf[i].revents) owner[i]->dead = exited = 1;
        if (exited || pf[2].revents) hakd_discover_reap(&st); /* within the second */
    }
    sd_notify("STOPPING=1");
    hakd_profile_save_all(&st);
    hakd_apply_release(&st);
    hakd_status_write(&st, 0);
    hakd_discover_close(&st);
    hakd_metrics_close();
    if (st.bpf_on) hakd_bpf_close();
    hakd_log(HAKD_INFO, "stopped: %llu decisions, %llu segments removed",
             (unsigned long long)st.decisions_total, (unsigned long long)st.removed_total);
    return 0;
}
