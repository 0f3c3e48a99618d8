#!/usr/bin/env python3
"""redis_bench.py — a real program as a workload: redis-server under an allocator.

    bench/redis_bench.py [--requests N] [--pipeline P] [--clients C] [--seed S]

Starts redis-server on 127.0.0.1:<free high port> (no persistence) with
LD_PRELOAD taken from the environment variable BENCH_SERVER_PRELOAD, drives it
with redis-benchmark (SET, GET, LPUSH, LPOP; loopback only, bounded request
count), checks that the server still answers correctly, reads the server's
peak RSS (VmHWM) and shuts it down. Prints one RESULT line:
ops_per_sec is the overall request rate (total requests / summed time),
peak_rss_kb is the server's, not this script's.

Debian's redis-server is linked against libjemalloc. An empty
BENCH_SERVER_PRELOAD therefore preloads libc.so.6, which puts glibc's
malloc/free/realloc/calloc/malloc_usable_size first in symbol lookup, so the
"glibc" run really uses glibc's allocator.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

TESTS = ["SET", "GET", "LPUSH", "LPOP"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port, *args, timeout=5.0):
    """Send one RESP command, return the first reply line (or bulk body)."""
    parts = [x.encode() if isinstance(x, str) else x for x in args]
    req = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        if buf.startswith(b"$") and not buf.startswith(b"$-1"):
            n = int(buf[1:buf.index(b"\r\n")])
            need = buf.index(b"\r\n") + 2 + n + 2
            while len(buf) < need:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return buf[buf.index(b"\r\n") + 2:][:n]
        return buf.split(b"\r\n", 1)[0]


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--value-size", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()

    env = dict(os.environ)
    env["LD_PRELOAD"] = os.environ.get("BENCH_SERVER_PRELOAD") or "libc.so.6"
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="hakbench-redis-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", workdir, "--logfile", ""],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            if server.poll() is not None:
                sys.exit(f"redis-server exited at startup with status {server.returncode}")
            try:
                if command(port, "PING", timeout=1) == b"+PONG":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("redis-server did not answer PING within 10 s")
            time.sleep(0.02)

        bench = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", "--csv",
             "-t", ",".join(t.lower() for t in TESTS), "-n", str(args.requests),
             "-P", str(args.pipeline), "-c", str(args.clients), "-r", str(args.keyspace),
             "-d", str(args.value_size)],
            capture_output=True, text=True, timeout=args.timeout,
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
        if bench.returncode != 0 or server.poll() is not None:
            state = "alive" if server.poll() is None else f"exited {server.returncode}"
            sys.exit(f"redis-benchmark failed (status {bench.returncode}, server {state}): "
                     f"{bench.stderr.strip()[-500:]}")
        rps = {}
        for line in bench.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) >= 2 and cells[0] in TESTS:
                rps[cells[0]] = float(cells[1])
        if set(rps) != set(TESTS):
            sys.exit(f"could not parse redis-benchmark output: {bench.stdout[-500:]}")

        # Self-check: the server still stores and returns data correctly.
        value = ("hakmem-check-" * 80).encode()
        ok = (command(port, "SET", "bench:check", value) == b"+OK"
              and command(port, "GET", "bench:check") == value
              and int(command(port, "DBSIZE")[1:]) > 0)
        peak_kb = vm_kb(server.pid, "VmHWM")
        rss_kb = vm_kb(server.pid, "VmRSS")
        total = args.requests * len(TESTS)
        overall = total / sum(args.requests / rps[t] for t in TESTS)
        try:
            command(port, "SHUTDOWN", "NOSAVE", timeout=2)
        except OSError:
            pass
        server.wait(timeout=10)
        print(f"RESULT name=redis requests={total} pipeline={args.pipeline} clients={args.clients} "
              + " ".join(f"{t.lower()}_rps={rps[t]:.0f}" for t in TESTS)
              + f" check={'ok' if ok else 'FAILED'} rss_kb={rss_kb} peak_rss_kb={peak_kb}"
              f" ops_per_sec={overall:.0f}")
        sys.exit(0 if ok else 1)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
            server.wait()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
