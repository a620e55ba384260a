"""The composition root: one conversational turn, as data flowing one way.

guard -> state -> route -> retrieve -> rank -> generate (streamed) -> ground ->
respond -> log. This is the only module that names concrete classes; edges
(CLI, Gradio, HTTP, evaluation) talk to :class:`Chatbot`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from chatrec.config import Settings, apply_offline_env
from chatrec.turn.ground import check_recommendations, check_text, fallback_text
from chatrec.kb import RECOMMEND_LABEL, KnowledgeBase, load_kb
from chatrec.kg.networkx_graph import NetworkXGraph
from chatrec.llm import LLMBackend, make_llm
from chatrec.llm.base import Message
from chatrec.turn.pii import mask_pii
from chatrec.turn.profile import UserHistory, history_of, profile_text
from chatrec.turn.compose import Prompts, load_prompts
from chatrec.turn.rank import Ranker
from chatrec.turn.route import RouteDecision, decide
from chatrec.turn.state import DialogueState, EntityLinker, TurnAnnotations, update_state
from chatrec.store.sqlite import Store
from chatrec.types import Recommendation, TurnResult

log = logging.getLogger(__name__)

ABLATIONS = ("kg", "profile", "llm_rank", "history")
_INJECTION = re.compile(r"(?i)\b(?:ignore (?:all |any )?(?:previous|prior|above) (?:instructions|prompts?)|"
                        r"you are now|system prompt|disregard (?:the )?(?:rules|instructions)|jailbreak)\b")
_ORDER_ID = re.compile(r"#\s?([A-Z]{2,4}-?\d{4,}|\d{5,})\b")
NO_MATCH = "I could not find an in-stock item that fits all of that. Could you relax one of the conditions?"


def final_result(events: Iterable["TokenEvent | ResultEvent"]) -> TurnResult:
    """Drain a turn's event stream and return its result."""
    result = None
    for ev in events:
        if isinstance(ev, ResultEvent):
            result = ev.result
    if result is None:
        raise RuntimeError("the turn ended without a result")
    return result


class InputRejected(ValueError):
    """The message breaks a size or encoding limit."""


@dataclass
class TokenEvent:
    text: str


@dataclass
class ResultEvent:
    result: TurnResult


@dataclass
class TurnPlan:
    text: str
    state: DialogueState
    decision: RouteDecision
    recs: list[Recommendation]
    template_text: str | None
    messages: list[Message]
    trace: dict[str, Any]
    rank_inputs: tuple[str, str] | None = None  # (request, profile) the ranker scored with, when it ran


