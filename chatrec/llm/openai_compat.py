"""Any OpenAI-compatible chat server (vLLM with LoRA adapters, TGI, llama.cpp server) via LangChain."""

from __future__ import annotations

import threading
from typing import Iterator

from chatrec.llm.base import Message, ScoringUnsupported


def to_langchain(messages: list[Message]):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


class OpenAICompatibleLLM:
    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", temperature: float = 0.0):
        from langchain_openai import ChatOpenAI

        self.name = f"openai:{model}"
        self._chat = ChatOpenAI(base_url=base_url, model=model, api_key=api_key, temperature=temperature)

    def stream(
        self, messages: list[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        for chunk in self._chat.bind(max_tokens=max_new_tokens).stream(to_langchain(messages)):
            if cancel is not None and cancel.is_set():
                return
            if chunk.content:
                yield str(chunk.content)

    def generate(self, messages: list[Message], max_new_tokens: int) -> str:
        return str(self._chat.bind(max_tokens=max_new_tokens).invoke(to_langchain(messages)).content)

    def score(self, prompts: list[list[Message]], continuation: str) -> list[float]:
        raise ScoringUnsupported("chat-completions servers do not return prompt log-likelihoods")

    def score_choices(self, prompts: list[list[Message]], choices: list[str]) -> list[list[float]]:
        raise ScoringUnsupported("chat-completions servers do not return prompt log-likelihoods")

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)
