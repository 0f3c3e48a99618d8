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

/* ------------------------------------------------------- foreign text
 * Names and reasons in a segment, and /proc/PID/comm, are written by
 * another process, maybe an attacker's: only printable characters may reach
 * the user's terminal. Everything else is written as \xHH, one per byte (a
 * backslash as \\): C0 controls and DEL; C1 controls, also in their UTF-8
 * form \xc2\x80..\xc2\x9f, which terminals obey; malformed or overlong
 * UTF-8 and surrogates; and the invisible characters that reorder or hide
 * text (bidi controls, zero-width, tags). Other UTF-8 passes when the
 * terminal's locale is UTF-8 and into JSON (which is UTF-8), else every
 * byte above 0x7f is escaped. dst gets whole characters or escapes only. */

int hk_utf8_locale;

/* Length of the valid UTF-8 sequence at s (max bytes left), with its code
 * point, or 0 if malformed. */
static size_t utf8_len(const unsigned char *s, size_t max, uint32_t *cp) {
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (s[0] < 0xc2 || s[0] > 0xf4 || n > max) return 0;
    uint32_t c = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return n;
}

static int printable_cp(uint32_t c) {
    return !(c < 0xa0 ||                     /* C1 */
             (c >= 0x200b && c <= 0x200f) || /* zero-width, LRM, RLM */
             (c >= 0x2028 && c <= 0x202e) || /* line/paragraph separators, bidi */
             (c >= 0x2060 && c <= 0x206f) || /* word joiner, invisible, bidi isolates */
             c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || (c & 0xfffe) == 0xfffe ||
             (c >= 0xe0000 && c <= 0xe007f)); /* tags */
}

void hk_clean(char *dst, size_t n, const char *src, size_t srcmax, int json) {
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0, len = strnlen(src, srcmax);
    if (!n) return;
    while (i < len) {
        char unit[20];
        size_t u = 0, k = 1;
        uint32_t cp = 0;
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            if (s[i] == '\\') unit[u++] = '\\';
            unit[u++] = (char)s[i];
        } else if (s[i] >= 0x80 && (json || hk_utf8_locale) &&
                   (k = utf8_len(s + i, len - i, &cp)) && printable_cp(cp)) {
            memcpy(unit, s + i, k);
            u = k;
        } else {
            if (!k) k = 1;
            for (size_t j = 0; j < k; j++) u += (size_t)snprintf(unit + u, 5, "\\x%02x", s[i + j]);
        }
        if (o + u + 1 > n) break;
        memcpy(dst + o, unit, u);
        o += u;
        i += k;
    }
    dst[o] = 0;
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
