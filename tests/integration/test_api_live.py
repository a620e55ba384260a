"""A real uvicorn server on 127.0.0.1 (fake LLM), driven by the official openai client and httpx."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from chatrec.config import ServeSettings
from chatrec.llm.fake import FakeLLM
from chatrec.serve.app import create_app

RECOMMEND = "Can you recommend a case for my Pixel 8?"


class SlowLLM(FakeLLM):
    """Streams one word every ``delay`` seconds and records whether it was cancelled."""

    def __init__(self, delay: float, words: int = 80):
        super().__init__(lambda msgs: " ".join(["word"] * words))
        self.delay = delay
        self.cancelled = threading.Event()
        self.finished = threading.Event()

    def stream(self, messages, max_new_tokens, cancel=None):
        try:
            for piece in super().stream(messages, max_new_tokens, cancel):
                time.sleep(self.delay)
                yield piece
        finally:
            if cancel is not None and cancel.is_set():
                self.cancelled.set()
            self.finished.set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(fake_bot):
    """Start ``create_app(fake_bot, settings)`` under uvicorn; returns (base_url, app)."""
    started: list[uvicorn.Server] = []

    def start(**kw) -> tuple[str, object]:
        kw.setdefault("ui", False)
        kw.setdefault("rate_per_minute_ip", 0)
        kw.setdefault("rate_per_minute_key", 0)
        app = create_app(fake_bot, ServeSettings(**kw))
        port = _free_port()
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=srv.run, daemon=True).start()
        deadline = time.time() + 20
        while not srv.started and time.time() < deadline:
            time.sleep(0.02)
        assert srv.started, "uvicorn did not start"
        started.append(srv)
        return f"http://127.0.0.1:{port}", app

    yield start
    for srv in started:
        srv.should_exit = True


def test_official_openai_client_non_stream_and_stream(server):
    from openai import OpenAI

    base, _ = server()
    client = OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0, timeout=30)
    assert [m.id for m in client.models.list()] == ["chatrec"]

    resp = client.chat.completions.create(
        model="chatrec", user="U002", messages=[{"role": "user", "content": RECOMMEND}]
    )
    text = resp.choices[0].message.content
    assert text and resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0
    extra = resp.model_extra["chatrec"]
    assert extra["text"] == text and extra["recommendations"] and extra["turn_id"]

    pieces, extras, usage = [], [], None
    for chunk in client.chat.completions.create(
        model="chatrec",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": RECOMMEND}],
    ):
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
        if (chunk.model_extra or {}).get("chatrec"):
            extras.append(chunk.model_extra["chatrec"])
    assert len(extras) == 1 and "".join(pieces) == extras[0]["text"] and extras[0]["recommendations"]
    assert usage is not None and usage.completion_tokens > 0


def test_langchain_chat_openai_works_unchanged(server):
    from langchain_openai import ChatOpenAI

    base, _ = server()
    llm = ChatOpenAI(base_url=f"{base}/v1", api_key="not-needed", model="chatrec", max_retries=0, timeout=30)
    msg = llm.invoke("How do I return my headphones?")
    assert msg.content and msg.usage_metadata["total_tokens"] > 0
    streamed = "".join(c.content for c in llm.stream(RECOMMEND))
    assert streamed


def test_eight_concurrent_chats_are_answered_or_cleanly_refused(server, fake_bot):
    from openai import APIStatusError, OpenAI

    fake_bot.llm = SlowLLM(delay=0.01, words=20)
    base, app = server(max_concurrent=1, max_queue=4)
    client = OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0, timeout=60)

    def one(i: int) -> tuple[int, str | None]:
        try:
            r = client.chat.completions.create(model="chatrec", messages=[{"role": "user", "content": f"hello {i}"}])
            assert r.choices[0].message.content
            return 200, None
        except APIStatusError as exc:
            return exc.status_code, exc.response.headers.get("retry-after")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    codes = [c for c, _ in results]
    assert all(c in (200, 503, 429) for c in codes), results
    assert codes.count(200) >= 5  # 1 running + 4 queued are always served
    assert all(ra and int(ra) > 0 for c, ra in results if c != 200)
    gate = app.state.gate
    assert gate.running == 0 and gate.waiting == 0
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"


def test_client_disconnect_cancels_generation_and_frees_the_worker(server, fake_bot):
    slow = SlowLLM(delay=0.05, words=80)  # ~4 s if it ran to the end
    fake_bot.llm = slow
    base, app = server(max_concurrent=1, max_queue=0)
    t0 = time.time()
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", f"{base}/v1/chat", json={"message": "hello there"}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("event: token"):
                    break  # got the first token: hang up
    assert slow.finished.wait(5) and slow.cancelled.is_set()
    deadline = time.time() + 5
    while app.state.gate.running and time.time() < deadline:
        time.sleep(0.02)
    assert app.state.gate.running == 0
    assert time.time() - t0 < 3.5  # stopped early, not after all 80 words

    fake_bot.llm = FakeLLM()
    r = httpx.post(f"{base}/v1/chat", json={"message": "hello", "stream": False}, timeout=30)
    assert r.status_code == 200 and r.json()["text"]  # with one slot and no queue: the slot was freed


def test_client_that_leaves_the_queue_never_runs(server, fake_bot):
    fake_bot.llm = SlowLLM(delay=0.02, words=60)  # ~1.2 s for the request holding the slot
    base, app = server(max_concurrent=1, max_queue=2)
    gate = app.state.gate
    holder = threading.Thread(
        target=lambda: httpx.post(f"{base}/v1/chat", json={"message": "hello", "stream": False}, timeout=30)
    )
    holder.start()

    def wait_for(cond, timeout=5.0):
        deadline = time.time() + timeout
        while not cond() and time.time() < deadline:
            time.sleep(0.01)
        return cond()

    assert wait_for(lambda: gate.running == 1)
    body = b'{"message": "I will not wait", "stream": false}'
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert wait_for(lambda: gate.waiting == 1)
    assert wait_for(lambda: gate.waiting == 0, 3)  # gone from the queue once the socket closed
    holder.join(30)
    assert wait_for(lambda: gate.running == 0)
    assert fake_bot.store.count("turns") == 1  # the departed request never ran a turn
