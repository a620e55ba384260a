"""LLM backends behind one small contract (:class:`chatrec.llm.base.LLMBackend`)."""

from chatrec.llm.base import LLMBackend, Message, ScoringUnsupported
from chatrec.llm.registry import BACKENDS, make_llm

__all__ = ["LLMBackend", "Message", "ScoringUnsupported", "BACKENDS", "make_llm"]
