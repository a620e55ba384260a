"""Storage and process faults against a real `chatrec serve` on loopback (fake LLM backend: fast).

    python benchmarks/faults.py [--lock-s 40] [--out benchmarks/results/faults.json]

One server subprocess with a fresh state folder; while it runs, a probe polls /readyz every
0.25 s and records each transition. The scenarios, in order:

* ``disk_full``: the server's file-size limit is lowered to 4 KiB with ``prlimit`` (RLIMIT_FSIZE;
  no root, no tmpfs needed): every write past 4 KiB into any file fails with EFBIG, which SQLite
  reports as an I/O error, the way a full disk fails a write (SQLITE_FULL). Reads still work.
  Turns are sent, then the limit is lifted and turns are sent again.
* ``db_locked``: another connection holds ``BEGIN EXCLUSIVE`` on the SQLite file for ``--lock-s``
  seconds while turns (and /healthz, /readyz) are sent; then it commits.
* ``index_deleted``: the Chroma folder is deleted while the server runs; turns are sent; then the
  server is restarted (it rebuilds the index at start) and turns are sent again.
* ``kill_9_streaming``: four clients stream turns (SSE) in a loop; the server gets SIGKILL mid-stream;
  it is started again.

Every turn answered 200 with a ``turn_id`` (JSON) or a ``result`` event (SSE) is *acknowledged*;
at the end every acknowledged turn must be a row in SQLite (``lost`` must be 0). Statuses, the
``Retry-After`` values and the /readyz transitions per scenario go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [
    "How do I return my headphones?",
    "Can you recommend a case for my Pixel 8?",
    "What payment methods do you accept?",
    "I need wireless earbuds for running under $100",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`chatrec serve` in a subprocess on a fixed loopback port and state folder."""

    def __init__(self, state: Path, port: int):
        self.state, self.port = state, port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = state / "server.log"

    def start(self, timeout: float = 600) -> float:
        env = {
            **os.environ,
            "CHATREC_DATA_DIR": str(self.state),
            "CHATREC_KB_DIR": str(ROOT / "kb"),
        }
        cmd = [sys.executable, "-m", "chatrec.cli.main", "--backend", "fake", "serve", "--port", str(self.port)]
        cmd += ["--no-ui", "--rate-per-minute-ip", "0", "--rate-per-minute-ip-all", "0", "--rate-per-minute-key", "0"]
        cmd += ["--log-level", "warning"]
        t0 = time.perf_counter()
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit("server not ready in time")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)


