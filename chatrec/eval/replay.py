"""Scoring one logged conversation: every system (the pipeline, its ablations, the baselines)
on the same turns, advanced by :func:`chatrec.turn.replay.replay` exactly as a live chat."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from chatrec.config import Settings
from chatrec.eval.baselines import baseline_ranking
from chatrec.eval.fusion import fold_of
from chatrec.eval.metrics import (
    DEPTH,
    clarify_scores,
    intra_list_diversity,
    invented_entities,
    logged_agent_asks,
    rank_metrics,
    rouge_l,
)
from chatrec.eval.options import BASELINES, EvalOptions
from chatrec.kb import RECOMMEND_LABEL
from chatrec.turn.facts import missing_facts
from chatrec.turn.plan import Planner, PlanOptions
from chatrec.turn.profile import UserHistory, history_of
from chatrec.turn.rank import Behaviour
from chatrec.turn.release import turn_gate
from chatrec.turn.replay import ReplayStep, replay
from chatrec.turn.state import DialogueState
from chatrec.types import Conversation, LoggedTurn

log = logging.getLogger(__name__)


def needs_real_llm(settings: Settings, opts: EvalOptions) -> bool:
    """Whether the replay must load the configured model: to generate replies, or because
    the full system's ranking uses the LLM score (``-llm_rank`` only switches it off for
    that ablation). Otherwise a scripted model stands in, since nothing reads its text."""
    return opts.generate or settings.ranking.w_llm > 0


class _ConversationRows:
    """What scoring one conversation accumulates: per-turn rows, per-system sums, features."""

    def __init__(self, conv: Conversation, systems: list[str], history: UserHistory):
        self.conv, self.history = conv, history
        self.turns: list[dict] = []
        self.sums: dict[str, dict[str, list[float]]] = {s: {} for s in systems}
        self.latency: dict[str, list[float]] = {s: [] for s in systems}
        self.ttft: dict[str, list[float]] = {}
        self.first_lists: dict[str, list[str]] = {}
        self.features: list[dict] = []

    def add(self, system: str, row: dict[str, Any], m: dict[str, tuple[float, float]], elapsed: float) -> None:
        """One system's row for one turn; its (numerator, denominator) metric pairs join the sums."""
        row["latency_s"] = round(elapsed, 4)
        row["metrics"] = {k: (round(n / d, 4) if d else None) for k, (n, d) in m.items()}
        self.latency[system].append(elapsed)
        acc = self.sums[system]
        for k, (n, d) in m.items():
            a = acc.setdefault(k, [0.0, 0.0])
            a[0] += n
            a[1] += d
        self.turns.append(row)

    def result(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conv.conversation_id,
            "user_id": self.conv.user_id,
            "turns": self.turns,
            "sums": self.sums,
            "latency": self.latency,
            "ttft": self.ttft,
            "first_lists": self.first_lists,
            "features": self.features,
        }


