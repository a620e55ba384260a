"""Continuous batching for the transformers backend: concurrent generations decode together.

On 2 CPU cores one NF4 decode step of SmolLM2-135M costs about 31 ms for one sequence and
80 ms for eight (``benchmarks/bench_batching.py``): the 4-bit weights are unpacked once per
step whatever the batch, so eight conversations decode about three times faster together
than one after another. :class:`DecodeBatcher` owns the model in one scheduler thread:

- a new request is *prefilled* on its own (reading only the prompt tokens after the longest
  prefix the :class:`~chatrec.llm.transformers_backend.PrefixCache` holds; reading a prompt is
  compute-bound, so batching it gains nothing) and gives its first token;
- then it joins the running batch: every row's keys and values are left-padded to the longest
  row and masked out, and each row's position ids count only its own tokens, so a row
  decodes exactly as it would alone;
- every step decodes one token for each row; a row that ends (end of sequence, its
  ``max_new_tokens``, or its cancel event) leaves the batch, and its own tokens' cache goes to
  the prefix cache, so the conversation's next turn reads only its new tokens.

Up to ``slots`` rows decode at once (``llm.slots``); further requests wait for a free row.
The scheduler takes the backend's model lock for each prefill and each step, so scoring
(the LLM ranker) interleaves between steps. Tokens are chosen as ``generate`` chooses them
(repetition penalty over prompt and reply, greedy or sampled), so a request's reply is the same
alone or in a batch up to float rounding. Models whose cache is not one plain growing
tensor per layer (sliding-window attention) decode one request at a time. Rows may use different LoRA adapters
(``llm.adapters``): each forward pass names every row's adapter (peft's mixed-batch LoRA), and each
adapter has its own prefix cache.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

REPETITION_PENALTY = 1.15


@dataclass(eq=False)
class Request:
    """One generation: its prompt ids, limits and where its tokens go."""

    ids: list[int]
    max_new_tokens: int
    cancel: threading.Event
    streamer: Any  # transformers' TextIteratorStreamer (put / end)
    usage: dict = field(default_factory=dict)
    generated: list[int] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    adapter: str | None = None  # a named adapter (llm.adapters); None: llm.adapter or the base
    cache: Any = None  # the row's own cache while it decodes alone
    length: int = 0  # tokens in the row's cache (prompt + generated tokens fed so far)


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _plain(cache) -> bool:
    """Whether every layer is one growing ``[batch, heads, tokens, dim]`` tensor pair."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


