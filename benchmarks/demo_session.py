"""The demo conversation a new user would have, through the real product, with screenshots.

Starts ``chatrec serve`` on the demo KB with the default set-up (the embedded SmolLM2 in NF4,
the shipped adapter when there is one, real Chroma and KG), then in a headless Chromium
(Debian's ``chromium``, driven by Playwright; no downloaded browser) has the same scripted
conversation twice: in the embeddable widget (``/demo``) and in the Gradio UI (``/ui``).
Writes the widget's transcript with per-turn latency (time from pressing Enter to the
finished reply, as the customer waits) and both screenshots::

    python benchmarks/demo_session.py --out benchmarks/results/demo_session.md \
        --shots docs/screenshots

Timings depend on the machine's load; the file says the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# a service question, an underspecified request, its answer, a refinement, a reference, a handoff
SCRIPT = [
    "Hi! How long do I have to return something?",
    "I need a protective case for my phone, what do you have?",
    "It's a Pixel 8",
    "something cheaper?",
    "does the second one come in other colours?",
    "I'd like to talk to a real person please",
]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _shown(path: Path) -> str:
    """``path`` as typed from the repository root when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"chatrec serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"chatrec serve was not ready within {timeout:.0f} s")


def widget_session(page, base: str, timeout: float) -> list[dict]:
    page.goto(f"{base}/demo")
    page.click("button.launcher")
    rows = []
    for n, text in enumerate(SCRIPT, 1):
        page.fill("textarea", text)
        t0 = time.perf_counter()
        page.keyboard.press("Enter")
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = page.locator(".msg.bot:not(.pending)").count() >= n
            if done and page.locator(".log").get_attribute("aria-busy") == "false":
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"no reply to {text!r} within {timeout:.0f} s")
        latency = time.perf_counter() - t0
        reply = page.locator(".msg.bot").nth(n - 1).inner_text()
        rows.append({"customer": text, "reply": reply, "latency_s": round(latency, 2)})
        print(f"[widget] {latency:6.1f} s  {text!r} -> {reply[:100]!r}", flush=True)
    return rows


def gradio_session(page, base: str, timeout: float) -> list[float]:
    page.goto(f"{base}/ui/")
    page.wait_for_selector("textarea", timeout=60_000)
    box = page.locator("textarea").first
    latencies = []
    for text in SCRIPT:
        box.fill(text)
        t0 = time.perf_counter()
        box.press("Enter")
        # the reply is finished when the recommendation panel has left its streaming mark and the box is empty
        page.wait_for_timeout(500)
        deadline = time.time() + timeout
        stable = 0
        while time.time() < deadline and stable < 3:
            busy = page.locator(".pending, .generating, .progress-text").count() > 0
            stable = 0 if busy else stable + 1
            time.sleep(0.5)
        latencies.append(round(time.perf_counter() - t0, 2))
        print(f"[gradio] {latencies[-1]:6.1f} s  {text!r}", flush=True)
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/demo_session.md")
    ap.add_argument("--shots", type=Path, default=None, help="folder for widget_demo.png and gradio_ui.png")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for one reply")
    ap.add_argument("--data-dir", type=Path, default=None, help="state folder (default: a fresh temporary one)")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit("Debian's chromium is needed (apt-get install chromium)")
    import tempfile

    from playwright.sync_api import sync_playwright

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="chatrec-demo-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, CHATREC_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    load_before = os.getloadavg()
    exe = str(Path(sys.executable).parent / "chatrec")
    proc = subprocess.Popen([exe, "index"], cwd=ROOT, env=env)
    if proc.wait() != 0:
        raise SystemExit("chatrec index failed")
    proc = subprocess.Popen([exe, "serve", "--port", str(port)], cwd=ROOT, env=env)
    try:
        _wait_ready(base, proc, 600)
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as r:
            health = json.loads(r.read())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
            rows = widget_session(page, base, args.timeout)
            if args.shots:
                args.shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.shots / "widget_demo.png"))
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            gradio = gradio_session(page, base, args.timeout)
            if args.shots:
                page.screenshot(path=str(args.shots / "gradio_ui.png"), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    m = {"machine": platform.machine(), "cpu_count": os.cpu_count(), "python": platform.python_version()}
    lines = [
        "# The demo conversation through the widget (`benchmarks/demo_session.py`)",
        "",
        f"`python benchmarks/demo_session.py --out {_shown(args.out)}"
        + (f" --shots {_shown(args.shots)}" if args.shots else "")
        + f"`; {m['machine']}, {m['cpu_count']} cores, Python {m['python']}; engine: {health.get('llm', '?')}; "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after.",
        "",
        "Latency: from pressing Enter to the finished reply in the browser.",
        "",
        "| # | customer | reply | latency s |",
        "|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        reply = " ".join(r["reply"].split()).replace("|", "\\|")
        lines.append(f"| {i} | {r['customer']} | {reply} | {r['latency_s']} |")
    lines += ["", f"The same conversation in the Gradio UI, per turn (s): {gradio}", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(
        json.dumps({"machine": m, "health": health, "widget": rows, "gradio_latency_s": gradio}, indent=1)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
