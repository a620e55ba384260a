"""Site keys for the HTTP API: each key lists the web origins allowed to use it.

Keys live in the same database as the conversation store (the SQLite file, or the
PostgreSQL server of ``store.url``: :class:`chatrec.store.postgres.PostgresKeyStore`), in the
``site_keys`` table (store migration ``002_site_keys``); :func:`chatrec.store.open_keys` picks.
Only the SHA-256 of a key is stored; the plain key is shown once, when it is made.

Each key also has a **signing secret** (``crs_...``), made with the key and shown once
with it (``chatrec keys add``, ``POST /v1/admin/keys``; a new one with ``chatrec keys
secret ID`` or ``POST /v1/admin/keys/{id}/secret``). Unlike the key it is a real secret:
the shop's backend signs user tokens with it (:mod:`chatrec.serve.identity`), so it is
stored as it is (the server needs it to verify them) and never leaves the shop's server.

A site key is embedded in a shop's HTML, so it is not a secret: it identifies
the shop and, in a browser, the ``Origin`` check stops other sites from using
it. Rate limits are applied per key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from chatrec.config import normalize_origin
from chatrec.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SQLiteStore, unavailable

KEY_PREFIX = "crk_"
DEFAULT_TENANT = "default"  # the top-level settings' shop
SECRET_PREFIX = "crs_"


def new_secret() -> str:
    """A fresh signing secret for user tokens (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SiteKey:
    id: int
    prefix: str
    label: str
    origins: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None
    signing_secret: str | None = field(default=None, repr=False, compare=False)  # never in public()
    tenant: str = DEFAULT_TENANT  # the shop it belongs to (settings [tenants.<name>]; chatrec.serve.tenants)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, origin: str) -> bool:
        try:
            return normalize_origin(origin) in self.origins
        except ValueError:
            return False

    def public(self) -> dict:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "label": self.label,
            "origins": list(self.origins),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "active": self.active,
            "tenant": self.tenant,
        }


@dataclass
class Result:
    """What a key statement gave: its rows, how many rows it changed, the id it inserted."""

    rows: Sequence[Mapping[str, Any]]
    rowcount: int = 0
    lastrowid: int | None = None


@dataclass
class _Snapshot:
    at: float = 0.0
    by_hash: dict[str, SiteKey] = field(default_factory=dict)
    origins: frozenset[str] = frozenset()


class KeyStore:
    """Hashed site keys with their origins. Thread-safe; reads are cached for ``ttl`` seconds
    (so keys added by ``chatrec keys add`` in another process are seen by a running server)."""

    def __init__(self, db_path: str | Path, ttl: float = 2.0, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S):
        self.path = Path(db_path)
        self.ttl = ttl
        self.busy_timeout_s = busy_timeout_s
        self.failed_at: float | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._snap = _Snapshot()
        self._prepare()

    def _prepare(self) -> None:
        SQLiteStore(self.path, self.busy_timeout_s)  # makes the folder, applies the migrations (002_site_keys ...)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    # ------------------------------------------------------------ writes

    def add(
        self, origins: list[str] | tuple[str, ...] = (), label: str = "", tenant: str = DEFAULT_TENANT
    ) -> tuple[str, SiteKey]:
        """Make a key of ``tenant``; returns ``(plain_key, record)``. The plain key is not stored anywhere;
        ``record.signing_secret`` is (show it once, with the key). A key's tenant never changes."""
        clean = sorted({normalize_origin(o) for o in origins})
        key = KEY_PREFIX + secrets.token_urlsafe(24)
        secret = new_secret()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        cur = self._run(
            "INSERT INTO site_keys (key_hash, prefix, label, origins_json, created_at, signing_secret, tenant)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (hash_key(key), key[:10], label, json.dumps(clean), now, secret, tenant),
        )
        self.invalidate()
        return key, SiteKey(int(cur.lastrowid or 0), key[:10], label, tuple(clean), now, None, secret, tenant)

    def rotate_secret(self, key_id: int) -> str | None:
        """A new signing secret for an active key (tokens signed with the old one stop working);
        ``None`` if there is no such active key."""
        secret = new_secret()
        cur = self._run("UPDATE site_keys SET signing_secret = ? WHERE id = ? AND revoked_at IS NULL", (secret, key_id))
        self.invalidate()
        return secret if cur.rowcount > 0 else None

    @unavailable
    def _run(self, sql: str, params: tuple = ()) -> Result:
        """Run one statement (``?`` placeholders); a subclass runs it on another database."""
        cur = self._conn().execute(sql, params)
        return Result(cur.fetchall(), cur.rowcount, cur.lastrowid)

    def revoke(self, key_id: int) -> bool:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if not 0 < key_id < 2**63:
            return False
        cur = self._run("UPDATE site_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id))
        self.invalidate()
        return cur.rowcount > 0

    # ------------------------------------------------------------ reads

    def list(self) -> list[SiteKey]:
        rows = self._run("SELECT * FROM site_keys ORDER BY id").rows
        return [
            SiteKey(
                r["id"],
                r["prefix"],
                r["label"],
                tuple(json.loads(r["origins_json"])),
                r["created_at"],
                r["revoked_at"],
                tenant=r["tenant"],
            )
            for r in rows
        ]

    def invalidate(self) -> None:
        with self._lock:
            self._snap = _Snapshot()

    def _snapshot(self) -> _Snapshot:
        snap = self._snap
        if snap.at and time.monotonic() - snap.at < self.ttl:
            return snap
        rows = self._run("SELECT * FROM site_keys WHERE revoked_at IS NULL").rows
        by_hash = {
            r["key_hash"]: SiteKey(
                r["id"],
                r["prefix"],
                r["label"],
                tuple(json.loads(r["origins_json"])),
                r["created_at"],
                None,
                r["signing_secret"],
                r["tenant"],
            )
            for r in rows
        }
        snap = _Snapshot(time.monotonic(), by_hash, frozenset(o for k in by_hash.values() for o in k.origins))
        with self._lock:
            self._snap = snap
        return snap

    def lookup(self, key: str | None) -> SiteKey | None:
        """The active key record for a plain key, or None."""
        if not key:
            return None
        return self._snapshot().by_hash.get(hash_key(key.strip()))

    def any_active(self) -> bool:
        return bool(self._snapshot().by_hash)

    def origin_allowed(self, origin: str) -> bool:
        """Is ``origin`` listed by at least one active key?"""
        try:
            return normalize_origin(origin) in self._snapshot().origins
        except ValueError:
            return False
