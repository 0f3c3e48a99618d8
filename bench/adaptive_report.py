#!/usr/bin/env python3
"""adaptive_report.py — reads the logs bench/adaptive.sh collected and
computes what the daemon is worth.

  adaptive_report.py score DEFAULTS.log CANDIDATE.log
      geometric mean over the busy phases of the candidate's ops/s over the
      defaults' (the search's objective), printed as one number
  adaptive_report.py report OUTDIR MD PNG
      docs/adaptive.md and its chart from OUTDIR/{meta,*.rN.log,*.rN.dlog}

Workload log format: see bench/adaptive.c. Daemon logs (.dlog): the daemon's
stderr, each line prefixed by the wall-clock time it was read."""
import datetime
import glob
import math
import os
import re
import statistics
import subprocess
import sys

BUSY = ["small", "prodcons", "mid", "big", "huge"]
PHASES = BUSY + ["idle"]
CONFIGS = [
    ("defaults", "hakmem defaults, no daemon"),
    ("fixed", "best fixed setting (search on seed 2)"),
    ("daemon", "hakmemd, no profile"),
    ("profile", "hakmemd, profile of the previous run"),
]
TICK = 0.5


def parse_wl(path):
    run = {"ticks": [], "bursts": [], "phases": [], "head": {}, "result": {}}
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "#":
                run["head"] = dict(x.split("=", 1) for x in w[2:] if "=" in x)
            elif w[0] == "tick":
                # ops per CPU second of the process: what other load on the
                # machine disturbs least (wall ops/s is kept for the tables)
                cpus = float(w[5])
                rate = float(w[3]) / cpus if cpus > 0.02 else 0.0
                run["ticks"].append((float(w[1]), w[2], rate, float(w[4])))
            elif w[0] == "burst":
                run["bursts"].append((float(w[1]), float(w[2])))
            elif w[0] == "phase":
                run["phases"].append((w[1], int(w[2]), float(w[3]), float(w[4]), int(w[5]),
                                      float(w[6])))
            elif w[0] == "RESULT":
                run["result"] = {k: float(v) for k, v in (x.split("=") for x in w[1:])}
    if not run["result"]:
        raise SystemExit(f"adaptive_report: {path}: no RESULT line (the workload did not finish)")
    return run


def phase_rates(run, wall=False):
    """ops per CPU second (or per wall second) per phase, all occurrences"""
    ops, secs = {}, {}
    for name, _c, t0, t1, n, cpu in run["phases"]:
        ops[name] = ops.get(name, 0) + n
        secs[name] = secs.get(name, 0) + ((t1 - t0) if wall else cpu)
    return {p: ops[p] / secs[p] for p in ops if secs[p] > 0}


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def score(base, cand):
    rb, rc = phase_rates(base), phase_rates(cand)
    return geomean([rc[p] / rb[p] for p in BUSY if rb.get(p) and p in rc])


def occurrences(run):
    """(phase, cycle, start, end, [(t, ops_s, rss)]) per phase run"""
    out = []
    for name, cyc, t0, t1, _n, _cpu in run["phases"]:
        ticks = [(t, o, r) for t, p, o, r in run["ticks"] if p == name and t0 < t <= t1 + 1e-6]
        out.append((name, cyc, t0, t1, ticks))
    return out


def steady(runs):
    """mean ops/s of the second half of every occurrence of each phase"""
    acc = {}
    for run in runs:
        for name, _c, t0, t1, ticks in occurrences(run):
            half = [o for t, o, _r in ticks if t > (t0 + t1) / 2]
            acc.setdefault(name, []).extend(half)
    return {p: statistics.mean(v) for p, v in acc.items() if v}


def time_to_best(run, best):
    """per occurrence: seconds from the phase's start to the first 0.5 s
    tick at >= 95 % of the phase's best steady rate (None: never)"""
    res = []
    for name, cyc, t0, _t1, ticks in occurrences(run):
        if name not in BUSY or not best.get(name):
            continue
        hit = next((t - t0 for t, o, _r in ticks if o >= 0.95 * best[name]), None)
        res.append((name, cyc, hit))
    return res


