"""The run's summary from its result files: per-system metrics with bootstrap intervals over
conversations, learned-fusion re-ranking, recall curves, and paired comparison of two runs."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from chatrec.config import Settings
from chatrec.eval.metrics import DEPTH
from chatrec.eval.options import BASELINES, DESCRIPTIONS, EvalError, EvalOptions
from chatrec.eval.service import read_service_sums, service_summary

log = logging.getLogger(__name__)


def _bootstrap_weights(n: int, b: int, seed: int) -> np.ndarray:
    """``b`` x ``n`` resampling counts (each row: how often each conversation is drawn)."""
    rng = np.random.default_rng(seed)
    w = np.zeros((b, n), dtype=np.float32)
    for r in range(b):
        w[r] = np.bincount(rng.integers(0, n, n), minlength=n)
    return w


def _ci(num: np.ndarray, den: np.ndarray, w: np.ndarray) -> tuple[float, float, float] | None:
    total = den.sum()
    if total <= 0:
        return None
    bn, bd = w @ num, w @ den
    ok = bd > 0
    ratios = bn[ok] / bd[ok]
    lo, hi = np.percentile(ratios, [2.5, 97.5]) if len(ratios) else (float("nan"), float("nan"))
    return float(num.sum() / total), float(lo), float(hi)


class ScoreTable:
    """Per-conversation (numerator, denominator) sums as two compact ``conversations x columns``
    arrays, one column per (system, metric); built by streaming ``convs.jsonl``."""

    def __init__(self, ids: list[str], users: list[str | None]):
        self.ids, self.users = ids, users
        self.row = {cid: i for i, cid in enumerate(ids)}
        self.cols: dict[tuple[str, str], int] = {}
        self.num = np.zeros((len(ids), 0), dtype=np.float64)
        self.den = np.zeros((len(ids), 0), dtype=np.float64)

    def col(self, system: str, metric: str) -> int:
        if (system, metric) not in self.cols:
            self.cols[(system, metric)] = len(self.cols)
            if self.num.shape[1] < len(self.cols):  # grow in blocks
                extra = max(16, self.num.shape[1] // 2)
                self.num = np.pad(self.num, ((0, 0), (0, extra)))
                self.den = np.pad(self.den, ((0, 0), (0, extra)))
        return self.cols[(system, metric)]

    def put(self, cid: str, system: str, sums: dict[str, list[float]]) -> None:
        r = self.row[cid]
        for metric, (n, d) in sums.items():
            c = self.col(system, metric)
            self.num[r, c], self.den[r, c] = n, d

    def drop(self, system: str, metric: str) -> None:
        if (c := self.cols.get((system, metric))) is not None:
            self.num[:, c] = self.den[:, c] = 0.0

    def systems(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self.cols))

    def metrics(self, system: str) -> list[str]:
        return sorted(m for s, m in self.cols if s == system and self.den[:, self.cols[(s, m)]].sum() > 0)

    def pair(self, system: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        c = self.cols[(system, metric)]
        return self.num[:, c], self.den[:, c]

    def save(self, path: Path) -> None:
        """``scores.jsonl``: the final per-conversation sums that ``compare`` pairs up."""
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for r, cid in enumerate(self.ids):
                sums: dict[str, dict[str, list[float]]] = {}
                for (system, metric), c in self.cols.items():
                    if self.den[r, c] > 0 or self.num[r, c] != 0:
                        sums.setdefault(system, {})[metric] = [float(self.num[r, c]), float(self.den[r, c])]
                fh.write(json.dumps({"conversation_id": cid, "sums": sums}) + "\n")
        os.replace(tmp, path)


@dataclass
class _Extras:
    """What the summary needs besides the sums, kept small: latencies, coverage, a few lists."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    ttft: dict[str, list[float]] = field(default_factory=dict)
    covered: dict[str, set[str]] = field(default_factory=dict)
    lists: dict[str, list[tuple[str | None, list[str]]]] = field(default_factory=dict)  # first 300 per system

    def add_list(self, system: str, user: str | None, items: list[str]) -> None:
        self.covered.setdefault(system, set()).update(items)
        lst = self.lists.setdefault(system, [])
        if len(lst) < 300:
            lst.append((user, items))


