"""A small learned ranker: fusion weights fitted on logged recommendation turns.

Each candidate the full pipeline produced for a logged recommendation turn is one
example: its feature vector (:data:`chatrec.turn.rank.FEATURES`) and whether the logged
agent recommended it. A logistic regression (scikit-learn) on these examples gives one
weight per feature; ranking by the fitted linear score is what
:class:`chatrec.turn.rank.Ranker` does with ``ranking.weights_file``.

Evaluation uses :func:`cross_fit_system`: conversations are split in two folds by a
hash of their id, and each fold is re-ranked with weights fitted on the other, so no
turn is scored by weights that saw its own labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from chatrec.turn.rank import FEATURES

NEGATIVES_PER_TURN = 20


def fold_of(conversation_id: str) -> int:
    """0 or 1: the cross-fitting fold of a conversation (a stable hash of its id)."""
    return hashlib.sha256(conversation_id.encode()).digest()[0] % 2


def feature_rows(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            yield json.loads(raw)


def _examples(
    rows: Iterator[dict], seed: int, label: str = "gold", width: int = len(FEATURES)
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels: every recommended candidate and up to NEGATIVES_PER_TURN others.
    ``label``: ``gold`` (every recommended item) or ``gold_new`` (only those not named before)."""
    xs, ys = [], []
    for r in rows:
        gold = set(r[label])
        pos = [i for i in r["features"] if i in gold]
        if not pos:
            continue
        neg = [i for i in r["features"] if i not in gold]
        rng = random.Random(f"{seed}:{r['conversation_id']}:{r['turn_index']}")
        neg = rng.sample(neg, min(len(neg), NEGATIVES_PER_TURN))
        for i in pos + neg:
            xs.append(r["features"][i])
            ys.append(1 if i in gold else 0)
    return np.asarray(xs, dtype=np.float64).reshape(-1, width), np.asarray(ys)


def fit_weights(
    rows: Iterator[dict], seed: int = 7, label: str = "gold", names: Sequence[str] = FEATURES
) -> dict[str, Any] | None:
    """Fit fusion weights; ``None`` when the rows hold no positive and negative examples.
    ``names``: the features of the rows' vectors (a benchmark may measure one not in FEATURES)."""
    from sklearn.linear_model import LogisticRegression

    x, y = _examples(rows, seed, label, len(names))
    if len(set(y.tolist())) < 2:
        return None
    model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", random_state=seed).fit(x, y)
    weights = {f: round(float(w), 5) for f, w in zip(names, model.coef_[0])}
    return {"weights": weights, "examples": int(len(y)), "positives": int(y.sum())}


def save_weights(fitted: dict[str, Any], path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({**fitted, "features": list(FEATURES), "source": source}, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def cross_fit_system(
    features_path: Path,
    conversation_ids: list[str],
    seed: int,
    system: str,
    vectors: dict[str, np.ndarray] | None = None,
) -> dict[str, Any] | None:
    """Metrics of one system's candidates re-ranked by cross-fitted weights.

    Returns per-conversation (numerator, denominator) sums in the evaluator's format, the
    recall@1..50 curves, each conversation's first list, and the weights of both folds."""
    from chatrec.eval.metrics import DEPTH, intra_list_diversity, rank_metrics

    if not features_path.exists():
        return None
    keep = set(conversation_ids)

    def rows(fold: int | None = None) -> Iterator[dict]:
        return (
            r
            for r in feature_rows(features_path)
            if r.get("system", "full") == system
            and r["conversation_id"] in keep
            and (fold is None or fold_of(r["conversation_id"]) != fold)
        )

    fitted = [fit_weights(rows(k), seed) for k in (0, 1)]
    if any(f is None for f in fitted):
        return None
    weights = [np.array([f["weights"][name] for name in FEATURES]) for f in fitted]  # type: ignore[index]
    sums: dict[str, dict[str, list[float]]] = {}
    first_lists: dict[str, list[str]] = {}
    curves = {"recall": np.zeros(DEPTH), "recall_new": np.zeros(DEPTH)}
    totals = {"recall": 0, "recall_new": 0}
    for r in rows():
        cid = r["conversation_id"]
        ids = list(r["features"])
        x = np.asarray([r["features"][i] for i in ids], dtype=np.float64).reshape(-1, len(FEATURES))
        score = x @ weights[fold_of(cid)]
        order = sorted(range(len(ids)), key=lambda j: (-score[j], ids[j]))
        ranked = [ids[j] for j in order[:DEPTH]]
        first_lists.setdefault(cid, ranked[:10])
        acc = sums.setdefault(cid, {})
        for name, (n, d) in {
            **rank_metrics(ranked, r["gold"], "rec"),
            **rank_metrics(ranked, r["gold_new"], "rec_new"),
        }.items():
            a = acc.setdefault(name, [0.0, 0.0])
            a[0] += n
            a[1] += d
        if vectors is not None and (div := intra_list_diversity(ranked[:10], vectors)) is not None:
            a = acc.setdefault("rec.diversity", [0.0, 0.0])
            a[0] += div
            a[1] += 1
        for key, gold in (("recall", set(r["gold"])), ("recall_new", set(r["gold_new"]))):
            totals[key] += len(gold)
            for rank, item in enumerate(ranked):
                if item in gold:
                    curves[key][rank:] += 1
    return {
        "sums": sums,
        "first_lists": first_lists,
        "curves": {k: [round(float(h / totals[k]), 4) if totals[k] else 0.0 for h in v] for k, v in curves.items()},
        "weights": {f"fold{k}": fitted[k]["weights"] for k in (0, 1)},  # type: ignore[index]
    }
