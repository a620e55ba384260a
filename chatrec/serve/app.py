"""The HTTP edge: chatrec's own SSE chat API, an OpenAI-compatible API, feedback,
site keys, the embeddable widget and the Gradio UI, in one FastAPI app.

``create_app(bot, ServeSettings(...))`` builds it; ``chatrec serve`` runs it.

Endpoints (all JSON unless noted):

* ``POST /v1/chat``            ``{message, conversation_id?, user_id?, stream?=true}`` -> SSE
  (``event: token`` ``{"text"}`` per piece, then one ``event: result`` with the turn) or JSON.
* ``POST /v1/chat/completions`` and ``GET /v1/models``: OpenAI-compatible; the structured
  turn rides along in an extra ``chatrec`` field.
* ``POST /v1/feedback``        ``{turn_id, kind, item_id?}`` -> 201.
* ``GET/POST /v1/admin/keys``, ``DELETE /v1/admin/keys/{id}``: site keys (``Authorization: Bearer <admin token>``).
* ``GET /healthz``, ``GET /readyz``, ``GET /widget.js``, ``GET /demo``, the Gradio UI under ``/ui``.

The model is CPU-bound, so every turn (API and UI) passes one :class:`Gate`: at most
``max_concurrent`` turns run, each in its own worker thread, at most ``max_queue`` wait,
and anything beyond is refused with 503 + ``Retry-After``. The worker thread, not the
HTTP request, gives the slot back when the turn ends, so a client that vanishes can
never leak a slot; a vanished client sets the turn's ``cancel`` event, which stops
generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import queue as queue_mod
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from importlib import resources
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import Headers, MutableHeaders

from chatrec.store.keys import KeyStore, SiteKey, normalize_origin
from chatrec.chatbot import Chatbot, InputRejected, ResultEvent, TokenEvent, final_result
from chatrec.store.sqlite import FEEDBACK_KINDS
from chatrec.types import TurnResult

log = logging.getLogger(__name__)

OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


class ServeSettings(BaseModel):
    """Settings of the HTTP edge (the pipeline's own settings stay in :class:`chatrec.config.Settings`)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8000, ge=0, le=65535)
    max_concurrent: int = Field(1, ge=1, description="turns generating at once (the model is CPU-bound)")
    max_queue: int = Field(8, ge=0, description="turns waiting for a slot; more are refused with 503")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 when the queue is full")
    max_body_bytes: int = Field(16 * 1024, ge=256, description="request bodies under /v1/ larger than this get 413")
    rate_per_minute_key: float = Field(120, ge=0, description="requests per minute per site key (0 = unlimited)")
    rate_per_minute_ip: float = Field(30, ge=0, description="requests per minute per client IP (0 = unlimited)")
    admin_token: str | None = Field(None, description="bearer token for /v1/admin/*; None disables the admin API")
    require_key: bool | None = Field(None, description="None: a site key is required once any key exists")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed without a key's listing")
    accept_user_id: bool = Field(True, description="take user_id/user from requests (personalisation); turn off "
                                                   "for public sites until user ids are signed by the shop")
    expose_trace: bool = Field(False, description="include the turn trace (routing, timings) in responses")
    model_id: str = Field("chatrec", description="model id shown by the OpenAI-compatible API")
    ui: bool = Field(True, description="mount the Gradio UI under /ui")
    demo: bool = Field(True, description="serve the demo shop page at /demo")
    demo_site_key: str | None = Field(None, description="site key written into the /demo page")
    ui_wait_s: float = Field(300, gt=0, description="how long a Gradio UI turn waits for a slot")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return [normalize_origin(o) for o in v]


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class Busy(Exception):
    """No free slot and the wait queue is full."""


class _ClientGone(Exception):
    """The client disconnected before the response started."""


_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error",
                 503: "server_overloaded"}


