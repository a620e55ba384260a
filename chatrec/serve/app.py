"""The HTTP edge in one FastAPI app: chatrec's own SSE chat API, an OpenAI-compatible API,
feedback, site keys, the embeddable widget and the Gradio UI.

``create_app(bot)`` builds it (settings: ``bot.settings.serve``, the ``[serve]`` section);
``chatrec serve`` runs it under uvicorn. The pieces:

* :mod:`~chatrec.serve.routes`: one router per resource (``chat``, ``openai``, ``feedback``,
  ``admin``, ``health``, ``site``); the Gradio UI is mounted under ``/ui``.
* :mod:`~chatrec.serve.deps`: what routes need (bot, settings, gate, site-key and admin
  checks) as ``Annotated`` dependencies; override one with ``app.dependency_overrides``.
* :mod:`~chatrec.serve.gate` and :mod:`~chatrec.serve.turns`: every turn (API and UI)
  passes one bounded queue and runs in a worker thread; beyond the queue, 503 + ``Retry-After``.
* :mod:`~chatrec.serve.middleware`: in front of every path (``/ui``, ``/docs`` and assets too):
  per-address rate limits, CORS by site key under ``/v1/``, same-origin ``/ui``, body size and time.
* :mod:`~chatrec.serve.errors`: ``{"detail"}`` errors, OpenAI-shaped on the OpenAI paths;
  :class:`chatrec.types.Unavailable` from any route is a 503 with ``Retry-After``.
* :mod:`~chatrec.serve.server`: uvicorn with connection limits and a request-head deadline.

``serve.ui`` and ``serve.docs`` (``auto``: only when bound to a loopback address) decide
whether ``/ui`` and ``/docs`` + ``/openapi.json`` exist; a UI on another address needs a login
(user ``admin``, password ``serve.admin_token``), so it never shows the customer list to the public.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, cast

from fastapi import FastAPI

from chatrec import __version__
from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings
from chatrec.serve.errors import add_error_handlers
from chatrec.serve.gate import Gate, engine_slots
from chatrec.serve.limits import RateLimits
from chatrec.serve.middleware import EdgeMiddleware
from chatrec.serve.routes import admin, chat, feedback, health, metrics, openai, site
from chatrec.serve.tenants import Tenants
from chatrec.serve.turns import GatedBot
from chatrec.store import open_keys


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.ready = True
    yield
    app.state.ready = False
    for turn in list(app.state.live_turns):  # stop generating for streams still open
        turn.close()


def create_app(bot: Chatbot, settings: ServeSettings | None = None) -> FastAPI:
    """The app for ``bot``; ``settings`` defaults to ``bot.settings.serve``.

    The shared objects go on ``app.state`` (``bot``, ``settings``, ``keys``, ``gate``,
    ``limits``, ``live_turns``, ``openai_history``, ``tenants``), where :mod:`chatrec.serve.deps` reads them.
    """
    settings = settings or bot.settings.serve
    docs = settings.docs_served
    app = FastAPI(
        title="chatrec",
        version=__version__,
        lifespan=_lifespan,
        docs_url="/docs" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        redoc_url=None,
    )
    state = app.state
    state.ready = True
    state.bot, state.settings = bot, settings
    state.keys = open_keys(bot.settings, bot.store)  # in the store's database (SQLite file or PostgreSQL)
    state.gate = Gate(engine_slots(bot.llm, settings.max_concurrent), settings.max_queue)
    state.limits = RateLimits.from_settings(settings, bot.store)  # rate_limit_store = "store": shared by replicas
    state.live_turns = set()
    state.tenants = Tenants(bot, settings)  # [tenants.<name>]: one bot per shop, built on first use
    state.openai_history = openai.HistoryIndex(bot.store)  # in the store: every replica continues a history

    app.add_middleware(EdgeMiddleware, settings=settings, keys=state.keys, limits=state.limits)
    add_error_handlers(app)
    for module in (chat, openai, feedback, admin, health, site, metrics):
        app.include_router(module.router)
    if settings.ui_mounted:
        _mount_ui(app, GatedBot(bot, state.gate, settings.ui_wait_s), settings)
    _document_content(app)
    return app


SSE_EVENT = {  # one server-sent event, as schema checkers read them
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"],
}
# 200 answers that are not (only) JSON: SSE when the body asks to stream; the widget's script
CONTENT_200: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {
    ("/v1/chat", "post"): ({"text/event-stream": {"schema": SSE_EVENT}}, True),
    ("/v1/chat/completions", "post"): ({"text/event-stream": {"schema": SSE_EVENT}}, True),
    ("/widget.js", "get"): ({"application/javascript": {"schema": {"type": "string"}}}, False),
}


def _document_content(app: FastAPI) -> None:
    """The OpenAPI schema says what the non-JSON answers are (``text/event-stream``, the widget's script)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            for (path, method), (content, keep_json) in CONTENT_200.items():
                ok = schema.get("paths", {}).get(path, {}).get(method, {}).get("responses", {}).get("200")
                if ok is not None:
                    ok["content"] = {**(ok.get("content", {}) if keep_json else {}), **content}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def ui_login(settings: ServeSettings) -> tuple[str, str] | None:
    """The UI's login (user ``admin``, the admin token): required on a non-loopback address,
    and whenever an admin token is set (a loopback server may sit behind a public proxy)."""
    if settings.admin_token:
        return ("admin", settings.admin_token)
    if settings.public:  # ServeSettings refuses ui = "on" there without a token; never serve it open
        raise ValueError("the UI on a non-loopback address needs serve.admin_token")
    return None


def _mount_ui(app: FastAPI, bot: GatedBot, settings: ServeSettings) -> None:
    """The Gradio UI under ``/ui``; its turns wait in the same gate as the API's."""
    import gradio as gr

    from chatrec.ui.gradio_app import build_app

    ui = build_app(cast(Chatbot, bot))  # the GatedBot stands in for the Chatbot
    gr.mount_gradio_app(app, ui, path="/ui", ssr_mode=False, mcp_server=False, auth=ui_login(settings))
