"""Questions about the items just shown: "which of those is the most water resistant?",
"does the second one work with an iPhone?", "tell me more about the cheaper one".

The answer is written from the catalogue attributes and the KG's ``compatible_with`` facts of
the items referred to (:func:`chatrec.turn.state.referenced_items`), never guessed: an item
whose attributes say nothing about the question is said to have no such data. The planner
uses the answer as the turn's answer template (the grounding check then trusts the titles and
prices it names, which all come from the catalogue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatrec.kb import KnowledgeBase
from chatrec.kg.base import KnowledgeGraph
from chatrec.turn.ground import the
from chatrec.turn.state import DialogueState, normalise, referenced_items
from chatrec.types import Item

__all__ = ["ShownAnswer", "answer_about_shown"]

_QUESTION = re.compile(
    r"^(?:which|what|whats|does|do|is|are|can|will|would|how|any|tell me|and|so|ok|okay)\b|\?\s*$|"
    r"\b(?:tell me (?:more )?about|more about|details|specs)\b"
)
_COMPAT = re.compile(r"\b(?:work|works|compatible|fit|fits|support|supports|go with|pair)\b")
_REFERENCE = re.compile(
    r"\bthe\s+(?:cheaper|cheapest|less expensive|least expensive|lower priced|more expensive|most expensive|"
    r"pricier|priciest|dearer|first|1st|second|2nd|third|3rd|fourth|4th|last)\s+(?:one|option|item|pick)\b"
)
_MORE = re.compile(r"\b(?:tell me (?:more )?about|more about|details|specs|what about|describe)\b")


@dataclass(frozen=True)
class _Aspect:
    words: tuple[str, ...]  # stems in the question
    keys: tuple[str, ...]  # catalogue attribute keys, first found wins
    best: str  # "is the most water resistant"
    lowest: bool = False  # the smallest value is the best
    flip: tuple[str, ...] = ()  # words that ask for the other end


_ASPECTS = (
    _Aspect(
        ("water", "waterproof", "rain", "sweat", "swim", "splash"),
        ("water_resistance", "waterproof", "water_resistant", "water_resistance_m"),
        "is the most water resistant",
    ),
    _Aspect(
        ("battery", "last", "lasts", "longest", "charge lasts"),
        ("battery_hours", "battery_mah", "battery_days", "battery_months", "capacity_mah", "flight_minutes"),
        "has the longest battery life",
    ),
    _Aspect(("light", "lighter", "lightest", "weigh", "weight", "heavy", "heavier", "heaviest"), ("weight_g",),
            "is the lightest", lowest=True, flip=("heav",)),
    _Aspect(("screen", "display"), ("screen_in",), "has the largest screen"),
    _Aspect(("storage", "space", "capacity"), ("storage_gb", "capacity_gb", "capacity_l"), "has the most storage"),
    _Aspect(("noise", "anc", "cancelling", "canceling", "quiet"), ("noise_cancelling",), "has noise cancelling"),
    _Aspect(("drop", "protective", "protection", "rugged", "tough", "toughest", "sturdy"), ("drop_protection_ft",),
            "has the best drop protection"),
    _Aspect(("fast", "faster", "fastest", "powerful", "watt", "wattage", "power"),
            ("wattage", "output_w", "charging_w", "max_w", "read_mbps"), "is the most powerful"),
    _Aspect(("cheap", "cheaper", "cheapest", "price", "expensive", "cost", "affordable", "pricier", "priciest"),
            ("price",), "is the cheapest", lowest=True,
            flip=("more expensive", "most expensive", "pricier", "priciest")),
    _Aspect(("magsafe",), ("magsafe", "magsafe_compatible"), "supports MagSafe"),
    _Aspect(("wireless",), ("wireless", "wireless_charging"), "is wireless"),
    _Aspect(("resolution", "sharp", "sharpest"), ("megapixels", "resolution", "max_resolution"),
            "has the highest resolution"),
)  # fmt: skip

_UNITS = {
    "_g": " g", "_in": " in", "_hours": " hours", "_mah": " mAh", "_gb": " GB", "_ft": " ft", "_m": " m",
    "_w": " W", "_mm": " mm", "_l": " L", "_kg": " kg", "_cm": " cm", "_days": " days", "_months": " months",
    "_mbps": " MB/s", "_hz": " Hz", "_minutes": " minutes",
}  # fmt: skip


@dataclass(frozen=True)
class ShownAnswer:
    text: str  # the answer, from the catalogue and the KG
    items: list[str]  # the items it is about
    reason: str  # for the trace


def answer_about_shown(
    message: str, before: DialogueState, kb: KnowledgeBase, kg: KnowledgeGraph
) -> ShownAnswer | None:
    """The answer to a question about the items shown last (``before`` is the state before this
    message), or ``None`` when the message is not such a question or the data cannot answer it."""
    refs, every = referenced_items(message, before, kb)
    norm = normalise(message)
    if not refs or not _QUESTION.search(norm if "?" not in message else norm + " ?"):
        return None
    items = [kb.items[i] for i in refs]
    art = kb.shop.title_article  # "the Pixel 8 case", but "It (2017)" on a film site
    norm = _REFERENCE.sub(" ", norm)  # "the cheaper one" picks the item; it does not ask about price
    if _COMPAT.search(norm) and (devices := _device_targets(message, norm, kb, kg)):
        return ShownAnswer(_compatibility(items, devices, kb, kg, art), refs, "asks whether shown items fit a device")
    if _MORE.search(norm) and len(items) == 1:
        return ShownAnswer(_describe(items[0], art), refs, "asks about a shown item")
    if aspect := _aspect(norm, items):
        if _categorical(items, aspect):
            return ShownAnswer(_listed(items, aspect, art), refs, f"asks about {aspect.keys[0]} of the items shown")
        if every or len(items) > 1:
            return ShownAnswer(
                _compare(items, aspect, norm, art), refs, f"compares the items shown on {aspect.keys[0]}"
            )
        return ShownAnswer(_one(items[0], aspect, art), refs, f"asks about {aspect.keys[0]} of a shown item")
    if len(items) == 1 and _REFERENCE.search(normalise(message)):
        # "does the second one come with a screen protector?": no attribute answers it, but the
        # customer points at one shown item; what the catalogue says about it beats a guess
        return ShownAnswer(
            _describe(items[0], art), refs, "asks about a shown item (no attribute matches the question)"
        )
    return None


# ------------------------------------------------------------------ attributes


def _named(item: Item, article: bool = True) -> str:
    return the(item.title, article=article) + (f" (${item.price:.2f})" if item.price is not None else "")


_SPELLING = {"colour": "color", "colours": "color", "colors": "color", "coloured": "color", "finishes": "finish"}


def _aspect(norm: str, items: list[Item]) -> _Aspect | None:
    words = {_SPELLING.get(w, w) for w in re.findall(r"[a-z0-9]+", norm)}
    for a in _ASPECTS:
        if words & set(a.words) and any(_key(i, a) for i in items):
            return a
    # any attribute the items have whose name the question uses ("which has the most ports?")
    for item in items:
        for key in item.attributes:
            parts = [p for p in key.split("_") if len(p) > 3]
            if parts and all(p in words or p + "s" in words or p.rstrip("s") in words for p in parts[:1]):
                return _Aspect(tuple(parts), (key,), f"has the most {key.replace('_', ' ')}")
    return None


def _key(item: Item, aspect: _Aspect) -> str | None:
    if "price" in aspect.keys and item.price is not None:
        return "price"
    return next((k for k in aspect.keys if k in item.attributes), None)


def _value(item: Item, key: str) -> object:
    return item.price if key == "price" else item.attributes[key]


def _score(value: object) -> float | None:
    """A comparable number for an attribute value: numbers, yes/no, IP ratings (their water digit)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if m := re.fullmatch(r"IP([\dX])(\d)", value.strip(), re.I):  # water digit, then dust digit
            return float(m.group(2)) + (int(m.group(1)) / 10 if m.group(1).isdigit() else 0.0)
        if m := re.match(r"\d+(?:\.\d+)?", value):
            return float(m.group(0))
    return None


