"""The widget on a shop's own origin in headless Chromium, with a signed user token: the CORS
preflight lets ``X-User-Token`` through, the conversation belongs to the token's user, the
page holds no bare user id, and an expired token gets the "reload" note (no turn run)."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import threading
import time

import jwt
import pytest
import uvicorn

from chatrec.config import ServeSettings
from chatrec.serve.app import create_app
from chatrec.store.keys import KeyStore

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"
)
SHOP_PORT = 8765
SHOP = f"http://127.0.0.1:{SHOP_PORT}"  # another origin than the API (another port)
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture
def served(fake_bot):
    key, record = KeyStore(fake_bot.settings.db_path).add([SHOP], "shop")
    app = create_app(fake_bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", key, record.signing_secret
    srv.should_exit = True
    thread.join(timeout=10)


@contextlib.contextmanager
def _shop(api: str, key: str, token: str):
    """The shop's own page, served from another loopback port (another origin than the API)."""
    html = (
        "<!doctype html><html><body><h1>Shop</h1>"
        f'<script src="{api}/widget.js" data-site-key="{key}" data-user-token="{token}" defer>'
        "</script></body></html>"
    ).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", SHOP_PORT), Page)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield SHOP
    finally:
        srv.shutdown()
        srv.server_close()


def _chat(page, text: str) -> str:
    """Send ``text``; the last bot message or note once the widget is idle again."""
    page.fill("textarea", text)
    page.keyboard.press("Enter")
    time.sleep(0.3)
    deadline = time.time() + 30
    while time.time() < deadline:
        if page.locator(".log").get_attribute("aria-busy") == "false" and not page.locator(".pending").count():
            return page.locator(".msg.bot, .note").last.inner_text()
        time.sleep(0.1)
    raise AssertionError(page.locator(".log").inner_text())


def test_user_id_trusted_by_default_the_widget_sends_a_signed_token_cross_origin(served, fake_bot):
    from playwright.sync_api import sync_playwright

    api, key, secret = served
    good = jwt.encode({"sub": "U001", "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    expired = jwt.encode({"sub": "U001", "exp": int(time.time()) - 600}, secret, algorithm="HS256")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context().new_page()
            with _shop(api, key, good):
                page.goto(f"{SHOP}/")
                assert "data-user-id" not in page.content()
                page.click("button.launcher")
                _chat(page, "Can you recommend a case for my Pixel 8?")
            convs = {c["user_id"] for c in _conversations(fake_bot)}
            assert convs == {"U001"}  # the token's user owns the conversation

            page2 = browser.new_context().new_page()
            with _shop(api, key, expired):
                page2.goto(f"{SHOP}/")
                page2.click("button.launcher")
                note = _chat(page2, "hello")
            assert "expired" in note.lower()
            assert fake_bot.store.count("conversations") == 1  # nothing run for the expired token
        finally:
            browser.close()


def _conversations(bot) -> list[dict]:
    import sqlite3

    with sqlite3.connect(bot.settings.db_path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM conversations")]
