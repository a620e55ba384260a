"""Ten of an eval run's recommendation turns, picked at random with a fixed seed (issue 19).

Prints each turn's customer message, the shown items and the reply with its reasons, and
writes to ``--out`` only the conversation id and turn index that find the turn, the ids the
system showed, and how many logged gold items the turn had and showed: ReDial's text, titles
and annotations stay in ``../shared`` (its README); re-running this prints them again.

    python benchmarks/redial_ten_turns.py /tmp/runs/redial_train --out benchmarks/results/redial_ten_turns.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


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
        kept = [  # the shown ids are the system's; the logged gold items stay in ../shared (counts only)
            {k: r[k] for k in ("conversation_id", "turn_index", "shown")}
            | {"gold_items": len(r["gold"]), "new_gold_items": len(r["gold_new"])}
            | {"shown_gold": len(set(r["shown"]) & set(r["gold"]))}
            for r in picked
        ]
        note = (
            f"chatrec eval --train (docs/evaluation.md, ReDial), run of {summary['run']['started_at']}; "
            f"random.Random({args.seed}).sample of the full system's recommendation turns with a shown list; ids "
            "only: the customers' messages and the shown reasons (which quote ReDial's catalogue titles and KG "
            "names) stay in ../shared (../shared/data/README.md); conversation_id and turn_index find the turn "
            "in valid_data_kgsf_split.jsonl, and `python benchmarks/redial_ten_turns.py RUN` prints them"
        )
        args.out.write_text(json.dumps({"run": note, "turns": kept}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
