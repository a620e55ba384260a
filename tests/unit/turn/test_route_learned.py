"""The learned router (issue 17): routes from the logs, out of scope, escalation, retraining."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from chatrec.config import load_settings
from chatrec.importers.qa_logs import ColumnMapping, import_file
from chatrec.kb import load_kb
from chatrec.turn.classify import OUT_OF_SCOPE_LABEL, choose_threshold, load_or_train, router_path
from chatrec.turn.escalate import handoff_summary, repeats
from chatrec.turn.plan import TurnInput
from chatrec.turn.state import DialogueState
from tests_support import REPO

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="module")
def planner(tmp_path_factory, kb, shared_index):
    from chatrec.chatbot import build_planner

    settings = load_settings(data_dir=str(tmp_path_factory.mktemp("router")), llm={"backend": "fake"})
    return build_planner(settings, kb=kb, retriever=shared_index)


def _route(planner, text, **kw):
    trace: dict = {}
    plan = planner.plan(TurnInput(text, kw.pop("state", DialogueState()), **kw), trace=trace)
    return plan, trace


@pytest.mark.parametrize(
    "text",
    [
        "can you show me the early exit charge?",
        "what payment options do you have?",
        "need an update on my refund",
        "want a refund for the broken speaker",
    ],
)
def test_service_question_with_shopping_words_is_not_routed_to_recommend(planner, text):
    plan, _ = _route(planner, text)
    assert plan.decision.route not in ("recommend", "both"), plan.decision.reasons
    assert not plan.recs


def test_route_accuracy_on_the_mixed_labelled_set_is_at_least_0_95(planner):
    """The router's decision (trace route.route), before any later step of the turn (a
    clarifying question about the budget, say) changes the reply."""
    rows = [json.loads(line) for line in (FIXTURES / "routing" / "route_mix.jsonl").read_text().splitlines()]
    ok = [_route(planner, r["text"])[1]["route"]["route"] in [r["route"], *r.get("also", [])] for r in rows]
    assert sum(ok) / len(ok) >= 0.95, [r["text"] for r, good in zip(rows, ok) if not good]


def test_no_fitting_template_gives_an_out_of_scope_reply_not_an_unrelated_template(planner):
    plan, trace = _route(planner, "what's the weather like in Paris tomorrow?")
    assert plan.decision.route == "out_of_scope" and plan.decision.template_id is None
    assert plan.template_text and "can help with" in plan.template_text and "track order" in plan.template_text
    assert trace["route"]["router"] == "learned" and "oos_threshold" in trace["route"]


def test_out_of_scope_turn_answers_with_what_the_assistant_can_do(fake_bot):
    result = fake_bot.ask("write me a poem about the sea", user_id="U001")
    assert result.route == "out_of_scope" and result.template_id is None and "can help with" in result.text


def test_anger_never_escalated_is_fixed_angry_message_hands_off_with_a_summary(planner):
    history = [
        {"role": "user", "content": "where is my order #VW-58213?"},
        {"role": "assistant", "content": "You can follow it under My Account > Orders."},
    ]
    plan, trace = _route(planner, "this is ridiculous!!! fix it NOW", state=DialogueState(history=history))
    assert plan.decision.route == "handoff"
    summary = trace["route"]["handoff_summary"]
    assert "anger" in summary and "where is my order" in summary and "Last assistant reply" in summary


def test_contact_human_agent_intent_name_hands_off(tmp_path):
    """Bitext calls the intent contact_human_agent; the keyword router checked contact_human."""
    rows = [
        ("I want to talk to a human", "Connecting you to an agent.", "contact_human_agent"),
        ("can I speak with someone from support", "Connecting you to an agent.", "contact_human_agent"),
        ("I need a real person please", "Connecting you to an agent.", "contact_human_agent"),
        ("get me an operator", "Connecting you to an agent.", "contact_human_agent"),
        ("where is my order", "Track it under Orders.", "track_order"),
        ("track my parcel", "Track it under Orders.", "track_order"),
        ("has my package shipped", "Track it under Orders.", "track_order"),
        ("status of my delivery", "Track it under Orders.", "track_order"),
    ]
    src = tmp_path / "log.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("instruction", "response", "intent"), *rows])
    import_file(src, tmp_path / "kb", preset="bitext")
    planner = _tiny_planner(tmp_path)
    plan, _ = _route(planner, "you are not helpful at all, I want help talking with someone")
    assert plan.decision.route == "handoff"


def _tiny_planner(tmp_path, **router):
    from chatrec.chatbot import build_planner

    settings = load_settings(
        kb_dir=str(tmp_path / "kb"), data_dir=str(tmp_path / "state"), llm={"backend": "fake"}, router=router
    )
    return build_planner(settings)


def test_same_question_twice_escalates(planner):
    history = [
        {"role": "user", "content": "how do I reset my password on the app"},
        {"role": "assistant", "content": "Use the Forgot password link."},
    ]
    assert repeats("How do I reset my password on the app?", history, 0.8)
    plan, trace = _route(planner, "How do I reset my password on the app?", state=DialogueState(history=history))
    assert plan.decision.route == "handoff" and "asked the same question again" in trace["route"]["handoff_summary"]
    assert repeats("ok", [{"role": "user", "content": "ok"}], 0.8) is None


def test_thumbs_down_in_the_conversation_escalates(planner):
    plan, trace = _route(planner, "how do I reset my password?", negative_feedback=1)
    assert plan.decision.route == "handoff" and "thumbs-down" in trace["route"]["handoff_summary"]
    calm, _ = _route(planner, "how do I reset my password?")
    assert calm.decision.route == "service"


def test_handoff_summary_is_short_and_names_the_topic():
    text = handoff_summary("still broken!!", [{"role": "user", "content": "x" * 500}], ["anger"], "damaged_item")
    assert text.startswith("Handoff: anger.") and "Topic: damaged item." in text and len(text) < 600


def test_threshold_is_chosen_on_calibration_data_not_by_hand():
    classes = ["a", "b", OUT_OF_SCOPE_LABEL]
    probs = np.asarray([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.4, 0.35, 0.25], [0.3, 0.3, 0.4], [0.35, 0.33, 0.32]])
    truth = ["a", "a", OUT_OF_SCOPE_LABEL, OUT_OF_SCOPE_LABEL, OUT_OF_SCOPE_LABEL]
    tau, info = choose_threshold(probs, classes, truth)
    assert 0.4 < tau <= 0.8 and info["oos_recall"] == 1.0 and info["in_scope_refused"] == 0.0


def test_router_is_saved_and_retrained_when_the_logs_change(tmp_path, caplog):
    src = FIXTURES / "tienda_es.csv"
    mapping = ColumnMapping(user="user", agent="agent", intent="intent")
    import_file(src, tmp_path / "kb", preset="generic", mapping=mapping, template_prefix="tienda")
    settings = load_settings(kb_dir=str(tmp_path / "kb"), data_dir=str(tmp_path / "state"))
    planner = _tiny_planner(tmp_path)
    first = planner.router
    assert router_path(settings).exists() and json.loads(router_path(settings).with_suffix(".json").read_text())
    with (tmp_path / "kb" / "transcripts.jsonl").open("a", encoding="utf-8") as fh:
        turns = [{"role": "user", "text": "¿aceptan Apple Pay?"}]
        turns.append({"role": "agent", "text": "Sí.", "intent": "metodos_pago", "template_id": "tienda_metodos_pago"})
        fh.write(json.dumps({"conversation_id": "nuevo-1", "turns": turns}, ensure_ascii=False) + "\n")
    second = load_or_train(settings, load_kb(tmp_path / "kb"), planner.retriever.embedder)
    assert second.logs_hash != first.logs_hash


def test_non_english_shop_routes_with_its_own_logs(tmp_path):
    mapping = ColumnMapping(user="user", agent="agent", intent="intent")
    import_file(FIXTURES / "tienda_es.csv", tmp_path / "kb", preset="generic", mapping=mapping, template_prefix="t")
    planner = _tiny_planner(tmp_path, handoff_intents=["hablar_con_agente"])
    unseen = {
        "¿dónde anda mi pedido? no ha llegado": "seguimiento_pedido",
        "¿cuál es el estado de mi paquete?": "seguimiento_pedido",
        "quiero devolver la tablet que compré": "devolucion",
        "¿cómo devuelvo un producto?": "devolucion",
        "¿puedo pagar con tarjeta de crédito?": "metodos_pago",
        "¿aceptan pagos a plazos?": "metodos_pago",
    }
    got = {t: _route(planner, t)[0].decision for t in unseen}
    right = [planner.kb.templates[d.template_id].intent == i for t, i in unseen.items() if (d := got[t]).template_id]
    assert sum(right) >= 5, {t: (d.route, d.template_id) for t, d in got.items()}
    assert _route(planner, "quiero hablar con una persona ya")[0].decision.route == "handoff"


def test_thumbs_down_given_in_the_chat_escalates_the_next_turn(fake_bot):
    first = fake_bot.ask("how do I reset my password?", user_id="U001")
    assert first.route == "service"
    fake_bot.feedback(first.turn_id, "thumbs_down", user_id="U001")
    again = fake_bot.ask("and where is my order?", first.conversation_id, "U001")
    assert again.route == "handoff" and "thumbs-down" in again.trace["route"]["handoff_summary"]


def test_representative_request_got_out_of_scope_reply_is_fixed_it_hands_off(planner):
    """'get me a representative now' was answered with the out-of-scope reply: written ways of
    asking for a person (route_examples.HANDOFF) now teach the shop's handoff template."""
    plan, trace = _route(planner, "get me a representative now")
    assert plan.decision.route == "handoff", plan.decision.reasons
    assert trace["route"]["handoff_summary"]


