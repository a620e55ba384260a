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
* :mod:`~chatrec.serve.middleware`: CORS by site key and the body size limit under ``/v1/``.
* :mod:`~chatrec.serve.errors`: ``{"detail"}`` errors, OpenAI-shaped on the OpenAI paths.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator, cast

from fastapi import FastAPI

from chatrec import __version__
from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings
from chatrec.serve.errors import add_error_handlers
from chatrec.serve.gate import Gate
from chatrec.serve.limits import RateLimits
from chatrec.serve.middleware import EdgeMiddleware
from chatrec.serve.routes import admin, chat, feedback, health, openai, site
from chatrec.serve.turns import GatedBot
from chatrec.store.keys import KeyStore


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
    ``limits``, ``live_turns``, ``openai_history``), where :mod:`chatrec.serve.deps` reads them.
    """
    settings = settings or bot.settings.serve
    app = FastAPI(title="chatrec", version=__version__, lifespan=_lifespan, docs_url="/docs", redoc_url=None)
    state = app.state
    state.ready = True
    state.bot, state.settings = bot, settings
    state.keys = KeyStore(bot.settings.db_path, busy_timeout_s=bot.settings.db_busy_timeout_s)
    state.gate = Gate(settings.max_concurrent, settings.max_queue)
    state.limits = RateLimits.from_settings(settings)
    state.live_turns = set()
    state.openai_history = openai.HistoryIndex()

    app.add_middleware(EdgeMiddleware, settings=settings, keys=state.keys)
    add_error_handlers(app)
    for module in (chat, openai, feedback, admin, health, site):
        app.include_router(module.router)
    if settings.ui:
        _mount_ui(app, GatedBot(bot, state.gate, settings.ui_wait_s))
    return app


def _mount_ui(app: FastAPI, bot: GatedBot) -> None:
    """The Gradio UI under ``/ui``; its turns wait in the same gate as the API's."""
    import gradio as gr

    from chatrec.ui.gradio_app import build_app

    ui = build_app(cast(Chatbot, bot))  # the GatedBot stands in for the Chatbot
    gr.mount_gradio_app(app, ui, path="/ui", ssr_mode=False, mcp_server=False)
