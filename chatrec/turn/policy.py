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
  slates in small batches (:meth:`BanditPolicy.update`) and is saved as numbered versions with a
  ``CURRENT`` pointer (:class:`PolicyStore`), so a version can be rolled back.

Exploration (``ranking.explore`` = epsilon, live turns only): each slate position takes the
policy's best remaining candidate with probability 1 - epsilon, else a uniformly drawn remaining
one. The logged propensity of position k is the probability of showing that item there given the
items above it: (1 - epsilon) [it is the greedy one] + epsilon / remaining.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Sequence

from chatrec.extras import require

log = logging.getLogger(__name__)

ACCEPT_COST, REJECT_COST, IGNORED_COST = -1.0, 0.5, 0.0
VW_ARGS = "--cb_adf --quiet -q UI -q UA"
PRIOR_WEIGHT = 1.0  # the fused score's weight in the bandit's score: it learns a correction to the fused order


class Scored(Protocol):
    """What a policy reads of a ranker candidate (:class:`chatrec.turn.rank.Candidate`)."""

    item: Any
    features: dict[str, float]
    score: float


def context_of(state: Any, history: Any) -> dict[str, Any]:
    """The shared context of a turn: who asks and what the request constrains (no text, no PII)."""
    c = state.constraints
    return {
        "user": history.user_id or "",
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
    """Numbered bandit versions in a folder: ``v0001.vw`` + ``v0001.json`` (when, from which
    version, how many turns, up to which logged turn), and ``CURRENT`` naming the live one."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def versions(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("v*.json") if re.fullmatch(r"v\d{4,}", p.stem))

    def current(self) -> str | None:
        f = self.folder / "CURRENT"
        return f.read_text(encoding="utf-8").strip() or None if f.exists() else None

    def meta(self, version: str) -> dict[str, Any]:
        return json.loads((self.folder / f"{version}.json").read_text(encoding="utf-8"))

    def load(self, version: str | None = None) -> BanditPolicy:
        """The ``version`` (default: the current one); a fresh, untrained model when there is none."""
        version = version or self.current()
        if version is None:
            return BanditPolicy()
        meta = self.meta(version)
        return BanditPolicy(self.folder / f"{version}.vw", version, int(meta.get("learned_turn", 0)))

    def save(self, policy: BanditPolicy, note: dict[str, Any] | None = None, promote: bool = True) -> str:
        """Save ``policy`` as the next version (and make it current unless ``promote`` is false)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = self.versions()
        version = f"v{int(existing[-1][1:]) + 1 if existing else 1:04d}"
        tmp = self.folder / f".{version}.vw.tmp"
        policy.save(tmp)
        shutil.move(tmp, self.folder / f"{version}.vw")
        meta = {
            "version": version,
            "parent": policy.version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "learned_turn": policy.learned_turn,
            "vw_args": VW_ARGS,
            **(note or {}),
        }
        (self.folder / f"{version}.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        policy.version = version
        if promote:
            self.promote(version)
        return version

    def promote(self, version: str) -> None:
        if version not in self.versions():
            raise KeyError(f"no policy version {version!r} in {self.folder}")
        tmp = self.folder / ".CURRENT.tmp"
        tmp.write_text(version + "\n", encoding="utf-8")
        tmp.replace(self.folder / "CURRENT")

    def rollback(self) -> str | None:
        """Make the version before the current one current again (``None``: back to no bandit model)."""
        cur = self.current()
        if cur is None:
            raise ValueError("no current policy version to roll back")
        before = [v for v in self.versions() if v < cur]
        if before:
            self.promote(before[-1])
            return before[-1]
        (self.folder / "CURRENT").unlink()
        return None


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


def policy_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "policy"


def planner_policy(kind: str, folder: Path) -> RankPolicy | None:
    """The policy a planner ranks with: ``None`` (the fused order, nothing logged) for ``fusion``;
    the current bandit version (or an untrained one) for ``bandit``."""
    return PolicyStore(folder).load() if kind == "bandit" else None


class LivePolicy:
    """The live chatbot's policy: it always logs (the fused order is a policy too), explores with
    ``epsilon``, and picks up a newly promoted or rolled-back bandit version between turns."""

    def __init__(self, ranker: Any, kind: str, folder: Path, epsilon: float, seed: int | None = None):
        self.ranker, self.kind, self.store = ranker, kind, PolicyStore(folder)
        self._seen = self._stamp()
        if ranker.policy is None:
            ranker.policy = FusionPolicy()
        ranker.explore = epsilon
        ranker.rng = random.Random(seed)

    def _stamp(self) -> tuple[str | None, float]:
        f = self.store.folder / "CURRENT"
        return (self.store.current(), f.stat().st_mtime) if f.exists() else (None, 0.0)

    def refresh(self) -> None:
        if self.kind != "bandit":
            return
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            self.ranker.policy = self.store.load(stamp[0])
            log.info("ranking policy now %s", self.ranker.policy.version)


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
