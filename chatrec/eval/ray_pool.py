"""Batch evaluation on Ray (``chatrec eval --ray local|ADDRESS``, the optional ``ray`` extra).

The same per-conversation work as the local worker pool (:func:`chatrec.eval.runner._work`
on a :class:`~chatrec.eval.replay.Replayer` built by ``_init_worker`` from the same
settings, options, exclusions and fitted ranker), run by ``workers`` Ray actors of one CPU
each instead of ``multiprocessing`` processes. Results come back to this process, which
writes the run's files as the local pool does, so the summary (computed from those files)
and the per-turn rows are the same; only the order of rows in the files may differ.

``local`` starts a CPU-only Ray instance in this process (``num_cpus=workers``, no
dashboard) and stops it at the end; an address (``ray://host:10001`` or ``auto``)
joins a running cluster, whose nodes need chatrec installed and the KB, the index
folder and any fitted ranker at the same paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from chatrec.eval.options import EvalOptions
from chatrec.extras import require

OBJECT_STORE_BYTES = 256 * 1024**2  # a local instance: results are small JSON-able dicts
WINDOW = 64  # conversations in flight per actor (as the local pool's window)


class _Replayer:
    """One Ray actor: a replay worker, built once, then one conversation per call."""

    def __init__(self, settings_json: str, opts: EvalOptions, exclude: frozenset[str], fitted_path: str | None):
        from chatrec.eval.runner import _init_worker

        _init_worker(settings_json, opts, exclude, fitted_path)

    def work(self, job: tuple[int, int, str]) -> tuple[int, int, dict | None, str | None]:
        from chatrec.eval.runner import _work

        return _work(job)


def replay_on_ray(
    address: str,
    workers: int,
    init_args: tuple[str, EvalOptions, frozenset[str], str | None],
    jobs: Iterator[tuple[int, int, str]],
    write: Callable[[int, int, dict | None, str | None], None],
) -> None:
    """Run every job on ``workers`` actors and pass each result to ``write`` as it arrives."""
    ray = require("ray", purpose="chatrec eval --ray")
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address == "local":
            ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, **kw)
        else:
            ray.init(address=address, **kw)
    actor = ray.remote(num_cpus=1)(_Replayer)
    actors = [actor.remote(*init_args) for _ in range(workers)]
    try:
        pool = ActorPool(actors)
        window: list[tuple[int, int, str]] = []
        while (nxt := next(jobs, None)) is not None or window:
            if nxt is not None:
                window.append(nxt)
            if len(window) == WINDOW * workers or (nxt is None and window):
                for order, ln, res, err in pool.map_unordered(lambda a, job: a.work.remote(job), window):
                    write(order, ln, res, err)
                window = []
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()
