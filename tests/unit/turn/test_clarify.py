"""Issue 15 item 3: ask before guessing (one short question, then the next turn uses the answer)."""

from __future__ import annotations

import pytest

from chatrec.chatbot import Chatbot
from chatrec.llm.fake import FakeLLM
from chatrec.turn.clarify import accessory_categories, order_number
from chatrec.turn.plan import TurnInput
from chatrec.turn.profile import history_of
from chatrec.turn.state import DialogueState
from tests_support import fake_settings


def _bot(tmp_path, kb, index, **settings):
    liar = FakeLLM(lambda msgs: "Sure! Call Sarah at 555-123-4567.")  # always fails: the grounded fallback shows
    return Chatbot(fake_settings(tmp_path, **settings), llm=liar, kb=kb, index=index)


@pytest.fixture(scope="module")
def bot(tmp_path_factory, kb, shared_index):
    return _bot(tmp_path_factory.mktemp("clarify"), kb, shared_index)


def test_protective_case_for_my_phone_by_a_guest_asks_which_phone_then_uses_the_answer(bot, kb, alias):
    """Seen: a guest asking for a case for 'my phone' got cases for four different phones."""
    r1 = bot.ask("I need a protective case for my phone, what do you have?")
    assert not r1.recommendations and r1.text.count("?") == 1 and "Which phone" in r1.text, r1.text
    assert r1.trace["route"]["final"]["asks"] == "device"
    assert bot.store.load_state(r1.conversation_id)["pending"]["kind"] == "device"
    r2 = bot.ask("it's for my Pixel 8", r1.conversation_id)
    assert r2.route == "recommend" and r2.recommendations
    fits = bot.kg.items_linked(alias("pixel 8"), "compatible_with")
    assert all(x.item_id in fits and x.category == "phone-cases" for x in r2.recommendations)
    assert bot.store.load_state(r1.conversation_id)["pending"] is None


def test_a_named_or_owned_device_is_known_so_no_device_question(bot, kb):
    plan = bot.planner.plan(TurnInput("Can you recommend a case for my Pixel 8?", DialogueState()))
    assert plan.decision.route == "recommend" and plan.recs
    owner = next(u for u in kb.users if any(kb.items[i].category == "smartphones" for i in history_of(kb, u).owned))
    plan = bot.planner.plan(TurnInput("I need a protective case for my phone", DialogueState(), owner))
    assert plan.decision.route == "recommend" and plan.state.pending is None


def test_accessories_that_fit_every_phone_get_no_device_question(bot, kb):
    """A wireless charger fits (nearly) every phone: the policy recommends."""
    acc = accessory_categories(kb)
    assert acc["phone-cases"][1] < 0.5 <= acc["chargers"][1]
    r = bot.ask("Can you recommend a wireless charger?")
    assert r.route == "recommend" and r.recommendations


def test_no_budget_over_a_wide_price_span_asks_the_budget_then_uses_it(bot, kb):
    r1 = bot.ask("I need headphones")
    prices = [i.price for i in kb.items.values() if i.category == "headphones" and i.in_stock]
    assert not r1.recommendations and "What budget" in r1.text
    assert f"${min(prices):.2f}" in r1.text and f"${max(prices):.2f}" in r1.text  # the span, from the catalogue
    assert r1.trace["grounding"]["reply_problems"] == []
    r2 = bot.ask("around 150", r1.conversation_id)
    assert r2.route == "recommend" and r2.recommendations
    assert all(x.price <= 150 and x.category == "headphones" for x in r2.recommendations)


def test_no_budget_question_when_a_budget_is_given_or_prices_are_close(bot):
    plan = bot.planner.plan(TurnInput("I need headphones under $200", DialogueState()))
    assert plan.decision.route == "recommend" and plan.recs
    plan = bot.planner.plan(TurnInput("recommend a video game", DialogueState()))
    assert plan.state.pending is None or plan.state.pending.get("kind") != "budget"


def test_any_budget_answer_continues_with_the_request(bot):
    r1 = bot.ask("I need headphones")
    r2 = bot.ask("no particular budget", r1.conversation_id)
    assert r2.route == "recommend" and r2.recommendations
    assert all(x.category == "headphones" for x in r2.recommendations)


def test_order_question_without_number_asks_for_it_then_uses_the_answer(bot, kb):
    r1 = bot.ask("where is my order?")
    assert "order number?" in r1.text and r1.trace["route"]["final"]["asks"] == "order_id"
    r2 = bot.ask("VW-48213", r1.conversation_id)  # without its "#"
    assert "#VW-48213" in r2.text and kb.templates[r2.template_id].intent == "track_order", r2.text
    assert "order number?" not in r2.text


def test_a_catalogue_id_is_not_an_order_number(kb):
    item = next(iter(kb.items))
    assert order_number(item, kb, pending=True) is None and order_number("VW-48213", kb, pending=True) == "#VW-48213"


def test_the_clarify_policy_is_configurable(tmp_path, kb, shared_index):
    off = _bot(tmp_path, kb, shared_index, clarify={"enabled": False})
    r = off.ask("I need a protective case for my phone, what do you have?")
    assert r.route == "recommend" and r.recommendations
    strict = _bot(tmp_path / "b", kb, shared_index, clarify={"ask_device": False, "budget_span_ratio": 2.0})
    plan = strict.planner.plan(TurnInput("I need a protective case for my phone", DialogueState()))
    assert plan.state.pending and plan.state.pending["kind"] == "budget"  # cases span $14.99-$69.95


@pytest.mark.parametrize(
    "message",
    [
        "Do you have the Samsung Silicone Case for Galaxy S24 available?",
        "which tripod fits the Canon EOS R50 Mirrorless Camera Body Black",
        "What usb-c hub would you suggest for the rog g14?",
        "does the DJI RS 3 Mini Camera Gimbal fit a apple iphone 15 pro 128gb natural titanium",
    ],
)
def test_a_named_product_or_device_gets_no_clarifying_question(bot, message):
    """Seen measuring the policy on the logged conversations (benchmarks/clarify_policy.py): these
    asked for a device or a budget although the customer had named the product or the device."""
    plan = bot.planner.plan(TurnInput(message, DialogueState()))
    assert plan.state.pending is None, (message, plan.decision.reasons)


def test_a_clarifying_question_is_sent_as_it_is_not_reworded_by_the_model(kb, shared_index, tmp_path):
    """Seen in the demo session on the real model: the device question for 'I need a protective case
    for my phone' came out as the model's rewording, 'I'm sorry to hear about your phone but on our
    site we use to provide phones, not just devices...', which passed the check."""
    calls = []

    def chatty(msgs):
        calls.append(msgs)
        return "Which phone do you have? We have many great phones on our site for you."

    bot = Chatbot(fake_settings(tmp_path), llm=FakeLLM(chatty), kb=kb, index=shared_index)
    r = bot.ask("I need a protective case for my phone, what do you have?")
    assert r.trace["route"]["final"]["asks"] == "device"
    assert not calls, "the model was asked to write a draft for a decided question"
    assert r.trace["grounding"]["planned"] == "a clarifying question is sent as it is"
    assert r.text.count("?") == 1 and "Which phone" in r.text and "great phones" not in r.text
