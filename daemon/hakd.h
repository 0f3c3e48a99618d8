/* hakd.h — what the parts of hakmemd share. Data flows one way:
 *   hakmemd.c (flags, loop, signals, sd_notify)
 *   -> discover.c (find, attach, detach, clean up segments)
 *   -> sample.c   (per-tick deltas: segment, /proc, BPF -> one record a process)
 *   -> policy.c   (the table of rules: signal -> action -> guardrail)
 *   -> apply.c    (the only writer of segments: knobs, trims, the lease)
 * beside them profile.c (learned settings per program), config.c,
 * metrics.c (Prometheus), status.c (the status file hakctl reads). */
#ifndef HAKD_H
#define HAKD_H

#include <stdint.h>
#include <sys/types.h>

#include "hakd_bpf.h"
#include "hakmem_shm.h"

#define HAKD_MAX_PROCS 500
#define HAKD_NCLS HAK_NUM_CSLOTS /* classes + the large class */
#define HAKD_HYST 3              /* ticks a signal must hold before acting */
#define HAKD_QUIET 3             /* ticks after a change before the next one */
#define HAKD_BLOCK 30            /* ticks a rolled-back step is not retried */
#define HAKD_MAX_KEEP 64         /* knob values a phase memory keeps */

/* ------------------------------------------------------------- logging */
enum { HAKD_ERR, HAKD_WARN, HAKD_INFO, HAKD_DEBUG };
extern int hakd_log_level;
void hakd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t hakd_now_ns(void); /* CLOCK_MONOTONIC */

/* -------------------------------------------------------------- config */
#define HAKD_MAX_PATTERNS 32
struct hakd_limit {
    int set;
    int64_t min, max;
};
struct hakd_config {
    int interval_ms;          /* tick */
    int lease_ms;             /* how long a knob outlives a silent daemon */
    int profile_save_s;       /* periodic profile save */
    int rescan_ms;            /* full /dev/shm + containers rescan */
    int idle_trim_ticks;      /* ticks at ~zero operations before a trim */
    int64_t cache_budget_mb;  /* all thread caches of all processes */
    int64_t memory_budget_mb; /* per process: cached memory priced above 80 % of it; 0 off */
    int max_procs;
    int n_include, n_exclude; /* fnmatch patterns on the exe name or path */
    char include[HAKD_MAX_PATTERNS][256], exclude[HAKD_MAX_PATTERNS][256];
    struct hakd_limit limit[HAK_NUM_KNOBS];
    char psi_path[256];   /* PSI memory file ("some avg10=") */
    char cgroup_dir[256]; /* memory.events/.high/.current of every process; "" its own */
};
void hakd_config_defaults(struct hakd_config *c);
/* 0, or -1 with a message naming the bad field in err. A missing file is an
 * error only if must_exist. */
int hakd_config_load(const char *path, int must_exist, struct hakd_config *c, char *err,
                     size_t errlen);
int hakd_config_wants(const struct hakd_config *c, const char *exe, const char *path);

/* -------------------------------------------------------------- sample */
enum {
    S_ALLOCS,
    S_FREES,
    S_ASLOW,
    S_FSLOW,
    S_REFILLS,
    S_FLUSHES,
    S_REMOTE,
    S_RBLK,
    S_FBLK,
    S_SPANBLK,
    S_PUBLISHED,
    S_N
};
struct hakd_raw {
    uint64_t t_ns;
    uint64_t ctr[S_N][HAKD_NCLS];
    uint64_t released, large_cached, threads;
    uint64_t minflt, cpu_ticks;
    struct hakd_bpf_stats bpf;
    int bpf_ok, valid;
};
/* One tick of one process, as rates per second. */
struct hakd_rec {
    int valid;
    double dt;
    double ops, cpu, minflt; /* ops/s, CPU seconds/s, minor faults/s */
    double faults, munmap_calls, munmap_bps, mmap_calls, madvise_calls; /* BPF (0 when off) */
    double released_bps, large_ops;
    double cls_ops[HAKD_NCLS], aslow[HAKD_NCLS], fslow[HAKD_NCLS]; /* miss ratios 0..1 */
    double refills[HAKD_NCLS], flushes[HAKD_NCLS], remote[HAKD_NCLS];
    double cached[HAKD_NCLS]; /* bytes now: thread caches + free span room */
    double cached_total, large_cached, remote_share, published;
    double remote_counted; /* remote frees / frees, as counted (remote_share estimates) */
    double threads;
    double obj;         /* the objective: CPU ns per operation, priced (policy.c) */
    int cg_high_events; /* memory.events "high" since last tick */
    double cg_near;     /* memory.current / memory.high, 0 unknown */
};
struct hakd_knobs_now { /* read from the segment each tick */
    int64_t val[HAK_NUM_KNOBS][HAK_NUM_CLASSES];
    uint8_t owner[HAK_NUM_KNOBS][HAK_NUM_CLASSES];
    uint8_t present[HAK_NUM_KNOBS];
};

