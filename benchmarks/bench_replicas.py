"""Two replicas on loopback: PostgreSQL + two `chatrec serve` + one shared engine, N clients, one replica killed midway.

    python benchmarks/bench_replicas.py [--clients 8,32] [--seconds 60] [--delay 0.01] [--data-dir DIR]
                                        [--index server|folder]

- PostgreSQL: a throwaway cluster (Debian's postgresql, as in tests/contract/conftest.py; fsync off).
- Engine: a scripted OpenAI-compatible server in this process (``ScriptedEngine`` from
  tests/integration/test_replicas.py) streaming the grounded answer template, ``--delay`` s per
  word; the replicas reach it over HTTP through the ``openai`` backend, so the figures are
  chatrec's own cost per turn plus that engine time (not a real model's speed).
- Index: ``--index server`` (default) starts one Chroma server (``chroma run --path DIR --host
  127.0.0.1 --port P``, as tests/contract/conftest.py's ``chroma_server``), builds the index on
  it with ``chatrec index`` and points both replicas at it (``retrieval.chroma_host`` /
  ``chroma_port``); it is stopped at the end. ``--index folder``: one embedded Chroma folder
  under ``--data-dir``, built once and opened by both replicas.
- Replicas: ``chatrec serve`` x 2 on one PostgreSQL store and that one index,
  ``--max-concurrent 8 --max-queue 64`` each.
- Load: per phase (client count), N client threads run conversations of 4 turns (POST
  /v1/chat, streamed) for ``--seconds``; client i prefers replica i % 2. At half time replica 1
  is killed (SIGKILL); a client whose request fails (connection error, a broken stream, 503)
  retries the same message on the other replica (then once more back), as a load balancer
  would, and from then on prefers the one that answered; a turn is an error when all 3 tries
  fail. Replica 1 is restarted between phases.
- Checked after each phase: every acknowledged turn (a ``result`` event received) is a row in
  the store; stored turns beyond the acknowledged ones are reported (saved, reply lost in the kill).

Results: benchmarks/results/replicas.json and replicas.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]
from contract.conftest import PgServer, _pg_bin, free_port  # noqa: E402
from test_replicas import ScriptedEngine  # noqa: E402

CHATREC = str(Path(sys.executable).with_name("chatrec"))
CONVERSATION = [
    "Can you recommend a case for my Pixel 8?",
    "Which one is the cheapest?",
    "How do I return my headphones?",
    "I need wireless earbuds for running under $100",
]


def start_pg(folder: Path) -> PgServer:
    bindir = _pg_bin()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        import shutil

        shutil.chown(folder, user)
    pg = PgServer(bindir, folder, free_port(), user)
    init = pg.run("initdb", "-D", str(pg.data), "-U", "chatrec", "--auth=trust", "-E", "UTF8", "--no-sync")
    assert init.returncode == 0, init.stderr
    started = pg.start()
    assert started.returncode == 0, started.stderr
    pg.admin("CREATE DATABASE bench")
    return pg


def start_chroma(folder: Path) -> tuple[subprocess.Popen, int]:
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        sys.exit("the `chroma` command (chromadb) is not installed")
    port = free_port()
    log = (folder / "chroma.log").open("w")
    cmd = [str(chroma), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_proc(proc)
            sys.exit(f"`chroma run` did not start: {(folder / 'chroma.log').read_text(errors='replace')[-800:]}")
        time.sleep(0.2)


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Replica:
    def __init__(self, env: dict[str, str], log: Path, port: int):
        self.env, self.log, self.port = env, log, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        t0 = time.monotonic()
        cmd = [CHATREC, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui", "--log-level", "warning"]
        cmd += ["--max-concurrent", "8", "--max-queue", "64"]
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        while time.monotonic() - t0 < 300:
            if self.proc.poll() is not None:
                sys.exit(f"replica exited: {self.log.read_text()[-1500:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    chat(self.url, "hello", None)  # warm-up: the embedder and router load on first use
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        sys.exit("replica not ready in 300 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Failed(Exception):
    pass


def chat(base: str, message: str, cid: str | None) -> dict:
    body = {"message": message, "conversation_id": cid, "stream": True}
    event, result = None, None
    try:
        with httpx.stream("POST", base + "/v1/chat", json=body, timeout=120) as resp:
            if resp.status_code != 200:
                raise Failed(f"status {resp.status_code}")
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "result":
                    result = json.loads(line[6:])
    except httpx.HTTPError as exc:
        raise Failed(type(exc).__name__) from None
    if result is None:
        raise Failed("stream ended without a result")
    return result


def phase(replicas: list[Replica], clients: int, seconds: float) -> dict:
    t_start = time.monotonic()
    stop_at = t_start + seconds
    kill_at = t_start + seconds / 2
    lock = threading.Lock()
    acked: list[tuple[float, float, int, str]] = []  # (t done, latency, turn id, conversation)
    errors: list[str] = []
    retries = [0]
    conversations: set[str] = set()

    def client(i: int) -> None:
        prefer = i % 2
        while time.monotonic() < stop_at:
            cid = None
            for message in CONVERSATION:
                if time.monotonic() >= stop_at:
                    return
                t0 = time.monotonic()
                res = None
                for attempt in range(3):  # the first try, then the other replica, then back once
                    try:
                        res = chat(replicas[prefer].url, message, cid)
                        break
                    except Failed as exc:
                        failure = str(exc)
                        with lock:
                            retries[0] += 1
                        prefer = 1 - prefer  # the balancer sends it to the other replica
                        time.sleep(0.2 * attempt)
                if res is None:
                    with lock:
                        errors.append(failure)
                    break  # a new conversation
                t1 = time.monotonic()
                cid = res["conversation_id"]
                with lock:
                    acked.append((t1 - t_start, t1 - t0, res["turn_id"], cid))
                    conversations.add(cid)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, kill_at - time.monotonic()))
    replicas[0].kill()
    killed_at = time.monotonic() - t_start
    for t in threads:
        t.join(seconds + 180)
    lat = [a[1] for a in acked]
    before = [a for a in acked if a[0] < killed_at]
    after = [a for a in acked if a[0] >= killed_at]
    return {
        "clients": clients,
        "seconds": seconds,
        "killed_at_s": round(killed_at, 1),
        "turns_acknowledged": len(acked),
        "turns_per_s": round(len(acked) / seconds, 2),
        "turns_per_s_two_replicas": round(len(before) / killed_at, 2) if killed_at else None,
        "turns_per_s_one_replica": round(len(after) / (seconds - killed_at), 2),
        "p50_s": round(percentile(lat, 0.5), 3) if lat else None,
        "p95_s": round(percentile(lat, 0.95), 3) if lat else None,
        "retried_on_other_replica": retries[0],
        "errors": len(errors),
        "error_kinds": {e: errors.count(e) for e in sorted(set(errors))},
        "_acked_ids": [a[2] for a in acked],
        "_conversations": sorted(conversations),
    }


def check_stored(url: str, row: dict) -> None:
    import psycopg

    acked = set(row.pop("_acked_ids"))
    convs = row.pop("_conversations")
    with psycopg.connect(url) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM turns WHERE conversation_id = ANY(%s)", (convs,))}
    row["acknowledged_stored"] = len(acked & ids)
    row["acknowledged_lost"] = len(acked - ids)
    row["stored_not_acknowledged"] = len(ids - acked)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--delay", type=float, default=0.01, help="engine seconds per streamed word")
    ap.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "chatrec-bench-replicas"))
    ap.add_argument(
        "--index",
        choices=["server", "folder"],
        default="server",
        help="server: one `chroma run` both replicas use; folder: one embedded Chroma folder under --data-dir",
    )
    args = ap.parse_args()

    engine = ScriptedEngine(args.delay)
    work = Path(tempfile.mkdtemp(prefix="chatrec-replicas-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="chatrec-replicas-pg-"))  # its own folder: chowned to postgres as root
    pg = start_pg(pg_dir)
    url = pg.url("bench")
    chroma: subprocess.Popen | None = None
    index_env: dict[str, str] = {}
    if args.index == "server":
        chroma, chroma_port = start_chroma(work)
        index_env = {"CHATREC_RETRIEVAL__CHROMA_HOST": "127.0.0.1", "CHATREC_RETRIEVAL__CHROMA_PORT": str(chroma_port)}
    env = {
        **os.environ,
        "CHATREC_KB_DIR": str(ROOT / "kb"),
        "CHATREC_DATA_DIR": args.data_dir,
        "CHATREC_STORE__URL": url,
        "CHATREC_LLM__BACKEND": "openai",
        "CHATREC_LLM__BASE_URL": engine.url,
        "CHATREC_SERVE__RATE_PER_MINUTE_IP": "0",
        "CHATREC_SERVE__RATE_PER_MINUTE_KEY": "0",
        "CHATREC_SERVE__RATE_PER_MINUTE_IP_ALL": "0",
        "OMP_NUM_THREADS": "1",
        "ANONYMIZED_TELEMETRY": "False",
        **index_env,
    }
    replicas = [Replica(env, work / f"replica{i}.log", free_port()) for i in (1, 2)]
    rows, startup = [], []
    try:
        index = subprocess.run([CHATREC, "index"], env=env, capture_output=True, text=True, timeout=600)
        assert index.returncode == 0, index.stderr[-1500:]
        for r in replicas:
            startup.append(round(r.start(), 1))
        for n in [int(c) for c in args.clients.split(",")]:
            if replicas[0].proc is None or replicas[0].proc.poll() is not None:
                startup.append(round(replicas[0].start(), 1))
            load0 = os.getloadavg()[0]
            row = phase(replicas, n, args.seconds)
            row["load_avg_1m_start"] = round(load0, 1)
            row["load_avg_1m_end"] = round(os.getloadavg()[0], 1)
            check_stored(url, row)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        for r in replicas:
            r.stop()
        engine.stop()
        if chroma is not None:
            stop_proc(chroma)
        pg.stop()
        import shutil

        shutil.rmtree(pg_dir, ignore_errors=True)

    out = {
        "engine": f"scripted OpenAI-compatible engine over HTTP, {args.delay} s per streamed word",
        "store": "PostgreSQL 15 on loopback (fsync off)",
        "index": "one Chroma server (chroma run) shared by both replicas"
        if args.index == "server"
        else "embedded Chroma, one folder shared by both replicas",
        "replicas": 2,
        "replica_gate": "max_concurrent 8, max_queue 64",
        "replica_startup_s": startup,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "phases": rows,
    }
    res = ROOT / "benchmarks" / "results"
    (res / "replicas.json").write_text(json.dumps(out, indent=2) + "\n")
    head = (
        "| clients | s | turns/s | 2 replicas | 1 replica | p50 s | p95 s | retried | errors | acked "
        "| acked stored | stored not acked | load |"
    )
    lines = [head, "|" + "---|" * 13]
    for row in rows:
        lines.append(
            f"| {row['clients']} | {row['seconds']:.0f} | {row['turns_per_s']} | {row['turns_per_s_two_replicas']} | "
            f"{row['turns_per_s_one_replica']} | {row['p50_s']} | {row['p95_s']} | {row['retried_on_other_replica']} | "
            f"{row['errors']} | {row['turns_acknowledged']} | {row['acknowledged_stored']} | "
            f"{row['stored_not_acknowledged']} | {row['load_avg_1m_start']}-{row['load_avg_1m_end']} |"
        )
    (res / "replicas.md").write_text(
        f"Two replicas, {out['engine']}; {out['store']}; index: {out['index']}; replica 1 SIGKILLed at half time.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
