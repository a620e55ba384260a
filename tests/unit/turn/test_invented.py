"""Issue 15 item 4: names and facts the model may not invent (staff names, dates, delivery times),
on top of the amounts, phones, e-mails and links issue 16 made the check verify."""

from __future__ import annotations

import pytest

from chatrec.turn.claims import Facts, extract_claims
from chatrec.turn.ground import check_text
from tests_support import recommendation_of


def _rec(item):
    return recommendation_of(item, f"Matches what you asked for. {item.price_text}, in stock.")


def _problems(kb, text, template=None, recs=()):
    return Facts.of(kb, list(recs), template).problems(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm Sarah from support and I'll sort this out.",
        "Hi, this is Daniel, happy to help.",
        "My colleague Tom will call you back.",
        "Jennifer from our returns team will email you.",
        "Please ask for Michael when you call.",
        "Thanks! Rebecca will look into it.",
    ],
)
def test_an_invented_staff_name_fails_the_check(kb, text):
    """Seen with the trained adapter on the demo: it invented a colleague's name."""
    problems = _problems(kb, text, "We'll look into it and get back to you.")
    assert any("names a person" in p for p in problems), problems


@pytest.mark.parametrize(
    "text, claim",
    [
        ("Your order will arrive on Thursday.", "thursday"),
        ("It ships on December 3.", "december 3"),
        ("It will be delivered by 12/04.", "12/04"),
        ("You'll have it tomorrow.", "tomorrow"),
        ("Refunds take 10 business days.", "10 business days"),
        ("Delivery takes 2 weeks.", "2 weeks"),
        ("You have 60 days to return it.", "60 days"),
        ("It comes with a 5-year warranty.", "5-year"),
    ],
)
def test_an_invented_delivery_date_or_time_fails_the_check(kb, text, claim):
    problems = _problems(kb, text, "Your order ships soon.")
    assert any(claim in p.lower() for p in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        "Refunds arrive within 5-7 business days.",
        "You have 30 days to return it, and the warranty runs 2 years.",
        "Express takes 1-2 business days and standard 3-5 business days.",
        "We're here Monday to Friday 8am-8pm ET.",
        "Price matching applies for 14 days after purchase.",
    ],
)
def test_times_and_days_the_shop_facts_state_pass(kb, text):
    assert _problems(kb, text) == []


def test_every_filled_template_passes_its_own_check(kb):
    """No false alarms on the shop's own answers (their names, days, hours, amounts)."""
    values = kb.shop.slot_values() | {"customer_name": "Priya", "order_id": "#VW-48213", "item_title": "your item"}
    for tpl in kb.templates.values():
        text = tpl.render(values)
        assert _problems(kb, text, text) == [], (tpl.id, text)


def test_a_customer_name_the_template_uses_and_listed_item_facts_pass(kb):
    item = next(i for i in kb.items.values() if "battery_hours" in i.attributes and i.in_stock)
    hours = item.attributes["battery_hours"]
    text = f"Hi Priya! The {item.title} runs {hours} hours on a charge."
    rep = check_text(text, [_rec(item)], kb, template_text=None, similarity=None, min_similarity=0.0, must_cite=True)
    assert rep.ok, rep.problems
    rep = check_text(
        f"The {item.title} runs {hours + 7} hours on a charge.",
        [_rec(item)],
        kb,
        template_text=None,
        similarity=None,
        min_similarity=0.0,
        must_cite=True,
    )
    assert not rep.ok and rep.lasting


def test_a_customers_name_may_greet_but_not_sign_as_staff(kb):
    assert _problems(kb, "Thanks, Emily! Anything else?") == []  # Emily is one of the shop's customers
    assert any("names a person" in p for p in _problems(kb, "I'm Emily from support."))


def test_product_words_and_ordinary_capitals_are_not_people(kb):
    max_item = next((i for i in kb.items.values() if "Max" in i.title.split()), None)
    texts = ["Sorry about that, I'm happy to help.", "I'm Voltway's assistant."]
    if max_item:
        texts.append(f"The {max_item.title} is great.")
    for text in texts:
        assert _problems(kb, text) == [], text
    assert [c.kind for c in extract_claims("Sorry about that, I'm happy to help.")] == []
