"""The gate for the ranking policy: build a candidate from logged feedback, estimate its value
against the current policy off-policy on held-out logged turns, promote only if not worse.

Estimates are per logged slate, summed over its positions (the decomposition the bandit learns
with, :mod:`chatrec.turn.policy`): at position k the policy's pick among the candidates still
available is compared with the logged item, whose reward r is 1 for an accept, else 0, and whose
logged propensity is p.

* IPS: r [pick = logged] / p.
* DR (doubly robust): q(pick) + (r - q(logged)) [pick = logged] / p, with q the gate's own
  reward model: a bandit model fit on the training slates with the logged votes (never the
  candidate's, whose training signal may be wrong), its predicted accept probability in [0, 1].

The value is the mean over held-out turns; the candidate - current difference has a paired
bootstrap 95% interval over turns. The candidate is promoted when the interval's lower end is
at least ``-margin`` (non-inferiority), for both estimators. Without exploration in the logs
(``ranking.explore`` = 0) only picks that agree with the logged ones carry information; the
report says how many positions matched.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from chatrec.turn.policy import PRIOR_WEIGHT, BanditPolicy, FusionPolicy, PolicyStore, slate_costs, update

RankPolicy = BanditPolicy | FusionPolicy


def _scores(policy: RankPolicy, context: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[float]:
    """The policy's ranking scores for logged candidates (as :meth:`BanditPolicy.scores` computes them)."""
    if isinstance(policy, BanditPolicy) and rows:
        costs = policy.vw.predict(policy._example(context, rows))
        return [PRIOR_WEIGHT * float(r["fused"]) - float(c) for r, c in zip(rows, costs)]
    return [float(r["fused"]) for r in rows]


