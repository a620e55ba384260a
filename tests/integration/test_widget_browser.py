"""The widget in a real headless Chromium (Debian's package, driven by Playwright through
``executable_path``; no downloaded browser): load /demo, chat, see streamed text and a
recommendation card, rate it, and check the feedback row; HTML in messages stays inert."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest
import uvicorn

from chatrec.config import ServeSettings
from chatrec.serve.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"
)
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live(fake_bot):
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
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 800})  # a narrow phone screen
        yield context.new_page()
        browser.close()


def _send(page, text):
    page.fill("textarea", text)
    page.keyboard.press("Enter")


def _wait_reply(page, n, timeout=30):
    """Until ``n`` bot replies are complete (nothing pending, the input free again)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = page.locator(".msg.bot:not(.pending)").count() >= n
        if done and page.locator(".log").get_attribute("aria-busy") == "false":
            return
        time.sleep(0.1)
    raise AssertionError(f"no complete reply #{n}: {page.locator('.log').inner_text()!r}")


def test_demo_page_chat_stream_cards_feedback_and_reload(live, page, fake_bot, tmp_path):
    page.goto(f"{live}/demo")
    page.click("button.launcher")
    _send(page, "How do I return my headphones?")
    _wait_reply(page, 1)
    _send(page, "Can you recommend a case for my Pixel 8?")
    _wait_reply(page, 2)
    card = page.wait_for_selector(".card", timeout=20_000)
    assert "Pixel 8" in card.inner_text()
    bot_msgs = page.locator(".msg.bot").all_inner_texts()
    assert len(bot_msgs) >= 2 and all(m.strip() for m in bot_msgs)

    before = len(fake_bot.store.feedback())
    page.locator(".card button.act").first.click()  # the first action on the card
    deadline = time.time() + 10
    while len(fake_bot.store.feedback()) == before and time.time() < deadline:
        time.sleep(0.1)
    rows = fake_bot.store.feedback()
    assert len(rows) == before + 1 and rows[-1]["kind"] in ("thumbs_up", "thumbs_down", "accept", "click")

    page.screenshot(path=str(tmp_path / "widget.png"))
    if os.environ.get("CHATREC_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["CHATREC_SCREENSHOT_DIR"], "widget_demo.png"))

    page.reload()  # the conversation survives a reload (and the panel stays open)
    page.wait_for_selector(".log", state="attached")
    if page.locator("button.launcher").is_visible():
        page.click("button.launcher")
    page.wait_for_selector(".card", timeout=10_000)
    assert len(page.locator(".msg.user").all_inner_texts()) == 2


def test_html_in_a_message_is_rendered_inert(live, page):
    page.goto(f"{live}/demo")
    page.click("button.launcher")
    page.evaluate("window.__pwned = false")
    _send(page, '<img src=x onerror="window.__pwned=true"> hello')
    _wait_reply(page, 1)
    assert page.locator(".msg.user").first.inner_text().startswith("<img")
    assert page.locator(".msg img").count() == 0
    assert page.evaluate("window.__pwned") is False
