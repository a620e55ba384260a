"""Feedback on a turn: ``POST /v1/feedback`` ``{conversation_id, turn_id, kind, item_id?}`` -> 201.

``kind`` is one of the store's feedback kinds (thumbs_up, thumbs_down, click, accept, reject).
Only the caller's own turns can be rated: the turn must be in ``conversation_id`` and that
conversation the caller's (same site key, same user from ``X-User-Token``), else 404, the
same answer as an unknown turn. ``accept``/``reject`` need an ``item_id`` the turn showed,
and any ``item_id`` must be one it showed (422). One vote per (turn, kind, item): a repeat
answers with the first vote's id and stores nothing.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from chatrec.chatbot import ConversationNotFound
from chatrec.serve.deps import BotDep, ServeSettingsDep, SiteKeyDep, SiteTenantDep
from chatrec.serve.errors import ApiError
from chatrec.serve.identity import USER_TOKEN_HEADER, caller_of
from chatrec.store.base import FEEDBACK_KINDS

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])

MAX_ID = 2**63 - 1  # SQLite's largest integer


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    turn_id: int = Field(ge=1, le=MAX_ID)
    kind: Literal[FEEDBACK_KINDS]  # type: ignore[valid-type]
    item_id: str | None = Field(None, max_length=128)
    user_id: str | None = Field(None, max_length=64, description="ignored unless serve.accept_unsigned_user_id")


@router.post("", status_code=201)
async def feedback(
    body: FeedbackRequest,
    request: Request,
    record: SiteKeyDep,
    tenant: SiteTenantDep,
    default_bot: BotDep,
    settings: ServeSettingsDep,
):
    bot = tenant.bot if tenant.named else default_bot  # the key's shop: its items; the shared store
    caller = caller_of(request.headers.get(USER_TOKEN_HEADER), body.user_id, record, settings)
    if body.item_id is not None and body.item_id not in bot.kb.items:
        raise ApiError(422, f"unknown item {body.item_id!r}")
    try:
        fid = await run_in_threadpool(
            lambda: bot.feedback(
                body.turn_id,
                body.kind,
                body.item_id,
                conversation_id=body.conversation_id,
                user_id=caller.user_id,
                tenant=caller.tenant,
                check_owner=True,
            )
        )
    except (ConversationNotFound, KeyError):
        raise ApiError(404, f"no turn {body.turn_id} in this conversation") from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return {"id": fid, "turn_id": body.turn_id, "kind": body.kind, "item_id": body.item_id}
