"""The OpenAI-compatible API's history index lives in the store: replicas on one store continue
an OpenAI client's conversation, whichever of them gets the next request."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings
from chatrec.llm.fake import FakeLLM
from chatrec.serve.app import create_app
from tests_support import fake_settings

FIRST = "I need wireless earbuds for running"


def _replica(tmp_path, kb, index) -> tuple[TestClient, FakeLLM]:
    """One replica: its own Chatbot, engine and store handle, on the store file every replica shares."""
    llm = FakeLLM()
    bot = Chatbot(fake_settings(tmp_path), llm=llm, kb=kb, index=index)
    settings = ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0, accept_unsigned_user_id=True)
    return TestClient(create_app(bot, settings)), llm


def test_openai_client_next_turn_on_another_replica_continued_a_new_conversation_is_fixed(tmp_path, kb, shared_index):
    one, _ = _replica(tmp_path, kb, shared_index)
    two, llm_two = _replica(tmp_path, kb, shared_index)
    assert one.app.state.bot.store is not two.app.state.bot.store  # two handles, one database

    msgs = [{"role": "user", "content": FIRST}]
    first = one.post("/v1/chat/completions", json={"messages": msgs, "user": "U003"}).json()
    cid = first["chatrec"]["conversation_id"]
    # the client resends the whole history, without a conversation id; the balancer picks replica two
    msgs += [first["choices"][0]["message"], {"role": "user", "content": "actually, under $100"}]
    second = two.post("/v1/chat/completions", json={"messages": msgs, "user": "U003"}).json()
    assert second["chatrec"]["conversation_id"] == cid
    assert [t["user_text"] for t in two.app.state.bot.store.turns(cid)] == [FIRST, "actually, under $100"]
    prompt = json.dumps(llm_two.calls[-1])
    assert FIRST in prompt  # replica two's prompt holds replica one's exchange
    # streamed, on replica one again: still the same conversation
    msgs += [second["choices"][0]["message"], {"role": "user", "content": "and in black?"}]
    r = one.post("/v1/chat/completions", json={"messages": msgs, "user": "U003", "stream": True})
    chunks = [json.loads(x[5:]) for x in r.text.splitlines() if x.startswith("data:") and "[DONE]" not in x]
    assert {c["chatrec"]["conversation_id"] for c in chunks if "chatrec" in c} == {cid}
    # another user resending the same history lands in a conversation of its own
    other = two.post("/v1/chat/completions", json={"messages": msgs[:3], "user": "U001"}).json()
    assert other["chatrec"]["conversation_id"] != cid


def test_openai_history_keys_hold_no_message_text(tmp_path, kb, shared_index):
    one, _ = _replica(tmp_path, kb, shared_index)
    one.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": FIRST}], "user": "U003"})
    store = one.app.state.bot.store
    rows = store._conn().execute("SELECT * FROM openai_history").fetchall()
    assert len(rows) == 1 and len(rows[0]["key"]) == 64 and "earbuds" not in json.dumps(dict(rows[0]))
