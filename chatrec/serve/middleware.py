"""The edge middleware, in front of every path: per-address rate limits, CORS by site key on
``/v1/``, same-origin only on ``/ui``, body size limits and a whole-body read deadline."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any, Callable
from urllib.parse import urlsplit

from fastapi.responses import Response
from starlette.datastructures import Headers, MutableHeaders

from chatrec.config import ServeSettings, normalize_origin
from chatrec.serve.errors import error_response
from chatrec.serve.limits import RateLimits
from chatrec.store.keys import KeyStore

_TOO_BIG = object()

# The Gradio UI's calls that run a turn (or a like): they share the per-address turn budget with /v1/.
UI_CALL = re.compile(r"^/ui/(?:gradio_api/)?(?:queue/join|run/|call/|api/)")


def same_origin(origin: str, host: str | None) -> bool:
    """Is ``origin`` the server's own (e.g. the /demo page)? Such requests are not cross-origin."""
    return host is not None and host != "" and urlsplit(origin).netloc.lower() == host.lower()


def is_ui(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


class EdgeMiddleware:
    """Pure ASGI (streams and disconnects pass straight through), on every HTTP path:

    * Rate: every request takes a token from its address's ``edge`` bucket
      (``rate_per_minute_ip_all``); a UI call that runs a turn (:data:`UI_CALL`) also takes one
      from the address's turn bucket (``rate_per_minute_ip``), the one ``/v1/`` requests use.
      Over either: 429 with ``Retry-After``.
    * CORS by site key under ``/v1/``: a cross-origin request is served only if some active key (or
      ``cors_origins``) lists its origin; it then gets ``Access-Control-Allow-Origin: <origin>``.
      Others get 403, preflights included. Admin paths are never served cross-origin.
      (Whether the *presented* key lists the origin is checked per request, in
      :func:`chatrec.serve.deps.site_key`.) ``/ui`` is served to its own origin only.
    * Body size: ``Content-Length`` over the limit (``max_body_bytes`` under ``/v1/``,
      ``ui_max_body_bytes`` elsewhere), or a streamed body growing past it, gets 413.
    * Body time: a body not fully received within ``body_timeout_s`` gets 408 (a client trickling
      its body cannot hold a connection and a worker; the head's own deadline is the server's,
      :mod:`chatrec.serve.server`).
    """

    def __init__(self, app: Any, settings: ServeSettings, keys: KeyStore, limits: RateLimits | None = None):
        self.app, self.settings, self.keys = app, settings, keys
        self.limits = limits or RateLimits.from_settings(settings)
        self._static = frozenset(settings.cors_origins)

    def origin_allowed(self, origin: str) -> bool:
        try:
            if normalize_origin(origin) in self._static:
                return True
        except ValueError:
            return False
        return self.keys.origin_allowed(origin)

    def _cors(self, scope: dict, headers: Headers) -> tuple[list[tuple[str, str]], Response | None]:
        """The CORS headers to add, or the whole response (403, or a preflight's 204)."""
        path, origin = scope["path"], headers.get("origin")
        if not origin or same_origin(origin, headers.get("host")):
            return [], None
        if path.startswith(("/v1/admin/", "/v1/metrics")) or not self.origin_allowed(origin):
            return [], error_response(path, 403, f"origin {origin!r} is not allowed")
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            return [], Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Vary": "Origin",
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type, X-Site-Key, X-User-Token, Authorization",
                    "Access-Control-Max-Age": "600",
                },
            )
        return [
            ("access-control-allow-origin", origin),
            ("vary", "Origin"),
            ("access-control-expose-headers", "Retry-After"),
        ], None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        api, ui = path.startswith("/v1/"), is_ui(path)
        ip = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.limits.edge.take(ip)
        if not wait and ui and scope["method"] == "POST" and UI_CALL.match(path):
            wait = self.limits.ip.take(ip)
        if wait > 0:
            retry = {"Retry-After": str(max(1, math.ceil(wait)))}
            await error_response(path, 429, "too many requests from this address", "rate_limited", retry)(
                scope, receive, send
            )
            return
        headers = Headers(scope=scope)
        cors: list[tuple[str, str]] = []
        if api:
            cors, answer = self._cors(scope, headers)
            if answer is not None:
                await answer(scope, receive, send)
                return
        elif ui and (origin := headers.get("origin")) and not same_origin(origin, headers.get("host")):
            await error_response(path, 403, f"origin {origin!r} may not use the UI")(scope, receive, send)
            return
        send = _adding_headers(send, cors, api)
        limit = self.settings.max_body_bytes if api else self.settings.ui_max_body_bytes
        too_big = error_response(path, 413, f"request body is over {limit} bytes", code="body_too_large")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_big(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        deadline = self.settings.body_timeout_s
        try:
            body = await asyncio.wait_for(_read_body(receive, limit), deadline)
        except TimeoutError:
            slow = f"the request body was not received within {deadline:g} s"
            await error_response(path, 408, slow, code="body_timeout", headers={"Connection": "close"})(
                scope, receive, send
            )
            return
        if body is None:  # the client left
            return
        if body is _TOO_BIG:
            await too_big(scope, receive, send)
            return
        if api and (problem := json_problem(body, headers.get("content-type", ""))):
            await error_response(path, 400, problem, code="invalid_json")(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_problem(body: bytes, content_type: str) -> str | None:
    """Why a JSON body cannot be accepted, or None: Python's parser takes ``NaN`` and
    ``Infinity`` and lone UTF-16 surrogates (``\\ud800``), which JSON and UTF-8 do not allow
    and which would fail later, deep in a turn, instead of here with a 400."""
    if not body or "json" not in content_type.lower():
        return None
    try:
        data = json.loads(body, parse_constant=_reject_constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError:
        return None  # malformed JSON: the route's own validation answers it (422)
    except UnicodeEncodeError:
        return "the request holds a lone UTF-16 surrogate, which is not text"
    except ValueError as exc:  # NaN, Infinity, -Infinity
        return f"invalid JSON: {exc}"
    return None


def _adding_headers(send: Callable, cors: list[tuple[str, str]], api: bool) -> Callable:
    """``send`` that adds the CORS headers and ``nosniff`` to the response, and (under ``/v1/``,
    unless set) ``no-store``."""

    async def send_with_headers(message: dict) -> None:
        if message["type"] == "http.response.start":
            h = MutableHeaders(scope=message)
            for k, v in cors:
                h.append(k, v)
            h.setdefault("X-Content-Type-Options", "nosniff")
            if api:
                h.setdefault("Cache-Control", "no-store")
        await send(message)

    return send_with_headers


async def _read_body(receive: Callable, limit: int) -> Any:
    """The whole body; ``_TOO_BIG`` as soon as it passes ``limit``; None if the client disconnects."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return _TOO_BIG
        if not message.get("more_body"):
            return bytes(body)


def _replay(body: bytes, receive: Callable) -> Callable:
    """``receive`` that gives the buffered body once, then waits on the real one (for the disconnect)."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