class Replayer:
    """Scores one conversation at a time for every system; holds the planner and item vectors."""

    def __init__(
        self,
        settings: Settings,
        opts: EvalOptions,
        exclude: frozenset[str],
        planner: Planner | None = None,
        fitted: dict[str, Any] | None = None,
    ):
        """``planner``: plan with this one (its ranker's LLM, if any, also generates) instead of building one.

        With ``opts.train`` the planner's KB holds the training conversations only, and the
        ranker is ``fitted`` (scoring) or, while fitting (``fitted`` is ``None``), ranks with
        the configured weights and statistics cross-fitted in two folds of ``exclude``.
        Without it, statistics are cross-fitted on the scored conversations (``exclude``)."""
        from chatrec.chatbot import build_planner
        from chatrec.llm import make_llm

        self.opts = opts
        self.settings = settings
        if planner is not None:
            self.llm, self.planner = planner.ranker.llm, planner
        else:
            kb = None
            if opts.train:
                from chatrec.eval.learn import read_training, training_kb
                from chatrec.kb import load_kb

                full_kb = load_kb(settings.kb_dir)
                kb = training_kb(full_kb, read_training(Path(opts.train), full_kb))
            self.llm = make_llm(settings) if needs_real_llm(settings, opts) else None
            self.planner = build_planner(settings, kb=kb, llm=self.llm, exclude_conversations=exclude)
        self.kb, self.ranker, self.retriever = self.planner.kb, self.planner.ranker, self.planner.retriever
        self.behaviours: dict[int, Behaviour] | None = None
        if fitted is not None:
            self.ranker.use_fitted(fitted)  # what the live turn loads, not a KB folder's own artifact
        else:
            self.ranker.use_fitted(None)  # the configured weights, whatever the KB folder holds
            self.behaviours = {k: Behaviour(self.kb, frozenset(c for c in exclude if fold_of(c) == k)) for k in (0, 1)}
        self.base_llm = None
        if opts.generate and settings.llm.adapter and "adapter" in opts.ablations:
            base = settings.model_copy(update={"llm": settings.llm.model_copy(update={"adapter": None})})
            self.base_llm = make_llm(base)
        self._vectors: dict[str, Any] = {}
        self.vectors = self.retriever.item_vectors()
        self.systems = self._systems()

    def _systems(self) -> list[str]:
        s = ["full"] + [f"-{a}" for a in self.opts.ablations if a != "adapter"]
        if self.base_llm is not None:
            s.append("-adapter")
        if self.opts.baselines:
            s.extend(BASELINES)
        return s

    # ------------------------------------------------------------------ embeddings

    def prewarm(self, convs: list[Conversation]) -> None:
        """Embed, in batches, the customer messages (as the replay joins and masks them) and the
        logged answers of ``convs``: one batched call instead of two or three single ones per turn,
        which is where a one-turn service conversation spent most of its time (docs/evaluation.md)."""
        from chatrec.turn.pii import mask_pii

        pii = self.settings.pii
        texts: list[str] = []
        for conv in convs:
            pending: list[str] = []
            for t in conv.turns:
                if t.role == "user":
                    pending.append(t.text)
                    continue
                if pending:
                    texts.append(mask_pii(" ".join(pending).strip(), keep=pii.keep, ner=pii.ner))
                    pending = []
                texts.append(t.text)
        self._vectors = {}  # a window at a time: memory stays bounded
        self._embed(texts)

    def _embed(self, texts: list[str]) -> list[Any]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if todo:
            for t, v in zip(todo, self.retriever.embedder.embed(todo)):
                self._vectors[t] = v
        return [self._vectors[t] for t in texts]

    def _similarity(self, a: str, b: str) -> float:
        va, vb = self._embed([a, b])
        return float(va @ vb)

    # ------------------------------------------------------------------ conversation

    def conversation(self, conv: Conversation) -> dict[str, Any]:
        """All rows for one conversation: per-turn records, per-system sums, candidate features."""
        if self.behaviours is not None:
            self.ranker.behaviour = self.behaviours[fold_of(conv.conversation_id)]
        rows = _ConversationRows(conv, self.systems, history_of(self.kb, conv.user_id, conv.started_at))
        for step in replay(conv, self.planner):
            turn = step.agent
            is_rec = bool(turn.recommended)
            is_service = not is_rec and bool(turn.template_id or (turn.intent and turn.intent != RECOMMEND_LABEL))
            if step.input.text and (is_rec or is_service):
                step.continue_with(self._score_turn(step, is_rec, rows))
        return rows.result()

    def _score_turn(self, step: ReplayStep, is_rec: bool, rows: _ConversationRows) -> DialogueState:
        """Score every system on this turn; return the full system's state to continue from."""
        conv, idx, turn, text, state = rows.conv, step.index, step.agent, step.input.text, step.input.state
        ttft, first_lists, features = rows.ttft, rows.first_lists, rows.features
        history = rows.history
        top_n = self.settings.ranking.top_n
        gold = list(dict.fromkeys(turn.recommended))
        # "new": never named before, by either side, nor in the customer's message(s) this turn answers
        said_now = _said_now(conv, idx)
        if step.input.annotated is not None:
            said_now += step.input.annotated.mentions
        gold_new = [g for g in gold if g not in step.seen_before and g not in said_now]
        seeker = list(dict.fromkeys(m for t in conv.turns[:idx] if t.role == "user" for m in t.mentions))
        t0 = time.perf_counter()
        q_emb = self._embed([text])[0]
        embed_s = time.perf_counter() - t0
        full_state: DialogueState | None = None
        for system in self.systems:
            t0 = time.perf_counter()
            row: dict[str, Any] = {
                "system": system,
                "conversation_id": conv.conversation_id,
                "turn_index": idx,
                "kind": "rec" if is_rec else "service",
                "input": text,
            }
            m: dict[str, tuple[float, float]] = {}
            if system in BASELINES:
                ranked = (
                    baseline_ranking(
                        system, self.planner, text, full_state or state, history, q_emb, step.seen_before, seeker
                    )
                    if is_rec
                    else []
                )
                shown = ranked[:top_n]
                reply = None
            else:
                ablate = frozenset([system[1:]] if system.startswith("-") and system != "-adapter" else [])
                trace: dict[str, Any] = {}
                plan = self.planner.plan(
                    step.input,
                    PlanOptions(ablate=ablate, rank_always=is_rec, depth=DEPTH if is_rec else 0, query_embedding=q_emb),
                    trace,
                )
                if system == "full":
                    full_state = plan.state
                    if step.input.annotated is None:  # no log annotations: what the message was linked to
                        gold_new = [g for g in gold_new if g not in plan.state.mentioned_items]
                ranked = trace.get("rank", {}).get("ranked", [])
                shown = [r.item_id for r in plan.recs]
                if is_rec:
                    m["rec.route_acc"] = (float(plan.decision.route in ("recommend", "both")), 1)
                    # also a turn with no allowed candidate: learned fusion must score it as a miss
                    features.append(
                        {
                            "system": system,
                            "conversation_id": conv.conversation_id,
                            "turn_index": idx,
                            "features": trace.get("rank", {}).get("features", {}),
                            "gold": gold,
                            "gold_new": gold_new,
                        }
                    )
                else:
                    m.update(self._template_metrics(turn, plan.decision.template_id))
                if system == "full":  # the ask-before-guessing policy against the logged agent
                    logged_tpl = self.kb.templates.get(turn.template_id or "")
                    asks = bool(trace.get("route", {}).get("final", {}).get("asks"))
                    logged_asks = logged_agent_asks(logged_tpl.text if logged_tpl else None, turn.text)
                    m.update(clarify_scores(asks, logged_asks))
                reply = self._reply(system, plan, m, ttft, row)
                row.update(
                    {
                        "route": plan.decision.route,
                        "template_id": plan.decision.template_id,
                        "scores": trace.get("rank", {}).get("scored", [])[:10],
                    }
                )
            elapsed = time.perf_counter() - t0 + (embed_s if system == "full" else 0.0)
            if is_rec:
                m.update(rank_metrics(ranked, gold, "rec"))
                m.update(rank_metrics(ranked, gold_new, "rec_new"))
                bad = [
                    i
                    for i in shown
                    if i not in self.kb.items
                    or not self.kb.items[i].in_stock
                    or self.ranker.allowed(self.kb.items[i], full_state or state, history) is not None
                ]
                if system not in ("repeat_last", "copy_mention"):  # repeating what was said is their point
                    m["grounding.invalid_rec_rate"] = (len(bad), max(len(shown), 1)) if shown else (0, 0)
                if (div := intra_list_diversity(ranked[:10], self.vectors)) is not None:
                    m["rec.diversity"] = (div, 1)
                first_lists.setdefault(system, ranked[:10])
                row.update({"ranked": ranked[:DEPTH], "gold": gold, "gold_new": gold_new, "shown": shown})
            if reply is not None:
                row["output"] = reply
                if not is_rec:
                    # the reply shown and, where the model drafted one, its draft before the gate
                    # (the base model's shown replies are mostly the template fallback)
                    scored = [("service.", reply)]
                    if "draft" in row and row.get("planned") is None:
                        scored.append(("service.draft_", row["draft"]))
                    for prefix, said in scored:  # not `text`: that is this turn's input, used by every system
                        m[prefix + "rouge_l"] = (rouge_l(said, turn.text), 1)
                        m[prefix + "cosine"] = (self._similarity(said, turn.text) if said else 0.0, 1)
            rows.add(system, row, m, elapsed)
        if full_state is None:  # only baselines ran: the live plan's state continues the conversation
            full_state = self.planner.plan(step.input).state
        return full_state

    def _template_metrics(self, turn: LoggedTurn, chosen_id: str | None) -> dict[str, tuple[float, float]]:
        """Did the turn answer with the logged template, or at least the logged intent?"""
        m: dict[str, tuple[float, float]] = {}
        logged_tpl = self.kb.templates.get(turn.template_id or "")
        chosen = self.kb.templates.get(chosen_id or "")
        if logged_tpl is not None:
            m["service.template_acc"] = (float(chosen is not None and chosen.id == logged_tpl.id), 1)
        logged_intent = turn.intent or (logged_tpl.intent if logged_tpl else None)
        if logged_intent:
            m["service.intent_acc"] = (float(chosen is not None and chosen.intent == logged_intent), 1)
        return m

    def _reply(self, system: str, plan, m: dict, ttft: dict, row: dict | None = None) -> str:
        """The text the system would show: generated and grounded with ``--generate``, else the
        grounded fallback (the filled template or the item list). With ``--generate`` the model's
        draft and the gate's problems with it go into ``row`` (turns.jsonl: why drafts fail)."""
        gate = turn_gate(
            plan, self.kb, self.retriever.embedder.similarity, self.settings.grounding.min_template_similarity
        )
        if not self.opts.generate or not (system == "full" or system.startswith("-")):
            return gate.fallback  # baselines rank only; the live turn and its ablations generate
        llm = self.base_llm if system == "-adapter" else self.llm
        assert llm is not None, "generation needs a model (needs_real_llm)"
        t0 = time.perf_counter()
        first = None
        pieces = []
        # the live turn's gate, fed the same way: what is scored is what a user would have seen
        for piece in [] if gate.done else llm.stream(plan.messages, self.opts.max_new_tokens):
            if first is None:
                first = time.perf_counter() - t0
            pieces.append(piece)
            gate.feed(piece)
            if gate.done:
                break
        gate.finish()
        draft = "".join(pieces).strip()
        ttft.setdefault(system, []).append(first or 0.0)
        m["cost.tokens"] = (llm.count_tokens(draft) if draft else 0, 1)
        usage = llm.last_usage() if pieces and hasattr(llm, "last_usage") else None
        if usage:  # what each context part costs: the prompt's tokens (ablations drop parts of it)
            m["cost.prompt_tokens"] = (usage["prompt_tokens"], 1)
        if gate.forced is None:  # a clarifying question, an answer about shown items: no draft was wanted
            unlisted = any("not in the list" in p or "unlisted" in p for p in gate.problems)
            m["grounding.unlisted_citation_rate"] = (float(unlisted), 1)
            m["grounding.draft_pass_rate"] = (float(not gate.problems and not gate.used_fallback), 1)
        assert gate.reply is not None
        m.update(reply_quality(plan.template_text, draft, gate.reply, gate.check))
        if row is not None:
            row.update({"draft": draft, "problems": list(gate.problems), "planned": gate.forced})
        return gate.reply


