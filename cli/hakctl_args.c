/* hakctl_args.c — the one grammar for numbers on the command line.
 *
 * Every integer argument (pid, --class, --iterations, knob values) goes
 * through hk_num_parse: decimal digits only, a '-' only where the range allows
 * negatives, no '+', no blanks, no base prefixes (010 is ten, not eight),
 * overflow refused. Fixed ranges are inclusive and named in the message:
 * "--iterations takes a whole number in 1..2147483647, not 'x'". */
#include "hakctl.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int hk_num_parse(const char *s, long long lo, long long hi, long long *out) {
    const char *p = s;
    int neg = 0;
    unsigned long long x = 0, lim;
    if (!s || !*s) return HK_NUM_SYNTAX;
    if (*p == '-' && lo < 0) neg = 1, p++;
    if (*p < '0' || *p > '9') return HK_NUM_SYNTAX;
    /* the magnitude may reach 2^63 for LLONG_MIN */
    lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    int over = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return HK_NUM_SYNTAX;
        unsigned d = (unsigned)(*p - '0');
        if (x > (lim - d) / 10)
            over = 1; /* keep scanning: "9999x" is a syntax error, not a range one */
        else
            x = x * 10 + d;
    }
    if (over) return HK_NUM_RANGE;
    long long v =
        neg ? (x == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)x) : (long long)x;
    if (v < lo || v > hi) return HK_NUM_RANGE;
    *out = v;
    return 0;
}

int hk_parse_int(const char *cmd, const char *what, const char *s, long long lo, long long hi,
                 long long *out) {
    if (hk_num_parse(s, lo, hi, out) == 0) return HK_OK;
    return hk_usage(cmd, "%s takes a whole number in %lld..%lld, not '%s'", what, lo, hi,
                    s ? s : "");
}

int hk_parse_pid(const char *cmd, const char *s, pid_t *pid) {
    long long x;
    if (!s) return hk_usage(cmd, "missing PID");
    if (hk_num_parse(s, 1, INT_MAX, &x) != 0)
        return hk_usage(cmd, "'%s' is not a process id (a whole number in 1..%d)", s, INT_MAX);
    *pid = (pid_t)x;
    return HK_OK;
}

/* Seconds: digits, optionally a '.' and more digits (no sign, exponent,
 * blanks, inf or nan), 0 < SEC <= 86400. */
int hk_parse_sec(const char *cmd, const char *s, double *sec) {
    size_t i = strspn(s, "0123456789"), j = 0;
    if (s[i] == '.') j = strspn(s + i + 1, "0123456789");
    int ok = (i || j) && s[i + (s[i] == '.') + j] == 0 && (s[i] != '.' || j);
    double x = ok ? strtod(s, NULL) : 0;
    if (!ok || !(x > 0) || x > 86400)
        return hk_usage(cmd, "'%s' is not a number of seconds (0 < SEC <= 86400)", s);
    *sec = x;
    return HK_OK;
}

/* getopt_long over a command's option table, the table completion offers
 * (hk_cmd.opts): the short letters are the entries' val. */
int hk_getopt(int argc, char **argv, const struct option *lo) {
    char shorts[64] = ":";
    size_t n = 1;
    for (const struct option *o = lo; o->name && n + 3 < sizeof shorts; o++) {
        shorts[n++] = (char)o->val;
        if (o->has_arg == required_argument) shorts[n++] = ':';
    }
    shorts[n] = 0;
    opterr = 0;
    return getopt_long(argc, argv, shorts, lo, NULL);
}

/* Option tables, one per command: parsing and completion read the same. */
#define OPT_HELP                                                                                   \
    { "help", no_argument, 0, 'h' }
#define OPT_JSON                                                                                   \
    { "json", no_argument, 0, 'j' }
#define OPT_END                                                                                    \
    { 0, 0, 0, 0 }
const struct option hk_opts_ps[] = {
    OPT_JSON, {"interval", required_argument, 0, 'i'}, OPT_HELP, OPT_END};
const struct option hk_opts_stats[] = {OPT_JSON,
                                       {"all", no_argument, 0, 'a'},
                                       {"watch", required_argument, 0, 'w'},
                                       {"interval", required_argument, 0, 'i'},
                                       OPT_HELP,
                                       OPT_END};
const struct option hk_opts_top[] = {{"sort", required_argument, 0, 's'},
                                     {"interval", required_argument, 0, 'i'},
                                     {"iterations", required_argument, 0, 'n'},
                                     OPT_JSON,
                                     OPT_HELP,
                                     OPT_END};
const struct option hk_opts_get[] = {OPT_JSON,
                                     {"classes", no_argument, 0, 'C'},
                                     {"class", required_argument, 0, 'c'},
                                     OPT_HELP,
                                     OPT_END};
const struct option hk_opts_set[] = {
    {"class", required_argument, 0, 'c'}, {"reason", required_argument, 0, 'r'}, OPT_HELP, OPT_END};
const struct option hk_opts_reset[] = {{"class", required_argument, 0, 'c'}, OPT_HELP, OPT_END};
const struct option hk_opts_trim[] = {{"wait", required_argument, 0, 'w'}, OPT_HELP, OPT_END};
const struct option hk_opts_gc[] = {{"dry-run", no_argument, 0, 'n'},
                                    {"verbose", no_argument, 0, 'v'},
                                    OPT_JSON,
                                    OPT_HELP,
                                    OPT_END};
const struct option hk_opts_daemon[] = {
    {"status", required_argument, 0, 's'}, OPT_JSON, OPT_HELP, OPT_END};
const struct option hk_opts_help_only[] = {OPT_HELP, OPT_END};
