import pytest

from chatrec.turn.ground import check_recommendations, check_text, fallback_text, prompt_words
from chatrec.types import Recommendation
from tests_support import recommendation_of


def _rec(item) -> Recommendation:
    return recommendation_of(item, "r")


def _check(text, recs, kb, template=None, sim=None):
    return check_text(text, recs, kb, template_text=template, similarity=sim, min_similarity=0.5, must_cite=bool(recs))


def test_grounded_recommendation_passes(kb):
    item = next(i for i in kb.items.values() if i.in_stock)
    rep = _check(f"Try the {item.title} [{item.id}] for ${item.price:.2f}.", [_rec(item)], kb)
    assert rep.ok, rep.problems


def test_unlisted_item_wrong_price_and_slots_fail(kb):
    a, b = list(kb.items.values())[:2]
    rep = _check(f"Try [{a.id}] at $1.23 or [{b.id}]. Your order {{order_id}}", [_rec(a)], kb)
    text = " ".join(rep.problems)
    assert not rep.ok
    assert f"cites {b.id}" in text and "$1.23" in text and "slot unfilled" in text


def test_service_reply_must_stay_close_to_template(kb):
    rep = _check("I love pizza.", [], kb, template="Returns are free within 30 days.", sim=lambda a, b: 0.1)
    assert not rep.ok and any("strays from the answer template" in p for p in rep.problems)


def test_a_handoff_draft_that_drops_the_templates_facts_fails(kb):
    """Seen with the base model in `chatrec chat`: 'can I talk to a real person please?' got a draft
    about days off from work that passed (similar enough to the handoff template, no false claim)."""
    template = (
        "Of course. I'm connecting you with one of our support specialists now; the average wait is under "
        "five minutes during opening hours. If you'd rather not wait, you can call us at 1-800-555-0142."
    )
    draft = "Sure thing! You're welcome to share this information with anyone who needs it."
    rep = _check(draft, [], kb, template=template, sim=lambda a, b: 0.9)
    assert not rep.ok and any("five minutes" in p for p in rep.problems) and any("0142" in p for p in rep.problems)
    kept = "Of course, I'm connecting you with a specialist now (under five minutes), or call us at 1-800-555-0142."
    assert _check(kept, [], kb, template=template, sim=lambda a, b: 0.9).ok


def test_shop_fact_numbers_are_allowed(kb):
    rep = _check(f"Orders over ${kb.shop.free_shipping_threshold} ship free.", [], kb)
    assert rep.ok, rep.problems


def test_disallowed_recommendations_are_dropped(kb):
    out_of_stock = next(i for i in kb.items.values() if not i.in_stock)
    fine = next(i for i in kb.items.values() if i.in_stock)
    fake = _rec(fine).model_copy(update={"item_id": "NOPE-1"})
    kept, dropped = check_recommendations(
        [_rec(out_of_stock), _rec(fine), fake], kb, lambda i: None if kb.items[i].in_stock else "out of stock"
    )
    assert [r.item_id for r in kept] == [fine.id]
    assert any("not in the catalogue" in d for d in dropped) and any("out of stock" in d for d in dropped)


def test_fallback_names_items_by_title_and_price_without_ids(kb):
    item = next(i for i in kb.items.values() if i.in_stock)
    text = fallback_text("both", "Template answer.", [_rec(item)], "none")
    assert text.startswith("Template answer.") and item.id not in text and f"{item.title} (${item.price:.2f})" in text


def test_naming_an_unlisted_device_fails_unless_the_customer_mentioned_it(kb):
    case = next(i for i in kb.items.values() if i.category == "phone-cases" and i.in_stock)
    other = next(i for i in kb.items.values() if i.aliases and i.id != case.id and "oneplus 12" in i.aliases)
    text = f"The {case.title} (${case.price:.2f}) fits the OnePlus 12 too."
    assert not _check(text, [_rec(case)], kb).ok
    rep = check_text(
        text,
        [_rec(case)],
        kb,
        template_text=None,
        similarity=None,
        min_similarity=0.5,
        must_cite=True,
        context_items={other.id},
    )
    assert rep.ok, rep.problems


# ---------------------------------------- issue 16: the check verifies every claim field by field


def _pixel(kb):
    return kb.items["VW-1001"]  # Google Pixel 8, $699.00, in stock


@pytest.mark.parametrize(
    "claim",
    [
        "$1",
        "$5",
        "$800",
        "$699.01",
        "5$",
        "USD 5",
        "5 USD",
        "1 dollar",
        "one dollar",
        "ninety-nine cents",
        "€1",
        "€699",
        "£3",
        "5 EUR",
        "$8",  # the hours "8am-8pm" are not a price
        "$142",  # nor the phone number's digits
        "$7",  # nor "5-7 business days"
    ],
)
def test_grounding_check_accepts_false_prices(kb, claim):
    """Regression (issue 16): every number in the shop facts counted as an allowed price."""
    rep = _check(f"The {_pixel(kb).title} costs {claim} today.", [_rec(_pixel(kb))], kb)
    assert not rep.ok and rep.lasting
    assert any(claim in p or "currency" in p or "price" in p for p in rep.problems), rep.problems