def reply_quality(
    template_text: str | None, draft: str, reply: str, check: Callable[[str], Any]
) -> dict[str, tuple[float, float]]:
    """Per-turn reply-quality pairs of one generated turn: whether the reply shown (and the model's
    draft) keeps every fact of the filled template (turns with a template that states any), and
    whether the draft (and the reply shown) invents a name, phone number, e-mail, link, date,
    amount or time (``check``: the turn's grounding check)."""
    m: dict[str, tuple[float, float]] = {}
    if template_text:
        for name, text in (("service.fact_preservation", reply), ("service.draft_fact_preservation", draft)):
            missing, total = missing_facts(template_text, text)
            if total:
                m[name] = (float(not missing), 1)
    for name, text in (("grounding.draft_invented_rate", draft), ("grounding.invented_rate", reply)):
        m[name] = (float(bool(text and invented_entities(check(text).problems))), 1)
    return m


def _said_now(conv: Conversation, idx: int) -> list[str]:
    """Items the customer's messages right before agent turn ``idx`` name (the log's annotations)."""
    out: list[str] = []
    j = idx - 1
    while j >= 0 and conv.turns[j].role == "user":
        out += conv.turns[j].mentions + conv.turns[j].liked + conv.turns[j].disliked
        j -= 1
    return out
