"""Drafts that read garbled: words that are no words, product names cut short, a clause said
twice, and option lists that present what the turn did not list.

Seen in a demo session (``benchmarks/results/demo_session.md``, row 4): after three Pixel 8
cases, "something cheaper?" got the draft "Sure, here are three good options: the Google Pixel
8 128GB Obsidian brand Google, the Caseology Parallax Case for Pixel 8, $19.99: Compatible with
Google Pixel 8 128GB Obs Danaepan glass; often bought together with the Google Pixel 8 128GB Obs
Danaepan glass; ..." -- the customer's own phone offered as an option, "three" options for two
listed, a non-word ("Danaepan"), a title cut short ("Obs" for "Obsidian"), a clause said twice.
:func:`chatrec.turn.ground.check_text` fails such drafts with the reasons found here.

"Ordinary English" is ``wordfreq``'s English word list (:data:`MIN_ZIPF`); the words of the
turn's prompt (the listed items' fields, the template, the shop facts, the KG facts, the
customer's messages) and of the catalogue's names are allowed whatever their frequency. The
non-word check runs only for a shop whose answer templates are English (at least
:data:`ENGLISH_SHARE` of their words in that list: 100% on the demo KB, 73% on a Spanish shop's
answers): in another language every word the prompt lacks would count as a non-word.
"""

from __future__ import annotations

import re
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from wordfreq import zipf_frequency

from chatrec.kb import KnowledgeBase
from chatrec.types import Recommendation

__all__ = ["MIN_ZIPF", "REPEAT_N", "Wording", "option_counts", "option_heads", "turn_wording"]

