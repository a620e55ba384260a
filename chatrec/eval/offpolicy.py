"""The gate for the ranking policy: build a candidate from logged feedback, estimate its value
against the current policy off-policy on held-out logged turns, promote only if not worse.

Estimates are per logged slate, summed over its positions, assuming an item's reward at a
position does not depend on the other items shown (the decomposition the bandit learns with,
:mod:`chatrec.turn.policy`). A policy's slate is its own top-k of the logged candidates; at
position k it is compared with the logged item, whose reward r is 1 for an accept, else 0, and
whose *marginal* logging propensity P(k, item) is the probability that the logging policy
(the version named in the record, epsilon-greedy over its own order, as
:func:`chatrec.turn.policy.choose` draws) shows that item at position k, estimated by replaying
that draw (:data:`PROPENSITY_DRAWS` times, seeded).

* IPS: r [slate_k = logged_k] / P(k, logged_k).
* DR (doubly robust): q(slate_k) + (r - q(logged_k)) [slate_k = logged_k] / P(k, logged_k), with q
  the gate's own reward model: a bandit model fit on the training slates with the logged votes
  (never the candidate's, whose training signal may be wrong), its predicted accept probability
  in [0, 1].

(Comparing position by position against the logged *remaining* candidates, as an earlier
version did, scores a policy that moves an item up as if it showed that item at every later
position too: it blocked candidates that the simulator shows are better.)

The value is the mean over held-out turns; the candidate - current difference has a paired
bootstrap 95% interval over turns. The candidate is promoted when the interval's lower end is
at least ``-margin`` (non-inferiority), for both estimators. Without exploration in the logs
(``ranking.explore`` = 0) only slates that agree with the logged ones carry information; the
report says how many positions matched.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from chatrec.turn.policy import (
    PRIOR_WEIGHT,
    UNTRAINED,
    BanditPolicy,
    FusionPolicy,
    PolicyStore,
    slate_costs,
    update,
)

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


PROPENSITY_DRAWS = 4000  # replays of the logging policy's epsilon-greedy draw per held-out slate


def _order(scores: Sequence[float], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Candidate indices best first, ties by item id (as :func:`chatrec.turn.policy.choose` orders)."""
    return sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]["item_id"]))


@functools.lru_cache(maxsize=256)  # the current and the candidate policy are scored on the same slates
def marginal_propensities(
    greedy: tuple[int, ...], epsilon: float, positions: int, draws: int = PROPENSITY_DRAWS, seed: int = 0
) -> dict[tuple[int, int], float]:
    """(position, candidate index) -> the probability that an epsilon-greedy draw over the order
    ``greedy`` shows that candidate there (:func:`chatrec.turn.policy.choose`'s draw, replayed)."""
    if epsilon <= 0:
        return {(k, i): 1.0 for k, i in enumerate(greedy[:positions])}
    rng = random.Random(seed)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(draws):
        remaining = list(greedy)
        for k in range(min(positions, len(greedy))):
            pick = rng.choice(remaining) if rng.random() < epsilon else remaining[0]
            remaining.remove(pick)
            counts[(k, pick)] = counts.get((k, pick), 0) + 1
    return {key: n / draws for key, n in counts.items()}


def turn_values(
    policy: RankPolicy,
    record: dict[str, Any],
    votes: Sequence[dict[str, Any]],
    reward_model: BanditPolicy | None = None,
    logging: RankPolicy | None = None,
    seed: int = 0,
) -> tuple[float, float, int]:
    """(IPS, DR, matched positions) of one logged slate under ``policy``; DR's q is ``reward_model``;
    ``logging`` is the policy that drew the logged slate (default: the fused order)."""
    costs = slate_costs(votes)
    rows = list(record["candidates"])
    index = {c["item_id"]: i for i, c in enumerate(rows)}
    shown = sorted((s for s in record["shown"] if s["item_id"] in index), key=lambda s: s["position"])
    if not shown:
        return 0.0, 0.0, 0
    context = record["context"]
    slate = _order(_scores(policy, context, rows), rows)
    logged_order = _order(_scores(logging or FusionPolicy(), context, rows), rows)
    depth = max(int(s["position"]) for s in shown) + 1
    marginal = marginal_propensities(tuple(logged_order), float(record.get("epsilon") or 0.0), depth, seed=seed)
    q = _rewards(reward_model, context, rows)
    ips = dr = 0.0
    matched = 0
    for s in shown:
        k, i = int(s["position"]), index[s["item_id"]]
        r = 1.0 if costs.get(s["item_id"], 0.0) < 0 else 0.0
        p = max(marginal.get((k, i), 0.0), 1e-3)
        hit = k < len(slate) and slate[k] == i
        matched += hit
        ips += r * hit / p
        dr += (q[slate[k]] if k < len(slate) else 0.0) + (r - q[i]) * hit / p
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
    logging_policy: Callable[[dict[str, Any]], RankPolicy] | None = None,
) -> dict[str, Any]:
    """IPS and DR values of both policies on ``held_out`` logged slates and the paired difference
    (DR with ``reward_model``, the same one for both). ``logging_policy(record)``: the policy that
    drew a logged slate (default: the fused order)."""
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for f in votes:
        by_turn.setdefault(int(f["turn_id"]), []).append(f)
    cur, cand = [], []
    for n, rec in enumerate(held_out):
        v = by_turn.get(int(rec["turn_id"]), [])
        logging = logging_policy(rec) if logging_policy else None
        cur.append(turn_values(current, rec, v, reward_model, logging, seed + n))
        cand.append(turn_values(candidate, rec, v, reward_model, logging, seed + n))
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
    report["estimates"] = evaluate(current, candidate, held_out, votes, seed, reward_model, _logging_policies(versions))
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


def _logging_policies(versions: PolicyStore) -> Callable[[dict[str, Any]], RankPolicy]:
    """record -> the policy that drew it: the fused order, or the bandit version it names (loaded once)."""
    loaded: dict[str, RankPolicy] = {}

    def of(record: dict[str, Any]) -> RankPolicy:
        version = str(record.get("version") or UNTRAINED)
        if record.get("policy") != "bandit":
            return FusionPolicy()
        if version not in loaded:
            known = version != UNTRAINED and version in versions.versions()
            loaded[version] = versions.load(version) if known else BanditPolicy()  # untrained: the fused order
        return loaded[version]

    return of


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
