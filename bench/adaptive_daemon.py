"""bench/adaptive_daemon.py — hakmemd around one benchmark run, for
`bench/run --daemon` (the allocator column "hakmem+d": hakmem with the daemon
running). Each run gets a daemon of its own: a fresh state directory (no
profile), a config that includes only the benchmark's programs (other hakmem
processes on a shared machine are left alone), the default interval and BPF
when it loads. The daemon is up (its status file written) before the
workload starts, is stopped with SIGTERM after it, and nothing is left
behind: the process group is killed if it does not stop within 5 s, the
state directory removed. BENCH_HAKMEMD_ARGS adds flags (e.g. --no-bpf).
Python 3 standard library only."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

HAKMEMD = "daemon/hakmemd"


class DaemonError(Exception):
    pass


class Daemon:
    """with Daemon(include=[...]) as d: ...   d.log_text() after exit."""

    def __init__(self, include, hakmemd=HAKMEMD, timeout=3600):
        self.include, self.hakmemd, self.timeout = include, os.path.abspath(hakmemd), timeout
        self.proc, self.dir, self.log = None, None, ""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="hakbench-d-")
        cfg = os.path.join(self.dir, "hakmemd.json")
        with open(cfg, "w") as f:
            json.dump({"include": self.include}, f)
        status = os.path.join(self.dir, "status.json")
        self.logf = open(os.path.join(self.dir, "log"), "w+")
        # timeout -s KILL bounds the daemon even if this script dies
        self.proc = subprocess.Popen(
            ["timeout", "-s", "KILL", str(self.timeout), self.hakmemd, "--foreground",
             "--config", cfg, "--state-dir", os.path.join(self.dir, "state"),
             "--status", status] + os.environ.get("BENCH_HAKMEMD_ARGS", "").split(),
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(status):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self._stop()
        raise DaemonError("hakmemd did not start: " + self.log[-300:])

    def _stop(self):
        if self.proc and self.proc.poll() is None:
            try:  # hakmemd is timeout's child: TERM it, the group if needed
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                self.proc.wait()
        if self.logf:
            self.logf.seek(0)
            self.log = self.logf.read()
            self.logf.close()
            self.logf = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __exit__(self, *exc):
        self._stop()
        return False

    def decisions(self):
        """Lines of the log that are decisions about the benchmark's processes."""
        return [l for l in self.log.splitlines() if " -> " in l and "[" in l and "phase " not in l]


def include_for(argv, preload):
    """Config include patterns for a workload: the program itself (bench/bin/*
    by path), or the server a driver starts (redis)."""
    if preload == "server":
        return ["redis-server"]
    prog = argv[0]
    return [os.path.abspath(prog)] if "/" in prog else [prog]


def _med(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else None


def ratios(workloads, data):
    """Lines comparing 'hakmem+d' with 'hakmem' in a bench/run data set: per
    workload and metric, the ratio of medians (oriented: > 1 = the daemon
    made it better), each cell's spread ((max - min) / median), a verdict
    against -1 % that counts the noise, and the decisions the daemons took."""
    out = ["hakmem with the daemon vs without (bench/run --daemon): ratio of medians, "
           "> 1 = better with the daemon; noise = the larger spread (max-min)/median of the "
           "two cells" + ("; daemon flags: " + os.environ["BENCH_HAKMEMD_ARGS"]
                          if os.environ.get("BENCH_HAKMEMD_ARGS") else "")]
    for w in workloads:
        cells = data.get(w["name"], {})
        h, d = cells.get("hakmem", []), cells.get("hakmem+d", [])
        dec = [r["result"].get("_decisions", 0) for r in d if r.get("result")]
        for label, key, higher, _ in w["metrics"]:
            hv = [r["values"][key] for r in h if not r["error"] and key in r["values"]]
            dv = [r["values"][key] for r in d if not r["error"] and key in r["values"]]
            if not hv or not dv or not _med(hv) or not _med(dv):
                out.append(f"  {w['name']:<22} {label:<24} not measured")
                continue
            r = _med(dv) / _med(hv) if higher else _med(hv) / _med(dv)
            sp = max((max(x) - min(x)) / _med(x) for x in (hv, dv))
            verdict = ("ok (>= -1 %)" if r >= 0.99 else
                       f"within noise ({sp * 100:.0f} %)" if r >= 1 - sp else "WORSE")
            out.append(f"  {w['name']:<22} {label:<24} {r:6.3f}  noise {sp * 100:4.1f} %  "
                       f"{verdict}  decisions/run {_med(dec) if dec else 0:.0f}")
    return out
