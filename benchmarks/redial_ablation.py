"""Feature ablations of the fitted ranker, from an `chatrec eval --train` run's files.

For each feature set, the weights are fitted again on the run's *training* replay
(`OUT/fit/features.jsonl`, the same labels as `chatrec fit-ranker`: recommended items not
named before) with the other features zeroed, and the scored conversations' candidates
(`OUT/features.jsonl`, the live candidate pool) are re-ranked with them. Nothing is
learned from the scored side. Recall is micro-averaged over gold items; the interval of
each difference to the full feature set is a paired bootstrap over conversations.

    python benchmarks/redial_ablation.py /tmp/runs/redial_full --out benchmarks/results/redial_ablation.json

``--decade TRAIN_KB SCORED`` adds a "+ decade" feature computed here (the customer named a decade
and the item's year is in it); ``--against RUN`` adds the paired difference of the full systems of
two runs on the same conversations (the fine-tuned encoder on / off).
"""

from __future__ import annotations

import argparse
import json
import re
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
    "- dense_rank": ["dense_rank"],
    "- dense, dense_rank": ["dense", "dense_rank"],
    "- kg, kg_support": ["kg", "kg_support"],
    "without the three new features": ["comention", "rec_pop", "mentioned"],
}
KS = (1, 10, 50)

# "+ decade": a feature measured here before any code computes it live: 1 when the item's year
# falls in the decade the customer last named ("90s", "1990's", "the eighties") in the messages
# up to the turn; read from the transcripts files given with --decade (never copied anywhere)
_WORDS = {"twenties": 2, "thirties": 3, "forties": 4, "fifties": 5, "sixties": 6}
_WORDS |= {"seventies": 7, "eighties": 8, "nineties": 9}
_DECADE = re.compile(r"\b(?:19|20)?([0-9])0'?s\b|\b(" + "|".join(_WORDS) + r")\b")


def decade_in(texts: list[str]) -> int | None:
    """The start year of the last decade named in ``texts`` (``00s`` = 2000), or None."""
    found = None
    for text in texts:
        for m in _DECADE.finditer(text.lower()):
            d = int(m.group(1)) if m.group(1) else _WORDS[m.group(2)]
            found = 2000 if d == 0 else (2010 if m.group(0).startswith("201") else 1900 + 10 * d)
    return found


def decades(transcripts: list[Path]) -> dict[tuple[str, int], int | None]:
    """(conversation id, agent turn index) -> the decade the customer named up to that turn."""
    out: dict[tuple[str, int], int | None] = {}
    for path in transcripts:
        for raw in path.read_text(encoding="utf-8").splitlines():
            if not raw.strip():
                continue
            conv = json.loads(raw)
            said: list[str] = []
            for i, t in enumerate(conv["turns"]):
                if t["role"] == "user":
                    said.append(t["text"])
                else:
                    out[(conv["conversation_id"], i)] = decade_in(said)
    return out


def _with_decade(rows, dec: dict[tuple[str, int], int | None], years: dict[str, int]):
    for r in rows:
        d = dec.get((r["conversation_id"], r["turn_index"]))
        feats = {}
        for i, v in r["features"].items():
            y = years.get(i)
            feats[i] = [*v, 1.0 if d is not None and y is not None and d <= y < d + 10 else 0.0]
        yield {**r, "features": feats}


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


def per_conversation(run: Path, drop: list[str], seed: int, extra: Any = None) -> tuple[dict, dict]:
    """``extra``: (decades, item years) to add the decade feature."""
    names = list(FEATURES) + (["decade"] if extra else [])

    def rows(path: Path):
        got = _zeroed(feature_rows(path), drop)
        return _with_decade(got, *extra) if extra else got

    fitted = fit_weights(rows(run / "fit" / "features.jsonl"), seed, label="gold_new", names=names)
    assert fitted is not None
    w = np.array([fitted["weights"][f] for f in names])
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(2 * len(KS) + 2))
    for r in rows(run / "features.jsonl"):
        if r.get("system", "full") != "full":
            continue
        ids = list(r["features"])
        x = np.asarray([r["features"][i] for i in ids], dtype=np.float64).reshape(-1, len(names))
        score = x @ w
        ranked = [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-score[j], ids[j]))]
        a = sums[r["conversation_id"]]
        for n, key in enumerate(("gold", "gold_new")):
            gold = set(r[key])
            a[n * (len(KS) + 1)] += len(gold)
            for m, k in enumerate(KS):
                a[n * (len(KS) + 1) + 1 + m] += len(gold & set(ranked[:k]))
    return sums, fitted["weights"]


