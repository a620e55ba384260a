"""The whole turn with a scripted LLM (fast); the real-model version is test_e2e.py."""

import threading

import pytest

from chatrec.chatbot import Chatbot, InputRejected, ResultEvent, TokenEvent
from chatrec.llm.fake import FakeLLM
from tests_support import assert_allowed, fake_settings


def test_service_turn_answers_from_retrieved_template(fake_bot):
    r = fake_bot.ask("How do I return my headphones?", user_id="U001")
    assert r.route == "service" and fake_bot.kb.templates[r.template_id].intent == "return_item"
    assert r.text and not r.recommendations
    assert r.sources == [f"template:{r.template_id}"]


def test_recommendation_for_a_named_device_is_compatible_and_in_stock(fake_bot, alias):
    pixel = alias("pixel 8")
    r = fake_bot.ask("Can you recommend a case for my Pixel 8?", user_id="U002")
    assert r.route == "recommend" and r.recommendations
    for rec in r.recommendations:
        assert rec.item_id in fake_bot.kg.items_linked(pixel, "compatible_with")
        assert fake_bot.kb.items[rec.item_id].in_stock
        assert any("compatible_with" in p for p in rec.evidence.kg_paths)


def test_constraints_hold_across_turns(fake_bot):
    r1 = fake_bot.ask("I need wireless earbuds for running", user_id="U003")
    r2 = fake_bot.ask("not that brand", r1.conversation_id, "U003")
    r3 = fake_bot.ask("actually, under $100", r1.conversation_id, "U003")
    banned = fake_bot.kb.items[r1.recommendations[0].item_id].brand
    for r in (r2, r3):
        assert r.recommendations and all(x.brand != banned for x in r.recommendations)
        assert all(x.category == "earbuds" for x in r.recommendations)
    assert all(x.price <= 100 for x in r3.recommendations)


def test_never_recommends_disallowed_items(fake_bot):
    for user in ("U001", "U010", "U020", None):
        cid = None
        for msg in (
            "recommend a gift for a gamer",
            "something cheaper",
            "no Sony please",
            "suggest a screen protector for my iPhone 15",
            "any power bank under $40?",
        ):
            r = fake_bot.ask(msg, cid, user)
            cid = r.conversation_id
            assert_allowed(fake_bot, r, user)


def test_turns_are_persisted_with_trace_and_masked_text(fake_bot):
    r = fake_bot.ask("my email is jane@example.com, where is order #VW-48213?", user_id="U001")
    rows = fake_bot.store.turns(r.conversation_id)
    assert len(rows) == 1 and "<EMAIL>" in rows[0]["user_text"] and "jane@" not in rows[0]["user_text"]
    assert r.trace["guard"]["pii_masked"] and r.turn_id == rows[0]["id"]
    assert "#VW-48213" in r.text or r.template_id  # the order id fills the slot when the template has one


def test_ungrounded_generation_falls_back_to_template(tmp_path, kb, shared_index):
    liar = FakeLLM(lambda msgs: "Buy the Galaxy Quantum X for $5 [VW-9999]!")
    bot = Chatbot(fake_settings(tmp_path), llm=liar, kb=kb, index=shared_index)
    r = bot.ask("How do I return my headphones?")
    assert r.trace["grounding"]["fallback"] is True
    assert r.text.startswith(kb.templates[r.template_id].text.split("{")[0][:20])
    assert "VW-9999" not in r.text


def test_stream_yields_tokens_then_result_and_honours_cancel(fake_bot):
    events = list(fake_bot.stream("How do I return my headphones?"))
    assert isinstance(events[-1], ResultEvent) and sum(isinstance(e, TokenEvent) for e in events) > 3
    cancel = threading.Event()
    cancel.set()
    events = list(fake_bot.stream("How do I return my headphones?", cancel=cancel))
    assert not any(isinstance(e, TokenEvent) for e in events)  # cancelled before the first token


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5000])
def test_bad_input_is_rejected(fake_bot, bad):
    with pytest.raises(InputRejected):
        fake_bot.ask(bad)