class Chatbot:
    def __init__(self, settings: Settings, *, llm: LLMBackend | None = None, kb: KnowledgeBase | None = None,
                 index: Any = None, store: Store | None = None, prompts: Prompts | None = None,
                 progress: bool = False, exclude_conversations: set[str] | frozenset[str] = frozenset()):
        """``exclude_conversations``: logged conversations the ranker's behaviour statistics must not
        learn from (evaluation passes the ones it replays)."""
        apply_offline_env()
        t0 = time.perf_counter()
        self.settings = settings
        self.kb = kb or load_kb(settings.kb_dir)
        if index is None:
            from chatrec.retrieval.chroma import ChromaIndex

            index = ChromaIndex(settings)
            if not index.is_built(self.kb):
                index.build(self.kb, progress=progress)
        self.index = index
        self.kg = NetworkXGraph(self.kb.triples, self.kb.items, hub_degree=settings.retrieval.kg_hub_degree)
        self.linker = EntityLinker(self.kb)
        self.prompts = prompts or load_prompts()
        self.store = store or Store(settings.db_path)
        self.llm = llm or make_llm(settings)
        self.ranker = Ranker(self.kb, self.kg, self.index, settings.ranking, settings.retrieval.items_k,
                             llm=self.llm, prompts=self.prompts, exclude_conversations=exclude_conversations)
        self.startup_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ API

    def ask(self, message: str, conversation_id: str | None = None, user_id: str | None = None,
            ablate: Iterable[str] = ()) -> TurnResult:
        return final_result(self.stream(message, conversation_id, user_id, ablate=ablate))

    def stream(self, message: str, conversation_id: str | None = None, user_id: str | None = None,
               cancel: threading.Event | None = None, ablate: Iterable[str] = ()) -> Iterator[TokenEvent | ResultEvent]:
        """Yield :class:`TokenEvent` pieces as the model writes, then one :class:`ResultEvent`."""
        ablate = set(ablate)
        unknown = ablate - set(ABLATIONS)
        if unknown:
            raise ValueError(f"unknown ablation(s) {sorted(unknown)}; choose from {ABLATIONS}")
        t0 = time.perf_counter()
        trace: dict[str, Any] = {"ablate": sorted(ablate)}

        # guard
        text = self._guard(message, trace)

        # state
        cid = conversation_id or self.store.new_conversation(user_id)
        conv = self.store.conversation(cid)
        if conv is None:
            self.store.new_conversation(user_id, cid)
            conv = {"user_id": user_id}
        user_id = user_id or conv.get("user_id")
        state = DialogueState.model_validate(self.store.load_state(cid) or {})
        plan = self.plan(text, state, user_id, ablate, trace)
        state, decision, recs, template_text, messages = (plan.state, plan.decision, plan.recs,
                                                          plan.template_text, plan.messages)
        template = self.kb.templates.get(decision.template_id or "")

        # generate, stopping early once the draft is clearly off the template or cites unlisted items
        trace["prompt_tokens"] = self.llm.count_tokens("\n".join(m["content"] for m in messages))
        cancel = cancel or threading.Event()
        pieces: list[str] = []
        t_gen = time.perf_counter()
        ttft = None
        aborted = None
        try:
            for piece in self.llm.stream(messages, self.settings.llm.max_new_tokens, cancel=cancel):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                pieces.append(piece)
                yield TokenEvent(piece)
                if len(pieces) % 8 == 0 and (aborted := self._off_track("".join(pieces), recs, template_text)):
                    cancel.set()
                    break
        except Exception as exc:  # a failing model must not lose the turn: fall back below
            log.exception("generation failed")
            trace["generation_error"] = f"{type(exc).__name__}: {exc}"
        generated = "".join(pieces).strip()
        trace["generation"] = {"backend": self.llm.name, "ttft_s": round(ttft or 0.0, 3),
                               "generate_s": round(time.perf_counter() - t_gen, 3),
                               "tokens": self.llm.count_tokens(generated) if generated else 0,
                               "stopped_early": aborted, "raw": generated}

        # ground
        report = check_text(generated, recs, self.kb, template_text=template_text,
                            similarity=self.index.embedder.similarity if template_text else None,
                            min_similarity=self.settings.grounding.min_template_similarity,
                            must_cite=decision.route in ("recommend", "both"),
                            context_items=set(state.mentioned_items))
        reply = generated
        if not report.ok:
            reply = fallback_text(decision.route, template_text, recs, NO_MATCH)
            report.fallback = True
        elif decision.route in ("recommend", "both") and not recs:
            reply = fallback_text(decision.route, template_text, recs, NO_MATCH)
            report.fallback = True
            report.problems.append("no allowed item to recommend")
        trace.setdefault("grounding", {}).update({"ok": report.ok, "fallback": report.fallback,
                                                  "problems": report.problems})

        # respond and log
        state.history.extend([{"role": "user", "content": text}, {"role": "assistant", "content": reply}])
        state.history = state.history[-2 * max(self.settings.history_turns, 1):]
        if recs:
            state.last_recommended = [r.item_id for r in recs]
        trace["latency_s"] = round(time.perf_counter() - t0, 3)
        sources = ([f"template:{decision.template_id}"] if template else []) + [f"item:{r.item_id}" for r in recs]
        result = TurnResult(conversation_id=cid, text=reply, route=decision.route, recommendations=recs,
                            template_id=decision.template_id if template else None, sources=sources, trace=trace)
        result.turn_id = self.store.save_turn(cid, state.model_dump(), text, reply, decision.route,
                                              result.template_id, [r.item_id for r in recs],
                                              result.model_dump(exclude={"trace": {"generation": {"raw"}}}))
        yield ResultEvent(result)

    def plan(self, text: str, state: DialogueState, user_id: str | None, ablate: Iterable[str] = (),
             trace: dict[str, Any] | None = None, forced_items: list[str] | None = None,
             forced_template: str | None = None, annotated: TurnAnnotations | None = None,
             rank_always: bool = False, depth: int = 0, query_embedding: Any = None,
             history_before: datetime | None = None) -> "TurnPlan":
        """Everything before generation, without touching the store: update the state with
        ``text``, route, retrieve, rank, fill the template and build the prompt. Training and
        evaluation call this to build prompts exactly as the live turn does; training passes
        the logged items / template so the target reply only cites what the prompt shows.
        Evaluation passes the log's entity ``annotated``, ``rank_always`` (rank even when the
        router would not), ``depth`` (keep that many ranked ids in the trace) and ``history_before``
        (the conversation's start: later behaviour is not known yet)."""
        ablate = set(ablate)
        trace = trace if trace is not None else {}
        before = state.constraints.model_copy(deep=True)
        state = update_state(state, text, self.linker, annotated)
        constraint_changed = state.constraints != before
        history = (history_of(self.kb, user_id, history_before) if "history" not in ablate
                   else UserHistory(user_id=user_id))
        profile = profile_text(self.kb, user_id, before=history_before) if "profile" not in ablate else "Not available."
        if state.liked_items and "profile" not in ablate:
            liked = [self.kb.items[i].title for i in state.liked_items[-5:] if i in self.kb.items]
            profile += " In this conversation they said they like: " + "; ".join(liked) + "."

        # retrieve templates and route
        q_emb = query_embedding if query_embedding is not None else self.index.embedder.embed([text])[0]
        found = self.index.search_templates(text, self.settings.retrieval.templates_k + 1, query_embedding=q_emb)
        rec_vote = dict(found).get(RECOMMEND_LABEL, 0.0)
        tpls = [(i, s) for i, s in found if i in self.kb.templates][: self.settings.retrieval.templates_k]
        top = tpls[0] if tpls else None
        intent = self.kb.templates[top[0]].intent if top else None
        decision = decide(text, state, top, intent, constraint_changed,
                          self.settings.retrieval.template_min_similarity, recommend_vote=rec_vote)
        trace["route"] = {"route": decision.route, "reasons": decision.reasons, "recommend_vote": round(rec_vote, 3),
                          "templates": [{"id": i, "similarity": round(s, 3)} for i, s in tpls]}
        if decision.route not in ("recommend", "both"):
            # a service question names things ("return my headphones") without asking for them
            state.constraints.categories = before.categories
        if decision.route in ("recommend", "both") and (state.constraints.categories or state.mentioned_items
                                                        or not state.last_request or not constraint_changed):
            state.last_request = text

        # rank
        recs: list[Recommendation] = []
        rank_inputs = None
        if decision.route in ("recommend", "both") or rank_always:
            query = state.last_request or text
            rank_inputs = (query, profile)
            emb = q_emb if query == text else None
            t_rank = time.perf_counter()
            recs, rank_trace = self.ranker.rank(query, state, history, profile, query_embedding=emb,
                                                use_kg="kg" not in ablate, use_llm="llm_rank" not in ablate,
                                                depth=depth)
            rank_trace["ms"] = round(1000 * (time.perf_counter() - t_rank), 1)
            trace["rank"] = rank_trace
            recs, dropped = check_recommendations(recs, self.kb,
                                                  lambda i: self.ranker.allowed(self.kb.items[i], state, history))
            trace.setdefault("grounding", {})["dropped"] = dropped

        if forced_items is not None:
            recs = [self.ranker.explain_item(i, history) for i in forced_items if i in self.kb.items]
            route = decision.route if decision.route in ("recommend", "both") else "recommend"
            decision = RouteDecision(route if recs else decision.route, forced_template or decision.template_id,
                                     decision.template_similarity, decision.reasons + ["items from the log"])
        elif forced_template is not None:
            route = "service" if decision.route in ("recommend", "chitchat") else decision.route
            decision = RouteDecision(route, forced_template, decision.template_similarity,
                                     decision.reasons + ["template from the log"])

        # template with slots filled from known data
        template = self.kb.templates.get(decision.template_id or "")
        template_text = template.render(self._slot_values(text, state, user_id)) if template else None

        facts = self._facts(state, recs, "kg" not in ablate)
        messages = self._messages(state, text, profile, facts, recs, template_text, decision.route)
        return TurnPlan(text, state, decision, recs, template_text, messages, trace, rank_inputs)

    def feedback(self, turn_id: int, kind: str, item_id: str | None = None) -> int:
        return self.store.add_feedback(turn_id, kind, item_id)

    # ------------------------------------------------------------ helpers

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

    def _guard(self, message: str, trace: dict[str, Any]) -> str:
        if not isinstance(message, str):
            raise InputRejected("message must be text")
        text = message.replace("\x00", "").strip()
        if not text:
            raise InputRejected("message is empty")
        limit = self.settings.max_message_chars
        if len(text) > limit:
            raise InputRejected(f"message is {len(text)} characters; the limit is {limit}")
        masked = mask_pii(text)
        trace["guard"] = {"pii_masked": masked != text, "injection_suspected": bool(_INJECTION.search(text))}
        return masked

    def _slot_values(self, text: str, state: DialogueState, user_id: str | None) -> dict[str, str]:
        values = self.kb.shop.slot_values()
        user = self.kb.users.get(user_id or "")
        if user and user.name:
            values["customer_name"] = user.name.split()[0]
        past = " ".join(h["content"] for h in state.history if h["role"] == "user")
        if (m := _ORDER_ID.search(text) or _ORDER_ID.search(past)):
            values["order_id"] = "#" + m.group(1)
        if state.mentioned_items:
            values["item_title"] = "your " + self.kb.items[state.mentioned_items[-1]].title
        return values

    def _facts(self, state: DialogueState, recs: list[Recommendation], use_kg: bool) -> list[str]:
        if not use_kg:
            return []
        facts: list[str] = []
        for r in recs:
            facts.extend(r.evidence.kg_paths[:1])
        for item_id in state.mentioned_items[-2:]:
            for t in self.kg.facts(item_id, limit=3):
                facts.append(f"{self.kg.label(t.subject)} {t.predicate.replace('_', ' ')} {self.kg.label(t.object)}")
        return list(dict.fromkeys(facts))[:6]

    def _messages(self, state: DialogueState, text: str, profile: str, facts: list[str],
                  recs: list[Recommendation], template_text: str | None, route: str) -> list[Message]:
        p = self.prompts
        system = p.render("system.j2", shop_name=self.kb.shop.name,
                          example_id=next(iter(self.kb.items)) if self.kb.items else "ID")
        msgs: list[Message] = [{"role": "system", "content": system}]
        n = 2 * self.settings.history_turns
        for h in (state.history[-n:] if n else []):
            msgs.append({"role": h["role"], "content": h["content"]})  # type: ignore[typeddict-item]
        msgs.append({"role": "user", "content": p.render(
            "turn.j2", profile=profile, facts=facts, items=[r.model_dump() for r in recs],
            template=template_text, message=text, instruction=p.instructions[route])})
        return msgs
