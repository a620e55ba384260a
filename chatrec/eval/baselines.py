"""The baselines every run scores beside the pipeline, on the same turns.

- ``popularity``: the most popular items the hard filters allow;
- ``repeat_last``: the items named so far in the dialogue, most recent first (copying
  what was mentioned is what "not yet mentioned" metrics guard against);
- ``copy_mention``: the items the customer named (the message being answered included),
  most recent first: what a recommender that only echoes the customer scores;
- ``embedding_only``: dense retrieval alone (MiniLM + Chroma), in stock.
"""

from __future__ import annotations

from typing import Any, Sequence

from chatrec.eval.metrics import DEPTH
from chatrec.turn.plan import Planner
from chatrec.turn.profile import UserHistory
from chatrec.turn.state import DialogueState


def baseline_ranking(
    system: str,
    planner: Planner,
    text: str,
    state: DialogueState,
    history: UserHistory,
    q_emb: Any,
    seen_before: list[str],
    seeker_mentions: Sequence[str] = (),
) -> list[str]:
    """The ``DEPTH`` best item ids of baseline ``system`` for this turn. ``seeker_mentions``: the
    items the customer named so far (the triggering message included), oldest first."""
    kb, ranker = planner.kb, planner.ranker
    if system == "copy_mention":
        said = [*seeker_mentions, *(i for i in state.mentioned_items if i not in seeker_mentions)]
        return list(dict.fromkeys(reversed(said)))[:DEPTH]
    if system == "repeat_last":
        said = seen_before + [i for i in state.mentioned_items if i not in seen_before]
        return list(dict.fromkeys(reversed(said)))[:DEPTH]
    if system == "popularity":
        out = []
        for i in ranker.behaviour.popular(len(kb.items)):
            if ranker.allowed(kb.items[i], state, history) is None:
                out.append(i)
                if len(out) == DEPTH:
                    break
        return out
    if system == "embedding_only":
        query = state.last_request or text
        emb = q_emb if query == text else None
        return [i for i, _ in planner.retriever.search_items(query, DEPTH, {"in_stock": True}, query_embedding=emb)]
    raise ValueError(f"unknown baseline {system!r}")
