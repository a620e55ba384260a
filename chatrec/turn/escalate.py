"""Escalation: when a turn should go to a person, and what that person needs to read first.

A turn escalates (route ``handoff``) when any of these holds:

- the router's escalation model (logistic regression on the message's embedding plus a few
  typography and keyword *features*, trained on :data:`chatrec.turn.route_examples.ESCALATION`
  and calm logged messages) gives ``router.escalation_threshold`` or more: complaints,
  anger, urgency;
- the router's best template is of an intent in ``router.escalate_intents`` (complaint);
- repeated failure: the customer repeats an earlier message of this conversation (word
  overlap >= ``router.repeat_similarity``), or gave a thumbs-down earlier in it.

:func:`handoff_summary` writes a few lines for the human agent (why, the topic, what the
customer said), put in the turn's trace under ``route.handoff_summary``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatrec.turn.state import normalise


@dataclass
class Escalation:
    escalate: bool
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", normalise(text)))


def repeats(text: str, history: list[dict[str, str]], min_overlap: float) -> str | None:
    """The earlier customer message ``text`` repeats (Jaccard of word sets), or ``None``.
    Messages of fewer than three words ("ok", "thanks") never count."""
    words = _words(text)
    if len(words) < 3:
        return None
    for turn in reversed(history):
        if turn.get("role") != "user":
            continue
        other = _words(turn.get("content", ""))
        if len(other) >= 3 and len(words & other) / len(words | other) >= min_overlap:
            return turn["content"]
    return None


def assess(
    text: str,
    history: list[dict[str, str]],
    score: float,
    threshold: float,
    intent: str | None,
    escalate_intents: list[str],
    negative_feedback: int = 0,
    repeat_similarity: float = 0.8,
) -> Escalation:
    """Whether to escalate, and why (see the module docstring)."""
    reasons = []
    if score >= threshold:
        reasons.append(f"complaint, anger or urgency (escalation score {score:.2f})")
    if intent and intent in escalate_intents:
        reasons.append(f"intent {intent}")
    if repeats(text, history, repeat_similarity) is not None:
        reasons.append("asked the same question again")
    if negative_feedback:
        reasons.append("thumbs-down earlier in the conversation")
    return Escalation(bool(reasons), reasons, score)


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def handoff_summary(
    text: str, history: list[dict[str, str]], reasons: list[str], topic: str | None, max_messages: int = 3
) -> str:
    """A short note for the human agent taking over: why, the topic, the customer's last messages
    and the assistant's last reply (all already PII-masked by the guard)."""
    said = [h["content"] for h in history if h.get("role") == "user"][-(max_messages - 1) :] if max_messages > 1 else []
    said.append(text)
    replied = next((h["content"] for h in reversed(history) if h.get("role") == "assistant"), None)
    lines = [
        "Handoff: " + ("; ".join(reasons) if reasons else "the customer asked for a person") + ".",
        "Topic: " + (topic.replace("_", " ") if topic else "not recognised") + ".",
        "Customer said: " + " / ".join(f'"{_clip(m)}"' for m in said),
    ]
    if replied:
        lines.append(f'Last assistant reply: "{_clip(replied)}"')
    return "\n".join(lines)
