"""The turn bridge: a turn runs in a worker thread behind the :class:`~chatrec.serve.gate.Gate`,
and its events reach the request (:class:`AsyncTurn`, :class:`Turns`) or the Gradio UI
(:class:`GatedBot`).

The conversation is opened (ownership checked, state read) before the turn waits for a
slot, so a slow or locked store never holds the model. The worker thread releases the
slot exactly once: as soon as the model is done (the :data:`~chatrec.chatbot.GENERATED`
marker, before the final save) or when the turn ends, whatever happens, so a request
that is cancelled or a client that disconnects never leaks one. Closing a turn sets its
``cancel`` event, which stops generation at the next token, and its ``gone`` event, which
stops the turn (recorded as ``cancelled``). A store or engine that is down
(:class:`~chatrec.types.Unavailable`) is a 503 with ``Retry-After``, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue as queue_mod
import threading
from typing import Any, Awaitable, Callable, Generator, Iterable, Iterator, cast

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from chatrec.chatbot import (
    GENERATED,
    Chatbot,
    ConversationNotFound,
    InputRejected,
    OpenConversation,
    ResultEvent,
    TokenEvent,
    final_result,
)
from chatrec.config import ServeSettings
from chatrec.llm.base import UnknownAdapter
from chatrec.serve.errors import ApiError, ClientGone
from chatrec.serve.gate import Busy, Gate
from chatrec.serve.identity import Caller
from chatrec.serve.tenants import Tenant
from chatrec.types import TurnResult, Unavailable

log = logging.getLogger(__name__)

END = object()  # the last item of every turn's event stream


def run_turn(
    bot: Chatbot,
    gate: Gate,
    kwargs: dict[str, Any],
    cancel: threading.Event,
    put: Callable[[Any], None],
    gone: threading.Event | None = None,
) -> None:
    """Run one turn (``bot.stream(**kwargs)``) in the calling (worker) thread. The slot is released
    here exactly once: on the ``GENERATED`` marker, or at the end whatever happens. ``gone``
    (default: ``cancel``) set means nobody listens: the turn is closed (and recorded as cancelled)."""
    gone = gone or cancel
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            gate.release()

    try:
        gen = cast(Generator[Any, None, None], bot.stream(**kwargs, cancel=cancel))
        try:
            for ev in gen:
                if ev is GENERATED:
                    release()
                    continue
                put(ev)
                if gone.is_set():
                    break
        finally:
            gen.close()
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer
        put(exc)
    finally:
        release()
        put(END)


def turn_error(exc: BaseException, settings: ServeSettings) -> ApiError:
    """What a turn's failure is on the wire: 400 rejected input, 404 not your conversation,
    503 + ``Retry-After`` for a dependency that is down (``Unavailable``), else 500."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputRejected):
        return ApiError(400, str(exc), code="input_rejected")
    if isinstance(exc, ConversationNotFound):
        return ApiError(404, "no such conversation", code="conversation_not_found")
    if isinstance(exc, Unavailable):
        log.warning("turn failed: %s", exc)
        return ApiError(
            503,
            "the service is temporarily unavailable; please retry shortly",
            code="unavailable",
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    log.error("turn failed", exc_info=exc)
    return ApiError(500, "the turn failed", code="internal_error")


class AsyncTurn:
    """A turn running in a daemon thread, its events bridged into the event loop."""

    def __init__(self, bot: Chatbot, gate: Gate, message: str, opened: OpenConversation, adapter: str | None = None):
        self.cancel = threading.Event()
        self.gone = threading.Event()
        self._kwargs: dict[str, Any] = {"message": message, "opened": opened, "adapter": adapter}
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

        threading.Thread(
            target=run_turn,
            args=(self._bot, self._gate, self._kwargs, self.cancel, put, self.gone),
            name="chatrec-turn",
            daemon=True,
        ).start()

    async def next(self) -> Any:
        """The next TokenEvent / ResultEvent, an exception raised by the turn, or ``END``."""
        if self.finished:
            return END
        item = await self._queue.get()
        if item is END:
            self.finished = True
        return item

    def close(self) -> None:
        self.gone.set()
        self.cancel.set()


def public_result(result: TurnResult, expose_trace: bool = False) -> dict[str, Any]:
    """A turn as clients see it: no trace unless ``expose_trace``, and never the raw generation."""
    data = result.model_dump(mode="json")
    if expose_trace:
        data["trace"].get("generation", {}).pop("raw", None)
    else:
        data["trace"] = {}
    return data


async def until_disconnect(request: Request, aw: Awaitable[Any], on_gone: Callable[[], None]) -> Any:
    """Await ``aw`` unless the client leaves first: then call ``on_gone`` and raise :class:`ClientGone`."""
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
                raise ClientGone()
    except asyncio.CancelledError:
        task.cancel()
        on_gone()
        raise


class Turns:
    """Starts the turns of HTTP requests: a slot from the gate, a worker thread, the first event.

    ``live`` holds the turns still streaming, so that shutdown can cancel them.
    """

    def __init__(self, bot: Chatbot, gate: Gate, settings: ServeSettings, live: set[AsyncTurn]):
        self.bot, self.gate, self.settings, self.live = bot, gate, settings, live

    async def start(
        self,
        request: Request,
        message: str,
        cid: str | None,
        caller: Caller,
        adapter: str | None = None,
        tenant: Tenant | None = None,
    ) -> tuple[AsyncTurn, Any]:
        """Open the conversation (``caller`` must own it), wait for a slot, start the turn, and return
        it with its first event (errors raised as ApiError). ``adapter``: a LoRA adapter by name
        (``llm.adapters``); an unknown name is 400 before anything else. ``tenant``: the shop of the
        request's site key (:mod:`chatrec.serve.tenants`), whose bot, adapter and turn cap serve it."""
        bot = tenant.bot if tenant is not None and tenant.named else self.bot  # default: the app's (BotDep)
        try:
            adapter = tenant.pick_adapter(adapter) if tenant is not None else adapter
            bot.llm_for(adapter)
        except UnknownAdapter as exc:
            raise ApiError(400, str(exc), code="unknown_adapter") from None
        try:
            opened = await run_in_threadpool(bot.open_conversation, cid, caller.user_id, caller.tenant)
        except (ConversationNotFound, Unavailable) as exc:
            raise turn_error(exc, self.settings) from None
        gate: Gate | _TenantGate = self.gate
        if tenant is not None and tenant.max_concurrent is not None:
            tenant.take_slot(self.settings.retry_after_s)
            gate = _TenantGate(self.gate, tenant)
        try:
            await until_disconnect(request, self.gate.acquire(), lambda: None)
        except BaseException as exc:
            if gate is not self.gate:
                tenant.release_slot()  # type: ignore[union-attr]
            if isinstance(exc, Busy):
                raise ApiError(
                    503,
                    "the assistant is busy; please retry shortly",
                    code="overloaded",
                    headers={"Retry-After": str(self.settings.retry_after_s)},
                ) from None
            raise
        turn = AsyncTurn(bot, gate, message, opened, adapter)  # type: ignore[arg-type]
        try:
            turn.start()
        except BaseException:
            gate.release()
            raise
        self.live.add(turn)
        try:
            first = await until_disconnect(request, turn.next(), turn.close)
        except BaseException:
            self.live.discard(turn)
            raise
        if isinstance(first, BaseException):
            self.done(turn)
            raise turn_error(first, self.settings)
        return turn, first

    async def collect(self, request: Request, turn: AsyncTurn, first: Any) -> TurnResult:
        """Wait for the turn's result (the non-streaming responses)."""

        async def run() -> TurnResult:
            ev, result = first, None
            while ev is not END:
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
        except (ClientGone, ApiError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise turn_error(exc, self.settings) from None
        finally:
            self.live.discard(turn)

    def done(self, turn: AsyncTurn) -> None:
        """Cancel the turn if it still runs and forget it (a stream's ``finally``)."""
        turn.close()
        self.live.discard(turn)


class _TenantGate:
    """The app's gate for one turn of a tenant with a turn cap: releasing it frees both places."""

    def __init__(self, gate: Gate, tenant: Tenant):
        self.gate, self.tenant = gate, tenant

    def release(self) -> None:
        try:
            self.gate.release()
        finally:
            self.tenant.release_slot()


class GatedBot:
    """The bot as the Gradio UI sees it: ``stream`` takes a slot from the gate and runs in a worker thread."""

    def __init__(self, bot: Chatbot, gate: Gate, wait_s: float = 300):
        self._bot, self._gate, self._wait_s = bot, gate, wait_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bot, name)

    def stream(
        self,
        message: str,
        conversation_id: str | None = None,
        user_id: str | None = None,
        cancel: threading.Event | None = None,
        ablate: Iterable[str] = (),
        *,
        tenant: int | None = None,
    ) -> Iterator[TokenEvent | ResultEvent]:
        opened = self._bot.open_conversation(conversation_id, user_id, tenant)  # the store, before a slot
        try:
            self._gate.acquire_blocking(self._wait_s)
        except Busy:
            raise InputRejected("the assistant is busy; please try again in a few seconds") from None
        cancel, gone = cancel or threading.Event(), threading.Event()
        q: queue_mod.Queue = queue_mod.Queue()
        kwargs = {"message": message, "opened": opened, "ablate": tuple(ablate)}
        threading.Thread(
            target=run_turn,
            args=(self._bot, self._gate, kwargs, cancel, q.put, gone),
            name="chatrec-ui-turn",
            daemon=True,
        ).start()
        try:
            while (item := q.get()) is not END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            gone.set()
            cancel.set()

    def ask(
        self, message: str, conversation_id: str | None = None, user_id: str | None = None, ablate: Iterable[str] = ()
    ) -> TurnResult:
        return final_result(self.stream(message, conversation_id, user_id, ablate=ablate))
