"""Identity and ownership (issue 16): who owns a conversation, signed user tokens, feedback
rules, cancelled turns and storage faults on the turn path. Each defect's test is named after it."""

from __future__ import annotations

import sqlite3
import threading
import time

import jwt
import pytest
from fastapi.testclient import TestClient

from chatrec.chatbot import Chatbot, ConversationNotFound, TokenEvent
from chatrec.config import ServeSettings
from chatrec.llm.fake import FakeLLM
from chatrec.serve.app import create_app
from chatrec.serve.gate import Gate
from chatrec.serve.turns import run_turn
from chatrec.store.sqlite import SQLiteStore
from tests_support import REPO, fake_settings

RECOMMEND = "Can you recommend a case for my Pixel 8?"
SHOP = "https://shop.example"


def client(bot, **kw) -> TestClient:
    kw.setdefault("ui", False)
    kw.setdefault("rate_per_minute_ip", 0)
    kw.setdefault("rate_per_minute_key", 0)
    return TestClient(create_app(bot, ServeSettings(**kw)))


def token(secret: str, sub: str, ttl: int = 300, **claims) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + ttl, **claims}, secret, algorithm="HS256")


def site(c: TestClient, label: str = "shop"):
    """A site key with its signing secret, and the headers of a request made with it."""
    key, record = c.app.state.keys.add([SHOP], label)
    return key, record.signing_secret


def chat(c: TestClient, key: str | None, message: str, cid: str | None = None, user_token: str | None = None, **body):
    headers = {k: v for k, v in {"X-Site-Key": key, "X-User-Token": user_token}.items() if v}
    payload = {"message": message, "stream": False, **body}
    if cid:
        payload["conversation_id"] = cid
    return c.post("/v1/chat", json=payload, headers=headers)


# ------------------------------------------------------------------ 1. conversation takeover


def test_conversation_takeover_by_another_user_is_404(fake_bot):
    c = client(fake_bot)
    key, secret = site(c)
    alice, bob = token(secret, "U001"), token(secret, "U002")
    first = chat(c, key, "Hi, I am looking for earbuds", user_token=alice)
    assert first.status_code == 200
    cid = first.json()["conversation_id"]
    for other in (bob, None):  # another customer, or an anonymous visitor with the id
        r = chat(c, key, "Repeat my previous message word for word", cid, other)
        assert r.status_code == 404 and r.json()["detail"] == "no such conversation"
    assert len(fake_bot.store.turns(cid)) == 1  # nothing was run or stored for them
    assert chat(c, key, "under $100 please", cid, alice).status_code == 200  # the owner continues


def test_conversation_takeover_across_site_keys_is_404(fake_bot):
    c = client(fake_bot)
    (key1, _), (key2, _) = site(c, "one"), site(c, "two")
    cid = chat(c, key1, "hello").json()["conversation_id"]
    assert chat(c, key2, "hello again", cid).status_code == 404
    oa = {"messages": [{"role": "user", "content": "hi"}], "conversation_id": cid}
    r = c.post("/v1/chat/completions", json=oa, headers={"X-Site-Key": key2})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert chat(c, key1, "hello again", cid).status_code == 200


def test_conversation_takeover_a_client_chosen_id_is_refused_never_created(fake_bot):
    c = client(fake_bot)
    r = chat(c, None, "hello", "my-own-id")
    assert r.status_code == 404 and fake_bot.store.conversation("my-own-id") is None
    assert fake_bot.store.count("conversations") == 0


def test_conversation_takeover_ids_are_server_issued_and_unguessable(fake_bot):
    c = client(fake_bot)
    ids = {chat(c, None, "hello").json()["conversation_id"] for _ in range(3)}
    assert len(ids) == 3 and all(len(i) >= 22 for i in ids)


def test_conversation_takeover_local_callers_keep_working_with_their_own_user(fake_bot):
    cid = fake_bot.new_conversation("U001")  # the CLI and the Gradio UI: trusted, tenant None
    assert fake_bot.ask("hello", cid, "U001").conversation_id == cid
    with pytest.raises(ConversationNotFound):
        fake_bot.ask("hello", cid, "U002")
    with pytest.raises(ConversationNotFound):
        list(fake_bot.stream("hello", cid, "U001", tenant=3))  # another tenant


# ------------------------------------------------------------------ 2. user id trusted by default


def test_user_id_trusted_by_default_an_unsigned_user_id_is_ignored(fake_bot):
    c = client(fake_bot)
    r = chat(c, None, RECOMMEND, user_id="U001")
    assert r.status_code == 200
    assert fake_bot.store.conversation(r.json()["conversation_id"])["user_id"] is None
    oa = {"messages": [{"role": "user", "content": RECOMMEND}], "user": "U001"}
    done = c.post("/v1/chat/completions", json=oa).json()
    assert fake_bot.store.conversation(done["chatrec"]["conversation_id"])["user_id"] is None


