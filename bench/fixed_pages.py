#!/usr/bin/env python3
"""fixed_pages.py — every page a small process has resident, by mapping.

    python3 bench/fixed_pages.py pages [LIB] -- CMD...
        CMD must stop itself (e.g. sh -c 'true; kill -STOP $$'); prints each
        mapping's Rss and its resident pages (by page offset in the mapping,
        file offset for files), then continues it. LIB: preloaded (none:
        glibc). Use setarch -R in CMD to compare two runs page by page.
    python3 bench/fixed_pages.py libc N LIB...
        N alternating runs of a stopped `sh -c` per LIB (glibc: none), ASLR
        on: mean and max of libc's Rss and of the total, the mean number of
        libc pages resident, and the libc pages (by file offset) resident in
        more runs with the second LIB than with the first.

Used for docs/allocator.md, "Fixed resident memory". Root (or the same
user) reads /proc/PID/pagemap; a page counts when it is present.
"""
import collections
import os
import signal
import statistics
import struct
import subprocess
import sys
import time

SH = ["sh", "-c", "true; kill -STOP $$"]


def start_stopped(cmd, lib):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib and lib != "glibc":
        env["LD_PRELOAD"] = os.path.abspath(lib)
    p = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            if open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T":
                return p
        except OSError:
            pass
        time.sleep(0.005)
    p.kill()
    p.wait()
    sys.exit(f"{cmd[0]} did not stop itself within 5 s")


def mappings(pid):
    """(start, end, perms, offset, name, rss_kb, resident page offsets) per mapping."""
    out, cur = [], None
    pm = open(f"/proc/{pid}/pagemap", "rb")
    for line in open(f"/proc/{pid}/smaps"):
        f = line.split()
        if "-" in f[0] and len(f) >= 5 and ":" in f[3]:
            a, b = (int(x, 16) for x in f[0].split("-"))
            cur = [a, b, f[1], int(f[2], 16), f[5] if len(f) > 5 else "[anon]", 0, []]
            out.append(cur)
        elif f[0] == "Rss:":
            cur[5] = int(f[1])
    for m in out:
        if not m[5]:
            continue
        for v in range(m[0], m[1], 4096):
            pm.seek(v // 4096 * 8)
            if struct.unpack("Q", pm.read(8))[0] >> 63:
                m[6].append(v - m[0] + m[3])
    return out


def finish(p):
    os.kill(p.pid, signal.SIGCONT)
    p.wait()


def pages(lib, cmd):
    p = start_stopped(cmd, lib)
    total = 0
    for a, b, perm, off, name, rss, res in mappings(p.pid):
        if not rss:
            continue
        total += rss
        shown = ",".join(f"{x // 4096:x}" for x in res) if len(res) < 40 else f"{len(res)} pages"
        print(f"{rss:6d} KiB {a:x}-{b:x} {perm} {os.path.basename(name)}: {shown}")
    print(f"total {total} KiB")
    finish(p)


def libc(n, libs):
    freq = {lib: collections.Counter() for lib in libs}
    rss = {lib: [] for lib in libs}
    for _ in range(n):
        for lib in libs:
            p = start_stopped(SH, lib)
            maps = mappings(p.pid)
            finish(p)
            lc = [m for m in maps if "libc.so" in m[4]]
            rss[lib].append((sum(m[5] for m in lc), sum(m[5] for m in maps)))
            for m in lc:
                freq[lib].update(m[6])
    for lib in libs:
        r = rss[lib]
        print(f"{lib}: libc pages {sum(freq[lib].values()) / n:.1f}, libc Rss mean "
              f"{statistics.mean(x[0] for x in r):.0f} max {max(x[0] for x in r)} KiB, total mean "
              f"{statistics.mean(x[1] for x in r):.0f} max {max(x[1] for x in r)} KiB")
    if len(libs) >= 2:
        a, b = libs[0], libs[1]
        more = sorted((k for k in set(freq[a]) | set(freq[b]) if freq[b][k] - freq[a][k] > max(2, n // 5)),
                      key=lambda k: freq[a][k] - freq[b][k])
        print(f"libc pages resident in more runs with {b} than with {a}:")
        for k in more:
            print(f"  {k:#x}: {freq[a][k]} -> {freq[b][k]} of {n}")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "pages" and "--" in sys.argv:
        i = sys.argv.index("--")
        pages(sys.argv[2] if i == 3 else None, sys.argv[i + 1:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "libc":
        libc(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
