"""Errors and their wire shapes: chatrec's own ``{"detail": ...}`` and, under the OpenAI paths,
OpenAI's ``{"error": {message, type, param, code}}`` so that OpenAI clients raise their usual exceptions."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from chatrec.types import Unavailable

OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_overloaded",
}


class ApiError(Exception):
    """An expected failure, sent as ``status`` with ``message`` (and ``headers``, e.g. ``Retry-After``)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class ClientGone(Exception):
    """The client disconnected before the response started."""


def error_response(
    path: str, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body for ``path``: OpenAI's shape under :data:`OPENAI_PATHS`, else ``{"detail"}``."""
    if path.startswith(OPENAI_PATHS):
        body: dict[str, Any] = {
            "error": {"message": message, "type": _OPENAI_TYPES.get(status, "api_error"), "param": None, "code": code}
        }
    else:
        body = {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request.url.path, exc.status, exc.message, exc.code, exc.headers)


async def _client_gone(request: Request, exc: ClientGone) -> Response:
    return Response(status_code=499)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with pydantic's errors; 400 in OpenAI's shape on the OpenAI paths (what its clients expect)."""
    errors = _finite(json.loads(json.dumps(exc.errors(), default=str)))
    if request.url.path.startswith(OPENAI_PATHS):
        msg = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in errors)
        return error_response(request.url.path, 400, msg or "invalid request", code="invalid_request")
    return JSONResponse({"detail": errors}, status_code=422)


async def _unavailable(request: Request, exc: Unavailable) -> JSONResponse:
    """A dependency (store, index, engine) is down for now: 503 with ``Retry-After``, whatever the route."""
    settings = getattr(request.app.state, "settings", None)
    retry = str(getattr(settings, "retry_after_s", 5))
    return error_response(
        request.url.path, 503, str(exc) or "service unavailable", code="unavailable", headers={"Retry-After": retry}
    )


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: an error echoing them must still be JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientGone, _client_gone)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Unavailable, _unavailable)  # type: ignore[arg-type]
