"""Candidates from several sources, hard filters, feature fusion, reasons and evidence.

Candidate sources: dense retrieval (Chroma, filtered by the constraints), KG
paths from the user's items and the items mentioned in the dialogue,
co-purchases, and popularity. Anything the user owns, rejected, excluded by a
constraint, or that is out of stock never leaves this module.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chatrec.config import RankingSettings
from chatrec.kb import KnowledgeBase
from chatrec.kg.base import KGPath, KnowledgeGraph, readable
from chatrec.llm.base import LLMBackend, Message, ScoringUnsupported
from chatrec.retrieval.base import Retriever, where_filter
from chatrec.retrieval.encoder_ft import DenseScores, ItemEncoder, load_item_encoder
from chatrec.turn.explain import Explainer
from chatrec.turn.policy import RankPolicy, choose, context_of
from chatrec.turn.profile import UserHistory
from chatrec.turn.state import DialogueState
from chatrec.types import Item, Recommendation

log = logging.getLogger(__name__)


RANKER_FILE = "artifacts/ranker.json"  # the fitted ranker a KB's live turn loads (``chatrec fit-ranker``)
RANKER_FORMAT = "chatrec-ranker"
RANKER_VERSION = 1


def ranker_path(settings: RankingSettings, kb_root: Path | None) -> Path | None:
    """The fitted ranker to load: ``settings.weights_file`` if set, else ``<kb>/artifacts/ranker.json``."""
    if settings.weights_file is not None:
        return settings.weights_file
    return kb_root / RANKER_FILE if kb_root is not None else None


def load_fitted(path: Path | None) -> dict[str, Any] | None:
    """The fitted ranker at ``path`` (``None`` when there is none); raises ValueError on a bad file."""
    if path is None or not path.exists():
        return None
    fitted = json.loads(path.read_text(encoding="utf-8"))
    if "weights" not in fitted:
        raise ValueError(f"{path}: not a fitted ranker (no weights)")
    unknown = set(fitted["weights"]) - set(FEATURES)
    if unknown:
        raise ValueError(f"{path}: unknown feature(s) {sorted(unknown)}; known: {FEATURES}")
    if fitted.get("version", RANKER_VERSION) > RANKER_VERSION:
        raise ValueError(f"{path}: ranker format version {fitted['version']} is newer than this chatrec reads")
    return fitted


def fusion_weights(settings: RankingSettings, fitted: dict[str, Any] | None = None) -> dict[str, float]:
    """The feature weights: the fitted ranker's when there is one, else the ``w_*`` values
    (the LLM weight always comes from ``w_llm``: it switches the model's score on or off)."""
    weights = {f: float(getattr(settings, f"w_{f}", 0.0)) for f in FEATURES}  # learned-only features: 0
    if fitted is not None:
        weights.update({f: float(w) for f, w in fitted["weights"].items() if f != "llm"})
    return weights


FEATURES = (
    "dense",
    "kg",
    "kg_support",
    "history",
    "cooccur",
    "popular",
    "price_fit",
    "pref_brand",
    "llm",
    # learned-only (no w_* setting, weight 0 unless a fitted ranker sets one):
    "comention",  # co-mention with the dialogue's items, each pair's count over sqrt(df(a) * df(b)) (cosine)
    "rec_pop",  # how many logged conversations recommended the item (log-scaled)
    "mentioned",  # already named in the dialogue by either side
    "dense_rank",  # with a fine-tuned encoder: the item's rank by cosine in the whole catalogue (log-scaled)
)


@dataclass
class Candidate:
    item: Item
    sources: set[str] = field(default_factory=set)
    features: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 0.0))
    path: KGPath | None = None
    co_anchor: str | None = None  # the owned or mentioned item it is most often bought with
    score: float = 0.0


