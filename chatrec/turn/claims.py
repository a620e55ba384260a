"""Claims a reply makes that data can confirm or refute, and the facts that may confirm them.

:func:`extract_claims` finds, with regular expressions and small tables (deterministic,
no model): amounts of money in the common written forms (``$5``, ``5$``, ``US$5``,
``USD 5``, ``5 USD``, ``5 dollars``, ``one dollar``, ``ninety-nine cents``, ``€1``,
``£3``, ``5 EUR``, ``$1k``), percentages and discounts (``50%``, ``50 percent``,
``half off``, ``buy one get one``), promo codes (``code FREE100``, ``coupon: SAVE20``),
links and domains, e-mail addresses, phone numbers, and stock claims (``in stock``,
``out of stock``, ``only 3 left``, ``low stock``).

:class:`Facts` holds what this turn's data says (the listed items, the filled template,
the shop facts, the items' reasons); :meth:`Facts.problems` checks each claim field by
field: an amount must be in the shop's currency and equal the price of a listed item,
an amount in the template or the reasons, or a money-typed shop fact (a numeric fact
whose key names money, such as ``express_shipping_price`` or ``free_shipping_threshold``,
or a fact whose text states an amount), never any number in the shop facts; a percentage
or a discount must appear in the template, shop facts or reasons; codes, links and e-mail
addresses must appear there verbatim (a link on the shop's own site too), phone numbers
digit for digit; a stock claim must match the ``stock`` field of the items named in its
sentence, else of the listed items, else appear in the template. What cannot be verified
is a problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from chatrec.kb import KnowledgeBase
from chatrec.types import Recommendation

__all__ = ["Claim", "Facts", "LOW_STOCK", "extract_claims", "stock_problems"]

LOW_STOCK = 5  # "only a few left" is true of at most this many units

_UNITS = {
    "zero": 0,
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORD = "|".join(sorted(list(_UNITS) + list(_SCALES), key=len, reverse=True))
_WORDS = rf"(?:(?:{_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_WORD}))*)"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"

_SYMBOLS = {"us$": "USD", "c$": "CAD", "a$": "AUD", "$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CODES = {
    "usd": "USD",
    "eur": "EUR",
    "gbp": "GBP",
    "jpy": "JPY",
    "cad": "CAD",
    "aud": "AUD",
    "chf": "CHF",
    "inr": "INR",
}
_NAMES = {
    "dollar": "USD",
    "dollars": "USD",
    "buck": "USD",
    "bucks": "USD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "yen": "JPY",
    "rupee": "INR",
    "rupees": "INR",
    "cent": "cents",
    "cents": "cents",
}
_SYM = r"(?:US\$|C\$|A\$|\$|€|£|¥|₹)"
_CODE = r"(?:USD|EUR|GBP|JPY|CAD|AUD|CHF|INR)"
_NAME = r"(?:dollars?|bucks?|euros?|pounds?|quid|yen|rupees?|cents?)"
_MULT = r"(?:\s?(?P<mult>k|K|m|M|million|thousand)\b)?"

# most specific first; a later pattern never claims characters an earlier one took
_MONEY = [
    re.compile(rf"(?P<sym>{_SYM})\s?(?P<num>{_NUM}){_MULT}"),
    re.compile(rf"(?<![\w.,])(?P<num>{_NUM})\s?(?P<sym>{_SYM})"),
    re.compile(rf"\b(?P<code>{_CODE})\s?(?P<num>{_NUM}){_MULT}", re.I),
    re.compile(rf"(?<![\w.,])(?P<num>{_NUM}){_MULT}\s?(?P<code>{_CODE})\b", re.I),
    re.compile(rf"(?<![\w.,])(?P<num>{_NUM}){_MULT}\s?(?P<name>{_NAME})\b", re.I),
    re.compile(rf"\b(?P<words>{_WORDS})[\s-]+(?P<name>{_NAME})\b", re.I),
]
_PERCENT = [
    re.compile(rf"(?<![\w.,])(?P<num>{_NUM})\s?(?:%|percent\b|per\s?cent\b|pct\b)", re.I),
    re.compile(rf"\b(?P<words>{_WORDS})[\s-]+(?:percent|per\s?cent)\b", re.I),
    re.compile(r"\b(?P<half>half[\s-]+(?:off|price))\b", re.I),
]
_DEAL = re.compile(r"\b(?:buy\s+one,?\s+get\s+one(?:\s+free)?|bogo|two\s+for\s+one|2\s*for\s*1)\b", re.I)
_PROMO = re.compile(  # a cue word, perhaps "for the X is", then a token with a digit or in capitals
    r"(?i:\b(?:(?:promo(?:tional)?|discount|coupon|voucher|gift|referral)\s+)?(?:code|coupon|voucher|promo)s?\b"
    r"(?:\s+(?:for|on|to)\s[^.!?\n:]{0,60}?(?:\s+(?:is|was)\b|:)|(?:\s+(?:is|was|of|word)\b)?))\s*[:=]?\s*[\"'“‘`*]*"
    r"(?P<code>(?=[A-Za-z0-9_-]*\d|[A-Z][A-Z0-9_-]{3,}(?![\w-]))[A-Za-z0-9][A-Za-z0-9_-]{2,})"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"'\]\[]+", re.I)
_DOMAIN = re.compile(
    r"(?<![@\w.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[a-z]{2,24}(?:/[^\s<>()\"'\]\[]*)?(?![\w@-])"
)
_PHONE = re.compile(r"(?<![\w.,$€£-])\+?\(?\d{1,4}\)?(?:[\s.-]\(?\d{2,4}\)?){1,4}(?![\w,-]|\.\d)")
_STOCK = [  # (pattern, kind): "exact" carries a count
    (
        re.compile(
            r"\b(?:not\s+(?:currently\s+|yet\s+)?(?:in\s+stock|available)|out\s+of\s+stock|sold[\s-]+out)\b", re.I
        ),
        "none",
    ),
    (
        re.compile(
            rf"\b(?:only\s+)?(?P<n>\d+|{_WORD})\s+(?:units?\s+|pieces?\s+|items?\s+|of\s+them\s+)?"
            r"(?:left|remaining|in\s+stock|available)\b",
            re.I,
        ),
        "exact",
    ),
    (
        re.compile(
            r"\b(?:(?:only\s+)?a\s+few\s+(?:left|remaining)|low\s+(?:in\s+)?stock|limited\s+stock|almost\s+(?:gone|sold\s+out)"
            r"|selling\s+out)\b",
            re.I,
        ),
        "low",
    ),
    (re.compile(r"\b(?:(?:back\s+)?in\s+stock|available\s+now|ready\s+to\s+ship|in\s+store\s+now)\b", re.I), "some"),
]
# people: a capitalised word after a cue ("I'm Sarah", "my colleague Tom", "Sarah from support"),
# or a common first name anywhere; a word of the catalogue, the shop facts or the template is no person
_PERSON_CUE = re.compile(
    r"(?:\b(?:I'm|I am|[Mm]y name is|[Mm]y name's|[Tt]his is|[Cc]olleague|[Tt]eammate|[Ss]pecialist|[Ss]upervisor|"
    r"[Mm]anager|[Aa]gent|[Rr]epresentative|[Aa]sk for|[Ss]peak (?:to|with)|[Cc]ontact)\s+(?:named\s+|called\s+)?"
    r"(?P<name>[A-Z][a-z]{2,})\b)|(?:\b(?P<name2>[A-Z][a-z]{2,})\s+(?:from|at|in|on)\s+(?:our\s+|the\s+)?"
    r"(?:support|customer|service|team|billing|returns|shipping)\b)"
)
_NOT_NAMES = {
    "sorry", "happy", "glad", "here", "afraid", "not", "sure", "able", "unable", "excited", "connecting", "passing",
    "checking", "looking", "the", "our", "your", "sending", "going", "also", "just", "really", "very", "still", "now",
    "transferring", "adding", "customer", "support", "service", "team", "returns", "billing", "shipping", "orders",
}  # fmt: skip
FIRST_NAMES = frozenset(
    """james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony
    mark donald steven paul andrew joshua kevin brian george timothy ronald jason edward jeffrey ryan jacob gary
    nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander patrick frank
    raymond jack dennis jerry tyler aaron jose adam nathan henry zachary douglas peter kyle noah ethan jeremy
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty sandra margaret
    ashley kimberly emily donna michelle carol amanda melissa deborah stephanie dorothy rebecca sharon laura
    cynthia amy kathleen angela shirley brenda emma anna pamela nicole samantha katherine christine helen debra
    rachel carolyn janet maria catherine heather diane olivia julie joyce victoria ruth virginia lauren kelly
    christina joan evelyn judith andrea hannah megan cheryl jacqueline martha madison teresa gloria sara janice
    ann kathryn abigail sophia frances jean alice judy isabella julia grace amber denise danielle marilyn beverly
    charlotte natalie theresa diana brittany doris kayla alexis lori marie priya raj mohammed ahmed ali fatima
    carlos juan luis sofia lucas liam mia ava chloe zoe lily ella leo oliver harry mike tom dave steve chris
    kate jess sam alex max ben dan nick matt josh tim jenny sue liz beth meg""".split()
)
_WEEKDAYS = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?"
_MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?"
)
_DATES = [
    re.compile(rf"\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b"),
    re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}(?:\s+\d{{4}})?\b"),
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"),
    re.compile(rf"\b{_WEEKDAYS}\b"),
    re.compile(
        r"\b(?:tomorrow|the day after tomorrow|tonight|next week|this week(?:end)?|end of (?:the )?(?:day|week))\b",
        re.I,
    ),
]
_DURATION = re.compile(
    rf"(?<![\w.,$])(?P<n>\d+(?:\.\d+)?|{_WORD})(?:\s*(?:-|–|to|or)\s*(?P<m>\d+|{_WORD}))?[\s-]+"
    r"(?:business\s+|working\s+|calendar\s+)?(?P<unit>minute|hour|day|week|month|year)s?\b",
    re.I,
)
_DURATION_KEY = re.compile(r"_(minutes|hours|days|weeks|months|years)$")
_MONEY_KEY = re.compile(r"(?:price|threshold|fee|cost|amount|minimum|credit|limit|charge)s?$")
_PERCENT_KEY = re.compile(r"(?:percent|pct|rate_off|discount)$")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_DOMAIN_FILE_EXT = {"jpg", "png", "gif", "pdf", "txt", "html", "js", "py", "json"}


@dataclass(frozen=True)
class Claim:
    kind: str  # money | percent | deal | code | url | email | phone | stock | person | date | duration
    text: str  # as written
    start: int
    end: int
    value: object = None  # money: (currency, amount); percent: float; stock: (kind, count); duration: (low, high,
    # unit); else the normalised text


def words_to_number(words: str) -> float | None:
    """``"one hundred and ninety-nine"`` -> 199; ``None`` for anything else."""
    total, current = 0, 0
    seen = False
    for w in re.split(r"[\s-]+", words.lower()):
        if not w or w == "and":
            continue
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _SCALES:
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] >= 1000:
                total, current = total + current, 0
        else:
            return None
        seen = True
    return float(total + current) if seen else None


def _number(m: re.Match[str]) -> float | None:
    groups = m.groupdict()
    if groups.get("num"):
        value = float(m.group("num").replace(",", ""))
    elif groups.get("words"):
        parsed = words_to_number(m.group("words"))
        if parsed is None:
            return None
        value = parsed
    else:
        return None
    mult = (groups.get("mult") or "").lower()
    if mult in ("k", "thousand"):
        value *= 1000
    elif mult in ("m", "million"):
        value *= 1_000_000
    return value


def _currency(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g.get("sym"):
        return _SYMBOLS[g["sym"].lower()]
    if g.get("code"):
        return _CODES[g["code"].lower()]
    return _NAMES[g["name"].lower()]


def extract_claims(text: str) -> list[Claim]:
    """Every checkable claim in ``text``, in order; spans never overlap."""
    taken: list[tuple[int, int]] = []
    out: list[Claim] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    def add(kind: str, m: re.Match[str], value: object, group: int | str = 0) -> None:
        a, b = m.span(group)
        if free(a, b):
            taken.append((a, b))
            out.append(Claim(kind, m.group(group), a, b, value))

    for m in _EMAIL.finditer(text):
        add("email", m, m.group(0).lower())
    for pat in (_URL, _DOMAIN):
        for m in pat.finditer(text):
            url = m.group(0).rstrip(".,;:!?)*")
            host = _norm_url(url).split("/", 1)[0]
            if pat is _DOMAIN and host.rsplit(".", 1)[-1] in _DOMAIN_FILE_EXT:
                continue
            a = m.start()
            if free(a, a + len(url)):
                taken.append((a, a + len(url)))
                out.append(Claim("url", url, a, a + len(url), _norm_url(url)))
    for m in _PROMO.finditer(text):
        add("code", m, m.group("code").lower(), "code")
    for pat in _MONEY:
        for m in pat.finditer(text):
            value = _number(m)
            if value is None:
                continue
            cur = _currency(m)
            if cur == "cents":
                cur, value = "USD", value / 100
            add("money", m, (cur, round(value, 2)))
    for pat in _PERCENT:
        for m in pat.finditer(text):
            value = 50.0 if m.groupdict().get("half") else _number(m)
            if value is not None:
                add("percent", m, round(value, 2))
    for m in _DEAL.finditer(text):
        add("deal", m, re.sub(r"\s+", " ", m.group(0).lower()))
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if len(digits) >= 10 or (len(digits) >= 7 and "-" in m.group(0)):
            add("phone", m, digits)
    for pat, kind in _STOCK:
        for m in pat.finditer(text):
            count = None
            if kind == "exact":
                n = m.group("n")
                count = int(n) if n.isdigit() else words_to_number(n)
                if count is None:
                    continue
            add("stock", m, (kind, count))
    for m in _DURATION.finditer(text):
        if (d := _duration(m)) is not None:
            add("duration", m, d)
    for pat in _DATES:
        for m in pat.finditer(text):
            add("date", m, re.sub(r"\s+", " ", m.group(0).lower()).rstrip("."))
    for m in _PERSON_CUE.finditer(text):
        group = "name" if m.group("name") else "name2"
        if m.group(group).lower() not in _NOT_NAMES:
            add("person", m, ("staff", m.group(group).lower()), group)
    for m in re.finditer(r"\b[A-Z][a-z]{2,}\b", text):
        if m.group(0).lower() in FIRST_NAMES:
            add("person", m, ("name", m.group(0).lower()))
    return sorted(out, key=lambda c: c.start)


def _duration(m: re.Match[str]) -> tuple[float, float, str] | None:
    def num(raw: str) -> float | None:
        return float(raw) if raw[0].isdigit() else words_to_number(raw)

    low = num(m.group("n"))
    high = num(m.group("m")) if m.group("m") else low
    if low is None or high is None:
        return None
    return (low, high, m.group("unit").lower())


def _norm_url(url: str) -> str:
    url = re.sub(r"^(?:https?://)?(?:www\.)?", "", url.strip().lower())
    return url.rstrip("/")


@dataclass
class Facts:
    """What this turn's data says, to verify a reply's claims against."""

    currency: str = "USD"
    money: set[tuple[str, float]] = field(default_factory=set)
    percents: set[float] = field(default_factory=set)
    corpus: str = ""  # lower-cased text codes, links, e-mails and deals must appear in verbatim
    phones: set[str] = field(default_factory=set)
    template: str = ""
    items: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # id -> (stock, lower-cased names)
    prices: dict[str, float] = field(default_factory=dict)  # id -> catalogue price, for items that have one
    listed: list[str] = field(default_factory=list)
    durations: set[tuple[float, float, str]] = field(default_factory=set)
    words: set[str] = field(default_factory=set)  # lower-cased words of the catalogue, the shop facts, the template
    customers: set[str] = field(default_factory=set)  # the shop's customers' first names (lower-cased)

    @classmethod
    def of(cls, kb: KnowledgeBase, recs: list[Recommendation], template_text: str | None) -> Facts:
        """Money: listed prices, money-typed shop facts, amounts in the template, the reasons and
        the shop facts' text. Percentages and verbatim text: those plus the listed items' data."""
        facts = cls(currency=kb.shop.currency, template=(template_text or "").lower())
        stated = [template_text or ""] + [r.reason for r in recs]  # amounts here are allowed
        for key, value in kb.shop.model_dump().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if _MONEY_KEY.search(key):
                    facts.money.add((facts.currency, round(float(value), 2)))
                if _PERCENT_KEY.search(key):
                    facts.percents.add(round(float(value), 2))
                if d := _DURATION_KEY.search(key):
                    facts.durations.add((float(value), float(value), d.group(1)[:-1]))
            else:
                stated.append(str(value))
        described = []  # the listed items' own data: percentages, codes and links, never prices
        for r in recs:
            if r.price is not None:
                facts.money.add((facts.currency, round(r.price, 2)))
            described.append(r.title)
            if item := kb.items.get(r.item_id):
                described += [item.description, " ".join(f"{k} {v}" for k, v in item.attributes.items())]
                for k, v in item.attributes.items():
                    if (d := _DURATION_KEY.search(k)) and isinstance(v, (int, float)) and not isinstance(v, bool):
                        facts.durations.add((float(v), float(v), d.group(1)[:-1]))
        for text in stated + described:
            for c in extract_claims(text):
                if c.kind == "money" and text in stated:
                    facts.money.add(c.value)  # type: ignore[arg-type]
                elif c.kind == "percent":
                    facts.percents.add(c.value)  # type: ignore[arg-type]
                elif c.kind == "phone":
                    facts.phones.add(str(c.value))
                elif c.kind == "duration":
                    facts.durations.add(c.value)  # type: ignore[arg-type]
        facts.corpus = _norm_corpus(" \n ".join(stated + described + [str(v) for v in kb.shop.model_dump().values()]))
        facts.items = _stock_names(kb)
        facts.prices = {i.id: round(i.price, 2) for i in kb.items.values() if i.price is not None}
        facts.listed = [r.item_id for r in recs]
        # a product word is no person; a customer's name may be said (a greeting), never as staff
        vocabulary = [i.title + " " + i.brand for i in kb.items.values()] + [facts.corpus]
        facts.words = set(re.findall(r"[a-z]+", " ".join(vocabulary).lower()))
        facts.customers = {u.name.split()[0].lower() for u in kb.users.values() if u.name.strip()}
        return facts

    def problems(self, text: str) -> list[str]:
        """Why each claim in ``text`` that these facts do not confirm fails."""
        out = []
        for c in extract_claims(text):
            if why := self._refutes(c, text):
                out.append(why)
        return out

    def _refutes(self, c: Claim, text: str) -> str | None:
        if c.kind == "money":
            cur, amount = cast("tuple[str, float]", c.value)
            if cur != self.currency:
                return f"quotes an amount {c.text!r} in {cur}, not the shop's currency {self.currency}"
            if (cur, amount) not in self.money:
                return f"quotes a price ${amount:.2f} ({c.text!r}) that is not a listed item's price or a money fact"
            return self._price_of_named(c, amount, text)
        if c.kind == "percent":
            return None if c.value in self.percents else f"claims {c.text!r}, which no template or shop fact states"
        if c.kind in ("code", "email", "deal"):
            return None if str(c.value) in self.corpus else f"gives a {c.kind} {c.text!r} that is not in the shop facts"
        if c.kind == "url":
            return None if str(c.value) in self.corpus else f"gives a link {c.text!r} that is not in the shop facts"
        if c.kind == "phone":
            digits = str(c.value)
            if any(p == digits or (len(digits) >= 10 and p.endswith(digits)) for p in self.phones):
                return None
            return f"gives a phone number {c.text!r} that is not in the shop facts"
        if c.kind == "stock":
            return self._stock(c, text)
        if c.kind == "person":
            role, name = cast("tuple[str, str]", c.value)
            if name in self.words or (role == "name" and name in self.customers):
                return None
            return f"names a person {c.text!r} who is in no template, shop fact or listed item"
        if c.kind == "date":
            return (
                None if str(c.value) in self.corpus else f"gives a date {c.text!r} that no template or shop fact states"
            )
        if c.kind == "duration":
            low, high, unit = cast("tuple[float, float, str]", c.value)
            if any(u == unit and lo <= low and high <= hi for lo, hi, u in self.durations):
                return None
            return f"promises a time {c.text!r} that no template, shop fact or listed item states"
        return f"makes an unverifiable claim {c.text!r}"

    def _price_of_named(self, c: Claim, amount: float, text: str) -> str | None:
        """An amount right after an item's name ("the X ($79.99)", "the X for $79.99") is that
        item's price: another listed price there is a wrong attribution, not a true claim."""
        head = text[max(0, c.start - _NAME_WINDOW) : c.start].lower()
        gap = _PRICE_AFTER_NAME.search(head)  # matches at least the empty string at the end
        stem = head[: gap.start()] if gap else head
        named = [
            (len(name), item_id)
            for item_id in self.prices
            for name in self.items.get(item_id, (0, []))[1]
            if stem.endswith(name) and not re.match(r"[\w-]", stem[-len(name) - 1 : -len(name)])
        ]
        if not named:
            return None
        longest = max(n for n, _ in named)  # the most specific name ("pixel 8 case" over "pixel 8")
        ids = sorted({i for n, i in named if n == longest})
        if any(self.prices[i] == amount for i in ids):
            return None
        return f"gives {c.text!r} as the price of {ids[0]}, whose price is ${self.prices[ids[0]]:.2f}"

    def _stock(self, c: Claim, text: str) -> str | None:
        kind, count = cast("tuple[str, float | None]", c.value)
        sentence = next(
            (m.group(0).lower() for m in _SENTENCE.finditer(text) if m.start() <= c.start < m.end()), text.lower()
        )
        named = [i for i, (_, names) in self.items.items() if any(_names_in(n, sentence) for n in names)]
        if not named:
            if c.text.lower() in self.template:
                return None
            named = self.listed
        if not named:
            return f"claims {c.text!r} about no listed item"
        for item_id in named:
            stock = self.items[item_id][0]
            ok = {
                "none": stock == 0,
                "some": stock > 0,
                "low": 0 < stock <= LOW_STOCK,
                "exact": stock == count,
            }[kind]
            if not ok:
                return f"claims {c.text!r} but {item_id} has {stock} in stock"
        return None