def idle_drop(run):
    """per idle occurrence: (RSS when the burst was freed, RSS 5 s later,
    seconds until RSS was below half, or None)"""
    res = []
    for tb, rb in run["bursts"]:
        later = [(t, r) for t, p, _o, r in run["ticks"] if t >= tb and p == "idle"]
        at5 = next((r for t, r in later if t >= tb + 5.0), later[-1][1] if later else rb)
        half = next((t - tb for t, r in later if r <= rb / 2), None)
        res.append((rb, at5, half))
    return res


def decisions(dlog, run):
    """daemon log lines about this workload's process, as (t, text)"""
    if not os.path.exists(dlog):
        return []
    start = float(run["head"].get("start_epoch", 0))
    end = run["result"].get("secs", 1e9)
    pid = run["head"].get("pid", "")
    out = []
    with open(dlog) as f:
        for line in f:
            stamp, _, text = line.rstrip("\n").partition(" ")
            try:
                t = float(stamp) - start
            except ValueError:
                continue
            if pid and not re.search(r"\bpid %s\b" % re.escape(pid), text):
                continue
            # knob changes ("fast_cap[3] 64 -> 128 ...") and trims, as
            # daemon/apply.c logs them; not attach/detach/phase lines
            if not re.search(r"\): (\(dry-run\) )?(trim\b|[a-z_]+(\[\d+\])? -?\d+ -> -?\d+)", text):
                continue
            if -1 <= t <= end + 1:
                out.append((t, text))
    return out


def daemon_cpu(outdir):
    """(run, CPU seconds, wall seconds) of each daemon run, from .dcpu files"""
    out = []
    for f in sorted(glob.glob(os.path.join(outdir, "*.dcpu"))):
        with open(f) as fh:
            w = fh.read().split()
        if len(w) == 2:
            out.append((os.path.basename(f)[:-5], float(w[0]), float(w[1])))
    return out


def fmt_pct(x):
    return "n/a" if x is None or x != x else f"{(x - 1) * 100:+.1f} %"


def load(outdir):
    meta = {}
    with open(os.path.join(outdir, "meta")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    runs = {}
    for c, _d in CONFIGS:
        files = sorted(glob.glob(os.path.join(outdir, f"{c}.r*.log")),
                       key=lambda p: int(re.search(r"\.r(\d+)\.log$", p).group(1)))
        if files:
            runs[c] = [(p, parse_wl(p)) for p in files]
    return meta, runs


def chart(outdir, png, runs, best, decs):
    """throughput (relative to each phase's best) and RSS over time, round 1"""
    plots_t, plots_r, marks = [], [], []
    colors = {"defaults": "#777777", "fixed": "#1f77b4", "daemon": "#d62728", "profile": "#2ca02c"}
    for i, (c, desc) in enumerate(CONFIGS):
        if c not in runs:
            continue
        run = runs[c][0][1]
        dat = os.path.join(outdir, f"chart_{c}.dat")
        with open(dat, "w") as f:
            for t, p, o, r in run["ticks"]:
                # idle has no throughput worth comparing: a gap in the curve
                rel = f"{min(o / best[p], 1.4):.4f}" if best.get(p) and p != "idle" else "NaN"
                f.write(f"{t - TICK / 2:.2f} {rel} {r:.1f}\n")
        plots_t.append(f"'{dat}' u 1:2 w steps lw 1.5 lc rgb '{colors[c]}' t '{desc}'")
        plots_r.append(f"'{dat}' u 1:3 w steps lw 1.5 lc rgb '{colors[c]}' t '{desc}'")
        if decs.get(c):
            dd = os.path.join(outdir, f"dec_{c}.dat")
            y = 1.5 if c == "daemon" else 1.6
            with open(dd, "w") as f:
                for t, _txt in decs[c]:
                    f.write(f"{t:.2f} {y}\n")
            marks.append(f"'{dd}' u 1:2 w points pt 9 ps 1.3 lc rgb '{colors[c]}' "
                         f"t 'knob decision ({c})'")
    base = runs["defaults"][0][1]
    labels = []
    for name, _c, t0, _t1, _n, _cpu in base["phases"]:
        labels.append(f"set arrow from {t0},graph 0 to {t0},graph 1 nohead dt 3 lc rgb '#bbbbbb'")
        labels.append(f"set label '{name}' at {t0 + 0.2},graph 0.97 font 'sans,8'")
    gp = os.path.join(outdir, "chart.gp")
    end = base["result"]["secs"]
    with open(gp, "w") as f:
        f.write("\n".join([
            "set terminal pngcairo noenhanced size 1400,900 font 'sans,10'",
            f"set output '{png}'",
            "set multiplot layout 2,1 title 'bench/adaptive: throughput and RSS over time "
            "(round 1 of each configuration; markers: knob decisions of the daemon)'",
            f"set xrange [0:{end:.1f}]",
            "set grid ytics",
            "set key outside right top",
            "set ylabel \"ops/s / phase's best steady rate\"",
            "set yrange [0:1.8]",
            "set ytics 0,0.2,1.4",
            *labels,
            "plot " + ", ".join(plots_t + marks),
            "unset label",
            "set ylabel 'RSS (MiB)'",
            "set xlabel 'seconds'",
            "set yrange [0:*]",
            "set ytics auto",
            "plot " + ", ".join(plots_r),
            "unset multiplot",
        ]) + "\n")
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"adaptive_report: gnuplot failed: {r.stderr.strip()}")


