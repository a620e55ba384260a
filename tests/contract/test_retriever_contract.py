"""One contract, every retriever (:class:`chatrec.retrieval.base.Retriever`): Chroma's HNSW
search and the exact cosine search, on the demo KB (273 items) and the tiny fixture KB.
The last tests compare the two: HNSW's top 10 must recall >= 90 % of the exact top 10."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from chatrec.config import Settings
from chatrec.kb import KnowledgeBase, load_kb
from chatrec.retrieval.base import Retriever, TextEmbedder, matches, where_filter
from chatrec.retrieval.chroma import EXAMPLES, ITEMS, TEMPLATES, ChromaIndex, item_row

TINY = Path(__file__).resolve().parent.parent / "fixtures" / "kb_tiny"
IMPLEMENTATIONS = ["hnsw", "exact"]

QUERIES = [
    "phone case",
    "gaming headset",
    "camera lens for portraits",
    "fast charger",
    "fitness watch band",
    "laptop sleeve",
    "router for a big house",
    "kids tablet",
    "mechanical keyboard",
    "memory card",
    "noise cancelling earbuds",
    "screen protector for an iPhone",
    "bluetooth speaker for the beach",
    "usb-c cable",
    "wireless mouse",
    "4k monitor",
    "tripod for travel",
    "smart light bulb",
    "e-reader cover",
    "power bank for a long flight",
]


def _with_exact(settings: Settings, exact: bool) -> Settings:
    return settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update={"exact_search": exact})})


def open_index(kind: str, kb_dir: Path, data_dir: Path) -> ChromaIndex:
    return ChromaIndex(_with_exact(Settings(kb_dir=kb_dir, data_dir=data_dir), kind == "exact"))


@pytest.fixture(params=IMPLEMENTATIONS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def retriever(kind, shared_index) -> Retriever:
    """The demo KB's index (built once per session by ``shared_index``), searched by ``kind``."""
    return ChromaIndex(_with_exact(shared_index.settings, kind == "exact"))


@pytest.fixture(scope="module")
def exact(shared_index) -> ChromaIndex:
    return ChromaIndex(_with_exact(shared_index.settings, True))


@pytest.fixture(scope="module")
def hnsw(shared_index) -> ChromaIndex:
    return ChromaIndex(_with_exact(shared_index.settings, False))


def _meta(kb: KnowledgeBase, item_id: str) -> dict:
    return item_row(kb.items[item_id])[1]


def test_is_a_retriever(retriever):
    assert isinstance(retriever, Retriever)
    assert isinstance(retriever.embedder, TextEmbedder)


def test_build_is_idempotent_and_incremental(kind, tmp_path):
    kb = load_kb(TINY)
    index = open_index(kind, TINY, tmp_path / "state")
    assert not index.is_built(kb)
    assert index.search_items("phone case", 5) == [] and index.search_templates("where is my order", 3) == []
    first = {r.collection: r for r in index.build(kb)}
    assert set(first) == {ITEMS, TEMPLATES, EXAMPLES}
    assert first[ITEMS].embedded == first[ITEMS].total == len(kb.items)
    assert first[TEMPLATES].embedded == len(kb.templates)
    assert index.is_built(kb)
    again = open_index(kind, TINY, tmp_path / "state")  # another process, same folder
    assert all(r.embedded == 0 and r.deleted == 0 for r in again.build(kb))
    assert again.is_built(kb)

    gone = sorted(kb.items)[0]
    smaller = dataclasses.replace(kb, items={i: it for i, it in kb.items.items() if i != gone})
    third = {r.collection: r for r in again.build(smaller)}
    assert third[ITEMS].deleted == 1 and third[ITEMS].embedded == 0
    assert again.is_built(smaller) and not again.is_built(kb)
    assert gone not in {i for i, _ in again.search_items(kb.items[gone].document(), 10)}


def test_search_items_returns_indexed_ids_best_first(retriever, kb):
    for q in QUERIES[:8]:
        hits = retriever.search_items(q, 10)
        ids = [i for i, _ in hits]
        scores = [s for _, s in hits]
        assert len(hits) == 10 and len(set(ids)) == 10
        assert set(ids) <= set(kb.items)
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in scores)
    assert len(retriever.search_items("phone case", 3)) == 3


