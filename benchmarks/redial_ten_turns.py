"""Ten of an eval run's recommendation turns, picked at random with a fixed seed (issue 19).

Prints each turn's customer message, the shown items and the reply with its reasons, and
writes to ``--out`` no ReDial id or text: per turn a digest of (conversation id, turn index)
and of the shown list (a re-run with the same seed and run checks it drew the same turns and
lists), how many items it showed, and how many logged gold items it had and showed. ReDial's
ids, text, titles and annotations stay in ``../shared`` (its README); re-running this prints them.

    python benchmarks/redial_ten_turns.py /tmp/runs/redial_train --out benchmarks/results/redial_ten_turns.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path


def digest(value: object) -> str:
    """A short sha256 of a JSON value: shows two lists or turns are the same without holding ReDial's ids."""
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:12]


def shown_turns(run: Path, first_only: bool = False) -> list[dict]:
    """The full system's recommendation turns of a run that showed items (only turn 1: ``first_only``),
    sorted by conversation and turn, so a seeded sample picks the same turns from any run."""
    rows = []
    with (run / "turns.jsonl").open(encoding="utf-8") as fh:
        for raw in fh:
            r = json.loads(raw)
            if r["system"] == "full" and r["kind"] == "rec" and r.get("shown"):
                if not first_only or r["turn_index"] == 1:
                    rows.append(r)
    return sorted(rows, key=lambda r: (r["conversation_id"], int(r["turn_index"])))  # not the workers' order


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path, help="a chatrec eval --out folder")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = shown_turns(args.run)
    picked = random.Random(args.seed).sample(rows, 10)
    for r in picked:
        print(f"--- {r['conversation_id']} turn {r['turn_index']}")
        print(f"customer: {r['input']}")
        print(f"shown: {r['shown']}  gold: {r['gold']}  new: {r['gold_new']}")
        print(f"reply: {r.get('output')}")
    if args.out:
        summary = json.loads((args.run / "summary.json").read_text(encoding="utf-8"))
        kept = [  # digests and counts only: the ids and the logged gold items stay in ../shared
            {"turn": digest([r["conversation_id"], r["turn_index"]]), "shown_digest": digest(r["shown"])}
            | {"shown": len(r["shown"]), "gold_items": len(r["gold"]), "new_gold_items": len(r["gold_new"])}
            | {"shown_gold": len(set(r["shown"]) & set(r["gold"]))}
            for r in picked
        ]
        note = (
            f"chatrec eval --train (docs/evaluation.md, ReDial), run of {summary['run']['started_at']}; "
            f"random.Random({args.seed}).sample of the full system's recommendation turns with a shown list; "
            "digests and counts only: the ids, the customers' messages and the shown reasons stay in ../shared "
            "(../shared/data/README.md); `python benchmarks/redial_ten_turns.py RUN` prints them"
        )
        args.out.write_text(json.dumps({"run": note, "turns": kept}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
