"""The one rule that moves a conversation past an exchange, and the replay of logged ones.

:func:`advance` is applied after every exchange, live or logged: the customer's message
and the reply join the history (at most ``history_turns`` exchanges; past that the oldest half is
dropped at once, so the prompt's history mostly grows), and the
items the agent showed become the ones "the second one" and "something cheaper" refer
to. :func:`replay` walks a logged conversation with that rule, so training and
evaluation see each logged turn with exactly the state a live chat would have had:
the customer's messages since the agent last spoke are joined and PII-masked as the
guard masks a live message, the log's entity annotations are used when it has any, and
the *logged* agent reply (masked too), not a generated one, continues the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from chatrec.turn.pii import mask_pii
from chatrec.turn.plan import Planner, TurnInput
from chatrec.turn.state import DialogueState, TurnAnnotations
from chatrec.types import Conversation, LoggedTurn


def advance(
    state: DialogueState,
    user_text: str,
    reply: str,
    shown: Iterable[str],
    history_turns: int,
    named: Iterable[str] = (),
) -> DialogueState:
    """``state`` (already updated with the message) after the exchange; ``state`` is modified.
    ``shown``: the items the reply recommended; ``named``: other items it referred to."""
    if user_text:
        state.history.append({"role": "user", "content": user_text})
    state.history.append({"role": "assistant", "content": reply})
    if len(state.history) > 2 * max(history_turns, 1):
        # past the limit, the oldest half goes at once: the prompt's history then only grows for
        # the next turns, so an engine's prompt cache reuses it (chatrec/turn/compose.py)
        state.history = state.history[-2 * max(history_turns // 2, 1) :]
    shown = list(dict.fromkeys(shown))
    if shown:
        state.last_recommended = shown
    for i in [*named, *shown]:
        if i not in state.shown_items:
            state.shown_items.append(i)
    return state


@dataclass
class ReplayStep:
    """One logged agent turn, seen as a live turn would see it."""

    index: int  # position of the agent turn in the conversation's turns
    input: TurnInput  # the customer's message(s) since the agent last spoke, masked; the state before them
    agent: LoggedTurn  # the logged agent turn
    reply: str  # its text, PII masked
    seen_before: list[str]  # items named or shown before this message, oldest first ("not yet mentioned")
    _state_after_message: DialogueState | None = field(default=None, repr=False)

    def continue_with(self, planned: DialogueState) -> None:
        """Continue from the state a plan of this turn produced (routing may change it)."""
        self._state_after_message = planned


def replay(conv: Conversation, planner: Planner) -> Iterator[ReplayStep]:
    """Each agent turn of ``conv`` in order. A caller that plans the turn passes the plan's
    state to :meth:`ReplayStep.continue_with`; otherwise the turn is planned here, so the
    state always moves on exactly as in a live chat."""
    annotated_log = any(t.mentions or t.liked or t.disliked for t in conv.turns)
    state = DialogueState()
    seen: list[str] = []  # every item named by either side, in the order they came up
    pending: list[str] = []
    ann = TurnAnnotations([], [], [])
    pii = planner.settings.pii  # masked as the live guard masks, so the prompts are the live ones

    def mask(text: str) -> str:
        return mask_pii(text, keep=pii.keep, ner=pii.ner)

    for idx, turn in enumerate(conv.turns):
        if turn.role == "user":
            pending.append(turn.text)
            ann.mentions += turn.mentions
            ann.liked += turn.liked
            ann.disliked += turn.disliked
            continue
        text = mask(" ".join(pending).strip())
        step = ReplayStep(
            idx,
            TurnInput(text, state, conv.user_id, conv.started_at, ann if annotated_log else None),
            turn,
            mask(turn.text),
            list(seen),
        )
        yield step
        if step._state_after_message is not None:
            after = step._state_after_message
        elif text:  # nobody planned this turn: the live plan's state, as a live chat would have it
            after = planner.plan(step.input).state
        else:
            after = state.model_copy(deep=True)
        state = advance(after, text, step.reply, turn.recommended, planner.settings.history_turns, named=turn.mentions)
        seen.extend(
            dict.fromkeys(i for i in [*state.mentioned_items, *turn.mentions, *turn.recommended] if i not in seen)
        )
        pending, ann = [], TurnAnnotations([], [], [])