def recall_table(m: np.ndarray, base: np.ndarray, boot: np.ndarray) -> dict[str, dict[str, Any]]:
    """Recall@k (all gold, strict-new gold) of per-conversation sums ``m`` (columns: gold count,
    hits at each of KS, for each protocol), and, unless ``m`` is ``base``, the difference to
    ``base`` with a paired bootstrap interval over the conversations resampled in ``boot``."""
    out: dict[str, dict[str, Any]] = {}
    for n, prefix in enumerate(("rec", "rec_new")):
        den = n * (len(KS) + 1)
        for j, k in enumerate(KS):
            col = den + 1 + j
            value = m[:, col].sum() / m[:, den].sum()
            entry: dict[str, Any] = {"value": round(float(value), 4)}
            if m is not base:
                diff = m[boot, col].sum(1) / m[boot, den].sum(1) - base[boot, col].sum(1) / base[boot, den].sum(1)
                entry["diff_vs_all"] = round(float(value - base[:, col].sum() / base[:, den].sum()), 4)
                entry["diff_ci"] = [round(float(np.percentile(diff, q)), 4) for q in (2.5, 97.5)]
            out[f"{prefix}.recall@{k}"] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument(
        "--decade",
        nargs=2,
        type=Path,
        metavar=("TRAIN_KB", "SCORED_TRANSCRIPTS"),
        help="also measure '+ decade' (the training KB folder: its catalogue's years and transcripts)",
    )
    ap.add_argument(
        "--against",
        type=Path,
        metavar="RUN",
        help="also the paired difference (chatrec eval compare) of this run's full system minus RUN's full "
        "system on their common conversations (e.g. the same sample without the fine-tuned encoder)",
    )
    args = ap.parse_args()
    results = {}
    base = None
    rng = np.random.default_rng(args.seed)
    sets: dict[str, Any] = {name: (drop, None) for name, drop in SETS.items()}
    if args.decade:
        kb, scored = args.decade
        years = {}
        for raw in (kb / "catalogue.jsonl").read_text(encoding="utf-8").splitlines():
            if raw.strip():
                item = json.loads(raw)
                if isinstance(item.get("attributes", {}).get("year"), int):
                    years[item["id"]] = item["attributes"]["year"]
        sets["+ decade"] = ([], (decades([kb / "transcripts.jsonl", scored]), years))
    for name, (drop, extra) in sets.items():
        sums, weights = per_conversation(args.run, drop, args.seed, extra)
        cids = sorted(sums)
        m = np.stack([sums[c] for c in cids])
        if base is None:
            base = m
            boot = rng.integers(0, len(cids), size=(args.bootstrap, len(cids)))
        row: dict = {"dropped": drop, "weights": weights, "metrics": recall_table(m, base, boot)}
        results[name] = row
        print(name, {k: v["value"] for k, v in row["metrics"].items()})
    out: dict[str, Any] = {"run": str(args.run), "ablations": results}
    if args.against:
        from chatrec.eval.summary import compare

        res = compare(f"{args.run}:full", f"{args.against}:full", seed=args.seed)
        keep = [f"{p}.recall@{k}" for p in ("rec", "rec_new") for k in KS] + ["rec.ndcg@10", "rec.mrr@10"]
        out["against"] = {
            "run": str(args.against),
            "conversations": res["conversations"],
            "full minus full": {k: v for k, v in res["metrics"].items() if k in keep},
        }
        for k in keep:
            if k in res["metrics"]:
                m = res["metrics"][k]
                print(f"{k}: {m['diff']:+.4f} [{m['ci_low']:+.4f}, {m['ci_high']:+.4f}] p={m['p_value']:.4f}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
