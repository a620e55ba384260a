"""Load on loopback: N concurrent chat clients against `chatrec serve` for a fixed time.

    python benchmarks/bench_load.py [--clients 1,4,8] [--seconds 60] [--backend transformers|llamacpp]
                                    [--slots 4] [--threads 1]

Starts the server in a subprocess on 127.0.0.1 with a fresh state folder; for each client
count in turn, N client threads send turns to POST /v1/chat (stream=false) in a loop until
the phase's time is up (a 503/429 is counted, then retried after Retry-After). Then the
server is stopped and every acknowledged turn is checked to be a row in SQLite. The serve
gate lets in as many turns at once as the engine has slots (llamacpp: ``--slots``; NF4: 1).
Results go to benchmarks/results/load.json and load.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import percentile

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [
    "How do I return my headphones?",
    "Can you recommend a case for my Pixel 8?",
    "not that brand",
    "What payment methods do you accept?",
    "I need wireless earbuds for running under $100",
    "Where is my order #VW-48213?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="8", help="client counts, one phase each: 1,4,8")
    ap.add_argument("--seconds", type=float, default=60, help="per phase")
    ap.add_argument("--backend", default="transformers", choices=["transformers", "llamacpp", "fake"])
    ap.add_argument(
        "--slots",
        type=int,
        default=None,
        help="llm.slots: generations decoded at once (the serve gate follows); unset: the backend default",
    )
    ap.add_argument("--threads", type=int, default=None, help="llm.threads")
    ap.add_argument("--max-queue", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load.json"))
    args = ap.parse_args()

    state = tempfile.mkdtemp(prefix="chatrec-load-")
    port = free_port()
    env = {**os.environ, "CHATREC_DATA_DIR": state, "CHATREC_KB_DIR": str(ROOT / "kb")}
    if args.slots:
        env["CHATREC_LLM__SLOTS"] = str(args.slots)
    if args.threads:
        env["CHATREC_LLM__THREADS"] = str(args.threads)
    counts = [int(c) for c in str(args.clients).split(",")]
    load_before = os.getloadavg()
    cmd = [
        sys.executable,
        "-m",
        "chatrec.cli.main",
        "--backend",
        args.backend,
        "serve",
        "--port",
        str(port),
        "--no-ui",
        "--rate-per-minute-ip",
        "0",
        "--rate-per-minute-key",
        "0",
        "--rate-per-minute-ip-all",
        "0",
        "--max-queue",
        str(args.max_queue),
        "--log-level",
        "warning",
    ]
    t_start = time.perf_counter()
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[int] = []
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("server exited:\n" + (server.stderr.read() if server.stderr else ""))
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        ready_s = time.perf_counter() - t_start
        slots = ready.json().get("max_concurrent")  # the gate's slots
        httpx.post(f"{base}/v1/chat", json={"message": "hi", "stream": False}, timeout=600)  # warm-up, not counted
        phases = [phase(base, n, args.seconds, acknowledged) for n in counts]
    finally:
        server.terminate()
        server.wait(timeout=30)

    db = sqlite3.connect(Path(state) / "chatrec.sqlite3")
    rows = {r[0] for r in db.execute("SELECT id FROM turns")}
    lost = [t for t in acknowledged if t not in rows]
    load_after = os.getloadavg()
    result = {
        "benchmark": "load",
        "command": "python benchmarks/bench_load.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "backend": args.backend,
        "gate_slots": slots,
        "seconds_per_phase": args.seconds,
        "server_ready_s": round(ready_s, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "phases": phases,
        "acknowledged_turns": len(acknowledged),
        "rows_in_sqlite": len(rows),
        "lost": len(lost),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Load through `chatrec serve` ({args.backend}, gate slots {slots})",
        "",
        f"`{result['command']}`; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(shared machine); acknowledged turns lost: {len(lost)}.",
        "",
        "| clients | turns | p50 s | p95 s | responses |",
        "|---|---|---|---|---|",
    ]
    for ph in phases:
        lat = ph["latency_s"]
        lines.append(
            f"| {ph['clients']} | {ph['turns_completed']} | {lat['p50']} | {lat['p95']} | {ph['responses_by_status']} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def phase(base: str, clients: int, seconds: float, acknowledged: list[int]) -> dict:
    """``clients`` threads, each sending turns in its own conversation until ``seconds`` are up."""
    t_phase = time.perf_counter()
    lock = threading.Lock()
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    stop_at = time.monotonic() + seconds

    def client(n: int) -> None:
        i = 0
        cid = None
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < stop_at:
                msg = MESSAGES[(n + i) % len(MESSAGES)]
                body = {"message": msg, "stream": False, "user_id": f"U{(n % 60) + 1:03d}"}
                if cid:
                    body["conversation_id"] = cid
                t0 = time.perf_counter()
                try:
                    r = http.post(f"{base}/v1/chat", json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        outcomes[f"transport:{type(exc).__name__}"] += 1
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    outcomes[str(r.status_code)] += 1
                    if r.status_code == 200:
                        latencies.append(dt)
                        data = r.json()
                        acknowledged.append(data["turn_id"])
                        cid = data["conversation_id"]
                        i += 1
                if r.status_code in (429, 503):
                    time.sleep(min(float(r.headers.get("Retry-After", "1")), max(0.0, stop_at - time.monotonic())))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "clients": clients,
        "wall_s": round(time.perf_counter() - t_phase, 1),
        "turns_completed": len(latencies),
        "latency_s": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p95": round(percentile(latencies, 0.95), 2) if latencies else None,
        },
        "responses_by_status": dict(outcomes),
    }


if __name__ == "__main__":
    main()
