"""The remote engine (issue 20 item 3): adapters as model names, timeouts, retries, the circuit
breaker and the grounded fallback, against a real HTTP server on 127.0.0.1 (a tiny
OpenAI-compatible fake engine, ``http.server`` in a thread of this process) that can be told to
fail, hang or answer without logprobs. The client is the real one; nothing is mocked."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chatrec.chatbot import Chatbot, final_result
from chatrec.llm.base import LLMBackend, ScoringUnsupported, UnknownAdapter
from chatrec.llm.breaker import CircuitBreaker, EngineUnavailable, backoff_delay
from chatrec.llm.openai_compat import OpenAICompatibleLLM, RemoteError
from tests_support import fake_settings

MESSAGES = [{"role": "user", "content": "Hi"}]


class FakeEngine:
    """An OpenAI-compatible ``/v1/chat/completions`` on a free loopback port.

    ``fail``: statuses to answer, one per request, before answering normally; ``hang_s``: sleep
    this long before answering (``hang_after_first``: after the first streamed piece instead);
    ``logprobs``: return ``top_logprobs`` when asked. ``requests`` records every body received."""

    def __init__(self) -> None:
        self.fail: list[int] = []
        self.retry_after: str | None = None
        self.hang_s = 0.0
        self.hang_after_first = False
        self.logprobs = True
        self.reply = "Hello there, how can I help?"
        self.requests: list[dict] = []
        self.release = threading.Event()  # set at teardown: a hanging handler returns at once
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                engine.requests.append(body)
                if engine.fail:
                    status = engine.fail.pop(0)
                    data = json.dumps({"error": {"message": f"injected {status}"}}).encode()
                    self.send_response(status)
                    if engine.retry_after:
                        self.send_header("Retry-After", engine.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if engine.hang_s and not engine.hang_after_first:
                    engine.release.wait(engine.hang_s)
                if body.get("stream"):
                    self._stream(body)
                else:
                    self._json(body)

            def _json(self, body):
                message = {"role": "assistant", "content": engine.reply}
                choice: dict = {"index": 0, "message": message, "finish_reason": "stop"}
                if body.get("logprobs") and engine.logprobs:
                    top = [{"token": "No", "logprob": -0.5}, {"token": " Yes", "logprob": -1.25}]
                    top += [{"token": "Y", "logprob": -4.0}, {"token": "The", "logprob": -6.0}]
                    message["content"] = "No"
                    choice["logprobs"] = {"content": [{"token": "No", "logprob": -0.5, "top_logprobs": top}]}
                data = json.dumps({"model": body["model"], "choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                words = engine.reply.split(" ")
                for i, word in enumerate(words[: body.get("max_tokens", 100)]):
                    piece = word if i == 0 else " " + word
                    chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if i == 0 and engine.hang_after_first and engine.hang_s:
                        engine.release.wait(engine.hang_s)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine():
    e = FakeEngine()
    yield e
    e.stop()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens: connection refused


def _llm(url: str, **kw) -> OpenAICompatibleLLM:
    kw.setdefault("backoff_s", 0.01)
    return OpenAICompatibleLLM(url, "base-model", **kw)


def test_remote_engine_is_an_llm_backend_and_streams_its_reply(engine):
    llm = _llm(engine.url)
    assert isinstance(llm, LLMBackend)
    pieces = list(llm.stream(MESSAGES, 50))
    assert len(pieces) > 1 and "".join(pieces) == engine.reply == llm.generate(MESSAGES, 50)
    assert [r["model"] for r in engine.requests] == ["base-model", "base-model"]


def test_adapter_is_chosen_per_request_as_the_engines_model_name(engine):
    llm = _llm(engine.url, adapters={"shop1": "lora-shop1", "shop2": "lora-shop2"})
    assert isinstance(llm.with_adapter("shop2"), LLMBackend)
    "".join(llm.with_adapter("shop2").stream(MESSAGES, 5))
    llm.with_adapter("shop1").generate(MESSAGES, 5)
    llm.with_adapter(None).generate(MESSAGES, 5)
    assert [r["model"] for r in engine.requests] == ["lora-shop2", "lora-shop1", "base-model"]
    with pytest.raises(UnknownAdapter, match="shop3"):
        llm.with_adapter("shop3")


def test_5xx_and_429_are_retried_with_backoff_then_answered(engine):
    engine.fail = [503, 429, 500]
    llm = _llm(engine.url, retries=3)
    assert "".join(llm.stream(MESSAGES, 50)) == engine.reply
    assert len(engine.requests) == 4 and llm.breaker.state == "closed"


def test_retry_after_of_a_429_is_honoured(engine):
    engine.fail, engine.retry_after = [429], "1"
    llm = _llm(engine.url, retries=1)
    t0 = time.perf_counter()
    assert llm.generate(MESSAGES, 5) == engine.reply
    assert time.perf_counter() - t0 >= 0.95


def test_a_4xx_other_than_429_is_not_retried(engine):
    engine.fail = [400, 400]
    llm = _llm(engine.url, retries=3)
    with pytest.raises(RemoteError, match="400"):
        llm.generate(MESSAGES, 5)
    assert len(engine.requests) == 1 and llm.breaker.state == "closed"


def test_retries_exhausted_is_engine_unavailable(engine):
    engine.fail = [502] * 5
    llm = _llm(engine.url, retries=2)
    with pytest.raises(EngineUnavailable, match="3 attempt"):
        list(llm.stream(MESSAGES, 5))
    assert len(engine.requests) == 3


def test_a_hung_engine_times_out(engine):
    engine.hang_s = 10
    llm = _llm(engine.url, retries=0, read_timeout_s=0.3)
    t0 = time.perf_counter()
    with pytest.raises(EngineUnavailable, match="Timeout"):
        llm.generate(MESSAGES, 5)
    assert time.perf_counter() - t0 < 3


def test_an_engine_hanging_mid_stream_times_out_after_the_text_it_sent(engine):
    engine.hang_s, engine.hang_after_first = 10, True
    llm = _llm(engine.url, retries=2, read_timeout_s=0.3)
    got = []
    with pytest.raises(EngineUnavailable, match="mid-reply"):
        for piece in llm.stream(MESSAGES, 50):
            got.append(piece)
    assert got == ["Hello"] and len(engine.requests) == 1  # a started stream is never retried


def test_connection_refused_is_engine_unavailable():
    llm = _llm(_closed_port_url(), retries=1)
    with pytest.raises(EngineUnavailable, match="ConnectError"):
        llm.generate(MESSAGES, 5)


def test_circuit_breaker_opens_after_n_failures_and_a_probe_closes_it(engine):
    engine.fail = [500] * 4
    llm = _llm(engine.url, retries=0, breaker_failures=2, breaker_open_s=0.5)
    for _ in range(2):
        with pytest.raises(EngineUnavailable, match="HTTP 500"):
            llm.generate(MESSAGES, 5)
    assert llm.breaker.state == "open"
    with pytest.raises(EngineUnavailable, match="circuit breaker open"):
        llm.generate(MESSAGES, 5)
    assert len(engine.requests) == 2  # the open breaker sent nothing
    time.sleep(0.55)
    with pytest.raises(EngineUnavailable, match="HTTP 500"):  # the half-open probe fails: open again
        llm.generate(MESSAGES, 5)
    assert llm.breaker.state == "open" and len(engine.requests) == 3
    time.sleep(0.55)
    engine.fail = []
    assert llm.generate(MESSAGES, 5) == engine.reply  # the probe succeeds: closed
    assert llm.breaker.state == "closed"


def test_half_open_breaker_lets_one_probe_through():
    now = [0.0]
    b = CircuitBreaker(failures=1, open_s=10, clock=lambda: now[0])
    b.before()
    b.failure()
    with pytest.raises(EngineUnavailable):
        b.before()
    now[0] = 10.0
    b.before()  # the probe
    with pytest.raises(EngineUnavailable, match="probe is in flight"):
        b.before()
    b.success()
    b.before()
    assert b.state == "closed"


def test_backoff_is_exponential_capped_and_jittered():
    lo = [backoff_delay(i, 0.25, cap_s=2.0, rng=lambda: 0.0) for i in range(6)]
    hi = [backoff_delay(i, 0.25, cap_s=2.0, rng=lambda: 1.0) for i in range(6)]
    assert hi == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert lo == [h / 2 for h in hi]


def test_score_choices_reads_the_engines_top_logprobs(engine):
    llm = _llm(engine.url)
    got = llm.score_choices([MESSAGES, MESSAGES, MESSAGES], ["Yes", "No", "Maybe"])
    # " Yes" (-1.25) beats "Y" (-4.0); "Maybe" is not among the top: the smallest one seen
    assert got == [[-1.25, -0.5, -6.0]] * 3
    assert all(r["max_tokens"] == 1 and r["logprobs"] and r["top_logprobs"] == 20 for r in engine.requests)
    with pytest.raises(ScoringUnsupported, match="local-only"):
        llm.score([MESSAGES], "Yes")


def test_engine_without_logprobs_makes_the_ranker_skip_the_llm_score(engine, tmp_path, kb, shared_index):
    engine.logprobs = False
    llm = _llm(engine.url)
    with pytest.raises(ScoringUnsupported, match="no top_logprobs"):
        llm.score_choices([MESSAGES], ["Yes", "No"])
    settings = fake_settings(tmp_path, ranking={"w_llm": 0.5, "llm_candidates": 4})
    bot = Chatbot(settings, llm=llm, kb=kb, index=shared_index)
    r = bot.ask("recommend wireless earbuds", user_id="U001")
    assert r.trace["rank"]["llm_rerank"].startswith("unsupported: ") and r.recommendations


def test_ranker_scores_with_a_remote_engines_logprobs(engine, tmp_path, kb, shared_index):
    settings = fake_settings(tmp_path, ranking={"w_llm": 0.5, "llm_candidates": 4})
    bot = Chatbot(settings, llm=_llm(engine.url), kb=kb, index=shared_index)
    r = bot.ask("recommend wireless earbuds", user_id="U001")
    assert r.trace["rank"]["llm_rerank"] == "scored 4"


def test_engine_down_turn_answers_with_the_grounded_fallback(tmp_path, kb, shared_index):
    llm = _llm(_closed_port_url(), retries=1, breaker_failures=2, breaker_open_s=60)
    bot = Chatbot(fake_settings(tmp_path), llm=llm, kb=kb, index=shared_index)
    r = bot.ask("How do I return my headphones?")
    assert "ConnectError" in r.trace["engine_unavailable"] and "generation_error" not in r.trace
    assert r.trace["grounding"]["fallback"] is True and r.trace["grounding"]["reply_problems"] == []
    assert r.text.startswith(kb.templates[r.template_id].text.split("{")[0][:20])
    assert llm.breaker.state == "open"  # two refused attempts
    # breaker open: the next turn does not wait on the engine, and recommends from the list
    t0 = time.perf_counter()
    rec = bot.ask("recommend wireless earbuds", conversation_id=r.conversation_id)
    assert "circuit breaker open" in rec.trace["engine_unavailable"] and time.perf_counter() - t0 < 30
    assert rec.recommendations and all(f"[{x.item_id}]" in rec.text or x.title in rec.text for x in rec.recommendations)
    assert [t["status"] for t in bot.store.turns(r.conversation_id)] == ["ok", "ok"]


def test_hung_engine_turn_answers_with_the_grounded_fallback(engine, tmp_path, kb, shared_index):
    engine.hang_s = 10
    llm = _llm(engine.url, retries=0, read_timeout_s=0.3)
    bot = Chatbot(fake_settings(tmp_path), llm=llm, kb=kb, index=shared_index)
    r = bot.ask("How do I return my headphones?")
    assert "Timeout" in r.trace["engine_unavailable"] and r.trace["grounding"]["fallback"] is True


def test_a_turn_with_an_adapter_asks_the_engine_for_its_model(engine, tmp_path, kb, shared_index):
    llm = _llm(engine.url, adapters={"shop1": "lora-shop1"})
    bot = Chatbot(fake_settings(tmp_path), llm=llm, kb=kb, index=shared_index)
    r = final_result(bot.stream("How do I return my headphones?", adapter="shop1"))
    assert (
        engine.requests[-1]["model"] == "lora-shop1" and r.trace["generation"]["backend"] == "openai:base-model@shop1"
    )
    with pytest.raises(UnknownAdapter):
        final_result(bot.stream("hi", adapter="nope"))


def test_settings_build_the_remote_engine_with_its_adapters_and_limits(engine):
    from chatrec.config import load_settings
    from chatrec.llm.registry import make_llm

    s = load_settings(
        llm={"backend": "openai", "base_url": engine.url, "model": "base-model", "adapters": {"shop1": "lora-shop1"}},
    )
    s.llm.retries, s.llm.breaker_failures, s.llm.read_timeout_s = 4, 7, 1.5
    llm = make_llm(s)
    assert isinstance(llm, OpenAICompatibleLLM) and (llm.retries, llm.breaker.failures) == (4, 7)
    assert llm._client.timeout.read == 1.5 and llm._client.timeout.connect == s.llm.connect_timeout_s
    llm.with_adapter("shop1").generate(MESSAGES, 3)
    assert engine.requests[-1]["model"] == "lora-shop1"


def test_http_turn_with_the_engine_down_is_200_with_the_grounded_fallback(engine, tmp_path, kb, shared_index):
    from fastapi.testclient import TestClient

    from chatrec.config import ServeSettings
    from chatrec.serve.app import create_app

    llm = _llm(engine.url, adapters={"shop1": "lora-shop1"}, retries=0, breaker_failures=1, breaker_open_s=60)
    bot = Chatbot(fake_settings(tmp_path), llm=llm, kb=kb, index=shared_index)
    app = create_app(bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0, expose_trace=True))
    engine.fail = [503]
    with TestClient(app) as c:
        body = {"message": "How do I return my headphones?", "stream": False, "adapter": "shop1"}
        r = c.post("/v1/chat", json=body)
        assert r.status_code == 200, r.text
        assert engine.requests[-1]["model"] == "lora-shop1"
        got = r.json()
        assert "HTTP 503" in got["trace"]["engine_unavailable"] and got["template_id"] and got["text"]
        again = c.post("/v1/chat", json={**body, "conversation_id": got["conversation_id"]})  # breaker open
        assert again.status_code == 200 and "circuit breaker open" in again.json()["trace"]["engine_unavailable"]
        assert len(engine.requests) == 1
        assert c.post("/v1/chat", json={**body, "adapter": "nope"}).status_code == 400
