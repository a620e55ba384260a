"""The HTTP edge (chatrec/serve/) through FastAPI's TestClient, with the scripted fake LLM."""

from __future__ import annotations

import json
import re
import threading
import time

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from chatrec.config import ServeSettings
from chatrec.llm.fake import FakeLLM
from chatrec.serve.app import create_app
from chatrec.serve.gate import Busy, Gate
from chatrec.serve.turns import GatedBot
from tests_support import REPO

RECOMMEND = "Can you recommend a case for my Pixel 8?"
SHOP = "https://shop.example"
STATIC = REPO / "chatrec" / "static"


def make_client(bot, **kw) -> TestClient:
    kw.setdefault("ui", False)
    kw.setdefault("rate_per_minute_ip", 0)
    kw.setdefault("rate_per_minute_key", 0)
    return TestClient(create_app(bot, ServeSettings(**kw)))


def sse(text: str) -> list[tuple[str | None, str]]:
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


# ------------------------------------------------------------------ /v1/chat


def test_chat_streams_tokens_then_one_result_with_recommendations(fake_bot):
    c = make_client(fake_bot)
    r = c.post("/v1/chat", json={"message": RECOMMEND, "user_id": "U002"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    names = [e for e, _ in events]
    assert names[-1] == "result" and names.count("result") == 1 and set(names[:-1]) == {"token"}
    streamed = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    assert streamed.strip()
    result = json.loads(events[-1][1])
    assert result["route"] == "recommend" and result["recommendations"]
    for rec in result["recommendations"]:
        assert rec["item_id"] in fake_bot.kb.items and rec["reason"] and rec["evidence"]["kg_paths"]
        assert rec["price"] == fake_bot.kb.items[rec["item_id"]].price
    assert isinstance(result["turn_id"], int) and result["conversation_id"]
    assert "template_id" in result and result["sources"] and result["trace"] == {}  # no internals by default
    assert fake_bot.store.turn(result["turn_id"])["conversation_id"] == result["conversation_id"]


def test_chat_json_mode_and_conversation_continues(fake_bot):
    c = make_client(fake_bot)
    r1 = c.post("/v1/chat", json={"message": "I need wireless earbuds for running", "stream": False, "user_id": "U003"})
    assert r1.status_code == 200 and r1.headers["content-type"] == "application/json"
    first = r1.json()
    assert first["recommendations"]
    r2 = c.post(
        "/v1/chat",
        json={
            "message": "actually, under $100",
            "stream": False,
            "user_id": "U003",
            "conversation_id": first["conversation_id"],
        },
    ).json()
    assert r2["conversation_id"] == first["conversation_id"]
    assert r2["recommendations"] and all(x["price"] <= 100 for x in r2["recommendations"])
    assert len(fake_bot.store.turns(first["conversation_id"])) == 2


def test_expose_trace_never_leaks_the_raw_generation(fake_bot):
    c = make_client(fake_bot, expose_trace=True)
    result = c.post("/v1/chat", json={"message": "hi", "stream": False}).json()
    assert result["trace"]["route"] and "raw" not in result["trace"]["generation"]


def test_bad_input_is_400_with_the_reason(fake_bot):
    c = make_client(fake_bot)
    r = c.post("/v1/chat", json={"message": "x" * (fake_bot.settings.max_message_chars + 1)})
    assert r.status_code == 400 and "limit" in r.json()["detail"]
    assert c.post("/v1/chat", json={"message": "   "}).status_code == 400
    assert c.post("/v1/chat", json={"message": 42}).status_code == 422
    assert c.post("/v1/chat", json={"message": "hi", "conversation_id": "../etc"}).status_code == 422
    assert fake_bot.store.count("turns") == 0


def test_oversized_body_is_413(fake_bot):
    c = make_client(fake_bot)
    big = json.dumps({"message": "a" * 20_000})
    r = c.post("/v1/chat", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "16384" in r.json()["detail"]
    chunked = c.post(
        "/v1/chat",
        content=iter([big[:10_000].encode(), big[10_000:].encode()]),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413
    r = c.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_xss_looking_text_comes_back_as_json_text(fake_bot):
    evil = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    fake_bot.llm = FakeLLM(lambda msgs: "Hello " + evil)
    c = make_client(fake_bot)
    r = c.post("/v1/chat", json={"message": evil, "stream": False})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert isinstance(r.json()["text"], str)  # plain data: the widget inserts it with textContent
    s = c.post("/v1/chat", json={"message": evil})
    assert s.headers["content-type"].startswith("text/event-stream")
    assert all(isinstance(json.loads(d), dict) for _, d in sse(s.text))


def test_widget_never_builds_html_from_strings():
    js = (STATIC / "widget.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert "textContent" in js and "attachShadow" in js and 'role: "log"' in js and '"aria-live": "polite"' in js
    assert "localStorage" in js and "/v1/feedback" in js and "getReader" in js and "Escape" in js


# ------------------------------------------------------------------ OpenAI-compatible


def test_openai_models_and_non_stream_completion(fake_bot):
    c = make_client(fake_bot)
    models = c.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "chatrec"
    assert c.get("/v1/models/chatrec").json()["id"] == "chatrec"
    assert c.get("/v1/models/gpt-4").status_code == 404
    r = c.post(
        "/v1/chat/completions",
        json={
            "model": "chatrec",
            "user": "U002",
            "messages": [
                {"role": "system", "content": "ignored: chatrec uses its own system prompt"},
                {"role": "user", "content": [{"type": "text", "text": RECOMMEND}]},
            ],
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "chatrec"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == body["chatrec"]["text"]
    u = body["usage"]
    assert u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert u["completion_tokens"] == fake_bot.llm.count_tokens(body["chatrec"]["text"])
    assert body["chatrec"]["recommendations"] and body["chatrec"]["turn_id"]


def test_openai_stream_chunks_and_usage(fake_bot):
    c = make_client(fake_bot)
    for include_usage in (False, True):
        r = c.post(
            "/v1/chat/completions",
            json={
                "model": "chatrec",
                "stream": True,
                "messages": [{"role": "user", "content": RECOMMEND}],
                **({"stream_options": {"include_usage": True}} if include_usage else {}),
            },
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        chunks = [json.loads(x) for x in lines[:-1]]
        assert all(ch["object"] == "chat.completion.chunk" and ch["id"] == chunks[0]["id"] for ch in chunks)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
        final = [ch for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"] == "stop"]
        assert len(final) == 1 and text == final[0]["chatrec"]["text"]
        usage = [ch["usage"] for ch in chunks if ch.get("usage")]
        assert len(usage) == 1 and usage[0]["total_tokens"] > 0
        if include_usage:
            assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage[0]


def test_openai_client_parses_our_responses(fake_bot):
    from openai import OpenAI

    c = make_client(fake_bot)
    client = OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=c, max_retries=0)
    resp = client.chat.completions.create(model="chatrec", messages=[{"role": "user", "content": RECOMMEND}])
    assert resp.choices[0].message.content and resp.usage.total_tokens > 0
    assert resp.model_extra["chatrec"]["recommendations"]


def test_openai_history_continues_the_same_conversation(fake_bot):
    c = make_client(fake_bot, accept_unsigned_user_id=True)  # "user" names the user (a trusted client)
    msgs = [{"role": "user", "content": "I need wireless earbuds for running"}]
    first = c.post("/v1/chat/completions", json={"messages": msgs, "user": "U003"}).json()
    msgs += [first["choices"][0]["message"], {"role": "user", "content": "actually, under $100"}]
    second = c.post("/v1/chat/completions", json={"messages": msgs, "user": "U003"}).json()
    assert second["chatrec"]["conversation_id"] == first["chatrec"]["conversation_id"]
    assert all(x["price"] <= 100 for x in second["chatrec"]["recommendations"])
    # a different user with the same history does not land in that conversation
    other = c.post("/v1/chat/completions", json={"messages": msgs, "user": "U001"}).json()
    assert other["chatrec"]["conversation_id"] != first["chatrec"]["conversation_id"]


def test_openai_errors_use_the_openai_shape(fake_bot):
    c = make_client(fake_bot)
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 5000}]})
    assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
    assert c.post("/v1/chat/completions", json={"messages": []}).status_code == 400


# ------------------------------------------------------------------ feedback


def test_feedback_is_stored_and_errors_are_404_422(fake_bot):
    c = make_client(fake_bot)
    result = c.post("/v1/chat", json={"message": RECOMMEND, "stream": False}).json()
    tid, item, cid = result["turn_id"], result["recommendations"][0]["item_id"], result["conversation_id"]
    r = c.post("/v1/feedback", json={"conversation_id": cid, "turn_id": tid, "kind": "accept", "item_id": item})
    assert r.status_code == 201 and r.json()["id"]
    assert c.post("/v1/feedback", json={"conversation_id": cid, "turn_id": tid, "kind": "thumbs_up"}).status_code == 201
    rows = fake_bot.store.feedback(tid)
    assert [(f["kind"], f["item_id"]) for f in rows] == [("accept", item), ("thumbs_up", None)]
    assert c.post("/v1/feedback", json={"conversation_id": cid, "turn_id": 99999, "kind": "click"}).status_code == 404
    assert c.post("/v1/feedback", json={"conversation_id": cid, "turn_id": tid, "kind": "love"}).status_code == 422
    bad_item = {"conversation_id": cid, "turn_id": tid, "kind": "click", "item_id": "NOPE"}
    assert c.post("/v1/feedback", json=bad_item).status_code == 422
    assert len(fake_bot.store.feedback(tid)) == 2


# ------------------------------------------------------------------ keys, CORS, admin


def test_site_key_required_once_keys_exist_and_origins_are_checked(fake_bot):
    c = make_client(fake_bot)
    keys = c.app.state.keys
    assert c.post("/v1/chat", json={"message": "hi", "stream": False}).status_code == 200  # no keys yet: open
    key, _ = keys.add([SHOP, "https://www.shop.example:8443"], "shop")
    other, _ = keys.add(["https://other.example"], "other")
    msg = {"message": "hi", "stream": False}
    assert c.post("/v1/chat", json=msg).status_code == 401
    assert c.post("/v1/chat", json=msg, headers={"X-Site-Key": "crk_wrong"}).status_code == 401
    r = c.post("/v1/chat", json=msg, headers={"X-Site-Key": key, "Origin": SHOP})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in r.headers["vary"]
    r = c.post("/v1/chat", json=msg, headers={"X-Site-Key": key, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    # a key used from another key's origin: that origin passes CORS, the key does not
    r = c.post("/v1/chat", json=msg, headers={"X-Site-Key": key, "Origin": "https://other.example"})
    assert r.status_code == 403
    assert (
        c.post("/v1/chat", json=msg, headers={"X-Site-Key": other, "Origin": "https://other.example"}).status_code
        == 200
    )
    # same origin (the /demo page) and server-side callers (no Origin) only need a valid key
    assert c.post("/v1/chat", json=msg, headers={"X-Site-Key": key, "Origin": "http://testserver"}).status_code == 200
    assert c.post("/v1/chat", json=msg, headers={"X-Site-Key": key}).status_code == 200
    # the OpenAI API takes the key as its bearer api_key
    oa = {"messages": [{"role": "user", "content": "hi"}]}
    assert c.post("/v1/chat/completions", json=oa).status_code == 401
    assert c.post("/v1/chat/completions", json=oa, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # feedback needs the key too
    assert c.post("/v1/feedback", json={"turn_id": 1, "kind": "click"}).status_code == 401


def test_preflight_allows_listed_origins_only(fake_bot):
    c = make_client(fake_bot)
    c.app.state.keys.add([SHOP])
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-site-key"}
    r = c.options("/v1/chat", headers={"Origin": SHOP, **pre})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == SHOP
    assert "x-site-key" in r.headers["access-control-allow-headers"].lower()
    assert "POST" in r.headers["access-control-allow-methods"]
    r = c.options("/v1/chat", headers={"Origin": "https://evil.example", **pre})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert c.options("/v1/chat", headers={"Origin": "null", **pre}).status_code == 403


def test_cors_origins_setting_and_open_mode(fake_bot):
    c = make_client(fake_bot, cors_origins=["https://dev.example:3000/"])
    r = c.post("/v1/chat", json={"message": "hi", "stream": False}, headers={"Origin": "https://dev.example:3000"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://dev.example:3000"
    r = c.post("/v1/chat", json={"message": "hi", "stream": False}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_require_key_true_without_any_key_refuses(fake_bot):
    c = make_client(fake_bot, require_key=True)
    assert c.post("/v1/chat", json={"message": "hi"}).status_code == 401
    c2 = make_client(fake_bot, require_key=False)
    c2.app.state.keys.add([SHOP])
    assert c2.post("/v1/chat", json={"message": "hi", "stream": False}).status_code == 200


def test_admin_endpoints_need_the_token(fake_bot):
    assert make_client(fake_bot).get("/v1/admin/keys").status_code == 404  # no token configured: disabled
    c = make_client(fake_bot, admin_token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    assert c.get("/v1/admin/keys").status_code == 401
    assert c.get("/v1/admin/keys", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.post("/v1/admin/keys", json={"origins": [SHOP]}).status_code == 401
    assert c.get("/v1/admin/keys", headers=auth).json() == {"keys": []}
    made = c.post("/v1/admin/keys", json={"origins": [SHOP + "/"], "label": "shop"}, headers=auth)
    assert made.status_code == 201 and made.json()["origins"] == [SHOP]
    key = made.json()["key"]
    listed = c.get("/v1/admin/keys", headers=auth).json()["keys"]
    assert len(listed) == 1 and "key" not in listed[0] and key not in json.dumps(listed)
    assert c.post("/v1/admin/keys", json={"origins": ["not a url"]}, headers=auth).status_code == 422
    # cross-origin admin calls are refused even from a key's origin
    assert c.get("/v1/admin/keys", headers={**auth, "Origin": SHOP}).status_code == 403
    ok = c.post("/v1/chat", json={"message": "hi", "stream": False}, headers={"X-Site-Key": key, "Origin": SHOP})
    assert ok.status_code == 200
    c.post("/v1/admin/keys", json={"origins": ["https://other.example"]}, headers=auth)
    assert c.delete(f"/v1/admin/keys/{made.json()['id']}", headers=auth).status_code == 204
    assert c.delete(f"/v1/admin/keys/{made.json()['id']}", headers=auth).status_code == 404
    assert c.post("/v1/chat", json={"message": "hi"}, headers={"X-Site-Key": key}).status_code == 401


def test_keys_are_stored_hashed(fake_bot):
    import sqlite3

    c = make_client(fake_bot)
    key, rec = c.app.state.keys.add([SHOP])
    dump = "\n".join(sqlite3.connect(fake_bot.store.path).iterdump())
    assert key not in dump and rec.prefix in dump


# ------------------------------------------------------------------ limits


def test_rate_limit_per_ip_gives_429_with_retry_after(fake_bot):
    c = make_client(fake_bot, rate_per_minute_ip=2)
    fb = {"conversation_id": "c1", "turn_id": 12345, "kind": "click"}
    codes = [c.post("/v1/feedback", json=fb).status_code for _ in range(2)]
    assert codes == [404, 404]
    r = c.post("/v1/chat", json={"message": "hi"})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 30
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" and r.headers["retry-after"]


def test_rate_limit_per_key(fake_bot):
    c = make_client(fake_bot, rate_per_minute_key=1)
    key, _ = c.app.state.keys.add([SHOP])
    h = {"X-Site-Key": key}
    assert c.post("/v1/chat", json={"message": "hi", "stream": False}, headers=h).status_code == 200
    r = c.post("/v1/chat", json={"message": "hi", "stream": False}, headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "key" in r.json()["detail"]


def test_full_queue_gives_503_with_retry_after(fake_bot):
    entered, release = threading.Event(), threading.Event()

    def slow(messages):
        entered.set()
        release.wait(10)
        return "Hello! I can help with orders, returns and product advice."

    fake_bot.llm = FakeLLM(slow)
    with make_client(fake_bot, max_concurrent=1, max_queue=1, retry_after_s=7) as c:
        gate = c.app.state.gate
        codes: list[int] = []

        def post() -> None:
            codes.append(c.post("/v1/chat", json={"message": "hello", "stream": False}).status_code)

        first = threading.Thread(target=post)
        first.start()
        assert entered.wait(10)
        second = threading.Thread(target=post)
        second.start()
        deadline = time.time() + 10
        while gate.waiting < 1 and time.time() < deadline:
            time.sleep(0.01)
        assert gate.running == 1 and gate.waiting == 1
        r = c.post("/v1/chat", json={"message": "hello"})
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hello"}]})
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
        release.set()
        first.join(10)
        second.join(10)
        assert codes == [200, 200] and gate.running == 0 and gate.waiting == 0
        assert c.get("/readyz").json()["running"] == 0


# ------------------------------------------------------------------ dependency seams


def test_dependencies_are_overridden_on_an_app_built_once(fake_bot):
    """Each need of the routes (access check, settings, bot, gate) is one dependency a test can swap."""
    from chatrec.serve.deps import get_bot, get_gate, get_serve_settings, site_key

    c = make_client(fake_bot, require_key=True)
    app, msg = c.app, {"message": "hi", "stream": False}
    assert c.post("/v1/chat", json=msg).status_code == 401
    app.dependency_overrides[site_key] = lambda: None  # the access check lets everyone in
    r = c.post("/v1/chat", json=msg)
    assert r.status_code == 200 and r.json()["trace"] == {}
    app.dependency_overrides[get_serve_settings] = lambda: ServeSettings(expose_trace=True)  # read per request
    assert c.post("/v1/chat", json=msg).json()["trace"]["route"]

    class Spy:
        def __init__(self, bot):
            self.bot, self.messages = bot, []

        def __getattr__(self, name):
            return getattr(self.bot, name)

        def stream(self, message, *args, **kw):
            self.messages.append(message)
            return self.bot.stream(message, *args, **kw)

    spy = Spy(fake_bot)
    app.dependency_overrides[get_bot] = lambda: spy  # the turns run on the overriding bot
    assert c.post("/v1/chat", json={"message": "hello there", "stream": False}).status_code == 200
    assert spy.messages == ["hello there"]
    full = Gate(max_concurrent=1, max_queue=0)
    full.acquire_blocking()
    app.dependency_overrides[get_gate] = lambda: full
    r = c.post("/v1/chat", json=msg)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert app.state.gate.running == 0 and full.running == 1
    app.dependency_overrides.clear()
    assert c.post("/v1/chat", json=msg).status_code == 401


# ------------------------------------------------------------------ the gate


def test_gate_is_fifo_bounded_and_survives_abandoned_waiters():
    gate = Gate(max_concurrent=1, max_queue=2)
    gate.acquire_blocking()
    order: list[str] = []

    def waiter(name: str, timeout: float) -> None:
        try:
            gate.acquire_blocking(timeout)
        except Busy:
            order.append(name + ":timeout")
            return
        order.append(name)
        gate.release()

    quitter = threading.Thread(target=waiter, args=("quitter", 0.05))
    patient = threading.Thread(target=waiter, args=("patient", 5))
    quitter.start()
    time.sleep(0.02)
    patient.start()
    time.sleep(0.02)
    with pytest.raises(Busy):
        gate.acquire_blocking(0)  # 1 running + 2 waiting
    quitter.join()
    gate.release()
    patient.join()
    assert order == ["quitter:timeout", "patient"]
    assert gate.running == 0 and gate.waiting == 0


def test_ui_turns_share_the_gate(fake_bot):
    from chatrec.ui.gradio_app import respond

    gate = Gate(max_concurrent=1, max_queue=0)
    gated = GatedBot(fake_bot, gate, wait_s=0.1)
    *_, (history, recs, session, _) = respond(gated, RECOMMEND, [], "U002 · x", {})
    assert history[-1]["content"] and session["turn_ids"] and gate.running == 0
    gate.acquire_blocking()  # the API is generating
    *_, (history, _, _, _) = respond(gated, "hello", [], "guest (no history)", {})
    assert "busy" in history[-1]["content"]
    gate.release()


# ------------------------------------------------------------------ health, static, UI, CLI


def test_health_widget_and_demo(fake_bot):
    c = make_client(fake_bot, demo_site_key='crk_abc"<x>')
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["llm"] == "fake"
    js = c.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert "attachShadow" in js.text
    demo = c.get("/demo")
    assert demo.status_code == 200 and demo.headers["content-type"].startswith("text/html")
    tags = re.findall(r"<script[^>]*>", demo.text)
    assert len(tags) == 1 and 'src="/widget.js"' in tags[0]
    assert 'data-site-key="crk_abc&quot;&lt;x&gt;"' in tags[0]
    assert "script-src 'self'" in demo.headers["content-security-policy"]
    assert make_client(fake_bot, demo=False).get("/demo").status_code == 404


def test_gradio_ui_is_mounted_under_ui(fake_bot):
    assert fake_bot.settings.serve.ui_mounted  # create_app's default settings: the bot's [serve] section (loopback)
    with TestClient(create_app(fake_bot)) as c:
        r = c.get("/ui/")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert c.get("/healthz").status_code == 200


def test_cli_keys_add_and_list():
    from chatrec.cli.serve import register

    @click.group()
    @click.pass_context
    def grp(ctx):
        ctx.obj = {"config": None, "kb": None, "data_dir": None, "backend": None, "model": None}

    register(grp)
    runner = CliRunner()
    made = runner.invoke(grp, ["keys", "add", "--origin", SHOP, "--label", "demo shop"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("crk_")
    listed = runner.invoke(grp, ["keys", "list"])
    assert listed.exit_code == 0 and SHOP in listed.output and "demo shop" in listed.output
    assert key not in listed.output
    assert runner.invoke(grp, ["keys", "add", "--origin", "ftp://x"]).exit_code != 0
    assert runner.invoke(grp, ["keys", "revoke", "1"]).exit_code == 0
    assert "revoked" in runner.invoke(grp, ["keys", "list"]).output
    assert "--max-queue" in runner.invoke(grp, ["serve", "--help"]).output


def test_cli_serve_flags_override_the_settings_only_when_given(fake_bot, monkeypatch):
    import uvicorn

    from chatrec.cli import context
    from chatrec.cli.serve import serve

    ran: dict = {}
    monkeypatch.setattr(context, "make_chatbot", lambda settings: fake_bot)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(app=app, **kw))
    monkeypatch.setenv("CHATREC_SERVE__MAX_QUEUE", "3")
    monkeypatch.setenv("CHATREC_SERVE__PORT", "8123")
    obj = {"config": None, "kb": None, "data_dir": None, "backend": None, "model": None}
    out = CliRunner().invoke(serve, ["--port", "9123", "--no-ui", "--cors-origin", SHOP + "/"], obj=obj)
    assert out.exit_code == 0, out.output
    s = ran["app"].state.settings
    assert (ran["host"], ran["port"]) == ("127.0.0.1", 9123) and "127.0.0.1:9123" in out.output
    assert (s.port, s.max_queue, s.ui, s.demo, s.cors_origins) == (9123, 3, "off", True, [SHOP])
    assert s.max_concurrent == ServeSettings().max_concurrent and s.require_key is None
    bad = CliRunner().invoke(serve, ["--cors-origin", "ftp://x", "--no-ui"], obj=obj)
    assert bad.exit_code == 2 and "origin" in bad.output


# ------------------------------------------------------------------ bad input never gives 500


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat", '{"message": "hi", "stream": false, "extra": NaN}'),
        ("/v1/chat", '{"message": "hi", "stream": false, "extra": -Infinity}'),
        ("/v1/chat", '{"message": "hi \\ud800", "stream": false}'),
        ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'),
        ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "hi \\udfff"}]}'),
    ],
)
def test_nan_infinity_and_lone_surrogates_in_json_are_a_400_in_the_callers_format(fake_bot, path, body):
    with make_client(fake_bot) as c:
        r = c.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert ("error" in r.json()) == path.startswith("/v1/chat/completions")


def test_a_message_of_only_zero_width_characters_is_refused_without_a_turn(fake_bot):
    with make_client(fake_bot) as c:
        before = fake_bot.store.count("turns")
        r = c.post("/v1/chat", json={"message": "\u200b\u200d\ufeff ", "stream": False})
        assert r.status_code == 400 and "empty" in r.text
        assert fake_bot.store.count("turns") == before


@pytest.mark.parametrize(
    "option", [{"n": 2}, {"tools": [{"type": "function", "function": {"name": "f"}}]}, {"tool_choice": "required"}]
)
def test_unsupported_openai_options_are_a_400_not_silently_ignored(fake_bot, option):
    body = {"model": "chatrec", "messages": [{"role": "user", "content": "hi"}], **option}
    with make_client(fake_bot) as c:
        r = c.post("/v1/chat/completions", json=body)
        ok = c.post("/v1/chat/completions", json={**body, **dict.fromkeys(option, None)})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
    assert ok.status_code == 200
