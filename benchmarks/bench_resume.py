"""Resume check for `chatrec eval`: kill a run half way, restart it, compare with an uninterrupted run.

    python benchmarks/bench_resume.py --kb /tmp/redial_kb \
        --transcripts /tmp/redial_kb/transcripts.jsonl [--limit 40] [--workers 2] \
        [--out benchmarks/results/eval_resume.json]

1. ``chatrec eval`` over the first ``--limit`` conversations, uninterrupted (run A).
2. The same command into another folder; once ``--kill-at`` conversations are finished
   the whole process group gets SIGKILL (no clean-up runs, like a power cut), then the
   same command is started again and runs to the end (run B).
3. Every metric of every system in the two ``summary.json`` files is compared (value
   and CI bounds); latency metrics are timings and are left out. The result file lists
   how many were compared and every one that differs (there should be none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def eval_cmd(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "chatrec",
        "--kb",
        args.kb,
        "eval",
        args.transcripts,
        "--out",
        str(out),
        "--limit",
        str(args.limit),
        "--workers",
        str(args.workers),
        "--seed",
        "7",
    ]


def finished(out: Path) -> int:
    try:
        return len((out / "convs.jsonl").read_bytes().splitlines())
    except FileNotFoundError:
        return 0


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def killed_run(cmd: list[str], out: Path, kill_at: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while finished(out) < kill_at:
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before {kill_at} conversations were finished; lower --kill-at")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return {"killed_after_s": round(time.perf_counter() - t0, 1), "finished_when_killed": finished(out)}


def flat(summary: dict) -> dict[tuple[str, str], tuple]:
    return {
        (system, name): (m["value"], m["ci_low"], m["ci_high"], m["n"])
        for system, body in summary["systems"].items()
        for name, m in body["metrics"].items()
        if not name.startswith("cost.latency")
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--transcripts", required=True)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--kill-at", type=int, default=None, help="finished conversations before the kill (limit/2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_resume.json"))
    args = ap.parse_args()
    kill_at = args.kill_at or args.limit // 2
    work = Path(tempfile.mkdtemp(prefix="chatrec-resume-"))
    try:
        a, b = work / "uninterrupted", work / "resumed"
        wall_a = run(eval_cmd(args, a))
        kill = killed_run(eval_cmd(args, b), b, kill_at)
        partial = {
            name: len((b / name).read_bytes().splitlines()) if (b / name).exists() else 0
            for name in ("convs.jsonl", "turns.jsonl", "features.jsonl")
        }
        wall_b = run(eval_cmd(args, b))
        sa = json.loads((a / "summary.json").read_text())
        sb = json.loads((b / "summary.json").read_text())
        fa, fb = flat(sa), flat(sb)
        differ = [
            {"system": s, "metric": m, "uninterrupted": fa.get((s, m)), "resumed": fb.get((s, m))}
            for s, m in sorted(set(fa) | set(fb))
            if fa.get((s, m)) != fb.get((s, m))
        ]
        same_turns = [
            sorted(
                (r["system"], r["conversation_id"], r["turn_index"], tuple(r.get("ranked", [])))
                for r in map(json.loads, (d / "turns.jsonl").read_text().splitlines())
            )
            for d in (a, b)
        ]
        headline = {
            s: {
                k: sa["systems"][s]["metrics"].get(k, {}).get("value")
                for k in ("rec_new.recall@10", "rec.recall@10", "rec.recall@50")
            }
            for s in sa["systems"]
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "command": "python " + " ".join(sys.argv),
        "conversations": sa["run"]["conversations"],
        "turns": sa["run"]["turns"],
        "uninterrupted_wall_s": round(wall_a, 1),
        "interrupted": {**kill, "rows_on_disk_after_kill": partial, "restart_wall_s": round(wall_b, 1)},
        "metrics_compared": len(fa),
        "metrics_differing": differ,
        "turn_rows_and_ranked_lists_identical": same_turns[0] == same_turns[1],
        "headline_uninterrupted": headline,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