def load_scores(out: Path) -> tuple[ScoreTable, _Extras, list[dict]]:
    """The finished conversations' sums in input order, the extras, and the failed conversations."""
    path = out / "convs.jsonl"
    meta: list[tuple[int, str, str | None]] = []
    failed: list[dict] = []
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            row = json.loads(raw)
            if row.get("error"):
                failed.append({"conversation_id": row["conversation_id"], "line": row["line"], "error": row["error"]})
            else:
                meta.append((row["order"], row["conversation_id"], row.get("user_id")))
    meta.sort()
    table = ScoreTable([m[1] for m in meta], [m[2] for m in meta])
    extras = _Extras()
    order_of = {cid: i for i, (_, cid, _) in enumerate(meta)}
    firsts: list[dict[str, list[str]] | None] = [None] * len(meta)
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            row = json.loads(raw)
            if row.get("error"):
                continue
            for system, sums in row["sums"].items():
                table.put(row["conversation_id"], system, sums)
            for system, xs in row["latency"].items():
                extras.latency.setdefault(system, []).extend(xs)
            for system, xs in row.get("ttft", {}).items():
                extras.ttft.setdefault(system, []).extend(xs)
            firsts[order_of[row["conversation_id"]]] = row["first_lists"]
    for user, first in zip(table.users, firsts):  # in input order, so the kept lists are deterministic
        for system, items in (first or {}).items():
            extras.add_list(system, user, items)
    return table, extras, failed


def _metric(value: float, n: int, ci: tuple[float, float] | None = None) -> dict[str, Any]:
    return {
        "value": round(value, 4),
        "ci_low": round(ci[0], 4) if ci else None,
        "ci_high": round(ci[1], 4) if ci else None,
        "n": n,
    }


