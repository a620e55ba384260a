"""The edge middleware for paths under ``/v1/``: CORS by site key, and the body size limit."""

from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import urlsplit

from fastapi.responses import Response
from starlette.datastructures import Headers, MutableHeaders

from chatrec.config import ServeSettings, normalize_origin
from chatrec.serve.errors import error_response
from chatrec.store.keys import KeyStore

_TOO_BIG = object()


def same_origin(origin: str, host: str | None) -> bool:
    """Is ``origin`` the server's own (e.g. the /demo page)? Such requests are not cross-origin."""
    return host is not None and host != "" and urlsplit(origin).netloc.lower() == host.lower()


class EdgeMiddleware:
    """Pure ASGI (streams and disconnects pass straight through), for paths under ``/v1/``:

    * CORS by site key: a cross-origin request is served only if some active key (or
      ``cors_origins``) lists its origin; it then gets ``Access-Control-Allow-Origin: <origin>``.
      Others get 403, preflights included. Admin paths are never served cross-origin.
      (Whether the *presented* key lists the origin is checked per request, in
      :func:`chatrec.serve.deps.site_key`.)
    * Body size: ``Content-Length`` over the limit, or a streamed body growing past it, gets 413.
    """

    def __init__(self, app: Any, settings: ServeSettings, keys: KeyStore):
        self.app, self.settings, self.keys = app, settings, keys
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
        if path.startswith("/v1/admin/") or not self.origin_allowed(origin):
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
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cors, answer = self._cors(scope, headers)
        if answer is not None:
            await answer(scope, receive, send)
            return
        send = _adding_headers(send, cors)
        limit = self.settings.max_body_bytes
        too_big = error_response(scope["path"], 413, f"request body is over {limit} bytes", code="body_too_large")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_big(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:  # the client left
            return
        if body is _TOO_BIG:
            await too_big(scope, receive, send)
            return
        if problem := json_problem(body, headers.get("content-type", "")):
            await error_response(scope["path"], 400, problem, code="invalid_json")(scope, receive, send)
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


def _adding_headers(send: Callable, cors: list[tuple[str, str]]) -> Callable:
    """``send`` that adds the CORS headers, ``nosniff`` and (unless set) ``no-store`` to the response."""

    async def send_with_headers(message: dict) -> None:
        if message["type"] == "http.response.start":
            h = MutableHeaders(scope=message)
            for k, v in cors:
                h.append(k, v)
            h.setdefault("X-Content-Type-Options", "nosniff")
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
