"""Deciding what a turn is: a service question, a recommendation request, both, a handoff,
chitchat, or out of scope.

:func:`decide_learned` decides from the learned router's prediction
(:mod:`chatrec.turn.classify`) and the escalation check (:mod:`chatrec.turn.escalate`); it is
the default. :func:`decide` is the older keyword rule set, used when ``router.enabled`` is
false (and kept for comparison in ``benchmarks/router.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from chatrec.turn.classify import Prediction
from chatrec.turn.escalate import Escalation
from chatrec.turn.state import DialogueState, normalise

Route = Literal["service", "recommend", "both", "handoff", "chitchat", "out_of_scope"]

_HANDOFF = re.compile(
    r"\b(?:human|real person|live agent|"
    r"(?:talk|speak|chat) (?:to|with) (?:a |an |someone|somebody|person|agent|representative)|"
    r"representative|operator|manager)\b"
)
_RECOMMEND = re.compile(
    r"\b(?:recommend\w*|suggest\w*|looking for|look for|searching for|shopping for|in the market for|need (?:a|an|new)|"
    r"want (?:a|an|some|new|to buy)|buy(?:ing)? (?:a|an|some|new)|gift|present for|"
    r"which \w+ (?:should|would)|best \w+|options?|"
    r"alternatives?|show me|anything (?:else|cheaper|similar)|something (?:else|cheaper|similar)|cheaper|"
    r"(?:different|another|other) brand|not that brand|what (?:else )?goes? with|go with|compatible|upgrade|"
    r"what(?:'s| is) a good|which \w+ (?:fits?|works?)|any (?:good )?\w+ for|ideas?|"
    r"what (?:should|would) (?:i|you) (?:get|buy|suggest)|"
    r"budget.friendly|other than|rather avoid|aren'?t)\b"
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|good (?:morning|afternoon|evening)|thanks?(?: you)?|thank you|ok(?:ay)?|cool|great|bye)\b"
)


@dataclass
class RouteDecision:
    route: Route
    template_id: str | None
    template_similarity: float  # the keyword router's template similarity, or the learned router's confidence
    reasons: list[str]
    clarify: list[str] = field(default_factory=list)  # out of scope: the intents to ask between
    handoff_summary: str | None = None  # handoff: a note for the human agent


def decide_learned(
    pred: Prediction,
    state: DialogueState,
    constraint_changed: bool,
    escalation: Escalation,
    handoff_template: str | None,
    summary: Callable[[list[str]], str],
) -> RouteDecision:
    """The route from the learned router's prediction, the escalation check, and one piece of
    context: after a recommendation, a message that only changes the constraints ("cheaper",
    "not that brand") refines it."""
    reasons = [f"{pred.label} p={pred.confidence:.2f}", *pred.why]
    if escalation.escalate or pred.route == "handoff":
        why = escalation.reasons if escalation.escalate else ["asks for a person"]
        own = pred.route == "handoff" or (pred.intent and f"intent {pred.intent}" in escalation.reasons)
        tid = (pred.template_id if own else None) or handoff_template
        return RouteDecision("handoff", tid, pred.confidence, reasons + why, handoff_summary=summary(why))
    if pred.route in ("out_of_scope", "chitchat") and constraint_changed and state.last_recommended:
        return RouteDecision("recommend", None, pred.confidence, reasons + ["refines the last recommendation"])
    if pred.route == "out_of_scope":
        unsure = (
            f"unsure between {' and '.join(pred.clarify)}" if pred.clarify else "no answer fits with enough confidence"
        )
        return RouteDecision("out_of_scope", None, pred.confidence, reasons + [unsure], clarify=pred.clarify)
    if pred.route == "recommend":
        return RouteDecision("recommend", None, pred.confidence, reasons + ["asks for items"])
    return RouteDecision(pred.route, pred.template_id, pred.confidence, reasons)  # type: ignore[arg-type]


def decide(
    message: str,
    state: DialogueState,
    top_template: tuple[str, float] | None,
    template_intent: str | None,
    constraint_changed: bool,
    min_sim: float,
    both_sim: float = 0.5,
    recommend_vote: float = 0.0,
) -> RouteDecision:
    """``recommend_vote`` is how strongly past requests answered with items resemble this message."""
    norm = normalise(message)
    tid, sim = top_template if top_template else (None, 0.0)
    reasons = [f"template {tid} similarity {sim:.2f}"] if tid else []
    if _HANDOFF.search(norm) or (template_intent == "contact_human" and sim >= min_sim + 0.1):
        return RouteDecision(
            "handoff", tid if template_intent == "contact_human" else None, sim, reasons + ["asks for a person"]
        )
    wants_items = bool(_RECOMMEND.search(norm))
    if not wants_items and recommend_vote >= max(min_sim, sim):
        wants_items = True
        reasons.append(f"resembles past recommendation requests ({recommend_vote:.2f})")
    if not wants_items and constraint_changed and state.last_recommended:
        wants_items = True
        reasons.append("refines the last recommendation")
    if wants_items:
        reasons.append("asks for items")
        if (
            tid
            and sim >= both_sim
            and sim >= recommend_vote - 0.1
            and template_intent not in {"thanks", "greeting", "add_to_cart"}
        ):
            return RouteDecision("both", tid, sim, reasons)
        return RouteDecision("recommend", None, sim, reasons)
    if tid and sim >= min_sim:
        return RouteDecision("service", tid, sim, reasons)
    if _GREETING.search(norm) or len(norm.split()) <= 3:
        return RouteDecision("chitchat", None, sim, reasons + ["greeting or too short"])
    return (
        RouteDecision("service", tid, sim, reasons + ["low-confidence template"])
        if tid
        else RouteDecision("chitchat", None, sim, reasons)
    )
