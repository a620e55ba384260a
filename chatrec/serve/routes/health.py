"""``GET /healthz`` (the process is up) and ``GET /readyz`` (bot loaded, store writable, index
present; queue counters).

``/readyz`` answers 503 while the store cannot be written (locked, disk full, I/O error:
``Store.ping()``, a quick probe with a short lock timeout) or the local index folder is
gone, and 200 again on its own once they are back.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from chatrec.chatbot import Chatbot
from chatrec.serve.deps import BotDep, GateDep

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
def healthz():
    return {"status": "ok"}


def _index_present(bot: Chatbot) -> bool:
    """False when the local Chroma folder's database is gone (a Chroma server is not probed)."""
    settings = getattr(bot.index, "settings", None)
    if settings is None or settings.retrieval.chroma_host:
        return True
    return (settings.chroma_dir / "chroma.sqlite3").is_file()


def _store_ok(bot: Chatbot) -> bool:
    try:
        bot.store.ping()
    except Exception as exc:  # the store is unreachable (StoreUnavailable) or broken
        log.warning("not ready: %s", exc)
        return False
    return True


@router.get("/readyz")
def readyz(request: Request, bot: BotDep, gate: GateDep):
    store_ok = _store_ok(bot)
    index_ok = _index_present(bot)
    ok = bool(request.app.state.ready and bot.kb.items) and store_ok and index_ok
    body = {
        "status": "ready" if ok else "not ready",
        "store": "ok" if store_ok else "unavailable",
        "index": "ok" if index_ok else "missing",
        "llm": getattr(bot.llm, "name", "?"),
        "running": gate.running,
        "waiting": gate.waiting,
        "max_concurrent": gate.max_concurrent,
        "max_queue": gate.max_queue,
    }
    return JSONResponse(body, status_code=200 if ok else 503)