def summarise(out: Path, opts: EvalOptions, settings: Settings, skipped: list[dict], wall_s: float) -> dict[str, Any]:
    table, extras, failed = load_scores(out)
    for cid, per_system in read_service_sums(out, Path(opts.transcripts), table.ids).items():
        for system, sums in per_system.items():  # svc.*: containment, handoff, accepts (chatrec/eval/service.py)
            table.put(cid, system, sums)
    skipped = skipped + failed
    learned = (
        _apply_learned_fusion(out, table, extras, opts, settings) if opts.fusion == "learned" and not opts.train else {}
    )
    table.save(out / "scores.jsonl")
    systems = table.systems()
    n = len(table.ids)
    w = _bootstrap_weights(n, opts.bootstrap, opts.seed) if n else np.zeros((0, 0))
    first = systems[0] if systems else ""
    n_rec = int(table.pair(first, "rec.ndcg@1")[1].sum()) if (first, "rec.ndcg@1") in table.cols else 0
    n_service = max(
        (
            int(table.pair(first, m)[1].sum())
            for m in ("service.intent_acc", "service.template_acc")
            if (first, m) in table.cols
        ),
        default=0,
    )
    kb_size = len(_kb_items(settings))
    result: dict[str, Any] = {}
    for system in systems:
        metrics: dict[str, Any] = {}
        for name in table.metrics(system):
            num, den = table.pair(system, name)
            ci = _ci(num, den, w)
            if ci is not None:
                metrics[name] = _metric(ci[0], int(den.sum()), (ci[1], ci[2]))
        lat = np.asarray(extras.latency.get(system, []))
        if len(lat):
            for q in (50, 95):
                metrics[f"cost.latency_p{q}_s"] = _metric(float(np.percentile(lat, q)), len(lat))
        ttft = np.asarray(extras.ttft.get(system, []))
        if len(ttft):
            metrics["cost.ttft_p50_s"] = _metric(float(np.percentile(ttft, 50)), len(ttft))
        if system in extras.covered:
            metrics["rec.coverage"] = _metric(len(extras.covered[system]) / max(kb_size, 1), len(extras.lists[system]))
            users = extras.lists[system]
            dis = [
                1 - len(set(a) & set(b)) / max(len(set(a) | set(b)), 1)
                for x, (ua, a) in enumerate(users)
                for ub, b in users[x + 1 :]
                if ua != ub
            ]
            if dis:
                metrics["rec.inter_user_dissimilarity"] = _metric(float(np.mean(dis)), len(dis))
        curve = {}
        for prefix, key in (("rec", "recall"), ("rec_new", "recall_new")):
            if f"{prefix}.recall@50" in metrics:
                curve[key] = learned[system]["curves"][key] if system in learned else _recall_curve(out, system, prefix)
        result[system] = {"description": DESCRIPTIONS.get(system, system), "metrics": metrics, "curve": curve}
    summary = {
        "run": {
            "transcripts": str(opts.transcripts),
            "kb": str(settings.kb_dir),
            "adapter": settings.llm.adapter,
            "seed": opts.seed,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - wall_s)),
            "wall_s": round(wall_s, 1),
            "conversations": n,
            "turns": {"rec": n_rec, "service": n_service},
            "skipped": skipped,
            "systems": systems,
            "options": asdict(opts),
            "fusion": "fitted on --train" if opts.train else opts.fusion,
            "protocol": (
                f"learn from {opts.train} only (statistics and the fitted ranker, out/ranker.json), "
                "score the transcripts; overlap refused"
                if opts.train
                else "no --train: statistics (and learned fusion weights) cross-fitted in two folds "
                "on the scored conversations themselves"
            ),
            "learned_weights": {s: v["weights"] for s, v in learned.items()},
        },
        "systems": result,
        # the full system's service figures under GET /v1/metrics' names (thumbs: the store only)
        "service": service_summary(result["full"]["metrics"]) if "full" in result else None,
    }
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    os.replace(tmp, out / "summary.json")
    return summary


_RANKING_METRICS = ("rec.recall", "rec.ndcg", "rec.mrr", "rec_new.", "rec.diversity")


def _apply_learned_fusion(
    out: Path, table: ScoreTable, extras: _Extras, opts: EvalOptions, settings: Settings
) -> dict[str, Any]:
    """Replace each pipeline system's ranking metrics by those of its cross-fitted re-ranking;
    keep the full system's configured-weight numbers as ``full@configured``."""
    from chatrec.chatbot import make_retriever
    from chatrec.eval.fusion import cross_fit_system

    vectors = make_retriever(settings).item_vectors()
    done: dict[str, Any] = {}
    for system in [s for s in table.systems() if s not in BASELINES]:
        res = cross_fit_system(out / "features.jsonl", table.ids, opts.seed, system, vectors)
        if res is None:
            continue
        done[system] = res
        if system == "full":
            for metric in table.metrics("full"):
                num, den = table.pair("full", metric)
                c = table.col("full@configured", metric)
                table.num[:, c], table.den[:, c] = num, den
            extras.latency["full@configured"] = list(extras.latency.get("full", []))
            if "full" in extras.covered:
                extras.covered["full@configured"] = set(extras.covered["full"])
                extras.lists["full@configured"] = list(extras.lists["full"])
        for metric in table.metrics(system):
            if metric.startswith(_RANKING_METRICS):
                table.drop(system, metric)
        for cid, sums in res["sums"].items():
            table.put(cid, system, sums)
        extras.covered.pop(system, None)
        extras.lists.pop(system, None)
        for cid, user in zip(table.ids, table.users):
            if cid in res["first_lists"]:
                extras.add_list(system, user, res["first_lists"][cid])
    return done


