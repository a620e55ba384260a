"""Planning a turn: everything between the guarded message and the model.

:class:`Planner` updates the dialogue state with the message, routes it, retrieves
templates and items, ranks, fills the template and builds the prompt. It holds no
store and no model (the ranker may hold one for its Yes/No score), so the live turn,
training and evaluation all plan with it and get the same prompt for the same input;
``tests/unit/turn/test_prompt_parity.py`` proves it.

What differs between callers is stated in :class:`PlanOptions`, never in a copy of
this code: training passes the items and template the logged agent used, evaluation
asks for the ranked list even when the router would not rank, and ablations switch
parts off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chatrec.config import Settings
from chatrec.kb import RECOMMEND_LABEL, KnowledgeBase
from chatrec.kg.base import KnowledgeGraph
from chatrec.llm.base import Message
from chatrec.retrieval.base import Retriever
from chatrec.turn.claims import stock_problems
from chatrec.turn.clarify import Question, answers_pending, ask, order_number, with_order_number
from chatrec.turn.classify import TurnClassifier, load_or_train
from chatrec.turn.compose import LIKED_PREFIX, Prompts, build_messages, kg_facts, slot_values
from chatrec.turn.escalate import assess, handoff_summary
from chatrec.turn.ground import check_recommendations
from chatrec.turn.profile import UserHistory, history_of, profile_text
from chatrec.turn.rank import Ranker
from chatrec.turn.route import Route, RouteDecision, decide, decide_learned
from chatrec.turn.shown import ShownAnswer, answer_about_shown
from chatrec.turn.state import DialogueState, EntityLinker, TurnAnnotations, update_state
from chatrec.types import Recommendation

ABLATIONS = ("kg", "profile", "llm_rank", "history")


@dataclass(frozen=True)
class TurnInput:
    """One customer message and what is known before it.

    ``text`` is already guarded (PII masked). ``as_of`` cuts the user's behaviour
    history (a replayed conversation's start: later purchases are not known yet).
    ``annotated`` carries a log's own entity annotations, used instead of linking.
    """

    text: str
    state: DialogueState
    user_id: str | None = None
    as_of: datetime | None = None
    annotated: TurnAnnotations | None = None
    negative_feedback: int = 0  # thumbs-down given earlier in this conversation (escalation)


@dataclass(frozen=True)
class PlanOptions:
    """How a caller's plan differs from the live default (which is ``PlanOptions()``)."""

    ablate: frozenset[str] = frozenset()
    forced_items: tuple[str, ...] | None = None  # show these (a logged agent's items), explained
    forced_template: str | None = None  # answer with this template (the logged agent's)
    rank_always: bool = False  # rank even when the router would not (evaluation)
    depth: int = 0  # keep this many ranked ids in the trace
    query_embedding: Any = None  # the message's embedding, when the caller has it already

    def __post_init__(self) -> None:
        unknown = set(self.ablate) - set(ABLATIONS)
        if unknown:
            raise ValueError(f"unknown ablation(s) {sorted(unknown)}; choose from {ABLATIONS}")


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
    history: UserHistory = field(default_factory=UserHistory)
    # why the reply is ``template_text`` as it is, with no model draft: a clarifying question, or an
    # answer about the items shown written from the catalogue (a rewording could only lose its facts)
    exact: str | None = None


class Planner:
    """Plans turns from the KB, the retriever, the KG, the ranker and the prompts."""

    def __init__(
        self,
        settings: Settings,
        kb: KnowledgeBase,
        retriever: Retriever,
        kg: KnowledgeGraph,
        ranker: Ranker,
        prompts: Prompts,
    ):
        self.settings, self.kb, self.retriever, self.kg, self.ranker, self.prompts = (
            settings,
            kb,
            retriever,
            kg,
            ranker,
            prompts,
        )
        self.linker = EntityLinker(kb)
        self._router: TurnClassifier | None = None

    @property
    def router(self) -> TurnClassifier:
        """The learned router for this KB's logs (trained on first use when none is saved)."""
        if self._router is None:
            self._router = load_or_train(self.settings, self.kb, self.retriever.embedder)
        return self._router

    def plan(
        self, turn: TurnInput, options: PlanOptions = PlanOptions(), trace: dict[str, Any] | None = None
    ) -> TurnPlan:
        ablate = options.ablate
        trace = trace if trace is not None else {}
        text, user_id = turn.text, turn.user_id
        before = turn.state.constraints.model_copy(deep=True)
        state = update_state(turn.state, text, self.linker, turn.annotated)
        constraint_changed = state.constraints != before
        history = history_of(self.kb, user_id, turn.as_of) if "history" not in ablate else UserHistory(user_id=user_id)
        profile = self._profile(user_id, turn.as_of, state, "profile" not in ablate)

        decision, q_emb = self._route(text, state, constraint_changed, options, trace, turn.negative_feedback)
        # the question asked last turn answered, a question about the items shown, an order number given
        asked, state.pending = turn.state.pending, None
        free = options.forced_items is None and options.forced_template is None
        answer: ShownAnswer | None = None
        continued = free and answers_pending(asked, text, state, self.kb)
        if continued:
            decision = self._continue(asked or {}, text, decision)
        elif free and (answer := answer_about_shown(text, turn.state, self.kb, self.kg)):
            why = decision.reasons + [answer.reason]
            decision = RouteDecision("service", None, decision.template_similarity, why)
        elif free and order_number(text, self.kb) and decision.template_id:
            tid = with_order_number(self.kb, decision.template_id, text, self.retriever.embedder.similarity)
            decision.template_id = tid
        trace.setdefault("route", {})["final"] = {"route": decision.route, "template": decision.template_id}
        if decision.route not in ("recommend", "both"):
            # a service question names things ("return my headphones") without asking for them
            state.constraints.categories = before.categories
        if decision.route in ("recommend", "both") and (
            state.constraints.categories or state.mentioned_items or not state.last_request or not constraint_changed
        ):
            state.last_request = text
        if continued and asked and asked.get("request") and decision.route == "recommend":
            state.last_request = asked["request"]  # the request the question was about, now answerable

        recs: list[Recommendation] = []
        rank_inputs = None
        if decision.route in ("recommend", "both") or options.rank_always:
            query = state.last_request or text
            rank_inputs = (query, profile)
            recs = self._rank(query, state, history, profile, q_emb if query == text else None, options, trace)

        if options.forced_items is not None:
            recs = [self.ranker.explainer.explain_item(i, history) for i in options.forced_items if i in self.kb.items]
            route: Route = decision.route if decision.route in ("recommend", "both") else "recommend"
            decision = RouteDecision(
                route if recs else decision.route,
                options.forced_template or decision.template_id,
                decision.template_similarity,
                decision.reasons + ["items from the log"],
            )
        elif options.forced_template is not None:
            route = decision.route
            if decision.template_id != options.forced_template and route in ("recommend", "chitchat", "out_of_scope"):
                route = "service"
            decision = RouteDecision(
                route,
                options.forced_template,
                decision.template_similarity,
                decision.reasons + ["template from the log"],
            )

        question: Question | None = None
        if free and not options.rank_always and not continued and answer is None:
            changed = state.constraints.categories != before.categories
            rd = decision
            question = ask(self.settings.clarify, self.kb, self.prompts.render, state, rd.route, rd.template_id,
                           text, history.owned, changed)  # fmt: skip
        if question is not None:
            recs, state.pending = [], question.pending
            why = decision.reasons + [f"asks first: {question.reason}"]
            decision = RouteDecision("service", question.template_id, decision.template_similarity, why)
            trace["route"]["final"] = {"route": "service", "template": question.template_id, "asks": question.kind}

        template = self.kb.templates.get(decision.template_id or "")
        values = slot_values(self.kb, text, state, user_id)
        if continued and (asked or {}).get("kind") == "order_id" and (number := order_number(text, self.kb, True)):
            values["order_id"] = number  # given without its "#" in answer to our question
        if template is not None and "item_title" in values and free and answer is None and question is None:
            template = self._true_to_stock(template, values, trace)
            decision.template_id = template.id
        template_text = template.render(values) if template else None
        if answer is not None:
            template_text = answer.text
        elif question is not None and question.text:
            template_text = question.text
        if decision.route == "out_of_scope":
            template_text = self.out_of_scope_text(decision.clarify)
        facts = kg_facts(self.kg, state, recs) if "kg" not in ablate else []
        messages = build_messages(
            self.prompts,
            self.kb.shop.name,
            next(iter(self.kb.items), "ID"),
            state.history,
            self.settings.history_turns,
            text,
            profile,
            facts,
            recs,
            template_text,
            decision.route,
        )
        exact = None
        if answer is not None:
            exact = "the answer about the items shown is written from the catalogue"
        elif question is not None and question.text:
            exact = "a clarifying question is sent as it is"
        return TurnPlan(text, state, decision, recs, template_text, messages, trace, rank_inputs, history, exact)

    # ------------------------------------------------------------ stages

    def _true_to_stock(self, template, values: dict[str, str], trace: dict[str, Any]):
        """The template of the same intent whose stock claim about the item asked about is true.
        The words of "is the Sony WH-1000XM5 in stock?" cannot tell the "in stock" answer from the
        "out of stock" one; the catalogue can."""
        if not stock_problems(self.kb, template.render(values)):
            return template
        for other in self.kb.templates.values():
            if other.intent == template.intent and other.id != template.id:
                if not stock_problems(self.kb, other.render(values)):
                    trace.setdefault("route", {})["stock_checked"] = {"was": template.id, "now": other.id}
                    return other
        return template

    def _continue(self, asked: dict[str, str], text: str, decision: RouteDecision) -> RouteDecision:
        """The turn after a clarifying question it answers: the asked-about request, now answerable."""
        why = decision.reasons + [f"answers the question asked ({asked.get('kind')})"]
        if asked.get("kind") == "order_id":
            intent = asked.get("intent")
            fits = [t for t in self.kb.templates.values() if t.intent == intent and "{order_id}" in t.text]
            request = f"{asked.get('request', '')} {text}"
            sim = self.retriever.embedder.similarity
            tid = max(fits, key=lambda t: sim(request, t.text)).id if fits else decision.template_id
            if decision.template_id in {t.id for t in fits}:
                tid = decision.template_id  # the router's own pick for the answer fits
            return RouteDecision("service", tid, decision.template_similarity, why)
        return RouteDecision("recommend", None, decision.template_similarity, why)

    def _profile(self, user_id: str | None, as_of: datetime | None, state: DialogueState, use: bool) -> str:
        if not use:
            return "Not available."
        profile = profile_text(self.kb, user_id, before=as_of)
        if state.liked_items:
            liked = [self.kb.items[i].title for i in state.liked_items[-5:] if i in self.kb.items]
            profile += LIKED_PREFIX + "; ".join(liked) + "."
        return profile

    def out_of_scope_text(self, clarify: list[str]) -> str:
        """The reply when no answer fits: a clarifying question between two intents, or what
        the assistant can help with (the shop's own intents, most logged first)."""
        rs = self.settings.router
        skip = {*rs.chitchat_intents, *rs.handoff_intents, *rs.escalate_intents}
        router = self.router
        per_class = router.info.get("per_class", {})
        by_use = sorted(router.classes, key=lambda c: -per_class.get(c, 0))
        topics = list(
            dict.fromkeys(i.replace("_", " ") for c in by_use if (i := router.class_intent.get(c)) and i not in skip)
        )
        return self.prompts.render(
            "out_of_scope.j2",
            shop=self.kb.shop.name,
            clarify=[c.replace("_", " ") for c in clarify],
            topics=topics[:6],
            recommend="recommend" in router.class_route.values(),
        )

    def _route(
        self,
        text: str,
        state: DialogueState,
        constraint_changed: bool,
        options: PlanOptions,
        trace: dict[str, Any],
        negative_feedback: int = 0,
    ) -> tuple[RouteDecision, Any]:
        r = self.settings.retrieval
        q_emb = options.query_embedding
        if q_emb is None:
            q_emb = self.retriever.embedder.embed([text])[0]
        if self.settings.router.enabled:
            return self._route_learned(text, state, constraint_changed, q_emb, trace, negative_feedback), q_emb
        found = self.retriever.search_templates(text, r.templates_k + 1, query_embedding=q_emb)
        rec_vote = dict(found).get(RECOMMEND_LABEL, 0.0)
        tpls = [(i, s) for i, s in found if i in self.kb.templates][: r.templates_k]
        top = tpls[0] if tpls else None
        intent = self.kb.templates[top[0]].intent if top else None
        decision = decide(
            text, state, top, intent, constraint_changed, r.template_min_similarity, recommend_vote=rec_vote
        )
        trace["route"] = {
            "route": decision.route,
            "reasons": decision.reasons,
            "recommend_vote": round(rec_vote, 3),
            "templates": [{"id": i, "similarity": round(s, 3)} for i, s in tpls],
        }
        return decision, q_emb

    def _route_learned(
        self,
        text: str,
        state: DialogueState,
        constraint_changed: bool,
        q_emb: Any,
        trace: dict[str, Any],
        negative_feedback: int,
    ) -> RouteDecision:
        rs, router = self.settings.router, self.router
        t0 = time.perf_counter()
        pred = router.predict(text, q_emb, self.retriever.embedder.embed)
        esc = assess(
            text,
            state.history,
            router.escalation_score(text, q_emb),
            router.escalation_threshold,
            pred.intent,
            rs.escalate_intents,
            negative_feedback,
            rs.repeat_similarity,
        )
        decision = decide_learned(
            pred,
            state,
            constraint_changed,
            esc,
            router.info.get("handoff_template"),
            lambda why: handoff_summary(text, state.history, why, pred.intent),
        )
        trace["route"] = {
            "route": decision.route,
            "reasons": decision.reasons,
            "router": "learned",
            "confidence": round(pred.confidence, 3),
            "oos_threshold": router.oos_threshold,
            "escalation_score": round(esc.score, 3),
            "classes": [{"id": c, "p": round(p, 3)} for c, p in pred.top],
            "ms": round(1000 * (time.perf_counter() - t0), 2),
        }
        if decision.clarify:
            trace["route"]["clarify"] = decision.clarify
        if decision.handoff_summary:
            trace["route"]["handoff_summary"] = decision.handoff_summary
        return decision

    def _rank(
        self,
        query: str,
        state: DialogueState,
        history: UserHistory,
        profile: str,
        q_emb: Any,
        options: PlanOptions,
        trace: dict[str, Any],
    ) -> list[Recommendation]:
        t_rank = time.perf_counter()
        recs, rank_trace = self.ranker.rank(
            query,
            state,
            history,
            profile,
            query_embedding=q_emb,
            use_kg="kg" not in options.ablate,
            use_llm="llm_rank" not in options.ablate,
            depth=options.depth,
        )
        rank_trace["ms"] = round(1000 * (time.perf_counter() - t_rank), 1)
        trace["rank"] = rank_trace
        recs, dropped = check_recommendations(
            recs, self.kb, lambda i: self.ranker.allowed(self.kb.items[i], state, history)
        )
        trace.setdefault("grounding", {})["dropped"] = dropped
        return recs
