"""Ask before guessing: one short clarifying question instead of a list of guesses.

The policy (settings ``[clarify]``) asks when

- **device**: the customer wants accessories that fit a device (their category's items are
  ``compatible_with`` devices in the KG, each fitting fewer than ``device_fit_share`` of the
  devices of that kind: cases, not chargers) and no device is known: none named in the
  conversation, none owned (their purchases);
- **budget**: they ask for items (route ``recommend``) with no budget, no device or product
  named, and the in-stock items of the kind asked for span a wide price range (the dearest
  costs ``budget_span_ratio`` times the cheapest or more), once per conversation and not while
  refining a list already shown;
- **order number**: the question is about one order (``order_intents``) and no order number
  was given (the shop's own "share your order number" template asks, when it has one).

The question is remembered in :attr:`DialogueState.pending`; the next message that answers it
(a device, a budget or "any budget", an order number) continues the request that was asked
about, as if it had said so the first time. A message that does not answer it is a new turn.

An order number already given in the message is used: a template that asks for it is
swapped for the same intent's template that uses it (:func:`with_order_number`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chatrec.config import ClarifySettings
from chatrec.kb import KnowledgeBase
from chatrec.turn.state import DialogueState, normalise

__all__ = [
    "Question",
    "accessory_categories",
    "answers_pending",
    "asks_order_number",
    "ask",
    "order_number",
    "with_order_number",
]

_ORDER = re.compile(r"#\s?([A-Z]{2,4}-?\d{4,}|\d{5,})\b")
_BARE_ORDER = re.compile(r"(?<![\w-])([A-Z]{2,4}-\d{5,})\b", re.I)
_NO_BUDGET = re.compile(
    r"\b(?:no (?:real |particular |specific )?budget|any (?:budget|price)|doesn'?t matter|don'?t (?:care|mind)|"
    r"not sure|whatever|no limit|flexible)\b"
)
_AMOUNT = re.compile(r"\$?\s*(\d{1,5}(?:[.,]\d{1,2})?)\s*(?:\$|dollars|usd|bucks)?")
_DEVICE_WORDS = {
    "smartphones": "phone",
    "tablets": "tablet",
    "laptops": "laptop",
    "smartwatches": "watch",
    "cameras": "camera",
    "gaming-consoles": "console",
    "e-readers": "e-reader",
    "drones": "drone",
}


@dataclass(frozen=True)
class Question:
    kind: str  # device | budget | order_id
    text: str  # the question to send (the answer template of the turn)
    pending: dict[str, str] = field(default_factory=dict)  # what the next turn needs to use the answer
    template_id: str | None = None  # the shop's own template, when it asks
    reason: str = ""


def order_number(text: str, kb: KnowledgeBase, pending: bool = False) -> str | None:
    """An order number in ``text`` ("#VW-48213"); when answering a question for one, also
    without the "#" ("VW-48213"), never a catalogue id."""
    if m := _ORDER.search(text):
        return "#" + m.group(1)
    if pending and (m := _BARE_ORDER.search(text)) and m.group(1).upper() not in kb.items:
        return "#" + m.group(1).upper()
    return None


def asks_order_number(template_text: str) -> bool:
    """A template that asks the customer for their order number (and uses none)."""
    low = template_text.lower()
    return "order number" in low and "?" in low and "{order_id}" not in template_text


def with_order_number(
    kb: KnowledgeBase, template_id: str | None, text: str, similarity: Callable[[str, str], float]
) -> str | None:
    """The template to answer with once an order number is known: ``template_id`` itself, or,
    when it asks for the number, the same intent's template that uses it and is closest to
    ``text`` (``similarity(a, b)``)."""
    tpl = kb.templates.get(template_id or "")
    if tpl is None or not asks_order_number(tpl.text):
        return template_id
    siblings = [t for t in kb.templates.values() if t.intent == tpl.intent and "{order_id}" in t.text]
    if not siblings:
        return template_id
    return max(siblings, key=lambda t: similarity(text, t.text)).id


_ACCESSORIES: dict[int, tuple[KnowledgeBase, dict[str, tuple[str, float]]]] = {}


def accessory_categories(kb: KnowledgeBase) -> dict[str, tuple[str, float]]:
    """Accessory category -> (the category of the devices its items are ``compatible_with``, the
    mean share of those devices one item fits): cases fit one phone (0.08), chargers all (1.09).
    Per KB, cached."""
    cached = _ACCESSORIES.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    by_cat: dict[str, Counter[str]] = {}
    fits: Counter[str] = Counter()
    for t in kb.triples:
        if t.predicate != "compatible_with" or t.subject not in kb.items or t.object not in kb.items:
            continue
        by_cat.setdefault(kb.items[t.subject].category, Counter())[kb.items[t.object].category] += 1
        fits[t.subject] += 1
    sizes = Counter(i.category for i in kb.items.values())
    out = {}
    for cat, c in by_cat.items():
        device_cat = c.most_common(1)[0][0]
        fitting = [n for i, n in fits.items() if kb.items[i].category == cat]
        out[cat] = (device_cat, sum(fitting) / len(fitting) / max(sizes[device_cat], 1))
    _ACCESSORIES[id(kb)] = (kb, out)
    return out


def _device_known(state: DialogueState, owned: list[str], kb: KnowledgeBase, device_cat: str, cats: list[str]) -> bool:
    """A device of that kind is known (named, owned, the compatibility target), or the customer
    named a product of the asked-for kind itself ("the Samsung Silicone Case for Galaxy S24")."""
    c = state.constraints
    if c.compatible_with:
        return True
    known = [*state.mentioned_items, *owned]
    return any(kb.items[i].category in (device_cat, *cats) for i in known if i in kb.items)


def _words(cat: str) -> str:
    return cat.replace("-", " ")


def ask(
    cfg: ClarifySettings,
    kb: KnowledgeBase,
    render: Callable[..., str],  # Prompts.render
    state: DialogueState,
    route: str,
    template_id: str | None,
    text: str,
    owned: list[str],
    categories_changed: bool,
) -> Question | None:
    """The question to ask this turn instead of answering, or ``None`` (see the module doc)."""
    if not cfg.enabled:
        return None
    c = state.constraints
    if route in ("recommend", "both") and c.categories:
        acc = accessory_categories(kb)
        cats = [x for x in c.categories if x in acc and acc[x][1] < cfg.device_fit_share]
        if cfg.ask_device and cats and len(cats) == len(c.categories):
            device_cat = acc[cats[0]][0]
            if not _device_known(state, owned, kb, device_cat, cats):
                device = _DEVICE_WORDS.get(device_cat, _words(device_cat).rstrip("s"))
                q = render("clarify.j2", kind="device", what=_words(cats[0]), device=device)
                pending = {
                    "kind": "device",
                    "request": text,
                    "categories": ",".join(c.categories),
                    "device": device_cat,
                }
                return Question("device", q, pending, reason=f"{_words(cats[0])} fit a {device}: which one?")
        anchored = c.compatible_with or state.mentioned_items  # a named device or product: no open-ended list
        if (
            cfg.ask_budget
            and route == "recommend"
            and not anchored
            and c.max_price is None
            and c.min_price is None
            and _new_request(state, categories_changed)
        ):
            prices = sorted(  # the main kind asked for
                i.price
                for i in kb.items.values()
                if i.category == c.categories[0] and i.in_stock and i.price and i.brand not in c.brands_out
            )
            if len(prices) >= 3 and prices[-1] >= cfg.budget_span_ratio * prices[0]:
                what = _words(c.categories[0])
                q = render("clarify.j2", kind="budget", what=what, low=prices[0], high=prices[-1])
                pending = {"kind": "budget", "request": text, "categories": ",".join(c.categories)}
                reason = f"{what} span ${prices[0]:.2f}-${prices[-1]:.2f}, no budget"
                return Question("budget", q, pending, reason=reason)
    if route in ("service", "both") and cfg.ask_order_number and template_id in kb.templates:
        tpl = kb.templates[template_id]
        if asks_order_number(tpl.text):  # the router chose the shop's own question: remember it
            pending = {"kind": "order_id", "intent": tpl.intent, "request": text}
            return Question("order_id", "", pending, tpl.id, "the shop's template asks for the order number")
        if tpl.intent in cfg.order_intents and not order_number(_said(state, text), kb):
            own = next((t for t in kb.templates.values() if t.intent == tpl.intent and asks_order_number(t.text)), None)
            q_text = None if own else render("clarify.j2", kind="order_id")
            pending = {"kind": "order_id", "intent": tpl.intent, "request": text}
            return Question("order_id", q_text or "", pending, own.id if own else None, "an order question, no number")
    return None


def _said(state: DialogueState, text: str) -> str:
    return " ".join([*(h["content"] for h in state.history if h["role"] == "user"), text])


def _new_request(state: DialogueState, categories_changed: bool) -> bool:
    """Not a refinement of a list already shown for these categories, and the budget was not asked yet."""
    return (categories_changed or not state.last_recommended) and not any(
        h.get("role") == "assistant" and "what budget" in h["content"].lower() for h in state.history
    )


def answers_pending(pending: dict[str, str] | None, text: str, state: DialogueState, kb: KnowledgeBase) -> bool:
    """Whether ``text`` answers the question asked last turn; ``state`` (already updated with
    the message) gets what the answer says (the device, the budget)."""
    if not pending:
        return False
    kind = pending.get("kind")
    c = state.constraints
    if kind == "device":
        device_cat = pending.get("device", "")
        found = [i for i in state.mentioned_items if i in kb.items and kb.items[i].category == device_cat]
        named = [i for i in found if normalise(kb.items[i].title) in normalise(text) or _alias_in(kb, i, text)]
        if not named:
            return False
        c.compatible_with = named[-1]
        c.categories = [x for x in pending.get("categories", "").split(",") if x]
        return True
    if kind == "budget":
        if c.max_price is not None or c.min_price is not None:
            return True
        norm = normalise(text)
        if _NO_BUDGET.search(norm):
            return True
        if m := _AMOUNT.fullmatch(norm.strip(" .!?")) or re.search(
            r"(?:about|around|roughly|~)\s*" + _AMOUNT.pattern, norm
        ):
            c.max_price = float(m.group(1).replace(",", "."))
            return True
        return False
    if kind == "order_id":
        return order_number(text, kb, pending=True) is not None
    return False


def _alias_in(kb: KnowledgeBase, item_id: str, text: str) -> bool:
    norm = normalise(text)
    return any(re.search(rf"(?<![\w]){re.escape(normalise(a))}(?![\w])", norm) for a in kb.items[item_id].aliases)
