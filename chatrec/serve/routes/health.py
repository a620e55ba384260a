"""``GET /healthz`` (the process is up) and ``GET /readyz`` (bot loaded, store reachable; queue counters)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from chatrec.serve.deps import BotDep, GateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz():
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, bot: BotDep, gate: GateDep):
    try:
        ok = bool(request.app.state.ready and bot.kb.items) and bot.store.conversation("-") is None
    except Exception:  # the store is unreachable
        ok = False
    body = {
        "status": "ready" if ok else "not ready",
        "llm": getattr(bot.llm, "name", "?"),
        "running": gate.running,
        "waiting": gate.waiting,
        "max_concurrent": gate.max_concurrent,
        "max_queue": gate.max_queue,
    }
    return JSONResponse(body, status_code=200 if ok else 503)