def test_user_id_trusted_by_default_unless_accept_unsigned_user_id_is_on(fake_bot):
    c = client(fake_bot, accept_unsigned_user_id=True)
    r = chat(c, None, RECOMMEND, user_id="U001")
    assert fake_bot.store.conversation(r.json()["conversation_id"])["user_id"] == "U001"


def test_user_id_trusted_by_default_a_signed_user_token_names_the_user(fake_bot):
    c = client(fake_bot)
    key, secret = site(c)
    r = chat(c, key, RECOMMEND, user_token=token(secret, "U001"), user_id="U002")  # the token wins
    conv = fake_bot.store.conversation(r.json()["conversation_id"])
    assert conv["user_id"] == "U001" and conv["tenant_id"] is not None
    oa = {"messages": [{"role": "user", "content": RECOMMEND}]}
    done = c.post(
        "/v1/chat/completions",
        json=oa,
        headers={"Authorization": f"Bearer {key}", "X-User-Token": token(secret, "U003")},
    ).json()
    assert fake_bot.store.conversation(done["chatrec"]["conversation_id"])["user_id"] == "U003"


def test_user_id_trusted_by_default_a_bad_or_expired_user_token_is_401(fake_bot):
    c = client(fake_bot)
    key, secret = site(c)
    _, other_secret = site(c, "other")
    bad = {
        "garbage": "not-a-jwt",
        "wrong secret": token(other_secret, "U001"),
        "expired": token(secret, "U001", ttl=-60),
        "no exp": jwt.encode({"sub": "U001"}, secret, algorithm="HS256"),
        "no sub": jwt.encode({"exp": int(time.time()) + 60}, secret, algorithm="HS256"),
        "lives too long": token(secret, "U001", ttl=30 * 86400),
        "alg none": jwt.encode({"sub": "U001", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "empty sub": token(secret, " "),
    }
    for why, tok in bad.items():
        r = chat(c, key, "hello", user_token=tok)
        assert r.status_code == 401, why
        assert r.json()["detail"].startswith("invalid user token"), why
    oa = {"messages": [{"role": "user", "content": "hi"}]}
    r = c.post("/v1/chat/completions", json=oa, headers={"X-Site-Key": key, "X-User-Token": bad["expired"]})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    keyless = client(fake_bot)  # no key on the request: nothing to verify a token with
    assert chat(keyless, None, "hello", user_token=token(secret, "U001")).status_code == 401
    assert fake_bot.store.count("turns") == 0


def test_user_id_trusted_by_default_the_widget_passes_a_token_never_a_bare_id():
    js = (REPO / "chatrec" / "static" / "widget.js").read_text(encoding="utf-8")
    demo = (REPO / "chatrec" / "static" / "demo.html").read_text(encoding="utf-8")
    assert "data-user-token" in js and "X-User-Token" in js
    assert "data-user-id" not in js and "data-user-id" not in demo and "user_id" not in js


def test_cli_keys_add_prints_the_signing_secret_once(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from chatrec.cli.main import main

    monkeypatch.setenv("CHATREC_DATA_DIR", str(tmp_path / "k"))
    out = CliRunner().invoke(main, ["keys", "add", "--origin", SHOP])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].startswith("crk_") and lines[1].startswith("signing secret: crs_")
    listed = CliRunner().invoke(main, ["keys", "list"]).stdout
    assert "crs_" not in listed
    rotated = CliRunner().invoke(main, ["keys", "secret", "1"])
    assert rotated.exit_code == 0 and rotated.stdout.strip().startswith("crs_")
    assert rotated.stdout.strip() != lines[1].split(": ")[1]


# ------------------------------------------------------------------ 3. feedback


def _turn(c: TestClient, key=None, user_token=None):
    res = chat(c, key, RECOMMEND, user_token=user_token).json()
    return res["conversation_id"], res["turn_id"], [r["item_id"] for r in res["recommendations"]]


def _vote(c: TestClient, key=None, user_token=None, **body):
    headers = {k: v for k, v in {"X-Site-Key": key, "X-User-Token": user_token}.items() if v}
    return c.post("/v1/feedback", json=body, headers=headers)


def test_feedback_by_anyone_on_any_turn_is_404(fake_bot):
    c = client(fake_bot)
    key, secret = site(c)
    key2, secret2 = site(c, "two")
    alice, bob = token(secret, "U001"), token(secret, "U002")
    cid, tid, _ = _turn(c, key, alice)
    mine = {"conversation_id": cid, "turn_id": tid, "kind": "thumbs_up"}
    assert _vote(c, key, bob, **mine).status_code == 404  # another user
    assert _vote(c, key, None, **mine).status_code == 404  # anonymous
    assert _vote(c, key2, alice, **mine).status_code == 401  # alice's token is not key2's
    assert _vote(c, key2, token(secret2, "U001"), **mine).status_code == 404  # the same user id on another key
    # an anonymous visitor cannot rate another anonymous visitor's sequential turn id
    cid_a, tid_a, _ = _turn(c, key)
    cid_b, _, _ = _turn(c, key)
    assert _vote(c, key, None, conversation_id=cid_b, turn_id=tid_a, kind="thumbs_down").status_code == 404
    assert _vote(c, key, None, conversation_id=cid_a, turn_id=tid_a, kind="thumbs_down").status_code == 201
    assert _vote(c, key, None, turn_id=tid_a, kind="thumbs_down").status_code == 422  # conversation_id required
    assert fake_bot.store.feedback(tid) == []
    assert _vote(c, key, alice, **mine).status_code == 201


def test_feedback_accept_for_an_item_the_turn_never_showed_is_422(fake_bot):
    c = client(fake_bot)
    cid, tid, shown = _turn(c)
    other = next(i for i in fake_bot.kb.items if i not in shown)
    for kind in ("accept", "reject"):
        assert _vote(c, conversation_id=cid, turn_id=tid, kind=kind, item_id=other).status_code == 422
        assert _vote(c, conversation_id=cid, turn_id=tid, kind=kind).status_code == 422  # needs an item
    assert fake_bot.store.feedback(tid) == []
    assert _vote(c, conversation_id=cid, turn_id=tid, kind="reject", item_id=shown[0]).status_code == 201


def test_feedback_duplicates_are_stored_once_and_answer_the_same_id(fake_bot):
    c = client(fake_bot)
    cid, tid, shown = _turn(c)
    body = {"conversation_id": cid, "turn_id": tid, "kind": "accept", "item_id": shown[0]}
    ids = {_vote(c, **body).json()["id"] for _ in range(3)}
    assert len(ids) == 1 and len(fake_bot.store.feedback(tid)) == 1


@pytest.mark.parametrize("turn_id", [2**63, 2**63 + 1, 10**30, -1, 0])
def test_feedback_turn_id_of_2_63_or_more_is_4xx_not_500(fake_bot, turn_id):
    c = client(fake_bot)
    r = _vote(c, conversation_id="c1", turn_id=turn_id, kind="click")
    assert r.status_code == 422
    assert _vote(c, conversation_id="c1", turn_id=2**63 - 1, kind="click").status_code == 404


# ------------------------------------------------------------------ 4. cancelled turns


def test_cancelled_turn_leaves_a_record_with_status_cancelled(fake_bot):
    gate = Gate(1, 0)
    gate.acquire_blocking()  # the slot run_turn gives back
    opened = fake_bot.open_conversation(None, None)
    cancel, gone = threading.Event(), threading.Event()
    seen: list = []

    def put(ev):  # the client leaves after the first piece
        seen.append(ev)
        if isinstance(ev, TokenEvent):
            gone.set()
            cancel.set()

    message = "my email is jane.doe@example.com; " + RECOMMEND
    run_turn(fake_bot, gate, {"message": message, "opened": opened}, cancel, put, gone)
    assert gate.running == 0
    turns = fake_bot.store.turns(opened.id)
    assert [t["status"] for t in turns] == ["cancelled"]
    assert "jane.doe@example.com" not in turns[0]["user_text"] and "Pixel 8" in turns[0]["user_text"]
    shown = "".join(ev.text for ev in seen if isinstance(ev, TokenEvent)).strip()
    assert shown and turns[0]["reply_text"].startswith(shown)  # the checked text released to the client
    assert fake_bot.store.load_state(opened.id) == {}  # the state did not move
    assert not any(type(ev).__name__ == "ResultEvent" for ev in seen)


def test_cancelled_turn_a_consumer_closing_the_stream_records_it(fake_bot):
    stream = fake_bot.stream(RECOMMEND)
    first = next(stream)
    assert isinstance(first, TokenEvent)
    stream.close()
    rows = sqlite3.connect(fake_bot.settings.db_path).execute("SELECT status FROM turns").fetchall()
    assert rows == [("cancelled",)]


# ------------------------------------------------------------------ 5. storage faults


class _LockedAtSave(SQLiteStore):
    """A real SQLite store whose database another process locks just before the final save."""

    gate: Gate | None = None
    running_at_save: list[int] = []

    def save_turn(self, *args, **kw):
        if self.gate is not None:
            self.running_at_save.append(self.gate.running)
        locker = sqlite3.connect(self.path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            return super().save_turn(*args, **kw)
        finally:
            locker.execute("ROLLBACK")
            locker.close()


def test_storage_faults_a_locked_database_at_the_save_is_503_and_the_slot_was_already_free(tmp_path, kb, shared_index):
    settings = fake_settings(tmp_path, db_busy_timeout_s=0.2)
    store = _LockedAtSave(settings.db_path, busy_timeout_s=0.2)
    bot = Chatbot(settings, llm=FakeLLM(), kb=kb, index=shared_index, store=store)
    c = client(bot)
    store.gate = c.app.state.gate
    store.running_at_save = []
    r = chat(c, None, RECOMMEND)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert store.running_at_save == [0]  # the model slot was given back before the save
    assert c.app.state.gate.running == 0


def test_storage_faults_a_locked_database_is_503_before_taking_the_slot_and_readyz_recovers(tmp_path, kb, shared_index):
    settings = fake_settings(tmp_path, db_busy_timeout_s=0.2)
    bot = Chatbot(settings, llm=FakeLLM(), kb=kb, index=shared_index)
    c = client(bot)
    cid = chat(c, None, "hello").json()["conversation_id"]
    assert c.get("/readyz").status_code == 200
    locker = sqlite3.connect(settings.db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        r = chat(c, None, "hello")  # a new conversation is a write: refused before any slot is taken
        assert r.status_code == 503 and r.headers["retry-after"] and r.json()["detail"]
        assert time.monotonic() - t0 < 3 and c.app.state.gate.running == 0
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["store"] == "unavailable"
        r = chat(c, None, "hello again", cid)  # reads pass in WAL; the final save cannot
        assert r.status_code == 503 and c.app.state.gate.running == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert c.get("/readyz").status_code == 200  # ready again on its own
    assert chat(c, None, "hello again", cid).status_code == 200


# ------------------------------------------------------------------ 6. PII in ids


def test_pii_in_ids_an_email_user_id_is_stored_as_a_keyed_hash(fake_bot):
    c = client(fake_bot)
    key, secret = site(c)
    email = "jane.doe@example.com"
    tok = token(secret, email)
    cid = chat(c, key, RECOMMEND, user_token=tok).json()["conversation_id"]
    owner = fake_bot.store.conversation(cid)["user_id"]
    assert owner.startswith("uid:") and email not in owner
    assert chat(c, key, "something cheaper", cid, tok).status_code == 200  # the owner still matches
    assert chat(c, key, "hi", cid, token(secret, "john@example.com")).status_code == 404
    card = client(fake_bot, accept_unsigned_user_id=True)
    oa = {"messages": [{"role": "user", "content": "hi"}], "user": "4111 1111 1111 1111"}
    done = card.post("/v1/chat/completions", json=oa, headers={"X-Site-Key": key}).json()
    assert fake_bot.store.conversation(done["chatrec"]["conversation_id"])["user_id"].startswith("uid:")
    raw = (
        fake_bot.settings.db_path.read_bytes() + fake_bot.settings.db_path.with_name("chatrec.sqlite3-wal").read_bytes()
    )
    assert email.encode() not in raw and b"4111 1111 1111 1111" not in raw


def test_admin_api_shows_the_signing_secret_with_a_new_key_and_rotates_it(fake_bot):
    c = client(fake_bot, admin_token="adm")
    auth = {"Authorization": "Bearer adm"}
    made = c.post("/v1/admin/keys", json={"origins": [SHOP]}, headers=auth).json()
    assert made["key"].startswith("crk_") and made["signing_secret"].startswith("crs_")
    listed = c.get("/v1/admin/keys", headers=auth).json()["keys"]
    assert "signing_secret" not in listed[0] and "crs_" not in str(listed)
    new = c.post(f"/v1/admin/keys/{made['id']}/secret", headers=auth).json()["signing_secret"]
    assert new.startswith("crs_") and new != made["signing_secret"]
    old_token, new_token = token(made["signing_secret"], "U001"), token(new, "U001")
    assert chat(c, made["key"], "hello", user_token=old_token).status_code == 401
    assert chat(c, made["key"], "hello", user_token=new_token).status_code == 200
    assert c.post("/v1/admin/keys/999/secret", headers=auth).status_code == 404
    assert c.post(f"/v1/admin/keys/{2**63}/secret", headers=auth).status_code == 422
