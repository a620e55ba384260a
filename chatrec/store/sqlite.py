"""SQLite store for conversations, turns and feedback, with append-only migrations.

WAL mode and a commit per write: once a turn is acknowledged it survives a
killed process. Text is PII-masked by the caller before it gets here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatrec.store.base import COUNTED, FEEDBACK_KINDS

__all__ = ["SQLiteStore", "Store", "MIGRATIONS", "FEEDBACK_KINDS"]

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_initial",
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            user_id TEXT,
            created_at TEXT NOT NULL,
            state_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            created_at TEXT NOT NULL,
            user_text TEXT NOT NULL,
            reply_text TEXT NOT NULL,
            route TEXT NOT NULL,
            template_id TEXT,
            recommended_json TEXT NOT NULL,
            result_json TEXT NOT NULL
        );
        CREATE INDEX turns_conversation ON turns(conversation_id);
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id INTEGER NOT NULL REFERENCES turns(id),
            kind TEXT NOT NULL CHECK (kind IN ('thumbs_up', 'thumbs_down', 'click', 'accept')),
            item_id TEXT,
            created_at TEXT NOT NULL
        );
    """,
    ),
    (
        "002_site_keys",
        """
        CREATE TABLE site_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            origins_json TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
    """,
    ),
]


def _rowid(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:  # never after an INSERT
        raise RuntimeError("the insert returned no row id")
    return int(cur.lastrowid)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """The embedded :class:`~chatrec.store.base.Store`: one SQLite file, one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _migrate(self) -> None:
        c = self._conn()
        c.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r["name"] for r in c.execute("SELECT name FROM _migrations")}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(str.strip, sql.split(";")):
                    c.execute(stmt)
                c.execute("INSERT INTO _migrations VALUES (?, ?)", (name, _now()))
                c.execute("COMMIT")
            except Exception:
                c.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------ conversations

    def new_conversation(self, user_id: str | None, conversation_id: str | None = None) -> str:
        cid = conversation_id or uuid.uuid4().hex[:12]
        self._conn().execute(
            "INSERT OR IGNORE INTO conversations (id, user_id, created_at) VALUES (?, ?, ?)", (cid, user_id, _now())
        )
        return cid

    def conversation(self, cid: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM conversations WHERE id = ?", (cid,)).fetchone()
        return dict(row) if row else None

    def load_state(self, cid: str) -> dict[str, Any]:
        row = self._conn().execute("SELECT state_json FROM conversations WHERE id = ?", (cid,)).fetchone()
        return json.loads(row["state_json"]) if row else {}

    def save_turn(
        self,
        cid: str,
        state: dict[str, Any],
        user_text: str,
        reply_text: str,
        route: str,
        template_id: str | None,
        recommended: list[str],
        result: dict[str, Any],
    ) -> int:
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute(
                "INSERT INTO turns (conversation_id, created_at, user_text, reply_text, route, template_id,"
                " recommended_json, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, _now(), user_text, reply_text, route, template_id, json.dumps(recommended), json.dumps(result)),
            )
            c.execute("UPDATE conversations SET state_json = ? WHERE id = ?", (json.dumps(state), cid))
            c.execute("COMMIT")
        except sqlite3.IntegrityError as exc:  # the foreign key: no such conversation
            c.execute("ROLLBACK")
            raise KeyError(f"no conversation {cid!r}") from exc
        except Exception:
            c.execute("ROLLBACK")
            raise
        return _rowid(cur)

    def turns(self, cid: str) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT * FROM turns WHERE conversation_id = ? ORDER BY id", (cid,))
        return [dict(r) for r in rows]

    def turn(self, turn_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        return dict(row) if row else None

    # ------------------------------------------------------------ feedback

    def add_feedback(self, turn_id: int, kind: str, item_id: str | None = None) -> int:
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"unknown feedback kind {kind!r}; choose one of {FEEDBACK_KINDS}")
        if self.turn(turn_id) is None:
            raise KeyError(f"no turn {turn_id}")
        cur = self._conn().execute(
            "INSERT INTO feedback (turn_id, kind, item_id, created_at) VALUES (?, ?, ?, ?)",
            (turn_id, kind, item_id, _now()),
        )
        return _rowid(cur)

    def feedback(self, turn_id: int | None = None) -> list[dict[str, Any]]:
        if turn_id is None:
            rows = self._conn().execute("SELECT * FROM feedback ORDER BY id")
        else:
            rows = self._conn().execute("SELECT * FROM feedback WHERE turn_id = ? ORDER BY id", (turn_id,))
        return [dict(r) for r in rows]

    def count(self, table: str) -> int:
        if table not in COUNTED:
            raise ValueError(f"unknown table {table!r}; choose one of {COUNTED}")
        return int(self._conn().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


Store = SQLiteStore  # the name before the Store protocol (chatrec.store.base) existed
