#!/usr/bin/env bash
# t_real_sqlite — SQLite (through python3's sqlite3 module) under hakmem.
#
# Creates a file database, inserts 100k rows in transactions, builds indexes,
# runs aggregate / join / group-by / window queries, updates and deletes, and
# VACUUMs; then the same against an in-memory database. Printed results must
# be identical with and without LD_PRELOAD=libhakmem.so, and the preloaded
# interpreter must see hakmem_version.
# Why: SQLite drives malloc/realloc hard (page cache, sorter, statement
# objects) and notices corruption through its own integrity checks.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd python3
python3 -c 'import sqlite3' 2>/dev/null || skip "python3 has no sqlite3 module"

cat >"$T/sq.py" <<'EOF'
import ctypes, os, sqlite3, sys
if os.environ.get("EXPECT_HAKMEM") == "1":
    if not hasattr(ctypes.CDLL(None), "hakmem_version"):
        print("hakmem_version not found in the preloaded interpreter", file=sys.stderr)
        sys.exit(3)

def run(path):
    if path != ":memory:" and os.path.exists(path):
        os.unlink(path)
    db = sqlite3.connect(path)
    c = db.cursor()
    c.execute("PRAGMA cache_size=-20000")
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, blob BLOB)")
    c.execute("CREATE TABLE g (grp INTEGER PRIMARY KEY, label TEXT)")
    rows = []
    for i in range(100000):
        rows.append((i, (i * 7919) % 1000, "name-%07d-%s" % (i, "x" * (i % 40)),
                     (i % 997) * 1.5, bytes([i & 255]) * (i % 300)))
        if len(rows) == 10000:
            c.executemany("INSERT INTO t VALUES (?,?,?,?,?)", rows)
            db.commit()
            rows = []
    c.executemany("INSERT INTO g VALUES (?,?)", [(i, "label%d" % i) for i in range(1000)])
    db.commit()
    c.execute("CREATE INDEX t_grp ON t(grp)")
    c.execute("CREATE INDEX t_name ON t(name)")
    q = [
        "SELECT count(*), sum(val), avg(length(name)), sum(length(blob)) FROM t",
        "SELECT grp, count(*), round(sum(val),2) FROM t GROUP BY grp ORDER BY grp LIMIT 20",
        "SELECT g.label, count(*) FROM t JOIN g USING(grp) WHERE t.val > 700 GROUP BY g.label ORDER BY 2 DESC, 1 LIMIT 10",
        "SELECT name FROM t WHERE name LIKE 'name-00123%' ORDER BY name",
        "SELECT grp, max(val) OVER (PARTITION BY grp) FROM t WHERE id % 5000 = 0 ORDER BY id",
        "SELECT group_concat(id, ',') FROM (SELECT id FROM t WHERE grp = 42 ORDER BY id)",
        "SELECT count(DISTINCT substr(name, 1, 9)) FROM t",
    ]
    for s in q:
        print(s[:40], c.execute(s).fetchall())
    c.execute("UPDATE t SET name = name || '-upd', blob = zeroblob(500) WHERE id % 3 = 0")
    c.execute("DELETE FROM t WHERE id % 7 = 0")
    db.commit()
    print("after update/delete", c.execute("SELECT count(*), sum(length(name)), sum(length(blob)) FROM t").fetchall())
    print(c.execute("SELECT * FROM t ORDER BY name DESC LIMIT 3").fetchall()[0][:4])
    if path != ":memory:":
        c.execute("VACUUM")
    print("integrity", c.execute("PRAGMA integrity_check").fetchall())
    db.close()

run(sys.argv[1])
run(":memory:")
EOF

python3 "$T/sq.py" "$T/ref.db" >"$T/ref.out" 2>"$T/ref.err" || { cat "$T/ref.err"; fail "reference run failed"; }
EXPECT_HAKMEM=1 hak python3 "$T/sq.py" "$T/hak.db" >"$T/hak.out" 2>"$T/hak.err"
rc=$?
cat "$T/hak.err"
[ $rc -eq 0 ] || fail "sqlite workload under hakmem exited $rc"
check_stderr "$T/hak.err"
same_output "sqlite3" "$T/ref.out" "$T/hak.out"
grep -c integrity "$T/hak.out"
