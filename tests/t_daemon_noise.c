/* t_daemon_noise — the rollback guardrail's statistics (daemon/judge.c) on
 * tick series like those of a loaded 2-CPU machine, where one tick in a few
 * is disturbed by other jobs:
 *  - one disturbed tick after a harmless change does not roll it back (a mean
 *    of the window did: +35 % against a 3 % tolerance);
 *  - one disturbed tick before a harmful change does not inflate the noise
 *    so far that a 30 % loss passes (2 sigma of the ticks did: 60 %);
 *  - a steady 30 % loss is worse; a 2 % change within 3 % is kept; a
 *    threefold jump is the workload changing, not the change;
 *  - the noise of an even spread is about 2 sigma (normal noise, 5 %).
 * The same series through a mean / 2-sigma judge (the daemon's old one)
 * show what changed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "hakd.h"

static int fails;

static void check(int ok, const char *what) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    fails += !ok;
}

/* the old judge: mean of the window against the mean of the last 3 steady
 * ticks, tolerance max(3 %, 2 sigma / mean of up to 8 ticks) */
static int old_judge(const double *b, int nb, const double *a, int na) {
    double mb = 0, m = 0, v = 0, ma = 0;
    for (int i = 0; i < 3 && i < nb; i++) mb += b[i];
    mb /= nb < 3 ? nb : 3;
    for (int i = 0; i < nb; i++) m += b[i];
    m /= nb;
    for (int i = 0; i < nb; i++) v += (b[i] - m) * (b[i] - m);
    double noise = 2 * sqrt(v / nb) / m, tol = noise > 0.03 ? noise : 0.03;
    for (int i = 0; i < na; i++) ma += a[i];
    ma /= na;
    return ma > mb * (1 + tol) ? HAKD_WORSE : HAKD_KEEP;
}

static void show(const char *name, const double *b, int nb, const double *a, int na) {
    struct hakd_verdict v;
    hakd_judge(b, nb, a, na, 0.03, &v);
    printf("  %-28s before %.1f after %.1f noise %.1f%% tol %.1f%% -> %s (old judge: %s)\n", name,
           v.before, v.after, v.noise * 100, v.tol * 100,
           v.verdict == HAKD_WORSE  ? "worse"
           : v.verdict == HAKD_KEEP ? "keep"
                                    : "unclear",
           old_judge(b, nb, a, na) == HAKD_WORSE ? "worse" : "keep");
}

int main(void) {
    /* ns/op of steady ticks, newest first: about 40 +- 1 */
    const double steady[8] = {40.2, 39.6, 40.5, 39.8, 40.9, 39.3, 40.1, 40.6};
    const double spike_after[3] = {40.4, 96.0, 39.9}; /* harmless change, one disturbed tick */
    const double spike_before[8] = {40.2, 39.6, 88.0, 39.8, 40.9, 39.3, 40.1, 40.6};
    const double loss30[3] = {52.3, 51.8, 52.6}; /* a real 30 % loss */
    const double small[3] = {40.9, 41.1, 40.7};  /* +2 % */
    const double jump[3] = {150, 160, 155};      /* another workload */

    show("disturbed tick after", steady, 8, spike_after, 3);
    check(hakd_judge(steady, 8, spike_after, 3, 0.03, NULL) == HAKD_KEEP,
          "one disturbed tick after a harmless change: kept");
    check(old_judge(steady, 8, spike_after, 3) == HAKD_WORSE,
          "(the mean judge rolled that change back)");

    show("disturbed tick before", spike_before, 8, loss30, 3);
    check(hakd_judge(spike_before, 8, loss30, 3, 0.03, NULL) == HAKD_WORSE,
          "a 30 % loss after one disturbed tick before: worse");
    check(old_judge(spike_before, 8, loss30, 3) == HAKD_KEEP,
          "(the 2-sigma noise let that loss pass)");

    show("steady loss", steady, 8, loss30, 3);
    check(hakd_judge(steady, 8, loss30, 3, 0.03, NULL) == HAKD_WORSE, "a steady 30 % loss: worse");
    show("small change", steady, 8, small, 3);
    check(hakd_judge(steady, 8, small, 3, 0.03, NULL) == HAKD_KEEP, "+2 % within 3 %: kept");
    check(hakd_judge(steady, 8, jump, 3, 0.03, NULL) == HAKD_UNCLEAR,
          "a threefold jump: unclear (the workload changed)");
    check(hakd_judge(steady, 8, small, 3, 0.10, NULL) == HAKD_KEEP &&
              hakd_judge(steady, 8, loss30, 3, 0.40, NULL) == HAKD_KEEP,
          "the floor of the tolerance is honoured");

    /* noise of normal samples with sigma 5 % of the mean: about 10 % */
    double g[16];
    srand(7);
    double sum = 0;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < 16; i++) {
            double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = (rand() + 1.0) / (RAND_MAX + 2.0);
            g[i] = 100 + 5 * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        }
        sum += hakd_noise(g, 16);
    }
    printf("  noise of N(100, 5) over 16 ticks, mean of 200 trials: %.1f%%\n", sum / 200 * 100);
    check(sum / 200 > 0.07 && sum / 200 < 0.13, "noise of an even spread is about 2 sigma");
    check(hakd_noise(steady, 2) == 0 && hakd_median(steady, 0) == 0, "too few ticks: no estimate");
    double odd[3] = {3, 1, 2}, even[4] = {4, 1, 3, 2};
    check(hakd_median(odd, 3) == 2 && hakd_median(even, 4) == 2.5 && odd[0] == 3,
          "median (inputs left unsorted)");
    return fails ? 1 : 0;
}