def test_damaged_item_report_was_escalated_is_fixed_it_gets_the_damaged_item_template(planner):
    """A calm problem report that a template answers is service, not a handoff (docs/routing.md)."""
    plan, _ = _route(planner, "the item arrived damaged")
    assert plan.decision.route == "service", plan.decision.reasons
    assert plan.decision.template_id and plan.decision.template_id.startswith("damaged_item")


def test_heldout_route_set_is_labelled_by_the_documented_routes():
    rows = [json.loads(line) for line in (FIXTURES / "routing" / "route_heldout.jsonl").read_text().splitlines()]
    routes = {"service", "recommend", "both", "handoff", "chitchat", "out_of_scope"}
    assert len(rows) >= 120
    assert all(r["route"] in routes and set(r.get("also", [])) <= routes for r in rows)
    assert all(r.get("escalate", False) == (r["route"] == "handoff") for r in rows)


def test_escalation_threshold_swung_with_the_cv_split_is_fixed_repeated_cv_and_one_standard_error_rule():
    """Fourth round: one 5-fold split's best F0.5 threshold moved between 0.35 and 0.5 as a few
    written examples came or went; the probabilities are now averaged over repeated splits and
    the highest threshold within one bootstrap standard error of the best F0.5 is kept."""
    from chatrec.turn.classify import choose_escalation_threshold

    rng = np.random.default_rng(1)
    y = np.r_[np.ones(40, int), np.zeros(160, int)]
    x = np.c_[y + rng.normal(0, 0.9, len(y)), rng.normal(0, 1, len(y))]
    tau, info = choose_escalation_threshold(x, y, 1.0)
    assert info["repeats"] == 3 and tau >= info["best_threshold"]
    assert info["f_beta"] >= info["best_f_beta"] - info["standard_error"]


