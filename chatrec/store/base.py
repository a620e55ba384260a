"""The persistence seam: the :class:`Store` protocol for conversations, turns and feedback.

Rows come back as plain dicts (JSON-able values). Text arrives PII-masked; a
store keeps what it is given. :class:`chatrec.store.sqlite.SQLiteStore` is the
embedded implementation; every implementation passes
``tests/contract/test_store_contract.py``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from chatrec.types import Unavailable

FEEDBACK_KINDS = ("thumbs_up", "thumbs_down", "click", "accept", "reject")
ITEM_KINDS = ("accept", "reject")  # need the id of an item the turn showed
TURN_STATUSES = ("ok", "cancelled")
COUNTED = ("conversations", "turns", "feedback")
HISTORY_KEEP_DAYS = 30  # an OpenAI-API history key is kept this long after it was last written


class StoreUnavailable(Unavailable):
    """The store cannot be used right now: the database is locked, the disk is full, an I/O
    error, the file cannot be opened. Nothing was written; retrying later may succeed."""


@runtime_checkable
class Store(Protocol):
    """What the chatbot, the HTTP API and the UIs use of the store.

    Ownership: a conversation belongs to a tenant (the site key's id; ``None`` for keyless
    or local use) and an owner (the stored form of the verified user id; ``None`` for an
    anonymous visitor). The store records both; the chatbot compares them
    (:meth:`chatrec.chatbot.Chatbot.open_conversation`). Any method may raise
    :class:`StoreUnavailable`.
    """

    def new_conversation(self, user_id: str | None, *, tenant: int | None = None) -> str:
        """Create a conversation owned by ``user_id`` (stored as given) under ``tenant`` and return
        its id: fresh, server-issued and unguessable (ids are never chosen by clients)."""
        ...

    def conversation(self, cid: str) -> dict[str, Any] | None:
        """``{"id", "user_id" (the owner), "tenant_id", "created_at" (ISO-8601, UTC), ...}`` or
        ``None`` if unknown. Rows from before ownership have ``tenant_id`` ``None``."""
        ...

    def load_state(self, cid: str) -> dict[str, Any]:
        """The state saved by the conversation's last :meth:`save_turn`; ``{}`` for a new or unknown one."""
        ...

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
        """Append a turn to an existing conversation and replace its state, atomically and durably
        (once this returns, both survive a restart). Returns the turn's id, larger than any
        earlier turn id of this store. ``status`` is one of :data:`TURN_STATUSES` (``cancelled``:
        the client left mid-turn; the reply is what was written by then). ``KeyError`` (and
        nothing saved) for an unknown conversation, ``ValueError`` for an unknown status."""
        ...

    def turns(self, cid: str) -> list[dict[str, Any]]:
        """The conversation's turns in the order saved (``[]`` if none): ``{"id", "conversation_id",
        "created_at", "user_text", "reply_text", "route", "template_id", "recommended_json",
        "result_json", "status"}``, the JSON fields as text."""
        ...

    def turn(self, turn_id: int) -> dict[str, Any] | None:
        """One turn row as in :meth:`turns`, or ``None``."""
        ...

    def add_feedback(self, turn_id: int, kind: str, item_id: str | None = None) -> int:
        """Record feedback on a turn; returns its id. One vote per (turn, kind, item): a repeat
        returns the first one's id and stores nothing. ``ValueError`` for a kind not in
        :data:`FEEDBACK_KINDS`, for an ``item_id`` the turn did not show, or for an
        :data:`ITEM_KINDS` vote without one; ``KeyError`` for an unknown turn (nothing is recorded)."""
        ...

    def feedback(self, turn_id: int | None = None) -> list[dict[str, Any]]:
        """Feedback rows ``{"id", "turn_id", "kind", "item_id", "created_at"}`` in the order
        recorded: of one turn, or all of them."""
        ...

    def turn_log(self, after_id: int = 0) -> list[dict[str, Any]]:
        """Every turn with id > ``after_id`` in id order, without its texts (service metrics read
        it): ``{"id", "conversation_id", "created_at", "route", "status", "replied" (the reply is
        not empty), "shown" (how many items it showed), "latency_s" (the result's
        ``trace.latency_s``, ``None`` if absent)}``."""
        ...

    def log_ranking(self, turn_id: int, record: dict[str, Any]) -> None:
        """Keep what the ranking policy did in a turn (:func:`chatrec.turn.policy.choose`'s record:
        ``policy``, ``version``, ``epsilon``, ``context``, ``candidates`` with features and scores,
        ``shown`` with position and propensity). ``KeyError`` for an unknown turn, ``ValueError``
        for a turn already logged."""
        ...

    def ranking_log(self, after_turn_id: int = 0) -> list[dict[str, Any]]:
        """The records of turns with id > ``after_turn_id``, in turn order, each with ``turn_id``
        and ``created_at`` added."""
        ...

    def save_policy_version(self, kind: str, meta: dict[str, Any], blob: bytes) -> str:
        """Keep a learned policy (``kind``, e.g. ``"bandit"``; one sequence of versions per kind) as
        its next version, numbered atomically (two processes saving at once get two numbers):
        ``"v0001"``, ``"v0002"``, ... Returns the version; it does not become current."""
        ...

    def policy_versions(self, kind: str) -> list[dict[str, Any]]:
        """The versions of ``kind``, oldest first: each one's ``meta`` with ``version`` and
        ``created_at`` (the store's) set."""
        ...

    def policy_blob(self, kind: str, version: str) -> bytes:
        """The saved model of a version; ``KeyError`` for an unknown one."""
        ...

    def set_current_policy(self, kind: str, version: str | None) -> None:
        """Make ``version`` the one live chatbots on this store use (``None``: none, the untrained
        policy); ``KeyError`` for an unknown version."""
        ...

    def current_policy(self, kind: str) -> str | None:
        """The current version of ``kind`` (``None``: none); one cheap query, read every turn."""
        ...

    def count(self, table: str) -> int:
        """How many conversations, turns or feedback rows are stored (``table`` one of
        :data:`COUNTED`; ``ValueError`` otherwise)."""
        ...

    def secret(self, name: str) -> bytes:
        """A random server secret named ``name``, made on first use and kept (for keyed hashes)."""
        ...

    def take_rate(self, key: str, window: int, limit: float, carry: float = 0.0) -> tuple[bool, int, int]:
        """A shared rate-limit counter (every process on this store sees the same): count one
        request of ``key`` in fixed window number ``window`` if, with it, this window's count plus
        ``carry`` times the previous window's is at most ``limit``; atomically, so processes
        counting at the same time never count past the limit.
        Returns ``(counted, this window's count, the previous window's count)``."""
        ...

    def drop_rates(self, before_window: int) -> int:
        """Forget the rate-limit counters of windows before ``before_window``; how many rows went."""
        ...

    def remember_history(self, key: str, conversation_id: str, tenant: int | None = None) -> None:
        """Map ``key`` (an OpenAI-API client's answered history, hashed by the caller: no message text)
        to ``conversation_id``; a repeat replaces the mapping (an idempotent upsert). Keys last written
        more than :data:`HISTORY_KEEP_DAYS` ago are dropped here, so the table stays bounded."""
        ...

    def find_history(self, key: str) -> str | None:
        """The conversation :meth:`remember_history` mapped ``key`` to, ``None`` if unknown or
        older than :data:`HISTORY_KEEP_DAYS`."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store can be written now (quickly: a
        readiness probe); after a failed write it tries a real write, so it recovers on its own."""
        ...