class Behaviour:
    """Popularity and co-occurrence counts from events and past logs: items bought by the same
    user, and items mentioned or recommended in the same logged conversation."""

    def __init__(self, kb: KnowledgeBase, exclude: set[str] | frozenset[str] = frozenset()):
        """``exclude``: conversation ids left out (the ones being evaluated must not teach the ranker).

        A numeric item attribute ``popularity`` (e.g. mention counts from an importer) is a prior count."""
        self.popularity: Counter[str] = Counter()  # float counts: a catalogue prior may be fractional
        for item in kb.items.values():
            prior = item.attributes.get("popularity")
            if isinstance(prior, (int, float)) and not isinstance(prior, bool) and prior > 0:
                self.popularity[item.id] += prior  # type: ignore[assignment]
        baskets: dict[str, set[str]] = defaultdict(set)
        for ev in kb.events:
            if ev.type == "purchase":
                self.popularity[ev.item_id] += 1
                baskets[ev.user_id].add(ev.item_id)
        talked: list[set[str]] = []
        for conv in kb.transcripts:
            if conv.conversation_id in exclude:
                continue
            in_conv: set[str] = set()
            for t in conv.turns:
                in_conv.update(t.mentions, t.recommended, t.liked)
                for i in t.accepted:
                    self.popularity[i] += 1
                    if conv.user_id:
                        baskets[conv.user_id].add(i)
            talked.append(in_conv)
        self.co: dict[str, Counter[str]] = defaultdict(Counter)
        self.df: Counter[str] = Counter()  # baskets and conversations holding the item
        for basket in [*baskets.values(), *talked]:
            items = sorted(basket)  # not set order, which changes with the process's hash seed
            self.df.update(items)
            for a in items:
                for b in items:
                    if a != b:
                        self.co[a][b] += 1
        self.recommended: Counter[str] = Counter(  # conversations in which an agent recommended the item
            i
            for conv in kb.transcripts
            if conv.conversation_id not in exclude
            for i in sorted({x for t in conv.turns for x in t.recommended})
        )
        self._finish()

    def _finish(self) -> None:
        self.max_pop = max(self.popularity.values(), default=1)
        self.max_rec = max(self.recommended.values(), default=1)

    def popular(self, n: int) -> list[str]:
        return [i for i, _ in self.popularity.most_common(n)]

    def counts(self) -> dict[str, Any]:
        """The statistics as plain JSON (what a fitted ranker saves), in sorted order."""
        return {
            "popularity": {i: self.popularity[i] for i in sorted(self.popularity)},
            "co": {a: {b: n for b, n in sorted(c.items())} for a, c in sorted(self.co.items())},
            "df": {i: self.df[i] for i in sorted(self.df)},
            "recommended": {i: self.recommended[i] for i in sorted(self.recommended)},
        }

    @classmethod
    def from_counts(cls, counts: dict[str, Any]) -> Behaviour:
        """Statistics saved by :meth:`counts` (a fitted ranker's), instead of counting the KB's logs."""
        self = cls.__new__(cls)
        self.popularity = Counter(counts["popularity"])
        self.co = defaultdict(Counter, {a: Counter(c) for a, c in counts["co"].items()})
        self.df = Counter(counts.get("df", {}))
        self.recommended = Counter(counts.get("recommended", {}))
        self._finish()
        return self

    def comention(self, anchors: list[str]) -> Counter[str]:
        """Items co-mentioned with ``anchors``: the sum over anchors of co(a, b) / sqrt(df(a) df(b))."""
        out: Counter[str] = Counter()
        for a in anchors:
            da = self.df.get(a, 0)
            for b, n in self.co.get(a, {}).items():
                out[b] += n / math.sqrt(max(da, 1) * max(self.df.get(b, 0), 1))  # type: ignore[assignment]
        return out