class ReadyProbe(threading.Thread):
    """Polls /readyz; keeps (seconds since start, state) at each change: ready / not ready (503) / down."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.t0, self.stop_flag = base, time.monotonic(), threading.Event()
        self.changes: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        with httpx.Client(timeout=2) as http:
            while not self.stop_flag.is_set():
                try:
                    r = http.get(f"{self.base}/readyz")
                    state = "ready" if r.status_code == 200 else f"not ready ({r.status_code})"
                except httpx.HTTPError:
                    state = "down"
                with self.lock:
                    if not self.changes or self.changes[-1][1] != state:
                        self.changes.append((round(time.monotonic() - self.t0, 2), state))
                self.stop_flag.wait(0.25)

    def since(self, t: float) -> list[list[Any]]:
        """Transitions after ``t`` (monotonic), plus the state at ``t``."""
        rel = t - self.t0
        with self.lock:
            before = [c for c in self.changes if c[0] <= rel][-1:]
            return [[round(s - rel, 2), st] for s, st in before + [c for c in self.changes if c[0] > rel]]


TALLIES: list[Tally] = []  # every scenario's, for the final lost-turn check


class Tally:
    """Statuses, Retry-After values, latencies and acknowledged turn ids of one scenario."""

    def __init__(self) -> None:
        TALLIES.append(self)
        self.statuses: Counter[str] = Counter()
        self.retry_after: Counter[str] = Counter()
        self.acknowledged: list[int] = []
        self.latency: list[float] = []
        self.lock = threading.Lock()

    def turn(self, base: str, message: str, timeout: float = 120) -> int:
        t0 = time.perf_counter()
        try:
            r = httpx.post(f"{base}/v1/chat", json={"message": message, "stream": False}, timeout=timeout)
        except httpx.HTTPError as exc:
            with self.lock:
                self.statuses[f"transport:{type(exc).__name__}"] += 1
            return 0
        with self.lock:
            self.statuses[str(r.status_code)] += 1
            self.latency.append(time.perf_counter() - t0)
            if "retry-after" in r.headers:
                self.retry_after[r.headers["retry-after"]] += 1
            if r.status_code == 200:
                self.acknowledged.append(r.json()["turn_id"])
        return r.status_code

    def stream_turn(self, base: str, message: str) -> None:
        """One SSE turn; acknowledged once its ``result`` event (with a turn_id) has arrived."""
        try:
            with httpx.stream("POST", f"{base}/v1/chat", json={"message": message}, timeout=60) as r:
                event = None
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "result":
                        turn_id = json.loads(line[5:]).get("turn_id")
                        with self.lock:
                            self.statuses[str(r.status_code)] += 1
                            if turn_id:
                                self.acknowledged.append(turn_id)
                        return
                with self.lock:
                    self.statuses[f"{r.status_code} (no result event)"] += 1
        except httpx.HTTPError as exc:
            with self.lock:
                self.statuses[f"transport:{type(exc).__name__}"] += 1

    def report(self, probe: ReadyProbe, since: float, **extra: Any) -> dict[str, Any]:
        return {
            "statuses": dict(self.statuses),
            "retry_after": dict(self.retry_after),
            "max_latency_s": round(max(self.latency), 2) if self.latency else None,
            "acknowledged": len(self.acknowledged),
            "readyz": probe.since(since),
            **extra,
        }


def wait_ready(base: str, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return round(time.monotonic() - t0, 2)
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return None


def disk_full(server: Server, probe: ReadyProbe) -> dict[str, Any]:
    t, tally = time.monotonic(), Tally()
    assert server.proc is not None
    pid = server.proc.pid
    before = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, before[1]))
    during = [tally.turn(server.base, MESSAGES[i % 4]) for i in range(6)]
    time.sleep(2)
    ready_during = httpx.get(f"{server.base}/readyz", timeout=5).status_code
    resource.prlimit(pid, resource.RLIMIT_FSIZE, before)
    recovered_in = wait_ready(server.base, 60)
    after = [tally.turn(server.base, MESSAGES[i % 4]) for i in range(3)]
    return tally.report(
        probe, t, during=during, readyz_during=ready_during, ready_again_after_s=recovered_in, after=after
    )


def db_locked(server: Server, probe: ReadyProbe, lock_s: float) -> dict[str, Any]:
    t, tally = time.monotonic(), Tally()
    held = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(server.state / "chatrec.sqlite3", isolation_level=None, timeout=30)
        db.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(lock_s)
        db.execute("COMMIT")
        db.close()

    locker = threading.Thread(target=hold)
    locker.start()
    held.wait(30)
    lock_end = time.monotonic() + lock_s
    health: Counter[str] = Counter()
    clients_seen: list[int] = []

    def client(n: int) -> None:
        while time.monotonic() < lock_end - 1:
            clients_seen.append(tally.turn(server.base, MESSAGES[n % 4]))
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for th in threads:
        th.start()
    while time.monotonic() < lock_end - 1:
        try:
            t0 = time.perf_counter()
            r = httpx.get(f"{server.base}/healthz", timeout=10)
            health[f"{r.status_code} in {'<1s' if time.perf_counter() - t0 < 1 else '>=1s'}"] += 1
        except httpx.HTTPError as exc:
            health[type(exc).__name__] += 1
        time.sleep(1)
    for th in threads:
        th.join()
    locker.join()
    recovered_in = wait_ready(server.base, 60)
    after = [tally.turn(server.base, MESSAGES[i % 4]) for i in range(3)]
    return tally.report(probe, t, lock_s=lock_s, healthz=dict(health), ready_again_after_s=recovered_in, after=after)


def index_deleted(server: Server, probe: ReadyProbe) -> dict[str, Any]:
    t, tally = time.monotonic(), Tally()
    shutil.rmtree(server.state / "chroma")
    during = [tally.turn(server.base, MESSAGES[i % 4]) for i in range(4)]
    time.sleep(1)
    server.stop()
    restart_s = server.start()
    after = [tally.turn(server.base, MESSAGES[i % 4]) for i in range(3)]
    return tally.report(
        probe,
        t,
        during=during,
        restart_ready_s=round(restart_s, 1),
        after_restart=after,
        note="the running server keeps reading the deleted files it has open (Linux); a restart rebuilds the index",
    )


def kill_9_streaming(server: Server, probe: ReadyProbe) -> dict[str, Any]:
    t, tally = time.monotonic(), Tally()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            tally.stream_turn(server.base, MESSAGES[(n + i) % 4])
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    time.sleep(4)
    server.stop(signal.SIGKILL)
    stop.set()
    for th in threads:
        th.join()
    restart_s = server.start()
    after = [tally.turn(server.base, MESSAGES[i % 4]) for i in range(2)]
    return tally.report(probe, t, restart_ready_s=round(restart_s, 1), after_restart=after)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lock-s", type=float, default=40)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "faults.json"))
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="chatrec-faults-"))
    server = Server(state, free_port())
    first_ready = server.start()
    probe = ReadyProbe(server.base)
    probe.start()
    baseline = Tally()
    for m in MESSAGES:
        baseline.turn(server.base, m)
    scenarios: dict[str, Any] = {"baseline": baseline.report(probe, probe.t0)}
    try:
        for name, run in (
            ("disk_full", lambda: disk_full(server, probe)),
            ("db_locked", lambda: db_locked(server, probe, args.lock_s)),
            ("index_deleted", lambda: index_deleted(server, probe)),
            ("kill_9_streaming", lambda: kill_9_streaming(server, probe)),
        ):
            print(f"-- {name}", flush=True)
            started = time.monotonic()
            result = run()
            result["scenario_s"] = round(time.monotonic() - started, 1)
            scenarios[name] = result
            print(json.dumps(result), flush=True)
    finally:
        probe.stop_flag.set()
        server.stop()
    # every acknowledged turn of every scenario must be stored
    db = sqlite3.connect(state / "chatrec.sqlite3")
    rows = {r[0] for r in db.execute("SELECT id FROM turns")}
    db.close()
    acks = [i for tally in TALLIES for i in tally.acknowledged]
    result = {
        "benchmark": "faults",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "backend": "fake",
        "first_ready_s": round(first_ready, 1),
        "scenarios": scenarios,
        "acknowledged_turns": len(acks),
        "rows_in_sqlite": len(rows),
        "lost": sum(1 for i in acks if i not in rows),
        "server_log_tail": server.log.read_text()[-3000:].splitlines()[-30:],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "server_log_tail"}, indent=2))
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
