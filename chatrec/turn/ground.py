"""Checks that a reply says only what the catalogue and templates support.

Recommendations are re-checked against the catalogue and the user's
constraints; the generated text may cite only listed items, every claim it makes
(amounts, percentages and discounts, codes, links, e-mails, phone numbers, stock;
see :mod:`chatrec.turn.claims`) must match the listed items, the filled template or
the shop facts field by field, it must not echo the prompt or leave template slots
unfilled, and a service answer must stay close to its template and keep every checkable
fact of it (amounts, times, phone numbers, links, order numbers: :func:`dropped_facts`), and it must
not read garbled (non-words, a name cut short, a clause said twice, an option that is not a listed
item, more options counted than listed: :mod:`chatrec.turn.wording`). When a check fails
the reply falls back to the filled template plus a plain rendering of the list.

A problem is *lasting* when no further text can cure it (a false claim, an unlisted
item, a prompt echo, an open slot, garbled wording); the others (too short, not yet close to the
template, nothing cited yet, repetitive) concern the reply as a whole.
:mod:`chatrec.turn.release` uses the difference to stream only checked text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Collection, Sequence

from chatrec.kb import KnowledgeBase
from chatrec.llm.base import Message
from chatrec.turn.claims import Facts, extract_claims
from chatrec.turn.wording import Wording, option_counts, turn_wording
from chatrec.types import GENERIC_HELP, Recommendation

_SLOT = re.compile(r"\{[a-zA-Z_]+\}")
_ECHO_N = 6  # this many words in a row from the prompt's instructions is an echo
_PROMPT_LABELS = ("answer template:", "items to recommend:", "customer profile:", "system prompt:")


@dataclass
class GroundingReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    fallback: bool = False
    lasting: bool = False  # some problem no further text can cure

    def fail(self, why: str, lasting: bool = False) -> None:
        self.ok = False
        self.lasting |= lasting
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
    echo_sources: Sequence[str] = (),
    facts: Facts | None = None,
    wording: Wording | None = None,
) -> GroundingReport:
    """``context_items``: items the customer mentioned in the dialogue, which the reply may name;
    ``echo_sources``: the prompt's own words (:func:`prompt_words`), which it must not repeat;
    ``facts``: :meth:`Facts.of` for these arguments, if the caller checks many texts against them;
    ``wording``: :func:`~chatrec.turn.wording.turn_wording` with the turn's prompt (without it, the
    words of the template, the listed items, the shop facts and the catalogue only)."""
    rep = GroundingReport()
    stripped = text.strip()
    if len(stripped) < 2:
        rep.fail("empty reply")
        return rep
    listed = {r.item_id for r in recs}
    # the reasons and the filled template are written from the data: items they name may be named
    trusted = " ".join([r.reason for r in recs] + [template_text or ""]).lower()
    in_trusted = {i.id for i in kb.items.values() if len(i.title) > 12 and i.title.lower() in trusted}
    named_ok = listed | set(context_items) | in_trusted
    for item_id in kb.items:
        if item_id in text and item_id not in listed:
            rep.fail(f"cites {item_id}, which is not in the recommendation list", lasting=True)
    low = text.lower()
    # "Case for Pixel 8" names the Pixel 8 only as part of a longer allowed name
    allowed_names = {r.title.lower() for r in recs}
    for item_id in named_ok:
        if item := kb.items.get(item_id):
            allowed_names |= {item.title.lower(), *(a.lower() for a in item.aliases)}
    spans = [(m.start(), m.end()) for n in allowed_names if len(n) >= 4 for m in re.finditer(re.escape(n), low)]

    def names(pattern: str) -> bool:
        return any(
            not any(c <= m.start() and m.end() <= d and d - c > m.end() - m.start() for c, d in spans)
            for m in re.finditer(pattern, low)
        )

    for item in kb.items.values():
        if item.id in named_ok:
            continue
        if len(item.title) > 12 and names(re.escape(item.title.lower())):
            rep.fail(f"names {item.title!r}, which is not in the recommendation list", lasting=True)
            continue
        for alias in item.aliases:
            if len(alias) >= 4 and names(rf"(?<![\w-]){re.escape(alias.lower())}(?![\w-])"):
                rep.fail(f"names {alias!r} ({item.id}), which is not in the recommendation list", lasting=True)
                break
    for why in (facts or Facts.of(kb, recs, template_text)).problems(text):
        rep.fail(why, lasting=True)
    if echo := _echo(text, echo_sources):
        rep.fail(f"echoes the prompt ({echo!r})", lasting=True)
    if _SLOT.search(text):
        rep.fail("leaves a template slot unfilled", lasting=True)
    _garbled(rep, text, recs, kb, template_text, named_ok, wording or turn_wording(kb, recs, template_text), must_cite)
    if _repetitive(_without(low, [r.reason.lower() for r in recs] + [r.title.lower() for r in recs])):
        rep.fail("repeats itself")  # quoting the listed items' titles and reasons is not repeating oneself
    if must_cite and recs and not any(r.item_id in text or r.title.lower() in text.lower() for r in recs):
        rep.fail("recommends nothing from the list")
    if template_text and similarity is not None:
        for fact in dropped_facts(template_text, stripped):
            rep.fail(f"drops the template's fact {fact!r}")
        sim = similarity(stripped, template_text)
        if sim < min_similarity:
            rep.fail(f"strays from the answer template (similarity {sim:.2f} < {min_similarity:.2f})")
    return rep


def _garbled(
    rep: GroundingReport,
    text: str,
    recs: list[Recommendation],
    kb: KnowledgeBase,
    template_text: str | None,
    named_ok: set[str],
    wording: Wording,
    must_cite: bool,
) -> None:
    """The draft reads garbled (:mod:`chatrec.turn.wording`): non-words, a name cut short, a clause
    said twice; and, in a recommendation, an option that is not a listed item (the customer's own
    device, an item a KG fact or a reason names) or more options counted than it has."""
    if bad := wording.non_words(text):
        words = ", ".join(repr(w) for w in bad)
        rep.fail(
            f"writes non-words ({words}): in no listed item, template, shop fact, KG fact or customer message, "
            "and not English",
            lasting=True,
        )
    for said, name in wording.cut_names(text):
        rep.fail(f"cuts a name short ({said!r} for {name!r})", lasting=True)
    sources = [template_text or ""] + [r.reason for r in recs]
    sources += [i.description for r in recs if (i := kb.items.get(r.item_id))]
    if run := wording.repeated_run(text, named_ok, sources):
        rep.fail(f"says the same clause twice ({run!r})", lasting=True)
    if not (must_cite and recs):
        return
    listed = [r.item_id for r in recs]
    for item_id in wording.presented(text, listed):
        if item_id not in listed:
            rep.fail(
                f"offers {kb.items[item_id].title!r} as an option, but it is not one of the listed items", lasting=True
            )
    low = text.lower()
    named = sum(1 for r in recs if r.item_id in text or any(n in low for n in wording.names.get(r.item_id, [])))
    for said, n in option_counts(text):
        if n > len(recs):
            rep.fail(f"says {said!r} but {len(recs)} items are listed", lasting=True)
        elif n > named:
            rep.fail(f"says {said!r} but names {named} of the listed items")


_KEPT = ("money", "percent", "phone", "email", "url", "code", "duration")
_ORDER_REF = re.compile(r"#[A-Z]{2,4}-?\d{4,}\b")


def dropped_facts(template_text: str, text: str) -> list[str]:
    """The filled template's checkable facts (amounts, percentages, phone numbers, e-mails, links,
    codes, times, order numbers) that ``text`` does not state: a service reply keeps every one."""
    said = {(c.kind, str(c.value)) for c in extract_claims(text)}
    out = [c.text for c in extract_claims(template_text) if c.kind in _KEPT and (c.kind, str(c.value)) not in said]
    out += [o for o in _ORDER_REF.findall(template_text) if o not in text]
    return list(dict.fromkeys(out))


def prompt_words(messages: Sequence[Message]) -> list[str]:
    """The prompt's instructions, which a reply must not echo: the lines of the system message
    and of the last message that are not data the reply may quote (listed items, facts, the
    answer template, the customer's profile and likes, their message)."""
    data = ("- ", "answer template:", "customer:", "customer profile:", "liked in this conversation:")
    system = [m["content"] for m in messages[:1] if m["role"] == "system"]
    out = ["\n".join(ln for ln in s.splitlines() if not ln.strip().lower().startswith(data)) for s in system]
    if len(messages) > 1:
        out += [ln for ln in messages[-1]["content"].splitlines() if not ln.strip().lower().startswith(data)]
    return [t for t in out if t.strip()]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9$%'-]+", text.lower())


def _echo(text: str, sources: Sequence[str]) -> str | None:
    """A run of the prompt's words (or one of its labels) the text repeats, else ``None``."""
    lowered = text.lower()
    for label in _PROMPT_LABELS:
        if label in lowered:
            return label
    if not sources:
        return None
    grams = set()
    for src in sources:
        w = _words(src)
        grams |= {" ".join(w[i : i + _ECHO_N]) for i in range(len(w) - _ECHO_N + 1)}
    w = _words(text)
    for i in range(len(w) - _ECHO_N + 1):
        if (gram := " ".join(w[i : i + _ECHO_N])) in grams:
            return gram
    return None


def _without(text: str, parts: list[str]) -> str:
    for part in sorted(parts, key=len, reverse=True):
        if part:
            text = text.replace(part, " ")
    return text


def _repetitive(text: str) -> bool:
    words = text.lower().split()
    if len(words) < 24:
        return False
    grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) / len(grams) < 0.6


