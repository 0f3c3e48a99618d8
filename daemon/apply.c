/* apply.c — the only code in hakmemd that writes a segment: knob values
 * (through hak_shm_knob_set, owner daemon, with the reason hakctl get shows),
 * trim requests, and the lease. With --dry-run it logs and writes nothing.
 *
 * Rate limits: policy.c proposes at most 16 changes a process a tick and
 * rests each knob HAKD_QUIET ticks; here at most HAKD_WRITES_PER_TICK writes
 * go out a tick in all, so a thousand processes changing phase at once cost
 * a bounded amount of work. Every write runs under the SIGBUS guard. */
#include "hakd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HAKD_WRITES_PER_TICK 256

static void note_decision(struct hakd_state *st, struct hakd_decision *x) {
    st->decision_times[st->ndt++ % 256] = hakd_now_ns();
    st->decisions_total++;
    x->proc->decisions++;
    if (x->rule >= 0 && x->rule < HAKD_RULES_MAX) st->rule_count[x->rule]++;
}

/* One line a decision: the log, and stdout too with --once. */
static void say(const struct hakd_state *st, const struct hakd_decision *x) {
    const struct hakd_proc *p = x->proc;
    char what[160];
    if (x->knob < 0)
        snprintf(what, sizeof what, "trim");
    else if (hak_knob_defs[x->knob].scope == HAK_SCOPE_CLASS)
        snprintf(what, sizeof what, "%s[%d] %lld -> %lld", hak_knob_defs[x->knob].name, x->cls,
                 (long long)x->from, (long long)x->to);
    else
        snprintf(what, sizeof what, "%s %lld -> %lld", hak_knob_defs[x->knob].name,
                 (long long)x->from, (long long)x->to);
    hakd_log(HAKD_INFO, "%spid %d (%s): %s [%s] %s", st->dry_run ? "dry-run: " : "", p->pid, p->exe,
             what, hakd_rule_name(x->rule), x->reason);
    if (st->once)
        printf("pid %d (%s): %s [%s] %s\n", p->pid, p->exe, what, hakd_rule_name(x->rule),
               x->reason);
}

/* One write, guarded. 0 done, -1 refused or failed (logged). */
static int write_one(struct hakd_state *st, struct hakd_decision *x) {
    struct hakd_proc *p = x->proc;
    sigjmp_buf jb;
    volatile int rc = 0;
    if (sigsetjmp(jb, 0)) {
        hakd_bus_jmp = NULL;
        hakd_log(HAKD_WARN, "pid %d: segment truncated under us while writing", p->pid);
        p->broken = 1;
        return -1;
    }
    hakd_bus_jmp = &jb;
    if (x->knob < 0) {
        hak_shm_request_trim(&p->view);
    } else {
        /* a person may have pinned it since the sample: the set looks
         * again under the segment's writer lock (HAK_SHM_PINNED) */
        rc = hak_shm_knob_set(&p->view, x->knob, x->cls, x->to, HAK_OWNER_DAEMON, x->reason);
    }
    hakd_bus_jmp = NULL;
    if (rc == HAK_SHM_PINNED) {
        hakd_log(HAKD_INFO, "pid %d: %s[%d] is pinned now (env or manual): left alone", p->pid,
                 hak_knob_defs[x->knob].name, x->cls);
        return -1;
    }
    if (rc != HAK_SHM_OK) {
        hakd_log(HAKD_WARN, "pid %d: cannot set %s[%d]=%lld: %s", p->pid,
                 hak_knob_defs[x->knob].name, x->cls, (long long)x->to,
                 rc == -ERANGE ? "out of the process's range" : "segment refused the write");
        st->errors_total++;
        return -1;
    }
    return 0;
}

int hakd_apply(struct hakd_state *st, struct hakd_decision *d, int n) {
    int done = 0;
    for (int i = 0; i < n; i++) {
        struct hakd_decision *x = &d[i];
        if (x->proc->broken || x->proc->dead) continue;
        if (i >= HAKD_WRITES_PER_TICK) {
            hakd_log(HAKD_DEBUG, "rate limit: %d decisions deferred to later ticks", n - i);
            break;
        }
        if (!st->dry_run && write_one(st, x) != 0) continue;
        say(st, x);
        note_decision(st, x);
        done++;
    }
    return done;
}