def report(outdir, md_path, png_path):
    meta, runs = load(outdir)
    if "defaults" not in runs:
        raise SystemExit("adaptive_report: no defaults runs in " + outdir)
    allruns = {c: [r for _p, r in v] for c, v in runs.items()}
    st = {c: steady(v) for c, v in allruns.items()}
    best = {p: max(st[c].get(p, 0) for c in st) for p in PHASES}
    rates = {}
    for c, v in allruns.items():
        per = [phase_rates(r) for r in v]
        rates[c] = {p: statistics.mean(x[p] for x in per if p in x) for p in PHASES}
    wall = {}
    for c, v in allruns.items():
        per = [phase_rates(r, wall=True) for r in v]
        wall[c] = {p: statistics.mean(x[p] for x in per if p in x) for p in PHASES}
    base = allruns["defaults"]
    # throughput: per round against the same round's defaults run
    tput = {}
    for c, v in allruns.items():
        rr = [score(base[i], v[i]) for i in range(min(len(v), len(base)))]
        tput[c] = (geomean([rates[c][p] / rates["defaults"][p] for p in BUSY]), rr)
    rss = {c: statistics.mean(r["result"]["rss_mib_s"] for r in v) for c, v in allruns.items()}
    ttb = {c: [x for r in v for x in time_to_best(r, best)] for c, v in allruns.items()}
    idle = {c: [x for r in v for x in idle_drop(r)] for c, v in allruns.items()}
    decs = {}
    for c in ("daemon", "profile"):
        if c in runs:
            p0, r0 = runs[c][0]
            decs[c] = decisions(p0[:-4] + ".dlog", r0)

    chart(outdir, png_path, runs, best, decs)
    L = []
    w = L.append
    w("# bench/adaptive: what the daemon is worth")
    w("")
    w("Measured by `%s` (%s; workload `bench/bin/adaptive %s`; %s; commit %s)."
      % (meta.get("command"), meta.get("date"), meta.get("workload"), meta.get("host"),
         meta.get("commit")))
    w("Raw logs: `bench/out/adaptive/`. Every figure below is computed from them by "
      "`bench/adaptive_report.py`; nothing is edited by hand.")
    w("")
    empty = []
    for f in sorted(glob.glob(os.path.join(outdir, "profile.r*.nprof"))):
        if open(f).read().strip() == "0":
            empty.append(os.path.basename(f)[:-6])
    if empty:
        w("**The previous daemon run saved no profile before %s: those runs started from "
          "nothing, like the no-profile row.**" % ", ".join(empty))
        w("")
    if meta.get("daemon") != "1":
        w("**daemon/hakmemd was not built when this ran: the two daemon rows are missing.**")
        w("")
    w("The workload (`bench/adaptive.c`, %s threads) cycles through phases: small-object churn, "
      "producer/consumer with cross-thread frees, 8-64 KiB buffers, 64 KiB-4 MiB buffers, "
      "5-25 MiB blocks allocated, touched and freed, and idle after a large burst (a trickle of "
      "allocations only). The configurations ran in the same session, alternating round by "
      "round. An *op* is one allocation freed again, and its cost differs from phase to phase, "
      "so each phase is compared only with itself: **throughput** is the geometric mean, over "
      "the five busy phases, of the ratio to the defaults of ops per CPU second of the "
      "workload process. Per CPU second, because the machine's two CPUs are shared with "
      "other jobs: wall-clock ops/s mostly measures what the scheduler gave the workload "
      "(the wall-clock figures are in a table below). The daemon's own CPU is reported "
      "separately." % allruns["defaults"][0]["head"].get("threads", "?"))
    w("")
    fixed_env = open(os.path.join(outdir, "best_fixed.env")).read().split()
    w("Best fixed setting (random search over the knobs on seed 2, %s): `%s`."
      % (meta.get("search"), " ".join(fixed_env) or "the defaults"))
    w("")
    w("| configuration | throughput vs defaults | per round | RSS·s (MiB·s) | RSS·s vs defaults "
      "| idle: RSS drop 5 s after the burst |")
    w("|---|---|---|---|---|---|")
    for c, desc in CONFIGS:
        if c not in allruns:
            continue
        g, rr = tput[c]
        drops = [1 - a5 / rb for rb, a5, _h in idle[c] if rb > 0]
        w("| %s | %s | %s | %.0f | %s | %s |" % (
            desc, fmt_pct(g), ", ".join(fmt_pct(x) for x in rr), rss[c],
            fmt_pct(rss[c] / rss["defaults"]),
            ", ".join("%.0f %% (%.0f→%.0f MiB)" % (d * 100, rb, a5)
                      for d, (rb, a5, _h) in zip(drops, idle[c]))))
    w("")
    w("Per phase, ops per CPU second (mean over rounds) and, in brackets, relative to the "
      "defaults:")
    w("")
    def phase_table(vals):
        """One row per configuration: each busy phase's value and its ratio to the defaults."""
        w("| configuration | " + " | ".join(BUSY) + " |")
        w("|---|" + "---|" * len(BUSY))
        for c, desc in CONFIGS:
            if c not in allruns:
                continue
            w("| %s | %s |" % (desc, " | ".join(
                "%.4g (%s)" % (vals[c][p], fmt_pct(vals[c][p] / vals["defaults"][p]))
                for p in BUSY)))
        w("")

    phase_table(rates)
    w("The same in wall-clock ops/s (disturbed by the other load on the machine):")
    w("")
    phase_table(wall)
    dcpu = daemon_cpu(outdir)
    if dcpu:
        w("The daemon's own CPU time per run (user+system, while watching the workload): %s."
          % ", ".join("%s %.2f s over %.0f s (%.2f %% of a core)" % (n, c, t, 100 * c / t)
                      for n, c, t in dcpu))
        w("")
    w("Time from a phase's start to the first 0.5 s tick within 5 % of that phase's best "
      "steady rate (the best second-half mean of any configuration); first visit / return "
      "visit (cycle 2), medians over rounds; `-` = never within the phase:")
    w("")
    w("| configuration | " + " | ".join(BUSY) + " |")
    w("|---|" + "---|" * len(BUSY))

    def tt(c, p, first):
        xs = [h for n, cyc, h in ttb[c] if n == p and (cyc == 1) == first]
        if not xs:
            return "n/a"
        hit = [h for h in xs if h is not None]
        if len(hit) * 2 <= len(xs):
            return "-"
        return "%.1f s" % statistics.median(h if h is not None else 99 for h in xs)

    for c, desc in CONFIGS:
        if c in allruns:
            w("| %s | %s |" % (desc, " | ".join("%s / %s" % (tt(c, p, True), tt(c, p, False))
                                                for p in BUSY)))
    w("")
    w("![throughput and RSS over time](adaptive.png)")
    w("")
    # targets of issue 9, each with its measured figure
    w("## Targets (issue 9) and what was measured")
    w("")
    if "daemon" in allruns:
        for c in ("daemon", "profile"):
            if c not in allruns:
                continue
            g = tput[c][0]
            w("- %s: throughput %s over the defaults (target ≥ +15 %%): %s." % (
                dict(CONFIGS)[c], fmt_pct(g), "met" if g >= 1.15 else "missed"))
        g_d, g_f = tput["daemon"][0], tput["fixed"][0]
        rs = rss["daemon"] / rss["fixed"]
        ok = (g_d / g_f >= 1.05 and rs <= 1.02) or (g_d / g_f >= 0.99 and rs <= 0.70)
        w("- against the best fixed setting: throughput %s, RSS·s %s (target ≥ +5 %% at equal "
          "RSS·s, or equal throughput with ≥ 30 %% less RSS·s): %s." % (
              fmt_pct(g_d / g_f), fmt_pct(rs), "met" if ok else "missed"))
        for c, lim in (("daemon", 10), ("profile", 2)):
            if c not in allruns:
                continue
            xs = [h for _n, _cy, h in ttb[c]]
            worst = [h if h is not None else float("inf") for h in xs]
            within = sum(1 for h in worst if h <= lim)
            w("- %s: after a phase change, within 5 %% of the phase's best in ≤ %d s in %d of "
              "%d phase runs (median %s)." % (
                  dict(CONFIGS)[c], lim, within, len(xs),
                  "%.1f s" % statistics.median(worst) if worst and
                  statistics.median(worst) != float("inf") else "never"))
        drops = [1 - a5 / rb for rb, a5, _h in idle["daemon"] if rb > 0]
        if drops:
            d = statistics.median(drops)
            w("- idle: RSS down %.0f %% 5 s after the burst with the daemon (target ≥ 50 %%): "
              "%s; without it %.0f %%." % (
                  d * 100, "met" if d >= 0.5 else "missed",
                  statistics.median(1 - a5 / rb for rb, a5, _h in idle["defaults"]) * 100))
    else:
        w("- not measured: no daemon.")
    ratios = os.path.join(os.path.dirname(os.path.abspath(outdir)), "daemon_ratios.txt")
    if os.path.exists(ratios):
        lines = open(ratios).read().splitlines()
        stamp = datetime.datetime.utcfromtimestamp(os.path.getmtime(ratios))
        w("- the existing `bench/` rows with the daemon running (target: none worse than "
          "-1 %%): measured separately by `%s` (%s UTC), below." % (
              lines[0] if lines else "bench/run --daemon", stamp.strftime("%Y-%m-%d %H:%M")))
        w("")
        w("```")
        for line in lines[1:]:
            w(line)
        w("```")
    else:
        w("- the existing `bench/` rows with the daemon running: not measured "
          "(`bench/run --daemon` writes bench/out/daemon_ratios.txt).")
    w("")
    for c in ("daemon", "profile"):
        if decs.get(c):
            w("Daemon decisions about the workload, %s, round 1 (time from the workload's start):"
              % dict(CONFIGS)[c])
            w("")
            w("```")
            for t, text in decs[c][:40]:
                w("%7.2f  %s" % (t, text))
            if len(decs[c]) > 40:
                w("... %d more" % (len(decs[c]) - 40))
            w("```")
            w("")
    w("Random search (score = throughput vs the defaults on seed 2, one run each):")
    w("")
    w("| candidate | setting | score |")
    w("|---|---|---|")
    d0 = parse_wl(os.path.join(outdir, "cand0.log"))
    cands = sorted(glob.glob(os.path.join(outdir, "cand*.env")),
                   key=lambda p: int(re.search(r"cand(\d+)", p).group(1)))
    for f in cands:
        env = " ".join(open(f).read().split()) or "(defaults)"
        w("| %s | `%s` | %.3f |" % (os.path.basename(f)[:-4], env,
                                   score(d0, parse_wl(f[:-4] + ".log"))))
    w("")
    seen = []
    for f in sorted(glob.glob(os.path.join(outdir, "*.foreign"))):
        w_ = open(f).read().split()
        if any(x != "0" for x in w_):
            seen.append("%s (%s)" % (os.path.basename(f)[:-8], "/".join(w_)))
    if seen:
        w("Other hakmemd instances (not this benchmark's) were running at the start/end of: "
          "%s. They may have tuned the workload, if their config included it." % ", ".join(seen))
    else:
        w("No other hakmemd instance was running at the start or end of any run.")
    w("")
    w("Load on the machine at the start: %s. The machine's 2 CPUs are shared with other "
      "work, so single 0.5 s ticks are noisy; the per-round column shows the spread." %
      meta.get("host"))
    with open(md_path, "w") as f:
        f.write("\n".join(L) + "\n")


def main(argv):
    if len(argv) == 4 and argv[1] == "score":
        print("%.3f" % score(parse_wl(argv[2]), parse_wl(argv[3])))
    elif len(argv) == 5 and argv[1] == "report":
        report(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
