"""Every door behind the same guard (issue 16): /ui, /docs, /openapi.json, /demo and assets get the
rate and size limits of /v1; the UI is off or behind a login off loopback; slow clients are cut off
(real sockets against a real uvicorn on loopback); huge ids and a lost index are 4xx/503, not 500."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from typing import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from chatrec.config import ServeSettings, is_loopback
from chatrec.serve.app import create_app
from chatrec.serve.server import uvicorn_config

OPEN = dict(rate_per_minute_ip=0, rate_per_minute_key=0, rate_per_minute_ip_all=0)
UI_CALL = "/ui/gradio_api/queue/join"


def client(bot, base_url: str = "http://testserver", **kw) -> TestClient:
    return TestClient(create_app(bot, ServeSettings(**{**OPEN, **kw})), base_url=base_url)


def customer_names(bot) -> list[str]:
    return [u.name for u in bot.kb.users.values()]


# ------------------------------------------------------------------ /ui and /docs: who may see them


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "shop.example"]))


def test_ui_bypasses_v1_guard_ui_and_docs_are_off_on_a_public_address_by_default(fake_bot):
    with client(fake_bot, host="0.0.0.0") as c:
        for path in ("/ui/", "/ui/config", UI_CALL, "/docs", "/openapi.json"):
            assert c.request("GET" if path != UI_CALL else "POST", path).status_code in (404, 405), path
        assert c.get("/healthz").status_code == 200 and c.get("/widget.js").status_code == 200
    with client(fake_bot, host="127.0.0.1") as c:  # loopback: the developer's own machine
        assert c.get("/ui/").status_code == 200 and c.get("/openapi.json").status_code == 200
    with client(fake_bot, host="0.0.0.0", docs="on") as c:  # one setting for both
        assert c.get("/docs").status_code == 200 and c.get("/openapi.json").status_code == 200
    with client(fake_bot, docs="off") as c:
        assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404


def test_ui_bypasses_v1_guard_public_ui_needs_an_admin_token():
    with pytest.raises(ValidationError, match="admin_token"):
        ServeSettings(host="0.0.0.0", ui="on")
    assert ServeSettings(host="0.0.0.0", ui="on", admin_token="t").ui_mounted
    assert ServeSettings(ui=False).ui == "off" and ServeSettings(ui=True).ui == "on"  # --no-ui / --ui


def test_ui_config_never_lists_customers_to_the_public(fake_bot):
    names = customer_names(fake_bot)
    with client(fake_bot, base_url="https://testserver", host="0.0.0.0", ui="on", admin_token="s3cret") as c:
        config = c.get("/ui/config")
        assert config.status_code == 401 and not any(n in config.text for n in names)
        assert c.post(UI_CALL, json={"data": ["hi"], "fn_index": 0}).status_code == 401  # gradio_client too
        assert c.post("/ui/login", data={"username": "admin", "password": "wrong"}).status_code == 400
        assert c.post("/ui/login", data={"username": "admin", "password": "s3cret"}).status_code == 200
        config = c.get("/ui/config")
        assert config.status_code == 200 and any(n in config.text for n in names)  # the admin's demo picker


def test_ui_bypasses_v1_guard_ui_turns_share_the_address_limit_with_v1(fake_bot):
    with client(fake_bot, rate_per_minute_ip=2) as c:
        first = c.post(UI_CALL, json={"data": [], "fn_index": 0, "session_hash": "x"})
        assert first.status_code != 429  # a UI call counts against the address's turn budget ...
        assert c.post("/v1/chat", json={"message": "hi", "stream": False}).status_code == 200
        assert c.post("/v1/chat", json={"message": "hi", "stream": False}).status_code == 429
        refused = c.post(UI_CALL, json={"data": [], "fn_index": 0, "session_hash": "x"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1  # ... and /v1's
        assert c.get("/ui/").status_code == 200  # the page itself is no turn


def test_ui_bypasses_v1_guard_every_path_is_rate_limited_per_address(fake_bot):
    with client(fake_bot, rate_per_minute_ip_all=4) as c:
        for path in ("/widget.js", "/demo", "/openapi.json", "/ui/"):
            assert c.get(path).status_code == 200, path
        for path in ("/docs", "/widget.js", "/ui/config", "/healthz", "/v1/models"):
            r = c.get(path)
            assert r.status_code == 429 and "Retry-After" in r.headers, path


def test_ui_bypasses_v1_guard_body_limits_cover_every_path(fake_bot):
    with client(fake_bot, ui_max_body_bytes=2048) as c:
        for path in (UI_CALL, "/ui/gradio_api/upload", "/demo", "/docs"):
            r = c.post(path, content=b"x" * 4096, headers={"content-type": "application/json"})
            assert r.status_code == 413, path

        def trickle() -> Iterator[bytes]:  # no Content-Length: a streamed body growing past the limit
            for _ in range(8):
                yield b"x" * 512

        assert c.post(UI_CALL, content=trickle()).status_code == 413


def test_ui_bypasses_v1_guard_cross_origin_ui_calls_are_403(fake_bot):
    with client(fake_bot) as c:
        r = c.post(UI_CALL, json={"data": []}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        assert c.get("/ui/", headers={"Origin": "http://testserver"}).status_code == 200  # its own page


# ------------------------------------------------------------------ 4xx and 503, never 500


@pytest.mark.parametrize("key_id", [2**63, 2**64, 10**30, -1, 0])
def test_admin_key_revoke_with_a_huge_id_is_4xx(fake_bot, key_id):
    with client(fake_bot, admin_token="t") as c:
        r = c.delete(f"/v1/admin/keys/{key_id}", headers={"Authorization": "Bearer t"})
        assert r.status_code == 422, r.text
        assert c.delete(f"/v1/admin/keys/{2**63 - 1}", headers={"Authorization": "Bearer t"}).status_code == 404


def test_chroma_folder_deleted_while_running_is_503_with_retry_after(tmp_path, kb):
    """Deleting the folder alone leaves the open files readable (Linux) until a restart, where the
    start-up check names the fix; a database that breaks under a running server is a 503."""
    import sqlite3

    from chatrec.chatbot import Chatbot
    from chatrec.llm.fake import FakeLLM
    from chatrec.retrieval.chroma import ChromaIndex, IndexUnavailable
    from tests_support import fake_settings

    settings = fake_settings(tmp_path)
    index = ChromaIndex(settings)
    index.build(kb)
    bot = Chatbot(settings, llm=FakeLLM(), kb=kb, index=index)
    ask = {"message": "recommend a case for my Pixel 8", "stream": False}
    with client(bot, retry_after_s=7) as c:
        assert c.post("/v1/chat", json=ask).status_code == 200
        with sqlite3.connect(settings.chroma_dir / "chroma.sqlite3") as db:  # the index's rows go away
            db.execute("DROP TABLE embeddings")
        shutil.rmtree(settings.chroma_dir)
        with pytest.raises(IndexUnavailable, match="chatrec index"):
            index.search_items("a case", 5)
        r = c.post("/v1/chat", json=ask)
        assert r.status_code == 503 and r.headers["retry-after"] == "7" and r.json()["detail"]  # no paths shown
        body = {"model": "chatrec", "messages": [{"role": "user", "content": "recommend a phone case"}]}
        r = c.post("/v1/chat/completions", json=body)
        assert r.status_code == 503 and r.headers["retry-after"] == "7" and r.json()["error"]["message"]


# ------------------------------------------------------------------ slow clients, real sockets


@contextlib.contextmanager
def live_server(bot, **kw) -> Iterator[tuple[str, int]]:
    """A real uvicorn (the `chatrec serve` protocol and limits) on a free loopback port, in a thread."""
    settings = ServeSettings(**{**OPEN, "ui": "off", "port": 0, **kw})
    server = uvicorn.Server(uvicorn_config(create_app(bot, settings), settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Does the server close ``sock`` (EOF or reset) within ``within`` seconds? Data it sends is read past."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_slow_clients_half_open_connections_are_closed_after_the_header_timeout(fake_bot):
    with live_server(fake_bot, header_timeout_s=0.6, keep_alive_s=30) as addr:
        silent = [socket.create_connection(addr) for _ in range(30)]  # connect, send nothing
        partial = [socket.create_connection(addr) for _ in range(10)]  # a head that never ends
        for s in partial:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert all(closed_by_server(s, 5) for s in silent + partial)
        assert time.monotonic() - started < 5
        # a normal client on a fresh connection is still served
        with socket.create_connection(addr) as ok:
            ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            ok.settimeout(5)
            assert ok.recv(4096).startswith(b"HTTP/1.1 200")
        for s in silent + partial:
            s.close()


def test_slow_clients_a_head_trickled_byte_by_byte_is_cut_off(fake_bot):
    with live_server(fake_bot, header_timeout_s=1.0, keep_alive_s=30) as addr:
        with socket.create_connection(addr) as s:
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
            started, cut = time.monotonic(), False
            for byte in head:  # one byte every 50 ms: each would reset a keep-alive timer
                try:
                    s.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                    break
                time.sleep(0.05)
            assert cut or closed_by_server(s, 2)
            assert time.monotonic() - started < 4


def test_slow_clients_a_body_trickled_at_1_byte_per_second_gets_408(fake_bot):
    with live_server(fake_bot, body_timeout_s=1.5) as addr:
        with socket.create_connection(addr) as s:
            s.sendall(
                b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            started = time.monotonic()
            s.settimeout(0.5)
            answer = b""
            for byte in b'"message": "hi"':
                try:
                    s.sendall(bytes([byte]))
                    chunk = s.recv(4096)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
                answer += chunk
                if not chunk or b"\r\n\r\n" in answer:
                    break
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert b"body_timeout" in answer or b"not received" in answer
            assert time.monotonic() - started < 4
            assert closed_by_server(s, 3)


def test_slow_clients_idle_keep_alive_connections_are_closed(fake_bot):
    with live_server(fake_bot, keep_alive_s=0.5, header_timeout_s=30) as addr:
        with socket.create_connection(addr) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            assert closed_by_server(s, 3)


def test_slow_clients_connections_beyond_max_connections_are_closed_at_once(fake_bot):
    with live_server(fake_bot, max_connections=5, header_timeout_s=30) as addr:
        held = [socket.create_connection(addr) for _ in range(5)]
        time.sleep(0.3)
        extra = [socket.create_connection(addr) for _ in range(5)]
        assert all(closed_by_server(s, 2) for s in extra)
        assert not any(closed_by_server(s, 0.2) for s in held)
        for s in held + extra:
            s.close()


def test_slow_clients_a_request_head_over_max_header_bytes_is_400(fake_bot):
    with live_server(fake_bot, max_header_bytes=2048) as addr:
        with socket.create_connection(addr) as s:
            # h11 bounds the head while it is incomplete (a whole head read at once is parsed)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096)
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 400")
