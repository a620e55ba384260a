"""Release a streamed draft sentence by sentence, only once it has passed the check.

The model's draft is buffered. At every sentence end (``.``, ``!``, ``?`` or ``…`` before
whitespace, or a line end) the whole draft so far is checked with the turn's full
grounding check (:func:`chatrec.turn.ground.check_text`: claims, listed items, prompt
echo, slots, and the whole-reply checks: template similarity, a listed item cited,
repetition):

- it passes: the new sentences are released (sent to the user); the first release also
  waits for ``min_words`` words, so "Sure!" alone is held;
- it fails with a *lasting* problem (a false claim, an unlisted item, a prompt echo):
  generation stops;
- it fails otherwise (not yet close to the template, nothing cited yet): nothing is
  released yet, and generation goes on; but once something was released, any failure
  stops generation.

When the draft ends (or is stopped) the rest is checked the same way; the reply is then
the released text plus that rest if it passes, else the released text alone, or, when
nothing was released, the grounded fallback (released whole). So every released piece
is a prefix of the reply, every prefix ever released passed the full check, and the
concatenation of the released pieces *is* the reply: nothing sent is ever withdrawn.
A reply cut short is completed with the answer template's sentences that carry the facts it
lost (a link, a time, an amount: :func:`chatrec.turn.facts.missing_sentences`), when the
whole then passes the check.
The price is latency: the first words wait for the first sentence that passes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from chatrec.kb import KnowledgeBase
from chatrec.turn.claims import Facts
from chatrec.turn.facts import missing_sentences
from chatrec.turn.ground import GroundingReport, check_text, fallback_text, prompt_words
from chatrec.turn.wording import turn_wording

if TYPE_CHECKING:
    from chatrec.turn.plan import TurnPlan

__all__ = ["NO_MATCH", "Release", "turn_gate"]

NO_MATCH = "I could not find an in-stock item that fits all of that. Could you relax one of the conditions?"

_END = re.compile(r"[.!?…]+[\"'”’)\]*]*(?=\s)|(?=\n)")


class Release:
    """One turn's gate between the model's draft and what the user sees.

    ``check`` is the turn's grounding check of a text; ``fallback`` the reply when no part
    of the draft passes; ``forced`` (a reason) decides for the fallback before any draft."""

    def __init__(
        self,
        check: Callable[[str], GroundingReport],
        fallback: str,
        *,
        min_words: int = 4,
        forced: str | None = None,
        complete: Callable[[str], str] | None = None,
    ):
        self.check, self.fallback, self.min_words = check, fallback, min_words
        self.complete = complete  # a released reply cut short -> the answer template's sentences it lost
        self.completed = ""  # what that added
        self.draft = ""  # everything the model wrote
        self.sent = ""  # released so far: always a prefix of the reply
        self.forced = forced  # why no draft is wanted at all (the fallback is the reply by design)
        self.done = forced is not None  # no more draft is wanted
        self.problems: list[str] = [forced] if forced else []  # why the draft was cut or replaced
        self.checks = 0
        self.used_fallback = False
        self.reply: str | None = None
        self._pos = 0  # sentence ends before this offset of the draft have been checked

    def feed(self, piece: str) -> str:
        """Take the next piece of the draft; return the text that may now be sent ("" if none)."""
        if self.done:
            return ""
        self.draft += piece
        text = self.draft.lstrip()
        offset = len(self.draft) - len(text)
        out = []
        for m in _END.finditer(text, max(0, self._pos - offset)):
            end = m.end()
            if end + offset <= self._pos:
                continue
            self._pos = end + offset
            released = self._consider(text[:end].rstrip(), complete=False)
            if released is None:
                break
            out.append(released)
        return "".join(out)

    def finish(self) -> str:
        """The draft has ended: decide the reply; return the rest of it to send."""
        if self.reply is not None:
            return ""
        rest = self._consider(self.draft.strip(), complete=True) if not self.done else None
        self.done = True
        if self.sent:
            self.reply = self.sent
            if self.problems and self.complete and (extra := self.complete(self.sent)):
                # the draft was cut after earlier sentences went out: what they left unsaid of the
                # template (a link, a time, an amount) follows, so the customer still gets every fact
                whole = f"{self.sent.rstrip()} {extra}"
                if self.check(whole).ok:
                    self.completed = whole[len(self.sent) :]
                    self.reply = self.sent = whole
                    return (rest or "") + self.completed
            return rest or ""
        self.used_fallback = True
        self.reply = self.sent = self.fallback
        return self.fallback

    @property
    def cut(self) -> bool:
        """Part of the draft failed after earlier sentences had been released."""
        return not self.used_fallback and bool(self.problems) and self.draft.strip() != self.reply

    def _consider(self, candidate: str, complete: bool) -> str | None:
        """Check ``candidate`` (the draft up to a sentence end); the text released, "" when it
        is held, ``None`` when generation should stop."""
        if candidate == self.sent or not candidate:
            return ""
        self.checks += 1
        rep = self.check(candidate)
        if rep.ok and (self.sent or complete or len(candidate.split()) >= self.min_words):
            released, self.sent = candidate[len(self.sent) :], candidate
            return released
        if rep.ok:
            return ""  # too short to start with
        if rep.lasting or self.sent or complete:
            self.problems = rep.problems
            self.done = True
            return None
        return ""


def turn_gate(
    plan: TurnPlan, kb: KnowledgeBase, similarity: Callable[[str, str], float], min_similarity: float
) -> Release:
    """The gate of one planned turn, as the live chat and the evaluation both use it: the turn's
    full grounding check (claims against the listed items, the filled template and the shop
    facts; no unlisted items; no prompt echo; close to the template) and its grounded fallback
    (the filled template plus the list)."""
    decision, recs = plan.decision, plan.recs
    facts = Facts.of(kb, recs, plan.template_text)
    echo = prompt_words(plan.messages)
    context = set(plan.state.mentioned_items)
    wording = turn_wording(kb, recs, plan.template_text, [m["content"] for m in plan.messages])

    def check(text: str) -> GroundingReport:
        return check_text(
            text,
            recs,
            kb,
            template_text=plan.template_text,
            similarity=similarity if plan.template_text else None,
            min_similarity=min_similarity,
            must_cite=decision.route in ("recommend", "both"),
            context_items=context,
            echo_sources=echo,
            facts=facts,
            wording=wording,
        )

    forced = "no allowed item to recommend" if decision.route in ("recommend", "both") and not recs else plan.exact
    template = plan.template_text

    def complete(released: str) -> str:
        return missing_sentences(template, released) if template else ""

    fallback = fallback_text(decision.route, plan.template_text, recs, NO_MATCH, kb.shop.help, kb.shop.title_article)
    return Release(check, fallback, forced=forced, complete=complete)
