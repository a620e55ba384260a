"""Learning-to-rank experiments on an `chatrec eval --train` run's candidate features.

Reads the run's *training* replay (`OUT/fit/features.jsonl`: the candidates the live ranker
produced for the replayed training conversations, statistics cross-fitted in two folds) and
the scored conversations' candidates (`OUT/features.jsonl`, the live pool), fits each model
on the training side only and re-ranks the scored candidates with it. Nothing is learned
from the scored side. Extra features computed here (before any live code computes them):

- ``trans``: directed mention -> recommendation counts of the training conversations (an
  agent recommended b, new at that turn, after a had been named), summed over the items
  named before the turn, each pair over sqrt(n(a) n(b)); cross-fitted in the same two folds
  as the replay's statistics for the training rows.
- ``year_gap``: how far the item's year is from the median year of the items named so far.

    python benchmarks/redial_ltr.py RUN --train-kb /tmp/redial_kb --scored /tmp/redial_valid \
        --out benchmarks/results/redial_ltr.json

Needs ``pip install lightgbm`` (not a chatrec dependency: nothing here was kept). Measured on
2026-11-30 (docs/evaluation.md, "Learning to rank"): no model or feature here beat the
logistic regression ``fit-ranker`` fits, so the live ranker stays linear.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from redial_ablation import recall_table  # benchmarks/ is on sys.path when this runs as a script

from chatrec.eval.fusion import feature_rows, fold_of
from chatrec.turn.rank import FEATURES

KS = (1, 10, 50)
NEG = 40


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def named_before(conv: dict, idx: int) -> list[str]:
    out: list[str] = []
    for t in conv["turns"][:idx]:
        out += t.get("mentions", []) + t.get("recommended", []) + t.get("liked", [])
    return list(dict.fromkeys(out))


def transitions(convs: list[dict]) -> tuple[dict[str, Counter], Counter, Counter]:
    """T[a][b]: training turns recommending b (new there) after a was named; n(a), n(b)."""
    t: dict[str, Counter] = defaultdict(Counter)
    na: Counter = Counter()
    nb: Counter = Counter()
    for conv in convs:
        for idx, turn in enumerate(conv["turns"]):
            if turn["role"] != "agent" or not turn.get("recommended"):
                continue
            before = set(named_before(conv, idx))
            new = [b for b in dict.fromkeys(turn["recommended"]) if b not in before]
            if not new:
                continue
            for a in before:
                na[a] += 1
                for b in new:
                    t[a][b] += 1
            nb.update(new)
    return t, na, nb


def trans_score(stats, anchors: list[str]) -> Counter:
    t, na, nb = stats
    out: Counter = Counter()
    for a in anchors:
        for b, n in t.get(a, {}).items():
            out[b] += n / math.sqrt(max(na[a], 1) * max(nb[b], 1))
    return out


def with_extras(rows, convs: dict[str, dict], stats_for, years: dict[str, int]):
    for r in rows:
        conv = convs[r["conversation_id"]]
        before = named_before(conv, r["turn_index"])
        tr = trans_score(stats_for(r["conversation_id"]), before)
        ys = sorted(years[i] for i in before if i in years)
        med = ys[len(ys) // 2] if ys else None
        feats = {}
        for i, v in r["features"].items():
            y = years.get(i)
            gap = 1.0 if med is None or y is None else min(abs(y - med), 40) / 40
            feats[i] = [*v, tr.get(i, 0.0), gap]
        yield {**r, "features": feats}


NAMES = [*FEATURES, "trans", "year_gap"]


def matrices(rows, label: str, seed: int, neg: int | None):
    """Feature matrix, labels and group sizes (one group per turn with a positive)."""
    import random

    xs, ys, groups = [], [], []
    for r in rows:
        gold = set(r[label])
        ids = list(r["features"])
        pos = [i for i in ids if i in gold]
        if not pos:
            continue
        negs = [i for i in ids if i not in gold]
        if neg is not None:
            rng = random.Random(f"{seed}:{r['conversation_id']}:{r['turn_index']}")
            negs = rng.sample(negs, min(len(negs), neg))
        for i in pos + negs:
            xs.append(r["features"][i])
            ys.append(1 if i in gold else 0)
        groups.append(len(pos) + len(negs))
    return np.asarray(xs, dtype=np.float64), np.asarray(ys), groups


def evaluate(rows, score_fn) -> dict[str, np.ndarray]:
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(2 * (len(KS) + 1) + 2))
    for r in rows:
        if r.get("system", "full") != "full":
            continue
        ids = list(r["features"])
        a = sums[r["conversation_id"]]
        if ids:
            x = np.asarray([r["features"][i] for i in ids], dtype=np.float64)
            s = score_fn(x)
            ranked = [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-s[j], ids[j]))]
        else:
            ranked = []
        for n, key in enumerate(("gold", "gold_new")):
            gold = set(r[key])
            a[n * (len(KS) + 1)] += len(gold)
            for m, k in enumerate(KS):
                a[n * (len(KS) + 1) + 1 + m] += len(gold & set(ranked[:k]))
        a[-2] += len(set(r["gold_new"]))
        a[-1] += len(set(r["gold_new"]) & set(ids))  # the pool's coverage of strict-new gold
    return sums


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--train-kb", type=Path, required=True)
    ap.add_argument("--scored", type=Path, required=True, help="the scored KB folder (its transcripts)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    try:
        import lightgbm as lgb
    except ImportError:
        raise SystemExit("this benchmark needs LightGBM: pip install lightgbm") from None
    from sklearn.linear_model import LogisticRegression

    train_convs = read_jsonl(args.train_kb / "transcripts.jsonl")
    scored_convs = {c["conversation_id"]: c for c in read_jsonl(args.scored / "transcripts.jsonl")}
    tconvs = {c["conversation_id"]: c for c in train_convs}
    years = {}
    for item in read_jsonl(args.train_kb / "catalogue.jsonl"):
        if isinstance(item.get("attributes", {}).get("year"), int):
            years[item["id"]] = item["attributes"]["year"]
    folds = [transitions([c for c in train_convs if fold_of(c["conversation_id"]) != k]) for k in (0, 1)]
    everything = transitions(train_convs)
    train_rows = list(
        with_extras(feature_rows(args.run / "fit" / "features.jsonl"), tconvs, lambda cid: folds[fold_of(cid)], years)
    )
    scored_rows = [
        r
        for r in with_extras(feature_rows(args.run / "features.jsonl"), scored_convs, lambda cid: everything, years)
        if r.get("system", "full") == "full"
    ]
    base_cols = list(range(len(FEATURES)))
    all_cols = list(range(len(NAMES)))
    models: dict[str, Any] = {}

    def lr(cols):
        x, y, _ = matrices(train_rows, "gold_new", args.seed, 20)
        m = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", random_state=args.seed).fit(x[:, cols], y)
        return lambda z: m.decision_function(z[:, cols])

    def lgbm(cols, objective="lambdarank", **kw):
        x, y, g = matrices(train_rows, "gold_new", args.seed, None if objective == "lambdarank" else NEG)
        params = dict(
            n_estimators=300,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=args.seed,
            verbose=-1,
            n_jobs=2,
        )
        params.update(kw)
        if objective == "lambdarank":
            m = lgb.LGBMRanker(objective="lambdarank", lambdarank_truncation_level=50, **params)
            m.fit(x[:, cols], y, group=g)
        else:
            m = lgb.LGBMClassifier(objective="binary", **params)
            m.fit(x[:, cols], y)
            return lambda z: m.predict_proba(z[:, cols])[:, 1]
        return lambda z: m.predict(z[:, cols])

    t0 = time.time()
    models["LR, live features (as fit-ranker)"] = lr(base_cols)
    models["LR, + trans + year_gap"] = lr(all_cols)
    models["LightGBM lambdarank, live features"] = lgbm(base_cols)
    models["LightGBM lambdarank, + trans + year_gap"] = lgbm(all_cols)
    models["LightGBM binary, + trans + year_gap"] = lgbm(all_cols, objective="binary")
    models["LightGBM lambdarank, live features, regularised"] = lgbm(
        base_cols, n_estimators=100, num_leaves=3, min_child_samples=200
    )
    print(f"fitted in {time.time() - t0:.0f} s; {len(train_rows)} training rows, {len(scored_rows)} scored rows")
    rng = np.random.default_rng(args.seed)
    base = None
    results: dict[str, Any] = {}
    for name, fn in models.items():
        sums = evaluate(scored_rows, fn)
        cids = sorted(sums)
        m = np.stack([sums[c] for c in cids])
        if base is None:
            base = m
            boot = rng.integers(0, len(cids), size=(args.bootstrap, len(cids)))
            results["pool coverage of strict-new gold"] = round(float(m[:, -1].sum() / m[:, -2].sum()), 4)
            print("coverage", results["pool coverage of strict-new gold"])
        row = recall_table(m, base, boot)
        results[name] = row
        print(name, {k: (v["value"], v.get("diff_ci")) for k, v in row.items() if "new" in k})
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
