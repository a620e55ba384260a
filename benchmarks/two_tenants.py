"""Two shops on one `chatrec serve` process, one engine and one store (issue 20 item 4, closing note).

    python benchmarks/two_tenants.py

- Engine: a scripted OpenAI-compatible server in this process on loopback. Like vLLM with
  ``--enable-lora --lora-modules``, it serves one model name per adapter; it answers with the
  prompt's answer template or its listed items (:func:`chatrec.llm.fake.echo_context`) and
  records the model name (= adapter) each request asked for.
- Settings (TOML, written here): the default shop = the demo KB (kb/) on the base model;
  ``[tenants.tiny]`` = tests/fixtures/kb_tiny with adapter ``tiny`` (the engine's model
  ``shop-tiny-lora``) and its own state folder.
- Keys with ``chatrec keys add`` (``--tenant tiny`` for the second shop); the server is
  ``chatrec serve`` in a subprocess; the same questions go to each shop over HTTP.

Prints, per shop and question: the recommended ids (checked against each KB), the engine
model each turn asked for, and whether the other shop's key can read the conversation (404).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from chatrec.kb import load_kb
from chatrec.llm.fake import echo_context

ROOT = Path(__file__).resolve().parent.parent
CHATREC = str(Path(sys.executable).with_name("chatrec"))
TINY = ROOT / "tests" / "fixtures" / "kb_tiny"
QUESTIONS = ["Can you recommend a case for my Pixel 8?", "I need wireless earbuds"]


class Engine:
    """A loopback OpenAI-compatible engine that records the model (adapter) of every request."""

    def __init__(self) -> None:
        self.models: list[str] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                engine.models.append(body.get("model", ""))
                reply = echo_context(body["messages"])
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for i, word in enumerate(reply.split(" ")):
                        chunk = {"choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.close_connection = True
                    return
                data = json.dumps({"model": body["model"], "choices": [{"index": 0, "message": {"content": reply}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([CHATREC, *args], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-1500:]
    return out.stdout


def main() -> None:
    engine = Engine()
    work = Path(tempfile.mkdtemp(prefix="chatrec-tenants-"))
    cfg = work / "chatrec.toml"
    cfg.write_text(
        f'kb_dir = "{ROOT / "kb"}"\ndata_dir = "{work / "state"}"\n\n'
        f'[llm]\nbackend = "openai"\nbase_url = "{engine.url}"\nmodel = "base"\n'
        'adapters = { tiny = "shop-tiny-lora" }\n\n'
        "[serve]\nexpose_trace = true\nrate_per_minute_ip = 0\n\n"
        f'[tenants.tiny]\nkb_dir = "{TINY}"\ndata_dir = "{work / "tiny"}"\nadapter = "tiny"\nrate_per_minute = 60\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATREC_")} | {
        "CHATREC_CONFIG": str(cfg),
        "OMP_NUM_THREADS": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    print(f"$ cat {cfg.name}\n{cfg.read_text()}")
    run(env, "index")
    keys = {}
    for tenant in ("default", "tiny"):
        out = run(env, "keys", "add", "--label", tenant, "--tenant", tenant)
        keys[tenant] = out.splitlines()[0]
    print("$ chatrec keys list\n" + run(env, "keys", "list"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        [CHATREC, "serve", "--port", str(port), "--no-ui", "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    kbs = {"default": load_kb(ROOT / "kb"), "tiny": load_kb(TINY)}
    try:
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() - t0 < 300, "server did not start"
            time.sleep(0.3)
        cids = {}
        for tenant, key in keys.items():
            for q in QUESTIONS:
                before = len(engine.models)
                r = httpx.post(
                    base + "/v1/chat",
                    json={"message": q, "stream": False},
                    headers={"X-Site-Key": key},
                    timeout=300,
                )
                r.raise_for_status()
                turn = r.json()
                cids[tenant] = turn["conversation_id"]
                ids = [x["item_id"] for x in turn["recommendations"]]
                own = all(i in kbs[tenant].items for i in ids)
                other = next(t for t in kbs if t != tenant)
                foreign = [i for i in ids if i in kbs[other].items]
                print(f"[{tenant}] {q}")
                print(f"  engine model(s) asked: {sorted(set(engine.models[before:]))}")
                print(f"  trace backend: {turn['trace']['generation']['backend']}")
                print(f"  recommended: {ids} (all in {tenant}'s KB: {own}; in the other KB: {foreign})")
                print(f"  reply: {turn['text'][:160]}")
        for tenant, other in (("tiny", "default"), ("default", "tiny")):
            r = httpx.post(
                base + "/v1/chat",
                json={"message": "and a cheaper one?", "stream": False, "conversation_id": cids[other]},
                headers={"X-Site-Key": keys[tenant]},
                timeout=300,
            )
            print(f"[{tenant}] key continuing {other}'s conversation: {r.status_code} {r.json().get('detail')}")
        r = httpx.post(
            base + "/v1/chat",
            json={"message": QUESTIONS[0], "stream": False, "adapter": "other"},
            headers={"X-Site-Key": keys["tiny"]},
            timeout=300,
        )
        print(f"[tiny] asking for adapter 'other': {r.status_code} {r.json().get('detail')}")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        engine.stop()
        log.close()


if __name__ == "__main__":
    main()
