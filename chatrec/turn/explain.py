"""Why an item is recommended, in words and as evidence a customer (or a test) can check.

The reason names the customer's own device or purchases when the item works with
them, the KG path that reached it, what they asked for, an item it is often bought
with, and a brand they like; the evidence holds the KG path, the catalogue fields and
the history items behind those words, so every claim can be traced to data.
"""

from __future__ import annotations

from typing import Any

from chatrec.kb import KnowledgeBase
from chatrec.kg.base import KGPath, KnowledgeGraph
from chatrec.turn.profile import UserHistory
from chatrec.types import Evidence, Item, Recommendation


class Explainer:
    def __init__(self, kb: KnowledgeBase, kg: KnowledgeGraph):
        self.kb, self.kg = kb, kg

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
        ``co_anchor`` = the owned or mentioned item it is most often bought with."""
        kg_paths, reasons, hist = [], [], []
        if path is not None:
            kg_paths.append(path.render(self.kg.label))
            if path.start in history.owned:
                hist.append(path.start)
        c_with = [h for h in history.owned if item.id in self.kg.items_linked(h, "compatible_with")]
        hist.extend(h for h in c_with if h not in hist)
        if c_with:
            reasons.append(f"works with your {self.kb.items[c_with[0]].title}")
        elif path is not None and path.hops:
            reasons.append(self.path_reason(path, history))
        if matched:
            reasons.append("matches what you asked for")
        if co_anchor in self.kb.items:
            owned = co_anchor in history.owned
            reasons.append(f"often bought together with {'your' if owned else 'the'} {self.kb.items[co_anchor].title}")
            if owned and co_anchor not in hist:
                hist.append(co_anchor)
        if liked_brand:
            reasons.append(f"from {item.brand}, a brand you like")
        if not reasons and popular:
            reasons.append("popular with our customers")
        reason = "; ".join(reasons) or "relevant to your request"
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

    def path_reason(self, path: KGPath, history: UserHistory) -> str:
        """A KG path in words: "compatible with your Pixel 8", "same brand (Anker) like your ..."."""
        start = self.kg.label(path.start)
        owner = "your " if path.start in history.owned else ""
        first = path.hops[0]
        if len(path.hops) == 1:
            verb = first.predicate.replace("_", " ")
            return f"{verb} {owner}{start}" if first.source != path.start else f"{owner}{start} is {verb} it"
        middle = first.target if first.source == path.start else first.source
        like = f"like {owner}{start}"
        if first.predicate == "suits_need":
            return f"suits {self.kg.label(middle)}, {like}"
        return f"same {first.predicate.replace('_', ' ')} ({self.kg.label(middle)}) {like}"


def _fields(item: Item) -> dict[str, Any]:
    """The catalogue fields behind the reason: price, brand, category, stock and a few attributes."""
    base = (("price", item.price), ("brand", item.brand), ("category", item.category), ("stock", item.stock))
    fields: dict[str, Any] = {k: v for k, v in base if v not in (None, "")}
    fields.update(dict(list(item.attributes.items())[:4]))
    return fields