def test_escalation_threshold_weighs_precision_over_recall():
    """F0.5: with scores that separate only partly, the chosen threshold keeps precision up."""
    from chatrec.turn.classify import choose_escalation_threshold

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(40, int), np.zeros(160, int)]
    x = np.c_[y + rng.normal(0, 0.8, len(y)), rng.normal(0, 1, len(y))]
    _, f_half = choose_escalation_threshold(x, y, 1.0)
    _, f_one = choose_escalation_threshold(x, y, 1.0, beta=1.0)
    assert f_half["beta"] == 0.5 and f_half["precision"] >= f_one["precision"]


# ------------------------------------------------------------------ second round (issue 17)


def test_clauses_split_at_punctuation_only():
    from chatrec.turn.classify import clauses

    assert clauses("what's your warranty, and could you suggest a sleeve?") == [
        "what's your warranty",
        "and could you suggest a sleeve?",
    ]
    assert clauses("where is my order and can I change it") == ["where is my order and can I change it"]
    assert clauses("thanks! ok") == []  # one-word pieces are not clauses
    assert clauses("¿dónde está mi pedido? y recomiéndame una funda") == [
        "¿dónde está mi pedido?",
        "y recomiéndame una funda",
    ]


def test_shopping_request_with_a_service_question_routes_both(planner):
    """A service question and a request for items in one message was routed to recommend (the
    service question unanswered): read clause by clause, it is 'both' with the service template."""
    plan, trace = _route(planner, "do you ship to Canada? and I need a good travel adapter, any suggestions?")
    assert trace["route"]["route"] == "both", trace["route"]["reasons"]
    assert plan.decision.template_id == "international_shipping_info"
    assert any(r.startswith("clauses:") for r in plan.decision.reasons)


