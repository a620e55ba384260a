"""chatrec as LangChain building blocks, so users can compose it into their own chains.

* :func:`as_runnable` — the whole turn as a ``Runnable``: ``invoke`` returns the
  structured result as a dict; ``stream`` yields text pieces, then the result dict.
* :class:`CatalogueRetriever` — the catalogue index as a ``BaseRetriever``.
"""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda
from pydantic import ConfigDict

from chatrec.chatbot import Chatbot, ResultEvent, TokenEvent


def _args(inp: Any) -> dict[str, Any]:
    if isinstance(inp, str):
        return {"message": inp}
    return {k: inp.get(k) for k in ("message", "conversation_id", "user_id")}


def as_runnable(bot: Chatbot) -> Runnable:
    """``{"message", "conversation_id"?, "user_id"?}`` (or a plain string) -> result dict."""

    def invoke(inp: Any) -> dict[str, Any]:
        return bot.ask(**_args(inp)).model_dump()

    def stream(inputs: Iterator[Any]) -> Iterator[Any]:
        for inp in inputs:
            for ev in bot.stream(**_args(inp)):
                if isinstance(ev, TokenEvent):
                    yield ev.text
                elif isinstance(ev, ResultEvent):
                    yield ev.result.model_dump()

    return _Turn(invoke, stream)


class _Turn(RunnableLambda):
    """A RunnableLambda whose ``stream`` streams the turn instead of yielding one final value."""

    def __init__(self, invoke, stream):
        super().__init__(invoke, name="chatrec_turn")
        self._gen = RunnableGenerator(stream, name="chatrec_turn_stream")

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:  # noqa: A002
        yield from self._gen.stream(input, config, **kwargs)


class CatalogueRetriever(BaseRetriever):
    """Dense retrieval over in-stock catalogue items; each Document carries the item fields."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    bot: Any
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        from chatrec.retrieval.base import where_filter

        docs = []
        for item_id, sim in self.bot.index.search_items(query, self.k, where_filter()):
            item = self.bot.kb.items[item_id]
            docs.append(
                Document(
                    page_content=item.document(),
                    id=item_id,
                    metadata={
                        "item_id": item_id,
                        "title": item.title,
                        "price": item.price,
                        "brand": item.brand,
                        "category": item.category,
                        "similarity": sim,
                    },
                )
            )
        return docs
