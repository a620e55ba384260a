"""The ranking policy: which of the allowed, scored candidates a turn shows, with what probability,
and what is logged so that feedback can teach a better policy without bias (docs/feedback.md).

The ranker (:mod:`chatrec.turn.rank`) applies the hard filters and fuses the features first; a
policy only orders and picks among the ``ranking.policy_candidates`` best allowed candidates, so
nothing it shows, exploring or not, can fail a hard filter.

* :class:`FusionPolicy` (``ranking.policy = "fusion"``): the fused score's order.
* :class:`BanditPolicy` (``ranking.policy = "bandit"``): Vowpal Wabbit's contextual bandit with
  action-dependent features (``--cb_adf``, the learner under ``cb_explore_adf``); shared context:
  the user, the requested categories and constraints; per action: the ranker's features, the
  fused score, brand and category. The slate is ordered by fused score - predicted cost (a learned
  correction to the fused order, which an untrained model keeps); it learns from the logged
  slates in small batches (:meth:`BanditPolicy.update`) and is saved as numbered versions in the
  shared store with a current one (:class:`PolicyStore`), so a version can be rolled back and every
  replica ranks with the same one.

Exploration (``ranking.explore`` = epsilon, live turns only): each slate position takes the
policy's best remaining candidate with probability 1 - epsilon, else a uniformly drawn remaining
one. The logged propensity of position k is the probability of showing that item there given the
items above it: (1 - epsilon) [it is the greedy one] + epsilon / remaining.
"""

from __future__ import annotations

import logging
import random
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from chatrec.extras import require

log = logging.getLogger(__name__)

ACCEPT_COST, REJECT_COST, IGNORED_COST = -1.0, 0.5, 0.0
VW_ARGS = "--cb_adf --quiet -q UI -q UA"
UNTRAINED = "v0000"  # the version name of a model no version was loaded into
PRIOR_WEIGHT = 1.0  # the fused score's weight in the bandit's score: it learns a correction to the fused order


class Scored(Protocol):
    """What a policy reads of a ranker candidate (:class:`chatrec.turn.rank.Candidate`)."""

    item: Any
    features: dict[str, float]
    score: float


