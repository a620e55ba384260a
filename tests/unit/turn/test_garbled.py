"""Issue 15: garbled drafts the release gate let through (benchmarks/results/demo_session.md, row 4).

After the bot had recommended three Pixel 8 cases, "something cheaper?" got this draft from the
shipped adapter, and it was shown: the customer's own phone offered as one of "three good
options" (two items were listed), a non-word ("Danaepan"), a title cut short ("Obs") and a
clause said twice. The turn here is planned as the live chat plans it, after the same
conversation."""

from __future__ import annotations

import pytest

from chatrec.chatbot import Chatbot
from chatrec.llm.fake import FakeLLM
from chatrec.turn.ground import check_text
from chatrec.turn.plan import TurnInput
from chatrec.turn.release import turn_gate
from chatrec.turn.state import DialogueState
from tests_support import fake_settings

DEMO_DRAFT = (
    "Sure, here are three good options: the Google Pixel 8 128GB Obsidian brand Google, the Caseology Parallax "
    "Case for Pixel 8, $19.99: Compatible with Google Pixel 8 128GB Obs Danaepan glass; often bought together "
    "with the Google Pixel 8 128GB Obs Danaepan glass; sometimes purchased separately from the Google Pixel 8"
)
CONVERSATION = [
    "Hi! How long do I have to return something?",
    "I need a protective case for my phone, what do you have?",
]


@pytest.fixture(scope="module")
def bot(tmp_path_factory, kb, shared_index):
    liar = FakeLLM(lambda msgs: "Sure! Call Sarah at 555-123-4567.")  # every draft fails: the fallback is shown
    return Chatbot(fake_settings(tmp_path_factory.mktemp("garbled")), llm=liar, kb=kb, index=shared_index)


@pytest.fixture(scope="module")
def cheaper(bot):
    """The demo's fourth turn, planned after its first three: the Pixel 8 cases were shown."""
    cid = None
    for message in [*CONVERSATION, "It's a Pixel 8"]:
        cid = bot.ask(message, cid).conversation_id
    state = DialogueState.model_validate(bot.store.load_state(cid))
    plan = bot.planner.plan(TurnInput("something cheaper?", state))
    assert plan.decision.route == "recommend" and plan.recs
    assert "VW-1001" in plan.state.mentioned_items  # the customer's Google Pixel 8 128GB Obsidian
    assert "VW-1001" not in [r.item_id for r in plan.recs]
    return plan


def _gate(bot, plan):
    return turn_gate(plan, bot.kb, bot.index.embedder.similarity, bot.settings.grounding.min_template_similarity)


def _released(gate, draft: str) -> str:
    sent = [gate.feed(w if i == 0 else " " + w) for i, w in enumerate(draft.split(" "))]
    sent.append(gate.finish())
    return "".join(sent)


def test_recommendation_draft_naming_a_context_item_as_an_option_is_rejected(bot, cheaper):
    gate = _gate(bot, cheaper)
    shown = _released(gate, DEMO_DRAFT)
    assert gate.used_fallback and shown == gate.fallback and "Danaepan" not in shown
    problems = gate.check(DEMO_DRAFT).problems
    assert "offers 'Google Pixel 8 128GB Obsidian' as an option, but it is not one of the listed items" in problems
    assert f"says 'three good options' but {len(cheaper.recs)} items are listed" in problems
    # each fault alone fails too
    a, b = cheaper.recs[:2]
    context_option = f"Here are two good options: the Google Pixel 8 128GB Obsidian and the {a.title} (${a.price:.2f})."
    assert any("as an option" in p for p in gate.check(context_option).problems)
    miscounted = f"Here are three good options: the {a.title} (${a.price:.2f}) and the {b.title} (${b.price:.2f})."
    assert gate.check(miscounted).problems == [f"says 'three good options' but {len(cheaper.recs)} items are listed"]


def test_draft_with_non_words_is_rejected(bot, cheaper):
    gate = _gate(bot, cheaper)
    problems = gate.check(DEMO_DRAFT).problems
    assert any(p.startswith("writes non-words ('Danaepan')") for p in problems), problems
    assert "cuts a name short ('google pixel 8 128gb obs' for 'google pixel 8 128gb obsidian')" in problems
    a = cheaper.recs[0]
    assert any(
        "non-words ('Glorbix')" in p for p in gate.check(f"The {a.title} is a Glorbix fit, ${a.price:.2f}.").problems
    )


def test_draft_saying_the_same_clause_twice_is_rejected(bot, cheaper):
    problems = _gate(bot, cheaper).check(DEMO_DRAFT).problems
    assert "says the same clause twice ('google pixel 8 128gb obs danaepan')" in problems