class DecodeBatcher:
    """The scheduler thread that runs every generation of one model (see the module doc)."""

    def __init__(self, llm, slots: int):
        self.llm = llm
        self.slots = max(1, slots)
        self._cond = threading.Condition()
        self._pending: deque[Request] = deque()
        self._rows: list[Request] = []
        self._batch: Any = None  # the batched cache of self._rows (None: rebuild before the next step)
        self._pads: list[int] = []  # left padding of each row in self._batch
        self._thread: threading.Thread | None = None
        self.max_rows_seen = 0  # the most rows one step decoded (for tests and stats)
        self.submitted = 0  # requests submitted so far
        gen = llm.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else llm.tokenizer.eos_token_id
        self._eos: set[Any] = set(eos) if isinstance(eos, list) else {eos}

    # -- the caller's side ------------------------------------------------------------------

    def submit(self, request: Request) -> Request:
        with self._cond:
            self._pending.append(request)
            self.submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="chatrec-decode", daemon=True)
                self._thread.start()
            self._cond.notify()
        return request

    # -- the scheduler thread ---------------------------------------------------------------

    def _loop(self) -> None:
        import torch

        while True:
            with self._cond:
                while not self._pending and not self._rows:
                    self._cond.wait()
                joining: list[Request] = []
                while self._pending and len(self._rows) + len(joining) < self.slots:
                    joining.append(self._pending.popleft())
            with self.llm._lock, torch.inference_mode():
                for request in joining:
                    self._guard(self._prefill, request)
                if self._rows:
                    self._guard(self._step)

    def _guard(self, fn, *args) -> None:
        """Run ``fn``; an error ends the request being prefilled, or every decoding row (each
        consumer re-raises it)."""
        try:
            fn(*args)
        except BaseException as exc:  # delivered to the consumers
            log.exception("generation failed")
            failed = list(args) if args else list(self._rows)
            if not args:
                self._rows, self._batch, self._pads = [], None, []
            for r in failed:
                r.error = exc
                self._finish(r, store=False)

    def _prefill(self, r: Request) -> None:
        import torch
        from transformers import DynamicCache

        if r.cancel.is_set():
            return self._finish(r, store=False)
        llm = self.llm
        store = llm.prefix_cache_for(r.adapter)
        cached, cache = store.lookup(r.ids) if store.capacity > 0 else (0, None)
        r.usage.update(prompt_tokens=len(r.ids), prompt_read=len(r.ids) - cached, prompt_cached=cached)
        r.streamer.put(torch.tensor([r.ids]))  # the streamer skips the prompt
        cache = cache if cache is not None else DynamicCache(config=llm.model.config)
        out = llm.model(
            input_ids=torch.tensor([r.ids[cached:]]),
            use_cache=True,
            logits_to_keep=1,
            **{llm._cache_arg: cache},
            **llm.adapter_kwargs([r.adapter]),
        )
        r.cache, r.length = _cache_of(out), len(r.ids)
        if self.slots > 1 and not _plain(r.cache):
            log.warning("%s keeps no plain per-layer cache: its generations decode one at a time", llm.name)
            self.slots = 1
        if self._emit(r, out.logits[:, -1]):
            self._rows.append(r)  # merged into the batch at the next step
        else:
            self._finish(r, store=True)

    def _step(self) -> None:
        import torch

        for r in [r for r in self._rows if r.cancel.is_set()]:
            self._leave(r)
        if not self._rows:
            return
        self.max_rows_seen = max(self.max_rows_seen, len(self._rows))
        llm = self.llm
        last = torch.tensor([[r.generated[-1]] for r in self._rows])
        if len(self._rows) == 1:  # alone: the row's own cache, no padding
            r = self._rows[0]
            out = llm.model(
                input_ids=last,
                use_cache=True,
                logits_to_keep=1,
                **{llm._cache_arg: r.cache},
                **llm.adapter_kwargs([r.adapter]),
            )
            r.cache, r.length = _cache_of(out), r.length + 1
        else:
            if any(r.cache is not None for r in self._rows):
                self._merge()
            width = self._batch.get_seq_length()
            mask = torch.ones((len(self._rows), width + 1), dtype=torch.long)
            for i, pad in enumerate(self._pads):
                mask[i, :pad] = 0
            positions = torch.tensor([[r.length] for r in self._rows])
            out = llm.model(
                input_ids=last,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{llm._cache_arg: self._batch},
                **llm.adapter_kwargs([r.adapter for r in self._rows]),
            )
            self._batch = _cache_of(out)
            for r in self._rows:
                r.length += 1
        logits = out.logits[:, -1]
        for i, r in enumerate(list(self._rows)):
            if not self._emit(r, logits[i : i + 1]):
                self._leave(r)

    def _emit(self, r: Request, logits) -> bool:
        """Choose and stream the row's next token; whether the row goes on."""
        import torch

        token = self._choose(r, logits)
        r.generated.append(token)
        r.streamer.put(torch.tensor([token]))
        return not (token in self._eos or len(r.generated) >= r.max_new_tokens or r.cancel.is_set())

    def _choose(self, r: Request, logits) -> int:
        import torch

        ids = torch.tensor([r.ids + r.generated])
        scores = self.llm._processors(ids, logits.float())
        if self.llm.settings.temperature > 0:
            return int(torch.multinomial(torch.softmax(scores, dim=-1), 1)[0, 0])
        return int(scores.argmax(dim=-1)[0])

    # -- the batch's cache ------------------------------------------------------------------

    def _merge(self) -> None:
        """One cache for all rows: the rows that joined since the last step (each with its own
        cache) are appended to the batch, every row's keys and values left-padded to the longest.
        Rows in the batch come first in ``self._rows``, in batch order; joined rows follow."""
        import torch
        from transformers import DynamicCache

        pad = torch.nn.functional.pad
        own = [r for r in self._rows if r.cache is not None]
        old = self._batch.get_seq_length() if self._batch is not None else 0
        width = max([old] + [r.length for r in own])
        shift = width - old
        layers = []
        for k in range(len(own[0].cache.layers)):
            keys, values = [], []
            if self._batch is not None:
                keys.append(pad(self._batch.layers[k].keys, (0, 0, shift, 0)))
                values.append(pad(self._batch.layers[k].values, (0, 0, shift, 0)))
            for r in own:
                keys.append(pad(r.cache.layers[k].keys, (0, 0, width - r.length, 0)))
                values.append(pad(r.cache.layers[k].values, (0, 0, width - r.length, 0)))
            layers.append((torch.cat(keys), torch.cat(values)))
        self._pads = [p + shift for p in self._pads] + [width - r.length for r in own]
        self._batch = DynamicCache(ddp_cache_data=layers)
        for r in own:
            r.cache = None  # the batch holds the row now

    def _split(self, i: int):
        """Row ``i``'s own cache (its tokens only, padding dropped), taken out of the batch."""
        from transformers import DynamicCache

        pad = self._pads[i]
        layers = [
            (layer.keys[i : i + 1, :, pad:].clone(), layer.values[i : i + 1, :, pad:].clone())
            for layer in self._batch.layers
        ]
        return DynamicCache(ddp_cache_data=layers)

    def _leave(self, r: Request) -> None:
        """Take a finished or cancelled row out of the batch and finish it."""
        import torch

        i = self._rows.index(r)
        if r.cache is None:  # in the batch: cut the row out, drop the padding all others have
            r.cache = self._split(i)
            keep = torch.tensor([j for j in range(len(self._pads)) if j != i], dtype=torch.long)
            pads = [p for j, p in enumerate(self._pads) if j != i]
            trim = min(pads) if pads else 0
            for layer in self._batch.layers:
                layer.keys = layer.keys[keep, :, trim:]
                layer.values = layer.values[keep, :, trim:]
            self._pads = [p - trim for p in pads]
        del self._rows[i]
        if not self._pads:
            self._batch = None
        elif len(self._rows) == 1:  # alone again: back to its own cache
            self._rows[0].cache, self._batch, self._pads = self._split(0), None, []
        self._finish(r, store=True)

    def _finish(self, r: Request, store: bool) -> None:
        """Store the row's cache (every token but the last generated one) and end its stream."""
        try:
            cache = self.llm.prefix_cache_for(r.adapter)
            if store and r.cache is not None and cache.capacity > 0:
                cache.store((r.ids + r.generated)[: r.length], r.cache)
        finally:
            r.cache = None
            r.streamer.end()
            r.done.set()
