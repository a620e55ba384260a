"""Why an item is recommended, in words and as evidence a customer (or a test) can check.

The reason names the customer's own device or purchases when the item works with
them, the KG path that reached it, what they asked for, an item it is often chosen
with, and a brand they like; the evidence holds the KG path, the catalogue fields and
the history items behind those words, so every claim can be traced to data.

The words are the KB's own (:class:`ReasonWording`, read from the KB file
``reasons.json`` when there is one): a shop says "often bought together with", a film
site "often mentioned together with", and each KG relation has a label and phrases in
the KB's vocabulary. A path is put into words only when it is true as worded: every hop
is a stored triple, it ends at the item, and every relation on it has a label. A relation
with no label of its own (an opaque id such as ``rel_30``, a URI) is never shown as a reason.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from chatrec.kb import KBError, KnowledgeBase
from chatrec.kg.base import KGPath, KnowledgeGraph
from chatrec.turn.profile import UserHistory
from chatrec.types import Evidence, Item, Recommendation

WORDING_FILE = "reasons.json"
# a relation shown under its own name: words only (``starring``, ``compatible_with``), no digits, no URI
_WORDLIKE = re.compile(r"^[A-Za-z]+(?:[ _-][A-Za-z]+)*$")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


class RelationWording(BaseModel):
    """How one KG predicate is put into words. ``{start}`` is the customer's item (``your X``
    when they own it), ``{entity}`` the node two items share, ``{label}`` this relation's label."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str | None = None  # default: the predicate with ``_`` as spaces
    shared: str | None = None  # item -p-> entity <-p- start: "another film starring {entity}, like {start}"
    to_start: str | None = None  # item -p-> start: "{label} {start}"
    from_start: str | None = None  # start -p-> item: "{start} is {label} it"

    @model_validator(mode="after")
    def _known_placeholders(self) -> RelationWording:
        allowed = {
            "shared": {"entity", "start", "label"},
            "to_start": {"start", "label"},
            "from_start": {"start", "label"},
        }
        for key, names in allowed.items():
            text = getattr(self, key)
            if text is not None and (unknown := _placeholders(text) - names):
                raise ValueError(f"{key}: unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(names)}")
        return self


_GENERAL = {
    "works_with": {"item"},
    "matched": set(),
    "co_anchor": {"anchor", "whose"},
    "liked_brand": {"brand"},
    "popular": set(),
    "fallback": set(),
    "linked": {"entity", "start"},
}