class Ranker:
    # the ranking policy (chatrec/turn/policy.py), set by the composition root; None: the fused order,
    # nothing logged. ``explore`` (epsilon) is set on the live chatbot's ranker only.
    policy: RankPolicy | None = None
    explore: float = 0.0
    rng: random.Random = random.Random()
    # user id -> the form the store keeps (the live chatbot's owner_key): the policy scores the
    # context that is logged, so the gate replays and the bandit learns the same features
    user_key: Callable[[str], str | None] | None = None

    def __init__(
        self,
        kb: KnowledgeBase,
        kg: KnowledgeGraph,
        index: Retriever,
        settings: RankingSettings,
        items_k: int = 30,
        llm: LLMBackend | None = None,
        prompts: Any = None,
        exclude_conversations: set[str] | frozenset[str] = frozenset(),
    ):
        self.kb, self.kg, self.index, self.s, self.items_k = kb, kg, index, settings, items_k
        self.fitted_path = ranker_path(settings, kb.root)
        fitted = load_fitted(self.fitted_path)
        if fitted is not None:
            log.info("fitted ranker from %s", self.fitted_path)
        self.use_fitted(fitted, None if fitted and "statistics" in fitted else Behaviour(kb, exclude_conversations))
        self._has_compat = {t.subject for t in kb.triples if t.predicate == "compatible_with"}
        # KG entity -> the items linked to it either way (a "nothing with Tom Cruise" filter)
        self._entity_items: dict[str, set[str]] = {}
        for t in kb.triples:
            if t.subject in kb.items and t.object not in kb.items:
                self._entity_items.setdefault(t.object, set()).add(t.subject)
            elif t.object in kb.items and t.subject not in kb.items:
                self._entity_items.setdefault(t.subject, set()).add(t.object)
        # a bi-encoder fine-tuned on the training conversations (``chatrec fit-encoder``), if the KB has one:
        # the dense candidates and feature come from it (templates keep the index's base model)
        self.encoder: ItemEncoder | None = load_item_encoder(kb.root, kb.items)
        if self.encoder is not None:
            log.info("item retrieval with %s", self.encoder.name)
        self.llm, self.prompts = llm, prompts
        self.explainer = Explainer(kb, kg)

    def use_fitted(self, fitted: dict[str, Any] | None, behaviour: Behaviour | None = None) -> None:
        """Rank with a fitted ranker (its weights and its training statistics), or with the
        configured ``w_*`` weights and ``behaviour`` when ``fitted`` is ``None``."""
        self.fitted = fitted
        self.weights = fusion_weights(self.s, fitted)
        if fitted is not None and "statistics" in fitted:
            self.behaviour = Behaviour.from_counts(fitted["statistics"])
        elif behaviour is not None:
            self.behaviour = behaviour

    # ---------------------------------------------------------------- filters

    def allowed(self, item: Item, state: DialogueState, history: UserHistory) -> str | None:
        """``None`` if the item may be shown, else why not."""
        c = state.constraints
        if not item.in_stock:
            return "out of stock"
        if item.id in history.owned:
            return "already owned"
        if item.id in state.rejected_items or item.id in history.disliked:
            return "rejected by the user"
        if item.brand in c.brands_out:
            return f"brand {item.brand} excluded"
        if c.brands_in and item.brand not in c.brands_in:
            return "not a requested brand"
        if c.max_price is not None and (item.price is None or item.price > c.max_price):
            return "over budget"
        if c.min_price is not None and (item.price is None or item.price < c.min_price):
            return "under minimum price"
        if c.categories and item.category not in c.categories:
            return "other category"
        if c.compatible_with and not self.fits(item.id, c.compatible_with):
            return f"not compatible with {c.compatible_with}"
        for entity in c.entities_out:
            if item.id in self._entity_items.get(entity, ()):
                return f"linked to {readable(entity)}, ruled out"
        return None

    def fits(self, item_id: str, device_id: str) -> bool:
        """Compatible with the device, or universal (an accessory with no compatibility edges)."""
        if item_id in self.kg.items_linked(device_id, "compatible_with"):
            return True
        return item_id not in self._has_compat

    # ---------------------------------------------------------------- ranking

    def rank(
        self,
        query: str,
        state: DialogueState,
        history: UserHistory,
        profile: str = "",
        query_embedding: Any = None,
        use_kg: bool = True,
        use_llm: bool = True,
        depth: int = 0,
    ) -> tuple[list[Recommendation], dict]:
        """The top ``top_n`` recommendations and a trace; with ``depth`` > 0 the trace also holds the
        ``depth`` best allowed item ids (``ranked``) and every candidate's features (``features``),
        which evaluation and :func:`chatrec.eval.fusion.fit_weights` use. ``depth`` never changes
        the candidates (each source gives ``items_k``), so evaluation ranks the list a live turn shows."""
        c = state.constraints
        cands = self._candidates(query, state, history, query_embedding, use_kg)
        rejected: Counter[str] = Counter()
        kept: list[Candidate] = []
        for cand in cands.values():
            why = self.allowed(cand.item, state, history)
            if why:
                rejected[why] += 1
                continue
            kept.append(cand)
        self._score(kept, state, history)

        llm_note = "off"
        if use_llm and self.weights["llm"] > 0 and self.llm is not None and kept:
            llm_note = self._llm_rerank(kept[: self.s.llm_candidates], query, profile)
            kept.sort(key=lambda x: (-x.score, x.item.id))

        shown, policy_log = kept[: self.s.top_n], None
        if self.policy is not None:  # orders and picks among the best allowed candidates only
            pool = kept[: max(self.s.policy_candidates, self.s.top_n)]
            context = context_of(state, history, self.user_key)
            slate = choose(self.policy, pool, context, self.s.top_n, self.explore, self.rng)
            shown, policy_log = slate.shown, slate.record
        recs = [self._explain(cand, history) for cand in shown]
        trace = {
            "candidates": {
                src: sum(1 for x in cands.values() if src in x.sources) for src in ("dense", "kg", "cooccur", "popular")
            },
            "filtered_out": dict(rejected),
            "constraints": c.model_dump(),
            "llm_rerank": llm_note,
            "dense_encoder": self.encoder.name if self.encoder is not None else "base",
            "scored": [
                {
                    "item_id": x.item.id,
                    "score": round(x.score, 4),
                    "features": {k: round(v, 3) for k, v in x.features.items()},
                }
                for x in kept[:10]
            ],
        }
        if policy_log is not None:
            trace["policy_log"] = policy_log  # Chatbot.stream moves it to the store's ranking log
        if depth:
            trace["ranked"] = [x.item.id for x in kept[:depth]]
            trace["features"] = {x.item.id: [round(x.features[f], 4) for f in FEATURES] for x in kept}
        return recs, trace

    def _candidates(
        self, query: str, state: DialogueState, history: UserHistory, query_embedding: Any, use_kg: bool
    ) -> dict[str, Candidate]:
        """Candidates from every source, ``items_k`` per source: dense retrieval under the hard
        metadata filters, KG neighbours of the device, likes, mentions and owned items,
        co-occurrence with them, and popular items."""
        c = state.constraints
        cands: dict[str, Candidate] = {}

        def add(item_id: str, source: str) -> Candidate | None:
            item = self.kb.items.get(item_id)
            if item is None:
                return None
            cand = cands.setdefault(item_id, Candidate(item))
            cand.sources.add(source)
            return cand

        where = where_filter(c.max_price, c.brands_out, c.categories)
        dense: DenseScores | None = None
        if self.encoder is not None:  # the dialogue's last messages, with the fine-tuned encoder
            dense = self.encoder.similarities([m.get("content", "") for m in state.history] + [query])
            hits = self.encoder.search(dense, self.items_k, where)
        else:
            hits = self.index.search_items(query, self.items_k, where, query_embedding=query_embedding)
        for item_id, sim in hits:
            if cand := add(item_id, "dense"):
                cand.features["dense"] = max(0.0, sim)

        # what the customer disliked or rejected is no anchor for "more like it" (only the filters see it)
        disliked = set(state.rejected_items) | set(history.disliked)
        liked = [i for i in state.liked_items if i not in disliked]
        mentioned = [i for i in state.mentioned_items if i not in disliked][-5:]
        if use_kg:
            anchors = ([c.compatible_with] if c.compatible_with else []) + liked + mentioned + history.owned[:5]
            if c.compatible_with:
                for item_id in sorted(self.kg.items_linked(c.compatible_with, "compatible_with")):
                    add(item_id, "kg")
            for item_id, path in self.kg.related_items(anchors, max_hops=2).items():
                if cand := add(item_id, "kg"):
                    cand.features["kg"] = max(cand.features["kg"], path.strength)
                    cand.features["kg_support"] = min(1.0, math.log1p(path.support) / math.log1p(8))
                    if path.start in history.owned:
                        cand.features["history"] = max(cand.features["history"], path.strength)
                    if cand.path is None or path.strength > cand.path.strength:
                        cand.path = path

        co: Counter[str] = Counter()
        co_anchor: dict[str, tuple[int, str]] = {}
        for anchor in dict.fromkeys(history.owned[:5] + liked + mentioned):
            top = dict(self.behaviour.co.get(anchor, Counter()).most_common(self.items_k))
            co.update(top)
            for item_id, n in top.items():
                if n > co_anchor.get(item_id, (0, ""))[0]:
                    co_anchor[item_id] = (n, anchor)
        for item_id, n in co.most_common(self.items_k):
            if cand := add(item_id, "cooccur"):
                cand.features["cooccur"] = min(1.0, math.log1p(n) / math.log1p(8))
                cand.co_anchor = co_anchor[item_id][1]
        for item_id in self.behaviour.popular(self.items_k):
            add(item_id, "popular")
        for item_id, _ in self.behaviour.recommended.most_common(3 * self.items_k):
            add(item_id, "popular")
        said = dict.fromkeys(state.liked_items + state.mentioned_items + state.shown_items)
        anchors = list(dict.fromkeys(history.owned[:5] + liked + mentioned))
        anchors += [i for i in state.shown_items[-5:] if i not in anchors and i not in disliked]
        cm = self.behaviour.comention(anchors)
        for item_id, _ in sorted(cm.items(), key=lambda x: (-x[1], x[0]))[: 2 * self.items_k]:
            add(item_id, "cooccur")
        for item_id, cand in cands.items():
            cand.features["comention"] = cm.get(item_id, 0.0)
            cand.features["rec_pop"] = math.log1p(self.behaviour.recommended[item_id]) / math.log1p(
                self.behaviour.max_rec
            )
            cand.features["mentioned"] = 1.0 if item_id in said else 0.0
            if dense is not None:  # every candidate, whichever source found it (DenseScores)
                cand.features["dense"] = max(0.0, dense.cosine(item_id))
                cand.features["dense_rank"] = dense.rank_score(item_id)
        return cands

    def _score(self, kept: list[Candidate], state: DialogueState, history: UserHistory) -> None:
        """The per-user features, the fused score, and ``kept`` sorted best first (ties by id)."""
        c = state.constraints
        user = self.kb.users.get(history.user_id or "")
        liked = set(user.preferences.brands_liked) if user else set()
        compatible = self.kg.items_linked(c.compatible_with or "", "compatible_with")
        for cand in kept:
            f = cand.features
            f["popular"] = math.log1p(self.behaviour.popularity[cand.item.id]) / math.log1p(self.behaviour.max_pop)
            price = cand.item.price
            f["price_fit"] = 1.0 if c.max_price is None or price is None else 1.0 - 0.5 * price / max(c.max_price, 1e-6)
            f["pref_brand"] = 1.0 if cand.item.brand in liked else 0.0
            if cand.item.id in compatible:
                f["kg"] = 1.0
            cand.score = self._fuse(f)
        kept.sort(key=lambda x: (-x.score, x.item.id))

    def _fuse(self, f: dict[str, float]) -> float:
        return sum(w * f[name] for name, w in self.weights.items())

    def rank_prompt(self, item: Item, query: str, profile: str) -> list[Message]:
        """The Yes/No prompt the LLM scores for one candidate (training builds the same)."""
        fields = ", ".join(x for x in (item.brand, item.category, item.price_text) if x)
        return [
            {
                "role": "user",
                "content": self.prompts.render(
                    "rank.j2", profile=profile, request=query, item=f"{item.title} ({fields})"
                ),
            }
        ]

    def _llm_rerank(self, cands: list[Candidate], query: str, profile: str) -> str:
        assert self.llm is not None
        prompts = [self.rank_prompt(c.item, query, profile) for c in cands]
        try:
            yes_no = self.llm.score_choices(prompts, ["Yes", "No"])
        except ScoringUnsupported as exc:
            return f"unsupported: {exc}"
        for cand, (y, n) in zip(cands, yes_no):
            cand.features["llm"] = 1.0 / (1.0 + math.exp(n - y))  # P(Yes | Yes or No)
            cand.score = self._fuse(cand.features)
        return f"scored {len(cands)}"

    def _explain(self, cand: Candidate, history: UserHistory) -> Recommendation:
        return self.explainer.explain(
            cand.item,
            history,
            path=cand.path,
            co_anchor=cand.co_anchor,
            matched=cand.features["dense"] >= 0.3,
            liked_brand=cand.features["pref_brand"] > 0,
            popular="popular" in cand.sources,
            score=cand.score,
        )
