#!/usr/bin/env python3
"""bench/realprogs.py — real programs under hakmem and its peers.

    bench/realprogs.py [--runs N] [--only NAME,...] [--baseline LIB] [--out FILE]
                       [--timeout S] [--install]

Runs Debian's lua5.4, z3, ghostscript, python3, perl, sqlite3, gcc and xz on
inputs generated here (deterministic, no downloads; 1-10 s each under glibc)
under glibc (no preload), hakmem (lib/libhakmem.so), mimalloc, jemalloc and
tcmalloc, plus hakmem-base with --baseline LIB (another libhakmem.so: before /
after on a noisy machine, not a peer). Runs alternate: run r of every
allocator, then run r+1, the order rotated each round. Each run goes through
bench/bin/rss_wrap (preload for the program alone; peak RSS ru_maxrss and
minor faults of the program and its waited-for children: gcc's cc1 and as).

Every run's output (stdout, or the file the program writes) is hashed and
compared with an untimed glibc run made first: a difference is a FAIL, reported on stderr at
once, shown in the table, and the script exits 1.

Writes FILE (default docs/realprogs.md): median wall time, CPU time
(user + system of the program and its children), peak RSS and minor faults
per allocator, hakmem / best peer with the spread, then every run. The
hand-written analysis is docs/realprogs-notes.md. Programs that are not
installed are skipped with a note; --install (as root) installs them, as
scripts/deps.sh does. Run from the repository top after `make bench-bins`.
"""
import argparse
import datetime
import hashlib
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WRAP = "bench/bin/rss_wrap"
HAKMEM_LIB = "lib/libhakmem.so"
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PRELOAD = {
    "glibc": "",
    "hakmem": HAKMEM_LIB,
    "mimalloc": f"{LIBDIR}/libmimalloc.so.2",
    "jemalloc": f"{LIBDIR}/libjemalloc.so.2",
    "tcmalloc": f"{LIBDIR}/libtcmalloc_minimal.so.4",
}
PEERS = ["glibc", "mimalloc", "jemalloc", "tcmalloc"]
PEER_PKGS = ["libc6", "libmimalloc2.0", "libjemalloc2", "libtcmalloc-minimal4"]


# ------------------------------------------------------------ the workloads
# Each generator writes its inputs into the scratch directory D. Sizes are
# chosen for about 2-4 s under glibc on the 2-vCPU machine of docs/.

LUA = r"""
-- tables of small tables and strings built and dropped: Lua's allocator is
-- realloc/free (l_alloc), every table, string and closure goes through it
local R, N = tonumber(arg[1]), tonumber(arg[2])
local h = 0
for round = 1, R do
  local t = {}
  for i = 1, N do t[i] = {id = i, name = "item" .. i, tags = {i % 7, i % 11, round}} end
  local m = {}
  for i = 1, N do m[t[i].name .. ":" .. (i * round)] = t[i] end
  local parts = {}
  for i = 1, N, 3 do parts[#parts + 1] = string.format("%d-%s-%d", i, t[i].name, #t[i].tags) end
  local big = table.concat(parts, ",")
  local c = 0
  for k, v in pairs(m) do if v.id % 5 == 0 then m[k] = nil; c = c + 1 end end
  local words = {}
  for w in big:gmatch("[^,]+") do if #w % 3 == 0 then words[#words + 1] = w:upper() end end
  table.sort(words)
  h = (h * 31 + #big + c + #words + #(words[1] or "")) % 2147483647
end
print(h)
"""


def lcg(seed):
    """A deterministic stream of integers (the generators must not depend on
    Python's random module's version)."""
    s = seed
    while True:
        s = (s * 1103515245 + 12345) % 2**31
        yield s


def gen_lua(d):
    open(os.path.join(d, "w.lua"), "w").write(LUA)


