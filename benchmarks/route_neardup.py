"""Near-duplicate check: the router's written examples against every labelled routing set.

    python benchmarks/route_neardup.py [--since COMMIT] [--max 0.85]

The written sets in ``chatrec/turn/route_examples.py`` must teach the labelling policy's
categories in general wording, not paraphrase the sets the router is measured on. This embeds
every written example (``STOCK_FIT``-style phrasings with their placeholders) and every message of
the development and test sets named in ``SETS`` (an explicit list: a blind set written later
is never read here) with the project's embedder (MiniLM) and reports, for the examples added
since ``--since`` (all of them without it), the highest cosine to any set message and the
pairs over ``--max``. Phrasings with ``{item}`` / ``{device}`` are checked as written and
filled with the demo KB's catalogue names, as the router learns them. Exit status 1 when a pair is over ``--max``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures" / "routing"
# the development sets and the two test sets; never a blind set (read by path, one by one)
SETS = (
    "route_mix.jsonl",
    "route_heldout.jsonl",
    "route_heldout2.jsonl",
    "route_heldout3.jsonl",
    "escalation_test.jsonl",
    "oos_test.jsonl",
)
FILLED = ("STOCK_FIT", "PRODUCT_RECOMMEND", "PRODUCT_SERVICE")  # phrasings with {item} / {device}
NAMES = (
    "OUT_OF_SCOPE",
    "CHITCHAT",
    "RECOMMEND",
    "STOCK_FIT",
    "PRODUCT_RECOMMEND",
    "PRODUCT_SERVICE",
    "HANDOFF",
    "ESCALATION",
)


def written(module: types.ModuleType) -> dict[str, str]:
    """Every written example text -> the set it is in."""
    out: dict[str, str] = {}
    for name in NAMES:
        for row in getattr(module, name, ()):
            out.setdefault(row[0] if isinstance(row, tuple) else row, name)
    return out


def old_examples(commit: str) -> set[str]:
    src = subprocess.run(
        ["git", "show", f"{commit}:chatrec/turn/route_examples.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mod = types.ModuleType("old_route_examples")
    exec(compile(src, "old_route_examples", "exec"), mod.__dict__)  # our own file at an older commit
    return set(written(mod))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--since", help="check only the examples added since this commit")
    ap.add_argument("--max", type=float, default=0.85)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()

    import torch

    from chatrec.config import load_settings
    from chatrec.retrieval.embeddings import Embedder
    from chatrec.turn import route_examples

    torch.set_num_threads(1)
    examples = written(route_examples)
    if args.since:
        old = old_examples(args.since)
        examples = {t: n for t, n in examples.items() if t not in old}
    # the phrasings with placeholders as the router learns them: filled with the demo KB's names
    from chatrec.kb import load_kb
    from chatrec.turn.classify import stock_fit_examples

    kb = load_kb(REPO / "kb")
    for name in FILLED:
        phrases = tuple(t for t, n in examples.items() if n == name)
        for t in stock_fit_examples(kb, phrases=phrases):
            examples.setdefault(t, name + " (filled)")
    msgs: list[tuple[str, str]] = []
    for name in SETS:
        for line in (FIX / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                msgs.append((name, json.loads(line)["text"]))
    emb = Embedder(load_settings().retrieval.embedder)
    texts = list(examples)
    a = np.asarray(emb.embed(texts), dtype=np.float32)
    b = np.asarray(emb.embed([m for _, m in msgs]), dtype=np.float32)
    sims = a @ b.T
    best = sims.max(axis=1)
    arg = sims.argmax(axis=1)
    order = np.argsort(-best)
    over = int((best >= args.max).sum())
    print(
        json.dumps(
            {
                "examples_checked": len(texts),
                "set_messages": len(msgs),
                "sets": list(SETS),
                "max_cosine": round(float(best.max()), 4) if len(texts) else None,
                "mean_of_max": round(float(best.mean()), 4) if len(texts) else None,
                f"over_{args.max}": over,
            }
        )
    )
    # the closest pairs, for the reviewer (the set message is shown: these sets are development sets)
    for i in order[: args.top]:
        name, m = msgs[int(arg[i])]
        print(f"{best[i]:.3f}  [{examples[texts[i]]}] {texts[i]!r}  ~  [{name}] {m!r}")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
