/* hakctl_fmt.c — numbers people can read, in columns that fit 80 wide.
 * Every function writes into a caller buffer of HK_NB bytes and returns it,
 * so several can appear in one printf. Table widths rely on the documented
 * maximum lengths (hakctl.h). */
#include "hakctl.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Scales v by step until it fits 3 digits; one decimal below 100. */
static const char *scaled(char *buf, double v, double step, const char *const *units,
                          const char *sep) {
    int u = 0;
    while (v >= step && units[u + 1]) v /= step, u++;
    if (v < 99.95)
        snprintf(buf, HK_NB, "%.1f%s%s", v, sep, units[u]);
    else if (v < 999.5 || !units[u + 1])
        snprintf(buf, HK_NB, "%.0f%s%s", v, sep, units[u]);
    else /* 999.7k rounds to 1000k: show the next unit */
        snprintf(buf, HK_NB, "%.1f%s%s", v / step, sep, units[u + 1]);
    return buf;
}

static const char *const dec_units[] = {"", "k", "M", "G", "T", "P", "E", NULL};

const char *hk_num(char *buf, uint64_t n) {
    if (n < 10000) {
        snprintf(buf, HK_NB, "%llu", (unsigned long long)n);
        return buf;
    }
    return scaled(buf, (double)n, 1000, dec_units, "");
}

const char *hk_rate(char *buf, double r) {
    if (!(r > 0)) return strcpy(buf, "0");
    if (r < 9.95) {
        snprintf(buf, HK_NB, "%.1f", r);
        return buf;
    }
    if (r < 9999.5) {
        snprintf(buf, HK_NB, "%.0f", r);
        return buf;
    }
    return scaled(buf, r, 1000, dec_units, "");
}

static const char *const iec_units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", NULL};
static const char *const iec_short[] = {"B", "K", "M", "G", "T", "P", "E", NULL};

const char *hk_bytes(char *buf, uint64_t b) {
    if (b < 1024) {
        snprintf(buf, HK_NB, "%llu B", (unsigned long long)b);
        return buf;
    }
    return scaled(buf, (double)b, 1024, iec_units, " ");
}

const char *hk_bytes_short(char *buf, uint64_t b) {
    if (b < 1024) {
        snprintf(buf, HK_NB, "%lluB", (unsigned long long)b);
        return buf;
    }
    return scaled(buf, (double)b, 1024, iec_short, "");
}

const char *hk_dur(char *buf, double sec) {
    if (!(sec >= 0)) return strcpy(buf, "-");
    unsigned long long s = (unsigned long long)sec;
    if (s < 60)
        snprintf(buf, HK_NB, "%llus", s);
    else if (s < 3600)
        snprintf(buf, HK_NB, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, HK_NB, "%lluh%02llum", s / 3600, s / 60 % 60);
    else
        snprintf(buf, HK_NB, "%llud%02lluh", s / 86400, s / 3600 % 24);
    return buf;
}

const char *hk_pct(char *buf, double p) {
    if (!(p >= 0)) return strcpy(buf, "-");
    if (p >= 99.95)
        snprintf(buf, HK_NB, "%.0f", p > 100 ? 100.0 : p);
    else
        snprintf(buf, HK_NB, "%.1f", p);
    return buf;
}

const char *hk_ago(char *buf, uint64_t ns) {
    struct timespec ts;
    if (!ns) return strcpy(buf, "-");
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec / 1e9, then = (double)ns / 1e9;
    if (then > now + 1) return strcpy(buf, "future");
    char d[HK_NB];
    snprintf(buf, HK_NB, "%s ago", hk_dur(d, now > then ? now - then : 0));
    return buf;
}

/* Strings from a segment are written by another process: never send its
 * control bytes (terminal escapes) to the user's terminal; JSON gets ASCII. */
void hk_clean(char *dst, size_t n, const char *src, size_t srcmax, int ascii) {
    size_t i = 0;
    for (; i + 1 < n && i < srcmax && src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c == 0x7f || (ascii && c >= 0x80)) ? '?' : (char)c;
    }
    if (n) dst[i] = 0;
}

int hk_tty(void) {
    return isatty(STDOUT_FILENO);
}

void hk_line_add(struct hk_line *l, const char *fmt, ...) {
    char w[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w, sizeof w, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (l->words && l->col + 2 + n > 79) {
        fputs("\n ", stdout); /* continuation lines are indented */
        l->col = 1;
        l->words = 0;
    }
    printf("%s%s", l->words ? "  " : "", w);
    l->col += (l->words ? 2 : 0) + n;
    l->words++;
}

void hk_line_end(struct hk_line *l) {
    if (l->col) putchar('\n');
    l->col = l->words = 0;
}