def test_two_service_questions_in_one_message_are_not_both(planner):
    _, trace = _route(planner, "where is my order? I also need the invoice for it")
    assert trace["route"]["route"] == "service", trace["route"]["reasons"]


def test_compound_thresholds_are_chosen_on_the_calibration_split(planner):
    info = planner.router.info["compound"]
    assert planner.router.compound == (info["service_threshold"], info["recommend_threshold"])
    assert info["positives"] > 50 and info["recall"] > 0.7 and info["false_positive_rate"] < 0.05


def test_choose_compound_thresholds_takes_the_strictest_of_the_near_best():
    from chatrec.turn.classify import COMPOUND_SLACK, choose_compound_thresholds

    service = np.asarray([0.9, 0.8, 0.7, 0.6, 0.9, 0.3, 0.0, 0.0])
    items = np.asarray([0.99, 0.95, 0.9, 0.85, 0.5, 0.0, 0.9, 0.0])
    positive = np.asarray([True, True, True, True, False, False, False, False])
    (ts, tr), info = choose_compound_thresholds(service, items, positive)
    assert info["recall"] == 1.0 and info["false_positive_rate"] == 0.0
    assert (ts, tr) == (0.6, 0.85) and info["best_balanced_accuracy"] - info["balanced_accuracy"] <= COMPOUND_SLACK


def test_goodbye_got_out_of_scope_reply_is_fixed_it_is_chitchat(planner):
    """Written goodbyes and small talk now teach the shop's nearest chitchat template."""
    _, trace = _route(planner, "bye for now")
    assert trace["route"]["route"] == "chitchat", trace["route"]["reasons"]


def test_joke_request_was_escalated_is_fixed_it_is_out_of_scope(planner):
    """'tell me a joke' escalated on the anger word 'joke'; with character n-grams in the
    escalation model it is out of scope, while 'this is a joke' after a failure still hands off."""
    _, trace = _route(planner, "tell me a joke")
    assert trace["route"]["route"] == "out_of_scope", trace["route"]["reasons"]
    _, angry = _route(planner, "I've been waiting three weeks, this is a joke")
    assert angry["route"]["route"] == "handoff", angry["route"]["reasons"]


def test_other_trades_goods_worded_like_shopping_were_recommended_is_fixed_they_are_out_of_scope(planner):
    _, trace = _route(planner, "which stocks should I buy this year?")
    assert trace["route"]["route"] == "out_of_scope", trace["route"]["reasons"]


def test_threat_to_dispute_the_charge_was_answered_with_a_template_is_fixed_it_hands_off(planner):
    _, trace = _route(planner, "if I don't get my money back I'm disputing the charge with my bank")
    assert trace["route"]["route"] == "handoff", trace["route"]["reasons"]


# ------------------------------------------------------------------ third round (issue 17: the `both` route)


@pytest.mark.parametrize(
    "text",
    [
        "do you have the Beats Fit Pro in stock?",
        "can I still buy the steam deck oled, or is it sold out",
        "does the Anker 335 power bank work with a pixel 8",
        "will the ESR screen protector fit an iphone 14",
    ],
)
def test_stock_or_fit_question_about_a_named_product_was_routed_service_or_recommend_is_fixed_it_routes_both(
    planner, text
):
    """A stock/fit question about a named product is `both` (docs/routing.md): the route is the
    intent's, so "in stock" (logged without items) and "out of stock, here are alternatives"
    (logged with items) are one `both` intent, and their probabilities are summed."""
    _, trace = _route(planner, text)
    assert trace["route"]["route"] == "both", trace["route"]["reasons"]


def test_both_route_of_an_intent_was_decided_per_template_is_fixed_siblings_share_the_route(planner):
    """availability_in_stock was `service` while its sibling availability_out_of_stock was `both`
    (only out-of-stock answers showed items in the logs): the router's route depended on a
    guess about the catalogue the message cannot carry."""
    router = planner.router
    for a, b in (("availability_in_stock", "availability_out_of_stock"), ("compatibility_yes", "compatibility_no")):
        assert router.class_route[a] == router.class_route[b] == "both"
    assert router.class_route["refund_policy_overview"] == "service"


