"""The gate for the ranking policy: build a candidate from logged feedback, estimate its value
against the current policy off-policy on logged turns it did not learn from, promote only if not
worse.

**The value of a slate** is its expected accepts. The estimators read the logs with a position-based
model (PBM, the standard click model: Craswell et al. 2008; Chuklin et al., *Click Models for Web
Search*, 2015): an item i at slate position k is accepted with probability a(i) theta_k, where
a(i) is how much the customer wants the item and theta_k how likely a customer is to look at
position k (``ranking.position_bias``; by default 1 everywhere, so an item earns the same wherever
it is shown). A policy's slate is its own top-K of the logged candidates (K: the logged slate's
length). The logged reward r of item i (1 for an accept, else 0) shown at position j, divided by
theta_j, estimates a(i); weighting it by 1 / P(i shown), the probability that the logging policy
shows i *anywhere* in its slate, makes the estimate unbiased whatever the logging policy preferred.
P(i shown) sums the *marginal* probabilities P(k, i) that the logging policy (the version named in
the record, epsilon-greedy over its own order, as :func:`chatrec.turn.policy.choose` draws) shows
i at position k, estimated by replaying that draw (:data:`PROPENSITY_DRAWS` times, seeded).

* IPS: sum over the policy's slate of theta_k [i_k shown] r / (theta_j P(i_k shown)).
* DR (doubly robust): sum of theta_k (q(i_k) + [i_k shown] (r / theta_j - q(i_k)) / P(i_k shown)), with
  q the gate's own reward model: a bandit model fit on the training turns with the logged votes
  (never the candidate's, whose training signal may be wrong), its predicted accept probability
  in [0, 1].

Matching items rather than (item, position) pairs is what gives the gate power on a small shop's
traffic: a candidate that reorders or swaps a few items of the logged slate is scored on every
item the two share, not only where both put the same item at the same position. The price is the
model: with the default flat position bias the estimate values which items a slate shows, not
their order, so a candidate that only reorders the same items scores the same as the current one
(Li et al., "Offline evaluation of ranking policies with click models", KDD 2018, compare such
item-based estimators with exact item-position ones: far lower variance, biased when the click
model is wrong). A shop that has measured its widget's position bias sets it.

**Cross-fitting**: the new logged turns are split into ``folds`` (by turn, interleaved); each fold
is scored by a candidate and a reward model learned from the other folds, so every new turn
serves as held-out data once, and the candidate that is saved learns from all of them. The value
is the mean over turns; the candidate - current difference has a paired bootstrap 95% interval
over turns. The candidate is promoted when DR's interval has its lower end at least ``-margin``
(non-inferiority; DR, the standard choice for contextual bandits since Dudik, Langford and Li
2011, has the lower variance: IPS is reported beside it). Without exploration in the logs (``ranking.explore`` = 0)
only items the logged slates showed carry information; the report says how many of the
policies' slate items were shown in the logs.

(Two earlier estimators were wrong or weak. Comparing position by position against the logged
*remaining* candidates scored a policy that moves an item up as if it showed that item at every
later position too. Exact (item, position) matching on a 30% hold-out was unbiased but blocked
49 of 50 better candidates in the simulator: docs/feedback.md.)
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
    position_bias: Sequence[float] = (),
) -> tuple[float, float, int]:
    """(IPS, DR, shown items) of one logged slate under ``policy``: its slate's estimated accepts
    and how many of its items the logged slate showed; DR's q is ``reward_model``; ``logging`` is
    the policy that drew the logged slate (default: the fused order); ``position_bias``: theta_k
    (missing positions: the last given, or 1)."""
    costs = slate_costs(votes)
    rows = list(record["candidates"])
    index = {c["item_id"]: i for i, c in enumerate(rows)}
    shown = [s for s in record["shown"] if s["item_id"] in index]
    if not shown:
        return 0.0, 0.0, 0
    depth = max(int(s["position"]) for s in shown) + 1
    theta = [float(position_bias[min(k, len(position_bias) - 1)]) if position_bias else 1.0 for k in range(depth)]
    context = record["context"]
    slate = _order(_scores(policy, context, rows), rows)[:depth]
    logged_order = _order(_scores(logging or FusionPolicy(), context, rows), rows)
    marginal = marginal_propensities(tuple(logged_order), float(record.get("epsilon") or 0.0), depth, seed=seed)
    p_shown: dict[int, float] = {}
    for (_, i), p in marginal.items():
        p_shown[i] = p_shown.get(i, 0.0) + p
    # item -> its reward divided by the position bias where it was shown: an estimate of a(item)
    wanted = {
        index[s["item_id"]]: (1.0 if costs.get(s["item_id"], 0.0) < 0 else 0.0) / theta[int(s["position"])]
        for s in shown
    }
    q = _rewards(reward_model, context, rows)
    ips = dr = 0.0
    matched = 0
    for k, i in enumerate(slate):
        dr += theta[k] * q[i]
        if i in wanted:
            w = theta[k] / max(p_shown.get(i, 0.0), 1e-3)
            matched += 1
            ips += w * wanted[i]
            dr += w * (wanted[i] - q[i])
    return ips, dr, matched


def _interval(xs: np.ndarray, rng: np.random.Generator, n: int = 1000) -> tuple[float, float, float]:
    if len(xs) == 0:
        return 0.0, 0.0, 0.0
    means = xs[rng.integers(0, len(xs), size=(n, len(xs)))].mean(axis=1)
    return float(xs.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def turn_estimates(
    current: RankPolicy,
    candidate: RankPolicy,
    held_out: Sequence[dict[str, Any]],
    votes: Sequence[dict[str, Any]],
    seed: int = 0,
    reward_model: BanditPolicy | None = None,
    logging_policy: Callable[[dict[str, Any]], RankPolicy] | None = None,
    position_bias: Sequence[float] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Per held-out slate (IPS, DR, shown items) of both policies: two (turns, 3) arrays."""
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for f in votes:
        by_turn.setdefault(int(f["turn_id"]), []).append(f)
    cur, cand = [], []
    for rec in held_out:
        v = by_turn.get(int(rec["turn_id"]), [])
        logging = logging_policy(rec) if logging_policy else None
        n = seed + int(rec["turn_id"])  # the same replay of the logging draw for both policies
        cur.append(turn_values(current, rec, v, reward_model, logging, n, position_bias))
        cand.append(turn_values(candidate, rec, v, reward_model, logging, n, position_bias))
    return np.array(cur, dtype=float).reshape(-1, 3), np.array(cand, dtype=float).reshape(-1, 3)


