"""The OpenAI-compatible API: ``POST /v1/chat/completions``, ``GET /v1/models[/{id}]``.

The ``openai`` client and LangChain's ``ChatOpenAI`` work unchanged. The last user message
is the turn, the user is the signed ``X-User-Token`` header's (``user`` counts only with
``serve.accept_unsigned_user_id``), the site key may come as the client's ``api_key``,
and the structured turn (recommendations, sources, ids) rides along in an extra
``chatrec`` field. Extra request fields (temperature, max_tokens, n, tools ...) are
accepted and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from chatrec.chatbot import Chatbot, ResultEvent
from chatrec.config import ServeSettings
from chatrec.serve.deps import OpenAIKeyDep, OpenAITenantDep, ServeSettingsDep, TurnsDep
from chatrec.serve.errors import ApiError
from chatrec.serve.identity import USER_TOKEN_HEADER, caller_of
from chatrec.serve.sse import TurnStream, sse, words
from chatrec.serve.turns import END, AsyncTurn, Turns, public_result
from chatrec.store.base import Store, StoreUnavailable
from chatrec.types import TurnResult

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger(__name__)


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[Any] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(
                p.get("text", "") if isinstance(p, dict) else str(p)
                for p in self.content
                if not isinstance(p, dict) or p.get("type", "text") == "text"
            )
        return ""


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens ... are accepted and ignored
    model: str | None = Field(None, max_length=128, description="serve.model_id (default) or a named adapter")
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = Field(None, max_length=64)
    conversation_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _supported(self) -> OpenAIChatRequest:
        """Options that would change what the client gets back are refused, never ignored."""
        extra = self.model_extra or {}
        if extra.get("n", 1) not in (1, None):
            raise ValueError("n: only one choice per request is supported")
        for name in ("tools", "tool_choice", "functions", "function_call"):
            if extra.get(name) not in (None, [], "none"):
                raise ValueError(f"{name}: tool and function calling are not supported")
        return self


class HistoryIndex:
    """OpenAI clients resend the whole history; a history the server answered (per site key and
    user) maps to its conversation, so the next request continues it, on any replica: the map is
    in the store (:meth:`~chatrec.store.base.Store.remember_history`, kept
    :data:`~chatrec.store.base.HISTORY_KEEP_DAYS` days). Its key is an HMAC-SHA256 of the scope
    and the messages under a server secret of the store: no message text is stored, and the
    unmasked messages cannot be confirmed by hashing guesses without the secret."""

    SECRET = "openai_history"

    def __init__(self, store: Store):
        self.store = store
        self._secret: bytes | None = None

    def _key(self, scope: str, msgs: list[tuple[str, str]]) -> str:
        if self._secret is None:
            self._secret = self.store.secret(self.SECRET)  # the same on every replica of this store
        text = json.dumps([scope, msgs], ensure_ascii=False).encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def find(self, scope: str, msgs: list[tuple[str, str]]) -> str | None:
        return self.store.find_history(self._key(scope, msgs)) if msgs else None

    def remember(self, scope: str, msgs: list[tuple[str, str]], conversation_id: str, tenant: int | None) -> None:
        """Map the answered history to its conversation; a store fault only logs (the turn is answered
        and saved: the client's next request then starts a new conversation unless it names this one)."""
        try:
            self.store.remember_history(self._key(scope, msgs), conversation_id, tenant)
        except StoreUnavailable as exc:
            log.warning("the OpenAI history of conversation %s was not kept: %s", conversation_id, exc)


async def get_history(request: Request) -> HistoryIndex:
    return request.app.state.openai_history


HistoryDep = Annotated[HistoryIndex, Depends(get_history)]


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "chatrec"}


def _model_ids(request: Request, settings: ServeSettings) -> list[str]:
    """The served model, then each named LoRA adapter (``llm.adapters``), which a request picks as its ``model``."""
    return [settings.model_id, *request.app.state.bot.settings.llm.adapters]


@router.get("/models")
def models(request: Request, settings: ServeSettingsDep):
    return {"object": "list", "data": [_model_card(m) for m in _model_ids(request, settings)]}


