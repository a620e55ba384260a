"""The facts of a filled answer template that a reply must keep unchanged (amounts, times, order
numbers, contact details, policy terms), and which of them a reply leaves out.

The live gate (:mod:`chatrec.turn.release`) completes a reply cut short with the template's
sentences that carry the facts it lost; the evaluation (``chatrec eval --generate``) scores fact
preservation with the same functions.
"""

from __future__ import annotations

import re

from chatrec.turn.claims import extract_claims

__all__ = ["POLICY_TERMS", "missing_facts", "missing_sentences", "template_facts"]

_CHECKED_CLAIMS = ("money", "percent", "phone", "email", "url", "code", "duration", "date")
_ORDER_NO = re.compile(r"#\s?[A-Z]{2,4}-?\d{4,}\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
# words that state a policy: a service reply that leaves one out changes what the customer is promised
POLICY_TERMS = (
    "free",
    "prepaid",
    "business day",
    "unopened",
    "original packaging",
    "receipt",
    "non-refundable",
    "store credit",
    "restocking fee",
    "warranty",
    "price match",
    "refund",
)


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def template_facts(template_text: str) -> list[str]:
    """The facts of a filled answer template a reply must keep unchanged: amounts, percentages,
    phone numbers, e-mails, links, codes, times and dates (as the grounding check reads them), order
    numbers, every other number, and the policy terms it uses (:data:`POLICY_TERMS`)."""
    claims = [c for c in extract_claims(template_text) if c.kind in _CHECKED_CLAIMS]
    facts = [c.text for c in claims] + _ORDER_NO.findall(template_text)
    covered = _numbers(" ".join(facts))
    facts += [n for n in sorted(_numbers(template_text)) if n not in covered]
    low = template_text.lower()
    facts += [t for t in POLICY_TERMS if re.search(rf"\b{re.escape(t)}", low)]
    return list(dict.fromkeys(facts))


def missing_facts(template_text: str, reply: str) -> tuple[list[str], int]:
    """``(missing, total)``: the template's facts (:func:`template_facts`) the reply does not state
    unchanged (a claim counts when the reply makes the same claim, e.g. "$9.99" = "9.99 dollars"; a
    number or term when the reply has it) and how many facts the template has."""
    facts = template_facts(template_text)
    said = {(c.kind, str(c.value)) for c in extract_claims(reply) if c.kind in _CHECKED_CLAIMS}
    template_claims = {c.text: (c.kind, str(c.value)) for c in extract_claims(template_text)}
    numbers, low = _numbers(reply), reply.lower()
    missing = []
    for fact in facts:
        if fact in template_claims:
            ok = template_claims[fact] in said or fact in reply
        elif _ORDER_NO.fullmatch(fact):
            ok = fact.replace(" ", "") in reply.replace("# ", "#")
        elif _NUMBER.fullmatch(fact):
            ok = fact in numbers
        else:
            ok = re.search(rf"\b{re.escape(fact)}", low) is not None
        if not ok:
            missing.append(fact)
    return missing, len(facts)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # not the dot of "voltway.example" or "$9.99"


def missing_sentences(template_text: str, reply: str) -> str:
    """The template's sentences that state a fact ``reply`` lacks, in template order ("" if none)."""
    missing, _ = missing_facts(template_text, reply)
    if not missing:
        return ""
    picked = []
    for sentence in _SENTENCE_END.split(template_text.strip()):
        low = sentence.lower()
        if sentence and any(f in sentence or f.lower() in low for f in missing):
            picked.append(sentence)
    return " ".join(picked)
