/* metrics.c — Prometheus text exposition (format 0.0.4) on --metrics ADDR:
 * HOST:PORT (TCP) or a path (unix socket). A tiny single-threaded HTTP/1.0
 * server in the main loop's poll set: non-blocking accept, a request read
 * as it arrives, the whole page written with a send timeout, close. Names
 * are listed in docs/hakmemd.md. */
#include "hakd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 8
static struct client {
    int fd;
    size_t len;
    char req[2048];
    uint64_t since;
} clients[MAX_CLIENTS];
static int nclients;
static char unix_path[108];

int hakd_metrics_open(const char *addr, char *err, size_t n) {
    int fd;
    if (strchr(addr, '/')) { /* a unix socket */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat s;
        if (strlen(addr) >= sizeof sa.sun_path)
            return snprintf(err, n, "--metrics %s: path too long", addr), -1;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr);
        if (lstat(addr, &s) == 0 && S_ISSOCK(s.st_mode)) unlink(addr); /* a stale socket */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
            snprintf(err, n, "--metrics %s: %s", addr, strerror(errno));
            if (fd >= 0) close(fd);
            return -1;
        }
        snprintf(unix_path, sizeof unix_path, "%s", addr);
        return fd;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof host)
        return snprintf(err, n, "--metrics %s: expected HOST:PORT or a socket path", addr), -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc) return snprintf(err, n, "--metrics %s: %s", addr, gai_strerror(rc)), -1;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        snprintf(err, n, "--metrics %s: %s", addr, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void drop_client(int i) {
    close(clients[i].fd);
    clients[i] = clients[--nclients];
}

void hakd_metrics_accept(struct hakd_state *st, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (nclients == MAX_CLIENTS) drop_client(0); /* the oldest gives way */
        clients[nclients++] = (struct client){fd, 0, "", hakd_now_ns()};
    }
}

int hakd_metrics_fds(int *fds, int max) {
    int n = 0;
    uint64_t now = hakd_now_ns();
    for (int i = nclients - 1; i >= 0; i--) /* a client silent for 5 s is dropped */
        if (now - clients[i].since > 5000000000ull) drop_client(i);
    for (int i = 0; i < nclients && n < max; i++) fds[n++] = clients[i].fd;
    return n;
}

/* ----------------------------------------------------------------- the page */
struct buf {
    char *p;
    size_t len, cap;
};

static void out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + (size_t)k + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return;
        b->p = np;
        b->cap = cap;
    }
}

/* A label value: backslash, quote and newline escaped. */
static const char *esc(const char *s, char *o, size_t n) {
    size_t j = 0;
    for (; *s && j + 3 < n; s++) {
        if (*s == '\\' || *s == '"')
            o[j++] = '\\', o[j++] = *s;
        else if (*s == '\n')
            o[j++] = '\\', o[j++] = 'n';
        else
            o[j++] = *s;
    }
    o[j] = 0;
    return o;
}

