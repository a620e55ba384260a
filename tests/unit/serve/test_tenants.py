"""Several shops on one deployment (issue 20 item 4): each site key belongs to a tenant with its own
KB, index, adapter, prompts and limits; one tenant never reads another's conversations, items or
users. Tenant ``default`` is the demo KB (the top-level settings), tenant ``tiny`` is
tests/fixtures/kb_tiny (its own ids: P8, C1 ...), on one engine serving named adapters and one store.
Each test is named after the guarantee it checks."""

from __future__ import annotations

import shutil
import time

import jwt
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings, load_settings
from chatrec.kb import load_kb
from chatrec.llm.base import UnknownAdapter
from chatrec.llm.fake import FakeLLM
from chatrec.serve.app import create_app
from chatrec.store.keys import DEFAULT_TENANT
from tests_support import KB_DIR, REPO, TINY, fake_settings

RECOMMEND = "Can you recommend a case for my Pixel 8?"
MARKER = "House rules of the tiny shop: TINY-PROMPTS."


class AdapterEngine(FakeLLM):
    """A scripted engine serving named LoRA adapters, as vLLM and llama.cpp's server do: a request
    for adapter ``x`` runs on the view named ``fake@x``, which keeps the prompts it was sent."""

    def __init__(self, adapters: list[str]):
        super().__init__()
        self.adapters: dict[str, FakeLLM] = {}
        for name in adapters:
            view = self.adapters[name] = FakeLLM()
            view.name = f"fake@{name}"

    def with_adapter(self, name: str | None) -> FakeLLM:
        if name is None:
            return self
        if name not in self.adapters:
            raise UnknownAdapter(f"unknown adapter {name!r}")
        return self.adapters[name]


@pytest.fixture(scope="module")
def shops(tmp_path_factory, kb, shared_index):
    """One app, two shops (and a rate-limited and a capped copy of the tiny one, same KB and index)."""
    root = tmp_path_factory.mktemp("tenants")
    prompts = root / "tiny_prompts"
    shutil.copytree(REPO / "prompts", prompts)
    system = prompts / "system.j2"
    system.write_text(MARKER + "\n" + system.read_text("utf-8"), "utf-8")
    tiny = {"kb_dir": str(TINY), "data_dir": str(root / "tiny"), "adapter": "tiny-lora", "prompts_dir": str(prompts)}
    settings = load_settings(
        kb_dir=str(KB_DIR),
        data_dir=str(root / "state"),
        llm={"backend": "fake", "adapters": {"tiny-lora": "x", "demo-lora": "y"}},
        tenants={
            "tiny": tiny,
            "limited": {**tiny, "rate_per_minute": 2},
            "capped": {**tiny, "max_concurrent": 1},
        },
    )
    engine = AdapterEngine(["tiny-lora", "demo-lora"])
    bot = Chatbot(settings, llm=engine, kb=kb, index=shared_index)
    app = create_app(bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0, expose_trace=True))
    c = TestClient(app)
    keys = {}
    for tenant in ("default", "tiny", "limited", "capped"):
        plain, record = app.state.keys.add([], tenant, tenant)
        keys[tenant] = (plain, record.signing_secret)
    return c, keys, engine


def token(secret: str, sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, secret, algorithm="HS256")


def chat(c: TestClient, key: str, message: str = RECOMMEND, user_token: str | None = None, **body):
    headers = {"X-Site-Key": key, **({"X-User-Token": user_token} if user_token else {})}
    return c.post("/v1/chat", json={"message": message, "stream": False, **body}, headers=headers)


def test_a_turn_recommends_only_its_tenants_items(shops):
    c, keys, _ = shops
    demo, tiny = load_kb(REPO / "kb"), load_kb(TINY)
    assert not set(demo.items) & set(tiny.items)  # two catalogues with no id in common
    for tenant, kb in (("default", demo), ("tiny", tiny)):
        r = chat(c, keys[tenant][0])
        assert r.status_code == 200, r.text
        ids = [rec["item_id"] for rec in r.json()["recommendations"]]
        assert ids and set(ids) <= set(kb.items), (tenant, ids)
        cited = [s.removeprefix("item:") for s in r.json()["sources"] if s.startswith("item:")]
        assert set(cited) <= set(kb.items)


