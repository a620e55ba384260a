"""The LLM contract every backend (local, remote, scripted) implements."""

from __future__ import annotations

import threading
from typing import Iterator, Protocol, TypedDict, runtime_checkable


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class ScoringUnsupported(RuntimeError):
    """The backend cannot return token log-likelihoods (e.g. a chat-only remote API)."""


@runtime_checkable
class LLMBackend(Protocol):
    name: str

    def stream(self, messages: list[Message], max_new_tokens: int,
               cancel: threading.Event | None = None) -> Iterator[str]:
        """Yield the reply in text pieces; stop early when ``cancel`` is set or the consumer stops."""
        ...

    def generate(self, messages: list[Message], max_new_tokens: int) -> str: ...

    def score(self, prompts: list[list[Message]], continuation: str) -> list[float]:
        """Log-likelihood of ``continuation`` as the assistant's reply to each prompt, in one batch."""
        ...

    def score_choices(self, prompts: list[list[Message]], choices: list[str]) -> list[list[float]]:
        """Log-probability of each choice's first token as the reply's first token, for every
        prompt, from one batched forward pass (e.g. ``["Yes", "No"]``)."""
        ...

    def count_tokens(self, text: str) -> int: ...


def join_stream(pieces: Iterator[str]) -> str:
    return "".join(pieces)
