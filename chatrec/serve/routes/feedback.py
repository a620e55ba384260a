"""Feedback on a turn: ``POST /v1/feedback`` ``{turn_id, kind, item_id?}`` -> 201.

``kind`` is one of the store's feedback kinds (thumbs_up, thumbs_down, click, accept);
an unknown turn is 404, an unknown item or kind 422.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chatrec.serve.deps import BotDep, SiteKeyDep
from chatrec.serve.errors import ApiError
from chatrec.store.base import FEEDBACK_KINDS

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: int = Field(ge=1)
    kind: Literal[FEEDBACK_KINDS]  # type: ignore[valid-type]
    item_id: str | None = Field(None, max_length=128)


@router.post("", status_code=201)
def feedback(body: FeedbackRequest, _: SiteKeyDep, bot: BotDep):
    if body.item_id is not None and body.item_id not in bot.kb.items:
        raise ApiError(422, f"unknown item {body.item_id!r}")
    try:
        fid = bot.feedback(body.turn_id, body.kind, body.item_id)
    except KeyError:
        raise ApiError(404, f"no turn {body.turn_id}") from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return {"id": fid, "turn_id": body.turn_id, "kind": body.kind, "item_id": body.item_id}
