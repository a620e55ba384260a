"""The persistence seam: the :class:`Store` protocol for conversations, turns and feedback.

Rows come back as plain dicts (JSON-able values). Text arrives PII-masked; a
store keeps what it is given. :class:`chatrec.store.sqlite.SQLiteStore` is the
embedded implementation; every implementation passes
``tests/contract/test_store_contract.py``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

FEEDBACK_KINDS = ("thumbs_up", "thumbs_down", "click", "accept")
COUNTED = ("conversations", "turns", "feedback")


@runtime_checkable
class Store(Protocol):
    """What the chatbot, the HTTP API and the UIs use of the store."""

    def new_conversation(self, user_id: str | None, conversation_id: str | None = None) -> str:
        """Create a conversation (a fresh id unless ``conversation_id`` is given) and return its
        id. Idempotent for a given id: an existing conversation, its user and state are kept."""
        ...

    def conversation(self, cid: str) -> dict[str, Any] | None:
        """``{"id", "user_id", "created_at" (ISO-8601, UTC), ...}`` or ``None`` if unknown."""
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
    ) -> int:
        """Append a turn to an existing conversation and replace its state, atomically and durably
        (once this returns, both survive a restart). Returns the turn's id, larger than any
        earlier turn id of this store. ``KeyError`` (and nothing saved) for an unknown conversation."""
        ...

    def turns(self, cid: str) -> list[dict[str, Any]]:
        """The conversation's turns in the order saved (``[]`` if none): ``{"id", "conversation_id",
        "created_at", "user_text", "reply_text", "route", "template_id", "recommended_json",
        "result_json"}``, the last two JSON text."""
        ...

    def turn(self, turn_id: int) -> dict[str, Any] | None:
        """One turn row as in :meth:`turns`, or ``None``."""
        ...

    def add_feedback(self, turn_id: int, kind: str, item_id: str | None = None) -> int:
        """Record feedback on a turn; returns its id. ``ValueError`` for a kind not in
        :data:`FEEDBACK_KINDS`, ``KeyError`` for an unknown turn (nothing is recorded)."""
        ...

    def feedback(self, turn_id: int | None = None) -> list[dict[str, Any]]:
        """Feedback rows ``{"id", "turn_id", "kind", "item_id", "created_at"}`` in the order
        recorded: of one turn, or all of them."""
        ...

    def count(self, table: str) -> int:
        """How many conversations, turns or feedback rows are stored (``table`` one of
        :data:`COUNTED`; ``ValueError`` otherwise)."""
        ...
