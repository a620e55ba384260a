"""The composition root: the only module that names concrete classes.

:func:`build_planner` wires the KB, the Chroma retriever, the KG, the ranker and the
prompts into a :class:`~chatrec.turn.plan.Planner` (training and evaluation use it as
it is); :class:`Chatbot` adds the model and the store and runs a live turn as data
flowing one way: guard -> plan (state, route, retrieve, rank, compose) -> generate
(streamed) -> ground -> respond -> advance the state -> log. Edges (CLI, Gradio,
HTTP, LangChain) talk to :class:`Chatbot`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from chatrec.config import Settings, apply_offline_env
from chatrec.kb import KnowledgeBase, load_kb
from chatrec.kg.networkx_graph import NetworkXGraph
from chatrec.llm import LLMBackend, make_llm
from chatrec.retrieval.base import Retriever
from chatrec.store.base import Store
from chatrec.store.sqlite import SQLiteStore
from chatrec.turn.compose import load_prompts
from chatrec.turn.ground import check_text, fallback_text
from chatrec.turn.guard import InputRejected, guard
from chatrec.turn.plan import ABLATIONS, Planner, PlanOptions, TurnInput, TurnPlan
from chatrec.turn.rank import Ranker
from chatrec.turn.replay import advance
from chatrec.turn.state import DialogueState
from chatrec.types import Recommendation, TurnResult

log = logging.getLogger(__name__)

__all__ = [
    "ABLATIONS",
    "NO_MATCH",
    "Chatbot",
    "InputRejected",
    "ResultEvent",
    "TokenEvent",
    "TurnPlan",
    "build_planner",
    "final_result",
]

NO_MATCH = "I could not find an in-stock item that fits all of that. Could you relax one of the conditions?"


def final_result(events: Iterable[TokenEvent | ResultEvent]) -> TurnResult:
    """Drain a turn's event stream and return its result."""
    result = None
    for ev in events:
        if isinstance(ev, ResultEvent):
            result = ev.result
    if result is None:
        raise RuntimeError("the turn ended without a result")
    return result


@dataclass
class TokenEvent:
    text: str


@dataclass
class ResultEvent:
    result: TurnResult


def make_retriever(settings: Settings) -> Retriever:
    """The configured retriever: Chroma, embedded or a server (``retrieval.chroma_host``)."""
    from chatrec.retrieval.chroma import ChromaIndex

    return ChromaIndex(settings)


def build_planner(
    settings: Settings,
    *,
    kb: KnowledgeBase | None = None,
    retriever: Retriever | None = None,
    llm: LLMBackend | None = None,
    progress: bool = False,
    exclude_conversations: set[str] | frozenset[str] = frozenset(),
) -> Planner:
    """A planner over the KB in ``settings`` (or ``kb``), building its index if needed.

    ``llm`` only serves the ranker's Yes/No score (``ranking.w_llm`` > 0); ``exclude_conversations``
    are logged conversations the ranker's behaviour statistics must not learn from."""
    apply_offline_env()
    kb = kb or load_kb(settings.kb_dir)
    if retriever is None:
        retriever = make_retriever(settings)
        if not retriever.is_built(kb):
            retriever.build(kb, progress=progress)
    kg = NetworkXGraph(kb.triples, kb.items, hub_degree=settings.retrieval.kg_hub_degree)
    prompts = load_prompts()
    ranker = Ranker(
        kb,
        kg,
        retriever,
        settings.ranking,
        settings.retrieval.items_k,
        llm=llm,
        prompts=prompts,
        exclude_conversations=exclude_conversations,
    )
    return Planner(settings, kb, retriever, kg, ranker, prompts)


