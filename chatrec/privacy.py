"""Masking personal data before anything is logged, indexed or trained on.

Typed placeholders replace e-mail addresses, payment-card numbers (only digit
runs that pass the Luhn check), phone numbers, IBANs, IP addresses and street
addresses. Input is NFKC-normalised first so full-width digits and odd spacing
do not slip through.
"""

from __future__ import annotations

import re
import unicodedata

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){3,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
CARD_CANDIDATE = re.compile(r"(?<![\w#-])(?:\d[ -]?){12,18}\d(?![\w-])")
PHONE = re.compile(r"(?<![\w#-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w-])")
IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
ADDRESS = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Square)\b\.?",
)


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


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "<CARD_NUMBER>" if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)


def _phone(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    raw = m.group(0)
    if len(digits) < 7 or len(digits) > 15:
        return raw
    if re.fullmatch(r"\d{4}", raw.strip()) or re.fullmatch(r"\d+\.\d+", raw.strip()):
        return raw  # a year or a decimal number
    if not re.search(r"[\s.()+-]", raw) and len(digits) < 10:
        return raw  # a bare short number (quantity, order id)
    return "<PHONE>"


def mask_pii(text: str) -> str:
    """Return ``text`` with personal data replaced by typed placeholders."""
    text = unicodedata.normalize("NFKC", text)
    text = EMAIL.sub("<EMAIL>", text)
    text = IBAN.sub("<IBAN>", text)
    text = CARD_CANDIDATE.sub(_card, text)
    text = IPV4.sub("<IP_ADDRESS>", text)
    text = ADDRESS.sub("<ADDRESS>", text)
    text = PHONE.sub(_phone, text)
    return text
