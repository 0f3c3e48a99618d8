/* judge.c — is a change worse than the noise? The rollback guardrail's
 * statistics, robust to the odd tick: on a shared machine one tick in a few
 * is disturbed (the process was descheduled, another job thrashed the
 * caches), and a mean and standard deviation follow that one tick. Here the
 * level is a median and the spread a median absolute deviation, so one bad
 * tick among the recent ones moves neither: a load spike in the window after
 * a change does not roll it back, and a spike before it does not inflate
 * the noise so much that a real loss passes as noise. */
#include "hakd.h"

#include <string.h>

#define JUDGE_MAX 16

static void sort(double *v, int n) { /* insertion sort: n <= 16 */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

double hakd_median(const double *v, int n) {
    double s[JUDGE_MAX];
    if (n <= 0) return 0;
    if (n > JUDGE_MAX) n = JUDGE_MAX;
    memcpy(s, v, (size_t)n * sizeof *s);
    sort(s, n);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Relative noise: 2 x 1.4826 x MAD / median (about 2 sigma for normal
 * noise, without the outliers' weight); 0 below 3 values. */
double hakd_noise(const double *v, int n) {
    double dev[JUDGE_MAX];
    if (n < 3) return 0;
    if (n > JUDGE_MAX) n = JUDGE_MAX;
    double m = hakd_median(v, n);
    if (m <= 0) return 0;
    for (int i = 0; i < n; i++) dev[i] = v[i] > m ? v[i] - m : m - v[i];
    return 2 * 1.4826 * hakd_median(dev, n) / m;
}

int hakd_judge(const double *before, int nb, const double *after, int na, double min_tol,
               struct hakd_verdict *out) {
    struct hakd_verdict v = {0};
    v.before = hakd_median(before, nb);
    v.after = hakd_median(after, na);
    v.noise = hakd_noise(before, nb);
    v.tol = v.noise > min_tol ? v.noise : min_tol;
    if (v.before <= 0 || v.after <= 0 || v.after > 3 * v.before || 3 * v.after < v.before)
        v.verdict = HAKD_UNCLEAR; /* no knob step moves the cost threefold: the workload did */
    else
        v.verdict = v.after > v.before * (1 + v.tol) ? HAKD_WORSE : HAKD_KEEP;
    if (out) *out = v;
    return v.verdict;
}