def _label(key: str) -> str:
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if key.endswith(suffix):
            return key[: -len(suffix)].replace("_", " ")
    return key.replace("_", " ")


def _show(key: str, value: object) -> str:
    if key == "price":
        return f"${float(value):.2f}"  # type: ignore[arg-type]
    if isinstance(value, bool):
        return "yes" if value else "no"
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if key.endswith(suffix):
            return f"{value}{_UNITS[suffix]}"
    return str(value)


def _compare(items: list[Item], aspect: _Aspect, norm: str, article: bool = True) -> str:
    lowest = aspect.lowest != any(f in norm for f in aspect.flip)
    best = aspect.best
    if lowest != aspect.lowest:  # "the heaviest", "the most expensive"
        best = {"is the lightest": "is the heaviest", "is the cheapest": "is the most expensive"}.get(best, best)
    scored: list[tuple[Item, str, float]] = [
        (i, k, s) for i in items if (k := _key(i, aspect)) and (s := _score(_value(i, k))) is not None
    ]
    missing = [i for i in items if i.id not in {x[0].id for x in scored}]
    if not scored:
        return f"The catalogue lists no {_label(aspect.keys[0])} for {_join([_named(i, article) for i in items])}."
    top = (min if lowest else max)(s for _, _, s in scored)
    winners = [(i, k) for i, k, s in scored if s == top]
    others = [(i, k) for i, k, s in scored if s != top]
    i0, k0 = winners[0]
    if len(winners) == 1:
        text = f"Of those, {_named(i0, article)} {best} ({_label(k0)}: {_show(k0, _value(i0, k0))})."
    elif len(winners) == len(items):
        return f"All of those have the same {_label(k0)}: {_show(k0, _value(i0, k0))}."
    else:
        names = _join([_named(i, article) for i, _ in winners])
        text = f"Of those, {names} are level on {_label(k0)} ({_show(k0, _value(i0, k0))})."
    if others:
        text += (
            " For comparison: " + _join([f"{_named(i, article)} has {_show(k, _value(i, k))}" for i, k in others]) + "."
        )
    if missing:
        text += f" The catalogue lists no {_label(aspect.keys[0])} for {_join([_named(i, article) for i in missing])}."
    return text