def test_tenant_b_cannot_read_tenant_a_conversation(shops):
    c, keys, _ = shops
    (key_a, secret_a), (key_b, secret_b) = keys["default"], keys["tiny"]
    first = chat(c, key_a, user_token=token(secret_a, "U002"))
    cid = first.json()["conversation_id"]
    # the other shop's key, anonymous or with its own user of the same id: no such conversation
    assert chat(c, key_b, "and a cheaper one?", conversation_id=cid).status_code == 404
    r = chat(c, key_b, "and a cheaper one?", conversation_id=cid, user_token=token(secret_b, "U002"))
    assert r.status_code == 404 and r.json()["detail"] == "no such conversation"
    # nor rate its turns
    fb = {"conversation_id": cid, "turn_id": first.json()["turn_id"], "kind": "thumbs_down"}
    assert c.post("/v1/feedback", json=fb, headers={"X-Site-Key": key_b}).status_code == 404
    # while the owner continues it
    again = chat(c, key_a, "and a cheaper one?", conversation_id=cid, user_token=token(secret_a, "U002"))
    assert again.status_code == 200


def test_tenant_b_cannot_use_tenant_a_user_tokens_or_history(shops):
    c, keys, engine = shops
    (key_a, secret_a), (key_b, secret_b) = keys["default"], keys["tiny"]
    # a token signed with shop A's secret does not verify with shop B's key
    r = chat(c, key_b, user_token=token(secret_a, "U002"))
    assert r.status_code == 401
    # U002 is a customer of the demo shop (Liam K. in Phoenix): shop A's prompt has the profile
    assert chat(c, key_a, user_token=token(secret_a, "U002")).status_code == 200
    prompt_a = "\n".join(m["content"] for m in engine.calls[-1])
    assert "Liam" in prompt_a
    # shop B's customer of the same id has nothing of A's history: B's KB has no such user
    assert chat(c, key_b, user_token=token(secret_b, "U002")).status_code == 200
    prompt_b = "\n".join(m["content"] for m in engine.adapters["tiny-lora"].calls[-1])
    assert "Liam" not in prompt_b and "Phoenix" not in prompt_b


def test_feedback_names_only_its_tenants_items(shops):
    c, keys, _ = shops
    key_b = keys["tiny"][0]
    r = chat(c, key_b)
    fb = {"conversation_id": r.json()["conversation_id"], "turn_id": r.json()["turn_id"], "kind": "click"}
    demo_item = next(iter(load_kb(REPO / "kb").items))
    assert c.post("/v1/feedback", json={**fb, "item_id": demo_item}, headers={"X-Site-Key": key_b}).status_code == 422
    shown = r.json()["recommendations"][0]["item_id"]
    assert c.post("/v1/feedback", json={**fb, "item_id": shown}, headers={"X-Site-Key": key_b}).status_code == 201