class Chatbot:
    """A live chat: the planner plus the model and the store."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm: LLMBackend | None = None,
        kb: KnowledgeBase | None = None,
        index: Retriever | None = None,
        store: Store | None = None,
        progress: bool = False,
    ):
        t0 = time.perf_counter()
        self.settings = settings
        self.llm = llm or make_llm(settings)
        self.planner = build_planner(settings, kb=kb, retriever=index, llm=self.llm, progress=progress)
        self.kb, self.index, self.kg, self.ranker = (
            self.planner.kb,
            self.planner.retriever,
            self.planner.kg,
            self.planner.ranker,
        )
        self.store: Store = store or SQLiteStore(settings.db_path)
        self.startup_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ API

    def ask(
        self, message: str, conversation_id: str | None = None, user_id: str | None = None, ablate: Iterable[str] = ()
    ) -> TurnResult:
        return final_result(self.stream(message, conversation_id, user_id, ablate=ablate))

    def stream(
        self,
        message: str,
        conversation_id: str | None = None,
        user_id: str | None = None,
        cancel: threading.Event | None = None,
        ablate: Iterable[str] = (),
    ) -> Iterator[TokenEvent | ResultEvent]:
        """Yield :class:`TokenEvent` pieces as the model writes, then one :class:`ResultEvent`."""
        options = PlanOptions(ablate=frozenset(ablate))
        t0 = time.perf_counter()
        trace: dict[str, Any] = {"ablate": sorted(options.ablate)}
        text = guard(message, self.settings.max_message_chars, trace, self.settings.pii)

        cid = conversation_id or self.store.new_conversation(user_id)
        conv = self.store.conversation(cid)
        if conv is None:
            self.store.new_conversation(user_id, cid)
            conv = self.store.conversation(cid) or {"user_id": user_id}
        user_id = user_id or conv.get("user_id")
        state = DialogueState.model_validate(self.store.load_state(cid) or {})
        # behaviour as of the conversation's start, as a replayed conversation sees it
        started = datetime.fromisoformat(conv["created_at"]) if conv.get("created_at") else None
        plan = self.planner.plan(TurnInput(text, state, user_id, started), options, trace)

        pieces: list[str] = []
        yield from self._generate(plan, cancel or threading.Event(), t0, pieces)
        reply = self._ground("".join(pieces).strip(), plan)

        recs, decision = plan.recs, plan.decision
        state = advance(plan.state, text, reply, [r.item_id for r in recs], self.settings.history_turns)
        trace["latency_s"] = round(time.perf_counter() - t0, 3)
        template = self.kb.templates.get(decision.template_id or "")
        sources = ([f"template:{decision.template_id}"] if template else []) + [f"item:{r.item_id}" for r in recs]
        result = TurnResult(
            conversation_id=cid,
            text=reply,
            route=decision.route,
            recommendations=recs,
            template_id=decision.template_id if template else None,
            sources=sources,
            trace=trace,
        )
        result.turn_id = self.store.save_turn(
            cid,
            state.model_dump(),
            text,
            reply,
            decision.route,
            result.template_id,
            [r.item_id for r in recs],
            result.model_dump(exclude={"trace": {"generation": {"raw"}}}),
        )
        yield ResultEvent(result)

    def feedback(self, turn_id: int, kind: str, item_id: str | None = None) -> int:
        return self.store.add_feedback(turn_id, kind, item_id)

    # ------------------------------------------------------------ stages

    def _generate(self, plan: TurnPlan, cancel: threading.Event, t0: float, pieces: list[str]) -> Iterator[TokenEvent]:
        """Stream the draft into ``pieces``, stopping early once it is clearly off the template
        or cites unlisted items; a failing model falls back in :meth:`_ground`, never loses the turn."""
        trace = plan.trace
        trace["prompt_tokens"] = self.llm.count_tokens("\n".join(m["content"] for m in plan.messages))
        t_gen = time.perf_counter()
        ttft = None
        aborted = None
        try:
            for piece in self.llm.stream(plan.messages, self.settings.llm.max_new_tokens, cancel=cancel):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                pieces.append(piece)
                yield TokenEvent(piece)
                if len(pieces) % 8 == 0 and (
                    aborted := self._off_track("".join(pieces), plan.recs, plan.template_text)
                ):
                    cancel.set()
                    break
        except Exception as exc:
            log.exception("generation failed")
            trace["generation_error"] = f"{type(exc).__name__}: {exc}"
        generated = "".join(pieces).strip()
        trace["generation"] = {
            "backend": self.llm.name,
            "ttft_s": round(ttft or 0.0, 3),
            "generate_s": round(time.perf_counter() - t_gen, 3),
            "tokens": self.llm.count_tokens(generated) if generated else 0,
            "stopped_early": aborted,
            "raw": generated,
        }

    def _ground(self, generated: str, plan: TurnPlan) -> str:
        """The reply to show: the draft if it passes the checks, else the grounded fallback."""
        decision, recs = plan.decision, plan.recs
        report = check_text(
            generated,
            recs,
            self.kb,
            template_text=plan.template_text,
            similarity=self.index.embedder.similarity if plan.template_text else None,
            min_similarity=self.settings.grounding.min_template_similarity,
            must_cite=decision.route in ("recommend", "both"),
            context_items=set(plan.state.mentioned_items),
        )
        reply = generated
        if not report.ok:
            reply = fallback_text(decision.route, plan.template_text, recs, NO_MATCH)
            report.fallback = True
        elif decision.route in ("recommend", "both") and not recs:
            reply = fallback_text(decision.route, plan.template_text, recs, NO_MATCH)
            report.fallback = True
            report.problems.append("no allowed item to recommend")
        plan.trace.setdefault("grounding", {}).update(
            {"ok": report.ok, "fallback": report.fallback, "problems": report.problems}
        )
        return reply

    def _off_track(self, draft: str, recs: list[Recommendation], template_text: str | None) -> str | None:
        """Why a partial generation can no longer pass grounding, or ``None``."""
        listed = {r.item_id for r in recs}
        for item_id in self.kb.items:
            if item_id in draft and item_id not in listed:
                return f"cites {item_id}"
        if template_text and len(draft.split()) >= 20:
            sim = self.index.embedder.similarity(draft, template_text)
            if sim < self.settings.grounding.min_template_similarity - 0.2:
                return f"draft similarity {sim:.2f} to the template"
        return None
