"""A remote engine: any OpenAI-compatible chat server (vLLM, llama.cpp's server, TGI) over HTTP.

- **Adapters per request.** ``llm.adapters`` maps an adapter name to the engine's model name
  for it (vLLM ``--enable-lora --lora-modules shop1=/adapters/shop1`` serves model ``shop1``);
  :meth:`OpenAICompatibleLLM.with_adapter` gives a view
  whose requests name that model. ``llm.model`` is the model name of requests without one.
  llama.cpp's server (``llama-server --lora A.gguf --lora B.gguf --lora-init-without-apply``)
  does not select adapters by model name but by its per-request ``lora`` field: an adapter
  mapped to ``lora:N`` (N = the adapter's index in the server's ``--lora`` order) sends
  ``llm.model`` with ``lora`` = scale 1 for N and 0 for every other mapped index, and once any
  adapter is mapped so, a request without an adapter sends them all at 0 (the base model).
- **Timeouts.** ``llm.connect_timeout_s`` to connect, ``llm.read_timeout_s`` between bytes (a
  hung engine fails after it, mid-stream too).
- **Retries.** A connect error, timeout, 5xx or 429 is retried ``llm.retries`` times with
  exponential backoff and jitter (``llm.backoff_s``; a 429/503 ``Retry-After`` is honoured up
  to 8 s); another 4xx is the request's fault and is not retried (:class:`RemoteError`).
  A stream is retried only before its first byte: text already shown is never repeated.
- **Circuit breaker** (:mod:`chatrec.llm.breaker`): ``llm.breaker_failures`` consecutive failed
  requests open it for ``llm.breaker_open_s`` seconds; meanwhile requests fail at once with
  :class:`~chatrec.llm.breaker.EngineUnavailable`, then one probe decides. The chatbot answers
  a turn whose engine is unavailable with the grounded template and item list (the trace
  says ``engine_unavailable``), never with an error.
- **Scoring.** :meth:`~OpenAICompatibleLLM.score_choices` (the ranker's Yes/No score) asks for
  one token with ``logprobs``/``top_logprobs`` (vLLM, llama.cpp's server and TGI return
  them); an engine that returns none raises ``ScoringUnsupported`` and the ranker skips the
  LLM score (trace ``rank.llm``). :meth:`~OpenAICompatibleLLM.score` (log-likelihood of a
  given continuation) needs prompt log-probabilities, which chat completions do not return:
  local backends only.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

from chatrec.llm.base import Message, ScoringUnsupported, UnknownAdapter
from chatrec.llm.breaker import CircuitBreaker, EngineUnavailable, backoff_delay

log = logging.getLogger(__name__)

__all__ = ["EngineUnavailable", "OpenAICompatibleLLM", "RemoteError"]

TOP_LOGPROBS = 20  # the most the OpenAI API allows; a choice outside them gets the smallest one seen
MAX_RETRY_AFTER_S = 8.0
LORA_PREFIX = "lora:"  # llm.adapters value naming an adapter of llama.cpp's server by index (its lora field)


class RemoteError(RuntimeError):
    """The engine refused the request (a 4xx other than 429): not retried, not a breaker failure."""


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class OpenAICompatibleLLM:
    """An ``LLMBackend`` on an OpenAI-compatible ``/v1/chat/completions`` endpoint (``base_url``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        temperature: float = 0.0,
        *,
        adapters: dict[str, str] | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.25,
        breaker_failures: int = 5,
        breaker_open_s: float = 30.0,
    ):
        import httpx

        self.name = f"openai:{model}"
        self.base_url, self.model, self.temperature = base_url.rstrip("/"), model, temperature
        self.adapters = dict(adapters or {})  # adapter name -> the engine's model name for it, or lora:N
        self._lora_ids = sorted({i for v in self.adapters.values() if (i := _lora_id(v)) is not None})
        self.retries, self.backoff_s = retries, backoff_s
        self.breaker = CircuitBreaker(breaker_failures, breaker_open_s)
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
        )
        self._logprobs: bool | None = None  # False once the engine answered a scoring request without them

    def with_adapter(self, name: str | None) -> OpenAICompatibleLLM | _WithModel:
        """This engine with requests naming the adapter's model (``llm.adapters``); ``None``: as is."""
        if name is None:
            return self
        if name not in self.adapters:
            raise UnknownAdapter(f"unknown adapter {name!r}; configured: {', '.join(self.adapters) or 'none'}")
        return _WithModel(self, name, self.adapters[name])

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ HTTP

    def _open(self, body: dict[str, Any], stream: bool):
        """POST ``body`` to ``/chat/completions`` with the breaker, retries and backoff; the
        response (2xx, open: the caller closes it). :class:`EngineUnavailable` when every
        attempt failed or the breaker is open; :class:`RemoteError` for a 4xx other than 429."""
        import httpx

        last, wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait)
            self.breaker.before()
            wait = backoff_delay(attempt, self.backoff_s)
            try:
                resp = self._client.send(
                    self._client.build_request("POST", "/chat/completions", json=body), stream=stream
                )
            except httpx.TransportError as exc:  # refused, reset, connect or read timeout
                self.breaker.failure()
                last = f"{type(exc).__name__}: {exc}".rstrip(": ")
                log.warning("engine %s attempt %d: %s", self.base_url, attempt + 1, last)
                continue
            except Exception:  # not the engine's fault, but a half-open probe must not stay in flight
                self.breaker.failure()
                raise
            if _retryable(resp.status_code):
                detail = _error_text(resp)
                self.breaker.failure()
                last = f"HTTP {resp.status_code}: {detail}"
                after = resp.headers.get("retry-after", "")
                if after.replace(".", "", 1).isdigit():
                    wait = max(wait, min(float(after), MAX_RETRY_AFTER_S))
                log.warning("engine %s attempt %d: %s", self.base_url, attempt + 1, last)
                continue
            self.breaker.success()  # the engine answered
            if resp.status_code >= 400:
                raise RemoteError(f"the engine refused the request: HTTP {resp.status_code}: {_error_text(resp)}")
            return resp
        raise EngineUnavailable(f"engine {self.base_url} failed {self.retries + 1} attempt(s); last: {last}")

    def _body(self, messages: list[Message], model: str | None, max_tokens: int, **extra: Any) -> dict[str, Any]:
        body = {
            "model": model or self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            **extra,
        }
        if self._lora_ids:  # llama.cpp's server: every mapped adapter's scale for this request
            picked = _lora_id(model) if model else None
            if picked is not None:
                body["model"] = self.model
            body["lora"] = [{"id": i, "scale": float(i == picked)} for i in self._lora_ids]
        return body

    # ------------------------------------------------------------ LLMBackend

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        cancel: threading.Event | None = None,
        *,
        model: str | None = None,
    ) -> Iterator[str]:
        import httpx

        resp = self._open(self._body(messages, model, max_new_tokens, stream=True), stream=True)
        try:
            for line in resp.iter_lines():
                if cancel is not None and cancel.is_set():
                    return  # closing the connection stops the engine's generation
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise EngineUnavailable(f"the engine failed mid-reply: {chunk['error']}")
                for choice in chunk.get("choices") or []:
                    if text := (choice.get("delta") or {}).get("content"):
                        if cancel is not None and cancel.is_set():
                            return
                        yield str(text)
        except httpx.TransportError as exc:  # the engine hung (read timeout) or went away mid-reply
            self.breaker.failure()
            raise EngineUnavailable(f"the engine stopped mid-reply: {type(exc).__name__}: {exc}") from exc
        finally:
            resp.close()

    def generate(self, messages: list[Message], max_new_tokens: int, *, model: str | None = None) -> str:
        resp = self._open(self._body(messages, model, max_new_tokens), stream=False)
        try:
            return str(resp.json()["choices"][0]["message"].get("content") or "")
        finally:
            resp.close()

    def score(self, prompts: list[list[Message]], continuation: str, *, model: str | None = None) -> list[float]:
        raise ScoringUnsupported(
            "chat-completions servers do not return prompt log-likelihoods: score() is local-only "
            "(transformers, llamacpp backends)"
        )

    def score_choices(
        self, prompts: list[list[Message]], choices: list[str], *, model: str | None = None
    ) -> list[list[float]]:
        """Each choice's log-probability as the reply's first token, from the engine's
        ``top_logprobs`` of a one-token reply (requests sent concurrently; the engine batches
        them). The remote tokenizer is unknown, so a choice takes the best top token that is a
        non-empty prefix of it (``"Yes"`` for ``"Yes"``); a choice outside the top 20 gets the
        smallest of them (its true value is at most that). ``ScoringUnsupported`` when the
        engine returns no logprobs, refuses them, or is unavailable (the ranker then skips)."""
        if self._logprobs is False:
            raise ScoringUnsupported(f"engine {self.base_url} returns no logprobs")
        if not prompts:
            return []
        try:
            with ThreadPoolExecutor(max_workers=min(8, len(prompts))) as pool:
                return list(pool.map(lambda p: self._first_token(p, choices, model), prompts))
        except EngineUnavailable as exc:
            raise ScoringUnsupported(f"engine unavailable: {exc}") from exc
        except RemoteError as exc:
            self._logprobs = False
            raise ScoringUnsupported(f"the engine refused a logprobs request: {exc}") from exc

    def _first_token(self, messages: list[Message], choices: list[str], model: str | None) -> list[float]:
        # cache_prompt: llama.cpp's server reuses a cached prompt prefix, which moves its logprobs by up to
        # ~0.1 (the same prompt scored twice differs); off, scores are deterministic. vLLM ignores the field.
        body = self._body(messages, model, 1, logprobs=True, top_logprobs=TOP_LOGPROBS, cache_prompt=False)
        body["temperature"] = 0.0
        resp = self._open(body, stream=False)
        try:
            choice = resp.json()["choices"][0]
        finally:
            resp.close()
        content = (choice.get("logprobs") or {}).get("content") or []
        top = (
            [(str(t["token"]), float(t["logprob"])) for t in (content[0].get("top_logprobs") or [])] if content else []
        )
        if not top:
            self._logprobs = False
            raise ScoringUnsupported(f"engine {self.base_url} returned no top_logprobs")
        floor = min(lp for _, lp in top)
        out = []
        for c in choices:
            hits = [lp for tok, lp in top if tok.strip() and c.startswith(tok.strip())]
            out.append(min(0.0, max(hits) if hits else floor))
        return [x if math.isfinite(x) else floor for x in out]

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # the engine's tokenizer is remote: an estimate