# a word at least this frequent in English (zipf: log10 of uses per billion words) is ordinary;
# wordfreq knows words down to about 1, so this accepts every word it has seen with some frequency
MIN_ZIPF = 1.0
REPEAT_N = 6  # this many words in a row said twice (not quoting the data) is a repeated clause
ENGLISH_SHARE = 0.95  # templates with at least this share of ordinary English words make an English shop

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)*")
_NAME_TOKEN = re.compile(r"[a-z0-9]+(?:[-'’][a-z0-9]+)*")
_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_OPTION_NOUN = r"(?:options|picks|choices|suggestions|recommendations|alternatives)"
_OPTION_ADJ = (
    r"(?:good|great|solid|nice|excellent|top|cheaper|affordable|budget|other|more|different|possible|best|"
    r"recommended|strong|lower-priced|less\s+expensive)"
)
_COUNT = re.compile(
    rf"\b(?P<n>{'|'.join(_COUNT_WORDS)}|\d{{1,2}})\s+(?:{_OPTION_ADJ}[\s-]+){{0,2}}{_OPTION_NOUN}\b", re.IGNORECASE
)
# where options start: after "options:" / "here are ...:", after "I'd suggest", at a bullet
_LEAD_COLON = re.compile(
    r"\b(?:options?|picks?|choices?|suggestions?|recommendations?|alternatives?|ones)\b[^.!?:\n]{0,20}:"
    r"|\bhere(?:'s|’s|\s+is|\s+are)\b[^.!?:\n]{0,60}:",
    re.IGNORECASE,
)
_LEAD_VERB = re.compile(
    r"\b(?:i'd|i’d|i\s+would|i|we'd|we’d|we)\s+(?:suggest|recommend)\b|\bhow\s+about\b|\bwhat\s+about\b"
    r"|\bgo\s+(?:for|with)\b|\bconsider\b|\btry\b",
    re.IGNORECASE,
)
_BULLET = re.compile(r"(?m)^[ \t]*(?:[-*•]|\d{1,2}[.)])[ \t]+")
_SEPARATOR = re.compile(r"[,;:\n]|\s(?:and|or)\s", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
# a name followed by one of these is the subject of a statement, not an option offered
_SAID_OF = frozenset("is was works fits has needs will would can comes supports pairs takes uses already".split())
_ARTICLES = re.compile(r"(?:\s|\b(?:the|a|an|and|or|also)\b)*", re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _stem(token: str) -> str:
    return re.sub(r"['’]s$", "", token)


_ENGLISH: dict[int, bool] = {}  # id(kb) -> whether its templates are English (dropped with the KB)


def is_english(kb: KnowledgeBase) -> bool:
    """Whether the shop's answer templates are English (:data:`ENGLISH_SHARE`); computed once per KB."""
    key = id(kb)
    if key not in _ENGLISH:
        words = [t for tpl in kb.templates.values() for t in _tokens(tpl.text) if t.isalpha() and len(t) >= 3]
        known = sum(1 for t in words[:5000] if zipf_frequency(_stem(t), "en") >= MIN_ZIPF)
        _ENGLISH[key] = bool(words) and known >= ENGLISH_SHARE * len(words[:5000])
        weakref.finalize(kb, _ENGLISH.pop, key, None)
    return _ENGLISH[key]


_CATALOGUE: dict[int, tuple] = {}  # id(kb) -> what Wording.of takes from the KB (dropped with the KB)


def _catalogue(kb: KnowledgeBase) -> tuple[frozenset[str], dict[str, list[str]], dict, bool]:
    """The KB's part of every turn's :class:`Wording`: the words of the catalogue's names, brands
    and shop facts; each item's lower-cased title and aliases; names of 3+ words by their first two
    words; and :func:`is_english`. Computed once per KB (it was rebuilt on every turn)."""
    key = id(kb)
    if key not in _CATALOGUE:
        names: dict[str, list[str]] = {}
        texts = [str(v) for v in kb.shop.model_dump().values()]
        for item in kb.items.values():
            names[item.id] = [item.title.lower(), *(a.lower() for a in item.aliases if len(a) >= 4)]
            texts += [*names[item.id], item.brand]
        by_start: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
        for item_names in names.values():
            for name in item_names:
                words = _NAME_TOKEN.findall(name)
                if len(words) >= 3:
                    by_start[(words[0], words[1])].append(words)
        known = frozenset(_stem(t) for text in texts for t in _tokens(text))
        _CATALOGUE[key] = (known, names, dict(by_start), is_english(kb))
        weakref.finalize(kb, _CATALOGUE.pop, key, None)
    return _CATALOGUE[key]


def option_counts(text: str) -> list[tuple[str, int]]:
    """``(as written, number)`` for every count of options the text states ("three good options")."""
    out = []
    for m in _COUNT.finditer(text):
        raw = m.group("n").lower()
        out.append((m.group(0), int(raw) if raw.isdigit() else _COUNT_WORDS[raw]))
    return out


def option_heads(text: str) -> list[int]:
    """Offsets in ``text`` where an option begins: each list element after a lead that ends in a
    colon ("Here are three good options: A, B and C"), the item after a verb that presents one
    ("I'd suggest A"), and each bulleted line; articles and "and"/"or" skipped."""
    starts = []
    for m in _LEAD_COLON.finditer(text):
        end = _SENTENCE_END.search(text, m.end())
        stop = end.start() if end else len(text)
        starts.append(m.end())
        starts += [s.end() for s in _SEPARATOR.finditer(text, m.end(), stop)]
    starts += [m.end() for m in _LEAD_VERB.finditer(text)]
    starts += [m.end() for m in _BULLET.finditer(text)]
    out = []
    for s in sorted(set(starts)):
        skip = _ARTICLES.match(text, s)
        out.append(skip.end() if skip else s)
    return sorted(set(out))


@dataclass
class Wording:
    """What a turn's reply may say by way of words: the prompt's and the catalogue's vocabulary,
    and the catalogue's names (to find names cut short and options the turn did not list)."""

    known: set[str] = field(default_factory=set)  # lower-cased words of the prompt and the catalogue
    english: bool = True  # the shop writes English: words outside ``known`` are checked against English
    names: dict[str, list[str]] = field(default_factory=dict)  # item id -> lower-cased title and aliases
    _by_start: dict[tuple[str, str], list[list[str]]] = field(default_factory=dict)  # first two words -> names

    @classmethod
    def of(cls, kb: KnowledgeBase, texts: Iterable[str]) -> Wording:
        """``texts``: the turn's prompt (every message: the system prompt, the profile, the KG facts,
        the listed items, the template, the history, the customer's messages) and any other data
        the reply may quote (the shop facts, the listed items' descriptions). The catalogue's part
        is built once per KB (:func:`_catalogue`); a turn adds only its own texts' words."""
        known, names, by_start, english = _catalogue(kb)
        w = cls(known=set(known), names=names, english=english, _by_start=by_start)
        for text in texts:
            w.known.update(_stem(t) for t in _tokens(text))
        return w

    def non_words(self, text: str) -> list[str]:
        """The words of ``text`` (as written) that are in neither the prompt nor the catalogue and
        are not ordinary English (``wordfreq`` zipf below :data:`MIN_ZIPF`); numbers and model
        codes (a token with a digit) are left to the claim checks."""
        out: list[str] = []
        if not self.english:
            return out
        for m in _TOKEN.finditer(text.lower()):
            token = _stem(m.group(0))
            if len(token) < 3 or not token.isalpha() or token in self.known:
                continue
            if zipf_frequency(token, "en") < MIN_ZIPF:
                out.append(text[m.start() : m.start() + len(token)])
        return list(dict.fromkeys(out))

    def cut_names(self, text: str) -> list[tuple[str, str]]:
        """``(as written, full name)`` for each catalogue name the text starts and then cuts short
        mid-word ("Google Pixel 8 128GB Obs" for "Google Pixel 8 128GB Obsidian")."""
        words = _NAME_TOKEN.findall(text.lower())
        out = []
        for i in range(len(words) - 2):
            candidates = self._by_start.get((words[i], words[i + 1]), [])
            cut, whole = None, False
            for name in candidates:
                k = 2
                while k < len(name) and i + k < len(words) and words[i + k] == name[k]:
                    k += 1
                if k == len(name) or i + k >= len(words):
                    whole = True  # the text says this name in full (or ends inside it)
                    continue
                said, meant = words[i + k], name[k]
                if said != meant and meant.startswith(said) and meant.isalpha() and len(meant) >= 4:
                    cut = (" ".join(words[i : i + k + 1]), " ".join(name))
                elif said == meant:
                    whole = True
            if cut and not whole:
                out.append(cut)
        return list(dict.fromkeys(out))

    def substituted(self, text: str, ids: Iterable[str]) -> str:
        """``text`` lower-cased with the title of each of ``ids`` (longest first) replaced by one
        token per item."""
        low = text.lower()
        titles = sorted(((self.names[i][0], i) for i in ids if self.names.get(i)), key=lambda p: -len(p[0]))
        for title, item_id in titles:
            low = re.sub(rf"(?<![\w-]){re.escape(title)}(?![\w-])", f" {self._token(item_id)} ", low)
        return low

    def repeated_run(self, text: str, ids: Iterable[str], sources: Sequence[str]) -> str | None:
        """The first run of :data:`REPEAT_N` words ``text`` says twice (the runs not overlapping)
        that names none of the items ``ids`` by title: a sentence pattern said of several items
        ("the A is compatible with your X. The B is compatible with your X") is no repeat; runs that
        ``sources`` (the template, the reasons, the listed items' descriptions) contain are quoting
        the data and allowed."""
        ids = list(ids)
        words = _tokens(self.substituted(text, ids))
        marks = {self._token(i) for i in ids}
        seen: dict[tuple[str, ...], int] = {}
        quoted: set[tuple[str, ...]] | None = None
        for i in range(len(words) - REPEAT_N + 1):
            gram = tuple(words[i : i + REPEAT_N])
            first = seen.setdefault(gram, i)
            if first == i or i - first < REPEAT_N or marks.intersection(gram):
                continue
            if quoted is None:
                quoted = set()
                for src in sources:
                    w = _tokens(self.substituted(src, ids))
                    quoted |= {tuple(w[j : j + REPEAT_N]) for j in range(len(w) - REPEAT_N + 1)}
            if gram not in quoted:
                return " ".join(gram)
        return None

    @staticmethod
    def _token(item_id: str) -> str:
        return "item" + re.sub(r"\W", "", item_id.lower())

    def presented(self, text: str, listed: Iterable[str]) -> list[str]:
        """The catalogue items (ids) an option of ``text`` begins with (:func:`option_heads`): the
        longest name starting there, unless it is a possessive, the next word is one of the
        ``listed`` items' titles ("the Pixel 8 case from Spigen" is a case, not the Pixel), or a
        verb that says something of it ("Here's the thing: the Pixel 8 works with both")."""
        low = text.lower()
        listed_words = {t for i in listed for n in self.names.get(i, []) for t in _tokens(n) if len(t) >= 4}
        out = []
        for head in option_heads(low):
            best: tuple[int, str] | None = None
            for item_id, names in self.names.items():
                for name in names:
                    if len(name) >= 4 and low.startswith(name, head) and (best is None or len(name) > best[0]):
                        after = low[head + len(name) : head + len(name) + 1]
                        if not after or not (after.isalnum() or after == "-"):
                            best = (len(name), item_id)
            if best is not None and not re.match(r"['’]s\b", low[head + best[0] :]):  # "the Pixel 8's case"
                following = _tokens(low[head + best[0] : head + best[0] + 40])
                if not (following and (following[0] in listed_words or following[0] in _SAID_OF)):
                    out.append(best[1])
        return list(dict.fromkeys(out))


def turn_wording(
    kb: KnowledgeBase, recs: Sequence[Recommendation], template_text: str | None, prompt: Sequence[str] = ()
) -> Wording:
    """The :class:`Wording` of one turn: ``prompt`` (its messages' texts), the filled template, the
    listed items' titles, reasons, descriptions and attributes, the shop facts and the catalogue."""
    texts = [*prompt, template_text or ""]
    for r in recs:
        texts += [r.title, r.reason]
        if item := kb.items.get(r.item_id):
            texts += [item.description, " ".join(f"{k} {v}" for k, v in item.attributes.items())]
    return Wording.of(kb, texts)
