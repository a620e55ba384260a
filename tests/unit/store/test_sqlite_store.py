import sqlite3

import pytest

from chatrec.store.sqlite import SQLiteStore as Store


def test_migrations_are_idempotent_and_wal(tmp_path):
    db = tmp_path / "s.sqlite3"
    Store(db)
    Store(db)  # re-opening applies nothing twice
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    from chatrec.store.sqlite import MIGRATIONS

    assert [r[0] for r in conn.execute("SELECT name FROM _migrations")] == [m[0] for m in MIGRATIONS]


def test_turns_state_and_feedback_survive_reopen(tmp_path):
    db = tmp_path / "s.sqlite3"
    s = Store(db)
    cid = s.new_conversation("U001")
    tid = s.save_turn(cid, {"x": 1}, "hi", "hello", "chitchat", None, ["A"], {"text": "hello"})
    s.add_feedback(tid, "thumbs_up")
    s.add_feedback(tid, "accept", "A")
    again = Store(db)
    assert again.load_state(cid) == {"x": 1}
    assert [t["reply_text"] for t in again.turns(cid)] == ["hello"]
    assert [f["kind"] for f in again.feedback(tid)] == ["thumbs_up", "accept"]


def test_the_old_name_still_opens_the_sqlite_store(tmp_path):
    from chatrec.store import sqlite
    from chatrec.store.base import Store as StoreProtocol

    assert sqlite.Store is sqlite.SQLiteStore
    assert isinstance(sqlite.Store(tmp_path / "s.sqlite3"), StoreProtocol)


def test_feedback_validation(tmp_path):
    s = Store(tmp_path / "s.sqlite3")
    cid = s.new_conversation(None)
    tid = s.save_turn(cid, {}, "hi", "hello", "chitchat", None, [], {})
    with pytest.raises(ValueError, match="unknown feedback kind"):
        s.add_feedback(tid, "love")
    with pytest.raises(KeyError):
        s.add_feedback(tid + 99, "thumbs_up")
