"""Store latency: SQLite file vs PostgreSQL on loopback, one thread, one conversation.

    .venv/bin/python benchmarks/bench_store.py [--turns 300]

Starts a throwaway PostgreSQL cluster (Debian's server binaries, the helpers of
tests/contract/conftest.py) with its default durability (fsync on), saves ``--turns``
turns and reads them back on each store, and prints the time per call. Figures in
docs/scaling.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "contract"))

import conftest as servers  # noqa: E402

from chatrec.store.base import Store  # noqa: E402
from chatrec.store.postgres import PostgresStore  # noqa: E402
from chatrec.store.sqlite import SQLiteStore  # noqa: E402


def measure(store: Store, label: str, turns: int) -> None:
    cid = store.new_conversation("u")
    t = time.perf_counter()
    for n in range(turns):
        store.save_turn(cid, {"n": n}, "hello " * 20, "reply " * 60, "recommend", None, ["A", "B"], {"text": "x" * 500})
    saved = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(turns):
        store.load_state(cid)
    read = time.perf_counter() - t
    print(f"{label}: save_turn {1000 * saved / turns:.2f} ms, load_state {1000 * read / turns:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=300)
    args = ap.parse_args()
    bindir = servers._pg_bin()
    if bindir is None:
        sys.exit("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="chatrec-pg-bench-"))
    import os
    import pwd

    user = "postgres" if os.geteuid() == 0 and pwd.getpwnam("postgres") else None
    if user:
        shutil.chown(folder, user)
    pg = servers.PgServer(bindir, folder, servers.free_port(), user)
    data = str(folder / "data")
    try:
        assert pg.run("initdb", "-D", data, "-U", "chatrec", "--auth=trust", "-E", "UTF8").returncode == 0
        opts = f"-h 127.0.0.1 -p {pg.port} -k {folder}"
        assert pg.run("pg_ctl", "-D", data, "-o", opts, "-l", str(folder / "log"), "-w", "start").returncode == 0
        pg.admin("CREATE DATABASE bench")
        measure(SQLiteStore(folder / "bench.sqlite3"), "sqlite (WAL, synchronous=NORMAL)", args.turns)
        store = PostgresStore(pg.url("bench"))
        measure(store, "postgresql (fsync on, loopback)", args.turns)
        store.close()
    finally:
        pg.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
