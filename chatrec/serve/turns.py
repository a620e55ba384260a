"""The turn bridge: a turn runs in a worker thread behind the :class:`~chatrec.serve.gate.Gate`,
and its events reach the request (:class:`AsyncTurn`, :class:`Turns`) or the Gradio UI
(:class:`GatedBot`).

The worker thread releases the slot when the turn ends, whatever happens, so a request
that is cancelled or a client that disconnects never leaks one; closing a turn sets its
``cancel`` event, which stops generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue as queue_mod
import threading
from typing import Any, Awaitable, Callable, Generator, Iterable, Iterator, cast

from fastapi import Request

from chatrec.chatbot import Chatbot, InputRejected, ResultEvent, TokenEvent, final_result
from chatrec.config import ServeSettings
from chatrec.serve.errors import ApiError, ClientGone
from chatrec.serve.gate import Busy, Gate
from chatrec.types import TurnResult

log = logging.getLogger(__name__)

END = object()  # the last item of every turn's event stream


def run_turn(
    bot: Chatbot,
    gate: Gate,
    args: tuple[str, str | None, str | None],
    cancel: threading.Event,
    put: Callable[[Any], None],
    ablate: Iterable[str] = (),
) -> None:
    """Run one turn in the calling (worker) thread; the slot is released here, whatever happens."""
    try:
        gen = cast(Generator[Any, None, None], bot.stream(*args, cancel=cancel, ablate=ablate))
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
        put(END)


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

        threading.Thread(
            target=run_turn,
            args=(self._bot, self._gate, self._args, self.cancel, put),
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

    async def start(self, request: Request, message: str, cid: str | None, uid: str | None) -> tuple[AsyncTurn, Any]:
        """Wait for a slot, start the turn, and return it with its first event (errors raised as ApiError)."""
        try:
            await until_disconnect(request, self.gate.acquire(), lambda: None)
        except Busy:
            raise ApiError(
                503,
                "the assistant is busy; please retry shortly",
                code="overloaded",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        turn = AsyncTurn(self.bot, self.gate, message, cid, uid if self.settings.accept_user_id else None)
        try:
            turn.start()
        except BaseException:
            self.gate.release()
            raise
        self.live.add(turn)
        try:
            first = await until_disconnect(request, turn.next(), turn.close)
        except BaseException:
            self.live.discard(turn)
            raise
        if isinstance(first, BaseException):
            self.done(turn)
            if isinstance(first, InputRejected):
                raise ApiError(400, str(first), code="input_rejected")
            log.error("turn failed", exc_info=first)
            raise ApiError(500, "the turn failed", code="internal_error")
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
            log.error("turn failed", exc_info=exc)
            raise ApiError(500, "the turn failed", code="internal_error") from None
        finally:
            self.live.discard(turn)

    def done(self, turn: AsyncTurn) -> None:
        """Cancel the turn if it still runs and forget it (a stream's ``finally``)."""
        turn.close()
        self.live.discard(turn)


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
    ) -> Iterator[TokenEvent | ResultEvent]:
        try:
            self._gate.acquire_blocking(self._wait_s)
        except Busy:
            raise InputRejected("the assistant is busy; please try again in a few seconds") from None
        cancel = cancel or threading.Event()
        q: queue_mod.Queue = queue_mod.Queue()
        threading.Thread(
            target=run_turn,
            args=(self._bot, self._gate, (message, conversation_id, user_id), cancel, q.put, tuple(ablate)),
            name="chatrec-ui-turn",
            daemon=True,
        ).start()
        try:
            while (item := q.get()) is not END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def ask(
        self, message: str, conversation_id: str | None = None, user_id: str | None = None, ablate: Iterable[str] = ()
    ) -> TurnResult:
        return final_result(self.stream(message, conversation_id, user_id, ablate=ablate))
