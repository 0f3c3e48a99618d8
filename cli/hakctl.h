/* hakctl.h — shared declarations of hakctl, the operator's tool.
 * One file per concept: hakctl.c (main, dispatch, usage), _fmt (human
 * numbers), _model (figures derived from counters), _target (opening a
 * process), _json, and one file per command group. */
#ifndef HAKCTL_H
#define HAKCTL_H

#include "hakmem_shm.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#define HAKCTL_VERSION "1.0.0"

/* Exit statuses: what a shell user expects. */
enum { HK_OK = 0, HK_ERR = 1, HK_USAGE = 2 };
/* Returned by option parsing after --help was printed: stop, exit 0
 * (hk_dispatch turns it into HK_OK). */
#define HK_HELPED 100

/* ------------------------------------------------------------ commands */
struct hk_cmd {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *synopsis;             /* arguments after the name */
    const char *summary;              /* one line for `hakctl --help` */
    const char *help;                 /* `hakctl CMD --help` body */
    const struct option *opts;        /* its options: parsing and completion */
    int pid_arg;                      /* first argument is a PID */
    int knob_args;                    /* later arguments are knob names */
};
extern const struct hk_cmd hk_cmds[];
const struct hk_cmd *hk_cmd_find(const char *name);
int hk_dispatch(int argc, char **argv);
extern int hk_json_default; /* --json given before the command */
extern int hk_in_shell;     /* running inside `hakctl shell` */

int hk_cmd_ps(int argc, char **argv);
int hk_cmd_stats(int argc, char **argv);
int hk_cmd_top(int argc, char **argv);
int hk_cmd_get(int argc, char **argv);
int hk_cmd_set(int argc, char **argv);
int hk_cmd_reset(int argc, char **argv);
int hk_cmd_trim(int argc, char **argv);
int hk_cmd_gc(int argc, char **argv);
int hk_cmd_shell(int argc, char **argv);
int hk_cmd_daemon(int argc, char **argv); /* hakctl_daemon.c */
/* Daemon-managed processes (a live hakmemd lease): a mark appended to a ps
 * row's text, and "managed_by" in its JSON. */
/* Appends "*" to a ps row's knob owners if a live hakmemd lease manages the
 * process; returns that daemon's pid (0: none), for the table's footnote. */
pid_t hk_daemon_mark(const struct hak_shm_view *v, char *buf, size_t n);
void hk_daemon_json(const struct hak_shm_view *v, cJSON *o);

/* Messages: "hakctl: ..." on stderr. hk_usage also points at --help and
 * returns HK_USAGE; hk_help prints a command's help on stdout. */
void hk_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int hk_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int hk_help(const char *cmd);
/* Shared option handling: returns -1 to go on, else an exit status. */
int hk_bad_option(const char *cmd, int c, char **argv);

/* Ctrl-C: loops (--watch, top) stop when this is set. */
extern volatile sig_atomic_t hk_interrupted;
void hk_catch_sigint(void);
/* A segment is a file its owner may truncate while we read it: the read
 * then raises SIGBUS. hk_guard runs fn(arg) so that such a fault returns -1
 * instead (0 if fn ran through); outside any guard the fault ends hakctl
 * with a message (exit 1), never a crash. */
int hk_guard(void (*fn)(void *), void *arg);
void hk_catch_sigbus(void);
int hk_sleep(double sec); /* 1 if interrupted */

/* ----------------------------------------------------------- arguments */
/* The one integer grammar (hakctl_args.c): 0, HK_NUM_SYNTAX or HK_NUM_RANGE
 * (outside lo..hi, overflow included). */
enum { HK_NUM_SYNTAX = -1, HK_NUM_RANGE = -2 };
int hk_num_parse(const char *s, long long lo, long long hi, long long *out);
/* The same, with a usage message naming what and the range: HK_OK or HK_USAGE. */
int hk_parse_int(const char *cmd, const char *what, const char *s, long long lo, long long hi,
                 long long *out);
int hk_parse_pid(const char *cmd, const char *s, pid_t *pid);  /* HK_OK or HK_USAGE */
int hk_parse_sec(const char *cmd, const char *s, double *sec); /* HK_OK or HK_USAGE */
#define HK_CLASS_ARG_MAX 1023 /* --class: then checked against the process's classes */
/* getopt_long over a table below (short letters = val); opterr off. */
int hk_getopt(int argc, char **argv, const struct option *lo);
extern const struct option hk_opts_ps[], hk_opts_stats[], hk_opts_top[], hk_opts_get[],
    hk_opts_set[], hk_opts_reset[], hk_opts_trim[], hk_opts_gc[], hk_opts_daemon[],
    hk_opts_help_only[];

