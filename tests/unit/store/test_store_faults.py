"""The SQLite store under faults (locked, full, cannot open) and the 003 migration on an old file."""

from __future__ import annotations

import sqlite3
import time

import pytest

from chatrec.store.base import StoreUnavailable
from chatrec.store.keys import KeyStore
from chatrec.store.sqlite import MIGRATIONS, SQLiteStore
from chatrec.types import Unavailable


def _save(store: SQLiteStore, cid: str, text: str = "hi") -> int:
    return store.save_turn(cid, {}, text, "hello", "chitchat", None, ["A"], {})


def test_storage_faults_a_locked_database_is_store_unavailable_after_the_short_busy_timeout(tmp_path):
    db = tmp_path / "s.sqlite3"
    store = SQLiteStore(db, busy_timeout_s=0.2)
    cid = store.new_conversation(None)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            _save(store, cid)
        assert time.monotonic() - t0 < 2  # the short timeout, not 30 s
        assert issubclass(StoreUnavailable, Unavailable)
        with pytest.raises(StoreUnavailable):
            store.ping()  # /readyz: not ready while locked
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    store.ping()  # ready again on its own
    assert _save(store, cid) > 0 and len(store.turns(cid)) == 1


def test_storage_faults_disk_full_is_store_unavailable_and_recovers(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite3")
    cid = store.new_conversation(None)
    conn = store._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL from here on, as on a full disk
    with pytest.raises(StoreUnavailable, match="full"):
        _save(store, cid, "x" * 200_000)
    assert store.failed_at is not None and store.turns(cid) == []
    conn.execute("PRAGMA max_page_count = 1073741823")
    store.ping()
    assert store.failed_at is None
    assert _save(store, cid, "x" * 200_000) > 0


def test_storage_faults_a_store_that_cannot_be_opened_is_store_unavailable(tmp_path):
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "dir.sqlite3")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable):
        SQLiteStore(blocker / "s.sqlite3")


def test_storage_faults_a_constraint_is_not_unavailable(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite3")
    with pytest.raises(KeyError):  # a bug or a bad id stays what it is, not a 503
        _save(store, "missing")


def test_migration_003_keeps_old_rows_readable_and_dedupes_old_votes(tmp_path):
    db = tmp_path / "old.sqlite3"
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in MIGRATIONS[:2]:
        for stmt in filter(str.strip, sql.split(";")):
            c.execute(stmt)
        c.execute("INSERT INTO _migrations VALUES (?, 'then')", (name,))
    c.execute(
        "INSERT INTO conversations (id, user_id, created_at) VALUES ('old-1', 'U001', '2025-01-01T00:00:00+00:00')"
    )
    c.execute(
        "INSERT INTO turns (conversation_id, created_at, user_text, reply_text, route, recommended_json, result_json)"
        " VALUES ('old-1', 'then', 'hi', 'hello', 'chitchat', '[\"A\"]', '{}')"
    )
    for _ in range(3):
        c.execute("INSERT INTO feedback (turn_id, kind, item_id, created_at) VALUES (1, 'accept', 'A', 'then')")
    c.execute("INSERT INTO feedback (turn_id, kind, item_id, created_at) VALUES (1, 'thumbs_up', NULL, 'then')")
    c.execute("INSERT INTO feedback (turn_id, kind, item_id, created_at) VALUES (1, 'thumbs_up', NULL, 'then')")
    c.execute(
        "INSERT INTO site_keys (key_hash, prefix, label, origins_json, created_at) VALUES ('h', 'crk_x', '', '[]', 't')"
    )
    c.close()

    store = SQLiteStore(db)
    conv = store.conversation("old-1")
    assert conv["user_id"] == "U001" and conv["tenant_id"] is None
    assert [t["status"] for t in store.turns("old-1")] == ["ok"]
    assert [(f["id"], f["kind"]) for f in store.feedback(1)] == [(1, "accept"), (4, "thumbs_up")]
    assert store.add_feedback(1, "reject", "A") > 4  # the new kind passes the new CHECK
    secret = KeyStore(db).list()[0]
    assert secret.signing_secret is None  # list() shows no secret ...
    row = sqlite3.connect(db).execute("SELECT signing_secret FROM site_keys").fetchone()
    assert row[0].startswith("crs_") and len(row[0]) > 40  # ... but the old key got one (rotate it to see it)