def gen_z3(d):
    # many small bit-vector problems, each asserted in a push/pop scope: terms,
    # bit-blasted circuits and SAT clauses are built and dropped per scope
    r = lcg(12345)
    L = ["(set-logic QF_BV)"] + [f"(declare-const {v} (_ BitVec 24))" for v in "xyz"]
    for _ in range(150):
        a, b = next(r) % 4000 + 3, next(r) % 4000 + 3
        L += ["(push 1)",
              f"(assert (= (bvmul x y) (_ bv{(a * b) % 2**24} 24)))",
              "(assert (bvugt x (_ bv1 24)))", "(assert (bvugt y (_ bv1 24)))",
              f"(assert (= z (bvxor (bvadd x (_ bv{next(r) % 1000} 24)) "
              f"(bvshl y (_ bv{next(r) % 5} 24)))))",
              f"(assert (bvult z (_ bv{next(r) % 2**23 + 2**22} 24)))",
              "(check-sat)", "(get-value (x y z))", "(pop 1)"]
    open(os.path.join(d, "bv.smt2"), "w").write("\n".join(L) + "\n")


def gen_gs(d):
    # pages of random curves, filled polygons, text and clipped patterns;
    # the interpreter's dictionaries, strings and path lists and the
    # rasterizer's band buffers all come from malloc
    r = lcg(777)
    L = ["%!PS", "/Helvetica findfont 14 scalefont setfont"]
    for page in range(24):
        for k in range(500):
            x, y = next(r) % 600, next(r) % 780
            L.append(f"{next(r) % 100 / 100} {next(r) % 100 / 100} {next(r) % 100 / 100} setrgbcolor")
            L.append(f"newpath {x} {y} moveto {next(r) % 600} {next(r) % 780} "
                     f"{next(r) % 600} {next(r) % 780} {next(r) % 600} {next(r) % 780} curveto "
                     f"{next(r) % 600} {next(r) % 780} lineto closepath "
                     + ("fill" if k % 3 else f"{next(r) % 5 + 1} setlinewidth stroke"))
            if k % 10 == 0:
                L.append(f"{x} {y} moveto (page {page} item {k} {next(r)}) show")
        L.append("gsave 100 100 translate 0 1 359 { rotate 0 0 moveto 200 0 lineto "
                 "stroke } for grestore")
        L.append("showpage")
    open(os.path.join(d, "w.ps"), "w").write("\n".join(L) + "\n")


PY = r"""
import hashlib, json, sys
# pure Python: dicts, lists, strings, json round trips, many small objects.
# CPython's pymalloc serves objects up to 512 bytes from its own arenas, so
# the allocator sees the arenas (256 KiB), larger objects, dict/list storage
# growth and the json strings.
class Node:
    __slots__ = ("key", "val", "kids")
    def __init__(self, key, val):
        self.key, self.val, self.kids = key, val, []
h = hashlib.sha256()
R, N = int(sys.argv[1]), int(sys.argv[2])
for rnd in range(R):
    d = {f"k{i}-{rnd}": {"i": i, "s": "x" * (i % 97), "l": list(range(i % 13))} for i in range(N)}
    text = json.dumps(d, sort_keys=True)
    back = json.loads(text)
    h.update(str(len(text)).encode())
    nodes = [Node(i, str(i) * (i % 7)) for i in range(N)]
    for i in range(1, N):
        nodes[(i * 7919) % i].kids.append(nodes[i])
    total = sum(len(n.kids) + len(n.val) for n in nodes)
    words = " ".join(v["s"] + k for k, v in back.items()).split()
    words.sort(key=lambda w: (len(w), w))
    h.update(f"{total} {len(words)} {words[len(words) // 2]}".encode())
    del d, back, nodes, words, text
print(h.hexdigest())
"""


def gen_python(d):
    open(os.path.join(d, "w.py"), "w").write(PY)