def context_of(state: Any, history: Any, user_key: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """The shared context of a turn: who asks (``user_key(user id)``: the form the store keeps,
    so that the live draw and the logged record are the same context) and what the request
    constrains (no text, no PII)."""
    c = state.constraints
    user = history.user_id or ""
    return {
        "user": (user_key(user) if user_key and user else user) or "",
        "categories": sorted(c.categories),
        "budget": c.max_price is not None,
        "brands_in": sorted(c.brands_in),
        "device": c.compatible_with or "",
    }


@dataclass
class Slate:
    """The chosen candidates, best first, and the log record of the choice."""

    shown: list[Any]
    record: dict[str, Any]


def _tok(value: Any) -> str:
    return re.sub(r"[\s|:]+", "_", str(value)) or "_"


class FusionPolicy:
    """The fused score's order (the policy before anything is learned)."""

    name = "fusion"
    version = "fusion"

    def scores(self, cands: Sequence[Scored], context: dict[str, Any]) -> list[float]:
        return [c.score for c in cands]


class BanditPolicy:
    """A Vowpal Wabbit ``--cb_adf`` model over (context, candidate) features; lower predicted cost is better."""

    name = "bandit"

    def __init__(self, model_path: Path | None = None, version: str = "v0000", learned_turn: int = 0):
        vw = require("vowpalwabbit", purpose='ranking.policy = "bandit"')
        args = VW_ARGS + (f" -i {model_path}" if model_path is not None else "")
        self.vw = vw.Workspace(args)
        self.version = version
        self.learned_turn = learned_turn  # the last logged turn id it has learned from

    # ------------------------------------------------------------ features

    @staticmethod
    def _shared(context: dict[str, Any]) -> str:
        u = [f"user={_tok(context.get('user') or 'anon')}"]
        u += [f"cat={_tok(c)}" for c in context.get("categories", [])]
        u += [f"brand_in={_tok(b)}" for b in context.get("brands_in", [])]
        if context.get("budget"):
            u.append("budget")
        if context.get("device"):
            u.append("device")
        return "shared |U " + " ".join(u)

    @staticmethod
    def _action(cand: dict[str, Any], label: str = "") -> str:
        feats = " ".join(f"{_tok(k)}:{float(v):.4f}" for k, v in cand["features"].items() if v)
        return (
            f"{label}|A fused:{float(cand['fused']):.4f} {feats} "
            f"|I brand={_tok(cand.get('brand'))} category={_tok(cand.get('category'))} item={_tok(cand['item_id'])}"
        )

    def _example(
        self,
        context: dict[str, Any],
        cands: Sequence[dict[str, Any]],
        chosen: int | None = None,
        cost: float = 0.0,
        p: float = 1.0,
    ) -> list[str]:
        lines = [self._shared(context)]
        for i, cand in enumerate(cands):
            label = f"0:{cost}:{max(p, 1e-3)} " if i == chosen else ""
            lines.append(self._action(cand, label))
        return lines

    # ------------------------------------------------------------ policy

    def scores(self, cands: Sequence[Scored], context: dict[str, Any]) -> list[float]:
        rows = [candidate_row(c) for c in cands]
        if not rows:
            return []
        costs = self.vw.predict(self._example(context, rows))
        # the fused score minus the predicted cost: an untrained model (cost 0 for all) keeps the fused order
        return [PRIOR_WEIGHT * c.score - float(cost) for cost, c in zip(costs, cands)]

    def learn(self, record: dict[str, Any], costs: dict[str, float]) -> int:
        """Learn from one logged slate: one example per shown position, over the candidates still
        available there, with the item's cost (:data:`ACCEPT_COST` ...) and logged propensity."""
        remaining = list(record["candidates"])
        n = 0
        for s in sorted(record["shown"], key=lambda s: s["position"]):
            idx = next((i for i, c in enumerate(remaining) if c["item_id"] == s["item_id"]), None)
            if idx is None:
                continue
            self.vw.learn(
                self._example(record["context"], remaining, idx, costs.get(s["item_id"], 0.0), s["propensity"])
            )
            remaining.pop(idx)
            n += 1
        return n

    def save(self, path: Path) -> None:
        self.vw.save(str(path))


RankPolicy = FusionPolicy | BanditPolicy


def candidate_row(c: Scored) -> dict[str, Any]:
    """One candidate as logged: id, brand, category, the ranker's features and fused score."""
    return {
        "item_id": c.item.id,
        "brand": c.item.brand,
        "category": c.item.category,
        "fused": round(float(c.score), 5),
        "features": {k: round(float(v), 4) for k, v in c.features.items()},
    }


def choose(
    policy: RankPolicy,
    cands: Sequence[Scored],
    context: dict[str, Any],
    top_n: int,
    epsilon: float = 0.0,
    rng: random.Random | None = None,
) -> Slate:
    """The slate of up to ``top_n`` of ``cands`` (allowed candidates, fused-score order) and its log record."""
    rng = rng or random.Random()
    scores = policy.scores(cands, context)
    order = sorted(range(len(cands)), key=lambda i: (-scores[i], cands[i].item.id))
    remaining = list(order)
    shown: list[int] = []
    rows: list[dict[str, Any]] = []
    for pos in range(min(top_n, len(cands))):
        greedy = remaining[0]
        pick, explored = greedy, False
        if epsilon > 0 and rng.random() < epsilon:
            pick = rng.choice(remaining)
            explored = pick != greedy
        p = (1 - epsilon) * (pick == greedy) + epsilon / len(remaining)
        remaining.remove(pick)
        shown.append(pick)
        rows.append(
            {
                "item_id": cands[pick].item.id,
                "position": pos,
                "propensity": round(p, 6),
                "explored": explored,
                "score": round(float(scores[pick]), 6),
            }
        )
    record = {
        "policy": policy.name,
        "version": policy.version,
        "epsilon": epsilon,
        "order": [cands[i].item.id for i in order],  # the greedy order drawn from: the gate's propensities
        "depth": min(top_n, len(cands)),  # positions drawn (the turn may show fewer: log_slate)
        "context": context,
        "candidates": [candidate_row(c) for c in cands],
        "shown": rows,
    }
    return Slate([cands[i] for i in shown], record)


def slate_costs(votes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per item cost from a turn's votes: accept -1, reject +0.5, shown and ignored 0."""
    costs: dict[str, float] = {}
    for f in votes:
        if f["kind"] == "accept" and f.get("item_id"):
            costs[f["item_id"]] = ACCEPT_COST
        elif f["kind"] == "reject" and f.get("item_id"):
            costs.setdefault(f["item_id"], REJECT_COST)
    return costs


# ---------------------------------------------------------------- versions


class PolicyStore:
    """Numbered bandit versions in the shared store (:class:`chatrec.store.base.Store`: SQLite or
    PostgreSQL), so every replica on it sees the same ones: per version the VW model's bytes and
    its meta (when, from which version, how many turns, up to which logged turn), and which version
    is current. ``kind`` keeps separate sequences apart (one per shop: ``policy_kind()``)."""

    def __init__(self, store: Any, kind: str = "bandit"):
        self.store, self.kind = store, kind

    def versions(self) -> list[str]:
        return [m["version"] for m in self.store.policy_versions(self.kind)]

    def current(self) -> str | None:
        return self.store.current_policy(self.kind)

    def meta(self, version: str) -> dict[str, Any]:
        for m in self.store.policy_versions(self.kind):
            if m["version"] == version:
                return dict(m)
        raise KeyError(f"no policy version {version!r} of {self.kind!r}")

    def load(self, version: str | None = None) -> BanditPolicy:
        """The ``version`` (default: the current one); a fresh, untrained model when there is none.
        VW reads models from files: the stored bytes go through a temporary file."""
        version = version or self.current()
        if version is None:
            return BanditPolicy()
        meta = self.meta(version)
        blob = self.store.policy_blob(self.kind, version)
        with tempfile.TemporaryDirectory(prefix="chatrec-policy-") as tmp:
            path = Path(tmp) / f"{version}.vw"
            path.write_bytes(blob)
            return BanditPolicy(path, version, int(meta.get("learned_turn", 0)))

    def save(self, policy: BanditPolicy, note: dict[str, Any] | None = None, promote: bool = True) -> str:
        """Save ``policy`` as the next version (and make it current unless ``promote`` is false)."""
        with tempfile.TemporaryDirectory(prefix="chatrec-policy-") as tmp:
            path = Path(tmp) / "model.vw"
            policy.save(path)
            blob = path.read_bytes()
        meta = {"parent": policy.version, "learned_turn": policy.learned_turn, "vw_args": VW_ARGS, **(note or {})}
        version = str(self.store.save_policy_version(self.kind, meta, blob))
        policy.version = version
        if promote:
            self.promote(version)
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` current (``KeyError`` for an unknown one); live chatbots follow between turns."""
        self.store.set_current_policy(self.kind, version)

    def rollback(self) -> str | None:
        """Make the version the current one was learned from current again (``None``: back to no
        bandit model). Not simply the previous number: that can be a candidate the gate blocked."""
        cur = self.current()
        if cur is None:
            raise ValueError("no current policy version to roll back")
        parent = self.meta(cur).get("parent")
        now = parent if parent in self.versions() else None
        self.store.set_current_policy(self.kind, now)
        return now


def update(policy: BanditPolicy, logs: Sequence[dict[str, Any]], votes: Sequence[dict[str, Any]]) -> int:
    """Learn from the logged slates after ``policy.learned_turn`` (``Store.ranking_log`` rows) with
    the votes on them (``Store.feedback`` rows); returns the number of examples learned."""
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for f in votes:
        by_turn.setdefault(int(f["turn_id"]), []).append(f)
    n = 0
    t0 = time.perf_counter()
    for rec in logs:
        tid = int(rec["turn_id"])
        if tid <= policy.learned_turn:
            continue
        n += policy.learn(rec, slate_costs(by_turn.get(tid, [])))
        policy.learned_turn = tid
    log.info("policy %s learned %d examples in %.2f s", policy.version, n, time.perf_counter() - t0)
    return n


# ---------------------------------------------------------------- wiring (chatrec/chatbot.py)


def policy_kind(tenant: str | None = None) -> str:
    """The store's name for a shop's bandit versions: ``bandit`` (the default shop), ``bandit:<tenant>``."""
    return "bandit" if not tenant or tenant == "default" else f"bandit:{tenant}"


def planner_policy(kind: str, store: Any, policy_kind: str = "bandit") -> RankPolicy | None:
    """The policy a planner ranks with: ``None`` (the fused order, nothing logged) for ``fusion``;
    the current bandit version in ``store`` (or an untrained one) for ``bandit``."""
    return PolicyStore(store, policy_kind).load() if kind == "bandit" else None


class LivePolicy:
    """The live chatbot's policy: it always logs (the fused order is a policy too), explores with
    ``epsilon``, and picks up a bandit version promoted or rolled back by any process on the
    store between turns (:meth:`refresh`: one cheap query for the current version's name)."""

    def __init__(
        self,
        ranker: Any,
        kind: str,
        store: Any,
        epsilon: float,
        seed: int | None = None,
        policy_kind: str = "bandit",
    ):
        self.ranker, self.kind, self.store = ranker, kind, PolicyStore(store, policy_kind)
        if ranker.policy is None:
            ranker.policy = FusionPolicy()
        ranker.explore = epsilon
        ranker.rng = random.Random(seed)

    def refresh(self) -> None:
        """Load the store's current version when it is not the one ranking now. A store fault keeps
        the policy in use (the turn goes on; the next turn tries again)."""
        if self.kind != "bandit":
            return
        try:
            current = self.store.current() or UNTRAINED
            if current != getattr(self.ranker.policy, "version", None):
                self.ranker.policy = self.store.load(None if current == UNTRAINED else current)
                log.info("ranking policy now %s", self.ranker.policy.version)
        except Exception:
            log.warning("could not refresh the ranking policy; %s stays", self.ranker.policy.version, exc_info=True)


def log_slate(store: Any, turn_id: int, record: dict[str, Any] | None, shown_ids: Sequence[str]) -> None:
    """Keep a turn's slate record in the store's ranking log, with only the items the turn really
    showed (the ids re-check may drop one). A store fault loses the record, not the turn."""
    if record is None:
        return
    record = {**record, "shown": [s for s in record["shown"] if s["item_id"] in set(shown_ids)]}
    try:
        store.log_ranking(turn_id, record)
    except Exception:
        log.warning("could not log the ranking of turn %s", turn_id, exc_info=True)
