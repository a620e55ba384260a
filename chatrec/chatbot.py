"""The composition root: the only module that names concrete classes.

:func:`build_planner` wires the KB, the Chroma retriever, the KG, the ranker and the
prompts into a :class:`~chatrec.turn.plan.Planner` (training and evaluation use it as
it is); :class:`Chatbot` adds the model and the store and runs a live turn as data
flowing one way: guard -> plan (state, route, retrieve, rank, compose) -> generate
(streamed) -> ground -> respond -> advance the state -> log. Edges (CLI, Gradio,
HTTP, LangChain) talk to :class:`Chatbot`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator

from chatrec.config import Settings, apply_offline_env
from chatrec.kb import KnowledgeBase, load_kb
from chatrec.kg.networkx_graph import NetworkXGraph
from chatrec.llm import LLMBackend, make_llm
from chatrec.llm.base import UnknownAdapter
from chatrec.llm.breaker import EngineUnavailable
from chatrec.llm.threads import configure_threads
from chatrec.retrieval.base import Retriever
from chatrec.store import open_store
from chatrec.store.base import Store
from chatrec.turn.compose import load_prompts
from chatrec.turn.guard import InputRejected, guard
from chatrec.turn.pii import find_pii, mask_pii
from chatrec.turn.plan import ABLATIONS, Planner, PlanOptions, TurnInput, TurnPlan
from chatrec.turn.policy import LivePolicy, log_slate, planner_policy
from chatrec.turn.rank import Ranker
from chatrec.turn.release import NO_MATCH, Release, turn_gate
from chatrec.turn.replay import advance
from chatrec.turn.state import DialogueState
from chatrec.types import Recommendation, TurnResult

log = logging.getLogger(__name__)

__all__ = [
    "ABLATIONS",
    "GENERATED",
    "NO_MATCH",
    "Chatbot",
    "ConversationNotFound",
    "OpenConversation",
    "InputRejected",
    "ResultEvent",
    "TokenEvent",
    "TurnPlan",
    "build_planner",
    "final_result",
]


def final_result(events: Iterable[TokenEvent | ResultEvent | _Generated]) -> TurnResult:
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


class _Generated:
    """The marker :meth:`Chatbot.stream` yields once the model is done with the turn (before
    the final save); the HTTP edge gives the model slot back on it. Other consumers skip it."""

    def __repr__(self) -> str:
        return "GENERATED"


GENERATED = _Generated()


class ConversationNotFound(LookupError):
    """No such conversation for these credentials: unknown, or another tenant's or user's
    (the two are answered alike, so that an id reveals nothing)."""


@dataclass
class OpenConversation:
    """A conversation checked against its caller, with what a turn needs from the store
    (read before the turn takes a model slot)."""

    id: str
    user_id: str | None  # the caller's verified id as given (for the profile); the store keeps owner_key(user_id)
    tenant: int | None
    created_at: str | None
    state: dict[str, Any] = field(default_factory=dict)


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
    store: Store | None = None,
    policy_kind: str = "bandit",
) -> Planner:
    """A planner over the KB in ``settings`` (or ``kb``), building its index if needed.

    ``llm`` only serves the ranker's Yes/No score (``ranking.w_llm`` > 0); ``exclude_conversations``
    are logged conversations the ranker's behaviour statistics must not learn from. With
    ``ranking.policy = "bandit"`` the ranker uses the current ``policy_kind`` version in ``store``
    (default: ``open_store(settings)``)."""
    apply_offline_env()
    configure_threads("other", settings)  # torch's threads by the measured rule, before any torch work
    kb = kb or load_kb(settings.kb_dir)
    if retriever is None:
        retriever = make_retriever(settings)
        if not retriever.is_built(kb):
            retriever.build(kb, progress=progress)
    kg = NetworkXGraph(kb.triples, kb.items, hub_degree=settings.retrieval.kg_hub_degree)
    prompts = load_prompts(settings.prompts_dir) if settings.prompts_dir else load_prompts()
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
    if settings.ranking.policy == "bandit":  # the current learned version, from the (shared) store
        ranker.policy = planner_policy("bandit", store or open_store(settings), policy_kind)
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
        policy_kind: str = "bandit",
    ):
        t0 = time.perf_counter()
        self.settings = settings
        self.llm = llm or make_llm(settings)
        self.store: Store = store or open_store(settings)
        self.planner = build_planner(
            settings, kb=kb, retriever=index, llm=self.llm, progress=progress, store=self.store, policy_kind=policy_kind
        )
        self.kb, self.index, self.kg, self.ranker = (
            self.planner.kb,
            self.planner.retriever,
            self.planner.kg,
            self.planner.ranker,
        )
        r = settings.ranking
        self.ranker.user_key = self.owner_key  # the policy's context carries the stored user form
        self.policy = LivePolicy(self.ranker, r.policy, self.store, r.explore, policy_kind=policy_kind)
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
        *,
        tenant: int | None = None,
        opened: OpenConversation | None = None,
        adapter: str | None = None,
    ) -> Iterator[TokenEvent | ResultEvent | _Generated]:
        """Yield :class:`TokenEvent` pieces as the model writes, :data:`GENERATED` once the model is
        done, then one :class:`ResultEvent`.

        ``user_id`` is trusted here (local callers; the HTTP edge passes only verified ids). A
        ``conversation_id`` must name a conversation of this ``tenant`` and user, else
        :class:`ConversationNotFound`; without one a new conversation is made. ``opened`` is
        :meth:`open_conversation`'s answer when the caller already has it. Closing the stream
        before the result records the turn as ``cancelled``. ``adapter``: a LoRA adapter by name
        (``llm.adapters``), else :class:`~chatrec.llm.base.UnknownAdapter`; ``None``: the default."""
        llm = self.llm_for(adapter)
        options = PlanOptions(ablate=frozenset(ablate))
        t0 = time.perf_counter()
        trace: dict[str, Any] = {"ablate": sorted(options.ablate)}
        text = guard(message, self.settings.max_message_chars, trace, self.settings.pii)

        conv = opened or self.open_conversation(conversation_id, user_id, tenant)
        self.policy.refresh()
        cid, user_id = conv.id, conv.user_id
        state = DialogueState.model_validate(conv.state or {})
        # behaviour as of the conversation's start, as a replayed conversation sees it
        started = datetime.fromisoformat(conv.created_at) if conv.created_at else None
        pieces: list[str] = []
        try:
            down = self._thumbs_down(cid)  # escalation: a thumbs-down earlier in this conversation
            plan = self.planner.plan(TurnInput(text, state, user_id, started, negative_feedback=down), options, trace)

            gate = self._ground(plan)
            yield from self._generate(plan, cancel or threading.Event(), t0, pieces, gate, llm)
            reply = gate.reply or gate.fallback
            yield GENERATED  # the model's part is over: the HTTP edge gives the slot back before the save
        except GeneratorExit:  # the consumer left mid-turn: record the checked text released to it
            shown = locals().get("gate")
            self._save_cancelled(cid, conv.state, text, shown.sent if shown is not None else "")
            raise

        recs, decision = plan.recs, plan.decision
        state = advance(plan.state, text, reply, [r.item_id for r in recs], self.settings.history_turns)
        trace["latency_s"] = round(time.perf_counter() - t0, 3)
        template = self.kb.templates.get(decision.template_id or "")
        sources = ([f"template:{decision.template_id}"] if template else []) + [f"item:{r.item_id}" for r in recs]
        # to the ranking log, not the result; its context already holds the stored form of the user id
        # (ranker.user_key = owner_key), never personal data
        slate = (trace.get("rank") or {}).pop("policy_log", None)
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
            status="ok",
        )
        log_slate(self.store, result.turn_id, slate, [r.item_id for r in recs])
        yield ResultEvent(result)

    def _save_cancelled(self, cid: str, state: dict[str, Any], text: str, partial: str) -> None:
        """Record a turn whose consumer left: the masked message, the checked text released to it
        so far (masked too), status ``cancelled``; the conversation's state is left as it was."""
        try:
            self.store.save_turn(cid, state, text, mask_pii(partial.strip()), "", None, [], {}, status="cancelled")
        except Exception:  # the store is down: the turn is lost, the caller is gone anyway
            log.warning("could not record the cancelled turn of %s", cid, exc_info=True)

    # ------------------------------------------------------------ ownership

    def owner_key(self, user_id: str | None) -> str | None:
        """The form of a user id that the store keeps and ownership compares: the id itself, or
        ``uid:`` + a keyed hash (HMAC-SHA256 with a server secret) when it holds personal data."""
        if user_id is None:
            return None
        if not find_pii(user_id):
            return user_id
        key = getattr(self, "_uid_key", None)
        if key is None:
            key = self._uid_key = self.store.secret("user_id_hmac")
        return "uid:" + hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:24]

    def new_conversation(self, user_id: str | None = None, tenant: int | None = None) -> str:
        """A new conversation of ``user_id`` (stored as :meth:`owner_key`) under ``tenant``."""
        return self.store.new_conversation(self.owner_key(user_id), tenant=tenant)

    def open_conversation(
        self, conversation_id: str | None, user_id: str | None, tenant: int | None = None
    ) -> OpenConversation:
        """The conversation to continue (checked: same tenant, same owner) or a new one, with its
        state. :class:`ConversationNotFound` for an unknown id or anyone else's conversation."""
        cid = conversation_id or self.new_conversation(user_id, tenant)
        conv = self.store.conversation(cid)
        if conv is None or conv.get("tenant_id") != tenant or conv.get("user_id") != self.owner_key(user_id):
            raise ConversationNotFound(f"no conversation {conversation_id!r}")
        state = self.store.load_state(cid) if conversation_id else {}
        return OpenConversation(cid, user_id, tenant, conv.get("created_at"), state)

    def feedback(
        self,
        turn_id: int,
        kind: str,
        item_id: str | None = None,
        *,
        conversation_id: str | None = None,
        user_id: str | None = None,
        tenant: int | None = None,
        check_owner: bool = False,
    ) -> int:
        """Record a vote (idempotent). With ``check_owner`` (the HTTP edge) the turn must belong to
        ``conversation_id`` and that conversation to ``tenant`` and ``user_id``, else
        :class:`ConversationNotFound`; local callers (the UIs) may skip the check."""
        if check_owner:
            conv = self.open_conversation(conversation_id, user_id, tenant) if conversation_id else None
            turn = self.store.turn(turn_id) if conv else None
            if conv is None or turn is None or turn["conversation_id"] != conv.id:
                raise ConversationNotFound(f"no turn {turn_id} in this conversation")
        return self.store.add_feedback(turn_id, kind, item_id)

    # ------------------------------------------------------------ stages

    def llm_for(self, adapter: str | None) -> LLMBackend:
        """The model with the named LoRA adapter (``llm.adapters``), or as configured for ``None``."""
        if adapter is None:
            return self.llm
        pick = getattr(self.llm, "with_adapter", None)
        if pick is None:
            raise UnknownAdapter(f"unknown adapter {adapter!r}: the {self.llm.name} engine has no named adapters")
        return pick(adapter)

    def _generate(
        self,
        plan: TurnPlan,
        cancel: threading.Event,
        t0: float,
        pieces: list[str],
        gate: Release,
        llm: LLMBackend | None = None,
    ) -> Iterator[TokenEvent]:
        """Stream the draft into ``pieces`` through ``gate``: only text that passed the grounding
        check is yielded, sentence by sentence, and what is yielded adds up to the reply
        (:mod:`chatrec.turn.release`). Generation stops once the gate has decided, or once the
        draft is clearly off the template or cites unlisted items; a failing model falls back,
        never loses the turn. After the caller cancels, nothing more is yielded."""
        trace = plan.trace
        model = llm or self.llm
        ran = False
        trace["prompt_tokens"] = self.llm.count_tokens("\n".join(m["content"] for m in plan.messages))
        t_gen = time.perf_counter()
        ttft = first_text = None
        aborted = None
        stop = threading.Event()  # the backend's own: it sets it when done, so ``cancel`` stays the caller's
        caller_left = cancel.is_set()
        try:
            max_new = self.settings.llm.max_new_tokens
            ran = not (gate.done or caller_left)
            for piece in model.stream(plan.messages, max_new, cancel=stop) if ran else []:
                if cancel.is_set():
                    caller_left = True
                    stop.set()
                    break
                if ttft is None:
                    ttft = time.perf_counter() - t0
                pieces.append(piece)
                if released := gate.feed(piece):
                    first_text = first_text or time.perf_counter() - t0
                    yield from _token_events(released)
                if gate.done:
                    aborted = "; ".join(gate.problems)
                elif len(pieces) % 8 == 0:
                    aborted = self._off_track("".join(pieces), plan.recs, plan.template_text)
                if aborted:
                    stop.set()
                    break
        except EngineUnavailable as exc:  # a remote engine down, hung or its breaker open: the grounded fallback
            log.warning("engine unavailable: %s", exc)
            trace["engine_unavailable"] = str(exc)
        except Exception as exc:
            log.exception("generation failed")
            trace["generation_error"] = f"{type(exc).__name__}: {exc}"
        rest = gate.finish()
        if rest and not caller_left:  # a caller who cancelled gets nothing more
            first_text = first_text or time.perf_counter() - t0
            yield from _token_events(rest)
        generated = "".join(pieces).strip()
        usage = getattr(model, "last_usage", None)  # llamacpp: prompt tokens read vs reused from the cache
        trace["generation"] = {
            **((usage() or {}) if ran and callable(usage) else {}),
            "backend": model.name,
            "ttft_s": round(ttft or 0.0, 3),
            "first_text_s": round(first_text or 0.0, 3),
            "generate_s": round(time.perf_counter() - t_gen, 3),
            "tokens": self.llm.count_tokens(generated) if generated else 0,
            "stopped_early": aborted,
            "raw": generated,
        }
        grounding = {
            "ok": not gate.problems and not gate.used_fallback,
            "fallback": gate.used_fallback,
            "cut": gate.cut,
            "problems": gate.problems,
            "planned": gate.forced,  # why no draft was wanted (a clarifying question, ...); None: the model drafted
            "completed": gate.completed,  # a cut reply: the template's sentences appended for the facts it lost
            "checks": gate.checks,
            # a released text passed the check; the fallback is built from the data, and checked here too
            "reply_problems": gate.check(gate.fallback).problems if gate.used_fallback else [],
        }
        trace.setdefault("grounding", {}).update(grounding)

    def _thumbs_down(self, cid: str) -> int:
        """Thumbs-down votes on this conversation's earlier turns."""
        return sum(1 for t in self.store.turns(cid) for f in self.store.feedback(t["id"]) if f["kind"] == "thumbs_down")

    def _ground(self, plan: TurnPlan) -> Release:
        """The turn's gate (:func:`chatrec.turn.release.turn_gate`): the grounding check every text
        shown must pass, and the grounded fallback for a draft that never passes."""
        return turn_gate(plan, self.kb, self.index.embedder.similarity, self.settings.grounding.min_template_similarity)

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


def _token_events(text: str) -> Iterator[TokenEvent]:
    """Released text as word-sized events; they concatenate back to ``text`` exactly."""
    for piece in re.findall(r"\s*\S+|\s+", text):
        yield TokenEvent(piece)
