/* hakctl_top.c — `hakctl top`: every process, refreshed, sorted by ops/s or
 * memory. On a terminal it redraws in place and reads single keys (q, m, o)
 * with the terminal in non-canonical mode, restored on every way out.
 * Elsewhere it prints --iterations frames, like `top -b`. */
#include "hakctl.h"

#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

enum { SORT_OPS, SORT_MEM };
static int sort_key;

static int cmp(const void *a, const void *b) {
    const struct hk_proc *x = a, *y = b;
    int lx = x->state == HK_LIVE && x->nsamples, ly = y->state == HK_LIVE && y->nsamples;
    if (lx != ly) return ly - lx; /* live first, then stale and unreadable */
    if (!lx) return (x->pid > y->pid) - (x->pid < y->pid);
    double vx = sort_key == SORT_OPS ? x->f.ops_s : (double)x->f.in_use;
    double vy = sort_key == SORT_OPS ? y->f.ops_s : (double)y->f.in_use;
    return (vx < vy) - (vx > vy);
}

/* Carries the last sample of a process still there into the new scan, so
 * rates cover exactly one interval. */
struct carry_args {
    struct hk_proc *old, *p;
    int nold, n;
};

static void carry(struct hk_proc *old, int nold, struct hk_proc *p, int n);
static void carry_guarded(void *arg) {
    struct carry_args *a = arg;
    carry(a->old, a->nold, a->p, a->n);
}

static void carry(struct hk_proc *old, int nold, struct hk_proc *p, int n) {
    for (int i = 0; i < n; i++) {
        if (p[i].state != HK_LIVE || !p[i].nsamples) continue;
        for (int j = 0; j < nold; j++) {
            struct hk_proc *o = &old[j];
            if (o->pid != p[i].pid || o->state != HK_LIVE || !o->nsamples ||
                o->v.hdr->created_ns != p[i].v.hdr->created_ns)
                continue;
            hk_sample_free(&p[i].cur); /* the scan's sample: replaced by the old one */
            p[i].cur = o->cur;
            o->nsamples = o->nsamples > 1 ? 1 : 0; /* old cur now owned by p[i] */
            if (o->nsamples) {
                o->cur = o->prev;
                o->nsamples = 1;
            }
            break;
        }
    }
}

static void draw(struct hk_proc *p, int n, int clear) {
    char a[HK_NB], b[HK_NB], c[HK_NB], d[HK_NB], e[HK_NB], g[HK_NB], h[HK_NB], user[64];
    double ops = 0;
    uint64_t mem = 0;
    int live = 0;
    for (int i = 0; i < n; i++)
        if (p[i].state == HK_LIVE && p[i].nsamples)
            ops += p[i].f.ops_s, mem += p[i].f.in_use, live++;
    if (clear) fputs("\033[H\033[J", stdout);
    printf("hakctl top: %d processes  %s ops/s  %s in use  sort: %s  q quits\n", live,
           hk_rate(a, ops), hk_bytes(b, mem), sort_key == SORT_OPS ? "ops/s" : "memory");
    printf("%7s %-8s %-14s %6s %6s %6s %6s %6s %3s %4s\n", "PID", "USER", "EXE", "OPS/s", "A/s",
           "F/s", "IN USE", "CACHED", "THR", "HIT%");
    /* on a terminal, what fits: the header must not scroll away */
    struct winsize ws;
    int rows = n;
    if (clear && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 3 && n > ws.ws_row - 3)
        rows = ws.ws_row - 4;
    for (int i = 0; i < rows; i++) {
        const struct hk_proc *x = &p[i];
        char exe[15]; /* the column: whole characters or escapes only */
        hk_user(x->uid, user, sizeof user);
        hk_clean(exe, sizeof exe, x->exe, sizeof x->exe, 0);
        if (x->state != HK_LIVE || !x->nsamples) {
            printf("%7d %-8.8s %-14s %s\n", x->pid, user, exe,
                   x->state == HK_BAD ? "? unreadable" : "stale");
            continue;
        }
        printf("%7d %-8.8s %-14s %6s %6s %6s %6s %6s %3s %4s\n", x->pid, user, exe,
               hk_rate(a, x->f.ops_s), hk_rate(b, x->f.alloc_s), hk_rate(c, x->f.free_s),
               hk_bytes_short(d, x->f.in_use), hk_bytes_short(e, x->f.cached),
               hk_num(g, x->cur.proc[HAK_PROC_THREADS]), hk_pct(h, x->f.hit));
    }
    if (rows < n) printf("... %d more (`hakctl ps` lists them all)\n", n - rows);
    fflush(stdout);
}

