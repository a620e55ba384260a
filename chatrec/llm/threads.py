"""How many threads torch uses, decided in one place for every workload of a process.

The rule (docs/engines.md, "Threads"): torch gets ``max(1, cores // 2)`` intra-op threads,
so 1 on the 2-core machine chatrec is measured on, whatever the workload (chat, serving,
the LLM ranker, training, evaluation, benchmarks) and whichever thread it runs on. The
setting ``torch_threads`` (``CHATREC_TORCH_THREADS``) overrides it; so do ``llm.threads``
for the transformers backend (which has always meant torch's threads there) and, below
both, an ``OMP_NUM_THREADS`` the environment already sets (the test suite pins 1).

Why: torch's own default is one thread per core. With 2 threads on 2 shared cores, each
parallel region waits at a barrier for the thread that lost its core, so as soon as any
other process (or the server's own work) runs, a step gets several times slower; with 1
thread it only gets its fair share slower (``benchmarks/bench_threads.py``,
``benchmarks/results/threads.md``). ``torch.set_num_threads`` is process-wide: it holds for
threads started later too (the transformers backend generates on a worker thread), so
calling it once at start-up, before any torch work, is enough.

Every entry point calls :func:`configure_threads`: the ``chatrec`` commands (through
``chatrec.cli.context.settings_from``), ``Chatbot`` and ``build_planner`` (so the Gradio app,
library use and the benchmarks that build a chatbot are covered), ``chatrec.train.sft.train``,
and the other benchmark scripts; evaluation worker processes inherit ``OMP_NUM_THREADS``.
llama.cpp's own threads are ``llm.threads`` of the llamacpp backend (docs/engines.md), not
this rule.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from chatrec.config import Settings

log = logging.getLogger(__name__)

Workload = Literal["chat", "serve", "train", "eval", "index", "bench", "other"]


def rule_threads(cores: int | None = None) -> int:
    """The measured rule: half the cores, at least 1 (1 on 2 cores)."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, cores // 2)


def torch_threads(settings: Settings | None = None) -> tuple[int, str]:
    """The torch thread count and where it comes from: the setting ``torch_threads``, then
    ``llm.threads`` (transformers backend), then ``OMP_NUM_THREADS`` when set, then the rule."""
    if settings is not None:
        if settings.torch_threads:
            return settings.torch_threads, "torch_threads"
        if settings.llm.backend == "transformers" and settings.llm.threads:
            return settings.llm.threads, "llm.threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env), "OMP_NUM_THREADS"
    return rule_threads(), f"the rule, max(1, {os.cpu_count()} cores // 2)"


def configure_threads(workload: Workload, settings: Settings | None = None) -> int:
    """Set torch's intra-op threads for this process by the rule (or the setting); return the count.

    Also sets ``OMP_NUM_THREADS``, which torch reads when it is first imported and which
    child processes (evaluation workers) inherit; so a command that never imports torch
    does not pay for importing it here. Cheap and idempotent."""
    n, source = torch_threads(settings)
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    log.info("%s: torch uses %d thread(s) (%s)", workload, n, source)
    return n
