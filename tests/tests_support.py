"""Helpers shared by the fake-LLM and real-model tests."""

from pathlib import Path

from chatrec.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
KB_DIR = REPO / "kb"
TINY = REPO / "tests" / "fixtures" / "kb_tiny"


def fake_settings(tmp_path: Path, **overrides) -> Settings:
    return load_settings(kb_dir=str(KB_DIR), data_dir=str(tmp_path / "state"), llm={"backend": "fake"}, **overrides)


def assert_allowed(bot, result, user_id):
    from chatrec.turn.profile import history_of

    history = history_of(bot.kb, user_id)
    state = bot.store.load_state(result.conversation_id)
    c = state["constraints"]
    for rec in result.recommendations:
        item = bot.kb.items[rec.item_id]  # exists
        assert item.in_stock, rec.item_id
        assert item.id not in history.owned, rec.item_id
        assert item.brand not in c["brands_out"], (item.brand, c)
        assert c["max_price"] is None or item.price <= c["max_price"]
        assert rec.price == item.price and rec.title == item.title