def _kb_items(settings: Settings) -> dict:
    from chatrec.kb import load_kb

    global _KB_CACHE
    if _KB_CACHE is None or _KB_CACHE[0] != settings.kb_dir:
        _KB_CACHE = (settings.kb_dir, load_kb(settings.kb_dir).items)
    return _KB_CACHE[1]


_KB_CACHE: tuple[Path, dict] | None = None


def _recall_curve(out: Path, system: str, prefix: str) -> list[float]:
    """Micro recall@1..50 from the per-turn rows (streams the file)."""
    hits = np.zeros(DEPTH)
    total = 0
    key = "gold" if prefix == "rec" else "gold_new"
    with (out / "turns.jsonl").open(encoding="utf-8") as fh:
        for raw in fh:
            r = json.loads(raw)
            if r["system"] != system or r["kind"] != "rec" or not r.get(key):
                continue
            gold = set(r[key])
            total += len(gold)
            for rank, item in enumerate(r.get("ranked", [])):
                if item in gold:
                    hits[rank:] += 1
    return [round(float(h / total), 4) if total else 0.0 for h in hits]


def _score_rows(run: Path) -> Iterator[dict]:
    path = run / "scores.jsonl"
    if not path.exists():
        raise EvalError(f"{run} has no scores.jsonl: not a finished `chatrec eval` run")
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            yield json.loads(raw)


def compare(a: str, b: str, seed: int = 7, resamples: int = 2000) -> dict[str, Any]:
    """Paired differences ``A - B`` on the conversations both runs scored. ``a``/``b`` are
    ``RUN_DIR`` or ``RUN_DIR:system`` (default system ``full``)."""
    from scipy.stats import permutation_test

    def parse(spec: str) -> tuple[Path, str]:
        path, _, system = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
        return Path(path), system or "full"

    (pa, sa), (pb, sb) = parse(a), parse(b)
    ca = {c["conversation_id"]: c["sums"].get(sa) for c in _score_rows(pa)}
    cb = {c["conversation_id"]: c["sums"].get(sb) for c in _score_rows(pb)}
    common = sorted(i for i in ca.keys() & cb.keys() if ca[i] is not None and cb[i] is not None)
    if not common:
        raise EvalError(f"no conversation scored by both {a} and {b}")
    names = sorted({k for i in common for k in ca[i]} & {k for i in common for k in cb[i]})
    w = _bootstrap_weights(len(common), resamples, seed)
    out: dict[str, Any] = {"a": a, "b": b, "conversations": len(common), "metrics": {}}
    for name in names:
        na = np.array([ca[i].get(name, [0, 0])[0] for i in common], dtype=np.float64)
        nb = np.array([cb[i].get(name, [0, 0])[0] for i in common], dtype=np.float64)
        da = np.array([ca[i].get(name, [0, 0])[1] for i in common], dtype=np.float64)
        db = np.array([cb[i].get(name, [0, 0])[1] for i in common], dtype=np.float64)
        if da.sum() <= 0 or not np.allclose(da, db):
            continue  # not the same turns on both sides
        diff = (w @ na - w @ nb) / np.maximum(w @ da, 1e-12)
        lo, hi = np.percentile(diff, [2.5, 97.5])
        mean_den = da.mean()
        test = permutation_test(
            (na, nb),
            lambda x, y, axis, den=mean_den: (x.mean(axis=axis) - y.mean(axis=axis)) / den,
            permutation_type="samples",
            vectorized=True,
            n_resamples=9999,
            random_state=seed,
        )
        out["metrics"][name] = {
            "a": round(na.sum() / da.sum(), 4),
            "b": round(nb.sum() / db.sum(), 4),
            "diff": round((na.sum() - nb.sum()) / da.sum(), 4),
            "ci_low": round(float(lo), 4),
            "ci_high": round(float(hi), 4),
            "p_value": round(float(test.pvalue), 4),
            "n": int(da.sum()),
        }
    return out