def _rewards(model: BanditPolicy | None, context: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[float]:
    """The gate's reward model: predicted accept probability in [0, 1] (0 without a model)."""
    if model is None or not rows:
        return [0.0] * len(rows)
    return [min(1.0, max(0.0, -float(c))) for c in model.vw.predict(model._example(context, rows))]


def turn_values(
    policy: RankPolicy,
    record: dict[str, Any],
    votes: Sequence[dict[str, Any]],
    reward_model: BanditPolicy | None = None,
) -> tuple[float, float, int]:
    """(IPS, DR, matched positions) of one logged slate under ``policy``; DR's q is ``reward_model``."""
    costs = slate_costs(votes)
    remaining = list(record["candidates"])
    ips = dr = 0.0
    matched = 0
    for s in sorted(record["shown"], key=lambda s: s["position"]):
        idx = next((i for i, c in enumerate(remaining) if c["item_id"] == s["item_id"]), None)
        if idx is None:
            continue
        scores = _scores(policy, record["context"], remaining)
        q = _rewards(reward_model, record["context"], remaining)
        pick = min(range(len(remaining)), key=lambda i: (-scores[i], remaining[i]["item_id"]))
        r = 1.0 if costs.get(s["item_id"], 0.0) < 0 else 0.0
        p = max(float(s["propensity"]), 1e-3)
        hit = pick == idx
        matched += hit
        ips += r * hit / p
        dr += q[pick] + (r - q[idx]) * hit / p
        remaining.pop(idx)
    return ips, dr, matched


def _interval(xs: np.ndarray, rng: np.random.Generator, n: int = 1000) -> tuple[float, float, float]:
    if len(xs) == 0:
        return 0.0, 0.0, 0.0
    means = xs[rng.integers(0, len(xs), size=(n, len(xs)))].mean(axis=1)
    return float(xs.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate(
    current: RankPolicy,
    candidate: RankPolicy,
    held_out: Sequence[dict[str, Any]],
    votes: Sequence[dict[str, Any]],
    seed: int = 0,
    reward_model: BanditPolicy | None = None,
) -> dict[str, Any]:
    """IPS and DR values of both policies on ``held_out`` logged slates and the paired difference
    (DR with ``reward_model``, the same one for both)."""
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for f in votes:
        by_turn.setdefault(int(f["turn_id"]), []).append(f)
    cur, cand = [], []
    for rec in held_out:
        v = by_turn.get(int(rec["turn_id"]), [])
        cur.append(turn_values(current, rec, v, reward_model))
        cand.append(turn_values(candidate, rec, v, reward_model))
    a, b = np.array(cur, dtype=float).reshape(-1, 3), np.array(cand, dtype=float).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"turns": len(held_out)}
    for j, name in ((0, "ips"), (1, "dr")):
        out[name] = {
            "current": _interval(a[:, j], rng),
            "candidate": _interval(b[:, j], rng),
            "difference": _interval(b[:, j] - a[:, j], rng),
        }
    out["matched_positions"] = {"current": int(a[:, 2].sum()), "candidate": int(b[:, 2].sum())}
    return out


def shuffled(votes: Sequence[dict[str, Any]], logs: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Votes with the accepted items moved to random shown items of random turns (a deliberately
    worse training signal, to check that the gate blocks what it learns)."""
    rng = random.Random(seed)
    slots = [(int(rec["turn_id"]), s["item_id"]) for rec in logs for s in rec["shown"]]
    n = sum(1 for f in votes if f["kind"] == "accept")
    return [{"turn_id": t, "kind": "accept", "item_id": i} for t, i in rng.sample(slots, min(n, len(slots)))]


@dataclass
class GateResult:
    version: str | None  # the candidate's saved version (None when nothing was learned)
    promoted: bool
    report: dict[str, Any]


def learn_and_gate(
    versions: PolicyStore,
    logs: Sequence[dict[str, Any]],
    votes: Sequence[dict[str, Any]],
    *,
    holdout: float = 0.3,
    margin: float = 0.02,
    min_turns: int = 20,
    shuffle_rewards: bool = False,
    seed: int = 0,
) -> GateResult:
    """Learn a candidate from the logged slates after the current version's, hold out the newest
    ``holdout`` share of them, compare, and promote the candidate only if not worse."""
    current = versions.load()
    new = [r for r in logs if int(r["turn_id"]) > current.learned_turn]
    report: dict[str, Any] = {
        "current": versions.current() or "untrained",
        "new_logged_turns": len(new),
        "holdout": holdout,
        "margin": margin,
        "shuffled_rewards": shuffle_rewards,
    }
    if len(new) < min_turns:
        report["decision"] = f"not enough new logged turns ({len(new)} < {min_turns})"
        return GateResult(None, False, report)
    cut = max(1, int(len(new) * (1 - holdout)))
    train, held_out = new[:cut], new[cut:]
    candidate = versions.load()  # the current one, to be updated
    train_votes = shuffled(votes, train, seed) if shuffle_rewards else votes
    report["examples"] = update(candidate, train, train_votes)
    report["train_turns"], report["held_out_turns"] = len(train), len(held_out)
    reward_model = BanditPolicy()  # DR's q: fit on the training slates with the logged votes, shared by both
    update(reward_model, train, votes)
    report["estimates"] = evaluate(current, candidate, held_out, votes, seed, reward_model)
    low = min(report["estimates"][k]["difference"][1] for k in ("ips", "dr"))
    promoted = low >= -margin
    version = versions.save(candidate, {"gate": _brief(report)}, promote=promoted)
    report["candidate"] = version
    report["decision"] = (
        f"promoted {version}: the 95% lower bound of candidate - current is {low:.4f} >= -{margin}"
        if promoted
        else f"blocked {version}: the 95% lower bound of candidate - current is {low:.4f} < -{margin}; "
        f"{report['current']} stays current"
    )
    return GateResult(version, promoted, report)


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    est = report.get("estimates", {})
    return {
        "current": report["current"],
        "train_turns": report.get("train_turns"),
        "held_out_turns": report.get("held_out_turns"),
        "shuffled_rewards": report["shuffled_rewards"],
        **{k: est[k]["difference"] for k in ("ips", "dr") if k in est},
    }


def report_text(report: dict[str, Any]) -> str:
    """The gate's report as text."""
    lines = [
        f"current policy: {report['current']}; new logged turns: {report['new_logged_turns']}"
        + (f" (train {report['train_turns']}, held out {report['held_out_turns']})" if "train_turns" in report else ""),
    ]
    if report.get("shuffled_rewards"):
        lines.append("candidate trained on SHUFFLED rewards (a deliberately worse candidate)")
    est = report.get("estimates")
    if est:
        lines.append(f"{'estimator':<10}{'current':>28}{'candidate':>28}{'difference':>28}")
        for k in ("ips", "dr"):
            cells = [
                f"{v[0]:.4f} [{v[1]:.4f}, {v[2]:.4f}]"
                for v in (est[k]["current"], est[k]["candidate"], est[k]["difference"])
            ]
            lines.append(f"{k.upper():<10}" + "".join(c.rjust(28) for c in cells))
        m = est["matched_positions"]
        lines.append(f"positions matching the logged item: current {m['current']}, candidate {m['candidate']}")
    lines.append(f"decision: {report['decision']}")
    return "\n".join(lines)