PERL = r"""
use strict; use warnings;
# hashes of strings, regex matches and substitutions, joins and splits
my ($R, $N) = @ARGV;
my $h = 0;
for my $round (1 .. $R) {
    my %m;
    for my $i (1 .. $N) { $m{"key$i:$round"} = "val" . ($i * 31 % 1000) . ("z" x ($i % 50)); }
    my @k = sort keys %m;
    my $s = join(",", map { "$_=$m{$_}" } @k[0 .. $#k / 2]);
    my $c = () = $s =~ /val(\d)(\d)/g;
    (my $t = $s) =~ s/z+/Z/g;
    my %cnt;
    $cnt{length $_}++ for split /,/, $t;
    delete $m{$_} for grep { /7/ } @k;
    $h = ($h * 31 + $c + length($t) + scalar(keys %m) + scalar(keys %cnt)) % 2147483647;
}
print "$h\n";
"""


def gen_perl(d):
    open(os.path.join(d, "w.pl"), "w").write(PERL)


SQL = """
-- an in-memory database: inserts, an index, joins and aggregates
CREATE TABLE c(id INTEGER PRIMARY KEY, name TEXT, region INTEGER);
CREATE TABLE o(id INTEGER PRIMARY KEY, cid INTEGER, amount INTEGER, note TEXT);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)
  INSERT INTO c SELECT i, 'customer-' || i || substr('abcdefghij', 1 + i % 10), i % 50 FROM s;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300000)
  INSERT INTO o SELECT i, 1 + (i * 7919) % 20000, (i * 104729) % 1000,
                       printf('note %d %.*c', i, i % 40, 'x') FROM s;
CREATE INDEX o_cid ON o(cid);
CREATE INDEX o_note ON o(note);
SELECT c.region, count(*), sum(o.amount), max(length(o.note))
  FROM c JOIN o ON o.cid = c.id GROUP BY c.region ORDER BY c.region LIMIT 5;
SELECT count(DISTINCT note), group_concat(DISTINCT substr(name, -3)) FROM o JOIN c ON c.id = o.cid
  WHERE o.amount < 10;
UPDATE o SET note = upper(note) WHERE amount % 3 = 0;
DELETE FROM o WHERE amount % 5 = 0;
SELECT count(*), sum(length(note)) FROM o;
"""


def gen_sqlite(d):
    open(os.path.join(d, "w.sql"), "w").write(SQL)


def gen_gcc(d):
    # a large translation unit: many functions with loops, switches and
    # structs, so that GCC's GC arenas (mmap) and its malloc'd obstacks,
    # bitmaps and hash tables grow and shrink over the passes
    r = lcg(4242)
    L = ["#include <stddef.h>", "struct s { int a, b; long c; double d[4]; };"]
    for f in range(150):
        cases = "\n".join(f"    case {k}: acc += p[i].a * {next(r) % 97} + (long)p[i].d[{k % 4}]; "
                          f"p[i].b ^= {next(r) % 1000}; break;" for k in range(12))
        L.append(f"""long f{f}(struct s *p, size_t n, int m) {{
  long acc = {next(r) % 1000};
  for (size_t i = 0; i < n; i++) {{
    switch ((p[i].a + m) % 12) {{
{cases}
    default: acc -= p[i].c;
    }}
    if (acc > {next(r)}) acc /= {next(r) % 13 + 2};
  }}
  return acc + {f} * m;
}}""")
    L.append("long all(struct s *p, size_t n) { long t = 0;\n"
             + "".join(f"  t += f{f}(p, n, {f % 7});\n" for f in range(150)) + "  return t; }")
    open(os.path.join(d, "big.c"), "w").write("\n".join(L) + "\n")


def gen_xz(d):
    # 3 MiB of text with repeats at all distances: xz -9's 64 MiB dictionary
    # (allocated in one piece, touched as far as the input reaches) and its
    # match finder's hash chains
    r = lcg(99)
    words = ["".join(chr(97 + next(r) % 26) for _ in range(next(r) % 9 + 2)) for _ in range(3000)]
    out, n = [], 0
    while n < 3 << 20:
        line = " ".join(words[next(r) % len(words)] for _ in range(12)) + "\n"
        out.append(line)
        n += len(line)
    open(os.path.join(d, "in.txt"), "w").write("".join(out))


