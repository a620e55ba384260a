"""Metric functions: ranking metrics per turn, ROUGE-L, intra-list diversity, reply quality (template facts kept,
invented entities, clarifying questions).

Each returns plain numbers; the runner sums them per conversation and the summary
bootstraps over conversations.
"""

from __future__ import annotations

import math
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

# a template's facts and which a reply lost: chatrec/turn/facts.py (the live gate uses them too)

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