/* ------------------------------------------------------ policy state */
struct hakd_kstate {    /* one knob (of one class) of one process */
    uint8_t quiet;      /* ticks left before this knob may change again */
    uint8_t blocked[2]; /* ticks left a step down (0) / up (1) is not retried */
};
struct hakd_change { /* one knob of the change set being judged */
    uint8_t knob, cls, rule;
    int64_t before, after;
    double signal; /* the rule's signal when it acted */
};
#define HAKD_SET_MAX 8
struct hakd_keep {
    uint8_t knob, cls;
    int64_t val;
};
struct hakd_phase_mem {
    char key[24];
    double best_obj;
    int n;
    struct hakd_keep keep[HAKD_MAX_KEEP];
};
#define HAKD_PHASES 8
#define HAKD_RULES_MAX 24
struct hakd_pstate {
    uint8_t streak[HAKD_RULES_MAX][HAK_NUM_CLASSES];
    struct hakd_kstate ks[HAK_NUM_KNOBS][HAK_NUM_CLASSES];
    int pending; /* ticks until the pending change set is judged; 0 none */
    struct hakd_change set[HAKD_SET_MAX];
    int nset;
    double noise;
    double before[8]; /* the objective of the ticks before the change, newest first */
    int nbefore;
    double after[HAKD_QUIET + 1]; /* and of the ticks after it */
    double cpu_after;             /* CPU seconds since the change */
    int n_after;
    double hist[8]; /* objective of recent steady ticks, newest first */
    int nhist, idle_ticks, trimmed;
    char phase[24], phase_next[24], phase_prev[24];
    int phase_ticks;
    struct hakd_phase_mem phases[HAKD_PHASES];
    int nphases;
    int profile_applied;
    char first_phase[24]; /* the phase the process started in (profiles) */
    /* what the pressure rules lowered, to give back once pressure is gone */
    struct hakd_keep relief[HAKD_MAX_KEEP];
    int nrelief, calm_ticks;
};

/* ------------------------------------------------------------ process */
struct hakd_proc {
    pid_t pid;
    struct hak_shm_view view;
    char path[128]; /* the segment file */
    dev_t dev;
    ino_t ino;           /* the segment file's identity, for a safe removal */
    int pidfd;           /* readable when the process exits; -1 */
    int stat_fd;         /* /proc/PID/stat, kept open; -1 */
    int managed;         /* config includes it, and no other daemon holds its lease */
    pid_t other_daemon;  /* while another hakmemd holds the lease: its pid (apply.c) */
    uint64_t lease_mine; /* lease_ns this daemon last wrote; 0: none since it yielded */
    int dead, broken;
    char exe[64], exe_path[256], key[96]; /* key: the program, for profiles */
    char cgroup[256];
    uint64_t cg_high_prev;
    struct hakd_raw raw[2];
    int cur; /* raw[cur] is the latest */
    struct hakd_rec rec;
    struct hakd_knobs_now knobs;
    uint64_t knob_gen; /* the segment's knob_gen when knobs were read */
    int knobs_ok;      /* every value in its compiled range: ready to tune */
    struct hakd_pstate ps;
    uint64_t decisions;
};

struct hakd_state {
    struct hakd_config cfg;
    struct hakd_proc *procs[HAKD_MAX_PROCS];
    int nprocs;
    int dry_run, once, bpf_on;
    char bpf_why[256];
    const char *state_dir, *status_path;
    double psi_some10; /* /proc/pressure/memory some avg10, % */
    uint64_t ticks, decisions_total, removed_total, attach_total, detach_total, errors_total;
    uint64_t decision_times[256]; /* ring of recent decision times, for "last minute" */
    unsigned ndt;
    uint64_t rule_count[HAKD_RULES_MAX];
    uint64_t started_ns;
    pid_t predecessor;        /* the gone daemon whose status file this one took over, or 0 */
    uint32_t predecessor_tag; /* its lease tag (0: its status file had none) */
    uint32_t lease_tag;       /* drawn at start, never 0: this daemon in a lease (apply.c) */
};

