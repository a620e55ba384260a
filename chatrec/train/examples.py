"""Training examples from logged conversations, built exactly as a live turn builds its prompt.

Every logged agent reply becomes one prompt-completion example: the conversation is
advanced by :func:`chatrec.turn.replay.replay` (the same rule as live chat and
evaluation: PII masked, the log's entity annotations, history cut to
``history_turns``) and the prompt is planned by the same :class:`~chatrec.turn.plan.Planner`
with the items and template the logged agent used, so the target only cites what the
prompt shows. The user's profile is read as of the conversation's start.
"""

from __future__ import annotations

from typing import Any, Iterable

from chatrec.kb import is_heldout
from chatrec.turn.plan import Planner, PlanOptions
from chatrec.turn.replay import replay


def build_examples(
    planner: Planner,
    heldout: bool | None = None,
    conversation_ids: Iterable[str] | None = None,
    rank_negatives: int = 0,
    gated: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Prompt-completion examples from the KB transcripts (``heldout`` None = all).

    ``limit``: stop after the conversation that brings the count to at least this many (the
    evaluation set of a run capped by ``max_eval_examples`` replays only what it uses).

    ``conversation_ids`` restricts them to those conversations (a benchmark's own split).
    ``rank_negatives`` > 0 adds the LLM ranker's task at every logged recommendation turn,
    with the exact prompt :meth:`chatrec.turn.rank.Ranker.rank_prompt` scores at inference.
    When the log records feedback (any turn has ``accepted``), accepted items are "Yes" and
    shown items that were not accepted are "No"; without feedback every shown item is
    "Yes". The ``rank_negatives`` items the fused ranker puts highest that the agent never
    showed in this conversation are "No" (hard negatives).

    ``gated``: every reply target is what the live release gate accepts (:func:`gated_target`):
    the logged reply with the shop's own masked contact details put back, if the turn's
    grounding check passes it, else the turn's grounded fallback. ``chatrec train`` trains so,
    so the model learns the format its drafts are checked against."""
    kb = planner.kb
    wanted = set(conversation_ids) if conversation_ids is not None else None
    feedback = bool(rank_negatives) and any(t.accepted for c in kb.transcripts for t in c.turns)
    out: list[dict[str, Any]] = []
    for conv in kb.transcripts:
        if limit is not None and len(out) >= limit:
            break
        if heldout is not None and is_heldout(conv.conversation_id) != heldout:
            continue
        if wanted is not None and conv.conversation_id not in wanted:
            continue
        shown = {i for t in conv.turns for i in t.recommended}
        for step in replay(conv, planner):
            if not step.input.text:
                continue
            a = step.agent
            rank_task = bool(rank_negatives and a.recommended)
            options = PlanOptions(
                ablate=frozenset({"llm_rank"}) if rank_task else frozenset(),
                forced_items=tuple(a.recommended) if a.recommended else None,
                forced_template=a.template_id,
                rank_always=rank_task,
                depth=len(shown) + rank_negatives if rank_task else 0,
            )
            plan = planner.plan(step.input, options)
            step.continue_with(plan.state)
            target, passed = gated_target(planner, plan, step.reply) if gated else (step.reply, None)
            out.append(
                {
                    "prompt": plan.messages,
                    "completion": [{"role": "assistant", "content": target}],
                    "conversation_id": conv.conversation_id,
                    **({"logged_passes": passed} if gated else {}),
                }
            )
            if rank_task and plan.rank_inputs is not None:
                labels = {i: "Yes" for i in (a.accepted if feedback else a.recommended)}
                labels.update({i: "No" for i in a.recommended if i not in labels})
                hard = [i for i in plan.trace.get("rank", {}).get("ranked", []) if i not in shown]
                labels.update({i: "No" for i in hard[:rank_negatives]})
                query, profile = plan.rank_inputs
                out.extend(
                    {
                        "prompt": planner.ranker.rank_prompt(kb.items[i], query, profile),
                        "completion": [{"role": "assistant", "content": label}],
                        "conversation_id": conv.conversation_id,
                        "turn": step.index,
                        "item_id": i,
                        "task": "rank",
                    }
                    for i, label in labels.items()
                    if i in kb.items
                )
    return out


# The demo logs' replies carry the shop's own phone and e-mail, which replay masks like any PII;
# the filled template (and the gate) want them back.
_SHOP_CONTACTS = (("<PHONE>", "support_phone"), ("<EMAIL>", "support_email"))


def gated_target(planner: Planner, plan: Any, reply: str) -> tuple[str, bool]:
    """``(target, logged_passes)``: the logged ``reply`` (the shop's masked phone and e-mail put
    back) if the turn's live release gate passes it whole, else the gate's grounded fallback
    (the filled template and the item list). On the demo KB's training split 71% of the logged
    replies pass as logged; most failures are the masked contact details (docs/training.md)."""
    from chatrec.turn.release import turn_gate

    facts = planner.kb.shop.slot_values()
    for token, field in _SHOP_CONTACTS:
        if facts.get(field) and token in reply:
            reply = reply.replace(token, facts[field])
    gate = turn_gate(
        plan, planner.kb, planner.retriever.embedder.similarity, planner.settings.grounding.min_template_similarity
    )
    gate.feed(reply)
    gate.finish()
    if not gate.problems and not gate.used_fallback:
        return reply, True
    return gate.fallback, False