def _error_response(path: str, status: int, message: str, code: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    if path.startswith(OPENAI_PATHS):
        body: dict[str, Any] = {"error": {"message": message, "type": _OPENAI_TYPES.get(status, "api_error"),
                                          "param": None, "code": code}}
    else:
        body = {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


# ---------------------------------------------------------------- the gate


class _Waiter:
    __slots__ = ("loop", "future", "event", "granted", "abandoned")

    def __init__(self, loop: asyncio.AbstractEventLoop | None):
        self.loop = loop
        self.future = loop.create_future() if loop else None
        self.event = None if loop else threading.Event()
        self.granted = False
        self.abandoned = False


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Gate:
    """A bounded queue in front of the model: ``max_concurrent`` slots, ``max_queue`` waiters.

    Thread-safe and not bound to one event loop: async requests and the Gradio UI's
    worker threads wait in the same FIFO. A slot is handed directly to the next
    waiter on release, so nobody can overtake the queue.
    """

    def __init__(self, max_concurrent: int = 1, max_queue: int = 8):
        self.max_concurrent, self.max_queue = max_concurrent, max_queue
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self.running = 0

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _enter(self, loop: asyncio.AbstractEventLoop | None) -> _Waiter | None:
        with self._lock:
            if self.running < self.max_concurrent and not self._waiters:
                self.running += 1
                return None
            if len(self._waiters) >= self.max_queue:
                raise Busy()
            w = _Waiter(loop)
            self._waiters.append(w)
            return w

    def _abandon(self, w: _Waiter) -> bool:
        """Leave the queue; True if a slot had already been handed over (the caller must release it)."""
        with self._lock:
            if w.granted:
                return True
            w.abandoned = True
            with contextlib.suppress(ValueError):
                self._waiters.remove(w)
            return False

    async def acquire(self) -> None:
        w = self._enter(asyncio.get_running_loop())
        if w is None:
            return
        try:
            await w.future
        except BaseException:
            if self._abandon(w):
                self.release()
            raise

    def acquire_blocking(self, timeout: float | None = None) -> None:
        w = self._enter(None)
        if w is None:
            return
        if not w.event.wait(timeout) and not self._abandon(w):
            raise Busy()

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                w = self._waiters.popleft()
                if w.abandoned:
                    continue
                w.granted = True
                if w.event is not None:
                    w.event.set()
                    return
                try:
                    w.loop.call_soon_threadsafe(_resolve, w.future)
                    return
                except RuntimeError:  # its event loop is gone
                    w.granted, w.abandoned = False, True
            self.running -= 1


# ---------------------------------------------------------------- turns in threads

_END = object()


def _work(bot: Chatbot, gate: Gate, args: tuple, cancel: threading.Event, put: Callable[[Any], None],
          ablate: Iterable[str] = ()) -> None:
    """Run one turn in the calling (worker) thread; the slot is released here, whatever happens."""
    try:
        gen = bot.stream(*args, cancel=cancel, ablate=ablate)
        try:
            for ev in gen:
                put(ev)
                if cancel.is_set():
                    break
        finally:
            gen.close()
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer
        put(exc)
    finally:
        gate.release()
        put(_END)


class AsyncTurn:
    """A turn running in a daemon thread, its events bridged into the event loop."""

    def __init__(self, bot: Chatbot, gate: Gate, message: str, conversation_id: str | None, user_id: str | None):
        self.cancel = threading.Event()
        self._args = (message, conversation_id, user_id)
        self._bot, self._gate = bot, gate
        self._queue: asyncio.Queue = asyncio.Queue()
        self.finished = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # loop closed: nobody is listening any more
                self.cancel.set()

        threading.Thread(target=_work, args=(self._bot, self._gate, self._args, self.cancel, put),
                         name="chatrec-turn", daemon=True).start()

    async def next(self) -> Any:
        """The next TokenEvent / ResultEvent, an exception raised by the turn, or ``_END``."""
        if self.finished:
            return _END
        item = await self._queue.get()
        if item is _END:
            self.finished = True
        return item

    def close(self) -> None:
        self.cancel.set()


class GatedBot:
    """The bot as the Gradio UI sees it: ``stream`` takes a slot from the gate and runs in a worker thread."""

    def __init__(self, bot: Chatbot, gate: Gate, wait_s: float = 300):
        self._bot, self._gate, self._wait_s = bot, gate, wait_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bot, name)

    def stream(self, message: str, conversation_id: str | None = None, user_id: str | None = None,
               cancel: threading.Event | None = None,
               ablate: Iterable[str] = ()) -> Iterator[TokenEvent | ResultEvent]:
        try:
            self._gate.acquire_blocking(self._wait_s)
        except Busy:
            raise InputRejected("the assistant is busy; please try again in a few seconds") from None
        cancel = cancel or threading.Event()
        q: queue_mod.Queue = queue_mod.Queue()
        threading.Thread(target=_work, args=(self._bot, self._gate, (message, conversation_id, user_id), cancel,
                                             q.put, tuple(ablate)), name="chatrec-ui-turn", daemon=True).start()
        try:
            while (item := q.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def ask(self, message: str, conversation_id: str | None = None, user_id: str | None = None,
            ablate: Iterable[str] = ()) -> TurnResult:
        return final_result(self.stream(message, conversation_id, user_id, ablate=ablate))


# ---------------------------------------------------------------- rate limits


class RateLimiter:
    """In-memory token buckets: bursts up to ``per_minute``, refilled at ``per_minute`` per minute."""

    def __init__(self, per_minute: float, max_entries: int = 50_000):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute)
        self.max_entries = max_entries
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if allowed, else the seconds until a request would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_entries:
                full = [k for k, (t, ts) in self._buckets.items() if t + (now - ts) * self.rate >= self.capacity]
                for k in full:
                    del self._buckets[k]
            return (1.0 - tokens) / self.rate


# ---------------------------------------------------------------- the edge middleware


def _same_origin(origin: str, host: str | None) -> bool:
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


class EdgeMiddleware:
    """Pure ASGI (streams and disconnects pass straight through), for paths under ``/v1/``:

    * CORS by site key: a cross-origin request is served only if some active key (or
      ``cors_origins``) lists its origin; it then gets ``Access-Control-Allow-Origin: <origin>``.
      Others get 403, preflights included. Admin paths are never served cross-origin.
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

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        cors: list[tuple[bytes, bytes]] = []
        if origin and not _same_origin(origin, headers.get("host")):
            if path.startswith("/v1/admin/") or not self.origin_allowed(origin):
                await _error_response(path, 403, f"origin {origin!r} is not allowed")(scope, receive, send)
                return
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                    (b"access-control-expose-headers", b"Retry-After")]
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                pre = Response(status_code=204, headers={
                    "Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type, X-Site-Key, Authorization",
                    "Access-Control-Max-Age": "600"})
                await pre(scope, receive, send)
                return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for k, v in cors:
                    h.append(k.decode(), v.decode("latin-1"))
                h.setdefault("X-Content-Type-Options", "nosniff")
                h.setdefault("Cache-Control", "no-store")
            await send(message)

        limit = self.settings.max_body_bytes
        too_big = _error_response(path, 413, f"request body is over {limit} bytes", code="body_too_large")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_big(scope, receive, send_with_headers)
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > limit:
                    await too_big(scope, receive, send_with_headers)
                    return
                if not message.get("more_body"):
                    break
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            await self.app(scope, replay, send_with_headers)
        else:
            await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------- request bodies


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    conversation_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    user_id: str | None = Field(None, max_length=64)
    stream: bool = True


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: int = Field(ge=1)
    kind: Literal[FEEDBACK_KINDS]  # type: ignore[valid-type]
    item_id: str | None = Field(None, max_length=128)


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    origins: list[str] = Field(default_factory=list, max_length=50)
    label: str = Field("", max_length=200)

    @field_validator("origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return [normalize_origin(o) for o in v]


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[Any] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in self.content
                           if not isinstance(p, dict) or p.get("type", "text") == "text")
        return ""


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, n, tools ... are accepted and ignored
    model: str = "chatrec"
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = Field(None, max_length=64)
    conversation_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    metadata: dict[str, Any] | None = None


# ---------------------------------------------------------------- helpers


def public_result(result: TurnResult, expose_trace: bool = False) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    if expose_trace:
        data["trace"].get("generation", {}).pop("raw", None)
    else:
        data["trace"] = {}
    return data


def _sse(event: str | None, data: Any) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class _TurnResponse(StreamingResponse):
    """A streaming response that cancels its turn however the stream ends (done, disconnect, error)."""

    def __init__(self, content: AsyncIterator[str], turn: AsyncTurn, **kw: Any):
        super().__init__(content, **kw)
        self._turn = turn

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._turn.close()


SSE_HEADERS = {"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"}


# ---------------------------------------------------------------- the app


def _static_text(name: str) -> str:
    return resources.files("chatrec").joinpath("static", name).read_text(encoding="utf-8")


def create_app(bot: Chatbot, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    keys = KeyStore(bot.store.path)
    gate = Gate(settings.max_concurrent, settings.max_queue)
    ip_limit = RateLimiter(settings.rate_per_minute_ip)
    key_limit = RateLimiter(settings.rate_per_minute_key)
    threads: OrderedDict[str, str] = OrderedDict()  # OpenAI message-history hash -> conversation id
    live: set[AsyncTurn] = set()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.ready = True
        yield
        app.state.ready = False
        for turn in list(live):
            turn.close()

    app = FastAPI(title="chatrec", version="0.1.0", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.ready = True
    app.state.gate, app.state.keys, app.state.settings, app.state.bot = gate, keys, settings, bot
    app.add_middleware(EdgeMiddleware, settings=settings, keys=keys)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request.url.path, exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(_ClientGone)
    async def _gone(request: Request, exc: _ClientGone) -> Response:
        return Response(status_code=499)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = json.loads(json.dumps(exc.errors(), default=str))
        if request.url.path.startswith(OPENAI_PATHS):
            msg = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in errors)
            return _error_response(request.url.path, 400, msg or "invalid request", code="invalid_request")
        return JSONResponse({"detail": errors}, status_code=422)

    # ------------------------------------------------------------ access

    def key_required() -> bool:
        return settings.require_key if settings.require_key is not None else keys.any_active()

    def admit(request: Request, presented: str | None) -> SiteKey | None:
        """IP rate limit, site key and its origin, key rate limit. Raises ApiError."""
        ip = request.client.host if request.client else "unknown"
        if (wait := ip_limit.take(ip)) > 0:
            raise ApiError(429, "too many requests from this address", code="rate_limited",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})
        record = keys.lookup(presented) if presented else None
        if key_required() and record is None:
            raise ApiError(401, "a valid site key is required (X-Site-Key header)" if not presented
                           else "unknown or revoked site key", code="invalid_api_key")
        origin = request.headers.get("origin")
        if record is not None and origin and not _same_origin(origin, request.headers.get("host")) \
                and not record.allows(origin) and normalize_origin_safe(origin) not in settings.cors_origins:
            raise ApiError(403, f"this site key is not valid on {origin}", code="origin_not_allowed")
        if record is not None and (wait := key_limit.take(f"key:{record.id}")) > 0:
            raise ApiError(429, "too many requests for this site key", code="rate_limited",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return record

    def admin(request: Request) -> None:
        if not settings.admin_token:
            raise ApiError(404, "the admin API is disabled (no admin token configured)")
        token = _bearer(request) or ""
        if not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
            raise ApiError(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})

    # ------------------------------------------------------------ running a turn

    async def until_disconnect(request: Request, aw: Awaitable[Any], on_gone: Callable[[], None]) -> Any:
        task = asyncio.ensure_future(aw)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.25)
                if done:
                    return task.result()
                if await request.is_disconnected():
                    on_gone()
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    raise _ClientGone()
        except asyncio.CancelledError:
            task.cancel()
            on_gone()
            raise

    async def start_turn(request: Request, message: str, cid: str | None, uid: str | None) -> tuple[AsyncTurn, Any]:
        """Wait for a slot, start the turn, and return it with its first event (errors raised as ApiError)."""
        try:
            await until_disconnect(request, gate.acquire(), lambda: None)
        except Busy:
            raise ApiError(503, "the assistant is busy; please retry shortly", code="overloaded",
                           headers={"Retry-After": str(settings.retry_after_s)}) from None
        turn = AsyncTurn(bot, gate, message, cid, uid if settings.accept_user_id else None)
        try:
            turn.start()
        except BaseException:
            gate.release()
            raise
        live.add(turn)
        try:
            first = await until_disconnect(request, turn.next(), turn.close)
        except BaseException:
            live.discard(turn)
            raise
        if isinstance(first, BaseException):
            live.discard(turn)
            turn.close()
            if isinstance(first, InputRejected):
                raise ApiError(400, str(first), code="input_rejected")
            log.error("turn failed", exc_info=first)
            raise ApiError(500, "the turn failed", code="internal_error")
        return turn, first

    async def collect(request: Request, turn: AsyncTurn, first: Any) -> TurnResult:
        async def run() -> TurnResult:
            ev, result = first, None
            while ev is not _END:
                if isinstance(ev, ResultEvent):
                    result = ev.result
                elif isinstance(ev, BaseException):
                    raise ev
                ev = await turn.next()
            if result is None:
                raise RuntimeError("the turn ended without a result")
            return result

        try:
            return await until_disconnect(request, run(), turn.close)
        except (_ClientGone, ApiError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.error("turn failed", exc_info=exc)
            raise ApiError(500, "the turn failed", code="internal_error") from None
        finally:
            live.discard(turn)

    # ------------------------------------------------------------ chatrec API

    @app.post("/v1/chat")
    async def chat(body: ChatRequest, request: Request):
        admit(request, request.headers.get("x-site-key"))
        turn, first = await start_turn(request, body.message, body.conversation_id, body.user_id)
        if not body.stream:
            result = await collect(request, turn, first)
            return JSONResponse(public_result(result, settings.expose_trace))

        async def events() -> AsyncIterator[str]:
            ev = first
            try:
                while ev is not _END:
                    if isinstance(ev, TokenEvent):
                        yield _sse("token", {"text": ev.text})
                    elif isinstance(ev, ResultEvent):
                        yield _sse("result", public_result(ev.result, settings.expose_trace))
                    elif isinstance(ev, BaseException):
                        log.error("turn failed", exc_info=ev)
                        yield _sse("error", {"detail": "the turn failed"})
                    ev = await turn.next()
            finally:
                turn.close()
                live.discard(turn)

        return _TurnResponse(events(), turn, media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/v1/feedback", status_code=201)
    def feedback(body: FeedbackRequest, request: Request):
        admit(request, request.headers.get("x-site-key"))
        if body.item_id is not None and body.item_id not in bot.kb.items:
            raise ApiError(422, f"unknown item {body.item_id!r}")
        try:
            fid = bot.feedback(body.turn_id, body.kind, body.item_id)
        except KeyError:
            raise ApiError(404, f"no turn {body.turn_id}") from None
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        return {"id": fid, "turn_id": body.turn_id, "kind": body.kind, "item_id": body.item_id}

    # ------------------------------------------------------------ OpenAI-compatible API

    def model_card() -> dict[str, Any]:
        return {"id": settings.model_id, "object": "model", "created": 0, "owned_by": "chatrec"}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id}")
    def model(model_id: str):
        if model_id != settings.model_id:
            raise ApiError(404, f"the model {model_id!r} does not exist", code="model_not_found")
        return model_card()

    def history_key(scope: str, msgs: list[tuple[str, str]]) -> str:
        return hashlib.sha256(json.dumps([scope, msgs], ensure_ascii=False).encode()).hexdigest()

    @app.post("/v1/chat/completions")
    async def completions(body: OpenAIChatRequest, request: Request):
        presented = request.headers.get("x-site-key") or _bearer(request)
        record = admit(request, presented)
        last = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=None)
        if last is None:
            raise ApiError(400, "messages must contain a user message", code="invalid_request")
        message = body.messages[last].text()
        user_id = body.user if settings.accept_user_id else None
        # OpenAI clients resend the whole history; continue the conversation it came from.
        scope = f"{record.id if record else '-'}|{user_id or ''}"
        prior = [(m.role, m.text()) for m in body.messages[:last] if m.role in ("user", "assistant")]
        cid = body.conversation_id or (body.metadata or {}).get("conversation_id")
        if not isinstance(cid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cid):
            cid = threads.get(history_key(scope, prior)) if prior else None

        turn, first = await start_turn(request, message, cid, user_id)
        created = int(time.time())
        cmpl_id = "chatcmpl-" + uuid.uuid4().hex

        def finish(result: TurnResult) -> tuple[dict[str, int], dict[str, Any]]:
            threads[history_key(scope, prior + [("user", message), ("assistant", result.text)])] = \
                result.conversation_id
            while len(threads) > 10_000:
                threads.popitem(last=False)
            prompt = int(result.trace.get("prompt_tokens") or bot.llm.count_tokens(message))
            completion = bot.llm.count_tokens(result.text) if result.text else 0
            usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            return usage, public_result(result, settings.expose_trace)

        if not body.stream:
            result = await collect(request, turn, first)
            usage, extra = finish(result)
            return JSONResponse({
                "id": cmpl_id, "object": "chat.completion", "created": created, "model": settings.model_id,
                "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": usage, "chatrec": extra})

        include_usage = bool((body.stream_options or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
            data = {"id": cmpl_id, "object": "chat.completion.chunk", "created": created, "model": settings.model_id,
                    "system_fingerprint": None,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
            data.update(extra)
            return _sse(None, data)

        async def events() -> AsyncIterator[str]:
            # Only the grounded reply is sent: the raw generation can be replaced by the
            # grounding check after it is written, and a completion cannot take text back.
            ev, result = first, None
            try:
                yield chunk({"role": "assistant", "content": ""})
                while ev is not _END:
                    if isinstance(ev, ResultEvent):
                        result = ev.result
                    elif isinstance(ev, BaseException):
                        log.error("turn failed", exc_info=ev)
                        yield _sse(None, {"error": {"message": "the turn failed", "type": "api_error",
                                                    "param": None, "code": "internal_error"}})
                        return
                    ev = await turn.next()
                if result is None:
                    return
                usage, extra = finish(result)
                for piece in _words(result.text):
                    yield chunk({"content": piece})
                if include_usage:
                    yield chunk({}, "stop", chatrec=extra)
                    yield _sse(None, {"id": cmpl_id, "object": "chat.completion.chunk", "created": created,
                                      "model": settings.model_id, "system_fingerprint": None, "choices": [],
                                      "usage": usage})
                else:
                    yield chunk({}, "stop", chatrec=extra, usage=usage)
                yield _sse(None, "[DONE]")
            finally:
                turn.close()
                live.discard(turn)

        return _TurnResponse(events(), turn, media_type="text/event-stream", headers=SSE_HEADERS)

    # ------------------------------------------------------------ admin

    @app.get("/v1/admin/keys")
    def list_keys(request: Request):
        admin(request)
        return {"keys": [k.public() for k in keys.list()]}

    @app.post("/v1/admin/keys", status_code=201)
    def add_key(body: KeyRequest, request: Request):
        admin(request)
        plain, record = keys.add(body.origins, body.label)
        return {"key": plain, **record.public()}

    @app.delete("/v1/admin/keys/{key_id}", status_code=204)
    def revoke_key(key_id: int, request: Request):
        admin(request)
        if not keys.revoke(key_id):
            raise ApiError(404, f"no active key {key_id}")
        return Response(status_code=204)

    # ------------------------------------------------------------ health, widget, demo

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        try:
            ok = bool(app.state.ready and bot.kb.items) and bot.store.conversation("-") is None
        except Exception:  # the store is unreachable
            ok = False
        body = {"status": "ready" if ok else "not ready", "llm": getattr(bot.llm, "name", "?"),
                "running": gate.running, "waiting": gate.waiting,
                "max_concurrent": gate.max_concurrent, "max_queue": gate.max_queue}
        return JSONResponse(body, status_code=200 if ok else 503)

    widget_js = _static_text("widget.js")

    @app.get("/widget.js")
    def widget():
        return Response(widget_js, media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff",
                                 "Access-Control-Allow-Origin": "*"})

    if settings.demo:
        demo_html = _static_text("demo.html")
        if settings.demo_site_key:
            demo_html = re.sub(r'data-site-key="[^"]*"', lambda _: f'data-site-key="{_attr(settings.demo_site_key)}"',
                               demo_html, count=1)

        @app.get("/demo", response_class=HTMLResponse)
        def demo():
            return HTMLResponse(demo_html, headers={
                "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff"})

    if settings.ui:
        import gradio as gr

        from chatrec.ui.gradio_app import build_app

        gr.mount_gradio_app(app, build_app(GatedBot(bot, gate, settings.ui_wait_s)), path="/ui",
                            ssr_mode=False, mcp_server=False)
    return app


def normalize_origin_safe(origin: str) -> str | None:
    try:
        return normalize_origin(origin)
    except ValueError:
        return None


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;"))
