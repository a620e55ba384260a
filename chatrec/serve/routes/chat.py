"""chatrec's own chat API: ``POST /v1/chat``.

``{message, conversation_id?, user_id?, stream?=true}`` -> SSE: ``event: token`` ``{"text"}``
per piece as the model writes it, then one ``event: result`` with the turn (its ``text`` is
the final, grounded reply); or, with ``"stream": false``, the turn as JSON.

Without ``conversation_id`` a new conversation starts (its id is in the result); with one,
it must be a conversation of the same site key and user, else 404. The user comes from a
signed ``X-User-Token`` header (:mod:`chatrec.serve.identity`); ``user_id`` counts only
with ``serve.accept_unsigned_user_id``.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from chatrec.chatbot import ResultEvent, TokenEvent
from chatrec.serve.deps import ServeSettingsDep, SiteKeyDep, SiteTenantDep, TurnsDep
from chatrec.serve.identity import USER_TOKEN_HEADER, caller_of
from chatrec.serve.sse import TurnStream, sse
from chatrec.serve.turns import END, AsyncTurn, Turns, public_result

router = APIRouter(prefix="/v1/chat", tags=["chat"])
log = logging.getLogger(__name__)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    conversation_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    user_id: str | None = Field(None, max_length=64, description="ignored unless serve.accept_unsigned_user_id")
    stream: bool = True
    adapter: str | None = Field(None, max_length=64, description="a LoRA adapter by name (llm.adapters); unknown: 400")


@router.post("")
async def chat(
    body: ChatRequest,
    request: Request,
    record: SiteKeyDep,
    tenant: SiteTenantDep,
    turns: TurnsDep,
    settings: ServeSettingsDep,
):
    caller = caller_of(request.headers.get(USER_TOKEN_HEADER), body.user_id, record, settings)
    turn, first = await turns.start(request, body.message, body.conversation_id, caller, body.adapter, tenant)
    if not body.stream:
        result = await turns.collect(request, turn, first)
        return JSONResponse(public_result(result, settings.expose_trace))
    return TurnStream(_events(turns, turn, first, settings.expose_trace), turn)


async def _events(turns: Turns, turn: AsyncTurn, first: Any, expose_trace: bool) -> AsyncIterator[str]:
    ev = first
    try:
        while ev is not END:
            if isinstance(ev, TokenEvent):
                yield sse("token", {"text": ev.text})
            elif isinstance(ev, ResultEvent):
                yield sse("result", public_result(ev.result, expose_trace))
            elif isinstance(ev, BaseException):
                log.error("turn failed", exc_info=ev)
                yield sse("error", {"detail": "the turn failed"})
            ev = await turn.next()
    finally:
        turns.done(turn)
