"""A scripted LLM for fast unit tests; registered like the real backends."""

from __future__ import annotations

import threading
from typing import Callable, Iterator

from chatrec.llm.base import Message

Script = Callable[[list[Message]], str]


def echo_context(messages: list[Message]) -> str:
    """Default script: answer with the template text given in the prompt, if any."""
    prompt = messages[-1]["content"]
    marker = "Answer template:"
    if marker in prompt:
        return prompt.split(marker, 1)[1].strip().split("\n\n", 1)[0].strip()
    cited = [line[2:].split(",")[0] for line in prompt.splitlines() if line.startswith("- [")]
    if cited:
        return "I recommend " + " and ".join(cited[:2]) + "."
    return "Hello! I can help with orders, returns and product advice."


class FakeLLM:
    name = "fake"

    def __init__(self, script: Script | list[str] | None = None):
        self._list = list(script) if isinstance(script, list) else None
        self._fn: Script = script if callable(script) else echo_context
        self.calls: list[list[Message]] = []

    def _reply(self, messages: list[Message]) -> str:
        self.calls.append(messages)
        if self._list:
            return self._list.pop(0)
        return self._fn(messages)

    def stream(
        self, messages: list[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        self._usage = {"prompt_tokens": sum(self.count_tokens(m["content"]) for m in messages)}
        self._usage.update(prompt_read=self._usage["prompt_tokens"], prompt_cached=0)
        words = self._reply(messages).split(" ")
        for i, w in enumerate(words[:max_new_tokens]):
            if cancel is not None and cancel.is_set():
                return
            piece = w if i == 0 else " " + w
            if piece:  # an empty reply yields nothing, not an empty piece
                yield piece

    def generate(self, messages: list[Message], max_new_tokens: int) -> str:
        return "".join(self.stream(messages, max_new_tokens))

    def last_usage(self) -> dict | None:
        """The last prompt's size in words (``count_tokens``), as the real backends report tokens."""
        return getattr(self, "_usage", None)

    def score_choices(self, prompts: list[list[Message]], choices: list[str]) -> list[list[float]]:
        # the first choice gets the word-overlap score of score(), the others its complement
        first = self.score(prompts, choices[0])
        return [[s] + [-1.0 - s] * (len(choices) - 1) for s in first]

    def score(self, prompts: list[list[Message]], continuation: str) -> list[float]:
        # Deterministic stand-in: prompts sharing more words with their first line score higher.
        out = []
        for p in prompts:
            text = p[-1]["content"].lower()
            head, _, rest = text.partition("\n")
            out.append(-1.0 / (1 + len(set(head.split()) & set(rest.split()))))
        return out

    def count_tokens(self, text: str) -> int:
        return len(text.split())