_PLAIN_REASONS = ("matches what you asked for", "popular with our customers", "relevant to your request")


def the(title: str, capital: bool = False, article: bool = True) -> str:
    """``title`` with a definite article, unless it starts with one ("The Quick and the Restless")
    or the KB's titles take none (``article=False``, ``shop.json`` ``title_article``: a film's
    title, "It (2017)", is a name, not "the It (2017)")."""
    if not article or re.match(r"(?:the|a|an)\s", title, re.IGNORECASE):
        return title[0].upper() + title[1:] if capital else title
    return f"{'The' if capital else 'the'} {title}"


def _reason_sentence(r: Recommendation, article: bool = True) -> str | None:
    """The informative part of a recommendation's reason as a sentence about the item, or ``None``
    (the price and stock the reason repeats, and the generic reasons, are left out)."""
    # the first sentence; a lone capital's period is an initial ("directed by M. Night Shyamalan"), not its end
    first = re.split(r"(?<!\b[A-Z])\.\s", r.reason + " ", maxsplit=1)[0].split("; ")[0].strip().rstrip(".")
    low = first.lower()
    if not first or low.startswith(_PLAIN_REASONS):
        return None
    if low.endswith(" it"):  # "{start} is {label} it" (explain.py): "Your Anker 737 Power Bank is compatible with it"
        return f"{first[0].upper()}{first[1:-3]} {the(r.title, article=article)}."
    if low.startswith(("works ", "suits ")):
        return f"{the(r.title, True, article)} {low[0]}{first[1:]}."
    if low.startswith("same "):
        return f"{the(r.title, True, article)} has the {low[0]}{first[1:]}."
    return f"{the(r.title, True, article)} is {low[0]}{first[1:]}."


