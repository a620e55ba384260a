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
shows i *anywhere* in its slate, makes the estimate unbiased for every item the logging policy
could show (P > 0: with exploration, every logged candidate; items it could not show add 0).
P(i shown) sums the *marginal* probabilities P(k, i) that the logging policy's epsilon-greedy
draw (:func:`chatrec.turn.policy.choose`) shows i at position k, computed exactly
(:func:`marginal_propensities`) from the greedy order the record logged (records written before
that order was logged: recomputed from the logged features and the version the record names).

* IPS: sum over the policy's slate of theta_k [i_k shown] r / (theta_j P(i_k shown)).
* DR (doubly robust): sum of theta_k (q(i_k) + [i_k shown] (r / theta_j - q(i_k)) / P(i_k shown)), with
  q the gate's own reward model: a bandit model fit on the training turns with the logged votes
  (never the candidate's, whose training signal may be wrong), minus its predicted cost clipped
  to [0, 1] (costs: accept -1, ignored 0, reject +0.5), a stand-in for the accept probability;
  a wrong q costs DR variance, not bias.

Matching items rather than (item, position) pairs is what gives the gate power on a small shop's
traffic: a candidate that reorders or swaps a few items of the logged slate is scored on every
item the two share, not only where both put the same item at the same position. The price is the
model: with the default flat position bias the estimate values which items a slate shows, not
their order, so a candidate that only reorders the same items scores the same as the current one
(Li et al., "Offline evaluation of ranking policies with click models", KDD 2018, compare such
item-based estimators with exact item-position ones: far lower variance, biased when the click
model is wrong). A shop that has measured its widget's position bias sets it.

**Cross-fitting**: the new logged turns are split into ``folds`` (by turn, interleaved, so a
returning customer's other turns can teach the fold's candidate, as they teach the live one);
each fold is scored by a candidate and a reward model learned from the other folds, so every
new turn serves as held-out data once. The estimate is thus the average of the fold candidates,
each learned from (folds - 1) / folds of the turns; the candidate that is saved learns from all
of them. The value is the mean over turns; the candidate - current difference has a paired
95% interval by a cluster bootstrap over customers (a customer's turns are not independent).
The candidate is promoted when DR's interval has its lower end at least ``-margin``
(non-inferiority; DR, the standard choice for contextual bandits since Dudik, Langford and Li
2011, has the lower variance: IPS is reported beside it). Without exploration in the logs
(``ranking.explore`` = 0) only items the logged slates showed carry information; the report
says how many of the policies' slate items were shown in the logs.

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


def _order(scores: Sequence[float], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Candidate indices best first, ties by item id (as :func:`chatrec.turn.policy.choose` orders)."""
    return sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]["item_id"]))


@functools.lru_cache(maxsize=256)  # the current and the candidate policy are scored on the same slates
def marginal_propensities(greedy: tuple[int, ...], epsilon: float, positions: int) -> dict[tuple[int, int], float]:
    """(position, candidate index) -> the probability that an epsilon-greedy draw over the order
    ``greedy`` (:func:`chatrec.turn.policy.choose`'s draw) shows that candidate there, exactly.

    Per candidate, what matters is how many remaining candidates are ahead of it in the order
    (``ahead``): each position takes the first remaining one with probability 1 - epsilon, else a
    uniformly drawn remaining one, which is the candidate itself (1 / remaining), one ahead of it
    (ahead / remaining) or one behind it. A dynamic programme over ``ahead`` per position."""
    n = len(greedy)
    depth = min(positions, n)
    out: dict[tuple[int, int], float] = {}
    for rank, item in enumerate(greedy):
        state = {rank: 1.0}  # ahead -> probability, while the candidate is not yet shown
        for k in range(depth):
            remaining = n - k
            here = 0.0
            nxt: dict[int, float] = {}
            for ahead, p in state.items():
                first = (1 - epsilon) * (ahead == 0)
                here += p * (first + epsilon / remaining)
                if ahead > 0:  # the greedy pick or a uniform one ahead of it: one fewer ahead
                    nxt[ahead - 1] = nxt.get(ahead - 1, 0.0) + p * ((1 - epsilon) + epsilon * ahead / remaining)
                stay = epsilon * (remaining - 1 - ahead) / remaining  # a uniform pick behind it
                if stay > 0:
                    nxt[ahead] = nxt.get(ahead, 0.0) + p * stay
            if here > 0:
                out[(k, item)] = here
            state = nxt
    return out


def _logged_order(record: dict[str, Any], rows: Sequence[dict[str, Any]], logging: RankPolicy | None) -> list[int]:
    """The order the logging policy drew from: as logged (``order``), else recomputed from the
    logged features (records written before the order was logged; the fused scores there are
    rounded, which can break a near tie differently)."""
    index = {c["item_id"]: i for i, c in enumerate(rows)}
    if record.get("order"):
        return [index[i] for i in record["order"] if i in index]
    return _order(_scores(logging or FusionPolicy(), record["context"], rows), rows)


def turn_values(
    policy: RankPolicy,
    record: dict[str, Any],
    votes: Sequence[dict[str, Any]],
    reward_model: BanditPolicy | None = None,
    logging: RankPolicy | None = None,
    position_bias: Sequence[float] = (),
) -> tuple[float, float, int]:
    """(IPS, DR, shown items) of one logged slate under ``policy``: its slate's estimated accepts
    and how many of its items the logged slate showed; DR's q is ``reward_model``; ``logging`` is
    the policy that drew the logged slate (default: the fused order; used only for records without
    a logged order); ``position_bias``: theta_k, scaled so that the top is 1 (positions past its
    end take its last value; empty: 1 everywhere)."""
    costs = slate_costs(votes)
    rows = list(record["candidates"])
    index = {c["item_id"]: i for i, c in enumerate(rows)}
    shown = [s for s in record["shown"] if s["item_id"] in index]
    if not shown:
        return 0.0, 0.0, 0
    depth = max([int(record.get("depth") or 0)] + [int(s["position"]) + 1 for s in shown])
    top = float(position_bias[0]) if position_bias else 1.0
    theta = [float(position_bias[min(k, len(position_bias) - 1)]) / top if position_bias else 1.0 for k in range(depth)]
    context = record["context"]
    slate = _order(_scores(policy, context, rows), rows)[:depth]
    logged_order = _logged_order(record, rows, logging)
    marginal = marginal_propensities(tuple(logged_order), float(record.get("epsilon") or 0.0), depth)
    p_shown: dict[int, float] = {}
    for (_, i), p in marginal.items():
        p_shown[i] = p_shown.get(i, 0.0) + p
    # item -> its reward divided by the position bias where it was shown: an estimate of a(item);
    # an item the logging policy could not have shown (a record inconsistent with its order) is left out
    wanted = {
        index[s["item_id"]]: (1.0 if costs.get(s["item_id"], 0.0) < 0 else 0.0) / theta[int(s["position"])]
        for s in shown
        if p_shown.get(index[s["item_id"]], 0.0) > 0
    }
    q = _rewards(reward_model, context, rows)
    ips = dr = 0.0
    matched = 0
    for k, i in enumerate(slate):
        dr += theta[k] * q[i]
        if i in wanted:
            w = theta[k] / p_shown[i]
            matched += 1
            ips += w * wanted[i]
            dr += w * (wanted[i] - q[i])
    return ips, dr, matched


def _interval(
    xs: np.ndarray, groups: np.ndarray, rng: np.random.Generator, n: int = 1000
) -> tuple[float, float, float]:
    """Mean of ``xs`` and a 95% cluster-bootstrap interval: whole groups (customers) resampled."""
    if len(xs) == 0:
        return 0.0, 0.0, 0.0
    keys, g = np.unique(groups, return_inverse=True)
    sums, counts = np.bincount(g, xs, len(keys)), np.bincount(g, minlength=len(keys)).astype(float)
    pick = rng.integers(0, len(keys), size=(n, len(keys)))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    return float(xs.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def turn_estimates(
    current: RankPolicy,
    candidate: RankPolicy,
    held_out: Sequence[dict[str, Any]],
    votes: Sequence[dict[str, Any]],
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
        cur.append(turn_values(current, rec, v, reward_model, logging, position_bias))
        cand.append(turn_values(candidate, rec, v, reward_model, logging, position_bias))
    return np.array(cur, dtype=float).reshape(-1, 3), np.array(cand, dtype=float).reshape(-1, 3)


def _customer(record: dict[str, Any]) -> str:
    """The resampling unit of the intervals: the customer (their turns are not independent);
    anonymous turns stand alone."""
    return str(record["context"].get("user") or f"turn:{record['turn_id']}")


def summarise(a: np.ndarray, b: np.ndarray, groups: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Means with cluster-bootstrap 95% intervals (by ``groups``: one per turn) of both policies'
    per-turn values and of their paired difference."""
    rng = np.random.default_rng(seed)
    g = np.asarray(groups)
    out: dict[str, Any] = {"turns": len(a), "customers": len(set(groups))}
    for j, name in ((0, "ips"), (1, "dr")):
        out[name] = {
            "current": _interval(a[:, j], g, rng),
            "candidate": _interval(b[:, j], g, rng),
            "difference": _interval(b[:, j] - a[:, j], g, rng),
        }
    out["shown_items"] = {"current": int(a[:, 2].sum()), "candidate": int(b[:, 2].sum())}
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
    new = sorted((r for r in logs if int(r["turn_id"]) > current.learned_turn), key=lambda r: int(r["turn_id"]))
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
    groups: list[str] = []
    for f in range(folds):  # each fold scored by a candidate (and a reward model) that did not learn from it
        rest = [r for n, r in enumerate(new) if n % folds != f]
        held = [r for n, r in enumerate(new) if n % folds == f]
        candidate = versions.load()
        update(candidate, rest, train_votes)
        reward_model = BanditPolicy()  # DR's q: learned from the other folds with the logged votes, shared by both
        update(reward_model, rest, votes)
        parts.append(turn_estimates(current, candidate, held, votes, reward_model, logging, position_bias))
        groups += [_customer(r) for r in held]
    a, b = np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
    report["estimates"] = summarise(a, b, groups, seed)
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
        lines.append(f"intervals: {est.get('customers', '?')} customers resampled (cluster bootstrap)")
        m = est["shown_items"]
        lines.append(f"slate items the logged slates showed: current {m['current']}, candidate {m['candidate']}")
    lines.append(f"decision: {report['decision']}")
    return "\n".join(lines)
