"""Does `chatrec eval` keep its memory flat over many conversations?

    python benchmarks/bench_eval_memory.py [--conversations 10000] [--out benchmarks/results/eval_memory.json]

Writes N synthetic conversations (each the opening customer message and the logged agent
reply of a demo-KB conversation, cycled, with a fresh conversation id) to a temporary
file, replays them with the evaluator in this process (one worker; the full system and
the three baselines, no ablations, so each conversation is cheap), and samples this
process's resident set size (VmRSS) once a second next to the number of finished
conversations. Reports the RSS at every 10% of the run, the growth from the first 10% to
the end of the replay, and the peak while the summary (scores, bootstrap, HTML) is built.
Linux only (reads /proc/self/status).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from chatrec.config import load_settings  # noqa: E402
from chatrec.eval.options import EvalOptions  # noqa: E402
from chatrec.eval.runner import run_eval  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def synthetic(src: Path, dst: Path, n: int) -> None:
    """``n`` two-turn conversations cut from the demo logs, ids S00001..."""
    openings = []
    for raw in src.read_text(encoding="utf-8").splitlines():
        conv = json.loads(raw)
        turns = conv["turns"]
        if len(turns) >= 2 and turns[0]["role"] == "user" and turns[1]["role"] == "agent":
            openings.append({**conv, "turns": turns[:2]})
    with dst.open("w", encoding="utf-8") as fh:
        for k in range(n):
            conv = dict(openings[k % len(openings)])
            conv["conversation_id"] = f"S{k + 1:05d}"
            fh.write(json.dumps(conv) + "\n")


class Sampler(threading.Thread):
    """(seconds, finished conversations, RSS MB) once a second."""

    def __init__(self, convs_file: Path):
        super().__init__(daemon=True)
        self.convs_file, self.samples, self.stop = convs_file, [], threading.Event()
        self.t0 = time.perf_counter()

    def finished(self) -> int:
        try:
            with self.convs_file.open("rb") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append((round(time.perf_counter() - self.t0, 1), self.finished(), round(rss_mb(), 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_memory.json"))
    args = ap.parse_args()
    n = args.conversations
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        transcripts = tmp_p / "synthetic.jsonl"
        synthetic(ROOT / "kb" / "transcripts.jsonl", transcripts, n)
        settings = load_settings(kb_dir=str(ROOT / "kb"), data_dir=str(tmp_p / "data"))
        opts = EvalOptions(transcripts=str(transcripts), out=str(tmp_p / "run"), ablations=[], baselines=True)
        rss_start = rss_mb()
        sampler = Sampler(tmp_p / "run" / "convs.jsonl")
        sampler.start()
        t0 = time.perf_counter()
        summary = run_eval(settings, opts, progress=True)
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
    samples = sampler.samples
    replay = [s for s in samples if s[1] < n]  # before the last conversation finished: the replay itself
    after = [s for s in samples if s[1] >= n]  # summary, learned fusion, bootstrap, HTML

    def at(frac: float) -> dict:
        target = frac * n
        s = min(replay, key=lambda s: abs(s[1] - target))
        return {"conversations_done": s[1], "rss_mb": s[2], "t_s": s[0]}

    marks = [at(f / 10) for f in range(1, 10)] + (
        [{"conversations_done": replay[-1][1], "rss_mb": replay[-1][2], "t_s": replay[-1][0]}] if replay else []
    )
    first, last = marks[0], marks[-1]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "command": "python " + " ".join(sys.argv),
        "conversations": n,
        "evaluated": summary["run"]["conversations"],
        "agent_turns": summary["run"]["turns"],
        "systems": summary["run"]["systems"],
        "wall_s": round(wall, 1),
        "rss_mb_before_eval": round(rss_start, 1),
        "rss_during_replay": marks,
        "replay_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "replay_growth_mb_per_1000_conversations": round(
            (last["rss_mb"] - first["rss_mb"])
            / max(last["conversations_done"] - first["conversations_done"], 1)
            * 1000,
            2,
        ),
        "peak_rss_mb_replay": max((s[2] for s in replay), default=None),
        "peak_rss_mb_summary": max((s[2] for s in after), default=None),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
