"""Persistent state: conversations, turns, feedback and site keys (SQLite, append-only migrations)."""