_COUNT = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _named(r: Recommendation, article: bool = True) -> str:
    return the(r.title, article=article) + (f" (${r.price:.2f})" if r.price is not None else "")


def render_list(recs: list[Recommendation], article: bool = True) -> str:
    """The items in sentences, by title and price, with a short lead and at most two reasons worth
    reading; no ids (the cards and the JSON carry them)."""
    if not recs:
        return ""
    named = [_named(r, article) for r in recs]
    if len(named) == 1:
        text = f"I'd suggest {named[0]}."
    else:
        count = _COUNT[len(named)] if len(named) < len(_COUNT) else str(len(named))
        text = f"Here are {count} good options: " + ", ".join(named[:-1]) + f" and {named[-1]}."
    reasons = [s for r in recs if (s := _reason_sentence(r, article))][:2]
    return " ".join([text, *reasons])


def fallback_text(
    route: str,
    template_text: str | None,
    recs: list[Recommendation],
    no_match: str,
    help_text: str = GENERIC_HELP,
    article: bool = True,
) -> str:
    """The grounded reply: the filled template and/or the list; with neither, ``help_text``
    (the shop's ``help`` fact: what this assistant helps with). ``article``: whether item titles
    take "the" (the shop's ``title_article``)."""
    parts = []
    if template_text:
        parts.append(template_text)
    if route in ("recommend", "both"):
        parts.append(render_list(recs, article) if recs else no_match)
    if not parts:
        parts.append(help_text)
    return "\n\n".join(parts)