def test_each_tenant_uses_its_own_adapter_and_prompts(shops):
    c, keys, engine = shops
    a = chat(c, keys["default"][0]).json()
    b = chat(c, keys["tiny"][0]).json()
    assert a["trace"]["generation"]["backend"] == "fake"  # the default shop: the base model
    assert b["trace"]["generation"]["backend"] == "fake@tiny-lora"
    system_b = engine.adapters["tiny-lora"].calls[-1][0]["content"]
    system_a = engine.calls[-1][0]["content"]
    assert system_b.startswith(MARKER) and MARKER not in system_a
    # a shop cannot pick another shop's adapter (the default one may pick any, as before)
    r = chat(c, keys["tiny"][0], adapter="demo-lora")
    assert r.status_code == 400 and "unknown adapter 'demo-lora'" in r.json()["detail"]
    assert chat(c, keys["tiny"][0], adapter="tiny-lora").status_code == 200
    assert chat(c, keys["default"][0], adapter="demo-lora").json()["trace"]["generation"]["backend"] == "fake@demo-lora"
    # the OpenAI API too
    body = {"model": "demo-lora", "messages": [{"role": "user", "content": RECOMMEND}]}
    assert c.post("/v1/chat/completions", json=body, headers={"X-Site-Key": keys["tiny"][0]}).status_code == 400
    body["model"] = "chatrec"
    ok = c.post("/v1/chat/completions", json=body, headers={"X-Site-Key": keys["tiny"][0]})
    assert ok.status_code == 200 and ok.json()["chatrec"]["trace"]["generation"]["backend"] == "fake@tiny-lora"


def test_per_tenant_rate_limit_counts_all_its_keys(shops):
    c, keys, _ = shops
    second, _ = c.app.state.keys.add([], "limited 2", "limited")
    assert chat(c, keys["limited"][0]).status_code == 200
    assert chat(c, second).status_code == 200
    r = chat(c, keys["limited"][0])
    assert r.status_code == 429 and "shop" in r.json()["detail"] and int(r.headers["Retry-After"]) >= 1
    assert chat(c, keys["tiny"][0]).status_code == 200  # another shop on the same KB is not limited


def test_per_tenant_max_concurrent_turns(shops):
    c, keys, _ = shops
    capped = c.app.state.tenants.get("capped")
    capped.take_slot(1)  # a turn of this shop is running
    try:
        r = chat(c, keys["capped"][0])
        assert r.status_code == 503 and "shop's assistant is busy" in r.json()["detail"]
        assert chat(c, keys["tiny"][0]).status_code == 200  # other shops are not held up
    finally:
        capped.release_slot()
    assert chat(c, keys["capped"][0]).status_code == 200
    assert capped.running == 0  # the turn gave its place back


def test_tenant_bots_are_built_once_and_kept(shops):
    c, keys, _ = shops
    tenants = c.app.state.tenants
    assert tenants.get("tiny").bot is tenants.get("tiny").bot
    assert tenants.get("tiny").bot.store is tenants.default.bot.store  # one shared store
    assert tenants.get("tiny").bot.settings.kb_dir == TINY
    assert tenants.default.bot is c.app.state.bot


def test_a_key_of_an_unconfigured_tenant_is_refused(shops):
    c, _, _ = shops
    plain, _ = c.app.state.keys.add([], "gone", "closed-shop")
    r = chat(c, plain)
    assert r.status_code == 403 and "'closed-shop' is not configured" in r.json()["detail"]


def test_keys_add_tenant_cli(tmp_path, monkeypatch):
    from chatrec.cli.main import main
    from chatrec.store import open_keys

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[tenants.tiny]\nkb_dir = "{TINY}"\n')
    runner = CliRunner()
    ok = runner.invoke(main, ["--config", str(cfg), "keys", "add", "--tenant", "tiny", "--label", "t"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(main, ["--config", str(cfg), "keys", "add", "--tenant", "nope"])
    assert bad.exit_code != 0 and "no tenant 'nope'" in bad.output
    listed = runner.invoke(main, ["--config", str(cfg), "keys", "list"])
    assert listed.output.strip().endswith("\ttiny")
    (record,) = open_keys(fake_settings(tmp_path)).list()
    assert record.tenant == "tiny" and record.public()["tenant"] == "tiny"


def test_a_config_without_tenants_serves_every_key_as_the_default_shop(fake_bot):
    app = create_app(fake_bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0))
    plain, record = app.state.keys.add([], "shop")
    assert record.tenant == DEFAULT_TENANT
    c = TestClient(app)
    assert app.state.tenants.names() == [DEFAULT_TENANT]
    assert chat(c, plain).status_code == 200
