"""uvicorn for ``chatrec serve``, with the connection limits of the ``[serve]`` settings.

uvicorn (h11) alone has a keep-alive timeout (``keep_alive_s``: an idle connection *after* a
response is closed) but no deadline for a request's head: a connection that never sends a
byte, or trickles its headers a byte at a time, stays open for ever (each byte cancels the
keep-alive timer). :class:`GuardedH11Protocol` adds:

* ``header_timeout_s``: from the moment a connection opens, or its previous response ends,
  a whole request head must arrive within this time, else the connection is closed;
* ``max_connections``: a connection beyond this many open ones is closed at once.

The body's own deadline (``body_timeout_s`` -> 408) is the edge middleware's
(:mod:`chatrec.serve.middleware`). ``limit_concurrency`` (connections + tasks before uvicorn
answers 503) and ``max_header_bytes`` (uvicorn's ``h11_max_incomplete_event_size``: a larger
head is a 400) are passed to uvicorn as they are.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from chatrec.config import ServeSettings


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a cap on open connections."""

    header_timeout_s: float = 10.0
    max_connections: int = 256

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_cycle: Any = None
        if len(self.connections) > self.max_connections:
            self.logger.warning("over %d open connections: closing a new one", self.max_connections)
            self.transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        """Start the head deadline for the next request."""
        self._disarm()
        self._waiting_cycle = self.cycle
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()  # type: ignore[union-attr]
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that sent no request head within %.3g s", self.header_timeout_s)
            self.transport.close()  # connection_lost() tells h11 the connection is closed

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_cycle:  # a request head arrived: it has its body deadline now
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_for(settings: ServeSettings) -> type[GuardedH11Protocol]:
    """:class:`GuardedH11Protocol` with ``settings``' limits (uvicorn builds one per connection)."""
    return type(
        "ServeProtocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": settings.header_timeout_s, "max_connections": settings.max_connections},
    )


def uvicorn_options(settings: ServeSettings, log_level: str = "info") -> dict[str, Any]:
    """``uvicorn.run`` / ``uvicorn.Config`` keywords: bound as ``settings`` say, with their connection limits."""
    return dict(
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        proxy_headers=False,
        http=protocol_for(settings),
        timeout_keep_alive=settings.keep_alive_s,  # uvicorn types it int; the timer takes any float
        limit_concurrency=settings.limit_concurrency,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        ws="none",
    )


def uvicorn_config(app: Any, settings: ServeSettings, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(app, **uvicorn_options(settings, log_level))