def test_noisy_input_still_routes(fake_bot):
    r = fake_bot.ask("hw do i retrun my hedphones??? pls", user_id="U001")
    assert r.route == "service" and fake_bot.kb.templates[r.template_id].intent == "return_item"


def test_personalisation_differs_between_users(fake_bot):
    lists = {
        u: [x.item_id for x in fake_bot.ask("recommend wireless earbuds", user_id=u).recommendations]
        for u in ("U001", "U017", None)
    }
    assert all(lists.values())
    assert len({tuple(v) for v in lists.values()}) > 1


def test_a_user_with_no_history_gets_popular_relevant_items(fake_bot):
    r = fake_bot.ask("Can you recommend a wireless charger?", user_id=None)
    assert r.route == "recommend" and r.recommendations
    items = [fake_bot.kb.items[x.item_id] for x in r.recommendations]
    assert all(i.in_stock for i in items)
    assert all("charg" in (i.category + " " + i.title).lower() for i in items)  # relevant to the request
    popular = set(fake_bot.ranker.behaviour.popular(50))
    assert any(i.id in popular for i in items)  # and drawn from what other customers bought
    assert all(not x.evidence.history_items for x in r.recommendations)  # no history to cite


def test_bought_together_reasons_name_the_item_and_whose_it_is(fake_bot):
    guest = fake_bot.ask("Can you recommend a case for my Pixel 8?", user_id=None).recommendations
    owner = fake_bot.ask("Can you recommend a wireless charger?", user_id="U003").recommendations
    said = [(x, "guest") for x in guest if "bought together" in x.reason]
    said += [(x, "owner") for x in owner if "bought together" in x.reason]
    assert {who for _, who in said} == {"guest", "owner"}
    for rec, who in said:
        anchor = rec.reason.split("often bought together with ", 1)[1].split(";")[0].split(". $")[0]
        if who == "guest":  # a guest owns nothing: the item they mentioned, not "your" one
            assert anchor.startswith("the ") and not rec.evidence.history_items
        else:
            title = anchor.removeprefix("your ")
            assert anchor.startswith("your ") and any(
                fake_bot.kb.items[h].title == title for h in rec.evidence.history_items
            )


def test_llm_relevance_scores_are_fused_in_one_batch(tmp_path, kb, shared_index):
    llm = FakeLLM()
    settings = fake_settings(tmp_path, ranking={"w_llm": 0.5, "llm_candidates": 6})
    bot = Chatbot(settings, llm=llm, kb=kb, index=shared_index)
    r = bot.ask("recommend wireless earbuds", user_id="U001")
    assert r.trace["rank"]["llm_rerank"] == "scored 6"
    assert all(0 < s["features"]["llm"] < 1 for s in r.trace["rank"]["scored"][:6])
    off = bot.ask("recommend wireless earbuds", user_id="U001", ablate=["llm_rank"])
    assert off.trace["rank"]["llm_rerank"] == "off"


# ------------------------------------- issue 16: only checked text is streamed, and it is the reply


def _streamed_and_result(bot, message, **kw):
    events = list(bot.stream(message, **kw))
    streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
    return streamed, next(e.result for e in events if isinstance(e, ResultEvent))


def _template_then(extra: str):
    from chatrec.llm.fake import echo_context

    return lambda msgs: echo_context(msgs) + extra