class ReasonWording(BaseModel):
    """The words of one KB's reasons (``reasons.json``; every key optional, docs/formats.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    relations: dict[str, RelationWording] = {}
    only_listed_relations: bool = False  # True: a predicate missing from ``relations`` is never a reason
    works_with: str = "works with your {item}"
    matched: str = "matches what you asked for"
    co_anchor: str = "often bought together with {whose} {anchor}"
    liked_brand: str = "from {brand}, a brand you like"
    popular: str = "popular with our customers"
    fallback: str = "relevant to your request"
    linked: str = "linked to {start} through {entity}"  # a two-hop path of any other shape

    @field_validator(*_GENERAL)
    @classmethod
    def _general_placeholders(cls, text: str, info: Any) -> str:
        allowed = _GENERAL[info.field_name]
        if unknown := _placeholders(text) - allowed:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")
        if not text.strip():
            raise ValueError("must not be empty")
        return text

    def relation(self, predicate: str) -> RelationWording | None:
        """The wording of ``predicate``, or ``None`` when it is not to be shown as a reason."""
        if predicate in self.relations:
            return self.relations[predicate]
        if self.only_listed_relations or not _WORDLIKE.match(predicate):
            return None
        return DEFAULT_RELATIONS.get(predicate, RelationWording())

    def label(self, predicate: str) -> str | None:
        wording = self.relation(predicate)
        if wording is None:
            return None
        return wording.label or predicate.replace("_", " ")


DEFAULT_RELATIONS = {"suits_need": RelationWording(shared="suits {entity}, like {start}")}


def load_wording(kb_root: Path | None) -> ReasonWording:
    """The KB's reason wording from ``<kb>/reasons.json``, or the defaults when there is none;
    a bad file raises :class:`KBError` as ``file:line: reason``."""
    path = None if kb_root is None else Path(kb_root) / WORDING_FILE
    if path is None or not path.exists():
        return ReasonWording()
    try:
        return ReasonWording.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KBError([f"{path}:1: invalid JSON: {exc}"]) from exc
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()]
        raise KBError([f"{path}:1: {p}" for p in problems]) from exc


class Explainer:
    def __init__(self, kb: KnowledgeBase, kg: KnowledgeGraph, wording: ReasonWording | None = None):
        self.kb, self.kg = kb, kg
        self.wording = wording if wording is not None else load_wording(kb.root)
        self._triples = {(t.subject, t.predicate, t.object) for t in kb.triples}

    def explain_item(self, item_id: str, history: UserHistory) -> Recommendation:
        """A recommendation record for a given item (e.g. one a logged agent showed)."""
        path = self.kg.related_items(history.owned[:5], max_hops=2).get(item_id)
        return self.explain(self.kb.items[item_id], history, path=path)

    def explain(
        self,
        item: Item,
        history: UserHistory,
        *,
        path: KGPath | None = None,
        co_anchor: str | None = None,
        matched: bool = False,
        liked_brand: bool = False,
        popular: bool = False,
        score: float = 0.0,
    ) -> Recommendation:
        """The record shown for ``item``: ``matched`` = it matches the request's words,
        ``co_anchor`` = the owned or mentioned item it is most often chosen with."""
        w = self.wording
        kg_paths, reasons, hist = [], [], []
        if path is not None:
            kg_paths.append(path.render(self.kg.label))
            if path.start in history.owned:
                hist.append(path.start)
        c_with = [h for h in history.owned if item.id in self.kg.items_linked(h, "compatible_with")]
        hist.extend(h for h in c_with if h not in hist)
        if c_with:
            reasons.append(w.works_with.format(item=self.kb.items[c_with[0]].title))
        elif path is not None and path.hops and (said := self.path_reason(path, history, item.id)):
            reasons.append(said)
        if matched:
            reasons.append(w.matched)
        if co_anchor in self.kb.items:
            owned = co_anchor in history.owned
            reasons.append(w.co_anchor.format(whose="your" if owned else "the", anchor=self.kb.items[co_anchor].title))
            if owned and co_anchor not in hist:
                hist.append(co_anchor)
        if liked_brand and item.brand:
            reasons.append(w.liked_brand.format(brand=item.brand))
        if not reasons and popular:
            reasons.append(w.popular)
        reason = "; ".join(reasons) or w.fallback
        reason = reason[0].upper() + reason[1:] + (f". {item.price_text}, in stock." if item.price is not None else ".")
        return Recommendation(
            item_id=item.id,
            title=item.title,
            price=item.price,
            brand=item.brand,
            category=item.category,
            score=round(score, 4),
            reason=reason,
            evidence=Evidence(kg_paths=kg_paths, fields=_fields(item), history_items=hist),
        )

    def holds(self, path: KGPath, item_id: str | None = None) -> bool:
        """True when every hop of ``path`` is a stored triple, consecutive hops share a node,
        and the path runs from ``path.start`` to ``path.end`` (= ``item_id`` when given)."""
        if item_id is not None and path.end != item_id:
            return False
        node = path.start
        for h in path.hops:
            if (h.source, h.predicate, h.target) not in self._triples or node not in (h.source, h.target):
                return False
            node = h.target if h.source == node else h.source
        return node == path.end

    def path_reason(self, path: KGPath, history: UserHistory, item_id: str | None = None) -> str | None:
        """A KG path in the KB's words ("compatible with your Pixel 8", "same brand (Anker) like
        your ...", "another film starring Tom Hanks, like Big"), or ``None`` when it cannot be said truly:
        the path does not hold, is longer than two hops, or crosses a relation without a label."""
        w = self.wording
        if not path.hops or len(path.hops) > 2 or not self.holds(path, item_id):
            return None
        if any(w.relation(h.predicate) is None for h in path.hops):
            return None
        start = ("your " if path.start in history.owned else "") + self.kg.label(path.start)
        first = path.hops[0]
        rel = w.relation(first.predicate)
        label = w.label(first.predicate)
        assert rel is not None and label is not None
        if len(path.hops) == 1:
            if first.source == path.end:  # item -p-> start
                return (rel.to_start or "{label} {start}").format(label=label, start=start)
            return (rel.from_start or "{start} is {label} it").format(label=label, start=start)
        second = path.hops[1]
        middle = first.target if first.source == path.start else first.source
        entity = self.kg.label(middle)
        if first.predicate == second.predicate and first.target == middle and second.target == middle:
            return (rel.shared or "same {label} ({entity}) like {start}").format(
                label=label, entity=entity, start=start
            )
        return w.linked.format(entity=entity, start=start)


def _fields(item: Item) -> dict[str, Any]:
    """The catalogue fields behind the reason: price, brand, category, stock and a few attributes."""
    base = (("price", item.price), ("brand", item.brand), ("category", item.category), ("stock", item.stock))
    fields: dict[str, Any] = {k: v for k, v in base if v not in (None, "")}
    fields.update(dict(list(item.attributes.items())[:4]))
    return fields
