"""SQLite store for conversations, turns and feedback, with append-only migrations.

WAL mode and a commit per write: once a turn is acknowledged it survives a
killed process. Text is PII-masked by the caller before it gets here.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, ParamSpec, TypeVar

from chatrec.store.base import COUNTED, FEEDBACK_KINDS, HISTORY_KEEP_DAYS, ITEM_KINDS, TURN_STATUSES, StoreUnavailable

__all__ = ["SQLiteStore", "Store", "MIGRATIONS", "FEEDBACK_KINDS", "StoreUnavailable", "unavailable", "new_id"]

DEFAULT_BUSY_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 0.25

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
    (
        # ownership (tenant = site key id), turn status, the 'reject' vote, one vote per
        # (turn, kind, item), a signing secret per site key, server secrets for keyed hashes
        "003_ownership",
        """
        ALTER TABLE conversations ADD COLUMN tenant_id INTEGER;
        ALTER TABLE turns ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
        CREATE TABLE feedback_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id INTEGER NOT NULL REFERENCES turns(id),
            kind TEXT NOT NULL CHECK (kind IN ('thumbs_up', 'thumbs_down', 'click', 'accept', 'reject')),
            item_id TEXT,
            created_at TEXT NOT NULL
        );
        INSERT INTO feedback_new (id, turn_id, kind, item_id, created_at)
            SELECT id, turn_id, kind, item_id, created_at FROM feedback
            WHERE id IN (SELECT MIN(id) FROM feedback GROUP BY turn_id, kind, COALESCE(item_id, ''));
        DROP TABLE feedback;
        ALTER TABLE feedback_new RENAME TO feedback;
        CREATE UNIQUE INDEX feedback_vote ON feedback(turn_id, kind, COALESCE(item_id, ''));
        ALTER TABLE site_keys ADD COLUMN signing_secret TEXT;
        UPDATE site_keys SET signing_secret = 'crs_' || lower(hex(randomblob(32)));
        CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)
    """,
    ),
    (
        # what the ranking policy showed and could have shown, for learning from feedback (docs/feedback.md)
        "004_ranking_log",
        """
        CREATE TABLE ranking_log (
            turn_id INTEGER PRIMARY KEY REFERENCES turns(id),
            created_at TEXT NOT NULL,
            policy TEXT NOT NULL,
            version TEXT NOT NULL,
            record_json TEXT NOT NULL
        )
    """,
    ),
    (
        # rate-limit counters shared by every replica on this store (serve.rate_limit_store = "store")
        "005_rate_limits",
        """
        CREATE TABLE rate_limits (
            key TEXT NOT NULL,
            win BIGINT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (key, win)
        )
    """,
    ),
    (
        # the shop (tenant, settings [tenants.<name>]) each site key belongs to
        "006_key_tenants",
        """
        ALTER TABLE site_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'
    """,
    ),
    (
        # OpenAI-API clients resend the whole history: its keyed hash -> the conversation, for every replica
        "007_openai_history",
        """
        CREATE TABLE openai_history (
            key TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            tenant_id INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX openai_history_created ON openai_history(created_at)
    """,
    ),
    (
        # learned ranking-policy versions and the current one, shared by every replica (docs/feedback.md)
        "008_policy_versions",
        """
        CREATE TABLE policy_versions (
            kind TEXT NOT NULL,
            n INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            meta_json TEXT NOT NULL,
            model BLOB NOT NULL,
            PRIMARY KEY (kind, n)
        );
        CREATE TABLE policy_current (
            kind TEXT PRIMARY KEY,
            version TEXT
        )
    """,
    ),
]


def policy_number(version: str) -> int:
    """``"v0007"`` -> 7; ``KeyError`` for anything that is not a version name."""
    if not re.fullmatch(r"v\d{4,}", version or ""):
        raise KeyError(f"no policy version {version!r}")
    return int(version[1:])


def policy_name(n: int) -> str:
    return f"v{n:04d}"


P = ParamSpec("P")
R = TypeVar("R")

_DOWN_HINTS = ("locked", "busy", "disk", "full", "i/o", "unable to open", "readonly", "read-only", "malformed")


def _down(exc: sqlite3.Error) -> bool:
    """Is this a fault of the database file or its disk (as opposed to a bug or a constraint)?"""
    if isinstance(exc, sqlite3.OperationalError):
        return True
    if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "database disk image is malformed"
        return True
    return any(h in str(exc).lower() for h in _DOWN_HINTS) and not isinstance(exc, sqlite3.IntegrityError)


def unavailable(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn SQLite's file and disk faults (locked, disk full, I/O error, cannot open) raised by
    ``fn`` into :class:`StoreUnavailable`; remember the failure for :meth:`SQLiteStore.ping`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            if not _down(exc):
                raise
            owner = args[0] if args else None
            if owner is not None and hasattr(owner, "failed_at"):
                owner.failed_at = time.monotonic()
            raise StoreUnavailable(f"the store is unavailable: {exc}") from exc
        except OSError as exc:  # the folder cannot be made or opened
            raise StoreUnavailable(f"the store is unavailable: {exc}") from exc

    return wrapper


def new_id() -> str:
    """A fresh, unguessable conversation id (128 random bits)."""
    return secrets.token_urlsafe(16)


def _rowid(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:  # never after an INSERT
        raise RuntimeError("the insert returned no row id")
    return int(cur.lastrowid)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _history_cutoff() -> str:
    """The time (as :func:`_now` writes it) before which OpenAI-API history keys are dropped."""
    return (datetime.now(UTC) - timedelta(days=HISTORY_KEEP_DAYS)).isoformat(timespec="seconds")


class SQLiteStore:
    """The embedded :class:`~chatrec.store.base.Store`: one SQLite file, one connection per thread."""

    def __init__(self, path: str | Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.failed_at: float | None = None  # the last fault's time (monotonic); cleared by a good ping
        self._local = threading.local()
        self._open()

    @unavailable
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @staticmethod
    def _rollback(c: sqlite3.Connection) -> None:
        if c.in_transaction:
            c.execute("ROLLBACK")

    def _migrate(self) -> None:
        c = self._conn()
        c.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r["name"] for r in c.execute("SELECT name FROM _migrations")}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            c.execute("BEGIN IMMEDIATE")
            try:
                if c.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    c.execute("COMMIT")  # another process applied it meanwhile
                    continue
                for stmt in filter(str.strip, sql.split(";")):
                    c.execute(stmt)
                c.execute("INSERT INTO _migrations VALUES (?, ?)", (name, _now()))
                c.execute("COMMIT")
            except BaseException:
                self._rollback(c)
                raise

    # ------------------------------------------------------------ health

    def ping(self) -> None:
        """Can the store be written now? Takes the write lock with a short timeout; after a
        fault, also commits a tiny write, so that the store turns healthy again on its own."""
        try:
            c = self._conn()
            c.execute(f"PRAGMA busy_timeout = {int(PROBE_TIMEOUT_S * 1000)}")
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    if self.failed_at is not None:
                        c.execute("INSERT OR REPLACE INTO server_secrets (name, value) VALUES ('_probe', ?)", (_now(),))
                        c.execute("COMMIT")
                    else:
                        c.execute("ROLLBACK")
                except BaseException:
                    self._rollback(c)
                    raise
            finally:
                c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        except (sqlite3.Error, OSError) as exc:
            self.failed_at = time.monotonic()
            raise StoreUnavailable(f"the store is unavailable: {exc}") from exc
        self.failed_at = None

    @unavailable
    def secret(self, name: str) -> bytes:
        c = self._conn()
        c.execute("INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?, ?)", (name, secrets.token_bytes(32)))
        value = c.execute("SELECT value FROM server_secrets WHERE name = ?", (name,)).fetchone()["value"]
        return value if isinstance(value, bytes) else str(value).encode()

    # ------------------------------------------------------------ conversations

    @unavailable
    def new_conversation(self, user_id: str | None, *, tenant: int | None = None) -> str:
        cid = new_id()
        self._conn().execute(
            "INSERT INTO conversations (id, user_id, tenant_id, created_at) VALUES (?, ?, ?, ?)",
            (cid, user_id, tenant, _now()),
        )
        return cid

    @unavailable
    def conversation(self, cid: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM conversations WHERE id = ?", (cid,)).fetchone()
        return dict(row) if row else None

    @unavailable
    def load_state(self, cid: str) -> dict[str, Any]:
        row = self._conn().execute("SELECT state_json FROM conversations WHERE id = ?", (cid,)).fetchone()
        return json.loads(row["state_json"]) if row else {}

    @unavailable
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
        status: str = "ok",
    ) -> int:
        if status not in TURN_STATUSES:
            raise ValueError(f"unknown turn status {status!r}; choose one of {TURN_STATUSES}")
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute(
                "INSERT INTO turns (conversation_id, created_at, user_text, reply_text, route, template_id,"
                " recommended_json, result_json, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cid,
                    _now(),
                    user_text,
                    reply_text,
                    route,
                    template_id,
                    json.dumps(recommended),
                    json.dumps(result),
                    status,
                ),
            )
            c.execute("UPDATE conversations SET state_json = ? WHERE id = ?", (json.dumps(state), cid))
            c.execute("COMMIT")
        except sqlite3.IntegrityError as exc:  # the foreign key: no such conversation
            self._rollback(c)
            raise KeyError(f"no conversation {cid!r}") from exc
        except BaseException:
            self._rollback(c)
            raise
        return _rowid(cur)

    @unavailable
    def turns(self, cid: str) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT * FROM turns WHERE conversation_id = ? ORDER BY id", (cid,))
        return [dict(r) for r in rows]

    @unavailable
    def turn(self, turn_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        return dict(row) if row else None

    # ------------------------------------------------------------ feedback

    @unavailable
    def add_feedback(self, turn_id: int, kind: str, item_id: str | None = None) -> int:
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"unknown feedback kind {kind!r}; choose one of {FEEDBACK_KINDS}")
        turn = self.turn(turn_id)
        if turn is None:
            raise KeyError(f"no turn {turn_id}")
        if kind in ITEM_KINDS and item_id is None:
            raise ValueError(f"{kind!r} needs the item_id of an item the turn showed")
        if item_id is not None and item_id not in json.loads(turn["recommended_json"]):
            raise ValueError(f"item {item_id!r} was not shown in turn {turn_id}")
        c = self._conn()
        c.execute(
            "INSERT OR IGNORE INTO feedback (turn_id, kind, item_id, created_at) VALUES (?, ?, ?, ?)",
            (turn_id, kind, item_id, _now()),
        )
        row = c.execute(
            "SELECT id FROM feedback WHERE turn_id = ? AND kind = ? AND COALESCE(item_id, '') = ?",
            (turn_id, kind, item_id or ""),
        ).fetchone()
        return int(row["id"])

    @unavailable
    def feedback(self, turn_id: int | None = None) -> list[dict[str, Any]]:
        if turn_id is None:
            rows = self._conn().execute("SELECT * FROM feedback ORDER BY id")
        else:
            rows = self._conn().execute("SELECT * FROM feedback WHERE turn_id = ? ORDER BY id", (turn_id,))
        return [dict(r) for r in rows]

    @unavailable
    def turn_log(self, after_id: int = 0) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT id, conversation_id, created_at, route, status, reply_text != '' AS replied,"
            " json_array_length(recommended_json) AS shown,"
            " json_extract(result_json, '$.trace.latency_s') AS latency_s"
            " FROM turns WHERE id > ? ORDER BY id",
            (after_id,),
        )
        return [{**dict(r), "replied": bool(r["replied"])} for r in rows]

    # ------------------------------------------------------------ ranking log

    @unavailable
    def log_ranking(self, turn_id: int, record: dict[str, Any]) -> None:
        try:
            self._conn().execute(
                "INSERT INTO ranking_log (turn_id, created_at, policy, version, record_json) VALUES (?, ?, ?, ?, ?)",
                (turn_id, _now(), record["policy"], record["version"], json.dumps(record)),
            )
        except sqlite3.IntegrityError as exc:
            raise (ValueError if self.turn(turn_id) else KeyError)(f"cannot log turn {turn_id}: {exc}") from exc

    @unavailable
    def ranking_log(self, after_turn_id: int = 0) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT turn_id, created_at, record_json FROM ranking_log WHERE turn_id > ? ORDER BY turn_id",
            (after_turn_id,),
        )
        return [{**json.loads(r["record_json"]), "turn_id": r["turn_id"], "created_at": r["created_at"]} for r in rows]

    @unavailable
    def count(self, table: str) -> int:
        if table not in COUNTED:
            raise ValueError(f"unknown table {table!r}; choose one of {COUNTED}")
        return int(self._conn().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # ------------------------------------------------------------ rate limits

    @unavailable
    def take_rate(self, key: str, window: int, limit: float, carry: float = 0.0) -> tuple[bool, int, int]:
        c = self._conn()
        row = c.execute("SELECT n FROM rate_limits WHERE key = ? AND win = ?", (key, window - 1)).fetchone()
        prev = int(row["n"]) if row else 0
        cap = limit - carry * prev  # this window may count up to cap
        if cap < 1:
            got = c.execute("SELECT n FROM rate_limits WHERE key = ? AND win = ?", (key, window)).fetchone()
            return False, int(got["n"]) if got else 0, prev
        # one statement: the insert or the guarded increment is atomic under SQLite's write lock
        counted = c.execute(
            "INSERT INTO rate_limits (key, win, n) VALUES (?, ?, 1)"
            " ON CONFLICT (key, win) DO UPDATE SET n = n + 1 WHERE n + 1 <= ? RETURNING n",
            (key, window, cap),
        ).fetchall()  # all of it: the statement (and its write lock) ends here
        if counted:
            return True, int(counted[0]["n"]), prev
        got = c.execute("SELECT n FROM rate_limits WHERE key = ? AND win = ?", (key, window)).fetchone()
        return False, int(got["n"]) if got else 0, prev

    @unavailable
    def drop_rates(self, before_window: int) -> int:
        return int(self._conn().execute("DELETE FROM rate_limits WHERE win < ?", (before_window,)).rowcount)

    # ------------------------------------------------------------ OpenAI-API history

    @unavailable
    def remember_history(self, key: str, conversation_id: str, tenant: int | None = None) -> None:
        c = self._conn()
        c.execute("DELETE FROM openai_history WHERE created_at < ?", (_history_cutoff(),))
        c.execute(
            "INSERT INTO openai_history (key, conversation_id, tenant_id, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET conversation_id = excluded.conversation_id,"
            " tenant_id = excluded.tenant_id, created_at = excluded.created_at",
            (key, conversation_id, tenant, _now()),
        )

    @unavailable
    def find_history(self, key: str) -> str | None:
        sql = "SELECT conversation_id FROM openai_history WHERE key = ? AND created_at >= ?"
        row = self._conn().execute(sql, (key, _history_cutoff())).fetchone()
        return str(row["conversation_id"]) if row else None

    # ------------------------------------------------------------ policy versions

    @unavailable
    def save_policy_version(self, kind: str, meta: dict[str, Any], blob: bytes) -> str:
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")  # the write lock first: the next number is ours alone
        try:
            row = c.execute("SELECT COALESCE(MAX(n), 0) + 1 AS n FROM policy_versions WHERE kind = ?", (kind,))
            n = int(row.fetchone()["n"])
            c.execute(
                "INSERT INTO policy_versions (kind, n, created_at, meta_json, model) VALUES (?, ?, ?, ?, ?)",
                (kind, n, _now(), json.dumps(meta), sqlite3.Binary(blob)),
            )
            c.execute("COMMIT")
        except BaseException:
            self._rollback(c)
            raise
        return policy_name(n)

    @unavailable
    def policy_versions(self, kind: str) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT n, created_at, meta_json FROM policy_versions WHERE kind = ? ORDER BY n", (kind,)
        )
        return [
            {**json.loads(r["meta_json"]), "version": policy_name(r["n"]), "created_at": r["created_at"]} for r in rows
        ]

    @unavailable
    def policy_blob(self, kind: str, version: str) -> bytes:
        sql = "SELECT model FROM policy_versions WHERE kind = ? AND n = ?"
        row = self._conn().execute(sql, (kind, policy_number(version))).fetchone()
        if row is None:
            raise KeyError(f"no policy version {version!r} of {kind!r}")
        return bytes(row["model"])

    @unavailable
    def set_current_policy(self, kind: str, version: str | None) -> None:
        if version is not None:
            sql = "SELECT 1 FROM policy_versions WHERE kind = ? AND n = ?"
            if self._conn().execute(sql, (kind, policy_number(version))).fetchone() is None:
                raise KeyError(f"no policy version {version!r} of {kind!r}")
        self._conn().execute(
            "INSERT INTO policy_current (kind, version) VALUES (?, ?)"
            " ON CONFLICT (kind) DO UPDATE SET version = excluded.version",
            (kind, version),
        )

    @unavailable
    def current_policy(self, kind: str) -> str | None:
        row = self._conn().execute("SELECT version FROM policy_current WHERE kind = ?", (kind,)).fetchone()
        return str(row["version"]) if row and row["version"] else None


Store = SQLiteStore  # the name before the Store protocol (chatrec.store.base) existed