@router.get("/models/{model_id}")
def model(model_id: str, request: Request, settings: ServeSettingsDep):
    if model_id not in _model_ids(request, settings):
        raise ApiError(404, f"the model {model_id!r} does not exist", code="model_not_found")
    return _model_card(model_id)


@router.post("/chat/completions")
async def completions(
    body: OpenAIChatRequest,
    request: Request,
    record: OpenAIKeyDep,
    tenant: OpenAITenantDep,
    turns: TurnsDep,
    settings: ServeSettingsDep,
    history: HistoryDep,
):
    last = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=None)
    if last is None:
        raise ApiError(400, "messages must contain a user message", code="invalid_request")
    message = body.messages[last].text()
    caller = caller_of(request.headers.get(USER_TOKEN_HEADER), body.user, record, settings)
    # OpenAI clients resend the whole history; continue the conversation it came from
    # (only the caller's own: the conversation's owner is checked when it is opened).
    scope = f"{caller.tenant if caller.tenant is not None else '-'}|{caller.user_id or ''}"
    prior = [(m.role, m.text()) for m in body.messages[:last] if m.role in ("user", "assistant")]
    cid = body.conversation_id or (body.metadata or {}).get("conversation_id")
    if not isinstance(cid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cid):
        cid = await run_in_threadpool(history.find, scope, prior)

    adapter = None if body.model in (None, settings.model_id) else body.model  # a named adapter, else 400
    turn, first = await turns.start(request, message, cid, caller, adapter, tenant)
    completion = _Completion(settings, turns.bot, history, scope, prior + [("user", message)], caller.tenant)
    if not body.stream:
        return JSONResponse(await completion.body(await turns.collect(request, turn, first)))
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    return TurnStream(completion.events(turns, turn, first, include_usage), turn)


class _Completion:
    """One completion's wire format (a ``chat.completion``, or ``chat.completion.chunk`` events)."""

    def __init__(
        self,
        settings: ServeSettings,
        bot: Chatbot,
        history: HistoryIndex,
        scope: str,
        asked: list[tuple[str, str]],
        tenant: int | None,
    ):
        self.settings, self.bot, self.history, self.scope, self.asked = settings, bot, history, scope, asked
        self.tenant = tenant
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())

    async def finish(self, result: TurnResult) -> tuple[dict[str, int], dict[str, Any]]:
        """Remember the answered history; the token usage and the ``chatrec`` extra of the turn."""
        answered = self.asked + [("assistant", result.text)]
        await run_in_threadpool(self.history.remember, self.scope, answered, result.conversation_id, self.tenant)
        message = self.asked[-1][1]
        prompt = int(result.trace.get("prompt_tokens") or self.bot.llm.count_tokens(message))
        completion = self.bot.llm.count_tokens(result.text) if result.text else 0
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        return usage, public_result(result, self.settings.expose_trace)

    async def body(self, result: TurnResult) -> dict[str, Any]:
        usage, extra = await self.finish(result)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.settings.model_id,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "chatrec": extra,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        data = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.settings.model_id,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        data.update(extra)
        return sse(None, data)

    async def events(self, turns: Turns, turn: AsyncTurn, first: Any, include_usage: bool) -> AsyncIterator[str]:
        # Only the grounded reply is sent: the raw generation can be replaced by the
        # grounding check after it is written, and a completion cannot take text back.
        ev, result = first, None
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            while ev is not END:
                if isinstance(ev, ResultEvent):
                    result = ev.result
                elif isinstance(ev, BaseException):
                    log.error("turn failed", exc_info=ev)
                    yield sse(
                        None,
                        {
                            "error": {
                                "message": "the turn failed",
                                "type": "api_error",
                                "param": None,
                                "code": "internal_error",
                            }
                        },
                    )
                    return
                ev = await turn.next()
            if result is None:
                return
            usage, extra = await self.finish(result)
            for piece in words(result.text):
                yield self.chunk({"content": piece})
            if include_usage:
                yield self.chunk({}, "stop", chatrec=extra)
                yield sse(
                    None,
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.settings.model_id,
                        "system_fingerprint": None,
                        "choices": [],
                        "usage": usage,
                    },
                )
            else:
                yield self.chunk({}, "stop", chatrec=extra, usage=usage)
            yield sse(None, "[DONE]")
        finally:
            turns.done(turn)
