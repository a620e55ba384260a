"""Masking personal data before anything is logged, indexed or trained on.

:func:`mask_pii` replaces personal data with typed placeholders and leaves every
other character of the text exactly as it was:

==========================  =================================================
``<EMAIL>``                 ``jane.doe+shop@example.co.uk``, ``jane [at] example [dot] com``
``<PHONE>``                 ``+1 (415) 555-0134``, ``415.555.0134``, ``+44 (0)20 7946 0958``,
                            ``06 12 34 56 78``, ``07700900123``; bare digit runs only after
                            a phone word ("call", "phone", "my number"...), never right
                            after an order, tracking, SKU... word
``<CARD_NUMBER>``           13-19 digits in groups of any spacing or dashes, first digit
                            2-6, passing the Luhn check (windows of the groups are tried,
                            so a trailing expiry or CVV does not hide the card)
``<CARD_SECURITY_CODE>``    3-4 digits after "CVV"/"CVC"/"security code"
``<IBAN>``                  an IBAN with a valid mod-97 checksum (or any IBAN-shaped
                            string right after the word "IBAN")
``<IP_ADDRESS>``            IPv4 (not after "version"/"v"/"firmware"/...), IPv6
``<ADDRESS>``               street lines (``221B Baker Street``, ``Flat 2, 10 Downing St``,
                            ``Hauptstraße 5``, ``PO Box 123``)
``<POSTCODE>``              UK postcodes and US ZIP / ZIP+4, only next to address words
                            (after a street line, "postcode"/"zip", "ship to", a US state)
``<NATIONAL_ID>``           US SSN ``123-45-6789``, UK National Insurance ``QQ 12 34 56 C``
``<NAME>``                  a person's name after "my name is", "name:", "Mr/Ms/Dr",
                            and, when capitalised and followed by a pause, after
                            "this is", "I'm", "call me" or a sign-off ("Regards, Ann Lee")
``<DATE_OF_BIRTH>``         a date (or year) after "born", "DOB", "date of birth", "birthday"
==========================  =================================================

What is deliberately *not* masked: order numbers (``#VW-48213``, "order 1135426177"),
SKUs and model numbers (``VW-1001``, ``WH-1000XM5``), prices, quantities, years,
dates and times without a birth cue, version strings (``1.2.3``, "version 1.2.3.4").

Detection runs on a normalised copy of the text (NFKC per character, every Unicode
decimal digit to ASCII, Unicode dashes to ``-``, zero-width characters dropped) whose
characters map back to the original positions, so full-width digits
(``４１１１…``), Arabic-Indic digits and zero-width tricks are caught while the
rest of the text is returned untouched.

Why not Microsoft Presidio: ``presidio-analyzer`` 2.2 was tried offline with a blank
spaCy pipeline. It installs (~390 MB with spaCy), but (1) without a trained spaCy
model it finds no person names at all, and downloading ``en_core_web_*`` is not
possible offline; (2) its URL/e-mail recogniser tries to fetch the public-suffix list
from the network on first use (tldextract), printing a connection traceback before it
falls back; (3) it takes about 10-12 ms per short message and 1.7 s to import, against
well under 1 ms here; (4) it flags ``jane.do`` inside an e-mail as a URL. So this
module keeps its own small, tested rules and no extra dependency.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["PIISpan", "find_pii", "luhn_ok", "mask_pii"]


@dataclass(frozen=True)
class PIISpan:
    """One piece of personal data: ``text[start:end]`` of the *original* text."""

    start: int
    end: int
    label: str
    text: str


# ------------------------------------------------------------------ normalising

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"}
_DASHES = set("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")


def _normalise(text: str) -> tuple[str, list[int] | None]:
    """A detection copy of ``text`` and, for each of its characters, the original index."""
    if text.isascii():
        return text, None
    out: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        if ch in _ZERO_WIDTH:
            continue
        if ch in _DASHES:
            piece = "-"
        elif (d := unicodedata.decimal(ch, None)) is not None:
            piece = str(d)
        elif ch.isspace() and ch not in "\n\r\t":
            piece = " "
        else:
            piece = unicodedata.normalize("NFKC", ch)
        for c in piece:
            out.append(c)
            idx.append(i)
    return "".join(out), idx


# ------------------------------------------------------------------ helpers


def luhn_ok(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if alt:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        alt = not alt
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    s = re.sub(r"\s", "", candidate).upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


_ID_WORDS = (
    r"(?:order|ordr|oder|purchase|purchas|invoice|bill|tracking|track|reference|ref|ticket|case|sku|model|item|"
    r"product|part|serial|confirmation|receipt|transaction|shipment|parcel|package|ean|upc|gtin|isbn|asin|"
    r"voucher|coupon|gift\s*card|rma|return|booking|reservation|membership|customer)s?"
)
# the number right after an id word ("order 123", "purchase no. 123", "theorder 123") or after
# an id word and a few words ending in number/no/id ("the order with the number 123")
_ID_CUE = re.compile(
    r"(?:" + _ID_WORDS + r"\b[\s:#.-]*(?:(?:number|num|no|nr|id|code)\b[\s:#.]*)?(?:is\s+|was\s+)?"
    r"|\b" + _ID_WORDS + r"\b[^0-9.!?\n]{0,25}\b(?:number|num|no|nr|id|code)\b[\s:#.]*(?:is\s+|was\s+)?"
    r"|#\s*)$",
    re.IGNORECASE,
)
_PHONE_CUE = re.compile(
    r"\b(?:call|phone|tel|telephone|mobile|cell|cellphone|whatsapp|sms|text|fax|ring|reach|contact|landline|"
    r"my\s+number)\b"
    r"[^0-9\n]{0,25}$",
    re.IGNORECASE,
)
_VERSION_CUE = re.compile(
    r"\b(?:v|ver|version|firmware|fw|build|release|update|patch|ios|ipados|macos|android|windows|os|app|"
    r"software|sw|driver|bios)\s*[:.]?\s*$",
    re.IGNORECASE,
)


def _before(n: str, start: int, window: int = 40) -> str:
    return n[max(0, start - window) : start]


def _digits(s: str) -> str:
    return re.sub(r"[^0-9]", "", s)


# ------------------------------------------------------------------ detectors
# Each detector gets the detection text (with already-found spans blanked out by
# NUL characters, which no pattern matches) and returns (start, end, label) spans.

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_EMAIL_OBFUSCATED = re.compile(
    r"(?<![\w.+-])[\w.+-]+\s*(?:\[at\]|\(at\)|\{at\}|<at>)\s*[\w-]+(?:\s*(?:\[dot\]|\(dot\)|\{dot\}|<dot>|\.)\s*[\w-]+)+",
    re.IGNORECASE,
)


_AT_WORD = re.compile(r"[\[({<]at[\])}>]", re.IGNORECASE)


def _find_email(n: str, found: list) -> list[tuple[int, int, str]]:
    out = [(m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(n)] if "@" in n else []
    if _AT_WORD.search(n):
        out += [(m.start(), m.end(), "EMAIL") for m in _EMAIL_OBFUSCATED.finditer(n)]
    return out


_IBAN = re.compile(r"\b[A-Za-z]{2}[0-9]{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,4})?\b")
_IBAN_CUE = re.compile(r"\biban\b[\s:#.-]*(?:is\s+)?$", re.IGNORECASE)


def _find_iban(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for m in _IBAN.finditer(n):
        if _iban_ok(m.group(0)) or _IBAN_CUE.search(_before(n, m.start(), 20)):
            out.append((m.start(), m.end(), "IBAN"))
    return out


_CARD = re.compile(r"(?<![\w#.,$£€¥-])[0-9]+(?:(?:[ ]{1,3}|[ ]{0,2}-[ ]{0,2})[0-9]+)*(?![\w-]|[.,][0-9])")
_CVV = re.compile(r"\b(?:cvv2?|cvc2?|cv2|csc|security\s+code)\b[\s:#.-]*(?:is\s+)?([0-9]{3,4})\b", re.IGNORECASE)


def _card_like(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _find_card(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for m in _CARD.finditer(n):
        groups = [(g.start(), g.end()) for g in re.finditer(r"[0-9]+", m.group(0))]
        base = m.start()
        if len(groups) == 1:
            digits = m.group(0)
            if _card_like(digits) and not _ID_CUE.search(_before(n, m.start())):
                out.append((m.start(), m.end(), "CARD_NUMBER"))
            continue
        # grouped digits: the longest run of whole groups that is a card
        texts = [m.group(0)[s:e] for s, e in groups]
        i = 0
        while i < len(groups):
            best, digits = None, ""
            for j in range(i, len(groups)):  # windows grow to at most 19 digits: linear overall
                digits += texts[j]
                if len(digits) > 19:
                    break
                if _card_like(digits):
                    best = j
            if best is None:
                i += 1
                continue
            out.append((base + groups[i][0], base + groups[best][1], "CARD_NUMBER"))
            i = best + 1
    for m in _CVV.finditer(n):
        out.append((m.start(1), m.end(1), "CARD_SECURITY_CODE"))
    return out


_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?![\w]|\.[0-9])"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")


def _find_ip(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for m in _IPV4.finditer(n):
        if not _VERSION_CUE.search(_before(n, m.start(), 20)):
            out.append((m.start(), m.end(), "IP_ADDRESS"))
    for m in _IPV6.finditer(n):
        cand = m.group(0).split("%")[0]
        if "::" not in cand and cand.count(":") != 7:
            continue
        if re.fullmatch(r"[0-9:]*", cand) and cand.count(":") < 3:
            continue  # a time such as 10::30 is never meant; keep short digit-only runs
        try:
            ipaddress.IPv6Address(cand)
        except ValueError:
            continue
        out.append((m.start(), m.end(), "IP_ADDRESS"))
    return out


_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:[0-9]{4}[./-][0-9]{1,2}[./-][0-9]{1,2}"
    r"|[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}"
    r"|[0-9]{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r"(?:,?\s+[0-9]{4})?"
    r"|" + _MONTHS + r"\s+[0-9]{1,2}(?:st|nd|rd|th)?(?:,?\s+[0-9]{4})?"
    r"|" + _MONTHS + r",?\s+[0-9]{4}"
    r"|(?:19|20)[0-9]{2})"
)
_DOB = re.compile(
    r"\b(?:born(?:\s+(?:on|in))?|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday)"
    r"(?:\s+(?:is|was))?\s*[:=-]?\s*(?:on\s+|the\s+)?(" + _DATE + r")(?![\w])",
    re.IGNORECASE,
)


def _find_dob(n: str, found: list) -> list[tuple[int, int, str]]:
    return [(m.start(1), m.end(1), "DATE_OF_BIRTH") for m in _DOB.finditer(n)]


_SSN = re.compile(r"(?<![\w-])(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![\w-])")
_SSN_CUE = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+number)?)\b[\s:#.-]*(?:is\s+)?([0-9]{3}\s?[0-9]{2}\s?[0-9]{4})\b", re.IGNORECASE
)
_NINO = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b"
)


def _find_national_id(n: str, found: list) -> list[tuple[int, int, str]]:
    out = [(m.start(), m.end(), "NATIONAL_ID") for m in _SSN.finditer(n) if not _ID_CUE.search(_before(n, m.start()))]
    out += [(m.start(1), m.end(1), "NATIONAL_ID") for m in _SSN_CUE.finditer(n)]
    out += [(m.start(), m.end(), "NATIONAL_ID") for m in _NINO.finditer(n)]
    return out


_STREET_TYPES_FULL = {
    "street",
    "avenue",
    "road",
    "boulevard",
    "lane",
    "drive",
    "terrace",
    "crescent",
    "parkway",
    "highway",
    "strasse",
    "straße",
}
_STREET_TYPES = (
    r"street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|"
    r"square|sq|close|crescent|cres|parkway|pkwy|highway|hwy|circle|cir|row|walk|mews|grove|gardens|"
    r"hill|park|trail|trl|plaza|alley|quay|wharf"
)
_UNIT = r"(?:(?:apt|apartment|flat|unit|suite|ste|room|floor|fl)\.?\s*#?\s*[0-9A-Za-z]{1,5}|#\s*[0-9]{1,5}[A-Za-z]?)"
_ADDRESS = re.compile(
    r"(?:\b" + _UNIT + r",?\s+)?"
    r"(?<![\w#$£€.,/-])[0-9]{1,5}[A-Za-z]?(?:-[0-9]{1,5})?,?\s+"
    r"((?:[^\W\d_][\w'’.-]*\s+){1,4}?)"
    r"(" + _STREET_TYPES + r")\b\.?(?-i:(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?)"
    r"(?:,?\s*" + _UNIT + r"\b)?",
    re.IGNORECASE,
)
_ADDRESS_STOP = {
    "on",
    "at",
    "in",
    "for",
    "to",
    "of",
    "with",
    "from",
    "near",
    "by",
    "and",
    "or",
    "the",
    "a",
    "an",
    "my",
    "your",
    "our",
    "this",
    "that",
    "is",
    "are",
    "was",
    "per",
    "each",
    "every",
    "x",
    "items",
    "pieces",
    "pcs",
    "units",
    "days",
    "weeks",
    "hours",
    "minutes",
    "times",
}
_ADDRESS_DE = re.compile(
    r"\b[^\W\d_][\w-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm)\s+[0-9]{1,4}[a-z]?\b", re.IGNORECASE
)
_PO_BOX = re.compile(r"\b(?:p\.?\s?o\.?\s*box|post\s+office\s+box)\s*#?\s*[0-9]{1,6}\b", re.IGNORECASE)


def _find_address(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for m in _ADDRESS.finditer(n):
        words = m.group(1).split()
        stype = m.group(2)
        if any(w.lower().strip(".'’") in _ADDRESS_STOP for w in words):
            continue
        capitalised = all(w[0].isupper() for w in words)
        if stype.lower() in _STREET_TYPES_FULL:
            if not (capitalised or stype.islower() or stype.istitle()):
                continue
        elif not (capitalised and stype[0].isupper()):
            continue  # abbreviations and everyday words (Way, Park, Hill) only when capitalised
        out.append((m.start(), m.end(), "ADDRESS"))
    out += [(m.start(), m.end(), "ADDRESS") for m in _ADDRESS_DE.finditer(n)]
    out += [(m.start(), m.end(), "ADDRESS") for m in _PO_BOX.finditer(n)]
    return out


_UK_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR) ?[0-9][A-Z]{2}\b", re.IGNORECASE)
_US_ZIP = re.compile(r"(?<![\w#$£€.,/-])[0-9]{5}(?:-[0-9]{4})?(?![\w-]|[.,][0-9])")
_US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
_STATE_BEFORE = re.compile(r"\b(?:" + "|".join(_US_STATES) + r")\.?,?\s*$")
_POSTCODE_CUE = re.compile(
    r"\b(?:post\s*code|postal\s*code|zip(?:\s*code)?|zipcode|plz|address|ship(?:ping)?\s+to|deliver(?:y)?\s+to|"
    r"send\s+(?:it\s+)?to|live\s+(?:at|in)|moved\s+to|located\s+(?:at|in)|area)\b[^.!?\n]{0,30}$",
    re.IGNORECASE,
)


def _find_postcode(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    address_ends = [e for _, e, label in found if label == "ADDRESS"]

    def near_address(start: int) -> bool:
        if any(0 <= start - e <= 40 and "\n" not in n[e:start] for e in address_ends):
            return True
        return bool(_POSTCODE_CUE.search(_before(n, start, 50)))

    for m in _UK_POSTCODE.finditer(n):
        if near_address(m.start()):
            out.append((m.start(), m.end(), "POSTCODE"))
    for m in _US_ZIP.finditer(n):
        if near_address(m.start()) or _STATE_BEFORE.search(_before(n, m.start(), 6)):
            out.append((m.start(), m.end(), "POSTCODE"))
    return out


_PHONE = re.compile(
    r"(?<![\w#$£€¥.,/:+-])(?:(?:\+|\b00)[ ]?)?\(?[0-9]+\)?"
    r"(?:(?:[ ]{1,2}|[ ]?[.-][ ]?)\(?[0-9]+\)?|\([0-9]+\)|(?<=\))[0-9]+)*"
    r"(?![\w]|[.,/:][0-9]|-[0-9])"
)
_NOT_PHONE = [
    re.compile(r"[0-9]{4}[./-][0-9]{1,2}[./-][0-9]{1,2}"),  # ISO date
    re.compile(r"[0-9]{1,2}[./-][0-9]{1,2}[./-](?:[0-9]{2}|[0-9]{4})"),  # d/m/y date
    re.compile(r"(?:19|20)[0-9]{2} ?- ?(?:19|20)[0-9]{2}"),  # year range
    re.compile(r"[0-9]+\.[0-9]{1,2}"),  # a decimal
]


_NATIONAL_FORMAT = re.compile(r"0[1-9][0-9]{8,9}")  # 07700900123, 0201234567


def _find_phone(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for m in _PHONE.finditer(n):
        raw = m.group(0)
        # an unmatched bracket at either end belongs to the surrounding text
        start, end = m.start(), m.end()
        if raw.endswith(")") and raw.count("(") < raw.count(")"):
            end -= 1
        if raw.startswith("(") and raw.count("(") > raw.count(")"):
            start += 1
        raw = n[start:end]
        digits = _digits(raw)
        if not 7 <= len(digits) <= 15:
            continue
        if any(p.fullmatch(raw.strip()) for p in _NOT_PHONE):
            continue
        if re.fullmatch(r"[0-9]+(?:\.[0-9]+)+", raw) and (
            re.search(r"(?:^|\.)[0-9](?:\.|$)", raw) or _VERSION_CUE.search(_before(n, start, 20))
        ):
            continue  # a version number such as 120.0.6099.109
        groups = re.findall(r"[0-9]+", raw)
        if (
            len(groups) <= 3
            and all(len(g) == 4 and 1900 <= int(g) <= 2099 for g in groups)
            and not (_PHONE_CUE.search(_before(n, start)))
        ):
            continue  # years: "Moneyball 2012 (2009)", "1984 1985"
        bare = raw.isdigit()
        international = raw.startswith("+") or (raw.startswith("00") and raw[2:3] != "0" and not bare)
        before = _before(n, start)
        id_cue, phone_cue = _ID_CUE.search(before), _PHONE_CUE.search(before)
        if id_cue and not international and not (phone_cue and phone_cue.start() > id_cue.start()):
            continue  # an order, tracking or product number (unless a phone word is nearer)
        if bare and not international and not phone_cue and not _NATIONAL_FORMAT.fullmatch(raw):
            continue  # bare digits with no phone word: a quantity, order id or code
        out.append((start, end, "PHONE"))
    return out


_NAME_WORD = r"[^\W\d_][\w'’-]*"
_STRONG_NAME_CUE = re.compile(
    r"(?:\bmy\s+(?:full\s+|first\s+|last\s+|given\s+|family\s+|maiden\s+|sur)?name(?:'s|’s|\s+is|\s*:)"
    r"|(?:^|(?<=[\n;.!?]))\s*(?:full\s+|first\s+|last\s+)?name\s*:)\s*",
    re.IGNORECASE,
)
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|mr|mrs|ms|dr)\.?\s+(?=[A-Z])")  # not "MX Master"
_INTRO = r"(?:this\s+is|it's|it’s|i\s+am|i'm|i’m|im|my\s+name's|my\s+name’s)"
_PAUSE = r"\s*(?:$|[,.;:!?)\n]|-\s|(?:and|from|here|speaking|calling|again|by\s+the\s+way|btw)\b)"
# (cue, what must follow the capitalised name)
_WEAK_NAME_CUES = [
    # "Hi, this is Ann Lee." / "Hello I'm Tom and ..."
    (
        re.compile(
            r"(?:^|(?<=[\n.!?,;:]))\s*(?:hi|hello|hey|hiya|good\s+(?:morning|afternoon|evening))\b[,!.]*\s*"
            + _INTRO
            + r"\s+",
            re.IGNORECASE,
        ),
        re.compile(_PAUSE, re.IGNORECASE),
    ),
    # "I'm Sarah, ..." at the start of a sentence
    (re.compile(r"(?:^|(?<=[\n.!?;:]))\s*(?:i\s+am|i'm|i’m)\s+", re.IGNORECASE), re.compile(_PAUSE, re.IGNORECASE)),
    # "this is John speaking" / "this is Ann from Leeds"
    (
        re.compile(r"\bthis\s+is\s+", re.IGNORECASE),
        re.compile(r"\s+(?:speaking|here|from|calling|again)\b", re.IGNORECASE),
    ),
    # "you can call me Bob."
    (re.compile(r"\bcall\s+me\s+", re.IGNORECASE), re.compile(_PAUSE, re.IGNORECASE)),
    # a sign-off at the end: "Kind regards, Ann Lee"
    (
        re.compile(
            r"(?:^|(?<=[\n.!?,]))\s*(?:regards|kind\s+regards|best\s+regards|best|best\s+wishes|cheers|thanks|"
            r"thank\s+you|many\s+thanks|sincerely|yours\s+sincerely|yours|br)\s*[,.!-]?\s+",
            re.IGNORECASE,
        ),
        re.compile(r"\s*[.!]?\s*(?:$|\n)"),
    ),
]
_NOT_NAMES = {
    # function words and chat words that follow "this is" / "I'm" capitalised
    "i",
    "a",
    "an",
    "the",
    "my",
    "your",
    "our",
    "it",
    "its",
    "this",
    "that",
    "not",
    "very",
    "so",
    "really",
    "just",
    "also",
    "still",
    "here",
    "there",
    "about",
    "regarding",
    "re",
    "urgent",
    "please",
    "sorry",
    "sure",
    "okay",
    "ok",
    "yes",
    "no",
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank",
    "again",
    "looking",
    "trying",
    "having",
    "going",
    "interested",
    "writing",
    "calling",
    "contacting",
    "reaching",
    "unable",
    "happy",
    "unhappy",
    "sad",
    "angry",
    "confused",
    "frustrated",
    "disappointed",
    "wondering",
    "new",
    "back",
    "done",
    "fine",
    "good",
    "great",
    "in",
    "on",
    "at",
    "for",
    "from",
    "with",
    "and",
    "or",
    "but",
    "to",
    "of",
    "is",
    "was",
    "be",
    "all",
    "what",
    "who",
    "how",
    "when",
    "why",
    "where",
    "which",
    "customer",
    "support",
    "order",
    "team",
    "admin",
    "service",
    "sir",
    "madam",
    "everyone",
    "guys",
    "you",
    "me",
    "we",
    "they",
    "he",
    "she",
    # sign-offs after "thanks" / "cheers"
    "bye",
    "goodbye",
    "cya",
    "later",
    "mate",
    "buddy",
    "friend",
    "folks",
    "everybody",
    "man",
    "dude",
    "lol",
    # days and months ("call me Monday")
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "tonight",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
}
_NAME_CONNECTORS = {"van", "von", "de", "da", "del", "della", "di", "du", "la", "le", "bin", "al", "ibn", "o'", "mc"}


def _name_words(n: str, pos: int, strong: bool) -> int:
    """End of the name that starts at ``pos`` (``pos`` when there is none)."""
    end, count, lowercase_ok = pos, 0, strong
    for wm in re.compile(r"[ \t]*(" + _NAME_WORD + r")").finditer(n, pos):
        if wm.start() != end:
            break
        word = wm.group(1)
        low = word.lower()
        if low in _NOT_NAMES:
            break
        if not word[0].isupper():
            if count and low in _NAME_CONNECTORS:
                pass
            elif not (lowercase_ok and count < 2):
                break
        end = wm.end()
        count += 1
        if count == 3:
            break
    # a trailing connector ("Anna de") is not part of the name
    while count and n[pos:end].split()[-1].lower() in _NAME_CONNECTORS:
        end = pos + n[pos:end].rstrip().rfind(" ")
        count -= 1
    return end if count else pos


def _find_name(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for cue, strong in ((_STRONG_NAME_CUE, True), (_HONORIFIC, False)):
        for m in cue.finditer(n):
            if not strong and not n[m.end() : m.end() + 1].isupper():
                continue
            end = _name_words(n, m.end(), strong=strong)
            if end > m.end():
                out.append((m.end(), end, "NAME"))
    for cue, follow in _WEAK_NAME_CUES:
        for m in cue.finditer(n):
            start = m.end()
            if start >= len(n) or not n[start].isupper():
                continue
            end = _name_words(n, start, strong=False)
            if end > start and follow.match(n, end):
                out.append((start, end, "NAME"))
    return out


_DETECTORS = (
    _find_email,
    _find_iban,
    _find_card,
    _find_ip,
    _find_dob,
    _find_national_id,
    _find_address,
    _find_postcode,
    _find_phone,
    _find_name,
)


def find_pii(text: str) -> list[PIISpan]:
    """Every piece of personal data in ``text``, in order, as spans of the original text."""
    n, idx = _normalise(text)
    found: list[tuple[int, int, str]] = []
    for detect in _DETECTORS:
        new: list[tuple[int, int, str]] = []
        for s, e, label in sorted(detect(n, found), key=lambda x: (x[0], -(x[1] - x[0]))):
            # strip surrounding blanks and skip anything overlapping an earlier find
            while s < e and n[s].isspace():
                s += 1
            while e > s and n[e - 1].isspace():
                e -= 1
            if s >= e or "\x00" in n[s:e] or any(s < ne and ns < e for ns, ne, _ in new):
                continue
            new.append((s, e, label))
        for s, e, _ in new:
            n = n[:s] + "\x00" * (e - s) + n[e:]
        found.extend(new)
    spans = []
    for s, e, label in sorted(found):
        os_, oe = (s, e) if idx is None else (idx[s], idx[e - 1] + 1)
        spans.append(PIISpan(os_, oe, label, text[os_:oe]))
    return spans


def mask_pii(text: str) -> str:
    """Return ``text`` with personal data replaced by typed placeholders such as ``<EMAIL>``.

    Only the personal data changes; every other character is returned as given.
    """
    if not text:
        return text
    parts, last = [], 0
    for span in find_pii(text):
        if span.start < last:
            continue
        parts.append(text[last : span.start])
        parts.append(f"<{span.label}>")
        last = span.end
    parts.append(text[last:])
    return "".join(parts)