def test_sibling_templates_split_the_intents_vote_is_fixed_their_probabilities_are_summed(planner):
    """Two templates of one intent at 0.25 each lost to __recommend__ at 0.35: the intent (0.5) wins."""
    from chatrec.kb import RECOMMEND_LABEL

    router = planner.router
    probs = np.zeros(len(router.classes))
    probs[router.classes.index("availability_in_stock")] = 0.25
    probs[router.classes.index("availability_out_of_stock")] = 0.25
    probs[router.classes.index(RECOMMEND_LABEL)] = 0.35
    probs[router.classes.index(OUT_OF_SCOPE_LABEL)] = 0.15
    pred = router.decide(probs)
    assert pred.route == "both" and pred.intent == "product_availability" and pred.confidence == pytest.approx(0.5)


def test_stock_question_clause_with_a_request_for_items_was_not_compound_is_fixed_it_routes_both():
    """A clause asking about stock (a `both` intent) and a clause asking for items make a
    compound `both`; before, only `service`-route clauses counted."""
    from chatrec.turn.classify import compound_hit

    routes = ["both", "recommend", "service"]
    probs = np.asarray([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05]])
    assert compound_hit(probs, routes, 1, 0.5, 0.8) == (0, 0, 0.7, 0.9)
    assert compound_hit(probs, routes, 1, 0.5, 0.95) is None


def test_oos_threshold_bought_by_one_calibration_message_is_fixed_one_standard_error_rule():
    """A threshold that refuses real questions for a gain within one standard error of the
    calibration utility is not taken (it sent new wording of service questions out of scope)."""
    classes = ["a", "b", OUT_OF_SCOPE_LABEL]
    right = [[0.9, 0.05, 0.05]] * 30 + [[0.45, 0.3, 0.25]] * 2  # kept and right, two unsure
    wrong = [[0.9, 0.05, 0.05]] * 3  # confidently wrong: no threshold helps
    oos = [[0.2, 0.1, 0.7]] * 8 + [[0.3, 0.29, 0.28]]  # one out-of-scope message not caught by the class
    probs = np.asarray(right + wrong + oos)
    truth = ["a"] * 32 + ["b"] * 3 + [OUT_OF_SCOPE_LABEL] * 9
    tau, info = choose_threshold(probs, classes, truth)
    assert (
        info["best_threshold"] > 0.3 and tau == 0.0 and info["utility"] >= info["best_utility"] - info["standard_error"]
    )


def test_written_stock_fit_questions_use_the_shops_own_catalogue_names(kb):
    from chatrec.turn.classify import stock_fit_examples

    texts = stock_fit_examples(kb)
    assert len(texts) >= 40 and not any("{" in t for t in texts)
    names = {a.lower() for i in kb.items.values() for a in i.aliases}
    assert sum(any(n in t.lower() for n in names) for t in texts) >= len(texts) // 3


def test_both_labels_are_scored_strictly_service_is_not_accepted_for_a_stock_or_fit_question():
    """The policy (docs/routing.md) chose `both` for a named product's stock/fit question, with
    no `service` alternative: the fixtures score it so (route_heldout2, 4 and 5 were labelled so
    blind; route_heldout3 was written under the earlier rule, `service` accepted too)."""
    for name in ("route_mix.jsonl", "route_heldout.jsonl", "route_heldout2.jsonl", "route_heldout4.jsonl",
                 "route_heldout5.jsonl"):  # fmt: skip
        rows = [json.loads(line) for line in (FIXTURES / "routing" / name).read_text().splitlines() if line.strip()]
        assert not [r["text"] for r in rows if r["route"] == "both" and "service" in r.get("also", [])], name


