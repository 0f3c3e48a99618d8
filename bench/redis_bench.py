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

The request rate is mostly the client's: redis-benchmark and the one-thread
server share this machine's two CPUs, and the client spends about as much
CPU per request as the server. What the allocator changes is the server's
CPU time, so the RESULT line also gives, from /proc/PID/stat (all its
threads, read after its start-up and after the last test; 10 ms ticks):
server_us_per_req (user + system), server_user_us_per_req (user only: the
allocator's part; the system part is the sockets) and
server_cpu_ops_per_sec (requests per server CPU-second, for
bench/ab_rate.py --rate server_cpu_ops_per_sec), and the client's
client_us_per_req. On a loaded 2-CPU machine each of these varies 25-45 %
run to run (11 alternating runs, bench/README.md): a difference of a few
percent between allocators needs bench/redis_callgrind.sh, which counts the
server's instructions per request. --pin puts the server on CPU 0 and the
client on CPU 1 (taskset): on a busy machine that halves the request rate
and does not narrow the spread of the CPU time.
"""
import argparse
import os
import resource
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


def cpu_ticks(pid):
    """(utime, stime) of every thread of PID, in clock ticks (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)


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
    ap.add_argument("--pin", action="store_true",
                    help="server on CPU 0, redis-benchmark on CPU 1 (taskset)")
    args = ap.parse_args()

    env = dict(os.environ)
    env["LD_PRELOAD"] = os.environ.get("BENCH_SERVER_PRELOAD") or "libc.so.6"
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="hakbench-redis-")
    pin_server = ["taskset", "-c", "0"] if args.pin else []
    pin_client = ["taskset", "-c", "1"] if args.pin else []
    server = subprocess.Popen(
        pin_server + ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
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

        tick = os.sysconf("SC_CLK_TCK")
        cpu0 = cpu_ticks(server.pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        bench = subprocess.run(
            pin_client + ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", "--csv",
             "-t", ",".join(t.lower() for t in TESTS), "-n", str(args.requests),
             "-P", str(args.pipeline), "-c", str(args.clients), "-r", str(args.keyspace),
             "-d", str(args.value_size)],
            capture_output=True, text=True, timeout=args.timeout,
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1 = cpu_ticks(server.pid)
        server_user = (cpu1[0] - cpu0[0]) / tick
        server_cpu = server_user + (cpu1[1] - cpu0[1]) / tick
        client_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
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
              f" server_cpu_s={server_cpu:.2f} server_us_per_req={server_cpu / total * 1e6:.3f}"
              f" server_cpu_ops_per_sec={total / max(server_cpu, 1.0 / tick):.0f}"
              f" server_user_us_per_req={server_user / total * 1e6:.3f}"
              f" client_us_per_req={client_cpu / total * 1e6:.3f}"
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