def test_the_demo_draft_rejection_reasons_are_in_the_trace(tmp_path, kb, shared_index):
    def model(msgs):
        return (
            DEMO_DRAFT if "Customer: something cheaper?" in msgs[-1]["content"] else "Sure! Call Sarah at 555-123-4567."
        )

    bot = Chatbot(fake_settings(tmp_path), llm=FakeLLM(model), kb=kb, index=shared_index)
    cid = None
    for message in [*CONVERSATION, "It's a Pixel 8"]:
        cid = bot.ask(message, cid).conversation_id
    r = bot.ask("something cheaper?", cid)
    g = r.trace["grounding"]
    assert g["fallback"] and not g["ok"] and "Danaepan" not in r.text
    assert g["problems"] and all(
        "as an option" in p or "non-words" in p or "cuts a name" in p or "same clause" in p or "options'" in p
        for p in g["problems"]
    ), g["problems"]


@pytest.mark.parametrize(
    "draft",
    [
        "{fallback}",
        "Sure! The {a} is ${pa} and the {b} is ${pb}; both fit your Google Pixel 8 128GB Obsidian.",
        "Here are two cheaper options: the {a} (${pa}) and the {b} (${pb}). Both are compatible with your Pixel 8.",
        "I'd suggest the {a} (${pa}), made for your Google Pixel 8 128GB Obsidian, or the {b} (${pb}).",
        "Here are two good options:\n- the {a} (${pa})\n- the {b} (${pb})\nBoth are slim and protective.",
        "How about the Google Pixel 8 128GB Obsidian's best match, the {a} (${pa})? Or the {b} (${pb}).",
        "Here's the thing: the Google Pixel 8 128GB Obsidian fits both, the {a} (${pa}) and the {b} (${pb}).",
        "The {a} (${pa}) is often bought together with the Google Pixel 8 128GB Obsidian, and the {b} (${pb}) "
        "is a slim, lightweight alternative.",
    ],
)
def test_good_recommendation_drafts_still_pass(bot, cheaper, draft):
    a, b = cheaper.recs[:2]
    gate = _gate(bot, cheaper)
    text = draft.format(fallback=gate.fallback, a=a.title, b=b.title, pa=f"{a.price:.2f}", pb=f"{b.price:.2f}")
    rep = gate.check(text)
    assert rep.ok, (text, rep.problems)


def test_the_customers_own_words_and_rare_english_pass(kb):
    """Words of the customer's message are allowed whatever wordfreq says; ordinary English too."""
    from chatrec.turn.wording import turn_wording

    wording = turn_wording(kb, [], None, ["Customer: is the Zorbatron warranty transferable?"])
    assert wording.non_words("Yes, the Zorbatron warranty is transferable and unambiguously so.") == []
    assert wording.non_words("Yes, the Xqorvant warranty is fine.") == ["Xqorvant"]
    rep = check_text(
        "Your parcel is en route; it's waterproof-packaged.",
        [],
        kb,
        template_text=None,
        similarity=None,
        min_similarity=0.5,
        must_cite=False,
    )
    assert rep.ok, rep.problems


@pytest.mark.parametrize(
    "start", ["Your Anker 737 Power Bank (PowerCore 24K) 140W", "Google Pixel Watch Active Sport Band Obsidian"]
)
def test_a_fallback_reason_about_it_names_the_item_instead_of_a_garbled_is_is(kb, start):
    """Seen in the reply-quality evaluation: "The Google Pixel 8 128GB Obsidian is your Anker 737 Power Bank
    (PowerCore 24K) 140W is compatible with it." (the reason "{start} is compatible with it")."""
    from chatrec.turn.ground import fallback_text
    from tests_support import recommendation_of

    item = kb.items["VW-1001"]
    rec = recommendation_of(
        item, f"{start} is compatible with it; matches what you asked for. {item.price_text}, in stock."
    )
    text = fallback_text("recommend", None, [rec], "none")
    assert text.endswith(f" {start} is compatible with the {item.title}.") and " is your " not in text, text


def test_a_spanish_shops_drafts_are_not_called_non_words(kb):
    """The non-word check compared every word the prompt lacks with English word frequencies, so a
    shop answering in Spanish would have had ordinary Spanish words rejected as non-words; it now
    runs only when the shop's templates are English."""
    import csv
    import dataclasses

    from chatrec.turn.wording import Wording, is_english
    from chatrec.types import Template
    from tests_support import REPO

    rows = list(csv.DictReader((REPO / "tests" / "fixtures" / "tienda_es.csv").open(encoding="utf-8")))
    templates = {f"es{i}": Template(id=f"es{i}", intent=r["intent"], text=r["agent"]) for i, r in enumerate(rows)}
    tienda = dataclasses.replace(kb, templates=templates)
    assert is_english(kb) and not is_english(tienda)
    draft = "Claro, con gusto le ayudo: puede devolver el artículo durante treinta días desde la entrega."
    assert Wording.of(tienda, ["¿Puedo devolver mi compra?"]).non_words(draft) == []
    assert Wording.of(kb, ["Can I return my order?"]).non_words(draft)  # in an English shop these are non-words
