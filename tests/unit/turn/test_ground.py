from chatrec.turn.ground import check_recommendations, check_text, fallback_text
from chatrec.types import Evidence, Recommendation


def _rec(item) -> Recommendation:
    return Recommendation(
        item_id=item.id,
        title=item.title,
        price=item.price,
        brand=item.brand,
        category=item.category,
        score=1.0,
        reason="r",
        evidence=Evidence(),
    )


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
    assert not rep.ok and "strays from the answer template" in rep.problems[0]


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


def test_fallback_lists_items_with_ids(kb):
    item = next(i for i in kb.items.values() if i.in_stock)
    text = fallback_text("both", "Template answer.", [_rec(item)], "none")
    assert text.startswith("Template answer.") and f"[{item.id}]" in text


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