static void head(struct buf *b, const char *name, const char *type, const char *help) {
    out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void page(struct hakd_state *st, struct buf *b) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    head(b, "hakmemd_up", "gauge", "1 while the daemon runs");
    out(b, "hakmemd_up 1\n");
    head(b, "hakmemd_bpf_enabled", "gauge", "1 if the BPF program is loaded");
    out(b, "hakmemd_bpf_enabled %d\n", st->bpf_on);
    head(b, "hakmemd_cpu_seconds_total", "counter", "CPU time of the daemon itself");
    out(b, "hakmemd_cpu_seconds_total %.3f\n", cpu);
    int others, managed = hakd_count_managed(st, &others);
    head(b, "hakmemd_processes", "gauge", "processes managed");
    out(b, "hakmemd_processes %d\n", managed);
    head(b, "hakmemd_processes_other_daemon", "gauge",
         "processes left alone: another hakmemd holds their lease");
    out(b, "hakmemd_processes_other_daemon %d\n", others);
    head(b, "hakmemd_ticks_total", "counter", "ticks taken");
    out(b, "hakmemd_ticks_total %llu\n", (unsigned long long)st->ticks);
    head(b, "hakmemd_segments_removed_total", "counter", "segments of dead processes removed");
    out(b, "hakmemd_segments_removed_total %llu\n", (unsigned long long)st->removed_total);
    head(b, "hakmemd_errors_total", "counter", "bad segments, failed writes, rejected profiles");
    out(b, "hakmemd_errors_total %llu\n", (unsigned long long)st->errors_total);
    head(b, "hakmemd_decisions_total", "counter", "knob changes and trims, by rule");
    for (int r = 0; r < hakd_rule_count(); r++)
        out(b, "hakmemd_decisions_total{rule=\"%s\"} %llu\n", hakd_rule_name(r),
            (unsigned long long)st->rule_count[r]);
    char exe[160];
    head(b, "hakmem_process_ops_per_second", "gauge", "allocations + frees per second");
    for (int i = 0; i < st->nprocs; i++) {
        const struct hakd_proc *p = st->procs[i];
        out(b, "hakmem_process_ops_per_second{pid=\"%d\",exe=\"%s\"} %.1f\n", p->pid,
            esc(p->exe, exe, sizeof exe), p->rec.ops);
    }
    head(b, "hakmem_process_cpu_ns_per_op", "gauge", "the policy objective (CPU ns per operation)");
    for (int i = 0; i < st->nprocs; i++)
        out(b, "hakmem_process_cpu_ns_per_op{pid=\"%d\"} %.1f\n", st->procs[i]->pid,
            st->procs[i]->rec.obj);
    head(b, "hakmem_process_cached_bytes", "gauge", "memory held for reuse (spans, caches, large)");
    for (int i = 0; i < st->nprocs; i++)
        out(b, "hakmem_process_cached_bytes{pid=\"%d\"} %.0f\n", st->procs[i]->pid,
            st->procs[i]->rec.cached_total);
    static const struct {
        int s;
        const char *name, *help;
    } cls[] = {
        {S_ALLOCS, "allocs", "blocks allocated"},
        {S_FREES, "frees", "blocks freed"},
        {S_ASLOW, "alloc_slow", "allocations that missed the thread cache"},
        {S_FSLOW, "free_slow", "frees that found the thread cache full"},
        {S_REFILLS, "refills", "thread-cache refills"},
        {S_FLUSHES, "flushes", "thread-cache flushes"},
        {S_REMOTE, "remote_frees", "blocks freed to another thread's span"},
    };
    for (size_t m = 0; m < sizeof cls / sizeof cls[0]; m++) {
        char name[64];
        snprintf(name, sizeof name, "hakmem_class_%s_total", cls[m].name);
        head(b, name, "counter", cls[m].help);
        for (int i = 0; i < st->nprocs; i++) {
            const struct hakd_proc *p = st->procs[i];
            const struct hakd_raw *r = &p->raw[p->cur];
            if (!r->valid) continue;
            for (int c = 0; c < HAKD_NCLS; c++)
                if (r->ctr[S_ALLOCS][c]) /* classes never used are left out */
                    out(b, "%s{pid=\"%d\",class=\"%d\"} %llu\n", name, p->pid, c,
                        (unsigned long long)r->ctr[cls[m].s][c]);
        }
    }
    head(b, "hakmem_knob_value", "gauge", "knob values; owner = who set it last");
    for (int i = 0; i < st->nprocs; i++) {
        const struct hakd_proc *p = st->procs[i];
        const struct hakd_raw *r = &p->raw[p->cur];
        for (int k = 0; k < HAK_NUM_KNOBS; k++) {
            if (!p->knobs.present[k]) continue;
            if (hak_knob_defs[k].scope == HAK_SCOPE_GLOBAL) {
                out(b, "hakmem_knob_value{pid=\"%d\",knob=\"%s\",owner=\"%s\"} %lld\n", p->pid,
                    hak_knob_defs[k].name, hak_owner_names[p->knobs.owner[k][0]],
                    (long long)p->knobs.val[k][0]);
                continue;
            }
            for (int c = 0; c < HAK_NUM_CLASSES; c++)
                if (r->ctr[S_ALLOCS][c] || p->knobs.owner[k][c] != HAK_OWNER_DEFAULT)
                    out(b,
                        "hakmem_knob_value{pid=\"%d\",knob=\"%s\",class=\"%d\",owner=\"%s\"} "
                        "%lld\n",
                        p->pid, hak_knob_defs[k].name, c, hak_owner_names[p->knobs.owner[k][c]],
                        (long long)p->knobs.val[k][c]);
        }
    }
}

void hakd_metrics_serve(struct hakd_state *st, int fd) {
    int i;
    for (i = 0; i < nclients; i++)
        if (clients[i].fd == fd) break;
    if (i == nclients) return;
    struct client *c = &clients[i];
    ssize_t k = read(fd, c->req + c->len, sizeof c->req - 1 - c->len);
    if (k <= 0) {
        if (k == 0 || (errno != EAGAIN && errno != EINTR)) drop_client(i);
        return;
    }
    c->len += (size_t)k;
    c->req[c->len] = 0;
    if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n")) {
        if (c->len == sizeof c->req - 1) drop_client(i); /* too long a request */
        return;
    }
    struct buf b = {0};
    const char *status = "200 OK";
    if (strncmp(c->req, "GET / ", 6) == 0 || strncmp(c->req, "GET /metrics ", 13) == 0 ||
        strncmp(c->req, "GET /metrics?", 13) == 0) {
        page(st, &b);
    } else {
        status = "404 Not Found";
        out(&b, "hakmemd: GET /metrics\n");
    }
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, b.len);
    /* the page is small; a client that does not read it within 1 s loses it */
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (write(fd, hdr, (size_t)hl) == hl)
        for (size_t off = 0; off < b.len;) {
            ssize_t w = write(fd, b.p + off, b.len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
    free(b.p);
    drop_client(i);
}

void hakd_metrics_close(void) {
    while (nclients) drop_client(nclients - 1);
    if (unix_path[0]) unlink(unix_path);
}
