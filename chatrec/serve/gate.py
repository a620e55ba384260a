"""The bounded queue in front of the model.

The model is CPU-bound, so every turn (API and UI) passes one :class:`Gate`: at most
``max_concurrent`` turns run (by default the engine's slots, :func:`engine_slots`: llama.cpp
batches its slots' turns, the NF4 engine decodes its slots' generations in one batch), each in
its own worker thread (:mod:`chatrec.serve.turns`),
at most ``max_queue`` wait, and anything beyond is refused (:class:`Busy`, sent as 503 +
``Retry-After``). The worker thread, not the HTTP request, gives the slot back when the
turn ends, so a client that vanishes can never leak a slot; a vanished client sets the
turn's ``cancel`` event, which stops generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque


def engine_slots(llm: object, configured: int | None = None) -> int:
    """Turns that generate at once: ``serve.max_concurrent`` when set, else the engine's own
    parallel slots (``llm.slots``, or the backend's measured default; an engine without slots: 1)."""
    if configured:
        return configured
    slots = getattr(llm, "slots", 1)
    return slots if isinstance(slots, int) and slots >= 1 else 1


class Busy(Exception):
    """No free slot and the wait queue is full."""


class _Waiter:
    __slots__ = ("loop", "future", "event", "granted", "abandoned")

    def __init__(self, loop: asyncio.AbstractEventLoop | None):
        self.loop = loop
        self.future = loop.create_future() if loop else None
        self.event = None if loop else threading.Event()
        self.granted = False
        self.abandoned = False


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Gate:
    """A bounded queue in front of the model: ``max_concurrent`` slots, ``max_queue`` waiters.

    Thread-safe and not bound to one event loop: async requests and the Gradio UI's
    worker threads wait in the same FIFO. A slot is handed directly to the next
    waiter on release, so nobody can overtake the queue.
    """

    def __init__(self, max_concurrent: int = 1, max_queue: int = 8):
        self.max_concurrent, self.max_queue = max_concurrent, max_queue
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self.running = 0

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _enter(self, loop: asyncio.AbstractEventLoop | None) -> _Waiter | None:
        with self._lock:
            if self.running < self.max_concurrent and not self._waiters:
                self.running += 1
                return None
            if len(self._waiters) >= self.max_queue:
                raise Busy()
            w = _Waiter(loop)
            self._waiters.append(w)
            return w

    def _abandon(self, w: _Waiter) -> bool:
        """Leave the queue; True if a slot had already been handed over (the caller must release it)."""
        with self._lock:
            if w.granted:
                return True
            w.abandoned = True
            with contextlib.suppress(ValueError):
                self._waiters.remove(w)
            return False

    async def acquire(self) -> None:
        w = self._enter(asyncio.get_running_loop())
        if w is None:
            return
        assert w.future is not None  # an async waiter has a future
        try:
            await w.future
        except BaseException:
            if self._abandon(w):
                self.release()
            raise

    def acquire_blocking(self, timeout: float | None = None) -> None:
        w = self._enter(None)
        if w is None:
            return
        assert w.event is not None  # a blocking waiter has an event
        if not w.event.wait(timeout) and not self._abandon(w):
            raise Busy()

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                w = self._waiters.popleft()
                if w.abandoned:
                    continue
                w.granted = True
                if w.event is not None:
                    w.event.set()
                    return
                assert w.loop is not None and w.future is not None
                try:
                    w.loop.call_soon_threadsafe(_resolve, w.future)
                    return
                except RuntimeError:  # its event loop is gone
                    w.granted, w.abandoned = False, True
            self.running -= 1