static struct termios saved;
static int raw_on;

static void raw_mode(int on) {
    if (on && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios t = saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        raw_on = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    } else if (!on && raw_on) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        raw_on = 0;
    }
}

/* Waits up to sec for a key; returns 1 to quit. */
static int keys(double sec) {
    struct pollfd pf = {STDIN_FILENO, POLLIN, 0};
    double end = hk_mono() + sec;
    while (!hk_interrupted) {
        int ms = (int)((end - hk_mono()) * 1000);
        if (ms <= 0) return 0;
        if (!raw_on) return hk_sleep(ms / 1000.0);
        if (poll(&pf, 1, ms) <= 0) continue;
        char ch;
        if (read(STDIN_FILENO, &ch, 1) != 1) return 1; /* EOF on the terminal */
        if (ch == 'q' || ch == 'Q') return 1;
        if (ch == 'm' || ch == 'o') {
            sort_key = ch == 'm' ? SORT_MEM : SORT_OPS;
            return 0; /* redraw now */
        }
    }
    return 1;
}

static cJSON *frame_json(const struct hk_proc *p, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, hk_json_ps_entry(&p[i]));
    return a;
}

int hk_cmd_top(int argc, char **argv) {
    double interval = 1;
    long long iters = -1;
    int c, rc, json = hk_json_default;
    sort_key = SORT_OPS;
    while ((c = hk_getopt(argc, argv, hk_opts_top)) != -1) {
        if (c == 's' && (!strcmp(optarg, "ops") || !strcmp(optarg, "mem")))
            sort_key = optarg[0] == 'o' ? SORT_OPS : SORT_MEM;
        else if (c == 's')
            return hk_usage("top", "--sort takes ops or mem, not '%s'", optarg);
        else if (c == 'i') {
            if ((rc = hk_parse_sec("top", optarg, &interval)) != HK_OK) return rc;
        } else if (c == 'n') {
            if ((rc = hk_parse_int("top", "--iterations", optarg, 1, INT_MAX, &iters)) != HK_OK)
                return rc;
        } else if (c == 'j')
            json = 1;
        else
            return hk_bad_option("top", c, argv);
    }
    if (optind < argc) return hk_usage("top", "unexpected argument '%s'", argv[optind]);
    int interactive = hk_tty() && !json;
    if (iters < 0) iters = interactive ? -1 : 1;
    struct hk_proc *p = NULL, *np;
    int n = 0, nn;
    hk_catch_sigint();
    if (interactive) raw_mode(1);
    if (hk_procs_scan(&p, &n) != 0) {
        raw_mode(0);
        return HK_ERR;
    }
    if (interactive) printf("\033[H\033[Jhakctl top: sampling...\n");
    for (long long i = 0; iters < 0 || i < iters; i++) {
        if (interactive ? keys(interval) : hk_sleep(interval)) break;
        hk_procs_sample(p, n);
        qsort(p, (size_t)n, sizeof *p, cmp);
        if (json)
            hk_json_print(frame_json(p, n), 1);
        else
            draw(p, n, interactive);
        if (hk_procs_scan(&np, &nn) != 0) break; /* new processes, gone ones */
        struct carry_args ca = {p, np, n, nn};
        hk_guard(carry_guarded, &ca); /* a fault only loses one interval's rates */
        hk_procs_free(p, n);
        p = np, n = nn;
    }
    raw_mode(0);
    hk_procs_free(p, n);
    return HK_OK;
}
