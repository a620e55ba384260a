"""Does the live `chatrec ask` show the ids the evaluation scored? (issue 19, "what is
evaluated is what runs")

Takes an `chatrec eval --train` run and the training KB it learned from (with its
fine-tuned encoder, if any), installs the run's fitted ranker in a copy of that KB
(`<kb>/artifacts/ranker.json`, where the live turn loads it), then asks the live CLI each
scored conversation's first customer message (`chatrec --kb COPY ask --json MESSAGE`, a new
conversation, no user: what the replay saw at turn 1) and compares the shown ids with the
run's `turns.jsonl` row for that turn. The replay ranks every turn the logged agent answered
with items; the live router may instead ask a question or chat, so ids are compared where
the live turn also went to items. Prints one line per turn (ids) and the counts;
``--out`` keeps digests of the lists only.

    python benchmarks/redial_live_parity.py /tmp/runs/redial_train --kb /tmp/redial_kb --n 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from redial_ten_turns import digest, shown_turns  # benchmarks/ is on sys.path when this runs as a script


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--kb", type=Path, required=True, help="the training KB (its artifacts/encoder is used)")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = shown_turns(args.run, first_only=True)
    picked = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "kb"
        shutil.copytree(args.kb, kb, ignore=shutil.ignore_patterns("ranker.json"))
        (kb / "artifacts").mkdir(exist_ok=True)
        shutil.copy(args.run / "ranker.json", kb / "artifacts" / "ranker.json")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        state = str(Path(tmp) / "state")
        for r in picked:
            cmd = [sys.executable, "-m", "chatrec", "--kb", str(kb), "--data-dir", state, "ask", "--json", r["input"]]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            answer = json.loads(done.stdout[done.stdout.index("{") :])
            live = [x["item_id"] for x in answer.get("recommendations", [])]
            same = live == r["shown"]
            results.append(
                {  # digests, not ReDial's ids: equal lists have equal digests
                    "turn": digest([r["conversation_id"], 1]),
                    "route": answer.get("route"),
                    "scored_digest": digest(r["shown"]),
                    "live_digest": digest(live),
                    "shown": len(live),
                    "same": same,
                }
            )
            print(f"{r['conversation_id']}: route {answer.get('route')}, scored {r['shown']}, live {live}: {same}")
    ranked = [x for x in results if x["route"] in ("recommend", "both")]
    print(
        f"{len(ranked)} of {len(results)} first turns routed to items live (the replay ranks every logged "
        f"recommendation turn); of those, {sum(x['same'] for x in ranked)} show the same ids in the same order"
    )
    if args.out:
        note = (
            f"benchmarks/redial_live_parity.py {args.run} --n {args.n} --seed {args.seed}: the live `chatrec ask "
            "--json` with the run's fitted ranker installed, against the ids the run scored (digests of the lists "
            "only; ReDial's ids and messages stay in ../shared)"
        )
        args.out.write_text(json.dumps({"run": note, "turns": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