def _categorical(items: list[Item], aspect: _Aspect) -> bool:
    """The attribute is a word (a colour, a material), not something to rank."""
    values = [_value(i, k) for i in items if (k := _key(i, aspect))]
    return bool(values) and all(isinstance(v, str) and _score(v) is None for v in values)


def _listed(items: list[Item], aspect: _Aspect, article: bool = True) -> str:
    """What the catalogue lists for a word-valued attribute, item by item ("in one color: Black")."""
    out = []
    for item in items:
        key = _key(item, aspect)
        if key is None:
            out.append(f"The catalogue lists no {_label(aspect.keys[0])} for {_named(item, article)}.")
            continue
        value = str(_value(item, key))
        options = [v.strip() for v in re.split(r"\s*(?:,|/|;|\bor\b)\s*", value) if v.strip()]
        if len(options) > 1:
            out.append(f"{_cap(_named(item, article))} comes in {_join(options)}.")
        else:
            out.append(f"{_cap(_named(item, article))} is listed in one {_label(key)}: {value}.")
    return " ".join(out)


def _one(item: Item, aspect: _Aspect, article: bool = True) -> str:
    key = _key(item, aspect)
    if key is None:
        return f"The catalogue lists no {_label(aspect.keys[0])} for {_named(item, article)}."
    value = _value(item, key)
    if isinstance(value, bool):
        return f"{_cap(_named(item, article))} {'has' if value else 'does not have'} {_label(key)}."
    return f"{_cap(_named(item, article))} has {_label(key)}: {_show(key, value)}."