@pytest.mark.parametrize(
    "text, why",
    [
        ("Get 50% off the {t} today.", "50%"),
        ("Get half off the {t}.", "half off"),
        ("The {t} is buy one get one free.", "buy one get one free"),
        ("Use code FREE100 on the {t}.", "FREE100"),
        ("The discount code for the {t} is SAVE20.", "SAVE20"),
        ("The {t} is cheaper at https://www.amazon.com/pixel.", "amazon.com"),
        ("See bestbuy.com for the {t}.", "bestbuy.com"),
        ("See voltway.example/free-phones for the {t}.", "voltway.example/free-phones"),
        ("Mail deals@voltway.example about the {t}.", "deals@voltway.example"),
        ("Call 1-888-555-1234 about the {t}.", "1-888-555-1234"),
        ("Only 3 left of the {t}!", "only 3 left"),
        ("The {t} is out of stock.", "out of stock"),
        ("The {t} is low in stock.", "low in stock"),
    ],
)
def test_grounding_check_ignores_other_claims(kb, text, why):
    """Regression (issue 16): percentages, codes, links, e-mails, phones and stock went unchecked."""
    rep = _check(text.format(t=_pixel(kb).title), [_rec(_pixel(kb))], kb)
    assert not rep.ok and rep.lasting
    assert any(why.lower() in p.lower() for p in rep.problems), rep.problems


@pytest.mark.parametrize(
    "text",
    [
        "The {t} is $699.00, or 699 dollars, USD 699 and 699 USD.",
        "The {t} is in stock. Orders over $50 ship free; express costs $9.99.",
        "Questions about the {t}? Call 1-800-555-0142, mail help@voltway.example or see voltway.example.",
        "The {t} ({i}) is in stock with 23 left in stock.",
    ],
)
def test_true_claims_pass_field_by_field(kb, text):
    p = _pixel(kb)
    rep = _check(text.format(t=p.title, i=p.id), [_rec(p)], kb)
    assert rep.ok, rep.problems


def test_percentages_and_amounts_in_the_filled_template_are_allowed(kb):
    template = kb.templates["student_discount_info"].render(kb.shop.slot_values())
    assert _check("Students get 10% off laptops at checkout.", [], kb, template=template).ok
    assert not _check("Students get 15% off laptops at checkout.", [], kb, template=template).ok
    gift = kb.templates["gift_card_buy"].render(kb.shop.slot_values())
    assert _check("Gift cards go from $10 to $500.", [], kb, template=gift).ok
    assert not _check("Gift cards go from $10 to $5000.", [], kb, template=gift).ok


def test_prompt_echo_fails_and_is_lasting(kb):
    from chatrec.turn.compose import build_messages, load_prompts

    msgs = build_messages(
        load_prompts(), kb.shop.name, "VW-1001", [], 0, "hi", "new customer", [], [], None, "chitchat"
    )
    echo = prompt_words(msgs)
    system = msgs[0]["content"].splitlines()[1]
    rep = check_text(
        f"Sure! {system}",
        [],
        kb,
        template_text=None,
        similarity=None,
        min_similarity=0.5,
        must_cite=False,
        echo_sources=echo,
    )
    assert not rep.ok and rep.lasting and "echoes the prompt" in rep.problems[0]
    ok = check_text(
        "Hello! I can help with orders, returns and product advice.",
        [],
        kb,
        template_text=None,
        similarity=None,
        min_similarity=0.5,
        must_cite=False,
        echo_sources=echo,
    )
    assert ok.ok, ok.problems


def test_a_fallback_naming_the_customers_own_device_in_a_reason_passes(kb):
    case = next(i for i in kb.items.values() if i.category == "phone-cases" and i.in_stock)
    rec = _rec(case).model_copy(update={"reason": f"Works with your {_pixel(kb).title}. {case.price_text}, in stock."})
    text = fallback_text("recommend", None, [rec], "none")
    assert _check(text, [rec], kb).ok, _check(text, [rec], kb).problems


# ------------------------------------------------ the release gate: only checked text, never withdrawn


def _gate(kb, recs, fallback="FALLBACK TEXT.", template=None, sim=None):
    from chatrec.turn.release import Release

    return Release(lambda t: _check(t, recs, kb, template=template, sim=sim), fallback)


def _run(gate, draft: str) -> list[str]:
    sent = [gate.feed(w if i == 0 else " " + w) for i, w in enumerate(draft.split(" "))]
    sent.append(gate.finish())
    return [s for s in sent if s]


def test_release_sends_a_passing_draft_sentence_by_sentence(kb):
    p = _pixel(kb)
    gate = _gate(kb, [_rec(p)])
    draft = f"Sure thing! The {p.title} is ${p.price:.2f}. It is in stock. Anything else?"
    sent = _run(gate, draft)
    assert "".join(sent) == gate.reply == draft and len(sent) >= 3
    assert not gate.used_fallback and not gate.problems


