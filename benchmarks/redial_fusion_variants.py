"""Reshaped fusion features, measured on an `chatrec eval --train` run's candidate features.

The live ranker is a logistic regression over the candidates' features (``fit-ranker``).
This benchmark asks whether the same features, reshaped, rank better:

- ``in-turn``: each turn's ``dense``, ``rec_pop``, ``comention`` and ``popular`` also as the
  difference to the turn's best candidate and standardised within the turn (a linear score
  over absolute values cannot say "the best of this turn");
- ``degree 2``: every pairwise product (scikit-learn ``PolynomialFeatures``), L2 at C = 1 and 0.1;
- ``year``: the release year (clipped to 1950-2018), a recent-film flag (2014 on) and a
  no-year flag, read from the training KB's catalogue.

Each variant is chosen by 5-fold cross-validation on the run's *training* replay
(``OUT/fit/features.jsonl``, grouped by conversation), then refitted on the whole replay and
scored on the scored conversations' candidates (``OUT/features.jsonl``). Nothing is learned
from the scored side. Strict-new recall, micro-averaged over gold items.

    python benchmarks/redial_fusion_variants.py RUN --train-kb /tmp/redial_kb \
        --out benchmarks/results/redial_fusion_variants.json

Measured on 2026-11-30 (docs/evaluation.md, "Measured and dropped"): no variant moved
cross-validated R@10 by more than 0.004, so the live ranker stays a plain linear model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np

from chatrec.eval.fusion import NEGATIVES_PER_TURN, feature_rows
from chatrec.turn.rank import FEATURES

IN_TURN = ("dense", "rec_pop", "comention", "popular")


def plain(x: np.ndarray) -> np.ndarray:
    return x


def in_turn(x: np.ndarray) -> np.ndarray:
    """The features, plus each IN_TURN column minus the turn's best and standardised in the turn."""
    extra = []
    for name in IN_TURN:
        c = x[:, FEATURES.index(name)]
        extra += [c - c.max(), (c - c.mean()) / (c.std() + 1e-6)]
    return np.column_stack([x, *extra])


def with_year(rows: list[dict], years: dict[str, int]) -> list[dict]:
    def row(i: str, v: list[float]) -> list[float]:
        y = years.get(i)
        return [
            *v,
            0.0 if y is None else (min(max(y, 1950), 2018) - 1950) / 68,
            float((y or 0) >= 2014),
            float(y is None),
        ]

    return [{**r, "features": {i: row(i, v) for i, v in r["features"].items()}} for r in rows]


def turn(r: dict, shape: Callable[[np.ndarray], np.ndarray]) -> tuple[list[str], np.ndarray]:
    ids = list(r["features"])
    x = np.asarray([r["features"][i] for i in ids], dtype=np.float64)
    return ids, shape(x) if len(ids) else x


def examples(rows: list[dict], shape, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every strict-new gold candidate and NEGATIVES_PER_TURN others per turn, as fit-ranker samples."""
    xs, ys = [], []
    for r in rows:
        gold = set(r["gold_new"])
        ids, x = turn(r, shape)
        pos = [j for j, i in enumerate(ids) if i in gold]
        if not pos:
            continue
        neg = [j for j, i in enumerate(ids) if i not in gold]
        neg = random.Random(f"{seed}:{r['conversation_id']}:{r['turn_index']}").sample(
            neg, min(len(neg), NEGATIVES_PER_TURN)
        )
        xs += [x[j] for j in pos + neg]
        ys += [1] * len(pos) + [0] * len(neg)
    return np.asarray(xs), np.asarray(ys)


def fit(rows: list[dict], shape, degree: int, c: float, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    x, y = examples(rows, shape, seed)
    steps: list[Any] = [PolynomialFeatures(degree, include_bias=False)] if degree > 1 else []
    model = make_pipeline(
        *steps, LogisticRegression(C=c, max_iter=5000, class_weight="balanced", random_state=seed)
    ).fit(x, y)
    return lambda z: model.decision_function(z)


def recall(rows: list[dict], shape, score) -> tuple[float, float]:
    hits, total = np.zeros(2), 0
    for r in rows:
        gold = set(r["gold_new"])
        if not gold:
            continue
        total += len(gold)
        ids, x = turn(r, shape)
        if not ids:
            continue
        s = score(x)
        ranked = [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-s[j], ids[j]))]
        hits += [len(gold & set(ranked[:10])), len(gold & set(ranked[:50]))]
    return round(float(hits[0] / total), 4), round(float(hits[1] / total), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--train-kb", type=Path, required=True, help="the training KB (its catalogue's years)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    train = list(feature_rows(args.run / "fit" / "features.jsonl"))
    scored = [r for r in feature_rows(args.run / "features.jsonl") if r.get("system", "full") == "full"]
    years = {}
    for line in (args.train_kb / "catalogue.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line) if line.strip() else {}
        if isinstance(item.get("attributes", {}).get("year"), int):
            years[item["id"]] = item["attributes"]["year"]
    variants = {
        "live (linear, C=1)": (train, scored, plain, 1, 1.0),
        "in-turn": (train, scored, in_turn, 1, 1.0),
        "degree 2, C=0.1": (train, scored, plain, 2, 0.1),
        "degree 2, C=1": (train, scored, plain, 2, 1.0),
        "in-turn, degree 2, C=0.1": (train, scored, in_turn, 2, 0.1),
        "year": (with_year(train, years), with_year(scored, years), plain, 1, 1.0),
        "year, degree 2, C=1": (with_year(train, years), with_year(scored, years), plain, 2, 1.0),
    }

    def fold(cid: str) -> int:
        return hashlib.sha256(cid.encode()).digest()[1] % 5

    results: dict[str, Any] = {}
    for name, (tr, sc, shape, degree, c) in variants.items():
        cv = [
            recall(
                [r for r in tr if fold(r["conversation_id"]) == k],
                shape,
                fit([r for r in tr if fold(r["conversation_id"]) != k], shape, degree, c, args.seed),
            )
            for k in range(5)
        ]
        results[name] = {
            "cv_train_replay": {
                "R@10 new": round(float(np.mean([x[0] for x in cv])), 4),
                "R@50 new": round(float(np.mean([x[1] for x in cv])), 4),
            },
            "scored": dict(zip(("R@10 new", "R@50 new"), recall(sc, shape, fit(tr, shape, degree, c, args.seed)))),
        }
        print(name, results[name], flush=True)
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
