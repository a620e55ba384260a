"""The retrieval seam: the :class:`Retriever` protocol, its filter language and build report.

A retriever indexes a KB's items, answer templates and the past customer
messages each template answered, and searches them by text (or by a query
embedding from its own :attr:`Retriever.embedder`). Filters are Chroma-style
``where`` dicts, built by :func:`where_filter`; :func:`matches` is their
reference semantics, which every implementation must agree with.
:class:`chatrec.retrieval.chroma.ChromaIndex` is the default implementation
(HNSW or, with ``retrieval.exact_search``, exact cosine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from chatrec.kb import KnowledgeBase

Where = dict[str, Any]
"""A metadata filter: ``{"field": value}``, ``{"field": {"$lte": x}}`` (``$eq $ne $gt $gte $lt
$lte $in $nin``), ``{"$and": [...]}``, ``{"$or": [...]}``. Item metadata fields: ``brand``,
``category``, ``stock``, ``in_stock`` and ``price`` (absent for unpriced items)."""


@dataclass
class IndexReport:
    collection: str
    total: int
    embedded: int
    deleted: int


@runtime_checkable
class TextEmbedder(Protocol):
    """The query-side embedder a retriever exposes (callers embed a turn's text once and
    pass the vector to several searches)."""

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape ``(len(texts), dim)`` (``(0, dim)`` for none)."""
        ...

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of the two texts' embeddings, in ``[-1, 1]``."""
        ...


@runtime_checkable
class Retriever(Protocol):
    """What the turn, evaluation, CLI and integrations use of a retrieval index. Checked
    by ``tests/contract/test_retriever_contract.py`` for every implementation."""

    @property
    def embedder(self) -> TextEmbedder:
        """The embedder whose vectors the index stores; ``query_embedding`` arguments come from it."""
        ...

    def build(self, kb: KnowledgeBase, progress: bool = False) -> list[IndexReport]:
        """Make the index hold exactly ``kb``'s items, templates and template examples. Idempotent
        and incremental: unchanged rows are not re-embedded (a second build reports ``embedded ==
        0`` for every collection), changed rows are, rows that left the KB are deleted."""
        ...

    def is_built(self, kb: KnowledgeBase) -> bool:
        """Whether the index holds as many items, templates and examples as ``kb`` (cheap; a
        content change of the same size needs :meth:`build`)."""
        ...

    def search_items(
        self, query: str, k: int, where: Where | None = None, query_embedding: Any = None
    ) -> list[tuple[str, float]]:
        """At most ``k`` ``(item id, cosine similarity)`` pairs, best first (similarities
        non-increasing), every id an indexed item whose metadata passes ``where`` (see
        :func:`matches`), no id twice. ``query_embedding`` (from :attr:`embedder`) replaces
        embedding ``query``. ``[]`` for an empty index."""
        ...

    def search_templates(
        self, query: str, k: int, query_embedding: Any = None, examples_k: int = 8
    ) -> list[tuple[str, float]]:
        """At most ``k`` ``(template id, score)`` pairs, best first, ids of indexed templates:
        the best of the similarity to a template's text and the similarity-weighted votes of
        the ``examples_k`` nearest past customer messages it answered."""
        ...

    def item_vectors(self) -> dict[str, np.ndarray]:
        """Every indexed item's stored embedding (float32, as :attr:`embedder` produced it), by item id."""
        ...


_OPS = {
    "$eq": lambda v, x: v == x,
    "$ne": lambda v, x: v != x,
    "$gt": lambda v, x: v is not None and v > x,
    "$gte": lambda v, x: v is not None and v >= x,
    "$lt": lambda v, x: v is not None and v < x,
    "$lte": lambda v, x: v is not None and v <= x,
    "$in": lambda v, x: v in x,
    "$nin": lambda v, x: v not in x,
}


def matches(meta: dict[str, Any], where: Where) -> bool:
    """Whether metadata ``meta`` passes a ``where`` filter ($and, $or and the comparison
    operators), as Chroma evaluates it; the reference for every :class:`Retriever`."""
    for key, cond in where.items():
        if key == "$and":
            ok = all(matches(meta, c) for c in cond)
        elif key == "$or":
            ok = any(matches(meta, c) for c in cond)
        elif isinstance(cond, dict):
            ok = all(_OPS[op](meta.get(key), x) for op, x in cond.items())
        else:
            ok = meta.get(key) == cond
        if not ok:
            return False
    return True


def where_filter(
    max_price: float | None = None, exclude_brands: Sequence[str] | None = None, categories: Sequence[str] | None = None
) -> Where:
    """The filter for in-stock items under the user's constraints."""
    clauses: list[dict[str, Any]] = [{"in_stock": True}]
    if max_price is not None:
        clauses.append({"price": {"$lte": float(max_price)}})
    if exclude_brands:
        clauses.append({"brand": {"$nin": list(exclude_brands)}})
    if categories:
        clauses.append({"category": {"$in": list(categories)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
