# seg_work.py — a workload for the t_seg_* tests (not a test itself): lives
# past the segment's publishing delay, optionally waits for a flag file
# first, then starts threads (fresh counter slots) that allocate small and
# large blocks, and prints a sum that does not depend on the allocator.
#   python3 seg_work.py [FLAGFILE]
import os
import sys
import threading
import time

flag = sys.argv[1] if len(sys.argv) > 1 else None
keep = []
deadline = time.time() + 30
while flag and not os.path.exists(flag) and time.time() < deadline:
    keep = [bytes(3 << 20)]  # a large block: a slow path, so it publishes
    time.sleep(0.01)
time.sleep(0.1)


def work(i, out):
    s = 0
    for k in range(20000):
        b = bytearray((k % 500) + 1 + i)
        s += len(b)
        if k % 1000 == 0:
            s += len(bytes(3 << 20)) >> 20
    out[i] = s


out = [0] * 8
ts = [threading.Thread(target=work, args=(i, out)) for i in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("sum", sum(out), "flag" if flag and os.path.exists(flag) else "")
