"""Server-sent events: the framing, the headers, and a response that cancels its turn."""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import Any, AsyncIterator, Callable

from fastapi.responses import StreamingResponse

from chatrec.serve.turns import AsyncTurn

SSE_HEADERS = {"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"}


def sse(event: str | None, data: Any) -> str:
    """One event: ``event: <name>`` (if named) and ``data: <compact JSON, or the string as is>``."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def words(text: str) -> list[str]:
    """``text`` in pieces of one word with its leading whitespace (joined, they give ``text`` back)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


class TurnStream(StreamingResponse):
    """An SSE response that cancels its turn however the stream ends (done, disconnect, error)."""

    def __init__(self, content: AsyncIterator[str], turn: AsyncTurn, **kw: Any):
        kw.setdefault("media_type", "text/event-stream")
        kw.setdefault("headers", SSE_HEADERS)
        super().__init__(content, **kw)
        self._turn = turn

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable, send: Callable) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._turn.close()