/* -------------------------------------------------------------- target */
int hk_open(pid_t pid, int writable, struct hak_shm_view *v);          /* HK_OK or HK_ERR */
const char *hk_exe(const struct hak_shm_view *v, char *buf, size_t n); /* cleaned, for text */
const char *hk_user(uid_t uid, char *buf, size_t n);
/* "process gone", "pid reused", "exec'd without hakmem" (enum hak_shm_stale) */
const char *hk_stale_why(int stale);

/* --------------------------------------------------------------- model */
struct hk_sample {
    double t; /* CLOCK_MONOTONIC seconds */
    int ncls; /* slab classes; index ncls is the large class */
    uint32_t *size;
    uint64_t (*ctr)[HAK_NUM_CTRS]; /* [ncls + 1] */
    uint64_t proc[HAK_NUM_PROCS];
};
struct hk_cls {
    int cls;
    uint32_t size; /* 0 for the large class */
    const uint64_t *c;
    uint64_t live, tcache, cached; /* blocks, blocks, bytes */
    double hit;                    /* fast-path hit %, -1 if no allocations */
    double alloc_s, free_s;        /* 0 without a previous sample */
};
struct hk_figs {
    int ncls;
    struct hk_cls *cl; /* [ncls + 1] */
    uint64_t allocs, frees, in_use, cached, large_in_use;
    double hit, alloc_s, free_s, ops_s, interval;
};
int hk_sample_take(const struct hak_shm_view *v, struct hk_sample *s);
void hk_sample_free(struct hk_sample *s);
int hk_derive(const struct hk_sample *prev, const struct hk_sample *cur, struct hk_figs *f);
void hk_figs_free(struct hk_figs *f);
int hk_cls_active(const struct hk_cls *c);
void hk_owner_summary(const struct hak_shm_view *v, char *buf, size_t n);
const char *hk_owner_name(uint32_t owner);
double hk_uptime(const struct hak_shm_view *v); /* seconds, -1 unknown */
double hk_mono(void);

/* ------------------------------------------------------------- formats */
const char *hk_num(char *buf, uint64_t n);         /* 1234, 12.3k, 1.2M   (<= 5) */
const char *hk_rate(char *buf, double r);          /* 0, 3.5, 12.3k       (<= 5) */
const char *hk_bytes(char *buf, uint64_t b);       /* 34.5 MiB */
const char *hk_bytes_short(char *buf, uint64_t b); /* 34.5M               (<= 5) */
const char *hk_dur(char *buf, double sec);         /* 42s, 3m12s, 2h05m, 3d04h */
const char *hk_pct(char *buf, double p);           /* 99.9, 100, -        (<= 4) */
const char *hk_ago(char *buf, uint64_t realtime_ns);
/* Text another process wrote (segment names and reasons, /proc comm), made
 * safe to print: printable characters only, the rest as \xHH (hakctl_fmt.c).
 * json: for a JSON string (UTF-8 always passes), else for the terminal. */
void hk_clean(char *dst, size_t n, const char *src, size_t srcmax, int json);
extern int hk_utf8_locale; /* the terminal's locale is UTF-8 (set in main) */
int hk_tty(void);
/* Words separated by two spaces, wrapped before column 80. */
struct hk_line {
    int col, words;
};
void hk_line_add(struct hk_line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hk_line_end(struct hk_line *l);
#define HK_NB 24 /* size of a buffer for the functions above */

/* ---------------------------------------------------------------- json */
void hk_json_print(cJSON *j, int compact);         /* prints and deletes */
cJSON *hk_json_proc(const struct hak_shm_view *v); /* pid, exe, exe_path, abi, uptime */
cJSON *hk_json_figs_totals(const struct hk_figs *f, const struct hk_sample *s);
cJSON *hk_json_cls(const struct hk_cls *c, const struct hak_shm_view *v);

/* --------------------------------------------------------------- knobs */
const char *hk_knob_list(char *buf, size_t n); /* "refill_count fast_cap ..." */

/* ----------------------------------------------------------- processes */
enum hk_state { HK_LIVE, HK_STALE, HK_GONE, HK_BAD };
struct hk_proc {
    pid_t pid;
    uid_t uid;
    int state; /* enum hk_state; HK_BAD: could not attach (err, why) */
    int err;   /* hak_shm_err of the failed attach */
    int stale; /* enum hak_shm_stale: why, for HK_STALE and HK_GONE */
    char why[256];
    char exe[64];     /* raw, as the segment or /proc has it: hk_clean to print */
    const char *path; /* during the scan only */
    struct hak_shm_view v;
    struct hk_sample prev, cur;
    int nsamples;
    struct hk_figs f; /* from prev to cur (rates once nsamples >= 2) */
};
/* All segments in /dev/shm, attached read-only, one sample taken. */
int hk_procs_scan(struct hk_proc **out, int *n);
void hk_procs_free(struct hk_proc *p, int n);
void hk_procs_sample(struct hk_proc *p, int n); /* next sample, figures */
int hk_procs_live(const struct hk_proc *p, int n);
cJSON *hk_json_ps_entry(const struct hk_proc *p);

#endif