# name, Debian package, the command that must exist, generator, argv (D is the
# scratch directory), stdin file or None, output file to hash or None (stdout),
# extra environment, what it does
PROGRAMS = [
    dict(name="lua", pkg="lua5.4", exe="lua5.4", gen=gen_lua,
         argv=lambda d: ["lua5.4", f"{d}/w.lua", "3", "120000"],
         what="tables of small tables and strings built, indexed, sorted and dropped"),
    dict(name="z3", pkg="z3", exe="z3", gen=gen_z3,
         argv=lambda d: ["z3", f"{d}/bv.smt2"],
         what="150 QF_BV factoring problems, each in a push/pop scope, with models"),
    dict(name="gs", pkg="ghostscript", exe="gs", gen=gen_gs, out="out.ppm",
         argv=lambda d: ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-r100",
                         "-sDEVICE=ppmraw", f"-sOutputFile={d}/out.ppm", f"{d}/w.ps"],
         what="24 PostScript pages of curves, fills and text rendered at 100 dpi"),
    dict(name="python3", pkg="python3-minimal", exe="/usr/bin/python3", gen=gen_python,
         argv=lambda d: ["/usr/bin/python3", "-S", f"{d}/w.py", "2", "80000"],
         env={"PYTHONHASHSEED": "0"},
         what="dicts, lists, json round trips, many small objects (pymalloc on)"),
    dict(name="perl", pkg="perl-base", exe="perl", gen=gen_perl,
         argv=lambda d: ["perl", f"{d}/w.pl", "3", "120000"],
         env={"PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"},
         what="hashes of strings, regex matches and substitutions, sort, split, join"),
    dict(name="sqlite3", pkg="sqlite3", exe="sqlite3", gen=gen_sqlite, stdin="w.sql",
         argv=lambda d: ["sqlite3", ":memory:"],
         what="in-memory DB: 320k inserts, two indexes, joins, group by, update, delete"),
    dict(name="gcc", pkg="gcc", exe="gcc", gen=gen_gcc, out="big.o",
         argv=lambda d: ["gcc", "-O2", "-c", f"{d}/big.c", "-o", f"{d}/big.o"],
         what="gcc -O2 -c on a generated 150-function C file (cc1 and as preloaded too)"),
    dict(name="xz", pkg="xz-utils", exe="xz", gen=gen_xz, stdin="in.txt",
         argv=lambda d: ["xz", "-9", "-T1", "-c"],
         what="xz -9 of 3 MiB of generated text (one 674 MiB encoder set up)"),
]


# ---------------------------------------------------------------- running
def run_once(prog, d, lib, timeout):
    """One run: dict(wall, cpu, rss_kb, minflt, digest, error)."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(prog.get("env", {}))
    env["LC_ALL"] = "C"
    rss = os.path.join(d, "rss")
    outfile = os.path.join(d, prog["out"]) if prog.get("out") else None
    if outfile and os.path.exists(outfile):
        os.unlink(outfile)
    stdin = open(os.path.join(d, prog["stdin"])) if prog.get("stdin") else subprocess.DEVNULL
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen([os.path.abspath(WRAP), rss, lib, "--"] + prog["argv"](d), env=env, cwd=d,
                             stdin=stdin, stdout=out, stderr=err, start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            return dict(error=f"timeout after {timeout:.0f} s")
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if stdin is not subprocess.DEVNULL:
            stdin.close()
        err.seek(0)
        errtext = err.read().decode(errors="replace").strip().replace("\n", " | ")[-300:]
        h = hashlib.sha256()
        out.seek(0)
        for chunk in iter(lambda: out.read(1 << 20), b""):
            h.update(chunk)
        if outfile:
            if not os.path.exists(outfile):
                return dict(error=f"no output file {prog['out']} {errtext}".strip())
            with open(outfile, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    w = dict(t.split("=", 1) for t in open(rss).read().split()) if os.path.exists(rss) else {}
    status = w.get("status", f"wrapper:{p.returncode}")
    if status != "exit:0":
        return dict(error=f"{status} {errtext}".strip())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(wall=wall, cpu=cpu, rss_kb=int(w["maxrss_kb"]), minflt=int(w["minflt"]),
                digest=h.hexdigest()[:16], error=None)


def med(xs):
    return statistics.median(xs) if xs else None


def spread(xs):
    m = med(xs)
    return (max(xs) - min(xs)) / m if len(xs) > 1 and m else 0.0


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "kib":
        return f"{v / 1024:.1f} MiB"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g} {suffix}"
    return f"{v:.3g}"


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_ticks():
    """(total, busy, steal) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), sum(v) - v[3] - v[4], v[7]


