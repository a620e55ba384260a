"""The LLM contract every backend (local, remote, scripted) implements."""

from __future__ import annotations

import threading
from typing import Iterator, Protocol, TypedDict, runtime_checkable


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class ScoringUnsupported(RuntimeError):
    """The backend cannot return token log-likelihoods (e.g. a chat-only remote API)."""


class UnknownAdapter(ValueError):
    """A request named a LoRA adapter the engine has not loaded (``llm.adapters``); 400 over HTTP."""


@runtime_checkable
class LLMBackend(Protocol):
    """What the turn uses of a language model. ``tests/contract/test_llm_contract.py`` checks
    every backend (the fake, an OpenAI-compatible server, transformers) against this."""

    name: str

    def stream(
        self, messages: list[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield the reply in non-empty text pieces, at most ``max_new_tokens`` tokens in all.
        Once ``cancel`` is set no further piece is yielded and generation stops; a consumer
        that stops iterating (or closes the iterator) frees the backend for the next call."""
        ...

    def generate(self, messages: list[Message], max_new_tokens: int) -> str:
        """The whole reply; with greedy decoding (temperature 0) deterministic and equal to
        the join of :meth:`stream`'s pieces for the same arguments."""
        ...

    def score(self, prompts: list[list[Message]], continuation: str) -> list[float]:
        """Log-likelihood (<= 0) of ``continuation`` as the assistant's reply to each prompt,
        one float per prompt, in one batch. ``ScoringUnsupported`` where the backend cannot."""
        ...

    def score_choices(self, prompts: list[list[Message]], choices: list[str]) -> list[list[float]]:
        """Log-probability (<= 0) of each choice's first token as the reply's first token, for
        every prompt, from one batched forward pass (e.g. ``["Yes", "No"]``): one list per
        prompt, one float per choice, in order. ``ScoringUnsupported`` where the backend cannot."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` (an estimate where the tokenizer is remote): >= 1 for non-empty
        text and never fewer for a text than for its prefix at a word boundary."""
        ...


class AdapterView:
    """An engine whose requests use one named LoRA adapter (``llm.adapters``): an ``LLMBackend``
    itself, for engines whose calls take an ``adapter`` name (llama.cpp, transformers)."""

    def __init__(self, engine, adapter: str):
        self.engine, self.adapter = engine, adapter
        self.name = f"{engine.name}@{adapter}"

    def stream(
        self, messages: list[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        return self.engine.stream(messages, max_new_tokens, cancel, adapter=self.adapter)

    def generate(self, messages: list[Message], max_new_tokens: int) -> str:
        return self.engine.generate(messages, max_new_tokens, adapter=self.adapter)

    def score(self, prompts: list[list[Message]], continuation: str) -> list[float]:
        return self.engine.score(prompts, continuation, adapter=self.adapter)

    def score_choices(self, prompts: list[list[Message]], choices: list[str]) -> list[list[float]]:
        return self.engine.score_choices(prompts, choices, adapter=self.adapter)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def last_usage(self) -> dict | None:
        return self.engine.last_usage()


def join_stream(pieces: Iterator[str]) -> str:
    return "".join(pieces)
