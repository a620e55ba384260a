"""The PostgreSQL store beyond the shared contract (test_store_contract.py): chosen by ``store.url``
for the chatbot, the HTTP API and the site keys; its faults as :class:`StoreUnavailable`; its
migrations applied once by processes starting together. A real server (``conftest.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from chatrec.store import open_keys, open_store
from chatrec.store.base import StoreUnavailable
from chatrec.store.postgres import PG_MIGRATIONS, PostgresKeyStore, PostgresStore
from chatrec.store.sqlite import MIGRATIONS
from tests_support import fake_settings

SHOP = "https://shop.example"


@pytest.fixture
def pg(pg_url):
    stores: list[PostgresStore] = []

    def open_(**kw) -> PostgresStore:
        stores.append(PostgresStore(pg_url, **kw))
        return stores[-1]

    yield open_
    for s in stores:
        s.close()


def test_store_url_puts_the_chatbot_the_api_and_site_keys_on_postgres(pg_url, tmp_path, kb, shared_index):
    from fastapi.testclient import TestClient

    from chatrec.chatbot import Chatbot
    from chatrec.config import ServeSettings
    from chatrec.llm.fake import FakeLLM
    from chatrec.serve.app import create_app

    settings = fake_settings(tmp_path, store={"url": pg_url})
    bot = Chatbot(settings, llm=FakeLLM(), kb=kb, index=shared_index)
    assert isinstance(bot.store, PostgresStore)
    admin = open_keys(settings)  # `chatrec keys add` in another process
    assert isinstance(admin, PostgresKeyStore)
    key, record = admin.add([SHOP], "shop")
    app = create_app(bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0))
    assert isinstance(app.state.keys, PostgresKeyStore) and app.state.keys.store is bot.store  # one pool
    with TestClient(app) as c:
        msg = {"message": "Can you recommend a case for my Pixel 8?"}
        assert c.post("/v1/chat", json=msg, headers={"Origin": SHOP}).status_code == 401  # keys exist: required
        r = c.post("/v1/chat", json=msg, headers={"X-Site-Key": key, "Origin": SHOP})
        assert r.status_code == 200, r.text
    other = open_store(settings)  # a second replica's handle
    convs = other._all("SELECT id, tenant_id FROM conversations")  # type: ignore[attr-defined]
    assert [c["tenant_id"] for c in convs] == [record.id]
    assert len(other.turns(convs[0]["id"])) == 1
    assert not settings.db_path.exists()  # nothing went to the SQLite file
    other.close()
    bot.store.close()  # type: ignore[attr-defined]


def test_site_keys_on_postgres_add_rotate_revoke(pg):
    keys = PostgresKeyStore(pg(), ttl=0)
    key, rec = keys.add([SHOP, "https://www.shop.example"], "shop")
    assert rec.id > 0 and rec.signing_secret and keys.lookup(key) == rec
    assert keys.lookup(key).signing_secret == rec.signing_secret  # type: ignore[union-attr]
    assert keys.origin_allowed(SHOP) and not keys.origin_allowed("https://evil.example")
    again = PostgresKeyStore(pg(), ttl=0)  # another process sees it
    assert [k.id for k in again.list()] == [rec.id]
    secret = again.rotate_secret(rec.id)
    assert secret and secret != rec.signing_secret and keys.lookup(key).signing_secret == secret  # type: ignore[union-attr]
    assert keys.revoke(rec.id) and not keys.revoke(rec.id) and keys.lookup(key) is None
    assert again.rotate_secret(rec.id) is None and not again.any_active()
    stored = again.store._all("SELECT key_hash FROM site_keys")  # type: ignore[attr-defined]
    assert key not in json.dumps(stored)  # only the hash is stored


def test_every_store_migration_has_its_postgres_text():
    assert [name for name, _ in MIGRATIONS] == list(PG_MIGRATIONS)


def test_postgres_schema_matches_sqlite_columns(pg, tmp_path):
    from chatrec.store.sqlite import SQLiteStore

    pg()
    lite = SQLiteStore(tmp_path / "s.sqlite3")
    conn = lite._conn()
    for table in ("conversations", "turns", "feedback", "site_keys", "server_secrets"):
        want = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
        got = {
            r["column_name"]
            for r in pg()._all(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = %s AND table_schema = current_schema()",
                (table,),
            )
        }
        assert got == want, table


def test_processes_starting_together_apply_each_migration_once(pg_url):
    code = "import sys; from chatrec.store.postgres import PostgresStore; PostgresStore(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, pg_url], stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()
    assert [r[0] for r in rows] == list(PG_MIGRATIONS)


def test_postgres_lock_held_too_long_is_store_unavailable_and_ping_recovers(pg, pg_url):
    import psycopg

    store = pg(busy_timeout_s=0.3)
    cid = store.new_conversation(None)
    with psycopg.connect(pg_url) as locker:  # another process holds the conversation's row
        locker.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (cid,))
        with pytest.raises(StoreUnavailable):
            store.save_turn(cid, {}, "hi", "hello", "service", None, [], {})
        assert store.failed_at is not None
    store.ping()  # the lock is gone: healthy again, and a write works
    assert store.failed_at is None
    assert store.save_turn(cid, {}, "hi", "hello", "service", None, [], {}) > 0
    assert store.turns(cid)[0]["status"] == "ok"


def test_postgres_server_down_is_store_unavailable_and_the_store_recovers_when_it_is_back(pg, pg_server):
    store = pg(busy_timeout_s=1.0)
    cid = store.new_conversation("U1")
    tid = store.save_turn(cid, {"n": 1}, "hi", "hello", "service", None, [], {})
    assert pg_server.stop("fast").returncode == 0
    try:
        with pytest.raises(StoreUnavailable):
            store.save_turn(cid, {"n": 2}, "again", "hello", "service", None, [], {})
        with pytest.raises(StoreUnavailable):
            store.ping()
        assert store.failed_at is not None
    finally:
        assert pg_server.start().returncode == 0
    deadline = time.monotonic() + 30
    while True:  # back on its own within seconds: the pool drops the dead connections and reconnects
        try:  # (its reconnect backs off, so the first ping after the restart may still time out)
            store.ping()
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert store.failed_at is None and [t["id"] for t in store.turns(cid)] == [tid]
    assert store.save_turn(cid, {"n": 2}, "again", "hello", "service", None, [], {}) > tid


def test_postgres_server_not_listening_is_store_unavailable_quickly(psycopg_installed):
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable") as err:
        PostgresStore(f"postgresql://chatrec:hunter2@127.0.0.1:{port}/x", busy_timeout_s=0.5)
    assert time.monotonic() - start < 10 and "hunter2" not in str(err.value)


def test_a_postgres_url_keeps_its_password_out_of_messages():
    from chatrec.store.postgres import redact

    assert redact("postgresql://u:hunter2@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert redact("postgresql://u@db/x") == "postgresql://u@db/x"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        PostgresStore("sqlite:///x")


def test_store_url_must_be_postgresql_and_unset_means_the_sqlite_file(tmp_path):
    from chatrec.config import Settings
    from chatrec.store.sqlite import SQLiteStore

    with pytest.raises(ValueError, match="postgresql://"):
        Settings(store={"url": "mysql://u@db/x"})
    settings = Settings(data_dir=tmp_path)
    assert settings.store.url is None and isinstance(open_store(settings), SQLiteStore)
    assert settings.db_path.exists()


def test_replica_on_the_old_schema_failed_with_cached_plan_after_another_migrated(pg, pg_url):
    """A replica that had read a table many times (psycopg prepares a statement after 5 runs) failed
    every later read with "cached plan must not change result type" once another replica's migration
    added a column; the store prepares no statements on the server, so it keeps answering."""
    import psycopg

    store = pg(pool_size=1)
    cid = store.new_conversation(None)
    for _ in range(8):
        assert store.conversation(cid) is not None
    with psycopg.connect(pg_url, autocommit=True) as other:  # another replica's migration
        other.execute("ALTER TABLE conversations ADD COLUMN added_by_a_newer_replica TEXT")
    row = store.conversation(cid)
    assert row is not None and row["id"] == cid
