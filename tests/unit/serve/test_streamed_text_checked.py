"""Issue 16: every edge shows only checked text while a reply streams, and what it streams
adds up to the final reply (SSE /v1/chat, OpenAI streaming, the Gradio callback, `chatrec chat`)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings
from chatrec.llm.fake import FakeLLM, echo_context
from chatrec.serve.app import create_app
from tests_support import fake_settings

RETURN = "How do I return my headphones?"
DRAFTS = {
    "passes": None,
    "fails at once": lambda msgs: "Visit bestbuy.com for a cheaper deal! Use code FREE100 there.",
    "fails later": lambda msgs: echo_context(msgs) + " Use code FREE100 at https://voltway-deals.example today.",
}
BAD = ("bestbuy", "FREE100", "voltway-deals")


def _bot(tmp_path, kb, shared_index, draft):
    return Chatbot(fake_settings(tmp_path), llm=FakeLLM(DRAFTS[draft]), kb=kb, index=shared_index)


def _client(bot) -> TestClient:
    return TestClient(create_app(bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0)))


def _sse(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in re.split(r"\r?\n\r?\n", text.strip()):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, "\n".join(data)))
    return events


@pytest.mark.parametrize("draft", DRAFTS)
def test_sse_chat_streams_only_checked_text_adding_up_to_the_result(tmp_path, kb, shared_index, draft):
    bot = _bot(tmp_path, kb, shared_index, draft)
    r = _client(bot).post("/v1/chat", json={"message": RETURN})
    events = _sse(r.text)
    streamed = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    result = json.loads(events[-1][1])
    assert events[-1][0] == "result" and streamed == result["text"] and streamed.strip()
    assert not any(b in streamed for b in BAD)


@pytest.mark.parametrize("draft", DRAFTS)
def test_openai_stream_sends_only_checked_text(tmp_path, kb, shared_index, draft):
    bot = _bot(tmp_path, kb, shared_index, draft)
    body = {"model": "chatrec", "stream": True, "messages": [{"role": "user", "content": RETURN}]}
    r = _client(bot).post("/v1/chat/completions", json=body)
    chunks = [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: ") and ln != "data: [DONE]"]
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    final = next(ch for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"] == "stop")
    assert text == final["chatrec"]["text"] and text.strip() and not any(b in text for b in BAD)


@pytest.mark.parametrize("draft", DRAFTS)
def test_gradio_callback_shows_only_checked_text(tmp_path, kb, shared_index, draft):
    from chatrec.ui.gradio_app import respond

    bot = _bot(tmp_path, kb, shared_index, draft)
    shown = [u[0][-1]["content"] for u in respond(bot, RETURN, [], "", {})]
    for earlier, later in zip(shown, shown[1:]):
        assert later.startswith(earlier)  # nothing shown is ever taken back
    assert shown[-1].strip() and not any(b in s for s in shown for b in BAD)


@pytest.mark.parametrize("draft", DRAFTS)
def test_cli_chat_prints_the_reply_once_and_only_checked_text(tmp_path, kb, shared_index, draft, monkeypatch):
    import chatrec.cli.chat as cli_chat
    from chatrec.cli.main import main

    bot = _bot(tmp_path, kb, shared_index, draft)
    monkeypatch.setattr(cli_chat, "make_chatbot", lambda *a, **k: bot)
    out = CliRunner().invoke(main, ["chat"], input=f"{RETURN}\n\n")
    assert out.exit_code == 0, out.output
    reply = bot.store.turns(_last_cid(bot))[-1]["reply_text"]
    assert out.output.count(reply) == 1 and not any(b in out.output for b in BAD)


def _last_cid(bot) -> str:
    row = bot.store._conn().execute("SELECT conversation_id FROM turns ORDER BY id DESC LIMIT 1").fetchone()
    return row[0]