/* ------------------------------------------------------------ discover */
int hakd_discover_open(struct hakd_state *st); /* inotify fd or -1 */
/* Handles inotify events / a rescan (when due or forced) and exits. */
void hakd_discover_tick(struct hakd_state *st, int force_rescan);
void hakd_discover_inotify(struct hakd_state *st);
void hakd_discover_exit(struct hakd_state *st, pid_t pid); /* BPF / pidfd said it exited */
void hakd_discover_reap(struct hakd_state *st);            /* detach and clean up the dead */
void hakd_discover_close(struct hakd_state *st);
void hakd_discover_forget(void); /* config reloaded: judge every file again */
/* SIGBUS guard around reads/writes of a segment: 0 normally, nonzero when a
 * truncated segment faulted (the process is then marked broken). */
#include <setjmp.h>
extern __thread sigjmp_buf *hakd_bus_jmp;
void hakd_bus_install(void);

/* -------------------------------------------------------------- sample */
void hakd_segment_lost(struct hakd_state *st, struct hakd_proc *p); /* SIGBUS reading it */
void hakd_sample(struct hakd_state *st, struct hakd_proc *p);
double hakd_read_psi(const char *path); /* "some avg10" of a PSI file, %; 0 unreadable */
/* share of frees that freed another thread's block (sample.c explains) */
double hakd_remote_share(double frees, double flushed, double remote);

/* -------------------------------------------------------------- policy */
struct hakd_decision {
    struct hakd_proc *proc;
    int rule;      /* index in the table; -1 profile, -2 phase, -3 rollback, -4 relief */
    int knob, cls; /* knob -1: trim request */
    int64_t from, to;
    char reason[HAK_SHM_REASON_MAX];
};
#define HAKD_MAX_DECISIONS 1024
int hakd_policy(struct hakd_state *st, struct hakd_decision *d, int max);
const char *hakd_rule_name(int rule);
int hakd_rule_count(void);
void hakd_policy_seed(struct hakd_proc *p, const struct hakd_phase_mem *ph, int n);

/* --------------------------------------------------------------- judge */
/* Robust statistics of the objective (judge.c): median, noise (2 x 1.4826
 * x MAD / median), and the verdict on a change: the median of the ticks
 * after it against the median of the ticks before, with a tolerance of the
 * noise of the ticks before, at least min_tol. */
enum { HAKD_KEEP = 0, HAKD_WORSE = 1, HAKD_UNCLEAR = -1 };
struct hakd_verdict {
    int verdict;
    double before, after, noise, tol;
};
double hakd_median(const double *v, int n);
double hakd_noise(const double *v, int n);
int hakd_judge(const double *before, int nb, const double *after, int na, double min_tol,
               struct hakd_verdict *out);

/* --------------------------------------------------------------- apply */
/* Writes the decisions (nothing with dry_run), renews leases. Returns how
 * many took effect. */
int hakd_apply(struct hakd_state *st, struct hakd_decision *d, int n);
void hakd_apply_claims(struct hakd_state *st); /* one daemon a process: before sampling */
void hakd_apply_leases(struct hakd_state *st);
void hakd_apply_release(struct hakd_state *st); /* at exit: leases end now */

/* ------------------------------------------------------------- profile */
/* Program key (exe path + build id or content hash) of a process. */
void hakd_profile_key(pid_t pid, const char *exe_path, char *key, size_t n);
/* Loads the profile of p's program into its phase memory and emits the
 * start setting as decisions. Returns decisions written, -1 rejected. */
int hakd_profile_load(struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d, int max);
int hakd_profile_save(struct hakd_state *st, const struct hakd_proc *p);
void hakd_profile_save_all(struct hakd_state *st);

/* ------------------------------------------------------ metrics, status */
int hakd_metrics_open(const char *addr, char *err, size_t n); /* listening fd */
void hakd_metrics_accept(struct hakd_state *st, int lfd);
void hakd_metrics_close(void);
int hakd_metrics_fds(int *fds, int max); /* client fds to poll */
void hakd_metrics_serve(struct hakd_state *st, int fd);
void hakd_status_write(struct hakd_state *st, int up); /* up 0: stopping */
/* the gone daemon named in it: pid (0: none or alive) and lease tag */
void hakd_status_predecessor(const char *path, pid_t *pid, uint32_t *tag);
/* processes this daemon manages; *others: those another daemon's lease holds */
int hakd_count_managed(const struct hakd_state *st, int *others);

#endif
