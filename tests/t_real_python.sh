#!/usr/bin/env bash
# t_real_python — CPython under hakmem gives the same results as without it.
#
# A deterministic workload (big dicts and lists built and dropped, string
# building, bytes/bytearray growth, sets, a threaded part, json and zlib
# round trips) prints a checksum. It runs without hakmem, then with
# LD_PRELOAD=libhakmem.so twice: with Python's default pymalloc and with
# PYTHONMALLOC=malloc (every object goes through malloc/realloc/free). All
# outputs must be identical, and inside the preloaded interpreter
# ctypes.CDLL(None).hakmem_version must exist (proves hakmem served it).
# Why: CPython is a heavy realloc/free user with C extensions and threads.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd python3

cat >"$T/work.py" <<'EOF'
import ctypes, hashlib, json, os, sys, threading, zlib

if os.environ.get("EXPECT_HAKMEM") == "1":
    try:
        fn = ctypes.CDLL(None).hakmem_version
        fn.restype = ctypes.c_char_p
        print("served by hakmem", fn().decode(), file=sys.stderr)
    except AttributeError:
        print("hakmem_version not found in the preloaded interpreter", file=sys.stderr)
        sys.exit(3)

h = hashlib.sha256()
def feed(x):
    h.update(repr(x).encode())

# big dicts and lists, built and dropped
for rnd in range(6):
    d = {}
    for i in range(150000):
        d["k%d_%d" % (rnd, i)] = [i, str(i) * (i % 7), (i, rnd)]
    feed(len(d)); feed(d["k%d_%d" % (rnd, 12345)])
    keys = sorted(d)[::997]
    feed(keys[:50])
    for k in list(d)[::2]:
        del d[k]
    feed(sum(len(v[1]) for v in d.values()))
    del d
    lst = [list(range(i % 50)) for i in range(100000)]
    feed(sum(map(len, lst)))
    lst = [x for sub in lst for x in sub if x % 3 == 0]
    feed(len(lst)); feed(lst[-10:])
    del lst

# strings and bytes growth (realloc paths)
s = ""
b = bytearray()
for i in range(200000):
    s += chr(65 + i % 26)
    b += bytes([i & 255]) * (i % 5)
feed(hashlib.md5(s.encode()).hexdigest()); feed(len(b)); feed(zlib.crc32(b))
big = b"x" * (30 << 20)
feed(zlib.crc32(big)); del big
parts = ["%08d" % i for i in range(300000)]
joined = ",".join(parts)
feed(len(joined)); feed(joined[-30:])

# sets, tuples, json, zlib
st = set()
for i in range(200000):
    st.add((i * 7919) % 100003)
feed(len(st)); feed(sorted(st)[:20])
obj = {"a": [dict(x=i, y=[str(i)] * 5) for i in range(20000)]}
js = json.dumps(obj, sort_keys=True)
feed(len(js)); feed(json.loads(js)["a"][777])
z = zlib.compress(js.encode(), 6)
feed(len(zlib.decompress(z)))

# threads allocating concurrently (each OS thread has its own allocator heap)
results = [None] * 4
def work(n):
    acc = 0
    for r in range(30):
        d = {i: str(i) * 3 for i in range(n * 1000, n * 1000 + 20000)}
        acc += sum(len(v) for v in d.values())
        del d
    results[n] = acc
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
feed(results)

print("checksum", h.hexdigest())
EOF

export PYTHONHASHSEED=0
python3 "$T/work.py" >"$T/ref.out" 2>"$T/ref.err" || { cat "$T/ref.err"; fail "reference run without hakmem failed"; }
EXPECT_HAKMEM=1 hak python3 "$T/work.py" >"$T/hak.out" 2>"$T/hak.err"
rc=$?
cat "$T/hak.err"
[ $rc -eq 0 ] || fail "python3 under hakmem exited $rc (repro: EXPECT_HAKMEM=1 LD_PRELOAD=$HAKMEM_LIB python3 work.py)"
check_stderr "$T/hak.err"
same_output "python3 (pymalloc)" "$T/ref.out" "$T/hak.out"

EXPECT_HAKMEM=1 PYTHONMALLOC=malloc hak python3 "$T/work.py" >"$T/hak2.out" 2>"$T/hak2.err"
rc=$?
cat "$T/hak2.err"
[ $rc -eq 0 ] || fail "python3 PYTHONMALLOC=malloc under hakmem exited $rc"
check_stderr "$T/hak2.err"
same_output "python3 (PYTHONMALLOC=malloc)" "$T/ref.out" "$T/hak2.out"
cat "$T/ref.out"