@pytest.mark.parametrize(
    "script, outcome",
    [
        (None, "draft"),  # the fake model answers with the template: passes whole
        (lambda msgs: "Visit bestbuy.com, they are cheaper! Returns there are free.", "fallback"),
        (
            lambda msgs: (
                "Sure! You are the customer-service assistant of Voltway Electronics. "
                "Answer briefly and politely in plain text."
            ),
            "fallback",
        ),  # a prompt echo
        (_template_then(" Use code FREE100 for 50% off your next order at voltway-deals.com."), "cut"),
        (_template_then(" {order_id} is on its way."), "cut"),
    ],
)
def test_v1_chat_streams_raw_model_text_before_grounding_replaces_it(tmp_path, kb, shared_index, script, outcome):
    """Regression (issue 16): token events carried raw model text that grounding then replaced.
    Now what is streamed is only checked text and adds up to the final reply exactly."""
    bot = Chatbot(fake_settings(tmp_path), llm=FakeLLM(script), kb=kb, index=shared_index)
    streamed, r = _streamed_and_result(bot, "How do I return my headphones?")
    raw = r.trace["generation"]["raw"]
    assert streamed == r.text and r.text.strip()
    g = r.trace["grounding"]
    if outcome == "draft":
        assert r.text == raw and g["ok"] and not g["fallback"] and not g["cut"]
    elif outcome == "fallback":
        assert g["fallback"] and r.text.startswith(kb.templates[r.template_id].text[:20]) and g["problems"]
        assert "bestbuy" not in streamed and "customer-service assistant" not in streamed  # no draft went out
    else:
        assert g["cut"] and not g["fallback"] and raw.startswith(r.text) and len(r.text) < len(raw)
        for bad in ("FREE100", "50%", "voltway-deals", "{order_id}"):
            assert bad not in streamed
    assert bot.store.turns(r.conversation_id)[-1]["reply_text"] == r.text  # the stored reply is the one shown


def test_recommendation_stream_holds_text_until_a_listed_item_is_cited(tmp_path, kb, shared_index):
    def script(msgs):
        prompt = msgs[-1]["content"]
        row = next(ln for ln in prompt.splitlines() if ln.startswith("- ["))
        title, price = row.split("] ", 1)[1].split(": ")[0].rsplit(", ", 1)
        return f"Great choice! Happy to help. The {title} costs {price}. It is in stock. Only $1 today!"

    bot = Chatbot(fake_settings(tmp_path), llm=FakeLLM(script), kb=kb, index=shared_index)
    events = list(bot.stream("Can you recommend a case for my Pixel 8?", user_id="U002"))
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    r = events[-1].result
    assert "".join(tokens) == r.text and r.trace["grounding"]["cut"]
    assert r.text.endswith("It is in stock.") and "$1 " not in r.text
    assert r.recommendations[0].title in r.text


class _FlagSettingLLM(FakeLLM):
    """Like the transformers backend: sets the cancel flag it was given once it is done."""

    def stream(self, messages, max_new_tokens, cancel=None):
        try:
            yield from super().stream(messages, max_new_tokens, cancel)
        finally:
            if cancel is not None:
                cancel.set()


def test_fallback_is_streamed_when_the_backend_sets_its_cancel_flag_when_done(tmp_path, kb, shared_index):
    """With the real backend the rejected draft's fallback was not streamed at all: the backend's
    own "done" flag was taken for the caller leaving."""
    liar = _FlagSettingLLM(lambda msgs: "Visit bestbuy.com for cheaper returns.")
    bot = Chatbot(fake_settings(tmp_path), llm=liar, kb=kb, index=shared_index)
    cancel = threading.Event()
    streamed, r = _streamed_and_result(bot, "How do I return my headphones?", cancel=cancel)
    assert r.trace["grounding"]["fallback"] and streamed == r.text and not cancel.is_set()


@pytest.mark.parametrize("user", [None, "U001", "U003"])
def test_the_grounded_fallback_passes_the_check_itself(tmp_path, kb, shared_index, user):
    """The fallback replaces a rejected draft, so it must pass the same check (seen failing with
    the real model: a listed title containing another item's title, owned items named in the
    reasons taken for a prompt echo, the list's repeated reasons taken for a loop)."""
    liar = FakeLLM(lambda msgs: "Visit bestbuy.com now.")
    bot = Chatbot(fake_settings(tmp_path), llm=liar, kb=kb, index=shared_index)
    for message in (
        "Can you recommend a case for my Pixel 8?",
        "Is the Pixel 8 Pro out of stock? Tell me exactly how many are left.",
        "recommend a power bank for travel",
        "looking for a gift for a gamer",
        "show me a good mouse for work",
        "What payment methods do you accept?",
    ):
        r = bot.ask(message, user_id=user)
        assert r.trace["grounding"]["fallback"] and r.trace["grounding"]["reply_problems"] == [], (message, r.trace)