def stamp(allocators, pkgs):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown")
    mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
    rev = sh(["git", "rev-parse", "--short", "HEAD"]) or "no commit yet"
    dirty = " (work tree modified)" if sh(["git", "status", "--porcelain", "--untracked-files=no"]) \
        else ""
    libs = []
    for a in ("hakmem", "hakmem-base"):
        if a in allocators:
            path = PRELOAD[a]
            st = os.stat(path)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
            built = datetime.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M:%S")
            libs.append(f"{a} {path} sha256 {digest}, {st.st_size} bytes, built {built}")
    ver = {p: sh(["dpkg-query", "-W", "-f=${Version}", p]) or "not installed"
           for p in PEER_PKGS + pkgs}
    return dict(cpu=cpu, mem_gib=round(mem_kb / 2**20, 1), git=rev + dirty, libs=libs,
                nproc=len(os.sched_getaffinity(0)), kernel=platform.release(),
                os=sh(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
                date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z"),
                loadavg=open("/proc/loadavg").read().split()[:3], ver=ver)


METRICS = [("wall time", "wall", "s"), ("CPU time (user + system)", "cpu", "s"),
           ("peak RSS", "rss_kb", "kib"), ("minor page faults", "minflt", "n")]


def table(progs, allocators, data, key, unit):
    head = ["program"] + allocators + ["best peer", "hakmem / best", "spread"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in progs:
        cells, meds, sp = [], {}, 0.0
        for a in allocators:
            runs = data[p["name"]][a]
            vals = [r[key] for r in runs if not r["error"]]
            fails = len(runs) - len(vals)
            meds[a] = med(vals)
            sp = max(sp, spread(vals)) if vals else sp
            cells.append(fmt(meds[a], unit) + (f" FAIL×{fails}" if fails else ""))
        peers = [(meds[a], a) for a in PEERS if meds.get(a) is not None]
        best = min(peers) if peers else (None, None)
        ratio = "—"
        if best[0] and meds.get("hakmem") is not None:
            ratio = f"**{meds['hakmem'] / best[0]:.2f}**"
        lines.append(f"| {p['name']} | " + " | ".join(cells) +
                     f" | {best[1] or '—'} {fmt(best[0], unit)} | {ratio} | {sp * 100:.0f} % |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", help="comma-separated program names (" +
                    ",".join(p["name"] for p in PROGRAMS) + ")")
    ap.add_argument("--allocators", help="comma-separated subset of " + ",".join(PRELOAD))
    ap.add_argument("--baseline", help="another libhakmem.so, measured as hakmem-base")
    ap.add_argument("--out", default="docs/realprogs.md")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    ap.add_argument("--install", action="store_true",
                    help="as root: apt-get install the programs that are missing")
    a = ap.parse_args()
    command = shlex.join(["bench/realprogs.py"] + sys.argv[1:])
    if not os.access(WRAP, os.X_OK):
        raise SystemExit(f"{WRAP} missing: run `make bench-bins` first")
    allocators = a.allocators.split(",") if a.allocators else list(PRELOAD)
    if a.baseline:
        PRELOAD["hakmem-base"] = os.path.abspath(a.baseline)
        allocators.insert(allocators.index("hakmem") + 1 if "hakmem" in allocators else 0,
                          "hakmem-base")
    notes = []
    for al in allocators:
        lib = PRELOAD[al]
        if lib and not os.path.exists(lib):
            raise SystemExit(f"{lib} missing ({al}): make, or bash scripts/deps.sh bench")
        if lib:
            PRELOAD[al] = os.path.abspath(lib)
    progs = [p for p in PROGRAMS if not a.only or p["name"] in a.only.split(",")]
    missing = [p for p in progs if not shutil.which(p["exe"])]
    if missing and a.install and os.geteuid() == 0:
        pk = sorted({p["pkg"] for p in missing})
        print("realprogs: installing " + " ".join(pk), file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pk,
                       env=env, stdout=subprocess.DEVNULL, check=True)
        missing = [p for p in progs if not shutil.which(p["exe"])]
    if missing:
        pk = " ".join(sorted({p["pkg"] for p in missing}))
        print(f"realprogs: not installed, skipped: {', '.join(p['name'] for p in missing)}; "
              f"install with: apt-get update && apt-get install -y {pk} "
              "(or rerun as root with --install)", file=sys.stderr)
        for p in missing:
            notes.append(f"{p['name']} skipped: `{p['exe']}` not installed "
                         f"(`apt-get install -y {p['pkg']}`)")
        progs = [p for p in progs if p not in missing]
    st = stamp(allocators, [p["pkg"] for p in progs])
    t_start, ticks0 = time.monotonic(), cpu_ticks()
    ours0 = os.times()
    data, failed = {}, []
    with tempfile.TemporaryDirectory(prefix="realprogs-") as top:
        for p in progs:
            d = os.path.join(top, p["name"])
            os.mkdir(d)
            p["gen"](d)
            data[p["name"]] = {al: [] for al in allocators}
            # an untimed glibc run first: the reference output, and the page
            # cache warm for the timed runs
            ref = run_once(p, d, "", a.timeout)
            if ref["error"]:
                failed.append((p["name"], "glibc", 0, ref["error"]))
                print(f"realprogs: FAIL {p['name']} reference run under glibc: {ref['error']}",
                      file=sys.stderr)
            for r in range(a.runs):
                k = r % len(allocators)
                for al in allocators[k:] + allocators[:k]:
                    rec = run_once(p, d, PRELOAD[al], a.timeout)
                    if not rec["error"] and rec["digest"] != ref.get("digest"):
                        rec["error"] = (f"output differs from glibc's "
                                        f"({rec['digest']} != {ref.get('digest')})")
                    if rec["error"]:
                        failed.append((p["name"], al, r + 1, rec["error"]))
                        print(f"realprogs: FAIL {p['name']} under {al}, run {r + 1}: "
                              f"{rec['error']}", file=sys.stderr)
                    rec["run"] = r + 1
                    data[p["name"]][al].append(rec)
                    print(f"{p['name']:8} {al:11} run {r + 1}: " +
                          (rec["error"] or f"{rec['wall']:.2f} s wall, {rec['cpu']:.2f} s CPU, "
                           f"{rec['rss_kb']} KiB, {rec['minflt']} faults"), flush=True)
    wall = time.monotonic() - t_start
    ticks1 = cpu_ticks()
    ours1 = os.times()
    ours = sum(ours1[:4]) - sum(ours0[:4])
    total = ticks1[0] - ticks0[0]
    hz = os.sysconf("SC_CLK_TCK")
    others = 100.0 * max(0.0, (ticks1[1] - ticks0[1]) - ours * hz - (ticks1[2] - ticks0[2])) \
        / total if total > 0 else 0.0
    steal = 100.0 * (ticks1[2] - ticks0[2]) / total if total > 0 else 0.0

    v = st["ver"]
    lines = [
        "# Real programs under hakmem and its peers",
        "",
        "Written by `bench/realprogs.py`; do not edit by hand (rerun it: `make bench-real`).",
        "What the rows show and why: [realprogs-notes.md](realprogs-notes.md); how to read the "
        "columns: [bench/README.md](../bench/README.md) \"Reading the tables\".",
        "",
        f"- command: `{command}` ({a.runs} runs per allocator, alternating round-robin; "
        f"total wall time {wall:.0f} s)",
        f"- date: {st['date']}; hakmem git {st['git']}; " + "; ".join(st["libs"]),
        f"- machine: {st['nproc']} CPUs ({st['cpu']}), {st['mem_gib']} GiB RAM, {st['os']}, "
        f"kernel {st['kernel']}; load average at start {' '.join(st['loadavg'])}; during the "
        f"run other processes used {others:.0f} % of the machine's CPU time and the hypervisor "
        f"stole {steal:.0f} % (shared, noisy machine: see the spread column)",
        f"- libraries (Debian): glibc {v['libc6']}, mimalloc {v['libmimalloc2.0']}, jemalloc "
        f"{v['libjemalloc2']}, tcmalloc (gperftools minimal) {v['libtcmalloc-minimal4']}",
        "- programs (Debian): " + ", ".join(f"{p['pkg']} {v[p['pkg']]}" for p in progs),
        "",
    ]
    lines += [f"> {n}" for n in notes] + ([""] if notes else [])
    if failed:
        lines += [f"> **FAIL**: {n} under {al}, run {r}: {e}" for n, al, r, e in failed] + [""]
    lines += [
        "Every cell is the median of the runs; lower is better in every table. *hakmem / best* "
        "divides hakmem's median by the smallest among glibc, mimalloc, jemalloc and tcmalloc "
        "(< 1: hakmem is faster or smaller than every peer). *spread* is the largest "
        "(max − min) / median of one allocator's runs in the row: a ratio closer to 1 than "
        "about half the spread is not a measured difference. CPU time is user + system of the "
        "program and its children; peak RSS is `ru_maxrss` and the faults `ru_minflt` from "
        "`bench/bin/rss_wrap` (for gcc: the largest of gcc, cc1 and as; faults summed). Every "
        "run's output (stdout, or the .ppm / .o file written) is hashed and must equal glibc's.",
        "",
    ]
    for title, key, unit in METRICS:
        lines += [f"## {title[0].upper() + title[1:]} (median)", "",
                  table(progs, allocators, data, key, unit), ""]
    lines += ["## Programs", "", "| program | command | what it does |", "|---|---|---|"]
    for p in progs:
        cmd = shlex.join(p["argv"]("D")) + (f" < D/{p['stdin']}" if p.get("stdin") else "")
        env = " ".join(f"{k}={v}" for k, v in p.get("env", {}).items())
        lines.append(f"| {p['name']} | `{(env + ' ') if env else ''}{cmd}` | {p['what']} |")
    lines += ["", "D is a scratch directory whose inputs `bench/realprogs.py` generates "
              "(deterministic; see its generators).", "",
              "<details><summary>Every run</summary>", "",
              "| program | allocator | run | wall s | CPU s | peak RSS KiB | minor faults | "
              "output sha256 |", "|---|---|---|---|---|---|---|---|"]
    for p in progs:
        for al in allocators:
            for rec in data[p["name"]][al]:
                if rec["error"]:
                    lines.append(f"| {p['name']} | {al} | {rec['run']} | FAIL: {rec['error']} "
                                 "| | | | |")
                else:
                    lines.append(f"| {p['name']} | {al} | {rec['run']} | {rec['wall']:.3f} | "
                                 f"{rec['cpu']:.3f} | {rec['rss_kb']} | {rec['minflt']} | "
                                 f"{rec['digest']} |")
    lines += ["", "</details>", ""]
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {a.out} ({wall:.0f} s)")
    if failed:
        print(f"realprogs: {len(failed)} run(s) failed or differed from glibc's output; see "
              f"{a.out}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
