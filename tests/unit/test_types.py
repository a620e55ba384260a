import pytest
from pydantic import ValidationError

from chatrec.types import Event, LoggedTurn, Template


def test_template_fills_known_slots_then_defaults():
    t = Template(
        id="t",
        intent="track_order",
        text="Hi {customer_name}, {order_id} ships in {days}.",
        slots={"customer_name": "there", "order_id": "your order"},
    )
    assert t.render({"days": "3 days"}) == "Hi there, your order ships in 3 days."
    assert (
        t.render({"days": "3 days", "customer_name": "Maya", "order_id": "#VW-1"}) == "Hi Maya, #VW-1 ships in 3 days."
    )


def test_template_missing_slot_raises():
    with pytest.raises(KeyError, match="days"):
        Template(id="t", intent="i", text="in {days}").render({})


def test_rating_only_with_rating_events():
    with pytest.raises(ValidationError):
        Event(user_id="u", item_id="i", type="rating", ts="2026-01-01T00:00:00Z")
    with pytest.raises(ValidationError):
        Event(user_id="u", item_id="i", type="view", ts="2026-01-01T00:00:00Z", rating=3)


def test_accepted_must_be_shown():
    with pytest.raises(ValidationError, match="subset"):
        LoggedTurn(role="agent", text="x", recommended=["A"], accepted=["B"])