def summarise(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Means with bootstrap 95% intervals of both policies' per-turn values and of their paired difference."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"turns": len(a)}
    for j, name in ((0, "ips"), (1, "dr")):
        out[name] = {
            "current": _interval(a[:, j], rng),
            "candidate": _interval(b[:, j], rng),
            "difference": _interval(b[:, j] - a[:, j], rng),
        }
    out["shown_items"] = {"current": int(a[:, 2].sum()), "candidate": int(b[:, 2].sum())}
    return out


def evaluate(
    current: RankPolicy,
    candidate: RankPolicy,
    held_out: Sequence[dict[str, Any]],
    votes: Sequence[dict[str, Any]],
    seed: int = 0,
    reward_model: BanditPolicy | None = None,
    logging_policy: Callable[[dict[str, Any]], RankPolicy] | None = None,
    position_bias: Sequence[float] = (),
) -> dict[str, Any]:
    """IPS and DR values of both policies on ``held_out`` logged slates and the paired difference
    (DR with ``reward_model``, the same one for both). ``logging_policy(record)``: the policy that
    drew a logged slate (default: the fused order)."""
    a, b = turn_estimates(current, candidate, held_out, votes, seed, reward_model, logging_policy, position_bias)
    return summarise(a, b, seed)


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
    folds: int = 5,
    margin: float = 0.02,
    min_turns: int = 20,
    shuffle_rewards: bool = False,
    position_bias: Sequence[float] = (),
    seed: int = 0,
) -> GateResult:
    """Learn a candidate from the logged slates after the current version's, estimate it against
    the current one by ``folds``-fold cross-fitting on those slates, and promote it only if not worse."""
    current = versions.load()
    new = [r for r in logs if int(r["turn_id"]) > current.learned_turn]
    report: dict[str, Any] = {
        "current": versions.current() or "untrained",
        "new_logged_turns": len(new),
        "folds": folds,
        "margin": margin,
        "position_bias": list(position_bias) or "flat",
        "shuffled_rewards": shuffle_rewards,
    }
    if len(new) < max(min_turns, folds):
        report["decision"] = f"not enough new logged turns ({len(new)} < {max(min_turns, folds)})"
        return GateResult(None, False, report)
    train_votes = shuffled(votes, new, seed) if shuffle_rewards else votes
    logging = _logging_policies(versions)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for f in range(folds):  # each fold scored by a candidate (and a reward model) that did not learn from it
        rest = [r for n, r in enumerate(new) if n % folds != f]
        held = [r for n, r in enumerate(new) if n % folds == f]
        candidate = versions.load()
        update(candidate, rest, train_votes)
        reward_model = BanditPolicy()  # DR's q: learned from the other folds with the logged votes, shared by both
        update(reward_model, rest, votes)
        parts.append(turn_estimates(current, candidate, held, votes, seed, reward_model, logging, position_bias))
    report["estimates"] = summarise(np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts]), seed)
    candidate = versions.load()  # the current one, to be updated from every new turn
    report["examples"] = update(candidate, new, train_votes)
    low = report["estimates"]["dr"]["difference"][1]
    promoted = low >= -margin
    version = versions.save(candidate, {"gate": _brief(report)}, promote=promoted)
    report["candidate"] = version
    report["decision"] = (
        f"promoted {version}: the 95% lower bound of candidate - current (DR) is {low:.4f} >= -{margin}"
        if promoted
        else f"blocked {version}: the 95% lower bound of candidate - current (DR) is {low:.4f} < -{margin}; "
        f"{report['current']} stays current"
        + (
            " (worse: the whole interval is below 0)"
            if report["estimates"]["dr"]["difference"][2] < 0
            else " (not shown to be worse, only uncertain: more logged turns, or more exploration, can tell)"
        )
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
        "new_logged_turns": report["new_logged_turns"],
        "folds": report["folds"],
        "shuffled_rewards": report["shuffled_rewards"],
        **{k: est[k]["difference"] for k in ("ips", "dr") if k in est},
    }


def report_text(report: dict[str, Any]) -> str:
    """The gate's report as text."""
    lines = [
        f"current policy: {report['current']}; new logged turns: {report['new_logged_turns']} "
        f"(each scored by a candidate learned from the other {report['folds'] - 1} of {report['folds']} folds); "
        f"position bias: {report['position_bias']}",
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
        m = est["shown_items"]
        lines.append(f"slate items the logged slates showed: current {m['current']}, candidate {m['candidate']}")
    lines.append(f"decision: {report['decision']}")
    return "\n".join(lines)
