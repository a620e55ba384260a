"""Metric functions: ranking metrics per turn, ROUGE-L, intra-list diversity, reply quality (template facts kept,
invented entities, clarifying questions).

Each returns plain numbers; the runner sums them per conversation and the summary
bootstraps over conversations.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

KS = (1, 5, 10, 50)
DEPTH = 50


def rank_metrics(ranked: list[str], gold: list[str], prefix: str) -> dict[str, tuple[float, float]]:
    """Per-turn (numerator, denominator) pairs: recall is micro over gold items, NDCG/MRR per turn."""
    gold_set = set(gold)
    if not gold_set:
        return {}
    out: dict[str, tuple[float, float]] = {}
    pos = {item: r for r, item in enumerate(ranked[:DEPTH]) if item in gold_set}
    first = min(pos.values()) if pos else None
    for k in KS:
        hits = sum(1 for r in pos.values() if r < k)
        out[f"{prefix}.recall@{k}"] = (hits, len(gold_set))
        dcg = sum(1.0 / math.log2(r + 2) for r in pos.values() if r < k)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(gold_set))))
        out[f"{prefix}.ndcg@{k}"] = (dcg / idcg, 1)
        out[f"{prefix}.mrr@{k}"] = (1.0 / (first + 1) if first is not None and first < k else 0.0, 1)
    return out


def rouge_l(a: str, b: str) -> float:
    from rouge_score import rouge_scorer

    global _SCORER
    if _SCORER is None:
        _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return float(_SCORER.score(b, a)["rougeL"].fmeasure)


_SCORER: Any = None


def intra_list_diversity(ids: list[str], vectors: dict[str, np.ndarray]) -> float | None:
    """Mean pairwise cosine distance of the listed items' embeddings."""
    vs = [vectors[i] for i in ids if i in vectors]
    if len(vs) < 2:
        return None
    m = np.stack(vs)
    sims = m @ m.T
    n = len(vs)
    return float(1.0 - (sims.sum() - n) / (n * (n - 1)))


# ---------------------------------------------------------------- reply quality (issue 15, item 5)

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
    from chatrec.turn.claims import extract_claims

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
    from chatrec.turn.claims import extract_claims

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


# the grounding check's problems that say a text made something up, by kind (chatrec/turn/claims.py)
INVENTED = {
    "names a person": "name",
    "gives a phone number": "phone",
    "gives a email": "email",
    "gives a link": "url",
    "gives a date": "date",
    "quotes a price": "amount",
    "quotes an amount": "amount",
    "promises a time": "time",
    "gives a code": "code",
    "gives a deal": "amount",
}


def invented_entities(problems: list[str]) -> list[str]:
    """The kinds of invented entity (staff names, phone numbers, e-mails, links, dates, amounts,
    times, codes) among a grounding report's ``problems``: things no template, shop fact or listed
    item states."""
    return [kind for p in problems for prefix, kind in INVENTED.items() if p.startswith(prefix)]


def logged_agent_asks(template_text: str | None, agent_text: str) -> bool:
    """Did the logged agent ask a clarifying question? It answered with a template that asks for
    the order number, or with a free text (no template) ending in a question (the definition of
    benchmarks/clarify_policy.py)."""
    from chatrec.turn.clarify import asks_order_number

    if template_text is not None:
        return asks_order_number(template_text)
    return agent_text.rstrip().endswith("?")


def clarify_scores(policy_asks: bool, logged_asks: bool) -> dict[str, tuple[float, float]]:
    """Per-turn (numerator, denominator) pairs of asking's precision and recall against the logs."""
    return {
        "clarify.precision": (float(policy_asks and logged_asks), float(policy_asks)),
        "clarify.recall": (float(policy_asks and logged_asks), float(logged_asks)),
    }