def _describe(item: Item, article: bool = True) -> str:
    first = re.split(r"(?<=[.!?])\s", item.description.strip(), maxsplit=1)[0] if item.description else ""
    specs = [f"{_label(k)} {_show(k, v)}" for k, v in list(item.attributes.items())[:4]]
    text = f"{_cap(_named(item, article))}: {first}".strip()
    if specs:
        text += (" " if text.endswith((".", "!", "?")) else ". ") + "Key specs: " + ", ".join(specs) + "."
    return text


# ------------------------------------------------------------------ compatibility


def _devices(kb: KnowledgeBase, kg: KnowledgeGraph) -> set[str]:
    """Items something is ``compatible_with`` (phones, tablets, cameras, ...)."""
    return {t.object for t in kb.triples if t.predicate == "compatible_with" and t.object in kb.items}


def _device_targets(message: str, norm: str, kb: KnowledgeBase, kg: KnowledgeGraph) -> tuple[str, list[str]] | None:
    """What device the question is about: its words as written ("an iPhone", "my Pixel 8") and the
    catalogue devices they name (by alias or title words)."""
    devices = _devices(kb, kg)
    words = set(re.findall(r"[a-z0-9]+", norm))
    best: list[str] = []
    best_len = 0
    for d in devices:
        for name in [*kb.items[d].aliases, kb.items[d].title]:
            n = normalise(name)
            if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", norm) and len(n) > best_len:
                best, best_len = [d], len(n)
            elif re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", norm) and len(n) == best_len and d not in best:
                best.append(d)
    if best:
        return _as_written(
            message, kb.items[best[0]].aliases[0] if kb.items[best[0]].aliases else kb.items[best[0]].title
        ), best
    # a family word ("iphone", "galaxy", "ipad"): every device whose first alias word it is
    family = {normalise(a).split()[0] for d in devices for a in kb.items[d].aliases if normalise(a).split()}
    hit = sorted(w for w in words & family if len(w) > 3)
    if hit:
        found = [d for d in devices if any(normalise(a).split()[:1] == [hit[0]] for a in kb.items[d].aliases)]
        return _as_written(message, hit[0]), sorted(found)
    return None


def _compatibility(
    items: list[Item], target: tuple[str, list[str]], kb: KnowledgeBase, kg: KnowledgeGraph, article: bool = True
) -> str:
    word, devices = target
    out = []
    for item in items:
        fits = sorted(t.object for t in kg.facts(item.id, limit=200) if t.predicate == "compatible_with")
        works = item.attributes.get("works_with")
        if fits:
            yes = [d for d in fits if d in devices]
            if yes:
                titles = _join([kb.items[d].title for d in yes[:3]])
                out.append(f"Yes: {_named(item, article)} is listed as compatible with the {titles}.")
            else:
                titles = _join([kb.items[d].title for d in fits[:3]])
                out.append(
                    f"No: {_named(item, article)} is not listed for {_article(word)}; it is made for the {titles}."
                )
        elif isinstance(works, str):
            ok = word.lower() in works.lower()
            out.append(
                f"{'Yes' if ok else 'No'}: {_named(item, article)} works with {works}, according to the catalogue."
            )
        else:
            conn = item.attributes.get("connectivity") or item.attributes.get("connector")
            extra = f" It connects over {conn}." if conn else ""
            out.append(f"The catalogue lists no specific devices for {_named(item, article)}.{extra}")
    return " ".join(out)


def _as_written(message: str, name: str) -> str:
    m = re.search(re.escape(name), message, re.I)
    return m.group(0) if m else name


def _article(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}" if " " not in word else f"the {word}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