class _WithModel:
    """An :class:`OpenAICompatibleLLM` whose requests name one adapter's model (an ``LLMBackend``)."""

    def __init__(self, engine: OpenAICompatibleLLM, adapter: str, model: str):
        self.engine, self.adapter, self.model = engine, adapter, model
        self.name = f"{engine.name}@{adapter}"

    def stream(
        self, messages: list[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        return self.engine.stream(messages, max_new_tokens, cancel, model=self.model)

    def generate(self, messages: list[Message], max_new_tokens: int) -> str:
        return self.engine.generate(messages, max_new_tokens, model=self.model)

    def score(self, prompts: list[list[Message]], continuation: str) -> list[float]:
        return self.engine.score(prompts, continuation, model=self.model)

    def score_choices(self, prompts: list[list[Message]], choices: list[str]) -> list[list[float]]:
        return self.engine.score_choices(prompts, choices, model=self.model)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)


def _lora_id(value: str) -> int | None:
    """``"lora:2"`` -> 2 (an adapter of llama.cpp's server by index); another model name -> None."""
    if not value.startswith(LORA_PREFIX):
        return None
    index = value[len(LORA_PREFIX) :]
    if not index.isdigit():
        raise ValueError(f"llm.adapters: {value!r} is not lora:N (N = the adapter's index on llama.cpp's server)")
    return int(index)


def _error_text(resp) -> str:
    """The first 200 characters of an error response's body (read and closed here)."""
    try:
        resp.read()
        return resp.text[:200].strip()
    except Exception:  # a body that cannot be read says nothing more
        return ""
    finally:
        resp.close()
