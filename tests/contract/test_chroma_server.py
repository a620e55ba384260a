"""The Chroma index on a Chroma server (``retrieval.chroma_host``): ``chroma run`` on 127.0.0.1
(``conftest.py``), the demo KB built on it by :meth:`ChromaIndex.build`, and its answers compared
with the embedded index's (``shared_index``); then a re-index of the same KB while another
client keeps searching (docs/scaling.md: how an index is rebuilt while replicas serve).

The server-side build embeds nothing again: its embedder hands back the vectors the embedded
index stored for the same texts (the embedding model is the same code either way; what is
under test is the server path: collections, upserts, deletes, filters, HNSW search)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
import pytest

from chatrec.config import Settings
from chatrec.kb import KnowledgeBase
from chatrec.retrieval.chroma import EXAMPLES, ITEMS, TEMPLATES, ChromaIndex

QUERIES = [
    "phone case",
    "gaming headset",
    "fast charger",
    "router for a big house",
    "noise cancelling earbuds",
    "screen protector for an iPhone",
    "where is my order",
    "how do I return headphones",
]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"in_stock": True},
    {"$and": [{"in_stock": True}, {"price": {"$lte": 30.0}}]},
]


class _StoredVectors:
    """An embedder that returns the embedded index's stored vector for a text it holds, and
    embeds any other text (queries) with the real model."""

    def __init__(self, source: ChromaIndex):
        self.real = source.embedder
        self.known: dict[str, np.ndarray] = {}
        for name in (ITEMS, TEMPLATES, EXAMPLES):
            got = source.collection(name).get(include=["documents", "embeddings"])
            for doc, emb in zip(got["documents"], got["embeddings"]):
                self.known[doc] = np.asarray(emb, dtype=np.float32)

    def embed(self, texts: list[str], **kw: Any) -> np.ndarray:
        unknown = [t for t in texts if t not in self.known]
        if unknown:
            self.known.update(zip(unknown, self.real.embed(unknown, **kw)))
        return np.stack([self.known[t] for t in texts])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _on_server(settings: Settings, server, exact: bool = False) -> Settings:
    retrieval = settings.retrieval.model_copy(
        update={"chroma_host": server.host, "chroma_port": server.port, "exact_search": exact}
    )
    return settings.model_copy(update={"retrieval": retrieval})


def _exact(settings: Settings, exact: bool) -> Settings:
    return settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update={"exact_search": exact})})


@pytest.fixture(scope="module")
def server_index(chroma_server, shared_index, kb) -> ChromaIndex:
    index = ChromaIndex(_on_server(shared_index.settings, chroma_server))
    assert not index.is_built(kb)
    index.embedder = _StoredVectors(shared_index)  # type: ignore[assignment]
    reports = {r.collection: r for r in index.build(kb)}
    assert reports[ITEMS].embedded == len(kb.items) and index.is_built(kb)
    return index


@pytest.mark.parametrize("exact", [False, True], ids=["hnsw", "exact"])
def test_chroma_server_search_equals_the_embedded_index(server_index, shared_index, chroma_server, exact):
    server = ChromaIndex(_on_server(shared_index.settings, chroma_server, exact))  # another client of the server
    local = ChromaIndex(_exact(shared_index.settings, exact))
    import chromadb

    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port)
    on_server = {c.name for c in client.list_collections()}
    assert server.collection_name(ITEMS) in on_server  # the server holds the collections (HTTP, not a folder)
    for q in QUERIES:
        emb = local.embedder.embed([q])[0]
        for where in FILTERS:
            got = server.search_items(q, 10, where, query_embedding=emb)
            want = local.search_items(q, 10, where, query_embedding=emb)
            assert [i for i, _ in got] == [i for i, _ in want], (q, where)
            assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
        got_t = server.search_templates(q, 3, query_embedding=emb)
        want_t = local.search_templates(q, 3, query_embedding=emb)
        assert [t for t, _ in got_t] == [t for t, _ in want_t], q
    vectors, local_vectors = server.item_vectors(), local.item_vectors()
    assert vectors.keys() == local_vectors.keys()
    assert all(np.allclose(vectors[i], local_vectors[i], atol=1e-6) for i in vectors)


def test_chroma_server_reindex_while_serving_never_fails_a_search(server_index, shared_index, chroma_server, kb):
    """A re-index of the KB (prices changed, items gone) runs while another replica searches the
    same collections: every search answers, with 10 hits, during the build; afterwards they
    see the new KB. The first build of a KB (empty collections) is the one time searches come
    back short; ``is_built`` is false until it ends."""
    reader = ChromaIndex(_on_server(shared_index.settings, chroma_server))
    queries = [(q, reader.embedder.embed([q])[0]) for q in QUERIES[:6]]
    ids = sorted(kb.items)
    gone, cheaper = set(ids[:5]), ids[5:105]  # 100 rows re-written: the build takes a while
    items = {i: it for i, it in kb.items.items() if i not in gone}
    for i in cheaper:
        items[i] = items[i].model_copy(update={"price": 1.0})
    new_kb: KnowledgeBase = dataclasses.replace(kb, items=items)

    stop, errors, short, searches = threading.Event(), [], [], [0]

    def search() -> None:
        while not stop.is_set():
            for q, emb in queries:
                try:
                    hits = reader.search_items(q, 10, query_embedding=emb)
                except Exception as exc:  # reported below
                    errors.append(exc)
                    continue
                searches[0] += 1
                if len(hits) != 10:
                    short.append((q, len(hits)))

    thread = threading.Thread(target=search)
    thread.start()
    try:
        reports = {r.collection: r for r in server_index.build(new_kb)}
    finally:
        stop.set()
        thread.join(60)
    try:
        assert not errors and not short and searches[0] > 0, (errors[:3], short[:3])
        assert reports[ITEMS].deleted == len(gone) and reports[ITEMS].embedded == len(cheaper)
        assert reader.is_built(new_kb) and not reader.is_built(kb)
        found = {i for i, _ in reader.search_items("anything", 300, {"price": {"$lte": 1.0}})}
        assert found == set(cheaper)
    finally:
        server_index.build(kb)  # back to the demo KB for any later test