def test_release_holds_back_until_the_whole_reply_checks_pass(kb):
    p = _pixel(kb)
    gate = _gate(kb, [_rec(p)])
    assert gate.feed("Sure! Happy to help you today. ") == ""  # no listed item cited yet: held
    assert gate.feed(f"The {p.title} is ${p.price:.2f}. ").startswith("Sure!")


def test_release_replaces_a_draft_failing_before_anything_was_sent(kb):
    p = _pixel(kb)
    gate = _gate(kb, [_rec(p)])
    sent = _run(gate, f"Visit amazon.com! The {p.title} is ${p.price:.2f} there.")
    assert sent == ["FALLBACK TEXT."] and gate.reply == "FALLBACK TEXT." and gate.used_fallback
    assert "amazon.com" in " ".join(gate.problems)


def test_release_cuts_a_draft_failing_after_checked_sentences_were_sent(kb):
    p = _pixel(kb)
    gate = _gate(kb, [_rec(p)])
    good = f"The {p.title} is ${p.price:.2f}. It is in stock."
    sent = _run(gate, good + " Use code FREE100 for 50% off. Then more words follow here.")
    assert "".join(sent) == gate.reply == good and gate.cut and not gate.used_fallback
    assert "FREE100" not in "".join(sent) and gate.done


def test_a_draft_cut_after_sentences_were_sent_lost_the_templates_later_facts_now_they_follow(kb):
    """Seen in the reply-quality evaluation: a warranty draft cut after its first checked sentence
    showed the customer no e-mail address, though the template gave one."""
    from chatrec.turn.facts import missing_sentences
    from chatrec.turn.release import Release

    template = "Your warranty covers 12 months from delivery. Email help@voltway.example with your order number."

    def check(text):
        return check_text(text, [], kb, template_text=template, similarity=None, min_similarity=0.0, must_cite=False)

    gate = Release(check, template, complete=lambda sent: missing_sentences(template, sent))
    sent = _run(gate, "Your warranty covers 12 months from delivery. Email warranty@other-shop.example today.")
    assert gate.cut and not gate.used_fallback
    assert "".join(sent) == gate.reply  # still nothing withdrawn: the lost sentence is appended
    assert gate.reply.startswith("Your warranty covers 12 months from delivery.")
    assert gate.reply.endswith("Email help@voltway.example with your order number.")
    assert "other-shop" not in gate.reply and gate.completed.strip().startswith("Email help@")


def test_a_listed_title_containing_an_unlisted_title_is_not_naming_it(kb):
    """Seen with the real model: the fallback listing 'Google Case for Pixel 8 Pro' failed for
    naming the unlisted 'Google Case for Pixel 8'."""
    pro_case = next(i for i in kb.items.values() if i.title == "Google Case for Pixel 8 Pro")
    text = fallback_text("recommend", None, [_rec(pro_case)], "none")
    assert _check(text, [_rec(pro_case)], kb).ok, _check(text, [_rec(pro_case)], kb).problems


def test_a_mentioned_devices_title_does_not_name_the_smaller_model_but_the_larger_one_is_caught(kb):
    pro, base = kb.items["VW-1002"], _pixel(kb)  # Pixel 8 Pro, Pixel 8

    def check(text, mentioned):
        return check_text(
            text,
            [],
            kb,
            template_text=None,
            similarity=None,
            min_similarity=0.5,
            must_cite=False,
            context_items={mentioned},
        )

    assert check(f"Good news: your {pro.title} is in stock right now.", pro.id).ok
    assert not check("Your Pixel 8 is great, and the Pixel 8 Pro is better.", base.id).ok


def _two_prices(kb):
    """Two in-stock items with different prices."""
    a = next(i for i in kb.items.values() if i.in_stock and i.price)
    b = next(i for i in kb.items.values() if i.in_stock and i.price and i.price != a.price)
    return a, b


@pytest.mark.parametrize("form", ["the {t} (${p})", "the {t} for ${p}", "the {t} - ${p}", "the {t} at only ${p}"])
def test_a_listed_price_given_to_the_wrong_item_fails(kb, form):
    """Seen in the Gradio UI: the draft listed four earbuds and gave the $79.99 pair another pair's
    $99.99. Each amount was a listed price, so the check passed it."""
    a, b = _two_prices(kb)

    def suggest(price_a: float) -> str:
        named = [form.format(t=a.title, p=f"{price_a:.2f}"), form.format(t=b.title, p=f"{b.price:.2f}")]
        return "We suggest " + " and ".join(named) + "."

    rep = _check(suggest(b.price), [_rec(a), _rec(b)], kb)
    assert not rep.ok and any(f"price of {a.id}" in p and f"{a.price:.2f}" in p for p in rep.problems), rep.problems
    right = suggest(a.price)
    assert _check(right, [_rec(a), _rec(b)], kb).ok


def test_an_amount_not_right_after_a_name_is_not_read_as_its_price(kb):
    a, b = _two_prices(kb)
    text = f"The {a.title} and the {b.title} are both under ${max(a.price, b.price):.2f}."
    assert _check(text, [_rec(a), _rec(b)], kb).ok
    ships = f"The {a.title} ships free on orders over ${kb.shop.free_shipping_threshold}."
    assert _check(ships, [_rec(a)], kb).ok