static void lease_all(struct hakd_state *st, uint64_t ms) {
    pid_t me = getpid();
    for (int i = 0; i < st->nprocs; i++) {
        struct hakd_proc *p = st->procs[i];
        if (!p->managed || p->dead || p->broken) continue;
        sigjmp_buf jb;
        if (sigsetjmp(jb, 0)) {
            hakd_bus_jmp = NULL;
            p->broken = 1;
            continue;
        }
        hakd_bus_jmp = &jb;
        uint64_t until = 0;
        /* ENOENT: an ABI 1.0 segment */
        if (hak_shm_lease_renew(&p->view, me, st->lease_tag, ms, &until) == HAK_SHM_OK)
            p->lease_mine = until;
        hakd_bus_jmp = NULL;
    }
}

/* One daemon a process. A running lease this daemon did not write (each
 * renewal writes a lease_ns of its own) means another hakmemd manages the
 * process: one started by hand beside the service, a container's own
 * beside the host's, which finds the container's processes too. Two
 * managing one process would undo each other's knobs every tick, so the
 * later one leaves it alone (not managed: no decisions, no lease, no
 * profile) while that lease runs, and takes it when the lease runs out
 * (the other stopped, or died: a lease_ms later). Two that claimed it in
 * the same moment, each having written before seeing the other's lease,
 * settle it by pid, then tag: the lower keeps it. A daemon is its pid and
 * its tag together: a copy of a segment it manages (a fork child's)
 * carries both, and another daemon with the same pid (in another pid
 * namespace) has another tag. The leases of this daemon's own
 * predecessor (same status file, gone: a crash and restart) are taken over
 * at once. A --dry-run daemon writes nothing, so it neither holds a lease
 * nor yields: it says what it would do. */
static void claim(const struct hakd_state *st, struct hakd_proc *p) {
    pid_t other = 0, me = getpid();
    uint32_t tag = 0;
    uint64_t until = 0;
    int live = hak_shm_lease_read(&p->view, &other, &tag, &until);
    int ours = other == me && tag == st->lease_tag;
    int foreign = live == 1 && until != p->lease_mine && !ours;
    if (foreign && p->lease_mine && (other > me || (other == me && tag > st->lease_tag)))
        foreign = 0; /* a tie: the lower keeps it */
    if (foreign && other == st->predecessor &&
        (!st->predecessor_tag || tag == st->predecessor_tag)) {
        if (p->lease_mine == 0)
            hakd_log(HAKD_INFO, "pid %d (%s): taking over the lease of hakmemd %d, gone before me",
                     p->pid, p->exe, (int)other);
        foreign = 0;
    }
    if (foreign) {
        if (p->managed || p->other_daemon != other)
            hakd_log(HAKD_INFO,
                     "pid %d (%s): managed by another hakmemd (pid %d); left alone while its "
                     "lease runs",
                     p->pid, p->exe, (int)other);
        p->managed = 0;
        p->other_daemon = other;
        p->lease_mine = 0;
    } else if (!p->managed) {
        hakd_log(HAKD_INFO, "pid %d (%s): the lease of hakmemd %d ran out; managing it", p->pid,
                 p->exe, (int)p->other_daemon);
        p->managed = 1;
        p->other_daemon = 0;
    }
}

void hakd_apply_claims(struct hakd_state *st) {
    if (st->dry_run) return;
    for (int i = 0; i < st->nprocs; i++) {
        struct hakd_proc *p = st->procs[i];
        if (p->dead || p->broken) continue;
        sigjmp_buf jb;
        if (sigsetjmp(jb, 0)) {
            hakd_bus_jmp = NULL;
            hakd_segment_lost(st, p);
            continue;
        }
        hakd_bus_jmp = &jb;
        claim(st, p);
        hakd_bus_jmp = NULL;
    }
}

void hakd_apply_leases(struct hakd_state *st) {
    if (!st->dry_run) lease_all(st, (uint64_t)st->cfg.lease_ms);
}

/* Stopping: the leases end now, so every process hands the daemon's knobs
 * back to their defaults at its next slow path. */
void hakd_apply_release(struct hakd_state *st) {
    if (!st->dry_run) lease_all(st, 0);
}
