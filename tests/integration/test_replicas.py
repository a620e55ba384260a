"""Replicas (issue 20 item 5): two real ``chatrec serve`` processes on 127.0.0.1 share one
PostgreSQL store (the contract tests' throwaway server), one index folder (embedded Chroma,
built once, read by both) and one engine: a scripted OpenAI-compatible engine on loopback
(``http.server`` in this process) that streams the grounded template word by word, slowly
enough to kill a replica mid-stream.

- a conversation started on replica 1 continues on replica 2 with its history (replica 2's
  prompt to the engine holds replica 1's exchange);
- a replica killed with SIGKILL mid-stream loses no acknowledged turn (every turn whose
  ``result`` event the client received is stored, in order), and the client carries on on
  the other replica, as behind a load balancer.

Skips without PostgreSQL (fails with ``CHATREC_REQUIRE_SERVERS=1``), like the contract tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from chatrec.llm.fake import echo_context
from tests_support import KB_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from contract.conftest import (  # noqa: E402,F401 - the session's PostgreSQL fixtures
    free_port,
    pg_server,
    pg_url,
    psycopg_installed,
)

CHATREC = str(Path(sys.executable).with_name("chatrec"))


class ScriptedEngine:
    """An OpenAI-compatible ``/v1/chat/completions`` that streams the prompt's answer template
    (:func:`echo_context`), one word every ``delay`` seconds; ``prompts`` records every prompt."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.prompts: list[str] = []
        self.started = threading.Event()  # a stream began
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                engine.prompts.append("\n".join(str(m.get("content", "")) for m in body["messages"]))
                reply = echo_context(body["messages"])
                if not body.get("stream"):
                    data = json.dumps(
                        {"model": body["model"], "choices": [{"index": 0, "message": {"content": reply}}]}
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                engine.started.set()
                try:
                    for i, word in enumerate(reply.split(" ")[: body.get("max_tokens", 100)]):
                        chunk = {"choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(engine.delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except OSError:  # the replica died
                    pass
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Replica:
    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [CHATREC, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui"]
                + ["--log-level", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"replica exited {self.proc.returncode}: {self.log.read_text()[-1500:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"replica not ready in {timeout} s: {self.log.read_text()[-1500:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def chat(base: str, message: str, cid: str | None, on_token=None, timeout: float = 60) -> dict:
    """One streamed turn on ``base``; the ``result`` event's turn (raises if the stream broke first)."""
    body = {"message": message, "conversation_id": cid, "stream": True}
    event, result = None, None
    with httpx.stream("POST", base + "/v1/chat", json=body, timeout=timeout) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "token" and on_token:
                    on_token(data["text"])
                elif event == "result":
                    result = data
    if result is None:
        raise ConnectionError("the stream ended without a result")
    return result


@pytest.fixture
def replicas(pg_url, tmp_path, shared_index):  # noqa: F811 - the imported fixture
    engine = ScriptedEngine()
    env = {
        **os.environ,
        "CHATREC_KB_DIR": str(KB_DIR),
        # the session's index (built once, conftest.shared_index): both replicas read its folder
        "CHATREC_DATA_DIR": str(shared_index.settings.data_dir),
        "CHATREC_STORE__URL": pg_url,
        "CHATREC_LLM__BACKEND": "openai",
        "CHATREC_LLM__BASE_URL": engine.url,
        "CHATREC_LLM__RETRIES": "0",
        "CHATREC_SERVE__RATE_PER_MINUTE_IP": "0",
        "CHATREC_SERVE__RATE_PER_MINUTE_KEY": "0",
        "OMP_NUM_THREADS": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    started = [Replica(env, tmp_path / f"replica{i}.log") for i in (1, 2)]
    try:
        for r in started:
            r.wait_ready()
        # first turns load the embedder and train the router: warm both replicas at once, with
        # room for a loaded machine (a fresh clone's CI read-timed out at 60 s)
        warm = [threading.Thread(target=chat, args=(r.url, "hello", None), kwargs={"timeout": 240}) for r in started]
        for t in warm:
            t.start()
        for t in warm:
            t.join(300)
        yield engine, started, pg_url
    finally:
        for r in started:
            r.kill()
        engine.stop()


def _stored(url: str, cid: str) -> list[dict]:
    from chatrec.store.postgres import PostgresStore

    store = PostgresStore(url, 5.0, 2)
    try:
        return store.turns(cid)
    finally:
        store.close()


def test_a_conversation_continues_on_another_replica_and_a_killed_replica_loses_no_acknowledged_turn(replicas):
    engine, (r1, r2), url = replicas
    acked: list[int] = []

    first = chat(r1.url, "Can you recommend a case for my Pixel 8?", None)
    cid = first["conversation_id"]
    acked.append(first["turn_id"])

    # the next turn on the other replica continues the conversation with its history
    engine.prompts.clear()
    # (a refinement the model drafts; "which one is the cheapest?" is answered from the catalogue, no prompt)
    second = chat(r2.url, "something cheaper?", cid)
    assert second["conversation_id"] == cid
    acked.append(second["turn_id"])
    assert any("Pixel 8" in p and "something cheaper" in p for p in engine.prompts), "replica 2 did not see the history"

    third = chat(r1.url, "How do I return my headphones?", cid)
    acked.append(third["turn_id"])

    # replica 1 dies (SIGKILL) while it streams a turn: that turn was never acknowledged
    engine.delay = 0.3
    engine.started.clear()

    def kill_mid_stream() -> None:
        engine.started.wait(30)
        time.sleep(0.5)
        r1.kill()

    killer = threading.Thread(target=kill_mid_stream)
    killer.start()
    with pytest.raises((httpx.HTTPError, ConnectionError)):
        chat(r1.url, "And what about a screen protector?", cid)
    killer.join(30)
    assert r1.proc.returncode == -signal.SIGKILL
    engine.delay = 0.0

    # the client retries on replica 2, which carries on with everything acknowledged
    retried = chat(r2.url, "And what about a screen protector?", cid)
    assert retried["conversation_id"] == cid
    acked.append(retried["turn_id"])

    stored = _stored(url, cid)
    ids = [t["id"] for t in stored]
    assert set(acked) <= set(ids), (acked, ids)
    assert [i for i in ids if i in acked] == acked  # in the order acknowledged
    assert len(ids) == len(acked)  # the killed turn was never written (nor half-written)