_NAME_WINDOW = 200  # characters before an amount searched for the item it prices
# what may stand between an item's name and its price: "X ($5)", "X - $5", "X: $5", "X for $5",
# "X at only $5", "X costs $5", "X is $5", "X, priced at $5"
# (one pattern, anchored at the end of the text before the amount; names are then compared as
# plain suffixes, so a check costs no regex per catalogue name)
_PRICE_AFTER_NAME = re.compile(
    r"\s*(?:\(|\[[^\]]*\]|[-:,\u2013\u2014])?\s*(?:\b(?:for|at|costs?|is|priced at|only|just)\s+){0,2}$"
)


def _stock_names(kb: KnowledgeBase) -> dict[str, tuple[int, list[str]]]:
    """id -> (stock, the lower-cased names a reply may call the item by)."""
    return {
        i.id: (i.stock, [i.id.lower(), i.title.lower()] + [a.lower() for a in i.aliases if len(a) >= 4])
        for i in kb.items.values()
    }


def _names_in(name: str, sentence: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", sentence) is not None


def _norm_corpus(text: str) -> str:
    return re.sub(r"https?://|www\.", "", text.lower())


def stock_problems(kb: KnowledgeBase, text: str) -> list[str]:
    """The stock claims in ``text`` ("X is in stock", "X is out of stock") that the catalogue's
    ``stock`` of the item named refutes."""
    claims = [c for c in extract_claims(text) if c.kind == "stock"]
    if not claims:
        return []
    facts = Facts(items=_stock_names(kb))
    return [why for c in claims if (why := facts._stock(c, text))]
