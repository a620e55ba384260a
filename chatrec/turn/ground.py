"""Checks that a reply says only what the catalogue and templates support.

Recommendations are re-checked against the catalogue and the user's
constraints; the generated text may cite only listed items, may quote only
catalogue prices and shop facts, must not leave template slots unfilled, and a
service answer must stay close to its template. When a check fails the reply
falls back to the filled template plus a plain rendering of the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Collection

from chatrec.kb import KnowledgeBase
from chatrec.types import Recommendation

_PRICE = re.compile(r"\$\s?(\d+(?:,\d{3})*(?:\.\d{1,2})?)")
_SLOT = re.compile(r"\{[a-zA-Z_]+\}")


@dataclass
class GroundingReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    fallback: bool = False

    def fail(self, why: str) -> None:
        self.ok = False
        self.problems.append(why)


def check_recommendations(
    recs: list[Recommendation], kb: KnowledgeBase, allowed: Callable[[str], str | None]
) -> tuple[list[Recommendation], list[str]]:
    """Drop any recommendation whose id is unknown or not allowed; return the kept ones and why others went."""
    kept, dropped = [], []
    for r in recs:
        item = kb.items.get(r.item_id)
        if item is None:
            dropped.append(f"{r.item_id}: not in the catalogue")
            continue
        if why := allowed(r.item_id):
            dropped.append(f"{r.item_id}: {why}")
            continue
        if (
            (item.price is None) != (r.price is None)
            or (item.price is not None and r.price is not None and abs(item.price - r.price) > 0.005)
            or item.title != r.title
        ):
            dropped.append(f"{r.item_id}: price or title differs from the catalogue")
            continue
        kept.append(r)
    return kept, dropped


def check_text(
    text: str,
    recs: list[Recommendation],
    kb: KnowledgeBase,
    *,
    template_text: str | None,
    similarity: Callable[[str, str], float] | None,
    min_similarity: float,
    must_cite: bool,
    context_items: Collection[str] = frozenset(),
) -> GroundingReport:
    """``context_items``: items the customer mentioned in the dialogue, which the reply may name."""
    rep = GroundingReport()
    stripped = text.strip()
    if len(stripped) < 2:
        rep.fail("empty reply")
        return rep
    listed = {r.item_id for r in recs}
    for item_id in kb.items:
        if item_id in text and item_id not in listed:
            rep.fail(f"cites {item_id}, which is not in the recommendation list")
    for item in kb.items.values():
        if item.id not in listed and len(item.title) > 12 and item.title.lower() in text.lower():
            rep.fail(f"names {item.title!r}, which is not in the recommendation list")
    lowered = f" {text.lower()} "
    for r in recs:  # "Case for Pixel 8" names the device only as part of a listed title
        lowered = lowered.replace(r.title.lower(), " ")
    for item in kb.items.values():
        if item.id in listed or item.id in context_items:
            continue
        for alias in item.aliases:
            if len(alias) >= 4 and re.search(rf"(?<![\w-]){re.escape(alias)}(?![\w-])", lowered):
                rep.fail(f"names {alias!r} ({item.id}), which is not in the recommendation list")
                break
    allowed_prices = {round(r.price, 2) for r in recs if r.price is not None} | _numbers(kb.shop.slot_values().values())
    if template_text:
        allowed_prices |= _numbers([template_text])
    for m in _PRICE.finditer(text):
        value = round(float(m.group(1).replace(",", "")), 2)
        if value not in allowed_prices:
            rep.fail(f"quotes a price ${value:.2f} that is not in the catalogue or shop facts")
    if _SLOT.search(text):
        rep.fail("leaves a template slot unfilled")
    if _repetitive(stripped):
        rep.fail("repeats itself")
    if must_cite and recs and not any(r.item_id in text or r.title.lower() in text.lower() for r in recs):
        rep.fail("recommends nothing from the list")
    if template_text and similarity is not None:
        sim = similarity(stripped, template_text)
        if sim < min_similarity:
            rep.fail(f"strays from the answer template (similarity {sim:.2f} < {min_similarity:.2f})")
    return rep


def _numbers(texts) -> set[float]:
    out = set()
    for t in texts:
        for m in re.finditer(r"\d+(?:\.\d{1,2})?", str(t)):
            out.add(round(float(m.group(0)), 2))
    return out


def _repetitive(text: str) -> bool:
    words = text.lower().split()
    if len(words) < 24:
        return False
    grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) / len(grams) < 0.6


def render_list(recs: list[Recommendation]) -> str:
    if not recs:
        return ""
    lines = [
        f"- {r.title}{f' (${r.price:.2f})' if r.price is not None else ''} [{r.item_id}]: {r.reason}" for r in recs
    ]
    return "Here are some options:\n" + "\n".join(lines)


def fallback_text(route: str, template_text: str | None, recs: list[Recommendation], no_match: str) -> str:
    parts = []
    if template_text:
        parts.append(template_text)
    if route in ("recommend", "both"):
        parts.append(render_list(recs) if recs else no_match)
    if not parts:
        parts.append(
            "I can help with orders, shipping, returns, warranty and payments, or recommend products. What do you need?"
        )
    return "\n\n".join(parts)
