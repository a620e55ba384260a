"""Backend names -> factories. The only place that names backend classes."""

from __future__ import annotations

from typing import Callable

from chatrec.config import Settings
from chatrec.llm.base import LLMBackend


def _transformers(s: Settings) -> LLMBackend:
    from chatrec.llm.transformers_backend import TransformersLLM

    return TransformersLLM(s.llm, s.cache_dir)


def _llamacpp(s: Settings) -> LLMBackend:
    from chatrec.llm.llamacpp_backend import LlamaCppLLM

    return LlamaCppLLM(s.llm)


def _openai(s: Settings) -> LLMBackend:
    from chatrec.llm.openai_compat import OpenAICompatibleLLM

    m = s.llm
    return OpenAICompatibleLLM(
        m.base_url or "",
        m.model,
        m.api_key,
        m.temperature,
        adapters=m.adapters,
        connect_timeout_s=m.connect_timeout_s,
        read_timeout_s=m.read_timeout_s,
        retries=m.retries,
        backoff_s=m.backoff_s,
        breaker_failures=m.breaker_failures,
        breaker_open_s=m.breaker_open_s,
    )


def _fake(s: Settings) -> LLMBackend:
    from chatrec.llm.fake import FakeLLM

    return FakeLLM()


BACKENDS: dict[str, Callable[[Settings], LLMBackend]] = {
    "transformers": _transformers,
    "llamacpp": _llamacpp,
    "openai": _openai,
    "fake": _fake,
}


def make_llm(settings: Settings) -> LLMBackend:
    try:
        factory = BACKENDS[settings.llm.backend]
    except KeyError:
        raise ValueError(f"unknown LLM backend {settings.llm.backend!r}; choose one of {sorted(BACKENDS)}") from None
    return factory(settings)
