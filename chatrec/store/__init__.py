"""Persistent state: conversations, turns, feedback and site keys, behind the :class:`~chatrec.store.base.Store`
protocol: the embedded SQLite file (default) or a PostgreSQL server (``store.url``), the same
append-only migrations on both. :func:`open_store` and :func:`open_keys` choose by the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatrec.config import Settings
    from chatrec.store.base import Store
    from chatrec.store.keys import KeyStore

__all__ = ["open_store", "open_keys"]


def open_store(settings: Settings) -> Store:
    """The configured store: :class:`~chatrec.store.postgres.PostgresStore` when ``store.url`` is
    set, else :class:`~chatrec.store.sqlite.SQLiteStore` on ``<data_dir>/chatrec.sqlite3``."""
    if settings.store.url:
        from chatrec.store.postgres import PostgresStore

        return PostgresStore(settings.store.url, settings.db_busy_timeout_s, settings.store.pool_size)
    from chatrec.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db_path, settings.db_busy_timeout_s)


def open_keys(settings: Settings, store: Store | None = None) -> KeyStore:
    """The site keys of the configured store (``store``: an open one to share its connections)."""
    if settings.store.url:
        from chatrec.store.postgres import PostgresKeyStore, PostgresStore

        if not isinstance(store, PostgresStore) or store.url != settings.store.url:
            store = PostgresStore(settings.store.url, settings.db_busy_timeout_s, settings.store.pool_size)
        return PostgresKeyStore(store)
    from chatrec.store.keys import KeyStore

    return KeyStore(settings.db_path, busy_timeout_s=settings.db_busy_timeout_s)