def test_blind_set_scoring_keeps_aggregates_only_never_a_message(planner, tmp_path):
    """benchmarks/router.py --blind PATH (for route_heldout3.jsonl): the result holds accuracy,
    per-route counts and the confusion, never the messages (they must stay unseen)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("router_bench", REPO / "benchmarks" / "router.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [
        {"text": "zq7 where is my parcel zq7", "route": "service"},
        {"text": "zq8 recommend a speaker under 50 zq8", "route": "recommend"},
        {"text": "zq9 is the pixel 8 in stock zq9", "route": "both"},
    ]
    out = bench.blind_part(planner, rows, 0)
    assert out["messages"] == 3 and set(out["by_route"]) == {"service", "recommend", "both"}
    assert "zq" not in json.dumps(out) and "misrouted" not in out
    assert bench.accepted({"route": "both"}, "both") and not bench.accepted({"route": "both"}, "service")
    assert bench.accepted({"route": "service", "also": ["handoff"]}, "handoff")


# ------------------------------------------------------------------ fourth round (issue 17: unseen wording)
# The failure families of route_heldout3.jsonl (blind in the third round) and route_heldout2.jsonl,
# tested with messages written for these tests (not taken from the development sets).


@pytest.mark.parametrize(
    "text",
    [
        "the wall charger's prongs turned black and it smelled like smoke",
        "I'm presenting at a trade show on Wednesday and the projector still hasn't left your warehouse",
        # written with the two above, before the escalation threshold's one-standard-error rule;
        # still missed (scores under the higher threshold): a known limit, docs/routing.md
        *[
            pytest.param(t, marks=pytest.mark.xfail(reason="fourth round: escalation recall on new wording"))
            for t in (
                "there's a charge from your store on my credit card for something I never ordered",
                "someone used my account to ship a TV to an address I don't know",
                "the phone gets scorching hot while charging and the back is bulging",
            )
        ],
    ],
)
def test_escalation_without_the_usual_keywords_was_answered_with_a_template_is_fixed_it_hands_off(planner, text):
    """handoff -> service on the blind set: purchases the customer did not make, safety hazards
    in plain words and deadlines were answered with a service template; the written escalation
    set now covers them without "urgent", "fraud" or "hacked"."""
    _, trace = _route(planner, text)
    assert trace["route"]["route"] == "handoff", trace["route"]["reasons"]


@pytest.mark.parametrize(
    "text",
    [
        "how do I change the card on my Hulu account",
        "my AT&T phone bill doubled this month",
    ],
)
def test_other_companies_accounts_and_bills_were_answered_with_a_template_is_fixed_they_are_out_of_scope(planner, text):
    """out_of_scope -> service: another company's subscription, account or bill worded like a
    request to this shop got this shop's account or payment template."""
    _, trace = _route(planner, text)
    assert trace["route"]["route"] == "out_of_scope", trace["route"]["reasons"]


@pytest.mark.parametrize(
    "text",
    [
        "the JBL Flip 6 I got last month won't hold a charge, is that covered",
        "can I send the Fujifilm X-S20 back if I haven't opened it",
        "the OtterBox case I bought is a bit loose, can I exchange it for another one",
        "my Galaxy Buds2 Pro came with one earbud missing",
    ],
)
def test_service_question_naming_a_product_was_routed_both_is_fixed_it_is_service(planner, text):
    """service -> both: the written stock/fit questions (filled with catalogue names) pulled every
    question naming a product towards the stock/fit intents; service questions naming a product
    (PRODUCT_SERVICE) now teach the nearest service template."""
    _, trace = _route(planner, text)
    assert trace["route"]["route"] == "service", trace["route"]["reasons"]


def test_request_for_items_naming_the_customers_device_was_routed_both_is_fixed_it_is_recommend(planner):
    _, trace = _route(planner, "I just bought the wh-1000xm4, what carrying case goes with them")
    assert trace["route"]["route"] == "recommend", trace["route"]["reasons"]


def test_calm_report_about_a_named_product_is_not_escalated(planner):
    _, trace = _route(planner, "my speaker box had a small dent but it works fine, just letting you know")
    assert trace["route"]["route"] == "service", trace["route"]["reasons"]


def test_written_product_questions_are_filled_with_catalogue_names_and_taught_to_service_or_recommend(kb):
    from chatrec.kb import RECOMMEND_LABEL
    from chatrec.turn import route_examples
    from chatrec.turn.classify import PRODUCT_SERVICE_LABEL, written_examples

    settings = load_settings()
    out = written_examples(kb, settings.router, with_items=True)
    service = [e.text for e in out if e.label == PRODUCT_SERVICE_LABEL]
    recommend = [e.text for e in out if e.group.startswith("product_recommend:")]
    assert len(service) >= len(route_examples.PRODUCT_SERVICE) and not any("{" in t for t in service)
    assert recommend and all(e.label == RECOMMEND_LABEL for e in out if e.group.startswith("product_recommend:"))
    # without requests answered with items (Bitext) they are not used
    assert not [e for e in written_examples(kb, settings.router) if e.group.startswith("product_")]


def test_trained_router_teaches_written_product_service_questions_to_service_templates(planner):
    """No ``__product_service__`` class is left: each example went to the nearest service template."""
    from chatrec.turn.classify import PRODUCT_SERVICE_LABEL, STOCK_FIT_LABEL

    router = planner.router
    assert PRODUCT_SERVICE_LABEL not in router.classes and STOCK_FIT_LABEL not in router.classes
