"""Feature ablations of the fitted ranker, from an `chatrec eval --train` run's files.

For each feature set, the weights are fitted again on the run's *training* replay
(`OUT/fit/features.jsonl`, the same labels as `chatrec fit-ranker`: recommended items not
named before) with the other features zeroed, and the scored conversations' candidates
(`OUT/features.jsonl`, the live candidate pool) are re-ranked with them. Nothing is
learned from the scored side. Recall is micro-averaged over gold items; the interval of
each difference to the full feature set is a paired bootstrap over conversations.

    python benchmarks/redial_ablation.py /tmp/runs/redial_full --out benchmarks/results/redial_ablation.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from chatrec.eval.fusion import feature_rows, fit_weights
from chatrec.turn.rank import FEATURES

SETS = {
    "all features": [],
    "- comention": ["comention"],
    "- rec_pop": ["rec_pop"],
    "- mentioned": ["mentioned"],
    "- dense": ["dense"],
    "- kg, kg_support": ["kg", "kg_support"],
    "without the three new features": ["comention", "rec_pop", "mentioned"],
}
KS = (1, 10, 50)


def _zeroed(rows, drop: list[str]):
    idx = [FEATURES.index(f) for f in drop]
    for r in rows:
        feats = {}
        for i, v in r["features"].items():
            v = list(v)
            for j in idx:
                v[j] = 0.0
            feats[i] = v
        yield {**r, "features": feats}


def per_conversation(run: Path, drop: list[str], seed: int) -> tuple[dict, dict]:
    fitted = fit_weights(_zeroed(feature_rows(run / "fit" / "features.jsonl"), drop), seed, label="gold_new")
    assert fitted is not None
    w = np.array([fitted["weights"][f] for f in FEATURES])
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(2 * len(KS) + 2))
    for r in _zeroed(feature_rows(run / "features.jsonl"), drop):
        if r.get("system", "full") != "full":
            continue
        ids = list(r["features"])
        x = np.asarray([r["features"][i] for i in ids], dtype=np.float64).reshape(-1, len(FEATURES))
        score = x @ w
        ranked = [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-score[j], ids[j]))]
        a = sums[r["conversation_id"]]
        for n, key in enumerate(("gold", "gold_new")):
            gold = set(r[key])
            a[n * (len(KS) + 1)] += len(gold)
            for m, k in enumerate(KS):
                a[n * (len(KS) + 1) + 1 + m] += len(gold & set(ranked[:k]))
    return sums, fitted["weights"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    results = {}
    base = None
    rng = np.random.default_rng(args.seed)
    for name, drop in SETS.items():
        sums, weights = per_conversation(args.run, drop, args.seed)
        cids = sorted(sums)
        m = np.stack([sums[c] for c in cids])
        if base is None:
            base = m
            boot = rng.integers(0, len(cids), size=(args.bootstrap, len(cids)))
        row: dict = {"dropped": drop, "weights": weights, "metrics": {}}
        for n, prefix in enumerate(("rec", "rec_new")):
            den = n * (len(KS) + 1)
            for j, k in enumerate(KS):
                col = den + 1 + j
                value = m[:, col].sum() / m[:, den].sum()
                entry: dict[str, Any] = {"value": round(float(value), 4)}
                if name != "all features":
                    diff = m[boot, col].sum(1) / m[boot, den].sum(1) - base[boot, col].sum(1) / base[boot, den].sum(1)
                    entry["diff_vs_all"] = round(float(value - base[:, col].sum() / base[:, den].sum()), 4)
                    entry["diff_ci"] = [round(float(np.percentile(diff, q)), 4) for q in (2.5, 97.5)]
                row["metrics"][f"{prefix}.recall@{k}"] = entry
        results[name] = row
        print(name, {k: v["value"] for k, v in row["metrics"].items()})
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "ablations": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