def test_a_query_embedding_stands_for_the_query(retriever):
    for q in QUERIES[:5]:
        by_text = retriever.search_items(q, 10)
        by_vector = retriever.search_items("ignored", 10, query_embedding=retriever.embedder.embed([q])[0])
        assert [i for i, _ in by_vector] == [i for i, _ in by_text]
        assert [s for _, s in by_vector] == pytest.approx([s for _, s in by_text], abs=1e-5)


def test_metadata_filters_are_respected(retriever, kb):
    brands = [b for b, _ in _top_brands(kb, 3)]
    cats = ["phone-cases", "chargers"]
    filters = [
        where_filter(),
        where_filter(max_price=30),
        where_filter(exclude_brands=brands),
        where_filter(categories=cats),
        where_filter(max_price=50, exclude_brands=brands[:1], categories=cats),
        {"$or": [{"brand": {"$in": brands}}, {"price": {"$lt": 20}}]},
    ]
    for where in filters:
        for q in ("usb-c charger", "phone case", "headphones"):
            hits = retriever.search_items(q, 10, where)
            assert hits, where
            for item_id, _ in hits:
                assert matches(_meta(kb, item_id), where), (item_id, where)
            scores = [s for _, s in hits]
            assert scores == sorted(scores, reverse=True)
    for item_id, _ in retriever.search_items("usb-c charger", 30, where_filter(max_price=30, exclude_brands=["Anker"])):
        item = kb.items[item_id]
        assert item.in_stock and item.price <= 30 and item.brand != "Anker"


def test_a_filter_matching_fewer_than_k_returns_them_all(retriever, kb):
    where = where_filter(categories=["gaming-consoles", "e-readers"])
    allowed = {i for i in kb.items if matches(_meta(kb, i), where)}
    assert 0 < len(allowed) < 10
    assert {i for i, _ in retriever.search_items("a gift", 10, where)} == allowed


def test_search_templates_returns_template_ids_best_first(retriever, kb):
    for q, intent in (
        ("where is my order", "track_order"),
        ("I want my money back", "refund"),
        ("do you ship abroad", "international_shipping"),
        ("how do I return my headphones", "return"),
    ):
        hits = retriever.search_templates(q, 3)
        ids = [t for t, _ in hits]
        assert 1 <= len(hits) <= 3 and len(set(ids)) == len(ids)
        assert set(ids) <= set(kb.templates)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert any(intent in kb.templates[t].intent for t in ids), (q, [kb.templates[t].intent for t in ids])


def test_item_vectors_are_the_stored_embeddings(retriever, kb):
    vectors = retriever.item_vectors()
    assert set(vectors) == set(kb.items)
    some = sorted(kb.items)[:5]
    fresh = retriever.embedder.embed([kb.items[i].document() for i in some])
    for item_id, v in zip(some, fresh):
        got = vectors[item_id]
        assert got.dtype == np.float32 and got.shape == v.shape
        assert float(np.linalg.norm(got)) == pytest.approx(1.0, abs=1e-3)
        assert float(got @ v) > 0.999


# ---------------------------------------------------------------- HNSW against exact search


def _recall(hnsw: ChromaIndex, exact: ChromaIndex, where=None, k: int = 10) -> float:
    hits = total = 0
    for q in QUERIES:
        emb = exact.embedder.embed([q])[0]
        truth = {i for i, _ in exact.search_items(q, k, where, query_embedding=emb)}
        found = {i for i, _ in hnsw.search_items(q, k, where, query_embedding=emb)}
        hits += len(truth & found)
        total += len(truth)
    return hits / total


def test_hnsw_recall_at_10_against_exact_search(hnsw, exact):
    assert _recall(hnsw, exact) >= 0.9


def test_hnsw_recall_at_10_against_exact_search_under_filters(hnsw, exact, kb):
    brands = [b for b, _ in _top_brands(kb, 2)]
    assert _recall(hnsw, exact, where_filter(max_price=100, exclude_brands=brands)) >= 0.9


def test_exact_scores_are_cosine_similarities(exact, kb):
    q = "wireless earbuds with noise cancelling"
    qv = exact.embedder.embed([q])[0]
    vectors = exact.item_vectors()
    for item_id, score in exact.search_items(q, 5):
        assert score == pytest.approx(float(vectors[item_id] @ qv), abs=1e-4)


def _top_brands(kb: KnowledgeBase, n: int) -> list[tuple[str, int]]:
    from collections import Counter

    return Counter(i.brand for i in kb.items.values() if i.brand).most_common(n)
